//! A client certificate as the API app's proof of identity, without OpenSSL: the app signs a
//! client assertion (RFC 7523 JWT) with the certificate's RSA private key, and Entra checks it
//! against the certificate uploaded to the app registration.
//!
//! Header `alg: RS256`, `typ: JWT`, `x5t#S256` = base64url(SHA-256 of the certificate DER);
//! claims `aud` = the token endpoint, `iss` = `sub` = the client id, a random `jti`,
//! `nbf` = `iat` = now, `exp` = now + 10 minutes. (`x5t`, the SHA-1 thumbprint, is left out:
//! Entra v2.0 accepts `x5t#S256` alone.)
//!
//! The private key stays inside [`jsonwebtoken::EncodingKey`]; no message names more than the
//! setting and the file.

use super::{AuthError, setting};
use crate::secret::Secret;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use sha2::{Digest, Sha256};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Lifetime of a signed assertion, seconds.
const ASSERTION_LIFETIME: u64 = 600;

/// The certificate (its SHA-256 thumbprint) and its private key.
#[derive(Clone)]
pub struct ClientCertificate {
    path: PathBuf,
    thumbprint_s256: String,
    key: Arc<EncodingKey>,
}

impl fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCertificate")
            .field("path", &self.path)
            .field("x5t#S256", &self.thumbprint_s256)
            .field("key", &"<redacted>")
            .finish()
    }
}

fn bad(path: &Path, problem: impl fmt::Display) -> AuthError {
    AuthError::BadSetting {
        setting: setting::API_CLIENT_CERTIFICATE,
        problem: format!("{}: {problem}", path.display()),
    }
}

/// The base64 body of the first PEM block whose label is one of `labels`.
fn pem_block<'a>(text: &'a str, labels: &[&'a str]) -> Option<(&'a str, String)> {
    labels.iter().find_map(|label| {
        let begin = format!("-----BEGIN {label}-----");
        let end = format!("-----END {label}-----");
        let start = text.find(&begin)? + begin.len();
        let stop = start + text[start..].find(&end)?;
        let body: String = text[start..stop]
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        Some((*label, body))
    })
}

impl ClientCertificate {
    /// Read a PEM file holding the certificate and its RSA private key (PKCS#8 or PKCS#1).
    pub fn from_file(path: &Path) -> Result<Self, AuthError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| bad(path, format_args!("could not read the file ({e})")))?;
        Self::from_pem(&text, path)
    }

    /// Parse PEM text; `path` only names it in errors.
    pub fn from_pem(text: &str, path: &Path) -> Result<Self, AuthError> {
        let (_, cert_b64) = pem_block(text, &["CERTIFICATE"])
            .ok_or_else(|| bad(path, "no -----BEGIN CERTIFICATE----- block"))?;
        let der = base64::engine::general_purpose::STANDARD
            .decode(cert_b64.as_bytes())
            .map_err(|_| bad(path, "the CERTIFICATE block is not valid base64"))?;
        let thumbprint_s256 =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(&der));
        if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
            return Err(bad(
                path,
                "the private key is encrypted; export it without a password (PKCS#8 or PKCS#1)",
            ));
        }
        let (label, key_b64) =
            pem_block(text, &["PRIVATE KEY", "RSA PRIVATE KEY"]).ok_or_else(|| {
                bad(
                    path,
                    "no private key: the file must hold the certificate and its RSA private key \
                     (-----BEGIN PRIVATE KEY----- or -----BEGIN RSA PRIVATE KEY-----)",
                )
            })?;
        // Rebuild a single-block PEM: jsonwebtoken reads the first block only.
        let key_pem = Secret::new(format!(
            "-----BEGIN {label}-----\n{key_b64}\n-----END {label}-----\n"
        ));
        let key = EncodingKey::from_rsa_pem(key_pem.expose().as_bytes())
            .map_err(|_| bad(path, "the private key is not a valid RSA private key"))?;
        Ok(Self {
            path: path.to_owned(),
            thumbprint_s256,
            key: Arc::new(key),
        })
    }

    /// base64url(SHA-256 of the certificate DER): the `x5t#S256` header.
    pub fn thumbprint_s256(&self) -> &str {
        &self.thumbprint_s256
    }

    /// A fresh client assertion for `client_id` at `token_url`.
    pub fn assertion(&self, client_id: &str, token_url: &str) -> Result<Secret, AuthError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let mut header = Header::new(Algorithm::RS256);
        header.typ = Some("JWT".into());
        header.x5t_s256 = Some(self.thumbprint_s256.clone());
        let claims = serde_json::json!({
            "aud": token_url,
            "iss": client_id,
            "sub": client_id,
            "jti": format!("{:032x}", fastrand::u128(..)),
            "nbf": now,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME,
        });
        jsonwebtoken::encode(&header, &claims, &self.key)
            .map(Secret::new)
            .map_err(|e| {
                bad(
                    &self.path,
                    format_args!("could not sign the client assertion ({:?})", e.kind()),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_setting_and_file_only() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let e = ClientCertificate::from_file(&missing)
            .unwrap_err()
            .to_string();
        assert!(e.contains(setting::API_CLIENT_CERTIFICATE), "{e}");
        assert!(e.contains("missing.pem"), "{e}");

        let key_only =
            "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1ieXRlcw==\n-----END PRIVATE KEY-----\n";
        let e = ClientCertificate::from_pem(key_only, Path::new("k.pem"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("CERTIFICATE") && e.contains("k.pem"), "{e}");

        let bad_key =
            format!("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n{key_only}");
        let e = ClientCertificate::from_pem(&bad_key, Path::new("k.pem"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a valid RSA private key"), "{e}");
        assert!(!e.contains("c2VjcmV0"), "{e}");

        let no_key = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        let e = ClientCertificate::from_pem(no_key, Path::new("k.pem"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("no private key"), "{e}");
    }
}
