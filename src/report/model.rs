//! The report model: what every writer (xlsx, csv, json) renders. Plain data, no I/O.

use crate::findings::{FindingCounts, Findings, Policy};
use std::sync::Arc;
use time::OffsetDateTime;

/// Where a PAT stands at the time of the report.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum TokenStatus {
    /// Valid and expiring later than the "expiring" window.
    Active,
    /// Valid and expiring within the configured number of days.
    Expiring,
    /// `validTo` is in the past.
    Expired,
    /// Revoked or otherwise invalidated by the service (`isValid: false`).
    Invalid,
}

impl TokenStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenStatus::Active => "active",
            TokenStatus::Expiring => "expiring",
            TokenStatus::Expired => "expired",
            TokenStatus::Invalid => "invalid",
        }
    }
}

/// The user a PAT belongs to: shared by all of that user's rows (one allocation per user,
/// not per PAT, which matters at 100,000 rows). Serialized flat into each row.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Owner {
    #[serde(rename = "owner_display_name")]
    pub display_name: String,
    #[serde(rename = "owner_principal_name")]
    pub principal_name: String,
    #[serde(rename = "owner_mail_address")]
    pub mail_address: String,
    #[serde(rename = "owner_origin")]
    pub origin: String,
    #[serde(rename = "owner_descriptor")]
    pub descriptor: String,
}

/// One row per PAT. It serializes through the column definitions (`columns`), which give the
/// JSON keys; reading it back uses the same names.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct TokenRow {
    #[serde(flatten)]
    pub owner: Arc<Owner>,
    /// `None` when the service sent a null name.
    pub pat_name: Option<String>,
    /// The raw, space-separated scope string (shared between rows with the same scopes).
    pub scope: Arc<str>,
    /// A readable summary of the scopes, e.g. "Full access" or "Code (read), Build (read & execute)".
    pub scope_summary: Arc<str>,
    /// Scope `app_token`: the PAT can do anything the user can.
    pub full_access: bool,
    /// `targetAccounts` null or empty: the PAT reaches every organization the user belongs to.
    pub global: bool,
    pub target_accounts: Vec<String>,
    #[serde(default, with = "crate::domain::timestamp::serde::option")]
    pub valid_from: Option<OffsetDateTime>,
    #[serde(default, with = "crate::domain::timestamp::serde::option")]
    pub valid_to: Option<OffsetDateTime>,
    /// Whole days from the report time to `valid_to` (negative once expired).
    pub days_to_expiry: Option<i64>,
    /// Whole days from `valid_from` to `valid_to`.
    pub lifetime_days: Option<i64>,
    pub status: TokenStatus,
    pub authorization_id: String,
    /// What the policy says about this token (none for a revoked one).
    #[serde(default)]
    pub findings: Findings,
    /// What the audit log says about it (last audited use, a leak), when it says anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit: Option<Box<crate::auditlog::TokenSignals>>,
}

/// One SSH public key of a user (listed with `--include-ssh-keys`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SshKeyRow {
    pub owner_display_name: String,
    pub owner_principal_name: String,
    /// `None` when the service sent a null name.
    pub name: Option<String>,
    pub status: TokenStatus,
    #[serde(default, with = "crate::domain::timestamp::serde::option")]
    pub valid_from: Option<OffsetDateTime>,
    #[serde(default, with = "crate::domain::timestamp::serde::option")]
    pub valid_to: Option<OffsetDateTime>,
    pub days_to_expiry: Option<i64>,
    pub lifetime_days: Option<i64>,
    pub authorization_id: String,
    #[serde(default)]
    pub severity: Option<crate::findings::Severity>,
    #[serde(default)]
    pub findings: Findings,
}

/// A user whose tokens could not be read.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ErrorRow {
    pub user_display_name: String,
    pub user_principal_name: String,
    pub user_descriptor: String,
    /// HTTP status of the last answer, if any.
    pub http_status: Option<u16>,
    pub message: String,
}

/// Every user holding PATs in the report, with counts by status and finding: the Owners sheet.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OwnerSummary {
    pub display_name: String,
    pub principal_name: String,
    pub pats: usize,
    pub by_status: StatusCounts,
    pub full_access: usize,
    pub global: usize,
    /// This owner's tokens by their most severe finding.
    pub critical: usize,
    pub high: usize,
    pub medium: usize,
    pub low: usize,
    /// The earliest expiry among this owner's valid, unexpired tokens.
    #[serde(default, with = "crate::domain::timestamp::serde::option")]
    pub next_expiry: Option<OffsetDateTime>,
}

/// A user holding PATs, for the "top holders" table.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Holder {
    pub display_name: String,
    pub principal_name: String,
    pub pats: usize,
    pub full_access: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StatusCounts {
    pub active: usize,
    pub expiring: usize,
    pub expired: usize,
    pub invalid: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Summary {
    /// Every user the scan listed: read, or recorded as an error.
    pub users_listed: usize,
    /// Users whose tokens were read completely.
    pub users_read: usize,
    /// Users listed whose tokens could not be read (or were not reached).
    pub users_failed: usize,
    pub users_with_pats: usize,
    /// Rows in the report (invalid PATs are counted only when included).
    pub pats: usize,
    pub by_status: StatusCounts,
    pub full_access: usize,
    pub global: usize,
    /// Valid, unexpired PATs expiring within 7 / 30 / 90 days of the report time.
    pub expiring_within_7_days: usize,
    pub expiring_within_30_days: usize,
    pub expiring_within_90_days: usize,
    /// Users with the most PATs, most first (at most 10).
    pub top_holders: Vec<Holder>,
    /// Tokens by their most severe finding, and per rule.
    #[serde(default)]
    pub findings: FindingCounts,
    /// Valid tokens expiring in each of the next 13 weeks (week 0 starts at the report time).
    #[serde(default)]
    pub expiries_by_week: Vec<WeekCount>,
    /// The scopes most valid, unexpired tokens carry, most first (at most 10).
    #[serde(default)]
    pub top_scopes: Vec<ScopeCount>,
    /// SSH keys listed (when asked for), and their findings.
    #[serde(default)]
    pub ssh_keys: usize,
    #[serde(default)]
    pub ssh_key_findings: FindingCounts,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WeekCount {
    /// The first day of the week (UTC), `YYYY-MM-DD`.
    pub week_of: String,
    pub pats: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ScopeCount {
    pub scope: String,
    /// The readable name, or the scope itself when it has none.
    pub label: String,
    pub pats: usize,
}

/// Facts about the run that produced the report.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RunInfo {
    pub org: crate::domain::OrgName,
    #[serde(with = "crate::domain::timestamp::serde")]
    pub started: OffsetDateTime,
    #[serde(with = "crate::domain::timestamp::serde")]
    pub finished: OffsetDateTime,
    pub duration_seconds: f64,
    pub api_calls: u64,
    pub retries: u64,
    pub throttled: u64,
    pub throttle_wait_seconds: f64,
    pub tool_version: String,
    /// Users the service listed more than once: scanned once, counted here.
    #[serde(default)]
    pub duplicate_users: u64,
    /// PAT entries the service repeated within a user's listing: kept once, counted here.
    #[serde(default)]
    pub duplicate_pats: u64,
    /// The rate limit (`X-RateLimit-Limit`, TSTU per window) when the service reported it,
    /// the TSTU consumed, the estimated TSTU per call (overall and per API), the time the
    /// service held answers, and the lowest `X-RateLimit-Remaining` seen: how close the scan
    /// came to the limit. Absent from reports written before they were recorded.
    #[serde(default)]
    pub tstu_limit: Option<f64>,
    #[serde(default)]
    pub tstu_consumed: f64,
    #[serde(default)]
    pub tstu_per_call: Option<f64>,
    #[serde(default)]
    pub tstu_per_call_by_api: std::collections::BTreeMap<String, f64>,
    #[serde(default)]
    pub rate_limit_delay_seconds: f64,
    #[serde(default)]
    pub lowest_remaining: Option<f64>,
    /// False when some users could not be read or the scan stopped early.
    pub complete: bool,
    /// Whether the scan stopped before it had listed every user (time budget, interrupt, a
    /// users page that failed); `stop_reason` says why.
    pub stopped_early: bool,
    pub stop_reason: Option<String>,
    /// The "expiring within N days" window used for `TokenStatus::Expiring`.
    pub expiring_days: u32,
    /// When statuses and days were computed.
    #[serde(with = "crate::domain::timestamp::serde")]
    pub generated: OffsetDateTime,
    /// How the inventory was made: a full scan or an incremental refresh, and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh: Option<crate::inventory::RefreshInfo>,
}

/// The version of the report's JSON shape. 2: `summary.users_listed` / `users_read` (was
/// `users_scanned`), `run.stopped_early` a boolean with `run.stop_reason`. 3: rows carry
/// `findings` and `severity`; `policy`, `owners`, `ssh_keys`, `changes` and the summary's
/// `findings`, `expiries_by_week`, `top_scopes`, `ssh_keys`, `ssh_key_findings` added (all read
/// as absent or empty from earlier versions).
pub const SCHEMA_VERSION: u32 = 3;

/// The whole report.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Report {
    /// [`SCHEMA_VERSION`] when written by this version.
    pub schema_version: u32,
    pub run: RunInfo,
    pub summary: Summary,
    /// The thresholds the findings were judged against (`None` in a report written before
    /// there were findings).
    #[serde(default)]
    pub policy: Option<Policy>,
    pub rows: Vec<TokenRow>,
    /// Every holder, most to act on first.
    #[serde(default)]
    pub owners: Vec<OwnerSummary>,
    pub errors: Vec<ErrorRow>,
    /// Every user's SSH public keys; `None` when the scan did not list them.
    #[serde(default)]
    pub ssh_keys: Option<Vec<SshKeyRow>>,
    /// What changed since the previous report; `None` when no comparison was asked for.
    #[serde(default)]
    pub changes: Option<crate::changes::Changes>,
}

/// Options that shape the report (not the scan).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportOptions {
    /// A valid PAT expiring within this many days is `Expiring`.
    pub expiring_days: u32,
    /// Include revoked / invalid PATs as rows.
    pub include_invalid: bool,
    /// What the findings are judged against.
    pub policy: Policy,
    /// Whether the scan listed SSH keys (so an empty list means "none", not "not asked").
    pub ssh_keys_listed: bool,
}

impl Default for ReportOptions {
    fn default() -> Self {
        Self {
            expiring_days: 30,
            include_invalid: false,
            policy: Policy::default(),
            ssh_keys_listed: false,
        }
    }
}
