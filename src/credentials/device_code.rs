//! The device-code sign-in of `patreport login` (RFC 8628 as Entra implements it).
//!
//! The admin opens the verification page on any device, enters the code and signs in; we poll
//! the token endpoint at the interval Entra asks for (`authorization_pending` → wait,
//! `slow_down` → wait longer, `expired_token` → the code ran out). The answer carries the
//! refresh token that `patreport login` stores in Key Vault for the refresh-token mode.
//!
//! [`DeviceCodeCredential`] wraps the flow as a `TokenCredential`: the first token request runs
//! the sign-in (showing the prompt), later ones redeem the refresh token it obtained.

use super::AuthError;
use super::refresh::{MemoryStore, RefreshTokenCredential, RefreshTokenStore, StoredSignIn};
use crate::entra::{ADO_SCOPE, DeviceCodeResponse, Entra, EntraError, user_name_of};
use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
const FLOW: &str = "device-code sign-in";

/// The device-code flow of one public client app.
#[derive(Debug, Clone)]
pub struct DeviceCodeLogin {
    entra: Entra,
    client_id: String,
    scope: String,
    /// Never poll faster than this, whatever the server says (Entra says 5 s).
    pub min_interval: Duration,
    /// Added to the interval on `slow_down` (RFC 8628 §3.5: 5 seconds).
    pub slow_down_step: Duration,
}

/// A finished sign-in.
pub struct SignedIn {
    /// An Azure DevOps token (proves consent to `user_impersonation` was given).
    pub access_token: AccessToken,
    pub sign_in: StoredSignIn,
}

impl fmt::Debug for SignedIn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedIn")
            .field("sign_in", &self.sign_in)
            .finish_non_exhaustive()
    }
}

impl DeviceCodeLogin {
    /// Signs in for Azure DevOps with a refresh token (`offline_access`) and the user's name
    /// (`openid profile`).
    pub fn new(entra: Entra, client_id: impl Into<String>) -> Self {
        Self {
            entra,
            client_id: client_id.into(),
            scope: format!("{ADO_SCOPE} offline_access openid profile"),
            min_interval: Duration::from_secs(1),
            slow_down_step: Duration::from_secs(5),
        }
    }

    /// Ask Entra for a user code; show `message` (or the code and page) to the user.
    pub async fn start(&self) -> Result<DeviceCodeResponse, AuthError> {
        self.entra
            .device_code(&self.client_id, &self.scope)
            .await
            .map_err(AuthError::Entra)
    }

    /// Poll until the user has signed in, declined, or the code expired.
    pub async fn finish(&self, started: &DeviceCodeResponse) -> Result<SignedIn, AuthError> {
        let deadline = Instant::now() + started.expires_in;
        let mut interval = started.interval.max(self.min_interval);
        loop {
            tokio::time::sleep(interval).await;
            if Instant::now() >= deadline {
                return Err(expired());
            }
            let answer = self
                .entra
                .token(
                    FLOW,
                    &[
                        ("grant_type", DEVICE_CODE_GRANT),
                        ("client_id", self.client_id.as_str()),
                        ("device_code", started.device_code.expose()),
                    ],
                )
                .await;
            let refusal = match answer {
                Ok(answer) => {
                    let Some(refresh_token) = answer.refresh_token.clone() else {
                        return Err(AuthError::DeviceCode(
                            "Entra answered without a refresh token: the login app must allow the \
                             offline_access permission"
                                .into(),
                        ));
                    };
                    let user = answer
                        .id_token
                        .as_ref()
                        .and_then(|t| user_name_of(t.expose()))
                        .or_else(|| user_name_of(answer.access_token.expose()));
                    return Ok(SignedIn {
                        access_token: answer.access_token(),
                        sign_in: StoredSignIn {
                            refresh_token,
                            client_id: Some(self.client_id.clone()),
                            tenant_id: Some(self.entra.tenant().to_owned()),
                            user,
                        },
                    });
                }
                Err(EntraError::Refused(r)) => r,
                Err(other) => return Err(AuthError::Entra(other)),
            };
            match refusal.error.as_str() {
                "authorization_pending" => {}
                "slow_down" => interval += self.slow_down_step,
                "expired_token" | "code_expired" => return Err(expired()),
                "authorization_declined" | "access_denied" => {
                    return Err(AuthError::DeviceCode(
                        "the sign-in was declined; run `patreport login` again".into(),
                    ));
                }
                "bad_verification_code" => {
                    return Err(AuthError::DeviceCode(
                        "Entra does not know this device code; run `patreport login` again".into(),
                    ));
                }
                _ if refusal.has_code(70020) => return Err(expired()),
                _ => return Err(AuthError::Entra(EntraError::Refused(refusal))),
            }
        }
    }
}

fn expired() -> AuthError {
    AuthError::DeviceCode(
        "the code expired before the sign-in was completed; run `patreport login` again and \
         finish within the time shown"
            .into(),
    )
}

/// Shows the device-code instruction to the user.
pub type Prompt = Arc<dyn Fn(&DeviceCodeResponse) + Send + Sync>;

/// The device-code flow as a `TokenCredential`.
pub struct DeviceCodeCredential {
    login: DeviceCodeLogin,
    prompt: Prompt,
    store: Arc<MemoryStore>,
    signed_in: tokio::sync::Mutex<Option<Arc<RefreshTokenCredential>>>,
}

impl fmt::Debug for DeviceCodeCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceCodeCredential")
            .field("login", &self.login)
            .finish_non_exhaustive()
    }
}

impl DeviceCodeCredential {
    pub fn new(login: DeviceCodeLogin, prompt: Prompt) -> Arc<Self> {
        Arc::new(Self {
            login,
            prompt,
            store: Arc::new(MemoryStore::default()),
            signed_in: tokio::sync::Mutex::new(None),
        })
    }

    /// The refresh-token credential, signing in first when needed.
    async fn session(&self) -> Result<Arc<RefreshTokenCredential>, AuthError> {
        let mut signed_in = self.signed_in.lock().await;
        if let Some(session) = signed_in.as_ref() {
            return Ok(session.clone());
        }
        let started = self.login.start().await?;
        (self.prompt)(&started);
        let done = self.login.finish(&started).await?;
        self.store
            .save(&done.sign_in)
            .await
            .map_err(|e| AuthError::DeviceCode(e.to_string()))?;
        let session = RefreshTokenCredential::new(
            self.login.entra.clone(),
            self.login.client_id.clone(),
            self.store.clone(),
        );
        *signed_in = Some(session.clone());
        Ok(session)
    }

    /// The newest sign-in (refresh token and user), signing in first when needed.
    pub async fn sign_in(&self) -> Result<StoredSignIn, AuthError> {
        let session = self.session().await?;
        match session.current().await {
            Some(s) => Ok(s),
            None => self.store.load().await,
        }
    }
}

#[async_trait::async_trait]
impl TokenCredential for DeviceCodeCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        let session = self.session().await?;
        session.get_token(scopes, options).await
    }
}
