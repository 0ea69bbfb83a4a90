//! The stored delegated sign-in: a refresh token (from `patreport login`) redeemed for Azure
//! DevOps tokens, with the rotated refresh token written back after each redemption.
//!
//! For tenants that do not let a service principal administer tokens: the scheduled run acts as
//! the admin who signed in. Entra rotates the refresh token on every redemption and the old one
//! keeps working until it expires (90 days of inactivity by default), so a failed write-back is
//! a warning, not a failure. An expired or revoked sign-in (`invalid_grant`, AADSTS700082,
//! 50173, …) becomes [`AuthError::SignInExpired`], whose message says to run `patreport login`.

use super::AuthError;
use super::cache::TokenCache;
use crate::entra::{Entra, EntraError};
use crate::secret::Secret;
use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use std::fmt;
use std::sync::Arc;

/// A stored sign-in: the refresh token, and (not secret) who it belongs to.
#[derive(Clone)]
pub struct StoredSignIn {
    pub refresh_token: Secret,
    /// The login app the token was issued to (a refresh token works only with that client id).
    pub client_id: Option<String>,
    pub tenant_id: Option<String>,
    /// The user's sign-in name, for messages.
    pub user: Option<String>,
}

impl fmt::Debug for StoredSignIn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredSignIn")
            .field("refresh_token", &self.refresh_token)
            .field("client_id", &self.client_id)
            .field("tenant_id", &self.tenant_id)
            .field("user", &self.user)
            .finish()
    }
}

/// Where the refresh token lives between runs.
#[async_trait::async_trait]
pub trait RefreshTokenStore: Send + Sync {
    /// Names the place in messages, e.g. "Key Vault secret 'x' in `https://v.vault.azure.net`".
    fn describe(&self) -> String;
    async fn load(&self) -> Result<StoredSignIn, AuthError>;
    async fn save(&self, sign_in: &StoredSignIn) -> Result<(), AuthError>;
}

/// A store in memory (device-code sign-ins, tests).
#[derive(Default)]
pub struct MemoryStore {
    value: std::sync::Mutex<Option<StoredSignIn>>,
}

impl MemoryStore {
    pub fn new(sign_in: Option<StoredSignIn>) -> Self {
        Self {
            value: std::sync::Mutex::new(sign_in),
        }
    }

    pub fn get(&self) -> Option<StoredSignIn> {
        self.value.lock().ok().and_then(|v| v.clone())
    }
}

#[async_trait::async_trait]
impl RefreshTokenStore for MemoryStore {
    fn describe(&self) -> String {
        "the in-memory sign-in".into()
    }

    async fn load(&self) -> Result<StoredSignIn, AuthError> {
        self.get().ok_or_else(|| AuthError::NoStoredSignIn {
            store: self.describe(),
        })
    }

    async fn save(&self, sign_in: &StoredSignIn) -> Result<(), AuthError> {
        if let Ok(mut v) = self.value.lock() {
            *v = Some(sign_in.clone());
        }
        Ok(())
    }
}

/// Redeems the stored refresh token of a public client app (`client_id`).
pub struct RefreshTokenCredential {
    entra: Entra,
    client_id: String,
    store: Arc<dyn RefreshTokenStore>,
    /// The newest refresh token, once loaded: later redemptions in this process use it.
    current: tokio::sync::Mutex<Option<StoredSignIn>>,
    cache: TokenCache,
}

impl fmt::Debug for RefreshTokenCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshTokenCredential")
            .field("entra", &self.entra)
            .field("client_id", &self.client_id)
            .field("store", &self.store.describe())
            .finish_non_exhaustive()
    }
}

impl RefreshTokenCredential {
    pub fn new(entra: Entra, client_id: String, store: Arc<dyn RefreshTokenStore>) -> Arc<Self> {
        Arc::new(Self {
            entra,
            client_id,
            store,
            current: tokio::sync::Mutex::new(None),
            cache: TokenCache::new(),
        })
    }

    /// The newest sign-in this credential holds (after at least one redemption).
    pub async fn current(&self) -> Option<StoredSignIn> {
        self.current.lock().await.clone()
    }

    /// Redeem the refresh token for `scopes` (no cache), rotating the stored token.
    pub async fn redeem(&self, scopes: &[&str]) -> Result<AccessToken, AuthError> {
        let mut current = self.current.lock().await;
        let sign_in = match current.as_ref() {
            Some(s) => s.clone(),
            None => self.store.load().await?,
        };
        if let Some(stored_for) = &sign_in.client_id
            && stored_for != &self.client_id
        {
            return Err(AuthError::SignInExpired {
                store: self.store.describe(),
                detail: format!(
                    "it was made with the login app {stored_for}, but PATREPORT_LOGIN_CLIENT_ID is {}",
                    self.client_id
                ),
            });
        }
        // offline_access asks for the rotated refresh token alongside the access token.
        let scope = format!("{} offline_access", scopes.join(" "));
        let answer = self
            .entra
            .token(
                "refresh-token redemption",
                &[
                    ("client_id", self.client_id.as_str()),
                    ("grant_type", "refresh_token"),
                    ("refresh_token", sign_in.refresh_token.expose()),
                    ("scope", scope.as_str()),
                ],
            )
            .await
            .map_err(|e| self.sign_in_error(e))?;
        let token = answer.access_token();
        match answer.refresh_token {
            Some(rotated) if rotated != sign_in.refresh_token => {
                let rotated = StoredSignIn {
                    refresh_token: rotated,
                    ..sign_in
                };
                *current = Some(rotated.clone());
                if let Err(e) = self.store.save(&rotated).await {
                    tracing::warn!(
                        "could not write back the rotated refresh token ({e}); the previous one \
                         stays valid until it expires"
                    );
                }
            }
            _ => *current = Some(sign_in),
        }
        Ok(token)
    }

    fn sign_in_error(&self, e: EntraError) -> AuthError {
        match e.refusal() {
            Some(r) if r.needs_new_sign_in() => AuthError::SignInExpired {
                store: self.store.describe(),
                detail: if r.description.is_empty() {
                    r.error.clone()
                } else {
                    format!("{}: {}", r.error, r.description)
                },
            },
            _ => AuthError::Entra(e),
        }
    }
}

#[async_trait::async_trait]
impl TokenCredential for RefreshTokenCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        self.cache
            .get_or_fetch(scopes, || async {
                self.redeem(scopes).await.map_err(azure_core::Error::from)
            })
            .await
    }
}
