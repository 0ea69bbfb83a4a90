//! Where the report storage is and how to reach it: parsed from an `AzureWebJobsStorage`-style
//! connection string, or an account URL used with an Entra credential.
//!
//! The connection-string grammar is the one every Azure SDK accepts: `key=value` pairs split by
//! `;`, keys case-insensitive, values may themselves contain `=` (base64 keys end in `==`).
//! `UseDevelopmentStorage=true` stands for Azurite on its default loopback ports.

use base64::Engine;
use url::Url;

/// The account name and key Azurite and the old storage emulator accept (public, documented).
pub const DEV_ACCOUNT: &str = "devstoreaccount1";
/// The well-known development key; it is not a secret, but it is handled like one.
pub const DEV_ACCOUNT_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// A storage account reached with its account key (connection string).
#[derive(Clone)]
pub struct KeyedAccount {
    pub account: String,
    /// The decoded account key.
    pub key: SecretBytes,
    /// Blob service endpoint without a trailing slash, e.g. `https://acct.blob.core.windows.net`
    /// or `http://127.0.0.1:10000/devstoreaccount1`.
    pub blob_endpoint: Url,
    /// Queue service endpoint, when the connection string names or implies one.
    pub queue_endpoint: Option<Url>,
}

impl std::fmt::Debug for KeyedAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyedAccount")
            .field("account", &self.account)
            .field("key", &"<redacted>")
            .field("blob_endpoint", &self.blob_endpoint.as_str())
            .field(
                "queue_endpoint",
                &self.queue_endpoint.as_ref().map(Url::as_str),
            )
            .finish()
    }
}

/// Key bytes that never print.
#[derive(Clone)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }
    /// The bytes. Use only to compute a signature.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBytes(<redacted>)")
    }
}

/// Why a connection string was refused. Never carries the string itself (it holds the key).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectionStringError {
    #[error("it is empty")]
    Empty,
    #[error("part {0} is not a key=value pair")]
    NotAPair(usize),
    #[error("it has no AccountName")]
    NoAccountName,
    #[error(
        "it has no AccountKey{0}: patreport signs its download links with the account key; \
         without one, use PATREPORT_STORAGE_ACCOUNT_URL with a managed identity instead"
    )]
    NoAccountKey(&'static str),
    #[error("its AccountKey is not valid base64")]
    KeyNotBase64,
    #[error("its {key} is not a valid URL")]
    BadEndpoint { key: &'static str },
    #[error(
        "its {key} uses http to a host that is not a local emulator; only https is allowed \
         outside loopback"
    )]
    InsecureEndpoint { key: &'static str },
    #[error("DefaultEndpointsProtocol must be https or http")]
    BadProtocol,
}

/// Parse a connection string (the value of `AzureWebJobsStorage`).
pub fn parse_connection_string(text: &str) -> Result<KeyedAccount, ConnectionStringError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(ConnectionStringError::Empty);
    }
    let mut pairs: Vec<(String, String)> = Vec::new();
    for (index, part) in text.split(';').enumerate() {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let (key, value) = part
            .split_once('=')
            .ok_or(ConnectionStringError::NotAPair(index + 1))?;
        pairs.push((key.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    let get = |key: &str| {
        pairs
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };

    if get("usedevelopmentstorage").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        // Azurite's defaults; `DevelopmentStorageProxyUri` only changes the host.
        let host = get("developmentstorageproxyuri")
            .and_then(|u| Url::parse(u).ok())
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_else(|| "127.0.0.1".to_owned());
        let endpoint = |port: u16| Url::parse(&format!("http://{host}:{port}/{DEV_ACCOUNT}"));
        let blob_endpoint = endpoint(10000).map_err(|_| ConnectionStringError::BadEndpoint {
            key: "DevelopmentStorageProxyUri",
        })?;
        let queue_endpoint = endpoint(10001).ok();
        return Ok(KeyedAccount {
            account: DEV_ACCOUNT.to_owned(),
            key: decode_key(DEV_ACCOUNT_KEY)?,
            blob_endpoint,
            queue_endpoint,
        });
    }

    let account = get("accountname")
        .filter(|a| !a.is_empty())
        .ok_or(ConnectionStringError::NoAccountName)?;
    let key = match get("accountkey").filter(|k| !k.is_empty()) {
        Some(key) => decode_key(key)?,
        None if get("sharedaccesssignature").is_some() => {
            return Err(ConnectionStringError::NoAccountKey(
                " (a SharedAccessSignature cannot sign links)",
            ));
        }
        None => return Err(ConnectionStringError::NoAccountKey("")),
    };
    let protocol = match get("defaultendpointsprotocol")
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("https") => "https",
        Some("http") => "http",
        Some(_) => return Err(ConnectionStringError::BadProtocol),
    };
    let suffix = get("endpointsuffix")
        .filter(|s| !s.is_empty())
        .unwrap_or("core.windows.net");
    let endpoint = |key: &'static str, service: &str| -> Result<Url, ConnectionStringError> {
        let text = match get(&key.to_ascii_lowercase()) {
            Some(explicit) if !explicit.is_empty() => explicit.to_owned(),
            _ => format!("{protocol}://{account}.{service}.{suffix}"),
        };
        let url = normalize_endpoint(&text).ok_or(ConnectionStringError::BadEndpoint { key })?;
        if url.scheme() == "http" && !is_local_emulator(&url) {
            return Err(ConnectionStringError::InsecureEndpoint { key });
        }
        Ok(url)
    };
    Ok(KeyedAccount {
        account: account.to_owned(),
        key,
        blob_endpoint: endpoint("BlobEndpoint", "blob")?,
        queue_endpoint: endpoint("QueueEndpoint", "queue").ok(),
    })
}

fn decode_key(key: &str) -> Result<SecretBytes, ConnectionStringError> {
    base64::engine::general_purpose::STANDARD
        .decode(key)
        .map(SecretBytes::new)
        .map_err(|_| ConnectionStringError::KeyNotBase64)
}

/// Parse an endpoint and drop a trailing `/` (the SDK appends path segments; `acct/` + `c`
/// would give `acct//c`) and any query or fragment.
pub fn normalize_endpoint(text: &str) -> Option<Url> {
    let mut url = Url::parse(text.trim()).ok()?;
    if !matches!(url.scheme(), "http" | "https")
        || url.cannot_be_a_base()
        || url.host_str().is_none()
    {
        return None;
    }
    url.set_query(None);
    url.set_fragment(None);
    let path = url.path().trim_end_matches('/').to_owned();
    url.set_path(&path);
    Some(url)
}

/// Plain http is allowed only to an emulator on this machine (or a container named `azurite`).
pub fn is_local_emulator(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => {
            name.eq_ignore_ascii_case("localhost") || name.eq_ignore_ascii_case("azurite")
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn development_storage_means_azurite_on_loopback() {
        let a = parse_connection_string("UseDevelopmentStorage=true").unwrap();
        assert_eq!(a.account, DEV_ACCOUNT);
        assert_eq!(
            a.blob_endpoint.as_str(),
            "http://127.0.0.1:10000/devstoreaccount1"
        );
        assert_eq!(
            a.queue_endpoint.unwrap().as_str(),
            "http://127.0.0.1:10001/devstoreaccount1"
        );
        assert_eq!(a.key.expose().len(), 64);
    }

    #[test]
    fn explicit_endpoints_win_and_keys_keep_their_equals_signs() {
        let text = format!(
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={DEV_ACCOUNT_KEY};\
             BlobEndpoint=http://127.0.0.1:41000/devstoreaccount1/;QueueEndpoint=http://127.0.0.1:41001/devstoreaccount1;"
        );
        let a = parse_connection_string(&text).unwrap();
        assert_eq!(
            a.blob_endpoint.as_str(),
            "http://127.0.0.1:41000/devstoreaccount1"
        );
        assert_eq!(
            a.queue_endpoint.unwrap().as_str(),
            "http://127.0.0.1:41001/devstoreaccount1"
        );
    }

    #[test]
    fn cloud_endpoints_are_derived_from_the_account_name() {
        let a = parse_connection_string(&format!(
            "DefaultEndpointsProtocol=https;AccountName=contoso;AccountKey={DEV_ACCOUNT_KEY};EndpointSuffix=core.windows.net"
        ))
        .unwrap();
        assert_eq!(
            a.blob_endpoint.as_str(),
            "https://contoso.blob.core.windows.net/"
        );
    }

    #[test]
    fn refusals_name_the_problem_and_never_echo_the_key() {
        let e =
            parse_connection_string("AccountName=contoso;SharedAccessSignature=sv=2022&sig=abc")
                .unwrap_err();
        assert!(e.to_string().contains("SharedAccessSignature"), "{e}");
        assert!(!e.to_string().contains("sig=abc"));
        let e = parse_connection_string("AccountName=contoso;AccountKey=not*base64").unwrap_err();
        assert_eq!(e, ConnectionStringError::KeyNotBase64);
        assert!(!e.to_string().contains("not*base64"));
        assert_eq!(
            parse_connection_string(" ").unwrap_err(),
            ConnectionStringError::Empty
        );
        assert_eq!(
            parse_connection_string("garbage").unwrap_err(),
            ConnectionStringError::NotAPair(1)
        );
        let e = parse_connection_string(&format!(
            "AccountName=contoso;AccountKey={DEV_ACCOUNT_KEY};BlobEndpoint=http://storage.example.com/x"
        ))
        .unwrap_err();
        assert_eq!(
            e,
            ConnectionStringError::InsecureEndpoint {
                key: "BlobEndpoint"
            }
        );
        assert!(
            !format!(
                "{:?}",
                parse_connection_string("UseDevelopmentStorage=true").unwrap()
            )
            .contains("Eby8")
        );
    }
}
