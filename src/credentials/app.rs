//! The application's own identities, through azure_identity 1.x: managed identity, service
//! principal with a client secret, workload identity federation, and the developer's Azure CLI
//! sign-in. Each is wrapped in the [`CachedCredential`] so long runs renew tokens in time.
//!
//! Client certificates are not offered: azure_identity's `ClientCertificateCredential` needs
//! OpenSSL, which this build avoids (rustls only). A managed identity used as a federated
//! credential gives the same "no secret" property without a certificate. (On-behalf-of signs its
//! own certificate assertions, see [`super::certificate`].)

use super::cache::CachedCredential;
use super::{AuthError, AuthRuntime};
use crate::entra::TOKEN_EXCHANGE_SCOPE;
use crate::secret::Secret;
use azure_core::credentials::TokenCredential;
use azure_core::http::ClientMethodOptions;
use azure_identity::{
    AzureCliCredential, AzureCliCredentialOptions, ClientAssertion,
    ClientAssertionCredentialOptions, ClientSecretCredential, ClientSecretCredentialOptions,
    DeveloperToolsCredential, DeveloperToolsCredentialOptions, ManagedIdentityCredential,
    ManagedIdentityCredentialOptions, UserAssignedId, WorkloadIdentityCredential,
    WorkloadIdentityCredentialOptions,
};
use std::path::Path;
use std::sync::Arc;
use url::Url;

fn setup(what: &'static str, e: azure_core::Error) -> AuthError {
    AuthError::Credential {
        mode: what,
        detail: crate::ado::error::error_chain(&e),
    }
}

/// The raw managed identity credential (App Service / Functions `IDENTITY_ENDPOINT` +
/// `IDENTITY_HEADER`, or IMDS on a VM). `client_id` selects a user-assigned identity.
pub(crate) fn managed_identity_raw(
    client_id: Option<&str>,
    runtime: &AuthRuntime,
    authority: &Url,
) -> Result<Arc<dyn TokenCredential>, AuthError> {
    let options = ManagedIdentityCredentialOptions {
        user_assigned_id: client_id.map(|id| UserAssignedId::ClientId(id.to_owned())),
        client_options: runtime.client_options(authority),
    };
    let credential =
        ManagedIdentityCredential::new(Some(options)).map_err(|e| setup("managed-identity", e))?;
    Ok(credential)
}

pub(crate) fn managed_identity(
    client_id: Option<&str>,
    runtime: &AuthRuntime,
    authority: &Url,
) -> Result<Arc<dyn TokenCredential>, AuthError> {
    Ok(CachedCredential::new(
        "managed-identity",
        managed_identity_raw(client_id, runtime, authority)?,
    ))
}

pub(crate) fn client_secret(
    tenant: &str,
    client_id: &str,
    secret: &Secret,
    runtime: &AuthRuntime,
    authority: &Url,
) -> Result<Arc<dyn TokenCredential>, AuthError> {
    let options = ClientSecretCredentialOptions {
        client_options: runtime.client_options(authority),
    };
    let credential = ClientSecretCredential::new(
        tenant,
        client_id.to_owned(),
        secret.expose().to_owned().into(),
        Some(options),
    )
    .map_err(|e| setup("client-secret", e))?;
    Ok(CachedCredential::new("client-secret", credential))
}

pub(crate) fn workload_identity(
    tenant: &str,
    client_id: &str,
    token_file: &Path,
    runtime: &AuthRuntime,
    authority: &Url,
) -> Result<Arc<dyn TokenCredential>, AuthError> {
    let options = WorkloadIdentityCredentialOptions {
        credential_options: ClientAssertionCredentialOptions {
            client_options: runtime.client_options(authority),
        },
        client_id: Some(client_id.to_owned()),
        tenant_id: Some(tenant.to_owned()),
        token_file_path: Some(token_file.to_owned()),
    };
    let credential = WorkloadIdentityCredential::new(Some(options))
        .map_err(|e| setup("workload-identity", e))?;
    Ok(CachedCredential::new("workload-identity", credential))
}

pub(crate) fn azure_cli(
    tenant: Option<&str>,
    runtime: &AuthRuntime,
) -> Result<Arc<dyn TokenCredential>, AuthError> {
    let options = AzureCliCredentialOptions {
        tenant_id: tenant.map(str::to_owned),
        executor: runtime.cli_executor(),
        ..Default::default()
    };
    let credential = AzureCliCredential::new(Some(options)).map_err(|e| setup("azure-cli", e))?;
    // azure_identity's CLI credential has no cache: without ours every request would run `az`.
    Ok(CachedCredential::new("azure-cli", credential))
}

/// The Azure CLI, then the Azure Developer CLI (`azd`), in their default tenants.
pub(crate) fn developer_tools(
    runtime: &AuthRuntime,
) -> Result<Arc<dyn TokenCredential>, AuthError> {
    let options = DeveloperToolsCredentialOptions {
        executor: runtime.cli_executor(),
    };
    let credential =
        DeveloperToolsCredential::new(Some(options)).map_err(|e| setup("developer-tools", e))?;
    Ok(CachedCredential::new("developer-tools", credential))
}

/// A managed identity token for `api://AzureADTokenExchange`, presented as the client
/// assertion of an app registration that trusts the identity (a federated identity credential).
/// The app then proves itself without any secret.
#[derive(Debug, Clone)]
pub struct ManagedIdentityAssertion {
    identity: Arc<dyn TokenCredential>,
}

impl ManagedIdentityAssertion {
    pub fn new(identity: Arc<dyn TokenCredential>) -> Self {
        Self { identity }
    }

    /// The assertion (a JWT), fresh enough to be accepted.
    pub async fn assertion(&self) -> azure_core::Result<Secret> {
        let token = self
            .identity
            .get_token(&[TOKEN_EXCHANGE_SCOPE], None)
            .await?;
        Ok(Secret::new(token.token.secret()))
    }
}

#[async_trait::async_trait]
impl ClientAssertion for ManagedIdentityAssertion {
    async fn secret(
        &self,
        _options: Option<ClientMethodOptions<'_>>,
    ) -> azure_core::Result<String> {
        Ok(self.assertion().await?.expose().to_owned())
    }
}
