//! Every setting patreport reads, in one table: app settings in Azure, `local.settings.json`
//! under `func start`, environment variables for the command line. The sample settings file
//! is checked against this table by a test, and the offline infra check
//! (`scripts/check_infra.py`) checks the Bicep's app settings against it, so a name cannot
//! drift in one place only.

/// Who reads a setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadBy {
    /// The Functions app (`patreport serve`) only.
    Service,
    /// `patreport report` (and `bench`) only, as the environment form of a flag.
    Cli,
    /// Both, with the same meaning and units.
    Both,
    /// `patreport login` only.
    Login,
    /// Set by the platform, never by hand; read to know what the platform does.
    Platform,
}

/// One setting.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    pub name: &'static str,
    pub read_by: ReadBy,
    /// Holds a secret: never logged, never echoed in an error.
    pub secret: bool,
    pub about: &'static str,
}

// The report: what to scan and how (shared by the command line and the service).
pub const ORGS: &str = "PATREPORT_ORGS";
pub const ADO_URL: &str = "PATREPORT_ADO_URL";
pub const SUBJECT_TYPES: &str = "PATREPORT_SUBJECT_TYPES";
pub const PAT_PAGE_SIZE: &str = "PATREPORT_PAT_PAGE_SIZE";
pub const REQUEST_TIMEOUT: &str = "PATREPORT_REQUEST_TIMEOUT";
pub const MAX_RETRIES: &str = "PATREPORT_MAX_RETRIES";
pub const PAGE_LIMIT: &str = "PATREPORT_PAGE_LIMIT";
pub const CONCURRENCY: &str = "PATREPORT_CONCURRENCY";
pub const TIME_BUDGET: &str = "PATREPORT_TIME_BUDGET";
pub const EXPIRING_DAYS: &str = "PATREPORT_EXPIRING_DAYS";
pub const INCLUDE_INVALID: &str = "PATREPORT_INCLUDE_INVALID";
pub const POLICY: &str = "PATREPORT_POLICY";
pub const NOTIFY: &str = "PATREPORT_NOTIFY";
pub const INCLUDE_SSH_KEYS: &str = "PATREPORT_INCLUDE_SSH_KEYS";
pub const INCREMENTAL: &str = "PATREPORT_INCREMENTAL";
pub const FULL_SCAN_EVERY: &str = "PATREPORT_FULL_SCAN_EVERY";
pub const AUDIT_URL: &str = "PATREPORT_AUDIT_URL";
pub const OUT: &str = "PATREPORT_OUT";
pub const LOG: &str = "PATREPORT_LOG";

// The Azure DevOps credential.
pub const AUTH: &str = "PATREPORT_AUTH";
pub const PAT: &str = "AZURE_DEVOPS_PAT";
pub const PAT_FILE: &str = "AZURE_DEVOPS_PAT_FILE";
pub const AUTHORITY_HOST: &str = "AZURE_AUTHORITY_HOST";
pub const TENANT_ID: &str = "AZURE_TENANT_ID";
/// The app's own identity: user-assigned managed identity, service principal, workload identity.
pub const CLIENT_ID: &str = "AZURE_CLIENT_ID";
pub const CLIENT_SECRET: &str = "AZURE_CLIENT_SECRET";
pub const FEDERATED_TOKEN_FILE: &str = "AZURE_FEDERATED_TOKEN_FILE";
pub const API_CLIENT_ID: &str = "PATREPORT_API_CLIENT_ID";
pub const API_CLIENT_SECRET: &str = "PATREPORT_API_CLIENT_SECRET";
pub const API_CLIENT_CERTIFICATE: &str = "PATREPORT_API_CLIENT_CERTIFICATE";
pub const LOGIN_CLIENT_ID: &str = "PATREPORT_LOGIN_CLIENT_ID";
pub const KEY_VAULT_URL: &str = "PATREPORT_KEY_VAULT_URL";
pub const REFRESH_TOKEN_SECRET: &str = "PATREPORT_REFRESH_TOKEN_SECRET";
pub const VAULT_AUTH: &str = "PATREPORT_VAULT_AUTH";
pub const LOGIN_VAULT_AUTH: &str = "PATREPORT_LOGIN_VAULT_AUTH";
pub const EXTRA_CA_FILE: &str = "PATREPORT_EXTRA_CA_FILE";

// Who may call the HTTP functions.
pub const CALLER_AUTH: &str = "PATREPORT_CALLER_AUTH";
pub const ALLOWED_ROLES: &str = "PATREPORT_ALLOWED_ROLES";
pub const REVOKE_ROLES: &str = "PATREPORT_REVOKE_ROLES";
pub const ALLOWED_GROUPS: &str = "PATREPORT_ALLOWED_GROUPS";
pub const CALLER_AUDIENCES: &str = "PATREPORT_CALLER_AUDIENCES";
pub const CALLER_ISSUERS: &str = "PATREPORT_CALLER_ISSUERS";
pub const WEBSITE_AUTH_ENABLED: &str = "WEBSITE_AUTH_ENABLED";

// The service.
pub const HTTP_RUNS: &str = "PATREPORT_HTTP_RUNS";
pub const CONTAINER: &str = "PATREPORT_CONTAINER";
pub const SAS_MINUTES: &str = "PATREPORT_SAS_MINUTES";
/// Read by the Functions host (`%PATREPORT_SCHEDULE%` in the timer's function.json); the app
/// checks its shape so a typo shows up in its own log too.
pub const SCHEDULE: &str = "PATREPORT_SCHEDULE";
pub const STORAGE_CONNECTION: &str = "AzureWebJobsStorage";
pub const STORAGE_ACCOUNT_URL: &str = "PATREPORT_STORAGE_ACCOUNT_URL";
/// The user-assigned managed identity that reaches the report storage. Its own setting because
/// `AZURE_CLIENT_ID` is the service principal in `client-secret` and `workload-identity` modes.
pub const STORAGE_CLIENT_ID: &str = "PATREPORT_STORAGE_CLIENT_ID";
pub const PORT: &str = "FUNCTIONS_CUSTOMHANDLER_PORT";

const fn setting(name: &'static str, read_by: ReadBy, about: &'static str) -> Setting {
    Setting {
        name,
        read_by,
        secret: false,
        about,
    }
}

const fn secret(name: &'static str, read_by: ReadBy, about: &'static str) -> Setting {
    Setting {
        name,
        read_by,
        secret: true,
        about,
    }
}

use ReadBy::{Both, Cli, Login, Platform, Service};

/// The table.
pub const SETTINGS: &[Setting] = &[
    setting(
        ORGS,
        Both,
        "organizations to report on, comma-separated (the command line takes one)",
    ),
    setting(
        ADO_URL,
        Both,
        "base URL of the Graph and Token Admin APIs (https; http only on loopback)",
    ),
    setting(
        SUBJECT_TYPES,
        Both,
        "Graph subject types to list, comma-separated (default aad,msa)",
    ),
    setting(
        PAT_PAGE_SIZE,
        Both,
        "page size asked of the Token Admin API (default 20)",
    ),
    setting(
        REQUEST_TIMEOUT,
        Both,
        "time allowed for one HTTP request, with a unit (default 60s)",
    ),
    setting(
        MAX_RETRIES,
        Both,
        "retries of one request on 429, 5xx and connection errors (default 8)",
    ),
    setting(
        PAGE_LIMIT,
        Both,
        "pages one listing may take before it is taken for one that never ends (default 10000)",
    ),
    setting(
        CONCURRENCY,
        Both,
        "PAT listings in flight at once (default 16)",
    ),
    setting(
        TIME_BUDGET,
        Both,
        "stop starting new work after this long, with a unit (service default 50m)",
    ),
    setting(
        EXPIRING_DAYS,
        Both,
        "a valid PAT expiring within this many days is 'expiring' (default 30)",
    ),
    setting(
        INCLUDE_INVALID,
        Both,
        "also list revoked PATs as rows: true or false (default false)",
    ),
    setting(
        POLICY,
        Both,
        "the findings' policy: a TOML or JSON file, or inline JSON (default: built-in policy)",
    ),
    secret(
        NOTIFY,
        Both,
        "webhooks told of each scheduled report (Teams, Slack, JSON), comma-separated; secret",
    ),
    setting(
        INCLUDE_SSH_KEYS,
        Both,
        "also list every user's SSH public keys: true or false (default false)",
    ),
    setting(
        INCREMENTAL,
        Both,
        "refresh from the audit log, reading only the owners whose tokens changed, when the last \
         state allows: true or false (default false on the command line, true for the service)",
    ),
    setting(
        FULL_SCAN_EVERY,
        Both,
        "with incremental refresh, a full scan at least this often, as a check (default 7d)",
    ),
    setting(
        AUDIT_URL,
        Both,
        "Audit Log base URL (default https://auditservice.dev.azure.com)",
    ),
    setting(OUT, Cli, "folder for the report files (default reports)"),
    setting(LOG, Both, "log filter, e.g. info or patreport=debug"),
    setting(
        AUTH,
        Both,
        "how to reach Azure DevOps: pat, managed-identity, client-secret, ...",
    ),
    secret(PAT, Both, "a personal access token (auth pat)"),
    setting(PAT_FILE, Both, "a file holding the PAT (auth pat)"),
    setting(
        AUTHORITY_HOST,
        Both,
        "Entra authority host (sovereign clouds)",
    ),
    setting(TENANT_ID, Both, "the Entra tenant"),
    setting(
        CLIENT_ID,
        Both,
        "the app's identity: user-assigned managed identity or service principal",
    ),
    secret(
        CLIENT_SECRET,
        Both,
        "the service principal's secret (auth client-secret)",
    ),
    setting(
        FEDERATED_TOKEN_FILE,
        Both,
        "the projected token of workload identity",
    ),
    setting(
        API_CLIENT_ID,
        Service,
        "the patreport API app registration (callers' audience, on-behalf-of client)",
    ),
    secret(
        API_CLIENT_SECRET,
        Service,
        "the API app's secret, for on-behalf-of",
    ),
    setting(
        API_CLIENT_CERTIFICATE,
        Service,
        "a PEM file with the API app's certificate and key, for on-behalf-of",
    ),
    setting(
        LOGIN_CLIENT_ID,
        Both,
        "the public client app `patreport login` signs in with",
    ),
    setting(
        KEY_VAULT_URL,
        Both,
        "the Key Vault holding the stored sign-in (auth refresh-token)",
    ),
    setting(
        REFRESH_TOKEN_SECRET,
        Both,
        "the Key Vault secret name of the stored sign-in",
    ),
    setting(
        VAULT_AUTH,
        Both,
        "how patreport reaches the Key Vault (default managed-identity)",
    ),
    setting(
        LOGIN_VAULT_AUTH,
        Login,
        "how `patreport login` reaches the Key Vault (default azure-cli)",
    ),
    setting(
        EXTRA_CA_FILE,
        Both,
        "extra CAs (PEM) trusted for sign-in: TLS-inspecting proxies",
    ),
    setting(
        CALLER_AUTH,
        Service,
        "how callers are identified: bearer or app-service",
    ),
    setting(ALLOWED_ROLES, Service, "app roles that may ask for reports"),
    setting(
        REVOKE_ROLES,
        Service,
        "app roles that may revoke tokens over HTTP; unset: no revoke endpoint (default)",
    ),
    setting(
        ALLOWED_GROUPS,
        Service,
        "group object ids that may ask for reports",
    ),
    setting(
        CALLER_AUDIENCES,
        Service,
        "accepted audiences of callers' tokens",
    ),
    setting(
        CALLER_ISSUERS,
        Service,
        "accepted issuers of callers' tokens",
    ),
    setting(
        WEBSITE_AUTH_ENABLED,
        Platform,
        "set by App Service when App Service Authentication is on",
    ),
    setting(
        HTTP_RUNS,
        Service,
        "how HTTP report requests run: queue or on-behalf-of",
    ),
    setting(
        CONTAINER,
        Service,
        "the blob container of the reports (default reports)",
    ),
    setting(
        SAS_MINUTES,
        Service,
        "lifetime of download links in minutes (default 60)",
    ),
    setting(SCHEDULE, Service, "the timer's NCRONTAB schedule"),
    secret(
        STORAGE_CONNECTION,
        Service,
        "storage connection string (account key, or UseDevelopmentStorage=true)",
    ),
    setting(
        STORAGE_ACCOUNT_URL,
        Service,
        "the report storage account URL, reached with a managed identity",
    ),
    setting(
        STORAGE_CLIENT_ID,
        Service,
        "the managed identity for the report storage ('system' for system-assigned)",
    ),
    setting(
        PORT,
        Platform,
        "the port the Functions host tells the handler to listen on",
    ),
];

/// The setting called `name`, if patreport reads one.
pub fn find(name: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_is_listed_once() {
        let mut names: Vec<&str> = SETTINGS.iter().map(|s| s.name).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(names.len(), before, "a setting is listed twice");
        assert!(find(TIME_BUDGET).is_some_and(|s| s.read_by == ReadBy::Both));
        assert!(find(PAT).is_some_and(|s| s.secret));
    }
}
