//! Settings: one registry of names ([`names`]), one way to read them ([`Reader`], which
//! reports every problem at once, each naming its setting), and the typed objects built from
//! them once at start-up:
//!
//! * [`ScanSettings`]: what a report scan needs, with the same names and units for the
//!   command line (flags and their environment variables) and the service;
//! * [`ServiceSettings`]: everything `patreport serve` needs, read by one call
//!   ([`ServiceSettings::from_env`]) and handed to the server.
//!
//! Secret values (the storage key inside a connection string, client secrets) are never echoed.

pub mod names;
pub mod parse;
mod reader;

pub use reader::{Choice, Reader, SettingError, SettingsError};

use crate::ado::{AdoSettings, DEFAULT_ADO_URL, DEFAULT_AUDIT_URL, DEFAULT_PAGE_LIMIT};
use crate::callers::CallerSettings;
use crate::credentials::{AuthMode, CredentialSettings};
use crate::domain::OrgName;
use crate::engine::{DEFAULT_CONCURRENCY, ScanOptions};
use crate::findings::Policy;
use crate::notify::Webhook;
use crate::pipeline::{Compare, ReportPlan};
use crate::refresh::{DEFAULT_FULL_SCAN_EVERY, RefreshOptions};
use crate::report::{Format, ReportOptions};
use crate::storage::connection::{KeyedAccount, normalize_endpoint, parse_connection_string};
use names::*;
use std::time::Duration;
use url::Url;

pub const DEFAULT_CONTAINER: &str = "reports";
pub const DEFAULT_SAS_MINUTES: u32 = 60;
/// Seven days: the longest a user delegation key (and so its SAS) may live.
pub const MAX_SAS_MINUTES: u32 = 7 * 24 * 60;
pub const DEFAULT_EXPIRING_DAYS: u32 = 30;
/// Under the one-hour `functionTimeout` in host.json, leaving time to write the report.
pub const DEFAULT_SERVICE_TIME_BUDGET: Duration = Duration::from_secs(50 * 60);
pub const DEFAULT_PAT_PAGE_SIZE: u32 = 20;
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
pub const DEFAULT_MAX_RETRIES: u32 = 8;
/// People: Entra ID users and Microsoft accounts (service identities are skipped).
pub const DEFAULT_SUBJECT_TYPES: &str = "aad,msa";

/// `PATREPORT_STORAGE_CLIENT_ID=system`: the system-assigned identity, whatever
/// `AZURE_CLIENT_ID` says.
pub const SYSTEM_ASSIGNED: &str = "system";

/// How a scan runs and how its report is judged: the settings the command line and the
/// service share, with the same names (flags' environment variables, app settings) and units.
#[derive(Debug, Clone)]
pub struct ScanSettings {
    pub ado_url: Url,
    /// Graph `subjectTypes`.
    pub subject_types: Vec<String>,
    pub pat_page_size: u32,
    pub request_timeout: Duration,
    pub max_retries: u32,
    /// Pages one listing may take before it is taken for one that never ends.
    pub page_limit: u32,
    pub concurrency: usize,
    pub time_budget: Option<Duration>,
    pub expiring_days: u32,
    pub include_invalid: bool,
    /// What the findings are judged against.
    pub policy: Policy,
    /// Also list every user's SSH public keys (one more listing per user).
    pub include_ssh_keys: bool,
    /// The Audit Log's base URL (another host than `ado_url`).
    pub audit_url: Url,
    /// Incremental refresh from the audit log, and the full scan cadence.
    pub refresh: RefreshOptions,
}

impl ScanSettings {
    /// The defaults, with `time_budget`.
    pub fn defaults(time_budget: Option<Duration>) -> Self {
        Self {
            ado_url: Url::parse(DEFAULT_ADO_URL).expect("the default URL parses"),
            subject_types: parse::list(DEFAULT_SUBJECT_TYPES),
            pat_page_size: DEFAULT_PAT_PAGE_SIZE,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_retries: DEFAULT_MAX_RETRIES,
            page_limit: DEFAULT_PAGE_LIMIT,
            concurrency: DEFAULT_CONCURRENCY,
            time_budget,
            expiring_days: DEFAULT_EXPIRING_DAYS,
            include_invalid: false,
            policy: Policy::default(),
            include_ssh_keys: false,
            audit_url: Url::parse(DEFAULT_AUDIT_URL).expect("the default URL parses"),
            refresh: RefreshOptions::default(),
        }
    }

    /// Read through `r`; unset settings keep their defaults.
    pub fn read(r: &mut Reader<'_>, default_time_budget: Option<Duration>) -> Self {
        let defaults = Self::defaults(default_time_budget);
        let subject_types = r.list(SUBJECT_TYPES);
        Self {
            ado_url: r.parse(ADO_URL, parse::ado_url).unwrap_or(defaults.ado_url),
            subject_types: if subject_types.is_empty() {
                defaults.subject_types
            } else {
                subject_types
            },
            pat_page_size: r.number(PAT_PAGE_SIZE, DEFAULT_PAT_PAGE_SIZE, 1, 1000),
            request_timeout: r
                .duration(REQUEST_TIMEOUT)
                .unwrap_or(DEFAULT_REQUEST_TIMEOUT),
            max_retries: r.number(MAX_RETRIES, DEFAULT_MAX_RETRIES, 0, 100),
            page_limit: r.number(PAGE_LIMIT, DEFAULT_PAGE_LIMIT, 1, 1_000_000),
            concurrency: r.number(CONCURRENCY, DEFAULT_CONCURRENCY as u32, 1, 256) as usize,
            time_budget: r.duration(TIME_BUDGET).or(default_time_budget),
            expiring_days: r.number(EXPIRING_DAYS, DEFAULT_EXPIRING_DAYS, 0, 3650),
            include_invalid: r.flag(INCLUDE_INVALID, false),
            policy: r
                .get(POLICY)
                .and_then(|value| match Policy::from_setting(&value) {
                    Ok(policy) => Some(policy),
                    Err(e) => {
                        r.fail(POLICY, e.to_string());
                        None
                    }
                })
                .unwrap_or_default(),
            include_ssh_keys: r.flag(INCLUDE_SSH_KEYS, false),
            audit_url: r
                .parse(AUDIT_URL, parse::ado_url)
                .unwrap_or(defaults.audit_url),
            refresh: RefreshOptions {
                // Scheduled service runs refresh by default; a full scan when no state allows.
                incremental: r.flag(INCREMENTAL, true),
                full_scan_every: r
                    .duration(FULL_SCAN_EVERY)
                    .unwrap_or(DEFAULT_FULL_SCAN_EVERY),
            },
        }
    }

    /// The plan of one report of `org` in `formats`, reaching Azure DevOps at `ado_url`
    /// (the demo passes its loopback simulator's).
    pub fn plan(&self, org: OrgName, formats: Vec<Format>) -> ReportPlan {
        ReportPlan {
            client: AdoSettings {
                base_url: self.ado_url.clone(),
                audit_url: self.audit_url.clone(),
                organization: org,
                subject_types: self.subject_types.clone(),
                pat_page_size: self.pat_page_size,
                request_timeout: self.request_timeout,
                max_retries: self.max_retries,
                page_limit: self.page_limit,
            },
            scan: ScanOptions {
                concurrency: self.concurrency,
                time_budget: self.time_budget,
                stop: Default::default(),
                include_ssh_keys: self.include_ssh_keys,
            },
            report: ReportOptions {
                expiring_days: self.expiring_days,
                include_invalid: self.include_invalid,
                policy: self.policy.clone(),
                ssh_keys_listed: self.include_ssh_keys,
            },
            formats,
            compare: Compare::default(),
            refresh: self.refresh.clone(),
        }
    }
}

/// How an HTTP report request (`POST /api/PatReport`) is run. Scheduled runs always go
/// through the queue with `PATREPORT_AUTH`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HttpRuns {
    /// Queue a job; the worker runs it with the app's own credential (`PATREPORT_AUTH`).
    #[default]
    Queue,
    /// Exchange the caller's token (on-behalf-of) while answering the request and run the
    /// scan in the handler process with the caller's own rights.
    OnBehalfOf,
}

impl Choice for HttpRuns {
    const ALL: &'static [Self] = &[HttpRuns::Queue, HttpRuns::OnBehalfOf];
    fn name(self) -> &'static str {
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

/// Everything the service needs, read once at start-up.
#[derive(Debug, Clone)]
pub struct ServiceSettings {
    /// Organizations the timer scans and on-demand runs may ask for.
    pub orgs: Vec<OrgName>,
    pub scan: ScanSettings,
    /// The credential of scheduled and queued runs (never on-behalf-of: they have no caller).
    pub auth: AuthMode,
    /// The settings of every credential mode, on-behalf-of included.
    pub credentials: CredentialSettings,
    /// Who may call the HTTP functions.
    pub callers: CallerSettings,
    pub http_runs: HttpRuns,
    /// Webhooks told of each scheduled report.
    pub notify: Vec<Webhook>,
    pub container: String,
    pub sas_lifetime: time::Duration,
    pub storage: StorageSetting,
    pub port: Option<u16>,
    /// Problems that do not stop the service (a timer schedule the host will reject, an
    /// identity that is surely not the one meant).
    pub warnings: Vec<String>,
}

impl ServiceSettings {
    /// Read the process environment.
    pub fn from_env() -> Result<Self, SettingsError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Read settings through `lookup` (tests pass a map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let mut r = Reader::new(&lookup);

        let orgs = match r.get(ORGS) {
            None => {
                r.fail(
                    ORGS,
                    "not set: list the Azure DevOps organizations to report on, comma-separated",
                );
                Vec::new()
            }
            Some(text) => {
                let mut orgs: Vec<OrgName> = Vec::new();
                for part in text.split(',').map(str::trim).filter(|o| !o.is_empty()) {
                    match OrgName::parse(part) {
                        Err(e) => r.fail(ORGS, e.to_string()),
                        Ok(org) if !orgs.iter().any(|o| o.matches(org.as_str())) => orgs.push(org),
                        Ok(_) => {}
                    }
                }
                if orgs.is_empty() && !r.has_problems() {
                    r.fail(ORGS, "lists no organization");
                }
                orgs
            }
        };

        let scan = ScanSettings::read(&mut r, Some(DEFAULT_SERVICE_TIME_BUDGET));

        let auth = match r.parse(AUTH, AuthMode::parse) {
            None => AuthMode::Pat,
            Some(AuthMode::OnBehalfOf) => {
                r.fail(
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
            Some(mode) => mode,
        };
        let credentials = CredentialSettings::read(&mut r, auth, None);
        let callers = CallerSettings::read(&mut r);
        let http_runs = r.choice(HTTP_RUNS, HttpRuns::Queue);
        // Secret URLs: a problem names the webhook's position and host, never its URL. A
        // webhook that cannot be used is a warning, not a reason to serve no reports (an
        // unresolved Key Vault reference arrives as its own text).
        let mut notify = Vec::new();
        let hooks = r.get(NOTIFY).unwrap_or_default();
        let hooks = hooks.split(',').map(str::trim).filter(|h| !h.is_empty());
        for (i, text) in hooks.enumerate() {
            match Webhook::parse(text) {
                Ok(hook) => notify.push(hook),
                Err(e) => r.warn(format!("{NOTIFY}: webhook {} is not used: {e}", i + 1)),
            }
        }

        let container = r
            .get(CONTAINER)
            .unwrap_or_else(|| DEFAULT_CONTAINER.to_owned());
        if !is_container_name(&container) {
            r.fail(
                CONTAINER,
                format!(
                    "'{container}' is not a container name (3-63 lowercase letters, digits and single hyphens)"
                ),
            );
        }
        let sas_minutes = r.number(SAS_MINUTES, DEFAULT_SAS_MINUTES, 1, MAX_SAS_MINUTES);
        // 0 takes any free port (the port listened on is logged).
        let port = r.parse(PORT, |text| {
            text.parse::<u16>()
                .map_err(|_| format!("'{text}' is not a TCP port"))
        });
        let storage = read_storage(&mut r, auth);
        check_schedule(&mut r);

        let ((), warnings) = r.finish(())?;
        let Some(storage) = storage else {
            // `read_storage` notes why whenever it finds none; this only keeps that promise.
            return Err(SettingsError(vec![SettingError {
                setting: STORAGE_CONNECTION,
                problem: "no usable report storage".into(),
            }]));
        };
        Ok(Self {
            orgs,
            scan,
            auth,
            credentials,
            callers,
            http_runs,
            notify,
            container,
            sas_lifetime: time::Duration::minutes(i64::from(sas_minutes)),
            storage,
            port,
            warnings,
        })
    }

    /// The configured organization meant by `org` (matched without regard to case).
    pub fn find_org(&self, org: &str) -> Option<&OrgName> {
        self.orgs.iter().find(|o| o.matches(org))
    }

    /// The plan of a report of `org`: every format, the service's scan settings.
    pub fn report_plan(&self, org: OrgName) -> ReportPlan {
        self.scan.plan(org, Format::ALL.to_vec())
    }
}

fn read_storage(r: &mut Reader<'_>, auth: AuthMode) -> Option<StorageSetting> {
    match (r.get(STORAGE_ACCOUNT_URL), r.get(STORAGE_CONNECTION)) {
        (Some(text), _) => match normalize_endpoint(&text) {
            Some(url) if url.scheme() == "https" => Some(StorageSetting::AccountUrl {
                url,
                client_id: storage_client_id(r, auth),
            }),
            Some(_) => {
                r.fail(
                    STORAGE_ACCOUNT_URL,
                    "must be an https URL (a managed identity token is only sent over https)",
                );
                None
            }
            None => {
                r.fail(
                    STORAGE_ACCOUNT_URL,
                    "not a URL like https://ACCOUNT.blob.core.windows.net",
                );
                None
            }
        },
        (None, Some(text)) => match parse_connection_string(&text) {
            Ok(account) => Some(StorageSetting::ConnectionString(account)),
            Err(e) => {
                r.fail(
                    STORAGE_CONNECTION,
                    format!("the connection string is not usable: {e}"),
                );
                None
            }
        },
        (None, None) => {
            r.fail(
                STORAGE_CONNECTION,
                format!(
                    "not set: give a storage connection string with an account key \
                     (UseDevelopmentStorage=true for Azurite), or set {STORAGE_ACCOUNT_URL} to use a managed identity"
                ),
            );
            None
        }
    }
}

fn check_schedule(r: &mut Reader<'_>) {
    match r.get(SCHEDULE) {
        Some(schedule) => {
            let fields = schedule.split_whitespace().count();
            if fields != 6 {
                r.warn(format!(
                    "{SCHEDULE} '{schedule}' has {fields} fields; the timer needs a 6-field NCRONTAB \
                     expression such as '0 0 6 * * 1' (Mondays 06:00 UTC)"
                ));
            }
        }
        None => r.warn(format!(
            "{SCHEDULE} is not set: the Functions host cannot load the PatReportTimer function without it \
             (use '0 0 6 * * 1' for Mondays 06:00 UTC)"
        )),
    }
}

/// The client id of the managed identity that reaches the report storage:
/// `PATREPORT_STORAGE_CLIENT_ID` (`system` for the system-assigned one), else `AZURE_CLIENT_ID`.
/// In the modes where `AZURE_CLIENT_ID` is a service principal, that fallback is surely not
/// what was meant, so it is warned about.
fn storage_client_id(r: &mut Reader<'_>, auth: AuthMode) -> Option<String> {
    match r.get(STORAGE_CLIENT_ID) {
        Some(id) if id.eq_ignore_ascii_case(SYSTEM_ASSIGNED) => None,
        Some(id) => Some(id),
        None => {
            let fallback = r.get(CLIENT_ID);
            if fallback.is_some()
                && matches!(auth, AuthMode::ClientSecret | AuthMode::WorkloadIdentity)
            {
                r.warn(format!(
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

    fn config(pairs: &[(&str, &str)]) -> Result<ServiceSettings, SettingsError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ServiceSettings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn a_minimal_local_configuration_uses_the_defaults() {
        let c = config(&[
            (ORGS, "fabrikam, Contoso ,fabrikam"),
            (STORAGE_CONNECTION, "UseDevelopmentStorage=true"),
            (SCHEDULE, "0 0 6 * * 1"),
        ])
        .unwrap();
        let orgs: Vec<&str> = c.orgs.iter().map(|o| o.as_str()).collect();
        assert_eq!(orgs, vec!["fabrikam", "Contoso"]);
        assert_eq!(c.find_org("contoso").map(|o| o.as_str()), Some("Contoso"));
        assert_eq!(c.container, "reports");
        assert_eq!(c.sas_lifetime, time::Duration::minutes(60));
        assert_eq!(c.scan.ado_url.as_str(), "https://vssps.dev.azure.com/");
        assert_eq!(c.scan.time_budget, Some(DEFAULT_SERVICE_TIME_BUDGET));
        assert!(!c.scan.include_invalid);
        assert!(!c.scan.include_ssh_keys);
        assert_eq!(c.scan.subject_types, ["aad", "msa"]);
        assert_eq!(c.auth, AuthMode::Pat);
        assert!(matches!(c.storage, StorageSetting::ConnectionString(_)));
        assert!(c.warnings.is_empty());
    }

    #[test]
    fn webhooks_and_a_policy_are_read_and_an_unusable_webhook_only_warns() {
        let c = config(&[
            (ORGS, "fabrikam"),
            (STORAGE_CONNECTION, "UseDevelopmentStorage=true"),
            (
                NOTIFY,
                "teams:https://x.logic.azure.com/wf/secret-sig, @Microsoft.KeyVault(SecretUri=https://kv/)",
            ),
            (POLICY, r#"{"max_lifetime_days": 30}"#),
        ])
        .unwrap();
        assert_eq!(c.notify.len(), 1);
        assert_eq!(c.scan.policy.max_lifetime_days, 30);
        let warnings = c.warnings.join("\n");
        assert!(
            warnings.contains("PATREPORT_NOTIFY: webhook 2 is not used"),
            "{warnings}"
        );
        assert!(
            !format!("{c:?}").contains("secret-sig"),
            "the URL is never shown"
        );

        let e = config(&[
            (ORGS, "fabrikam"),
            (STORAGE_CONNECTION, "UseDevelopmentStorage=true"),
            (POLICY, r#"{"max_lifetime_days": 0}"#),
        ])
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("PATREPORT_POLICY") && e.contains("at least 1"),
            "{e}"
        );
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
            serde_json::from_str(include_str!("../../local.settings.sample.json")).unwrap();
        let values = sample["Values"].as_object().unwrap();
        use names::ReadBy;
        let read: Vec<&str> = SETTINGS
            .iter()
            .filter(|s| matches!(s.read_by, ReadBy::Service | ReadBy::Both))
            .map(|s| s.name)
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
                    || key.starts_with("AzureFunctionsJobHost__"),
                "local.settings.sample.json lists {key}, which patreport does not read"
            );
        }
        assert!(!values.contains_key(PORT), "the Functions host sets {PORT}");
        assert!(
            !values.contains_key(WEBSITE_AUTH_ENABLED),
            "the platform sets it; setting it by hand would trust a header anyone can send"
        );
        let c = ServiceSettings::from_lookup(|k| {
            values.get(k).and_then(|v| v.as_str()).map(str::to_owned)
        })
        .expect("the sample is a valid configuration, credential settings included");
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        // Secure by default: until the app registration is filled in, callers are refused,
        // and the reasons name the settings to fill in.
        let runtime = crate::entra::AuthRuntime::new(None).unwrap();
        let policy = crate::callers::CallerPolicy::new(c.callers.clone(), &runtime);
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
        assert_eq!(HttpRuns::OnBehalfOf.name(), "on-behalf-of");
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
    fn every_problem_of_every_part_is_reported_at_once() {
        let e = config(&[
            (ORGS, "fabrikam"),
            (STORAGE_CONNECTION, "UseDevelopmentStorage=true"),
            (TIME_BUDGET, "50"),
            (REQUEST_TIMEOUT, "soon"),
            (INCLUDE_INVALID, "maybe"),
            (INCLUDE_SSH_KEYS, "sometimes"),
            (TENANT_ID, "not a tenant"),
            (AUTHORITY_HOST, "http://login.example"),
            (VAULT_AUTH, "password"),
            (ADO_URL, "http://ado.example.com"),
        ])
        .unwrap_err();
        for setting in [
            TIME_BUDGET,
            REQUEST_TIMEOUT,
            INCLUDE_INVALID,
            INCLUDE_SSH_KEYS,
            TENANT_ID,
            AUTHORITY_HOST,
            VAULT_AUTH,
            ADO_URL,
        ] {
            assert!(e.names(setting), "{setting} missing from: {e}");
        }
        assert!(e.to_string().starts_with("8 invalid settings"), "{e}");
    }

    #[test]
    fn the_service_reads_the_scan_settings_of_the_command_line() {
        let c = config(&[
            (ORGS, "fabrikam"),
            (STORAGE_CONNECTION, "UseDevelopmentStorage=true"),
            (SCHEDULE, "0 0 6 * * 1"),
            (TIME_BUDGET, "20m"),
            (INCLUDE_INVALID, "true"),
            (INCLUDE_SSH_KEYS, "true"),
            (SUBJECT_TYPES, "aad"),
            (PAT_PAGE_SIZE, "50"),
            (REQUEST_TIMEOUT, "90s"),
            (MAX_RETRIES, "3"),
        ])
        .unwrap();
        let plan = c.report_plan(c.orgs[0].clone());
        assert_eq!(plan.scan.time_budget, Some(Duration::from_secs(1200)));
        assert!(plan.report.include_invalid);
        assert!(plan.scan.include_ssh_keys);
        assert_eq!(plan.client.subject_types, ["aad"]);
        assert_eq!(
            (plan.client.pat_page_size, plan.client.max_retries),
            (50, 3)
        );
        assert_eq!(plan.client.request_timeout, Duration::from_secs(90));
        assert_eq!(plan.formats, Format::ALL);
    }

    #[test]
    fn names_are_checked() {
        assert!(is_container_name("reports") && is_container_name("pat-reports-01"));
        assert!(
            !is_container_name("ab") && !is_container_name("a--b") && !is_container_name("Reports")
        );
    }
}
