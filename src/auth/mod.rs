//! Credential modes: turn settings into the credential the Azure DevOps client sends, and decide
//! who may ask the HTTP functions for a report.
//!
//! * [`AuthMode`] / [`resolve`]: one setting (`PATREPORT_AUTH`, `--auth`) picks how patreport
//!   reaches Azure DevOps; every mode yields an [`AdoCredential`] (a PAT, or a token credential
//!   that caches and renews its tokens, see [`cache`]).
//! * [`obo`]: on-behalf-of, for HTTP requests: the caller's token becomes an Azure DevOps token.
//! * [`refresh`] + [`keyvault`] + [`device_code`]: a delegated sign-in stored in Key Vault by
//!   `patreport login` and redeemed (and rotated) by each run.
//! * [`caller`]: validation of the HTTP caller (JWT against the tenant's keys, or App Service
//!   Authentication's `X-MS-CLIENT-PRINCIPAL`) and the allowed roles and groups.
//!
//! A secret is read from the environment or a file, never from the command line (where it
//! would land in shell history and process listings), and is wrapped in [`Secret`]. No error
//! message of this module contains a token, PAT, client secret or refresh token.
//! See `docs/auth.md` for the Azure set-up of each mode.

pub mod app;
pub mod cache;
pub mod caller;
pub mod certificate;
pub mod device_code;
pub mod entra;
pub mod jwks;
pub mod keyvault;
pub mod obo;
pub mod refresh;
pub mod runtime;

pub use caller::{Caller, CallerPolicy, Denied};
pub use entra::{ADO_SCOPE, EntraError};
pub use obo::OnBehalfOf;
pub use runtime::AuthRuntime;

use crate::ado::AdoCredential;
use crate::secret::Secret;
use azure_core::credentials::TokenCredential;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use url::Url;

/// Environment variable holding a PAT.
pub const PAT_ENV: &str = "AZURE_DEVOPS_PAT";

/// The names of the settings (app settings in Azure, environment variables locally).
pub mod setting {
    pub const AUTH: &str = "PATREPORT_AUTH";
    pub const PAT: &str = super::PAT_ENV;
    pub const PAT_FILE: &str = "AZURE_DEVOPS_PAT_FILE";
    /// Entra authority host (sovereign clouds, tests). Default `https://login.microsoftonline.com`.
    pub const AUTHORITY_HOST: &str = "AZURE_AUTHORITY_HOST";
    pub const TENANT_ID: &str = "AZURE_TENANT_ID";
    /// The app's own identity: user-assigned managed identity, service principal, workload identity.
    pub const CLIENT_ID: &str = "AZURE_CLIENT_ID";
    pub const CLIENT_SECRET: &str = "AZURE_CLIENT_SECRET";
    pub const FEDERATED_TOKEN_FILE: &str = "AZURE_FEDERATED_TOKEN_FILE";
    /// The patreport API app registration: audience of callers' tokens, client of on-behalf-of.
    pub const API_CLIENT_ID: &str = "PATREPORT_API_CLIENT_ID";
    pub const API_CLIENT_SECRET: &str = "PATREPORT_API_CLIENT_SECRET";
    /// A PEM file with the API app's certificate and its RSA private key (instead of a secret).
    pub const API_CLIENT_CERTIFICATE: &str = "PATREPORT_API_CLIENT_CERTIFICATE";
    /// The public client app registration `patreport login` signs in with.
    pub const LOGIN_CLIENT_ID: &str = "PATREPORT_LOGIN_CLIENT_ID";
    pub const KEY_VAULT_URL: &str = "PATREPORT_KEY_VAULT_URL";
    pub const REFRESH_TOKEN_SECRET: &str = "PATREPORT_REFRESH_TOKEN_SECRET";
    pub const VAULT_AUTH: &str = "PATREPORT_VAULT_AUTH";
    /// Who may ask (HTTP): see [`super::caller`].
    pub const CALLER_AUTH: &str = "PATREPORT_CALLER_AUTH";
    pub const ALLOWED_ROLES: &str = "PATREPORT_ALLOWED_ROLES";
    pub const ALLOWED_GROUPS: &str = "PATREPORT_ALLOWED_GROUPS";
    pub const CALLER_AUDIENCES: &str = "PATREPORT_CALLER_AUDIENCES";
    pub const CALLER_ISSUERS: &str = "PATREPORT_CALLER_ISSUERS";
    /// Set by App Service when App Service Authentication is on.
    pub const WEBSITE_AUTH_ENABLED: &str = "WEBSITE_AUTH_ENABLED";
    /// A PEM bundle of extra CAs trusted for sign-in (TLS-inspecting proxies, tests).
    pub const EXTRA_CA_FILE: &str = "PATREPORT_EXTRA_CA_FILE";

    /// Every setting above that the Functions app (`patreport serve`) reads itself, so that
    /// `local.settings.sample.json` can be checked against it. Left out: [`WEBSITE_AUTH_ENABLED`]
    /// (the platform sets it) and `PATREPORT_LOGIN_VAULT_AUTH` (only `patreport login` reads it).
    pub const SERVICE: [&str; 21] = [
        AUTH,
        PAT,
        PAT_FILE,
        AUTHORITY_HOST,
        TENANT_ID,
        CLIENT_ID,
        CLIENT_SECRET,
        FEDERATED_TOKEN_FILE,
        API_CLIENT_ID,
        API_CLIENT_SECRET,
        API_CLIENT_CERTIFICATE,
        LOGIN_CLIENT_ID,
        KEY_VAULT_URL,
        REFRESH_TOKEN_SECRET,
        VAULT_AUTH,
        CALLER_AUTH,
        ALLOWED_ROLES,
        ALLOWED_GROUPS,
        CALLER_AUDIENCES,
        CALLER_ISSUERS,
        EXTRA_CA_FILE,
    ];
}

/// The default Key Vault secret name of the stored sign-in.
pub const DEFAULT_REFRESH_TOKEN_SECRET: &str = "patreport-refresh-token";

/// How patreport authenticates to Azure DevOps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
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

/// Every setting a mode may need. Build it with [`AuthSettings::from_env`] (or
/// [`AuthSettings::from_lookup`] in tests), or fill it in directly.
#[derive(Debug, Clone)]
pub struct AuthSettings {
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
}

impl AuthSettings {
    /// The settings of `mode` with everything else unset.
    pub fn new(mode: AuthMode) -> Self {
        Self {
            mode,
            authority_host: default_authority(),
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
        }
    }

    /// Read the process environment. `mode` and `pat_file` come from the caller (clap or the
    /// Functions configuration) because they are also command-line flags.
    pub fn from_env(mode: AuthMode, pat_file: Option<&Path>) -> Result<Self, AuthError> {
        Self::from_lookup(mode, pat_file, |name| std::env::var(name).ok())
    }

    /// Read settings through `lookup`. Empty values count as unset.
    pub fn from_lookup(
        mode: AuthMode,
        pat_file: Option<&Path>,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, AuthError> {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        // Secrets are not trimmed beyond surrounding whitespace and never echoed.
        let secret = |name: &str| get(name).map(Secret::new);
        let authority_host = match get(setting::AUTHORITY_HOST) {
            None => default_authority(),
            Some(text) => {
                entra::parse_authority_host(&text).map_err(|problem| AuthError::BadSetting {
                    setting: setting::AUTHORITY_HOST,
                    problem,
                })?
            }
        };
        let key_vault_url = get(setting::KEY_VAULT_URL)
            .map(|text| keyvault::parse_vault_url(&text))
            .transpose()
            .map_err(|problem| AuthError::BadSetting {
                setting: setting::KEY_VAULT_URL,
                problem,
            })?;
        let refresh_token_secret = get(setting::REFRESH_TOKEN_SECRET)
            .unwrap_or_else(|| DEFAULT_REFRESH_TOKEN_SECRET.to_owned());
        if !keyvault::valid_secret_name(&refresh_token_secret) {
            return Err(AuthError::BadSetting {
                setting: setting::REFRESH_TOKEN_SECRET,
                problem: format!(
                    "'{refresh_token_secret}' is not a Key Vault secret name (1-127 letters, digits and dashes)"
                ),
            });
        }
        let vault_auth = match get(setting::VAULT_AUTH) {
            None => VaultAuth::default(),
            Some(text) => parse_value_enum(&text).map_err(|problem| AuthError::BadSetting {
                setting: setting::VAULT_AUTH,
                problem,
            })?,
        };
        let tenant_id = get(setting::TENANT_ID);
        if let Some(t) = &tenant_id
            && !entra::valid_tenant(t)
        {
            return Err(AuthError::BadSetting {
                setting: setting::TENANT_ID,
                problem: format!("'{t}' is not a tenant id or domain"),
            });
        }
        Ok(Self {
            mode,
            authority_host,
            tenant_id,
            client_id: get(setting::CLIENT_ID),
            client_secret: secret(setting::CLIENT_SECRET),
            federated_token_file: get(setting::FEDERATED_TOKEN_FILE).map(PathBuf::from),
            pat: secret(setting::PAT),
            pat_file: pat_file
                .map(Path::to_path_buf)
                .or_else(|| get(setting::PAT_FILE).map(PathBuf::from)),
            api_client_id: get(setting::API_CLIENT_ID),
            api_client_secret: secret(setting::API_CLIENT_SECRET),
            api_client_certificate: get(setting::API_CLIENT_CERTIFICATE).map(PathBuf::from),
            login_client_id: get(setting::LOGIN_CLIENT_ID),
            key_vault_url,
            refresh_token_secret,
            vault_auth,
        })
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

fn default_authority() -> Url {
    // A constant that parses; the fallback is never taken.
    entra::parse_authority_host(entra::DEFAULT_AUTHORITY_HOST)
        .unwrap_or_else(|_| Url::parse("https://login.microsoftonline.com/").expect("constant"))
}

fn parse_value_enum<T: clap::ValueEnum>(text: &str) -> Result<T, String> {
    T::from_str(text, true).map_err(|_| {
        let known: Vec<String> = T::value_variants()
            .iter()
            .filter_map(|v| v.to_possible_value().map(|p| p.get_name().to_owned()))
            .collect();
        format!("'{text}' is not one of: {}", known.join(", "))
    })
}

/// Build the credential for `mode`, reading the other settings from the environment.
/// `pat_file` wins over the environment when both are set.
pub fn resolve(mode: AuthMode, pat_file: Option<&Path>) -> Result<AdoCredential, AuthError> {
    let settings = AuthSettings::from_env(mode, pat_file)?;
    resolve_with(&settings, &AuthRuntime::from_env()?)
}

/// Build the credential described by `settings`. Nothing is fetched yet: the first token is
/// asked for by the first Azure DevOps request.
pub fn resolve_with(
    settings: &AuthSettings,
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
        for mode in <AuthMode as clap::ValueEnum>::value_variants() {
            let possible = clap::ValueEnum::to_possible_value(mode).unwrap();
            assert_eq!(possible.get_name(), mode.name());
        }
    }

    #[test]
    fn missing_settings_are_named() {
        let runtime = AuthRuntime::new().unwrap();
        let settings =
            AuthSettings::from_lookup(AuthMode::ClientSecret, None, lookup(&[])).unwrap();
        let e = resolve_with(&settings, &runtime).unwrap_err().to_string();
        assert!(e.contains("AZURE_TENANT_ID"), "{e}");
        let settings = AuthSettings::from_lookup(
            AuthMode::ClientSecret,
            None,
            lookup(&[("AZURE_TENANT_ID", "t"), ("AZURE_CLIENT_ID", "c")]),
        )
        .unwrap();
        let e = resolve_with(&settings, &runtime).unwrap_err().to_string();
        assert!(e.contains("AZURE_CLIENT_SECRET"), "{e}");
        let settings = AuthSettings::from_lookup(
            AuthMode::RefreshToken,
            None,
            lookup(&[("AZURE_TENANT_ID", "t"), ("PATREPORT_LOGIN_CLIENT_ID", "c")]),
        )
        .unwrap();
        let e = resolve_with(&settings, &runtime).unwrap_err().to_string();
        assert!(e.contains("PATREPORT_KEY_VAULT_URL"), "{e}");
        let e = resolve_with(&AuthSettings::new(AuthMode::OnBehalfOf), &runtime)
            .unwrap_err()
            .to_string();
        assert!(e.contains("HTTP requests"), "{e}");
    }

    #[test]
    fn bad_settings_are_named_and_secrets_not_echoed() {
        let e = AuthSettings::from_lookup(
            AuthMode::ManagedIdentity,
            None,
            lookup(&[("AZURE_AUTHORITY_HOST", "http://login.example")]),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("AZURE_AUTHORITY_HOST"), "{e}");
        let e = AuthSettings::from_lookup(
            AuthMode::RefreshToken,
            None,
            lookup(&[("PATREPORT_VAULT_AUTH", "password")]),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("managed-identity"), "{e}");
        let s = AuthSettings::from_lookup(
            AuthMode::ClientSecret,
            None,
            lookup(&[("AZURE_CLIENT_SECRET", "hunter2-secret")]),
        )
        .unwrap();
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
