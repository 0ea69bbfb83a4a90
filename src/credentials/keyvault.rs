//! The stored sign-in in Key Vault, through the GA `azure_security_keyvault_secrets` 1.x client
//! (same azure_core family as the rest).
//!
//! The secret's value is the refresh token; its tags say who signed in, with which login app
//! and tenant (not secret, and handy in the portal). Access needs the *Key Vault Secrets
//! Officer* role (read and write: each run writes back the rotated refresh token), or an access
//! policy with Get and Set on secrets.

use super::refresh::{RefreshTokenStore, StoredSignIn};
use super::{AuthError, AuthRuntime};
use crate::secret::Secret;
use azure_core::credentials::TokenCredential;
use azure_core::http::ClientOptions;
use azure_security_keyvault_secrets::models::SetSecretParameters;
use azure_security_keyvault_secrets::{SecretClient, SecretClientOptions};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use url::Url;

const CONTENT_TYPE: &str = "application/vnd.patreport.refresh-token";
const TAG_CLIENT_ID: &str = "client-id";
const TAG_TENANT_ID: &str = "tenant-id";
const TAG_USER: &str = "signed-in-as";
const TAG_WRITER: &str = "written-by";

/// `https://NAME.vault.azure.net` (or a sovereign cloud's vault host).
pub fn parse_vault_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text.trim()).map_err(|e| format!("'{text}' is not a URL ({e})"))?;
    if url.scheme() != "https" || url.host_str().is_none() {
        return Err(format!(
            "'{text}' must be the vault's https URL, e.g. https://myvault.vault.azure.net"
        ));
    }
    Ok(url)
}

/// Key Vault secret names: 1-127 letters, digits and dashes.
pub fn valid_secret_name(name: &str) -> bool {
    (1..=127).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

pub struct KeyVaultStore {
    client: SecretClient,
    vault: Url,
    name: String,
}

impl fmt::Debug for KeyVaultStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

impl KeyVaultStore {
    /// `credential` is the identity that reads and writes the secret (scope
    /// `https://vault.azure.net/.default`; the client learns it from the vault's challenge).
    pub fn new(
        vault: &Url,
        name: &str,
        credential: Arc<dyn TokenCredential>,
        runtime: &AuthRuntime,
    ) -> Result<Self, AuthError> {
        if !valid_secret_name(name) {
            return Err(AuthError::BadSetting {
                setting: super::setting::REFRESH_TOKEN_SECRET,
                problem: format!("'{name}' is not a Key Vault secret name"),
            });
        }
        let options = SecretClientOptions {
            client_options: ClientOptions {
                transport: Some(azure_core::http::Transport::new(Arc::new(
                    runtime.http().clone(),
                ))),
                ..Default::default()
            },
            ..Default::default()
        };
        let client = SecretClient::new(vault.as_str(), credential, Some(options)).map_err(|e| {
            AuthError::BadSetting {
                setting: super::setting::KEY_VAULT_URL,
                problem: crate::ado::error::error_chain(&e),
            }
        })?;
        Ok(Self {
            client,
            vault: vault.clone(),
            name: name.to_owned(),
        })
    }

    fn failure(&self, action: &'static str, e: &azure_core::Error) -> AuthError {
        use azure_core::error::ErrorKind;
        let detail = crate::ado::error::error_chain(e);
        let detail = match e.kind() {
            ErrorKind::HttpResponse { status, .. } if matches!(u16::from(*status), 401 | 403) => {
                format!(
                    "{detail}. The identity patreport uses for Key Vault (PATREPORT_VAULT_AUTH) \
                     needs the Key Vault Secrets Officer role on the vault (or an access policy \
                     with Get and Set on secrets)"
                )
            }
            _ => detail,
        };
        AuthError::Vault {
            action,
            store: self.describe(),
            detail,
        }
    }
}

#[async_trait::async_trait]
impl RefreshTokenStore for KeyVaultStore {
    fn describe(&self) -> String {
        format!(
            "Key Vault secret '{}' in {}",
            self.name,
            self.vault.as_str().trim_end_matches('/')
        )
    }

    async fn load(&self) -> Result<StoredSignIn, AuthError> {
        let response = match self.client.get_secret(&self.name, None).await {
            Ok(r) => r,
            Err(e) => {
                if let azure_core::error::ErrorKind::HttpResponse { status, .. } = e.kind()
                    && u16::from(*status) == 404
                {
                    return Err(AuthError::NoStoredSignIn {
                        store: self.describe(),
                    });
                }
                return Err(self.failure("reading", &e));
            }
        };
        let secret = response
            .into_model()
            .map_err(|e| self.failure("reading", &e))?;
        let Some(value) = secret.value.filter(|v| !v.trim().is_empty()) else {
            return Err(AuthError::NoStoredSignIn {
                store: self.describe(),
            });
        };
        let tags = secret.tags.unwrap_or_default();
        Ok(StoredSignIn {
            refresh_token: Secret::new(value.trim()),
            client_id: tags.get(TAG_CLIENT_ID).cloned(),
            tenant_id: tags.get(TAG_TENANT_ID).cloned(),
            user: tags.get(TAG_USER).cloned(),
        })
    }

    async fn save(&self, sign_in: &StoredSignIn) -> Result<(), AuthError> {
        let mut tags = HashMap::new();
        tags.insert(TAG_WRITER.to_owned(), "patreport".to_owned());
        if let Some(v) = &sign_in.client_id {
            tags.insert(TAG_CLIENT_ID.to_owned(), v.clone());
        }
        if let Some(v) = &sign_in.tenant_id {
            tags.insert(TAG_TENANT_ID.to_owned(), v.clone());
        }
        if let Some(v) = &sign_in.user {
            tags.insert(TAG_USER.to_owned(), v.clone());
        }
        let parameters = SetSecretParameters {
            content_type: Some(CONTENT_TYPE.to_owned()),
            tags: Some(tags),
            value: Some(sign_in.refresh_token.expose().to_owned()),
            ..Default::default()
        };
        let body = parameters
            .try_into()
            .map_err(|e: azure_core::Error| self.failure("writing", &e))?;
        self.client
            .set_secret(&self.name, body, None)
            .await
            .map_err(|e| self.failure("writing", &e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vault_urls_and_secret_names() {
        assert!(parse_vault_url("https://v.vault.azure.net").is_ok());
        assert!(parse_vault_url("http://v.vault.azure.net").is_err());
        assert!(valid_secret_name("patreport-refresh-token"));
        assert!(!valid_secret_name("no_underscores"));
        assert!(!valid_secret_name(""));
    }
}
