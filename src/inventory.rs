//! The inventory: plain data gathered by a scan, before any report logic runs.
//!
//! Nothing here holds a secret. The Token Admin API's `token` and `alternateToken`
//! fields are never read into these types (see `ado::wire`).

use std::time::Duration;
use time::OffsetDateTime;

/// A user of the organization as listed by the Graph API.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct User {
    /// Graph subject descriptor (`aad.…`, `msa.…`), the key for the Token Admin API.
    pub descriptor: String,
    pub display_name: String,
    pub principal_name: String,
    pub mail_address: String,
    /// Identity origin: `aad`, `msa`, `vsts`, `ad`, …
    pub origin: String,
}

/// One personal access token as listed by the Token Admin API.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Pat {
    /// The id used to revoke the PAT; absent only if the service omits it.
    pub authorization_id: Option<String>,
    /// The PAT name the user chose; the service may send `null`.
    pub display_name: Option<String>,
    /// Space-separated scopes; `app_token` means full access.
    pub scope: Option<String>,
    /// Organizations the PAT reaches; `None` or empty means all organizations (global).
    pub target_accounts: Option<Vec<String>>,
    pub valid_from: Option<OffsetDateTime>,
    pub valid_to: Option<OffsetDateTime>,
    /// `false` for revoked or otherwise invalidated tokens.
    pub is_valid: bool,
}

/// One SSH public key as listed by the Token Admin API (`isPublic=true`). Its own type, not a
/// [`Pat`]: the same wire shape, but a key reaches no organization list and is no PAT in any
/// count or finding, so the report cannot mix the two up by accident.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct SshKey {
    /// The id used to revoke the key; absent only if the service omits it.
    pub authorization_id: Option<String>,
    /// The key name the user chose; the service may send `null`.
    pub display_name: Option<String>,
    pub scope: Option<String>,
    pub valid_from: Option<OffsetDateTime>,
    pub valid_to: Option<OffsetDateTime>,
    /// `false` for revoked or otherwise invalidated keys.
    pub is_valid: bool,
}

/// A user whose PATs (and SSH keys, when asked for) were listed completely.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UserTokens {
    pub user: User,
    pub pats: Vec<Pat>,
    /// Empty when the scan did not list SSH keys; inventories written before they were
    /// listed read as having none.
    #[serde(default)]
    pub ssh_keys: Vec<SshKey>,
}

/// A user whose PATs (or SSH keys, when asked for) could not be listed after retries: reported,
/// never dropped.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UserFailure {
    pub user: User,
    /// HTTP status of the last answer, if there was one.
    pub status: Option<u16>,
    pub message: String,
}

/// Counters of one scan, for the Run sheet and the benchmark.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RunStats {
    /// HTTP requests sent, retries included.
    pub api_calls: u64,
    /// Requests that were retries of an earlier attempt.
    pub retries: u64,
    /// Answers that asked us to slow down (429, or `Retry-After` on a 2xx).
    pub throttled: u64,
    /// Total time spent waiting because the service asked us to.
    #[serde(with = "duration_secs")]
    pub throttle_wait: Duration,
    pub user_pages: u64,
    pub pat_pages: u64,
    /// Users the service listed more than once (scanned once).
    #[serde(default)]
    pub duplicate_users: u64,
    /// PAT entries the service listed more than once for the same user (kept once).
    #[serde(default)]
    pub duplicate_pats: u64,
    /// Pages of SSH key listings read (0 when SSH keys were not asked for).
    #[serde(default)]
    pub ssh_key_pages: u64,
    /// SSH key entries the service listed more than once for the same user (kept once).
    #[serde(default)]
    pub duplicate_ssh_keys: u64,
    /// Users whose tokens were taken from the last state instead of listed (incremental
    /// refresh; 0 for a full scan).
    #[serde(default)]
    pub reused_users: u64,
    /// The rate limit as the service reported it (`X-RateLimit-Limit`, TSTU per window);
    /// `None` when no answer carried it.
    #[serde(default)]
    pub tstu_limit: Option<f64>,
    /// TSTU the scan consumed, as measured from `X-RateLimit-Remaining`.
    #[serde(default)]
    pub tstu_consumed: f64,
    /// Estimated TSTU per call over all calls, and per API (`graph`, `tokenadmin`, ...).
    #[serde(default)]
    pub tstu_per_call: Option<f64>,
    #[serde(default)]
    pub tstu_per_call_by_api: std::collections::BTreeMap<String, f64>,
    /// Time the service reported holding answers (`X-RateLimit-Delay`, summed over answers).
    #[serde(default, with = "duration_secs")]
    pub rate_limit_delay: Duration,
    /// The lowest `X-RateLimit-Remaining` seen: how close the scan came to being delayed.
    #[serde(default)]
    pub lowest_remaining: Option<f64>,
}

impl RunStats {
    /// The rate-limit figures of a client's pacing.
    pub fn with_pacing(mut self, pacing: &crate::ado::PacingStats) -> Self {
        self.tstu_limit = pacing.tstu_limit;
        self.tstu_consumed = pacing.tstu_consumed;
        self.tstu_per_call = pacing.mean_tstu_per_call();
        self.tstu_per_call_by_api = pacing.tstu_per_call.clone();
        self.rate_limit_delay = pacing.delayed;
        self.lowest_remaining = pacing.lowest_remaining;
        self
    }
}

/// Everything one scan of one organization found.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Inventory {
    pub org: crate::domain::OrgName,
    pub started: OffsetDateTime,
    pub finished: OffsetDateTime,
    /// Users whose PATs were listed completely (possibly none), in scan order.
    pub users: Vec<UserTokens>,
    /// Users whose PATs could not be listed.
    pub failures: Vec<UserFailure>,
    /// Set when the scan stopped early (for example a time budget); the report is partial.
    pub stopped_early: Option<String>,
    pub stats: RunStats,
    /// What the audit log says about individual tokens, by authorization id (empty when the
    /// log was not read).
    #[serde(default)]
    pub signals: crate::auditlog::Signals,
}

impl Inventory {
    /// Complete means every user was listed and the scan was not cut short.
    pub fn is_complete(&self) -> bool {
        self.failures.is_empty() && self.stopped_early.is_none()
    }

    pub fn pat_count(&self) -> usize {
        self.users.iter().map(|u| u.pats.len()).sum()
    }

    pub fn ssh_key_count(&self) -> usize {
        self.users.iter().map(|u| u.ssh_keys.len()).sum()
    }
}

mod duration_secs {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let secs = f64::deserialize(d)?;
        Duration::try_from_secs_f64(secs).map_err(serde::de::Error::custom)
    }
}

/// How a report's inventory was made, for the Run sheet, the JSON and the run status.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RefreshInfo {
    /// `full` or `incremental`.
    pub mode: String,
    /// Why a full scan ran when a refresh was asked for.
    #[serde(default)]
    pub reason: Option<String>,
    /// The audit log window read, if it was read.
    #[serde(default, with = "crate::domain::timestamp::serde::option")]
    pub audit_from: Option<OffsetDateTime>,
    #[serde(default, with = "crate::domain::timestamp::serde::option")]
    pub audit_to: Option<OffsetDateTime>,
    #[serde(default)]
    pub audit_events: u64,
    #[serde(default)]
    pub token_events: u64,
    /// Users whose tokens were listed in this run.
    #[serde(default)]
    pub owners_read: u64,
    /// Users whose tokens came from the state.
    #[serde(default)]
    pub owners_reused: u64,
    /// What a scheduled full scan found against what the refreshes predicted.
    #[serde(default)]
    pub check: Option<String>,
    /// The picture holds as of this time (the next refresh reads the log from here).
    #[serde(default, with = "crate::domain::timestamp::serde::option")]
    pub as_of: Option<OffsetDateTime>,
    #[serde(default, with = "crate::domain::timestamp::serde::option")]
    pub last_full_scan: Option<OffsetDateTime>,
    /// Ids of the `Token` events this run read (they go into the state, not the report).
    #[serde(skip)]
    pub seen_events: Vec<String>,
    /// The audit log has been read up to here (for the state; `None`: never).
    #[serde(skip)]
    pub audit_until: Option<OffsetDateTime>,
}

impl RefreshInfo {
    pub fn is_incremental(&self) -> bool {
        self.mode == "incremental"
    }

    /// One line for summaries.
    pub fn describe(&self) -> String {
        let mut text = match self.is_incremental() {
            true => format!(
                "incremental: {} token events in the audit log, {} owners read again, {} taken from the last state",
                self.token_events, self.owners_read, self.owners_reused
            ),
            false => format!("full scan of {} owners", self.owners_read),
        };
        if let Some(reason) = &self.reason {
            text.push_str(&format!(" (because {reason})"));
        }
        if let Some(check) = &self.check {
            text.push_str(&format!("; check: {check}"));
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_written_before_the_rate_limit_figures_still_read() {
        let old = r#"{"api_calls":3,"retries":0,"throttled":0,"throttle_wait":0.5,"user_pages":1,"pat_pages":2}"#;
        let stats: RunStats = serde_json::from_str(old).unwrap();
        assert_eq!(stats.api_calls, 3);
        assert_eq!(
            (
                stats.tstu_limit,
                stats.tstu_per_call,
                stats.lowest_remaining
            ),
            (None, None, None)
        );
        assert_eq!(stats.rate_limit_delay, Duration::ZERO);
        let again: RunStats =
            serde_json::from_str(&serde_json::to_string(&stats).unwrap()).unwrap();
        assert_eq!(again, stats);
    }
}
