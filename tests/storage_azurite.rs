//! Report storage against Azurite with the real SDK: container creation, uploads in blocks,
//! download links that work alone and only for reading, and the user-delegation path
//! (`azure_storage_sas`, `sv=2026-04-06`) against Azurite's HTTPS + `--oauth basic` mode.

mod support;

use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use base64::Engine;
use patreport::domain::{OrgName, RunId};
use patreport::lifecycle::{Execution, LatestPointer, RunSource, RunStatus, RunSummary};
use patreport::report::Format;
use patreport::storage::connection::{DEV_ACCOUNT, DEV_ACCOUNT_KEY, parse_connection_string};
use patreport::storage::links::attachment;
use patreport::storage::sas::{AccountSas, BlobSas, Protocols};
use patreport::storage::{
    BlobHeaders, BlobStore, RunStore, StorageAccess, StorageError, StoreOptions, report_blob_names,
};
use std::sync::Arc;
use support::azurite::{self, Azurite};
use time::{Duration, OffsetDateTime};

fn keyed_store(azurite: &Azurite, container: &str) -> BlobStore {
    let account = parse_connection_string(&azurite.connection_string()).expect("connection string");
    BlobStore::new(&StorageAccess::Key(account), StoreOptions::new(container)).expect("store")
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{:08x}", fastrand::u32(..))
}

fn xlsx_headers(name: &str) -> BlobHeaders {
    BlobHeaders {
        content_type: Format::Xlsx.content_type().into(),
        content_disposition: Some(attachment(name)),
        cache_control: None,
    }
}

/// The signature with its first character changed (still valid base64).
fn flip_first(sig: &str) -> String {
    let first = if sig.starts_with('A') { 'B' } else { 'A' };
    format!("{first}{}", sig.get(1..).unwrap_or(""))
}

fn dev_key() -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(DEV_ACCOUNT_KEY)
        .unwrap()
}

#[tokio::test]
async fn the_container_is_created_when_missing_and_only_once() {
    let store = keyed_store(azurite::shared(), &unique("fresh"));
    assert!(
        store.ensure_container().await.expect("create"),
        "a missing container is created"
    );
    assert!(
        !store.ensure_container().await.expect("again"),
        "an existing container is left alone"
    );
    // Private: an anonymous read of a blob in it is refused.
    store
        .put(
            "x.txt",
            b"hello".to_vec(),
            &BlobHeaders {
                content_type: "text/plain".into(),
                content_disposition: None,
                cache_control: None,
            },
        )
        .await
        .unwrap();
    let anonymous = reqwest::get(store.blob_url("x.txt").as_str())
        .await
        .unwrap();
    assert!(
        anonymous.status() == 403 || anonymous.status() == 404,
        "anonymous read: {}",
        anonymous.status()
    );
}

/// The committed blocks of a blob (Get Block List), read with an account SAS.
async fn committed_blocks(store: &BlobStore, name: &str) -> usize {
    let now = OffsetDateTime::now_utc();
    let sas = AccountSas {
        account: DEV_ACCOUNT,
        services: "b",
        resource_types: "sco",
        permissions: "rl",
        start: now - Duration::minutes(5),
        expiry: now + Duration::minutes(30),
        protocols: Protocols::HttpsAndHttp,
    }
    .sign(&dev_key());
    reqwest::get(format!(
        "{}?comp=blocklist&blocklisttype=committed&{sas}",
        store.blob_url(name)
    ))
    .await
    .unwrap()
    .text()
    .await
    .unwrap()
    .matches("<Block>")
    .count()
}

#[tokio::test]
async fn a_report_file_is_uploaded_from_disk_one_block_at_a_time() {
    let azurite = azurite::shared();
    let store = keyed_store(azurite, &unique("files"));
    store.ensure_container().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    const MIB: usize = 1024 * 1024;
    // A file that ends on a block boundary, one that does not, and one small enough for a
    // single request (no blocks).
    for (size, blocks) in [(8 * MIB, 2), (9 * MIB + 7, 3), (1000, 0)] {
        let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        let path = dir.path().join(format!("{size}.xlsx"));
        std::fs::write(&path, &data).unwrap();
        let name = format!("fabrikam/{size}.xlsx");
        store
            .put_file(&name, &path, &xlsx_headers("report.xlsx"), false)
            .await
            .expect("upload");
        assert_eq!(
            committed_blocks(&store, &name).await,
            blocks,
            "{size} bytes"
        );
        let stored = store.get(&name).await.unwrap().expect("the blob exists");
        assert!(stored == data, "{size} bytes: the blob equals the file");
        let link = store
            .read_link(&name, "report.xlsx", Duration::minutes(5))
            .await
            .unwrap();
        let response = reqwest::get(&link.url).await.unwrap();
        assert_eq!(
            response.headers()["content-type"],
            Format::Xlsx.content_type()
        );
        assert_eq!(
            response.headers()["content-disposition"],
            "attachment; filename=\"report.xlsx\""
        );
    }
}

#[tokio::test]
async fn a_large_report_is_uploaded_in_blocks_and_downloads_with_only_its_link() {
    let azurite = azurite::shared();
    let container = unique("reports");
    let store = keyed_store(azurite, &container);
    store.ensure_container().await.unwrap();
    let name = "fabrikam/2026/11/24/patreport-fabrikam-20261124-090503.xlsx";
    // 9 MiB with the default 4 MiB partitions: three staged blocks and a commit.
    let data: Vec<u8> = (0..9 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    store
        .put(
            name,
            data.clone(),
            &xlsx_headers("patreport-fabrikam-20261124-090503.xlsx"),
        )
        .await
        .expect("upload");

    assert_eq!(
        committed_blocks(&store, name).await,
        3,
        "three committed blocks"
    );

    let now = OffsetDateTime::now_utc();
    let link = store
        .read_link(
            name,
            "patreport-fabrikam-20261124-090503.xlsx",
            Duration::minutes(60),
        )
        .await
        .unwrap();
    assert!(
        link.url.contains("sp=r&") && link.url.contains("sr=b&") && link.url.contains("rscd="),
        "{:?}",
        link
    );
    assert!((link.expires_at - now - Duration::minutes(60)).abs() < Duration::seconds(30));
    // Nothing but the URL: no credential, no SDK.
    let response = reqwest::get(&link.url).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        Format::Xlsx.content_type()
    );
    assert_eq!(
        response.headers()["content-disposition"],
        "attachment; filename=\"patreport-fabrikam-20261124-090503.xlsx\""
    );
    assert!(
        response.bytes().await.unwrap().as_ref() == data.as_slice(),
        "the download equals the upload"
    );
}

#[tokio::test]
async fn a_download_link_cannot_write_or_delete() {
    let store = keyed_store(azurite::shared(), &unique("readonly"));
    store.ensure_container().await.unwrap();
    store
        .put("org/a.xlsx", b"original".to_vec(), &xlsx_headers("a.xlsx"))
        .await
        .unwrap();
    let link = store
        .read_link("org/a.xlsx", "a.xlsx", Duration::minutes(5))
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let put = http
        .put(&link.url)
        .header("x-ms-blob-type", "BlockBlob")
        .body("overwritten")
        .send()
        .await
        .unwrap();
    assert_eq!(
        put.status(),
        403,
        "PUT with a read link: {}",
        put.text().await.unwrap_or_default()
    );
    let delete = http.delete(&link.url).send().await.unwrap();
    assert_eq!(delete.status(), 403);
    assert_eq!(
        reqwest::get(&link.url).await.unwrap().text().await.unwrap(),
        "original"
    );
}

#[tokio::test]
async fn a_tampered_expired_or_borrowed_link_is_refused() {
    let store = keyed_store(azurite::shared(), &unique("tamper"));
    store.ensure_container().await.unwrap();
    for blob in ["org/a.xlsx", "org/b.xlsx"] {
        store
            .put(blob, b"data".to_vec(), &xlsx_headers("x.xlsx"))
            .await
            .unwrap();
    }
    let link = store
        .read_link("org/a.xlsx", "a.xlsx", Duration::minutes(5))
        .await
        .unwrap();
    assert_eq!(reqwest::get(&link.url).await.unwrap().status(), 200);

    // A changed signature.
    let (head, sig) = link.url.rsplit_once("sig=").unwrap();
    let flipped = flip_first(sig);
    assert_eq!(
        reqwest::get(format!("{head}sig={flipped}"))
            .await
            .unwrap()
            .status(),
        403,
        "tampered signature"
    );
    // A widened permission with the old signature.
    assert_eq!(
        reqwest::get(link.url.replace("sp=r&", "sp=rw&"))
            .await
            .unwrap()
            .status(),
        403,
        "tampered permission"
    );
    // The same query on another blob.
    let other = link.url.replace("/org/a.xlsx?", "/org/b.xlsx?");
    assert_eq!(
        reqwest::get(other).await.unwrap().status(),
        403,
        "borrowed for another blob"
    );
    // A correctly signed link whose time is up.
    let now = OffsetDateTime::now_utc();
    let container = store.container().to_owned();
    let expired = BlobSas {
        account: DEV_ACCOUNT,
        container: &container,
        blob: "org/a.xlsx",
        permissions: "r",
        start: now - Duration::hours(2),
        expiry: now - Duration::hours(1),
        protocols: Protocols::HttpsAndHttp,
        content_disposition: None,
        content_type: None,
    }
    .sign(&dev_key());
    assert_eq!(
        reqwest::get(format!("{}?{expired}", store.blob_url("org/a.xlsx")))
            .await
            .unwrap()
            .status(),
        403,
        "expired"
    );
}

#[tokio::test]
async fn run_documents_and_the_latest_pointer_round_trip() {
    let store = keyed_store(azurite::shared(), &unique("runs"));
    store.ensure_container().await.unwrap();
    let runs = RunStore::new(store);
    let run_id = RunId::parse("20261124-090503-0123456789abcdef").unwrap();
    assert_eq!(runs.load_status(&run_id).await.unwrap(), None);
    let status = RunStatus::queued(
        run_id.clone(),
        OrgName::parse("fabrikam").unwrap(),
        RunSource::Http,
        Some("ada@contoso.com".into()),
        Execution::Queue,
        OffsetDateTime::now_utc().replace_nanosecond(0).unwrap(),
    );
    runs.save_status(&status).await.unwrap();
    assert_eq!(
        runs.load_status(&status.run_id).await.unwrap(),
        Some(status.clone())
    );
    let org = OrgName::parse("Fabrikam").unwrap();
    let latest = LatestPointer {
        run_id: status.run_id.clone(),
        org: org.clone(),
        generated_at: status.requested_at,
        files: report_blob_names(&org, status.requested_at, "", &Format::ALL),
        summary: RunSummary::default(),
    };
    runs.save_latest(&latest).await.unwrap();
    let lower = OrgName::parse("fabrikam").unwrap();
    assert_eq!(runs.load_latest(&lower).await.unwrap(), Some(latest));
    assert_eq!(
        runs.load_latest(&OrgName::parse("contoso").unwrap())
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn a_storage_account_that_does_not_answer_is_unreachable_and_says_so_without_secrets() {
    let port = support::REFUSING_PORT;
    let account = parse_connection_string(&format!(
        "DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_ACCOUNT_KEY};BlobEndpoint=http://127.0.0.1:{port}/{DEV_ACCOUNT}"
    ))
    .unwrap();
    let mut options = StoreOptions::new("reports");
    options.retries = 1;
    let store = BlobStore::new(&StorageAccess::Key(account), options).unwrap();
    let e = store.ensure_container().await.unwrap_err();
    assert!(matches!(e, StorageError::Unreachable { .. }), "{e:?}");
    assert!(e.is_transient());
    let text = e.to_string();
    assert!(
        !text.contains("sig=") || text.contains("sig=REDACTED"),
        "{text}"
    );
    assert!(!text.contains(DEV_ACCOUNT_KEY), "{text}");
}

/// An Entra token as Azurite's `--oauth basic` wants it: the claims are checked, the signature
/// is not.
#[derive(Debug)]
struct FakeEntraToken;

#[async_trait::async_trait]
impl TokenCredential for FakeEntraToken {
    async fn get_token(
        &self,
        _scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        let b64 = |v: &serde_json::Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
        };
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let tid = "72f988bf-86f1-41af-91ab-2d7cd011db47";
        let claims = serde_json::json!({
            "aud": "https://storage.azure.com",
            "iss": format!("https://sts.windows.net/{tid}/"),
            "iat": now - 60, "nbf": now - 60, "exp": now + 3600,
            "oid": "5e0c1b3a-1111-4222-8333-944455556666",
            "tid": tid,
        });
        let token = format!(
            "{}.{}.sig",
            b64(&serde_json::json!({"alg": "RS256", "typ": "JWT"})),
            b64(&claims)
        );
        Ok(AccessToken::new(
            token,
            OffsetDateTime::now_utc() + Duration::hours(1),
        ))
    }
}

/// The production signing path: a user delegation key from the service, signed by
/// `azure_storage_sas` with `sv=2026-04-06`. Azurite 3.37 verifies that version's 28-field
/// string-to-sign (3.35 did not), so the link is checked end to end here; the layout is also
/// recomputed independently in `storage::links`' unit test.
#[tokio::test]
async fn user_delegation_links_signed_for_2026_04_06_are_accepted_by_azurite_over_https() {
    let dir = support::scratch_dir("patreport-tls-");
    let certs = support::tls::make(dir.path());
    let azurite = Azurite::start_https_oauth(&certs.cert, &certs.key);
    let ca = reqwest::Certificate::from_pem(&certs.ca_pem).unwrap();
    let trusting = || {
        reqwest::Client::builder()
            .tls_certs_only([ca.clone()])
            .build()
            .unwrap()
    };

    let mut options = StoreOptions::new("udk-reports");
    options.http = Some(trusting());
    let access = StorageAccess::Identity {
        account_url: url::Url::parse(&azurite.blob_endpoint()).unwrap(),
        credential: Arc::new(FakeEntraToken),
    };
    let store = BlobStore::new(&access, options).unwrap();
    assert!(
        store
            .ensure_container()
            .await
            .expect("create with a bearer token")
    );
    let name = "fabrikam/2026/11/24/patreport-fabrikam-20261124-090503.xlsx";
    store
        .put(
            name,
            b"workbook bytes".to_vec(),
            &xlsx_headers("patreport-fabrikam-20261124-090503.xlsx"),
        )
        .await
        .unwrap();

    let link = store
        .read_link(
            name,
            "patreport-fabrikam-20261124-090503.xlsx",
            Duration::minutes(60),
        )
        .await
        .unwrap();
    assert!(
        link.url.contains("sv=2026-04-06")
            && link.url.contains("skoid=")
            && link.url.contains("spr=https"),
        "{link:?}"
    );
    let http = trusting();
    let response = http.get(&link.url).send().await.unwrap();
    assert_eq!(
        response.status(),
        200,
        "{}\nAzurite log:\n{}",
        response.text().await.unwrap_or_default(),
        azurite.log_text()
    );
    assert_eq!(
        response.headers()["content-disposition"],
        "attachment; filename=\"patreport-fabrikam-20261124-090503.xlsx\""
    );
    assert_eq!(response.bytes().await.unwrap().as_ref(), b"workbook bytes");
    let put = http
        .put(&link.url)
        .header("x-ms-blob-type", "BlockBlob")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(
        put.status(),
        403,
        "a user delegation read link cannot write"
    );
    let (head, sig) = link.url.rsplit_once("sig=").unwrap();
    let flipped = flip_first(sig);
    assert_eq!(
        http.get(format!("{head}sig={flipped}"))
            .send()
            .await
            .unwrap()
            .status(),
        403,
        "tampered"
    );
    // A second link reuses the cached key (no second key request needed) and works too.
    let again = store
        .read_link(name, "x.xlsx", Duration::minutes(5))
        .await
        .unwrap();
    assert_eq!(http.get(&again.url).send().await.unwrap().status(), 200);
}

/// `new_only` is the service's atomic check: a name already taken is refused (whether the
/// file goes up in one request or in blocks) and the stored report is left as it was.
#[tokio::test]
async fn a_report_file_written_new_only_never_replaces_one_already_there() {
    let azurite = azurite::shared();
    let store = keyed_store(azurite, &unique("newonly"));
    store.ensure_container().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    for size in [1000, 5 * 1024 * 1024] {
        let name = format!("fabrikam/{size}.xlsx");
        let first = dir.path().join("first");
        let second = dir.path().join("second");
        std::fs::write(&first, vec![1u8; size]).unwrap();
        std::fs::write(&second, vec![2u8; size]).unwrap();
        store
            .put_file(&name, &first, &xlsx_headers("report.xlsx"), true)
            .await
            .expect("a free name is written");
        let refused = store
            .put_file(&name, &second, &xlsx_headers("report.xlsx"), true)
            .await
            .expect_err("a taken name is refused");
        assert!(
            matches!(refused.status(), Some(409 | 412)),
            "{size} bytes: {refused}"
        );
        let stored = store.get(&name).await.unwrap().expect("the blob exists");
        assert!(
            stored == vec![1u8; size],
            "{size} bytes: the first file stays"
        );
    }
}
