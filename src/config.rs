//! Settings of the Functions service (`patreport serve`), read once at start-up from the
//! environment (app settings in Azure, `local.settings.json` under `func start`).
//!
//! Every problem names the setting; all problems are reported at once. Secret values (the
//! storage key inside a connection string) are never echoed. The same names are listed, with
//! safe placeholders, in `local.settings.sample.json` and documented in `docs/functions.md`.

use crate::ado::DEFAULT_ADO_URL;
use crate::auth::AuthMode;
use crate::engine::DEFAULT_CONCURRENCY;
use crate::storage::connection::{
    KeyedAccount, is_local_emulator, normalize_endpoint, parse_connection_string,
};
use clap::ValueEnum;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;
use url::Url;

pub const ORGS: &str = "PATREPORT_ORGS";
pub const ADO_URL: &str = "PATREPORT_ADO_URL";
pub const AUTH: &str = "PATREPORT_AUTH";
pub const PAT_FILE: &str = "AZURE_DEVOPS_PAT_FILE";
pub const CONTAINER: &str = "PATREPORT_CONTAINER";
pub const SAS_MINUTES: &str = "PATREPORT_SAS_MINUTES";
pub const EXPIRING_DAYS: &str = "PATREPORT_EXPIRING_DAYS";
pub const CONCURRENCY: &str = "PATREPORT_CONCURRENCY";
pub const TIME_BUDGET_MINUTES: &str = "PATREPORT_TIME_BUDGET_MINUTES";
/// Read by the Functions host (`%PATREPORT_SCHEDULE%` in the timer's function.json); we only
/// check its shape so a typo shows up in our log too.
pub const SCHEDULE: &str = "PATREPORT_SCHEDULE";
pub const STORAGE_CONNECTION: &str = "AzureWebJobsStorage";
pub const STORAGE_ACCOUNT_URL: &str = "PATREPORT_STORAGE_ACCOUNT_URL";
/// The user-assigned managed identity that reaches the report storage. Its own setting because
/// `AZURE_CLIENT_ID` is the service principal in `client-secret` and `workload-identity` modes.
pub const STORAGE_CLIENT_ID: &str = "PATREPORT_STORAGE_CLIENT_ID";
/// The fallback of [`STORAGE_CLIENT_ID`].
pub const CLIENT_ID: &str = "AZURE_CLIENT_ID";
/// How HTTP report requests run: see [`HttpRuns`].
pub const HTTP_RUNS: &str = "PATREPORT_HTTP_RUNS";
pub const PORT: &str = "FUNCTIONS_CUSTOMHANDLER_PORT";

/// Every setting this module reads (`PORT` aside: the Functions host sets it). The credential
/// and caller settings are read by `auth` (`auth::setting::SERVICE`).
pub const SETTINGS: [&str; 15] = [
    ORGS,
    ADO_URL,
    AUTH,
    PAT_FILE,
    CONTAINER,
    SAS_MINUTES,
    EXPIRING_DAYS,
    CONCURRENCY,
    TIME_BUDGET_MINUTES,
    SCHEDULE,
    STORAGE_CONNECTION,
    STORAGE_ACCOUNT_URL,
    STORAGE_CLIENT_ID,
    CLIENT_ID,
    HTTP_RUNS,
];

pub const DEFAULT_CONTAINER: &str = "reports";
pub const DEFAULT_SAS_MINUTES: u32 = 60;
/// Seven days: the longest a user delegation key (and so its SAS) may live.
pub const MAX_SAS_MINUTES: u32 = 7 * 24 * 60;
pub const DEFAULT_EXPIRING_DAYS: u32 = 30;
/// Under the one-hour `functionTimeout` in host.json, leaving time to write the report.
pub const DEFAULT_TIME_BUDGET_MINUTES: u32 = 50;

/// `PATREPORT_STORAGE_CLIENT_ID=system`: the system-assigned identity, whatever
/// `AZURE_CLIENT_ID` says.
pub const SYSTEM_ASSIGNED: &str = "system";

/// How an HTTP report request (`POST /api/PatReport`) is run. Scheduled runs always go
/// through the queue with `PATREPORT_AUTH`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum HttpRuns {
    /// Queue a job; the worker runs it with the app's own credential (`PATREPORT_AUTH`).
    #[default]
    Queue,
    /// Exchange the caller's token (on-behalf-of) while answering the request and run the
    /// scan in the handler process with the caller's own rights.
    OnBehalfOf,
}

impl HttpRuns {
    pub fn name(self) -> &'static str {
        match self {
            HttpRuns::Queue => "queue",
            HttpRuns::OnBehalfOf => "on-behalf-of",
        }
    }
}

/// Where the reports are stored.
#[derive(Debug, Clone)]
pub enum StorageSetting {
    /// `AzureWebJobsStorage` (or another connection string) with an account key.
    ConnectionString(KeyedAccount),
    /// `PATREPORT_STORAGE_ACCOUNT_URL` with a managed identity (`PATREPORT_STORAGE_CLIENT_ID`,
    /// else `AZURE_CLIENT_ID`, for a user-assigned one).
    AccountUrl { url: Url, client_id: Option<String> },
}

/// The service's settings.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// Organizations the timer scans and on-demand runs may ask for (first one is the default).
    pub orgs: Vec<String>,
    pub ado_url: Url,
    /// The credential of scheduled and queued runs (never on-behalf-of: they have no caller).
    pub auth: AuthMode,
    pub http_runs: HttpRuns,
    pub pat_file: Option<PathBuf>,
    pub container: String,
    pub sas_lifetime: time::Duration,
    pub expiring_days: u32,
    pub concurrency: usize,
    pub time_budget: Duration,
    pub storage: StorageSetting,
    pub port: Option<u16>,
    /// Problems that do not stop the service (e.g. a timer schedule the host will reject).
    pub warnings: Vec<String>,
}

/// One bad or missing setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingError {
    pub setting: &'static str,
    pub problem: String,
}

/// Every bad or missing setting found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError(pub Vec<SettingError>);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        write!(f, "{n} invalid setting{}: ", if n == 1 { "" } else { "s" })?;
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|e| format!("{}: {}", e.setting, e.problem))
            .collect();
        f.write_str(&parts.join("; "))
    }
}

impl ConfigError {
    pub fn names(&self, setting: &str) -> bool {
        self.0.iter().any(|e| e.setting == setting)
    }
}

impl ServiceConfig {
    /// Read the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Read settings through `lookup` (tests pass a map). Empty values count as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let mut errors = Vec::new();
        let mut warnings = Vec::new();
        let mut fail =
            |setting: &'static str, problem: String| errors.push(SettingError { setting, problem });

        let orgs = match get(ORGS) {
            None => {
                fail(
                    ORGS,
                    "not set: list the Azure DevOps organizations to report on, comma-separated"
                        .into(),
                );
                Vec::new()
            }
            Some(text) => {
                let mut orgs: Vec<String> = Vec::new();
                for org in text.split(',').map(str::trim).filter(|o| !o.is_empty()) {
                    if !is_org_name(org) {
                        fail(
                            ORGS,
                            format!(
                                "'{org}' is not an organization name (letters, digits and hyphens, at most 50)"
                            ),
                        );
                    } else if !orgs.iter().any(|o| o.eq_ignore_ascii_case(org)) {
                        orgs.push(org.to_owned());
                    }
                }
                if orgs.is_empty() && !text.split(',').any(|o| !o.trim().is_empty()) {
                    fail(ORGS, "lists no organization".into());
                }
                orgs
            }
        };

        let ado_url = match get(ADO_URL) {
            None => Url::parse(DEFAULT_ADO_URL).ok(),
            Some(text) => match Url::parse(&text) {
                Ok(url)
                    if url.scheme() == "https"
                        || (url.scheme() == "http" && is_local_emulator(&url)) =>
                {
                    Some(url)
                }
                Ok(_) => {
                    fail(
                        ADO_URL,
                        "must be an https URL (http only for a local simulator)".into(),
                    );
                    None
                }
                Err(e) => {
                    fail(ADO_URL, format!("not a URL ({e})"));
                    None
                }
            },
        };

        let auth = match get(AUTH) {
            None => AuthMode::Pat,
            Some(text) => match parse_choice::<AuthMode>(&text) {
                Ok(AuthMode::OnBehalfOf) => {
                    fail(
                        AUTH,
                        format!(
                            "on-behalf-of cannot run scheduled or queued reports (they have no caller \
                             whose token could be exchanged): set {AUTH} to the app's own identity \
                             (managed-identity, client-secret, workload-identity, refresh-token or pat), \
                             and {HTTP_RUNS}=on-behalf-of to run HTTP requests with the caller's rights"
                        ),
                    );
                    AuthMode::Pat
                }
                Ok(mode) => mode,
                Err(problem) => {
                    fail(AUTH, problem);
                    AuthMode::Pat
                }
            },
        };
        let http_runs = match get(HTTP_RUNS) {
            None => HttpRuns::Queue,
            Some(text) => parse_choice::<HttpRuns>(&text).unwrap_or_else(|problem| {
                fail(HTTP_RUNS, problem);
                HttpRuns::Queue
            }),
        };

        let container = get(CONTAINER).unwrap_or_else(|| DEFAULT_CONTAINER.to_owned());
        if !is_container_name(&container) {
            fail(
                CONTAINER,
                format!(
                    "'{container}' is not a container name (3-63 lowercase letters, digits and single hyphens)"
                ),
            );
        }

        let mut number = |setting: &'static str, default: u32, min: u32, max: u32| -> u32 {
            match get(setting) {
                None => default,
                Some(text) => match text.parse::<u32>() {
                    Ok(n) if (min..=max).contains(&n) => n,
                    _ => {
                        fail(
                            setting,
                            format!("'{text}' is not a whole number from {min} to {max}"),
                        );
                        default
                    }
                },
            }
        };
        let sas_minutes = number(SAS_MINUTES, DEFAULT_SAS_MINUTES, 1, MAX_SAS_MINUTES);
        let expiring_days = number(EXPIRING_DAYS, DEFAULT_EXPIRING_DAYS, 0, 3650);
        let concurrency = number(CONCURRENCY, DEFAULT_CONCURRENCY as u32, 1, 256);
        let budget_minutes = number(TIME_BUDGET_MINUTES, DEFAULT_TIME_BUDGET_MINUTES, 1, 24 * 60);

        let port = match get(PORT) {
            None => None,
            Some(text) => match text.parse::<u16>() {
                Ok(p) if p > 0 => Some(p),
                _ => {
                    fail(PORT, format!("'{text}' is not a TCP port"));
                    None
                }
            },
        };

        let storage = match (get(STORAGE_ACCOUNT_URL), get(STORAGE_CONNECTION)) {
            (Some(text), _) => {
                match normalize_endpoint(&text) {
                    Some(url) if url.scheme() == "https" => Some(StorageSetting::AccountUrl {
                        url,
                        client_id: storage_client_id(&get, auth, &mut warnings),
                    }),
                    Some(_) => {
                        fail(STORAGE_ACCOUNT_URL, "must be an https URL (a managed identity token is only sent over https)".into());
                        None
                    }
                    None => {
                        fail(
                            STORAGE_ACCOUNT_URL,
                            "not a URL like https://ACCOUNT.blob.core.windows.net".into(),
                        );
                        None
                    }
                }
            }
            (None, Some(text)) => match parse_connection_string(&text) {
                Ok(account) => Some(StorageSetting::ConnectionString(account)),
                Err(e) => {
                    fail(
                        STORAGE_CONNECTION,
                        format!("the connection string is not usable: {e}"),
                    );
                    None
                }
            },
            (None, None) => {
                fail(
                    STORAGE_CONNECTION,
                    format!(
                        "not set: give a storage connection string with an account key \
                         (UseDevelopmentStorage=true for Azurite), or set {STORAGE_ACCOUNT_URL} to use a managed identity"
                    ),
                );
                None
            }
        };

        if let Some(schedule) = get(SCHEDULE) {
            let fields = schedule.split_whitespace().count();
            if fields != 6 {
                warnings.push(format!(
                    "{SCHEDULE} '{schedule}' has {fields} fields; the timer needs a 6-field NCRONTAB \
                     expression such as '0 0 6 * * 1' (Mondays 06:00 UTC)"
                ));
            }
        } else {
            warnings.push(format!(
                "{SCHEDULE} is not set: the Functions host cannot load the PatReportTimer function without it \
                 (use '0 0 6 * * 1' for Mondays 06:00 UTC)"
            ));
        }

        match (ado_url, storage) {
            (Some(ado_url), Some(storage)) if errors.is_empty() => Ok(Self {
                orgs,
                ado_url,
                auth,
                http_runs,
                pat_file: get(PAT_FILE).map(PathBuf::from),
                container,
                sas_lifetime: time::Duration::minutes(i64::from(sas_minutes)),
                expiring_days,
                concurrency: concurrency as usize,
                time_budget: Duration::from_secs(u64::from(budget_minutes) * 60),
                storage,
                port,
                warnings,
            }),
            _ => Err(ConfigError(errors)),
        }
    }

    /// The configured spelling of `org` (matched case-insensitively), if it is configured.
    pub fn find_org(&self, org: &str) -> Option<&str> {
        self.orgs
            .iter()
            .find(|o| o.eq_ignore_ascii_case(org))
            .map(String::as_str)
    }
}

/// `'{text}' is not one of: a, b, c` for an unknown choice.
fn parse_choice<T: ValueEnum>(text: &str) -> Result<T, String> {
    T::from_str(text, true).map_err(|_| {
        let known: Vec<String> = T::value_variants()
            .iter()
            .filter_map(|v| v.to_possible_value().map(|p| p.get_name().to_owned()))
            .collect();
        format!("'{text}' is not one of: {}", known.join(", "))
    })
}

/// The client id of the managed identity that reaches the report storage:
/// `PATREPORT_STORAGE_CLIENT_ID` (`system` for the system-assigned one), else `AZURE_CLIENT_ID`.
/// In the modes where `AZURE_CLIENT_ID` is a service principal, that fallback is surely not
/// what was meant, so it is warned about.
fn storage_client_id(
    get: &impl Fn(&str) -> Option<String>,
    auth: AuthMode,
    warnings: &mut Vec<String>,
) -> Option<String> {
    match get(STORAGE_CLIENT_ID) {
        Some(id) if id.eq_ignore_ascii_case(SYSTEM_ASSIGNED) => None,
        Some(id) => Some(id),
        None => {
            let fallback = get(CLIENT_ID);
            if fallback.is_some()
                && matches!(auth, AuthMode::ClientSecret | AuthMode::WorkloadIdentity)
            {
                warnings.push(format!(
                    "{STORAGE_CLIENT_ID} is not set, so the report storage is reached with the managed \
                     identity whose client id is {CLIENT_ID}; but with {AUTH}={} {CLIENT_ID} is the \
                     service principal. Set {STORAGE_CLIENT_ID} to the managed identity's client id, \
                     or to '{SYSTEM_ASSIGNED}' for the system-assigned one",
                    auth.name()
                ));
            }
            fallback
        }
    }
}

/// Azure DevOps organization names: letters, digits and hyphens, starting with a letter or
/// digit, at most 50 characters.
pub fn is_org_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 50
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
}

/// Blob container names: 3-63 characters, lowercase letters, digits and single hyphens,
/// starting and ending with a letter or digit.
pub fn is_container_name(name: &str) -> bool {
    (3..=63).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.contains("--")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(pairs: &[(&str, &str)]) -> Result<ServiceConfig, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ServiceConfig::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn a_minimal_local_configuration_uses_the_defaults() {
        let c = config(&[
            (ORGS, "fabrikam, Contoso ,fabrikam"),
            (STORAGE_CONNECTION, "UseDevelopmentStorage=true"),
            (SCHEDULE, "0 0 6 * * 1"),
        ])
        .unwrap();
        assert_eq!(c.orgs, vec!["fabrikam", "Contoso"]);
        assert_eq!(c.find_org("contoso"), Some("Contoso"));
        assert_eq!(c.container, "reports");
        assert_eq!(c.sas_lifetime, time::Duration::minutes(60));
        assert_eq!(c.ado_url.as_str(), "https://vssps.dev.azure.com/");
        assert_eq!(c.auth, AuthMode::Pat);
        assert!(matches!(c.storage, StorageSetting::ConnectionString(_)));
        assert!(c.warnings.is_empty());
    }

    #[test]
    fn every_problem_is_reported_and_names_its_setting() {
        let e = config(&[
            (ORGS, "fab/rikam"),
            (SAS_MINUTES, "20000"),
            (CONTAINER, "Reports"),
            (AUTH, "magic"),
            (PORT, "http"),
            (
                STORAGE_CONNECTION,
                "AccountName=x;AccountKey=c2VjcmV0LWtleQ==;BlobEndpoint=http://example.com",
            ),
        ])
        .unwrap_err();
        for setting in [ORGS, SAS_MINUTES, CONTAINER, AUTH, PORT, STORAGE_CONNECTION] {
            assert!(e.names(setting), "{setting} missing from: {e}");
        }
        let text = e.to_string();
        assert!(text.contains("10080") && text.contains("pat"), "{text}");
        assert!(!text.contains("c2VjcmV0"), "the key leaked: {text}");
    }

    #[test]
    fn storage_is_required_and_an_account_url_selects_managed_identity() {
        let e = config(&[(ORGS, "fabrikam")]).unwrap_err();
        assert!(
            e.names(STORAGE_CONNECTION) && e.to_string().contains(STORAGE_ACCOUNT_URL),
            "{e}"
        );
        let c = config(&[
            (ORGS, "fabrikam"),
            (
                STORAGE_ACCOUNT_URL,
                "https://contoso.blob.core.windows.net/",
            ),
            (CLIENT_ID, "00000000-0000-0000-0000-000000000001"),
        ])
        .unwrap();
        match c.storage {
            StorageSetting::AccountUrl { url, client_id } => {
                assert_eq!(url.host_str(), Some("contoso.blob.core.windows.net"));
                assert_eq!(
                    client_id.as_deref(),
                    Some("00000000-0000-0000-0000-000000000001")
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(c.warnings.iter().any(|w| w.contains(SCHEDULE)));
        let e = config(&[
            (ORGS, "fabrikam"),
            (STORAGE_ACCOUNT_URL, "http://contoso.blob.core.windows.net"),
        ])
        .unwrap_err();
        assert!(e.names(STORAGE_ACCOUNT_URL));
    }

    #[test]
    fn the_sample_settings_list_every_setting_and_are_a_valid_configuration() {
        let sample: serde_json::Value =
            serde_json::from_str(include_str!("../local.settings.sample.json")).unwrap();
        let values = sample["Values"].as_object().unwrap();
        let read: Vec<&str> = SETTINGS
            .iter()
            .chain(crate::auth::setting::SERVICE.iter())
            .copied()
            .collect();
        for setting in &read {
            assert!(
                values.contains_key(*setting),
                "{setting} is missing from local.settings.sample.json"
            );
        }
        // Nothing else either: the host's own settings and the log filter aside, a setting in
        // the sample that no code reads would only mislead.
        for key in values.keys() {
            assert!(
                read.contains(&key.as_str())
                    || key == "FUNCTIONS_WORKER_RUNTIME"
                    || key == "PATREPORT_LOG"
                    || key.starts_with("AzureFunctionsJobHost__"),
                "local.settings.sample.json lists {key}, which patreport does not read"
            );
        }
        assert!(!values.contains_key(PORT), "the Functions host sets {PORT}");
        assert!(
            !values.contains_key(crate::auth::setting::WEBSITE_AUTH_ENABLED),
            "the platform sets it; setting it by hand would trust a header anyone can send"
        );
        let c = ServiceConfig::from_lookup(|k| {
            values.get(k).and_then(|v| v.as_str()).map(str::to_owned)
        })
        .expect("the sample is a valid configuration");
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        let lookup = |k: &str| values.get(k).and_then(|v| v.as_str()).map(str::to_owned);
        crate::auth::AuthSettings::from_lookup(c.auth, None, lookup)
            .expect("the sample's credential settings are valid");
        // Secure by default: until the app registration is filled in, callers are refused,
        // and the reasons name the settings to fill in.
        let runtime = crate::auth::AuthRuntime::new().unwrap();
        let policy = crate::auth::CallerPolicy::from_lookup(lookup, &runtime);
        let problems = policy.problems().join("; ");
        assert!(
            problems.contains("AZURE_TENANT_ID") && problems.contains("PATREPORT_API_CLIENT_ID"),
            "{problems}"
        );
        assert!(!problems.contains("ALLOWED_ROLES"), "{problems}");
    }

    #[test]
    fn on_behalf_of_is_for_http_runs_only() {
        let base = [
            (ORGS, "fabrikam"),
            (STORAGE_CONNECTION, "UseDevelopmentStorage=true"),
            (SCHEDULE, "0 0 6 * * 1"),
        ];
        let e = config(&[base.as_slice(), &[(AUTH, "on-behalf-of")]].concat()).unwrap_err();
        assert!(e.names(AUTH), "{e}");
        assert!(e.to_string().contains(HTTP_RUNS), "{e}");
        let c = config(
            &[
                base.as_slice(),
                &[(AUTH, "managed-identity"), (HTTP_RUNS, "On-Behalf-Of")],
            ]
            .concat(),
        )
        .unwrap();
        assert_eq!(
            (c.auth, c.http_runs),
            (AuthMode::ManagedIdentity, HttpRuns::OnBehalfOf)
        );
        assert_eq!(config(&base).unwrap().http_runs, HttpRuns::Queue);
        let e = config(&[base.as_slice(), &[(HTTP_RUNS, "inline")]].concat()).unwrap_err();
        assert!(
            e.names(HTTP_RUNS) && e.to_string().contains("queue, on-behalf-of"),
            "{e}"
        );
    }

    #[test]
    fn the_storage_identity_has_its_own_client_id_setting() {
        let client_id = |pairs: &[(&str, &str)]| {
            let base = [
                (ORGS, "fabrikam"),
                (STORAGE_ACCOUNT_URL, "https://contoso.blob.core.windows.net"),
                (SCHEDULE, "0 0 6 * * 1"),
            ];
            let c = config(&[base.as_slice(), pairs].concat()).unwrap();
            match c.storage {
                StorageSetting::AccountUrl { client_id, .. } => (client_id, c.warnings),
                other => panic!("{other:?}"),
            }
        };
        // Its own setting wins over AZURE_CLIENT_ID (the service principal here).
        let (id, warnings) = client_id(&[
            (AUTH, "client-secret"),
            (CLIENT_ID, "sp-app-id"),
            (STORAGE_CLIENT_ID, "uami-client-id"),
        ]);
        assert_eq!(id.as_deref(), Some("uami-client-id"));
        assert!(warnings.is_empty(), "{warnings:?}");
        // `system`: the system-assigned identity even though AZURE_CLIENT_ID is set.
        let (id, _) = client_id(&[
            (AUTH, "client-secret"),
            (CLIENT_ID, "sp-app-id"),
            (STORAGE_CLIENT_ID, "System"),
        ]);
        assert_eq!(id, None);
        // Unset: AZURE_CLIENT_ID, as before; a warning when that is surely the wrong identity.
        let (id, warnings) = client_id(&[(AUTH, "managed-identity"), (CLIENT_ID, "uami")]);
        assert_eq!(id.as_deref(), Some("uami"));
        assert!(warnings.is_empty(), "{warnings:?}");
        let (id, warnings) = client_id(&[(AUTH, "client-secret"), (CLIENT_ID, "sp-app-id")]);
        assert_eq!(id.as_deref(), Some("sp-app-id"));
        assert!(
            warnings.iter().any(|w| w.contains(STORAGE_CLIENT_ID)),
            "{warnings:?}"
        );
    }

    #[test]
    fn names_are_checked() {
        assert!(is_org_name("fabrikam-1"));
        assert!(!is_org_name("-x") && !is_org_name("a b") && !is_org_name(""));
        assert!(is_container_name("reports") && is_container_name("pat-reports-01"));
        assert!(
            !is_container_name("ab") && !is_container_name("a--b") && !is_container_name("Reports")
        );
    }
}
