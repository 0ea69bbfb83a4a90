//! Outgoing credentials: turn settings into the credential the Azure DevOps client sends.
//!
//! * [`AuthMode`] / [`resolve_with`]: one setting (`PATREPORT_AUTH`, `--auth`) picks how patreport
//!   reaches Azure DevOps; every mode yields an [`AdoCredential`] (a PAT, or a token credential
//!   that caches and renews its tokens, see [`cache`]).
//! * [`obo`]: on-behalf-of, for HTTP requests: the caller's token becomes an Azure DevOps token.
//! * [`refresh`] + [`keyvault`] + [`device_code`]: a delegated sign-in stored in Key Vault by
//!   `patreport login` and redeemed (and rotated) by each run.
//!
//! Who may call the HTTP functions is another matter, in `callers`. A secret is read from the
//! environment or a file, never from the command line (where it would land in shell history and
//! process listings), and is wrapped in [`Secret`]. No error message of this module contains a
//! token, PAT, client secret or refresh token. See `docs/auth.md` for the Azure set-up of each mode.

pub mod app;
pub mod cache;
pub mod certificate;
pub mod device_code;
pub mod keyvault;
pub mod obo;
pub mod refresh;

pub use crate::entra::{ADO_SCOPE, AuthRuntime, EntraError};
pub use obo::OnBehalfOf;

use crate::ado::AdoCredential;
use crate::entra;
use crate::secret::Secret;
use crate::settings::names as setting;
use crate::settings::{Choice, Reader, SettingsError};
use azure_core::credentials::TokenCredential;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use url::Url;

/// Environment variable holding a PAT.
pub const PAT_ENV: &str = setting::PAT;

/// The default Key Vault secret name of the stored sign-in.
pub const DEFAULT_REFRESH_TOKEN_SECRET: &str = "patreport-refresh-token";

/// How patreport authenticates to Azure DevOps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthMode {
    /// A personal access token from `AZURE_DEVOPS_PAT` or `--pat-file`.
    #[default]
    Pat,
    /// The Azure resource's managed identity (`AZURE_CLIENT_ID` picks a user-assigned one).
    ManagedIdentity,
    /// A service principal: `AZURE_TENANT_ID`, `AZURE_CLIENT_ID`, `AZURE_CLIENT_SECRET`.
    ClientSecret,
    /// Workload identity federation (Kubernetes): `AZURE_TENANT_ID`, `AZURE_CLIENT_ID`,
    /// `AZURE_FEDERATED_TOKEN_FILE`.
    WorkloadIdentity,
    /// The signed-in Azure CLI account (`az login`), for local use.
    AzureCli,
    /// The Azure CLI, then the Azure Developer CLI, for local use.
    DeveloperTools,
    /// HTTP requests only: the caller's own rights, through the on-behalf-of flow (in the
    /// Functions app: `PATREPORT_HTTP_RUNS=on-behalf-of`).
    OnBehalfOf,
    /// A delegated sign-in stored in Key Vault by `patreport login`, redeemed by each run.
    RefreshToken,
}

impl Choice for AuthMode {
    const ALL: &'static [Self] = &[
        AuthMode::Pat,
        AuthMode::ManagedIdentity,
        AuthMode::ClientSecret,
        AuthMode::WorkloadIdentity,
        AuthMode::AzureCli,
        AuthMode::DeveloperTools,
        AuthMode::OnBehalfOf,
        AuthMode::RefreshToken,
    ];

    fn name(self) -> &'static str {
        AuthMode::name(self)
    }
}

impl AuthMode {
    pub fn name(self) -> &'static str {
        match self {
            AuthMode::Pat => "pat",
            AuthMode::ManagedIdentity => "managed-identity",
            AuthMode::ClientSecret => "client-secret",
            AuthMode::WorkloadIdentity => "workload-identity",
            AuthMode::AzureCli => "azure-cli",
            AuthMode::DeveloperTools => "developer-tools",
            AuthMode::OnBehalfOf => "on-behalf-of",
            AuthMode::RefreshToken => "refresh-token",
        }
    }
}

/// The identity patreport itself uses to reach Key Vault (refresh-token mode, `patreport login`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VaultAuth {
    /// The managed identity (`AZURE_CLIENT_ID` for a user-assigned one).
    #[default]
    ManagedIdentity,
    /// `AZURE_TENANT_ID`, `AZURE_CLIENT_ID`, `AZURE_CLIENT_SECRET`.
    ClientSecret,
    /// `AZURE_TENANT_ID`, `AZURE_CLIENT_ID`, `AZURE_FEDERATED_TOKEN_FILE`.
    WorkloadIdentity,
    /// `az login`.
    AzureCli,
    /// `az login`, then `azd auth login`.
    DeveloperTools,
}

impl Choice for VaultAuth {
    const ALL: &'static [Self] = &[
        VaultAuth::ManagedIdentity,
        VaultAuth::ClientSecret,
        VaultAuth::WorkloadIdentity,
        VaultAuth::AzureCli,
        VaultAuth::DeveloperTools,
    ];

    fn name(self) -> &'static str {
        match self {
            VaultAuth::ManagedIdentity => "managed-identity",
            VaultAuth::ClientSecret => "client-secret",
            VaultAuth::WorkloadIdentity => "workload-identity",
            VaultAuth::AzureCli => "azure-cli",
            VaultAuth::DeveloperTools => "developer-tools",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("no PAT given: set {PAT_ENV} or pass --pat-file FILE (env AZURE_DEVOPS_PAT_FILE)")]
    MissingPat,
    #[error("could not read the PAT file {path}: {source}")]
    PatFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the PAT in {0} is empty")]
    EmptyPat(String),
    #[error("--auth {mode} needs the setting {setting}: {why}")]
    MissingSetting {
        mode: &'static str,
        setting: &'static str,
        why: &'static str,
    },
    #[error("setting {setting}: {problem}")]
    BadSetting {
        setting: &'static str,
        problem: String,
    },
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error("could not set up the {mode} credential: {detail}")]
    Credential { mode: &'static str, detail: String },
    #[error(
        "--auth on-behalf-of works only for HTTP requests (it exchanges the caller's token); \
         the timer and the command line need another mode: managed-identity, client-secret, \
         workload-identity or refresh-token"
    )]
    OnBehalfOfNeedsCaller,
    #[error(transparent)]
    Entra(#[from] EntraError),
    #[error(
        "the sign-in stored in {store} can no longer be used ({detail}). \
         Run `patreport login` again to store a new one"
    )]
    SignInExpired { store: String, detail: String },
    #[error("no sign-in is stored in {store}: run `patreport login` first")]
    NoStoredSignIn { store: String },
    #[error("{action} {store} failed: {detail}")]
    Vault {
        action: &'static str,
        store: String,
        detail: String,
    },
    #[error("device-code sign-in: {0}")]
    DeviceCode(String),
    #[error("{0}")]
    Setup(String),
}

impl From<AuthError> for azure_core::Error {
    fn from(e: AuthError) -> Self {
        azure_core::Error::with_message(azure_core::error::ErrorKind::Credential, e.to_string())
    }
}

/// Every setting a mode may need. Read it with [`CredentialSettings::read`] (as part of the
/// service's settings) or [`CredentialSettings::from_env`] (the command line), or fill it in.
#[derive(Debug, Clone)]
pub struct CredentialSettings {
    pub mode: AuthMode,
    pub authority_host: Url,
    pub tenant_id: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<Secret>,
    pub federated_token_file: Option<PathBuf>,
    pub pat: Option<Secret>,
    pub pat_file: Option<PathBuf>,
    pub api_client_id: Option<String>,
    pub api_client_secret: Option<Secret>,
    /// PEM file with the API app's certificate and private key (read when the app is built).
    pub api_client_certificate: Option<PathBuf>,
    pub login_client_id: Option<String>,
    pub key_vault_url: Option<Url>,
    pub refresh_token_secret: String,
    pub vault_auth: VaultAuth,
    /// Extra CAs (PEM) trusted for sign-in: TLS-inspecting proxies, the tests' fake Entra.
    pub extra_ca_file: Option<PathBuf>,
}

impl CredentialSettings {
    /// The settings of `mode` with everything else unset.
    pub fn new(mode: AuthMode) -> Self {
        Self {
            mode,
            authority_host: entra::default_authority(),
            tenant_id: None,
            client_id: None,
            client_secret: None,
            federated_token_file: None,
            pat: None,
            pat_file: None,
            api_client_id: None,
            api_client_secret: None,
            api_client_certificate: None,
            login_client_id: None,
            key_vault_url: None,
            refresh_token_secret: DEFAULT_REFRESH_TOKEN_SECRET.to_owned(),
            vault_auth: VaultAuth::default(),
            extra_ca_file: None,
        }
    }

    /// Read the process environment. `mode` and `pat_file` come from the caller (clap or the
    /// Functions settings) because they are also command-line flags. Every problem is reported.
    pub fn from_env(mode: AuthMode, pat_file: Option<&Path>) -> Result<Self, AuthError> {
        Self::from_lookup(mode, pat_file, |name| std::env::var(name).ok())
    }

    /// [`Self::read`] on its own, through `lookup`.
    pub fn from_lookup(
        mode: AuthMode,
        pat_file: Option<&Path>,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, AuthError> {
        let mut r = Reader::new(&lookup);
        let settings = Self::read(&mut r, mode, pat_file.map(Path::to_path_buf));
        Ok(r.finish(settings)?.0)
    }

    /// Read the credential settings through `r`, which collects every problem.
    pub fn read(r: &mut Reader<'_>, mode: AuthMode, pat_file: Option<PathBuf>) -> Self {
        // Secrets are not trimmed beyond surrounding whitespace and never echoed.
        let secret = |r: &Reader<'_>, name: &str| r.get(name).map(Secret::new);
        let authority_host = r
            .parse(setting::AUTHORITY_HOST, entra::parse_authority_host)
            .unwrap_or_else(entra::default_authority);
        let key_vault_url = r.parse(setting::KEY_VAULT_URL, keyvault::parse_vault_url);
        let refresh_token_secret = match r.get(setting::REFRESH_TOKEN_SECRET) {
            Some(name) if !keyvault::valid_secret_name(&name) => {
                r.fail(
                    setting::REFRESH_TOKEN_SECRET,
                    format!(
                        "'{name}' is not a Key Vault secret name (1-127 letters, digits and dashes)"
                    ),
                );
                DEFAULT_REFRESH_TOKEN_SECRET.to_owned()
            }
            Some(name) => name,
            None => DEFAULT_REFRESH_TOKEN_SECRET.to_owned(),
        };
        let vault_auth = r.choice(setting::VAULT_AUTH, VaultAuth::default());
        let tenant_id = r.parse(setting::TENANT_ID, |t| {
            if entra::valid_tenant(t) {
                Ok(t.to_owned())
            } else {
                Err(format!("'{t}' is not a tenant id or domain"))
            }
        });
        Self {
            mode,
            authority_host,
            tenant_id,
            client_id: r.get(setting::CLIENT_ID),
            client_secret: secret(r, setting::CLIENT_SECRET),
            federated_token_file: r.get(setting::FEDERATED_TOKEN_FILE).map(PathBuf::from),
            pat: secret(r, setting::PAT),
            pat_file: pat_file.or_else(|| r.get(setting::PAT_FILE).map(PathBuf::from)),
            api_client_id: r.get(setting::API_CLIENT_ID),
            api_client_secret: secret(r, setting::API_CLIENT_SECRET),
            api_client_certificate: r.get(setting::API_CLIENT_CERTIFICATE).map(PathBuf::from),
            login_client_id: r.get(setting::LOGIN_CLIENT_ID),
            key_vault_url,
            refresh_token_secret,
            vault_auth,
            extra_ca_file: r.get(setting::EXTRA_CA_FILE).map(PathBuf::from),
        }
    }

    fn require<'a>(
        &self,
        value: &'a Option<String>,
        setting: &'static str,
        why: &'static str,
    ) -> Result<&'a str, AuthError> {
        value.as_deref().ok_or(AuthError::MissingSetting {
            mode: self.mode.name(),
            setting,
            why,
        })
    }

    fn tenant(&self) -> Result<&str, AuthError> {
        self.require(
            &self.tenant_id,
            setting::TENANT_ID,
            "the directory (tenant) id of your Entra ID",
        )
    }

    /// The tenant's Entra endpoints.
    pub fn entra(&self, runtime: &AuthRuntime) -> Result<entra::Entra, AuthError> {
        entra::Entra::new(
            self.authority_host.clone(),
            self.tenant()?,
            runtime.http().clone(),
        )
        .map_err(|problem| AuthError::BadSetting {
            setting: setting::TENANT_ID,
            problem,
        })
    }

    /// The credential of one of the app's own identities.
    pub fn app_identity(
        &self,
        kind: VaultAuth,
        runtime: &AuthRuntime,
    ) -> Result<Arc<dyn TokenCredential>, AuthError> {
        let authority = &self.authority_host;
        match kind {
            VaultAuth::ManagedIdentity => {
                app::managed_identity(self.client_id.as_deref(), runtime, authority)
            }
            VaultAuth::ClientSecret => {
                let tenant = self.tenant()?;
                let client_id = self.require(
                    &self.client_id,
                    setting::CLIENT_ID,
                    "the application (client) id of the service principal",
                )?;
                let secret = self
                    .client_secret
                    .as_ref()
                    .ok_or(AuthError::MissingSetting {
                        mode: self.mode.name(),
                        setting: setting::CLIENT_SECRET,
                        why: "a client secret of the service principal (its Value)",
                    })?;
                app::client_secret(tenant, client_id, secret, runtime, authority)
            }
            VaultAuth::WorkloadIdentity => {
                let tenant = self.tenant()?;
                let client_id = self.require(
                    &self.client_id,
                    setting::CLIENT_ID,
                    "the client id of the federated identity",
                )?;
                let file =
                    self.federated_token_file
                        .as_deref()
                        .ok_or(AuthError::MissingSetting {
                            mode: self.mode.name(),
                            setting: setting::FEDERATED_TOKEN_FILE,
                            why: "the projected service account token (set by the workload identity webhook)",
                        })?;
                app::workload_identity(tenant, client_id, file, runtime, authority)
            }
            VaultAuth::AzureCli => app::azure_cli(self.tenant_id.as_deref(), runtime),
            VaultAuth::DeveloperTools => app::developer_tools(runtime),
        }
    }

    /// The Key Vault store of the delegated sign-in.
    pub fn sign_in_store(
        &self,
        runtime: &AuthRuntime,
    ) -> Result<keyvault::KeyVaultStore, AuthError> {
        let vault = self
            .key_vault_url
            .as_ref()
            .ok_or(AuthError::MissingSetting {
                mode: self.mode.name(),
                setting: setting::KEY_VAULT_URL,
                why: "the Key Vault that holds the stored sign-in, e.g. https://myvault.vault.azure.net",
            })?;
        let credential = self.app_identity(self.vault_auth, runtime)?;
        keyvault::KeyVaultStore::new(vault, &self.refresh_token_secret, credential, runtime)
    }

    fn login_client_id(&self) -> Result<&str, AuthError> {
        self.require(
            &self.login_client_id,
            setting::LOGIN_CLIENT_ID,
            "the application (client) id of the public client app registration used by `patreport login`",
        )
    }
}

/// Build the credential for `mode`, reading the other settings from the environment.
/// `pat_file` wins over the environment when both are set.
pub fn resolve(mode: AuthMode, pat_file: Option<&Path>) -> Result<AdoCredential, AuthError> {
    let settings = CredentialSettings::from_env(mode, pat_file)?;
    let runtime = AuthRuntime::new(settings.extra_ca_file.as_deref())?;
    resolve_with(&settings, &runtime)
}

/// Build the credential described by `settings`. Nothing is fetched yet: the first token is
/// asked for by the first Azure DevOps request.
pub fn resolve_with(
    settings: &CredentialSettings,
    runtime: &AuthRuntime,
) -> Result<AdoCredential, AuthError> {
    let token = |c: Arc<dyn TokenCredential>| Ok(AdoCredential::Token(c));
    match settings.mode {
        AuthMode::Pat => {
            pat_from(settings.pat_file.as_deref(), settings.pat.clone()).map(AdoCredential::Pat)
        }
        AuthMode::ManagedIdentity => {
            token(settings.app_identity(VaultAuth::ManagedIdentity, runtime)?)
        }
        AuthMode::ClientSecret => token(settings.app_identity(VaultAuth::ClientSecret, runtime)?),
        AuthMode::WorkloadIdentity => {
            token(settings.app_identity(VaultAuth::WorkloadIdentity, runtime)?)
        }
        AuthMode::AzureCli => token(settings.app_identity(VaultAuth::AzureCli, runtime)?),
        AuthMode::DeveloperTools => {
            token(settings.app_identity(VaultAuth::DeveloperTools, runtime)?)
        }
        AuthMode::OnBehalfOf => Err(AuthError::OnBehalfOfNeedsCaller),
        AuthMode::RefreshToken => {
            let client_id = settings.login_client_id()?.to_owned();
            let entra = settings.entra(runtime)?;
            let store = settings.sign_in_store(runtime)?;
            token(refresh::RefreshTokenCredential::new(
                entra,
                client_id,
                Arc::new(store),
            ))
        }
    }
}

fn pat_from(file: Option<&Path>, env_value: Option<Secret>) -> Result<Secret, AuthError> {
    let (value, origin) = match file {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| AuthError::PatFile {
                path: path.to_owned(),
                source,
            })?;
            (text, path.display().to_string())
        }
        None => (
            env_value.ok_or(AuthError::MissingPat)?.expose().to_owned(),
            PAT_ENV.to_owned(),
        ),
    };
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(AuthError::EmptyPat(origin));
    }
    Ok(Secret::new(trimmed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn pat_file_is_trimmed_and_wins_over_env() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pat");
        std::fs::write(&path, "  from-file\n").unwrap();
        let s = pat_from(Some(&path), Some(Secret::new("from-env"))).unwrap();
        assert_eq!(s.expose(), "from-file");
    }

    #[test]
    fn missing_and_empty_pats_name_the_setting() {
        let e = pat_from(None, None).unwrap_err().to_string();
        assert!(
            e.contains("AZURE_DEVOPS_PAT") && e.contains("--pat-file"),
            "{e}"
        );
        let e = pat_from(None, Some(Secret::new(" \n")))
            .unwrap_err()
            .to_string();
        assert!(e.contains("AZURE_DEVOPS_PAT"), "{e}");
    }

    #[test]
    fn every_mode_has_a_kebab_case_name() {
        for mode in AuthMode::ALL {
            assert_eq!(AuthMode::parse(&mode.name().to_uppercase()), Ok(*mode));
            assert!(
                mode.name()
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == '-')
            );
        }
    }

    #[test]
    fn missing_settings_are_named() {
        let runtime = AuthRuntime::new(None).unwrap();
        let settings =
            CredentialSettings::from_lookup(AuthMode::ClientSecret, None, lookup(&[])).unwrap();
        let e = resolve_with(&settings, &runtime).unwrap_err().to_string();
        assert!(e.contains("AZURE_TENANT_ID"), "{e}");
        let settings = CredentialSettings::from_lookup(
            AuthMode::ClientSecret,
            None,
            lookup(&[("AZURE_TENANT_ID", "t"), ("AZURE_CLIENT_ID", "c")]),
        )
        .unwrap();
        let e = resolve_with(&settings, &runtime).unwrap_err().to_string();
        assert!(e.contains("AZURE_CLIENT_SECRET"), "{e}");
        let settings = CredentialSettings::from_lookup(
            AuthMode::RefreshToken,
            None,
            lookup(&[("AZURE_TENANT_ID", "t"), ("PATREPORT_LOGIN_CLIENT_ID", "c")]),
        )
        .unwrap();
        let e = resolve_with(&settings, &runtime).unwrap_err().to_string();
        assert!(e.contains("PATREPORT_KEY_VAULT_URL"), "{e}");
        let e = resolve_with(&CredentialSettings::new(AuthMode::OnBehalfOf), &runtime)
            .unwrap_err()
            .to_string();
        assert!(e.contains("HTTP requests"), "{e}");
    }

    #[test]
    fn bad_settings_are_named_and_secrets_not_echoed() {
        let e = CredentialSettings::from_lookup(
            AuthMode::ManagedIdentity,
            None,
            lookup(&[("AZURE_AUTHORITY_HOST", "http://login.example")]),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("AZURE_AUTHORITY_HOST"), "{e}");
        let e = CredentialSettings::from_lookup(
            AuthMode::RefreshToken,
            None,
            lookup(&[("PATREPORT_VAULT_AUTH", "password")]),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("managed-identity"), "{e}");
        let s = CredentialSettings::from_lookup(
            AuthMode::ClientSecret,
            None,
            lookup(&[("AZURE_CLIENT_SECRET", "hunter2-secret")]),
        )
        .unwrap();
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
