//! On-behalf-of: an HTTP caller's Entra access token (audience: the patreport API app) is
//! exchanged at the tenant's token endpoint for an Azure DevOps token, so the run carries the
//! caller's own rights and Azure DevOps decides what they may see.
//!
//! `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`, `requested_token_use=on_behalf_of`,
//! `assertion=<caller token>`; the API app proves itself with a client secret, or with a
//! managed identity token as client assertion (a federated identity credential on the app
//! registration: no secret to rotate), or with a certificate: a client assertion signed with
//! its private key ([`super::certificate`], no OpenSSL needed).
//! `offline_access` is asked for too, so a run that outlives the first Azure DevOps token
//! renews it with the refresh token instead of the (by then maybe expired) caller token.

use super::app::ManagedIdentityAssertion;
use super::cache::TokenCache;
use super::caller::{Caller, Denied, bearer_token};
use super::certificate::ClientCertificate;
use super::entra::{Entra, EntraError, JWT_BEARER_ASSERTION};
use super::{AuthError, AuthMode, AuthRuntime, AuthSettings, setting};
use crate::ado::AdoCredential;
use crate::secret::Secret;
use axum::http::HeaderMap;
use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use std::fmt;
use std::sync::Arc;

const FLOW: &str = "on-behalf-of exchange";

/// How the API app proves itself to Entra.
#[derive(Clone)]
pub enum AppProof {
    ClientSecret(Secret),
    /// A managed identity trusted by the app registration (federated identity credential).
    ManagedIdentity(ManagedIdentityAssertion),
    /// A certificate uploaded to the app registration; we sign assertions with its key.
    Certificate(ClientCertificate),
}

impl fmt::Debug for AppProof {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AppProof::ClientSecret(_) => f.write_str("ClientSecret(<redacted>)"),
            AppProof::ManagedIdentity(_) => f.write_str("ManagedIdentity"),
            AppProof::Certificate(c) => write!(f, "Certificate({})", c.thumbprint_s256()),
        }
    }
}

#[derive(Debug)]
struct ApiApp {
    entra: Entra,
    client_id: String,
    proof: AppProof,
}

impl ApiApp {
    /// Post `form` plus the app's proof of identity.
    async fn token(
        &self,
        flow: &'static str,
        form: &[(&str, &str)],
    ) -> Result<super::entra::TokenResponse, AuthError> {
        let mut full: Vec<(&str, &str)> = vec![("client_id", self.client_id.as_str())];
        full.extend_from_slice(form);
        let assertion = match &self.proof {
            AppProof::ClientSecret(secret) => {
                full.push(("client_secret", secret.expose()));
                None
            }
            AppProof::ManagedIdentity(mi) => {
                Some(mi.assertion().await.map_err(|e| AuthError::Credential {
                    mode: "on-behalf-of (managed identity as federated credential)",
                    detail: crate::ado::error::error_chain(&e),
                })?)
            }
            AppProof::Certificate(certificate) => {
                Some(certificate.assertion(&self.client_id, self.entra.token_url().as_str())?)
            }
        };
        if let Some(assertion) = &assertion {
            full.push(("client_assertion_type", JWT_BEARER_ASSERTION));
            full.push(("client_assertion", assertion.expose()));
        }
        Ok(self.entra.token(flow, &full).await?)
    }
}

/// The on-behalf-of exchange of the patreport API app. Cheap to clone; build once at start-up.
#[derive(Debug, Clone)]
pub struct OnBehalfOf {
    app: Arc<ApiApp>,
}

impl OnBehalfOf {
    pub fn new(entra: Entra, api_client_id: impl Into<String>, proof: AppProof) -> Self {
        Self {
            app: Arc::new(ApiApp {
                entra,
                client_id: api_client_id.into(),
                proof,
            }),
        }
    }

    /// From the settings: `AZURE_TENANT_ID`, `PATREPORT_API_CLIENT_ID`, and
    /// `PATREPORT_API_CLIENT_SECRET`, else `PATREPORT_API_CLIENT_CERTIFICATE`, else the managed
    /// identity (`AZURE_CLIENT_ID` for a user-assigned one) as federated credential.
    pub fn from_settings(
        settings: &AuthSettings,
        runtime: &AuthRuntime,
    ) -> Result<Self, AuthError> {
        let mut settings = settings.clone();
        settings.mode = AuthMode::OnBehalfOf;
        let entra = settings.entra(runtime)?;
        let client_id = settings
            .api_client_id
            .clone()
            .ok_or(AuthError::MissingSetting {
                mode: "on-behalf-of",
                setting: setting::API_CLIENT_ID,
                why: "the application (client) id of the patreport API app registration",
            })?;
        let proof = match (
            &settings.api_client_secret,
            &settings.api_client_certificate,
        ) {
            (Some(secret), _) => AppProof::ClientSecret(secret.clone()),
            (None, Some(path)) => AppProof::Certificate(ClientCertificate::from_file(path)?),
            (None, None) => AppProof::ManagedIdentity(ManagedIdentityAssertion::new(
                super::app::managed_identity(
                    settings.client_id.as_deref(),
                    runtime,
                    &settings.authority_host,
                )?,
            )),
        };
        Ok(Self::new(entra, client_id, proof))
    }

    /// [`Self::from_settings`] with the process environment.
    pub fn from_env(runtime: &AuthRuntime) -> Result<Self, AuthError> {
        Self::from_settings(
            &AuthSettings::from_env(AuthMode::OnBehalfOf, None)?,
            runtime,
        )
    }

    /// A credential acting for the holder of `user_token`; nothing is exchanged until the first
    /// token request.
    pub fn credential(&self, user_token: Secret) -> Arc<OnBehalfOfCredential> {
        Arc::new(OnBehalfOfCredential {
            app: self.app.clone(),
            assertion: user_token,
            refresh: tokio::sync::Mutex::new(None),
            cache: TokenCache::new(),
        })
    }

    /// For the HTTP path: exchange the authorized caller's token now, so a refusal (no consent,
    /// expired token) is answered to the request instead of failing the run later.
    /// The caller's token comes from `Authorization: Bearer` or `X-MS-TOKEN-AAD-ACCESS-TOKEN`.
    pub async fn credential_for(&self, caller: &Caller) -> Result<AdoCredential, Denied> {
        let token = caller.access_token().cloned().ok_or_else(|| {
            Denied::Unauthenticated(
                "on-behalf-of needs the caller's Entra access token (Authorization: Bearer, or \
                 X-MS-TOKEN-AAD-ACCESS-TOKEN with App Service Authentication's token store)"
                    .into(),
            )
        })?;
        self.exchange_now(token).await
    }

    /// Like [`Self::credential_for`] for a request whose caller was authorized elsewhere.
    pub async fn credential_from_headers(
        &self,
        headers: &HeaderMap,
    ) -> Result<AdoCredential, Denied> {
        let token = bearer_token(headers).ok_or_else(|| {
            Denied::Unauthenticated(
                "on-behalf-of needs the caller's Entra access token in Authorization: Bearer"
                    .into(),
            )
        })?;
        self.exchange_now(token).await
    }

    async fn exchange_now(&self, token: Secret) -> Result<AdoCredential, Denied> {
        let credential = self.credential(token);
        let scopes = [super::entra::ADO_SCOPE];
        let first = credential.fetch(&scopes).await.map_err(|e| denial(&e))?;
        credential.cache.insert(&scopes, first).await;
        Ok(AdoCredential::Token(credential))
    }
}

/// The HTTP answer for a failed exchange. The messages are ours (no token in them).
fn denial(e: &AuthError) -> Denied {
    let reason = format!("could not act for the caller: {e}");
    match e {
        AuthError::Entra(EntraError::Refused(r))
            if [500133, 50013, 50027, 50132, 50133]
                .iter()
                .any(|c| r.has_code(*c)) =>
        {
            Denied::Unauthenticated(reason)
        }
        // The app itself cannot prove its identity, or Entra is unreachable: not the caller's fault.
        AuthError::Entra(EntraError::Refused(r))
            if r.error == "invalid_client" || r.error == "unauthorized_client" =>
        {
            Denied::Unavailable(reason)
        }
        AuthError::Entra(EntraError::Refused(_)) => Denied::Forbidden(reason),
        AuthError::Entra(_) | AuthError::Credential { .. } | AuthError::Setup(_) => {
            Denied::Unavailable(reason)
        }
        _ => Denied::Forbidden(reason),
    }
}

/// Acts for one caller. Holds the caller's token, the Azure DevOps tokens and the refresh token
/// of the exchange, all in memory only.
pub struct OnBehalfOfCredential {
    app: Arc<ApiApp>,
    assertion: Secret,
    refresh: tokio::sync::Mutex<Option<Secret>>,
    cache: TokenCache,
}

impl fmt::Debug for OnBehalfOfCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OnBehalfOfCredential")
            .field("app", &self.app.client_id)
            .finish_non_exhaustive()
    }
}

impl OnBehalfOfCredential {
    async fn fetch(&self, scopes: &[&str]) -> Result<AccessToken, AuthError> {
        let scope = format!("{} offline_access", scopes.join(" "));
        let mut refresh = self.refresh.lock().await;
        if let Some(rt) = refresh.clone() {
            let renewed = self
                .app
                .token(
                    "on-behalf-of renewal",
                    &[
                        ("grant_type", "refresh_token"),
                        ("refresh_token", rt.expose()),
                        ("scope", scope.as_str()),
                    ],
                )
                .await;
            match renewed {
                Ok(answer) => {
                    if let Some(rotated) = answer.refresh_token.clone() {
                        *refresh = Some(rotated);
                    }
                    return Ok(answer.access_token());
                }
                // Fall back to a new exchange while the caller's token may still be valid.
                Err(e) => tracing::warn!("renewing the on-behalf-of token failed: {e}"),
            }
        }
        let answer = self
            .app
            .token(
                FLOW,
                &[
                    ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                    ("requested_token_use", "on_behalf_of"),
                    ("assertion", self.assertion.expose()),
                    ("scope", scope.as_str()),
                ],
            )
            .await?;
        *refresh = answer.refresh_token.clone();
        Ok(answer.access_token())
    }
}

#[async_trait::async_trait]
impl TokenCredential for OnBehalfOfCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        self.cache
            .get_or_fetch(scopes, || async {
                self.fetch(scopes).await.map_err(azure_core::Error::from)
            })
            .await
    }
}
