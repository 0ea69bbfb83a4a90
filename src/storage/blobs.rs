//! The report container: create it, put and get blobs, sign download links, all through the
//! official `azure_storage_blob` 1.x client.
//!
//! With an account key the client is authorised by an account SAS on its URL (the 1.x crates
//! have no shared-key support; docs/contracts.md, "Blob SDK without shared key") and
//! `credential = None`.
//! With an Entra credential the client sends bearer tokens.

use super::connection::{KeyedAccount, SecretBytes, is_local_emulator};
use super::error::StorageError;
use super::links::{LinkRequest, LinkSigner, SignedLink};
use super::sas::{AccountSas, Protocols};
use azure_core::credentials::TokenCredential;
use azure_core::http::{
    ClientOptions, ExponentialRetryOptions, RequestContent, RetryOptions, StatusCode, Transport,
};
use azure_storage_blob::models::{
    BlobClientUploadOptions, BlobContainerClientListBlobsOptions,
    BlockBlobClientCommitBlockListOptions, BlockLookupList, StorageErrorCode,
};
use azure_storage_blob::{
    BlobClient, BlobClientOptions, BlobContainerClient, BlobContainerClientOptions,
    BlobServiceClient, BlobServiceClientOptions,
};
use std::num::NonZero;
use std::sync::Arc;
use std::time::Duration as StdDuration;
use time::{Duration, OffsetDateTime};
use tokio::sync::Mutex;
use url::Url;

/// How the store reaches the account.
#[derive(Clone)]
pub enum StorageAccess {
    /// Connection string with an account key.
    Key(KeyedAccount),
    /// Account URL plus an Entra credential (managed identity in Azure).
    Identity {
        account_url: Url,
        credential: Arc<dyn TokenCredential>,
    },
}

impl std::fmt::Debug for StorageAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StorageAccess::Key(a) => f.debug_tuple("Key").field(a).finish(),
            StorageAccess::Identity { account_url, .. } => f
                .debug_struct("Identity")
                .field("account_url", &account_url.as_str())
                .finish_non_exhaustive(),
        }
    }
}

/// Tuning of the store; the defaults suit production.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub container: String,
    /// Uploads larger than this go in blocks of this size.
    pub partition_size: NonZero<u64>,
    /// Blocks in flight at once.
    pub parallel: NonZero<usize>,
    /// Retries of one storage request (connection errors, 408/429/5xx).
    pub retries: u32,
    /// The HTTP client to use (tests pass one that trusts a test CA).
    pub http: Option<reqwest::Client>,
}

impl StoreOptions {
    pub fn new(container: impl Into<String>) -> Self {
        Self {
            container: container.into(),
            partition_size: NonZero::new(4 << 20).unwrap_or(NonZero::<u64>::MIN),
            parallel: NonZero::new(4).unwrap_or(NonZero::<usize>::MIN),
            retries: 3,
            http: None,
        }
    }
}

/// One container of one account.
pub struct BlobStore {
    container: String,
    /// Blob service endpoint, e.g. `https://acct.blob.core.windows.net/`.
    endpoint: Url,
    account: String,
    auth: Auth,
    client_options: ClientOptions,
    partition_size: NonZero<u64>,
    parallel: NonZero<usize>,
    signer: LinkSigner,
}

enum Auth {
    Key {
        key: SecretBytes,
        protocols: Protocols,
    },
    Token(Arc<dyn TokenCredential>),
}

impl std::fmt::Debug for BlobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobStore")
            .field("account", &self.account)
            .field("endpoint", &self.endpoint.as_str())
            .field("container", &self.container)
            .finish_non_exhaustive()
    }
}

/// What a blob is uploaded with.
#[derive(Debug, Clone)]
pub struct BlobHeaders {
    pub content_type: String,
    /// `Content-Disposition`, e.g. `attachment; filename="…"`.
    pub content_disposition: Option<String>,
    pub cache_control: Option<String>,
}

impl BlobStore {
    pub fn new(access: &StorageAccess, options: StoreOptions) -> Result<Self, StorageError> {
        let http = match options.http {
            Some(http) => http,
            None => default_http_client()?,
        };
        let client_options = ClientOptions {
            transport: Some(Transport::new(Arc::new(http))),
            retry: RetryOptions::exponential(ExponentialRetryOptions {
                initial_delay: azure_core::time::Duration::milliseconds(200),
                max_retries: options.retries,
                max_total_elapsed: azure_core::time::Duration::seconds(60),
                max_delay: azure_core::time::Duration::seconds(10),
            }),
            ..Default::default()
        };
        let (endpoint, account, auth, signer) = match access {
            StorageAccess::Key(keyed) => {
                let protocols = link_protocols(&keyed.blob_endpoint);
                let signer = LinkSigner::AccountKey {
                    account: keyed.account.clone(),
                    key: keyed.key.clone(),
                    protocols,
                };
                let auth = Auth::Key {
                    key: keyed.key.clone(),
                    protocols,
                };
                (
                    keyed.blob_endpoint.clone(),
                    keyed.account.clone(),
                    auth,
                    signer,
                )
            }
            StorageAccess::Identity {
                account_url,
                credential,
            } => {
                let account = account_name(account_url).ok_or_else(|| {
                    StorageError::Config(format!(
                        "cannot tell the storage account name from {account_url}"
                    ))
                })?;
                let service = BlobServiceClient::new(
                    account_url.clone(),
                    Some(credential.clone()),
                    Some(BlobServiceClientOptions {
                        client_options: client_options.clone(),
                        ..Default::default()
                    }),
                )
                .map_err(|e| StorageError::Config(e.to_string()))?;
                let signer = LinkSigner::UserDelegation {
                    account: account.clone(),
                    service: Box::new(service),
                    cache: Mutex::new(None),
                };
                (
                    account_url.clone(),
                    account,
                    Auth::Token(credential.clone()),
                    signer,
                )
            }
        };
        Ok(Self {
            container: options.container,
            endpoint,
            account,
            auth,
            client_options,
            partition_size: options.partition_size,
            parallel: options.parallel,
            signer,
        })
    }

    pub fn container(&self) -> &str {
        &self.container
    }

    pub fn account(&self) -> &str {
        &self.account
    }

    /// The unsigned URL of a blob in the container (blob names keep their `/`).
    pub fn blob_url(&self, blob: &str) -> Url {
        let mut url = self.endpoint.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments
                .pop_if_empty()
                .push(&self.container)
                .extend(blob.split('/'));
        }
        url
    }

    fn container_url(&self) -> Url {
        let mut url = self.endpoint.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().push(&self.container);
        }
        url
    }

    /// Authorise a URL for the client: an account SAS with a key, nothing with a token.
    fn authorise(&self, mut url: Url) -> (Url, Option<Arc<dyn TokenCredential>>) {
        match &self.auth {
            Auth::Key { key, protocols } => {
                let now = OffsetDateTime::now_utc();
                let sas = AccountSas {
                    account: &self.account,
                    services: "b",
                    resource_types: "sco",
                    permissions: "rwdlc",
                    start: now - Duration::minutes(5),
                    expiry: now + Duration::hours(2),
                    protocols: *protocols,
                }
                .sign(key.expose());
                url.set_query(Some(&sas));
                (url, None)
            }
            Auth::Token(credential) => (url, Some(credential.clone())),
        }
    }

    fn blob_client(&self, blob: &str) -> Result<BlobClient, StorageError> {
        let (url, credential) = self.authorise(self.blob_url(blob));
        let options = BlobClientOptions {
            client_options: self.client_options.clone(),
            ..Default::default()
        };
        BlobClient::new(url, credential, Some(options))
            .map_err(|e| StorageError::Config(e.to_string()))
    }

    fn container_client(&self) -> Result<BlobContainerClient, StorageError> {
        let (url, credential) = self.authorise(self.container_url());
        let options = BlobContainerClientOptions {
            client_options: self.client_options.clone(),
            ..Default::default()
        };
        BlobContainerClient::new(url, credential, Some(options))
            .map_err(|e| StorageError::Config(e.to_string()))
    }

    /// Create the container (private) if it does not exist. Returns whether it was created.
    ///
    /// An identity that may write blobs but not create containers (a role assigned on the
    /// container itself, which infrastructure code created) is refused the create: then the
    /// container only has to exist.
    pub async fn ensure_container(&self) -> Result<bool, StorageError> {
        let action = format!("create the container '{}'", self.container);
        let client = self.container_client()?;
        match client.create(None).await {
            Ok(_) => Ok(true),
            Err(e)
                if e.http_status() == Some(StatusCode::Conflict)
                    && is_code(&e, StorageErrorCode::ContainerAlreadyExists) =>
            {
                Ok(false)
            }
            Err(e) if e.http_status() == Some(StatusCode::Forbidden) => match client.exists().await
            {
                Ok(true) => Ok(false),
                _ => Err(StorageError::from_sdk(&e, action)),
            },
            Err(e) => Err(StorageError::from_sdk(&e, action)),
        }
    }

    /// Upload (or overwrite) a block blob; above the partition size the SDK stages blocks in
    /// parallel and commits the list.
    pub async fn put(
        &self,
        blob: &str,
        bytes: Vec<u8>,
        headers: &BlobHeaders,
    ) -> Result<(), StorageError> {
        self.put_bytes(blob, bytes, headers, false).await
    }

    /// Upload a block blob only if no blob has its name (`If-None-Match: *`): a blob that exists
    /// already is an error with status 409 or 412. Atomic in the service, so it can mark
    /// something as done exactly once whatever instance tries.
    pub async fn put_new(
        &self,
        blob: &str,
        bytes: Vec<u8>,
        headers: &BlobHeaders,
    ) -> Result<(), StorageError> {
        self.put_bytes(blob, bytes, headers, true).await
    }

    /// [`Self::put`], refusing to overwrite (`If-None-Match: *`) when `new_only`: a blob that
    /// exists already is an error with status 409 or 412.
    async fn put_bytes(
        &self,
        blob: &str,
        bytes: Vec<u8>,
        headers: &BlobHeaders,
        new_only: bool,
    ) -> Result<(), StorageError> {
        let options = BlobClientUploadOptions {
            if_none_match: new_only.then(|| "*".into()),
            blob_content_type: Some(headers.content_type.clone()),
            blob_content_disposition: headers.content_disposition.clone(),
            blob_cache_control: headers.cache_control.clone(),
            partition_size: Some(self.partition_size),
            parallel: Some(self.parallel),
            ..Default::default()
        };
        self.blob_client(blob)?
            .upload(RequestContent::from(bytes), Some(options))
            .await
            .map(|_| ())
            .map_err(|e| StorageError::from_sdk(&e, format!("upload {blob}")))
    }

    /// Upload (or overwrite) a block blob from a file, one block of the partition size at a
    /// time: memory stays at one block whatever the file's size. A file no larger than one
    /// block goes in a single request.
    pub async fn put_file(
        &self,
        blob: &str,
        path: &std::path::Path,
        headers: &BlobHeaders,
        new_only: bool,
    ) -> Result<(), StorageError> {
        use tokio::io::AsyncReadExt;
        let action = || format!("upload {blob}");
        let read_error = |e: std::io::Error| StorageError::Corrupt {
            what: path.display().to_string(),
            detail: e.to_string(),
        };
        let mut file = tokio::fs::File::open(path).await.map_err(read_error)?;
        let size = file.metadata().await.map_err(read_error)?.len();
        let block = usize::try_from(self.partition_size.get()).unwrap_or(usize::MAX);
        if size <= self.partition_size.get() {
            let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
            file.read_to_end(&mut bytes).await.map_err(read_error)?;
            return self.put_bytes(blob, bytes, headers, new_only).await;
        }
        let client = self.blob_client(blob)?.block_blob_client();
        let mut ids = Vec::new();
        let mut buffer = vec![0u8; block];
        loop {
            let mut filled = 0;
            while filled < block {
                let n = file.read(&mut buffer[filled..]).await.map_err(read_error)?;
                if n == 0 {
                    break;
                }
                filled += n;
            }
            if filled == 0 {
                break;
            }
            // Block ids must all have the same length within a blob.
            let id = format!("block-{:010}", ids.len()).into_bytes();
            client
                .stage_block(
                    &id,
                    filled as u64,
                    RequestContent::from(buffer[..filled].to_vec()),
                    None,
                )
                .await
                .map_err(|e| StorageError::from_sdk(&e, action()))?;
            ids.push(id);
            if filled < block {
                break;
            }
        }
        let list = BlockLookupList {
            latest: Some(ids),
            ..Default::default()
        };
        let options = BlockBlobClientCommitBlockListOptions {
            if_none_match: new_only.then(|| "*".into()),
            blob_content_type: Some(headers.content_type.clone()),
            blob_content_disposition: headers.content_disposition.clone(),
            blob_cache_control: headers.cache_control.clone(),
            ..Default::default()
        };
        let list = list
            .try_into()
            .map_err(|e| StorageError::from_sdk(&e, action()))?;
        client
            .commit_block_list(list, Some(options))
            .await
            .map(|_| ())
            .map_err(|e| StorageError::from_sdk(&e, action()))
    }

    /// Read a whole blob; `None` when it (or the container) does not exist.
    pub async fn get(&self, blob: &str) -> Result<Option<Vec<u8>>, StorageError> {
        let action = || format!("read {blob}");
        let response = match self.blob_client(blob)?.download(None).await {
            Ok(r) => r,
            Err(e) if e.http_status() == Some(StatusCode::NotFound) => return Ok(None),
            Err(e) => return Err(StorageError::from_sdk(&e, action())),
        };
        let bytes = response
            .body
            .collect()
            .await
            .map_err(|e| StorageError::from_sdk(&e, action()))?;
        Ok(Some(bytes.to_vec()))
    }

    /// Copy a blob into the file at `path`, a chunk at a time (a report's JSON may be 100 MB);
    /// `false` when the blob does not exist.
    pub async fn get_to_file(
        &self,
        blob: &str,
        path: &std::path::Path,
    ) -> Result<bool, StorageError> {
        use futures::TryStreamExt;
        use tokio::io::AsyncWriteExt;
        let action = || format!("read {blob}");
        let response = match self.blob_client(blob)?.download(None).await {
            Ok(r) => r,
            Err(e) if e.http_status() == Some(StatusCode::NotFound) => return Ok(false),
            Err(e) => return Err(StorageError::from_sdk(&e, action())),
        };
        let local = |e: std::io::Error| StorageError::Corrupt {
            what: path.display().to_string(),
            detail: e.to_string(),
        };
        let mut file = tokio::fs::File::create(path).await.map_err(local)?;
        let mut body = response.body;
        while let Some(chunk) = body
            .try_next()
            .await
            .map_err(|e| StorageError::from_sdk(&e, action()))?
        {
            file.write_all(&chunk).await.map_err(local)?;
        }
        file.flush().await.map_err(local)?;
        Ok(true)
    }

    /// The names of the blobs whose names start with `prefix`, in name order.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        use futures::TryStreamExt;
        let action = || format!("list {prefix}*");
        let options = BlobContainerClientListBlobsOptions {
            prefix: Some(prefix.to_owned()),
            ..Default::default()
        };
        let pager = self
            .container_client()?
            .list_blobs(Some(options))
            .map_err(|e| StorageError::from_sdk(&e, action()))?;
        let items: Vec<_> = pager
            .try_collect()
            .await
            .map_err(|e| StorageError::from_sdk(&e, action()))?;
        Ok(items.into_iter().filter_map(|item| item.name).collect())
    }

    /// Whether a blob exists.
    pub async fn exists(&self, blob: &str) -> Result<bool, StorageError> {
        self.blob_client(blob)?
            .exists()
            .await
            .map_err(|e| StorageError::from_sdk(&e, format!("look for {blob}")))
    }

    /// A fresh read-only link to one blob.
    pub async fn read_link(
        &self,
        blob: &str,
        file_name: &str,
        lifetime: Duration,
    ) -> Result<SignedLink, StorageError> {
        let request = LinkRequest {
            container: &self.container,
            blob,
            file_name,
            lifetime,
        };
        self.signer
            .read_link(&self.blob_url(blob), &request, OffsetDateTime::now_utc())
            .await
    }
}

fn is_code(err: &azure_core::Error, code: StorageErrorCode) -> bool {
    matches!(err.kind(), azure_core::error::ErrorKind::HttpResponse { error_code: Some(c), .. } if c == code.as_ref())
}

/// HTTPS only, except for an emulator on loopback (which only speaks http).
fn link_protocols(endpoint: &Url) -> Protocols {
    if endpoint.scheme() == "http" && is_local_emulator(endpoint) {
        Protocols::HttpsAndHttp
    } else {
        Protocols::HttpsOnly
    }
}

/// `acct` from `https://acct.blob.core.windows.net`, or from the first path segment of a
/// path-style (emulator) URL such as `https://127.0.0.1:10000/devstoreaccount1`.
pub fn account_name(url: &Url) -> Option<String> {
    let path_style = match url.host()? {
        url::Host::Domain(d) => {
            d.eq_ignore_ascii_case("localhost") || d.eq_ignore_ascii_case("azurite")
        }
        _ => true,
    };
    let name = if path_style {
        url.path_segments()?.find(|s| !s.is_empty())?.to_owned()
    } else {
        url.host_str()?.split('.').next()?.to_owned()
    };
    (!name.is_empty()).then_some(name)
}

/// The HTTP client for storage: no automatic decompression (the SDK's partitioned downloads
/// need raw bytes), a connect timeout so an unreachable account fails fast.
pub fn default_http_client() -> Result<reqwest::Client, StorageError> {
    reqwest::Client::builder()
        .connect_timeout(StdDuration::from_secs(5))
        .timeout(StdDuration::from_secs(300))
        .pool_idle_timeout(StdDuration::from_secs(60))
        .user_agent(concat!("patreport/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| StorageError::Config(format!("HTTP client: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::connection::parse_connection_string;

    #[test]
    fn account_names_come_from_the_host_or_the_emulator_path() {
        let u = |s: &str| Url::parse(s).unwrap();
        assert_eq!(
            account_name(&u("https://contoso.blob.core.windows.net")).as_deref(),
            Some("contoso")
        );
        assert_eq!(
            account_name(&u("https://127.0.0.1:10000/devstoreaccount1")).as_deref(),
            Some("devstoreaccount1")
        );
        assert_eq!(
            account_name(&u("http://localhost:10000/devstoreaccount1/")).as_deref(),
            Some("devstoreaccount1")
        );
        assert_eq!(account_name(&u("https://127.0.0.1:10000/")), None);
    }

    #[test]
    fn blob_urls_keep_slashes_and_encode_the_rest() {
        let keyed = parse_connection_string("UseDevelopmentStorage=true").unwrap();
        let store =
            BlobStore::new(&StorageAccess::Key(keyed), StoreOptions::new("reports")).unwrap();
        assert_eq!(
            store.blob_url("fab/2026/a b.xlsx").as_str(),
            "http://127.0.0.1:10000/devstoreaccount1/reports/fab/2026/a%20b.xlsx"
        );
        let cloud = parse_connection_string(&format!(
            "AccountName=contoso;AccountKey={}",
            crate::storage::connection::DEV_ACCOUNT_KEY
        ))
        .unwrap();
        let store =
            BlobStore::new(&StorageAccess::Key(cloud), StoreOptions::new("reports")).unwrap();
        assert_eq!(
            store.blob_url("x/y.json").as_str(),
            "https://contoso.blob.core.windows.net/reports/x/y.json"
        );
    }
}
