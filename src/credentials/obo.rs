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
use super::certificate::ClientCertificate;
use super::{AuthError, AuthMode, AuthRuntime, CredentialSettings, setting};
use crate::ado::AdoCredential;
use crate::entra::{Entra, EntraError, JWT_BEARER_ASSERTION};
use crate::secret::Secret;
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
    ) -> Result<crate::entra::TokenResponse, AuthError> {
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
        settings: &CredentialSettings,
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

    /// For the HTTP path: exchange the caller's token now, so a refusal (no consent, expired
    /// token) is the answer to the request instead of a failed run later. `token` is the
    /// caller's Entra access token (`Authorization: Bearer`, or App Service Authentication's
    /// token store), `None` when the request carried none.
    pub async fn credential_for(&self, token: Option<Secret>) -> Result<AdoCredential, Refused> {
        let token = token.ok_or_else(|| {
            Refused::CallerToken(
                "on-behalf-of needs the caller's Entra access token (Authorization: Bearer, or \
                 X-MS-TOKEN-AAD-ACCESS-TOKEN with App Service Authentication's token store)"
                    .into(),
            )
        })?;
        let credential = self.credential(token);
        let scopes = [crate::entra::ADO_SCOPE];
        let first = credential.fetch(&scopes).await.map_err(|e| refusal(&e))?;
        credential.cache.insert(&scopes, first).await;
        Ok(AdoCredential::Token(credential))
    }
}

/// Why the caller's token could not be exchanged, by whose fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// The caller's token is missing, expired or not acceptable: the caller must sign in again.
    #[error("{0}")]
    CallerToken(String),
    /// Entra refused to act for this caller (no consent, conditional access, ...).
    #[error("{0}")]
    NotPermitted(String),
    /// The app cannot prove itself, or Entra is unreachable: not the caller's fault.
    #[error("{0}")]
    Unavailable(String),
}

/// Sort a failed exchange by whose fault it is. The messages are ours (no token in them).
fn refusal(e: &AuthError) -> Refused {
    let reason = format!("could not act for the caller: {e}");
    match e {
        AuthError::Entra(EntraError::Refused(r))
            if [500133, 50013, 50027, 50132, 50133]
                .iter()
                .any(|c| r.has_code(*c)) =>
        {
            Refused::CallerToken(reason)
        }
        AuthError::Entra(EntraError::Refused(r))
            if r.error == "invalid_client" || r.error == "unauthorized_client" =>
        {
            Refused::Unavailable(reason)
        }
        AuthError::Entra(EntraError::Refused(_)) => Refused::NotPermitted(reason),
        AuthError::Entra(_) | AuthError::Credential { .. } | AuthError::Setup(_) => {
            Refused::Unavailable(reason)
        }
        _ => Refused::NotPermitted(reason),
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
