//! The Audit Log as plain data: an event as the refresh reads it, what a `Token` event says,
//! and the signals the log gives about individual PATs (last audited use, leaks), kept per
//! authorization id across runs.
//!
//! What is public about the log (docs/contracts.md, "Audit Log"): `Token.*` events name a PAT
//! only by its display name (and, for system events, its owner's display name); any other
//! event made with a PAT names the PAT's authorization id in `authenticationMechanism`.

use serde_json::{Map, Value};
use std::collections::BTreeMap;
use time::OffsetDateTime;

/// One audit log entry, with only the fields patreport reads.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEvent {
    /// Unique per event: the key for deduplicating overlapping windows.
    pub id: String,
    pub timestamp: OffsetDateTime,
    pub action_id: String,
    pub area: String,
    pub actor_user_id: Option<String>,
    pub actor_upn: Option<String>,
    pub actor_display_name: Option<String>,
    pub authentication_mechanism: Option<String>,
    pub user_agent: Option<String>,
    pub ip_address: Option<String>,
    /// Free-form, specific to each action (`DisplayName`, `ValidTo`, `OwnerName`, ...).
    pub data: Map<String, Value>,
}

/// The documented `Token` actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenAction {
    PatCreate,
    PatUpdate,
    PatRevoke,
    PatExpired,
    PatSystemRevoke,
    PatPublicDiscovery,
    SshCreate,
    SshUpdate,
    SshRevoke,
}

impl TokenAction {
    fn of(action_id: &str) -> Option<Self> {
        let name = action_id.strip_prefix("Token.")?;
        Some(match name {
            "PatCreateEvent" => Self::PatCreate,
            "PatUpdateEvent" => Self::PatUpdate,
            "PatRevokeEvent" => Self::PatRevoke,
            "PatExpiredEvent" => Self::PatExpired,
            "PatSystemRevokeEvent" => Self::PatSystemRevoke,
            "PatPublicDiscoveryEvent" => Self::PatPublicDiscovery,
            "SshCreateEvent" => Self::SshCreate,
            "SshUpdateEvent" => Self::SshUpdate,
            "SshRevokeEvent" => Self::SshRevoke,
            _ => return None,
        })
    }

    /// About an SSH key rather than a PAT.
    pub fn is_ssh(self) -> bool {
        matches!(self, Self::SshCreate | Self::SshUpdate | Self::SshRevoke)
    }

    /// Made by the token's owner, normally (self-service).
    pub fn by_owner(self) -> bool {
        matches!(
            self,
            Self::PatCreate | Self::PatUpdate | Self::SshCreate | Self::SshUpdate
        )
    }
}

/// What one event means for the token inventory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Meaning {
    /// Not in the `Token` area: nothing changed in the inventory.
    Other,
    Token(TokenAction),
    /// A `Token` action that is not documented: the refresh cannot know what it changed.
    Unknown,
}

impl AuditEvent {
    pub fn meaning(&self) -> Meaning {
        if !self.area.eq_ignore_ascii_case("Token") && !self.action_id.starts_with("Token.") {
            return Meaning::Other;
        }
        match TokenAction::of(&self.action_id) {
            Some(action) => Meaning::Token(action),
            None => Meaning::Unknown,
        }
    }

    /// A text field of `data`, trimmed; `None` when missing or blank.
    pub fn data_text(&self, key: &str) -> Option<&str> {
        self.data
            .get(key)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|t| !t.is_empty())
    }

    /// `data.ValidTo`, when present and readable.
    pub fn valid_to(&self) -> Option<OffsetDateTime> {
        self.data_text("ValidTo").and_then(|t| {
            crate::domain::timestamp::parse_service_datetime(t)
                .ok()
                .flatten()
        })
    }

    /// The authorization id of the PAT this event was made with, if it was made with one:
    /// `authenticationMechanism` reads like `PAT_Unscoped authorizationId: <id>`.
    pub fn made_with_pat(&self) -> Option<String> {
        let mechanism = self.authentication_mechanism.as_deref()?;
        if !mechanism
            .trim_start()
            .to_ascii_uppercase()
            .starts_with("PAT")
        {
            return None;
        }
        let at = mechanism.to_ascii_lowercase().find("authorizationid")?;
        let rest =
            mechanism[at + "authorizationid".len()..].trim_start_matches([':', ' ', '=', '{']);
        let hex: String = rest
            .chars()
            .take_while(|c| c.is_ascii_hexdigit() || *c == '-')
            .filter(|c| *c != '-')
            .collect();
        // One spelling for every id (the inventory's): lowercase, hyphenated 8-4-4-4-12.
        if hex.len() != 32 {
            return None;
        }
        u128::from_str_radix(&hex, 16).ok().map(crate::domain::guid)
    }

    /// A web browser's user agent (Microsoft Sentinel's "PAT used with browser" rule).
    pub fn from_browser(&self) -> bool {
        self.user_agent.as_deref().is_some_and(|ua| {
            let ua = ua.to_ascii_lowercase();
            ua.starts_with("mozilla/") && !ua.contains("bot")
        })
    }

    /// An action on security, policy, membership, auditing or extensions (the areas of
    /// Microsoft Sentinel's "PAT session misuse" rule): what a leaked PAT is used for.
    pub fn security_sensitive(&self) -> bool {
        const AREAS: [&str; 7] = [
            "Security",
            "Policy",
            "Group",
            "AuditLog",
            "Extension",
            "Project",
            "Organization",
        ];
        AREAS.iter().any(|a| self.area.eq_ignore_ascii_case(a))
            || self.action_id.to_ascii_lowercase().contains("bypass")
    }
}

/// One audited action made with a PAT.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AuditedUse {
    #[serde(with = "crate::domain::timestamp::serde")]
    pub at: OffsetDateTime,
    /// The audit action, e.g. `Git.RefUpdatePoliciesBypassed`.
    pub action: String,
    #[serde(default)]
    pub user_agent: Option<String>,
    #[serde(default)]
    pub ip_address: Option<String>,
}

/// What the audit log says about one token, accumulated across runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TokenSignals {
    /// The latest audited action made with it (access itself is not audited).
    #[serde(default)]
    pub last_use: Option<AuditedUse>,
    /// The latest audited use from a web browser.
    #[serde(default)]
    pub browser_use: Option<AuditedUse>,
    /// The latest audited security-sensitive use.
    #[serde(default)]
    pub sensitive_use: Option<AuditedUse>,
    /// When Azure DevOps found it in a public repository.
    #[serde(default, with = "crate::domain::timestamp::serde::option")]
    pub discovered: Option<OffsetDateTime>,
    /// When Azure DevOps revoked it (normally after finding it in public).
    #[serde(default, with = "crate::domain::timestamp::serde::option")]
    pub system_revoked: Option<OffsetDateTime>,
    /// True when the leak events matched this token by name only and more than one token
    /// fitted: every candidate is marked rather than the leak dropped.
    #[serde(default)]
    pub matched_by_name: bool,
}

/// Signals by authorization id (lowercase).
pub type Signals = BTreeMap<String, TokenSignals>;

fn later(kept: &mut Option<AuditedUse>, seen: AuditedUse) {
    if kept.as_ref().is_none_or(|k| k.at < seen.at) {
        *kept = Some(seen);
    }
}

/// Add the uses a later window saw (`seen`, from [`record_uses`]) to the uses kept so far:
/// the latest of each kind wins.
pub fn merge_uses(kept: &mut Signals, seen: &Signals) {
    for (id, seen) in seen {
        let entry = kept.entry(id.clone()).or_default();
        for (mine, theirs) in [
            (&mut entry.last_use, &seen.last_use),
            (&mut entry.browser_use, &seen.browser_use),
            (&mut entry.sensitive_use, &seen.sensitive_use),
        ] {
            if let Some(theirs) = theirs {
                later(mine, theirs.clone());
            }
        }
    }
}

/// Add the uses that `events` show (events made with a PAT) to `signals`.
pub fn record_uses<'a>(signals: &mut Signals, events: impl IntoIterator<Item = &'a AuditEvent>) {
    for event in events {
        let Some(id) = event.made_with_pat() else {
            continue;
        };
        let seen = AuditedUse {
            at: event.timestamp,
            action: event.action_id.clone(),
            user_agent: event.user_agent.clone(),
            ip_address: event.ip_address.clone(),
        };
        let entry = signals.entry(id).or_default();
        if event.from_browser() {
            later(&mut entry.browser_use, seen.clone());
        }
        if event.security_sensitive() {
            later(&mut entry.sensitive_use, seen.clone());
        }
        later(&mut entry.last_use, seen);
    }
}

/// Keep only the signals of tokens still in the inventory (`keep`).
pub fn retain_known(signals: &mut Signals, keep: &std::collections::HashSet<String>) {
    signals.retain(|id, _| keep.contains(id));
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn event(action: &str, area: &str, mechanism: &str, ua: &str) -> AuditEvent {
        AuditEvent {
            id: "1".into(),
            timestamp: datetime!(2026-11-29 10:00 UTC),
            action_id: action.into(),
            area: area.into(),
            actor_user_id: None,
            actor_upn: None,
            actor_display_name: None,
            authentication_mechanism: Some(mechanism.into()),
            user_agent: Some(ua.into()),
            ip_address: None,
            data: Map::new(),
        }
    }

    const ID: &str = "5F0B2A1C-1111-4000-8000-000000000001";

    #[test]
    fn the_pat_an_event_was_made_with_is_read_tolerantly() {
        let e = |m: &str| event("Git.RepositoryCreated", "Git", m, "git/2.43").made_with_pat();
        let id = ID.to_ascii_lowercase();
        assert_eq!(
            e(&format!("PAT_Unscoped authorizationId: {ID}")),
            Some(id.clone())
        );
        assert_eq!(
            e(&format!("PAT_Scoped authorizationId:{ID}")),
            Some(id.clone())
        );
        assert_eq!(
            e(&format!("SessionToken_Unscoped authorizationId: {ID}")),
            None
        );
        assert_eq!(
            e("PAT_Unscoped authorizationId: 5F0B2A1C111140008000000000000001"),
            Some(id.clone()),
            "32 digits without hyphens are the same id"
        );
        assert_eq!(
            e(&format!("PAT_Unscoped authorizationId: {{{ID}}}")),
            Some(id.clone())
        );
        assert_eq!(e("AAD_Cookie"), None);
        assert_eq!(e("PAT_Unscoped authorizationId: 12"), None);
    }

    #[test]
    fn token_actions_are_known_or_unknown() {
        let m = |a: &str, area: &str| event(a, area, "", "").meaning();
        assert_eq!(
            m("Token.PatCreateEvent", "Token"),
            Meaning::Token(TokenAction::PatCreate)
        );
        assert_eq!(
            m("Token.PatPublicDiscoveryEvent", "Token"),
            Meaning::Token(TokenAction::PatPublicDiscovery)
        );
        assert_eq!(m("Token.PatAccessExpiredEvent", "Token"), Meaning::Unknown);
        assert_eq!(m("Git.RepositoryCreated", "Git"), Meaning::Other);
    }

    #[test]
    fn uses_keep_the_latest_and_flag_browsers_and_sensitive_areas() {
        let mechanism = format!("PAT_Unscoped authorizationId: {ID}");
        let mut early = event(
            "Security.ModifyPermission",
            "Security",
            &mechanism,
            "git/2.4",
        );
        early.timestamp = datetime!(2026-11-28 10:00 UTC);
        let browser = event(
            "Git.RefUpdate",
            "Git",
            &mechanism,
            "Mozilla/5.0 (Windows NT 10.0) Chrome/131.0",
        );
        let mut signals = Signals::new();
        record_uses(&mut signals, [&browser, &early]);
        let s = &signals[&ID.to_ascii_lowercase()];
        assert_eq!(s.last_use.as_ref().unwrap().action, "Git.RefUpdate");
        assert_eq!(
            s.sensitive_use.as_ref().unwrap().action,
            "Security.ModifyPermission"
        );
        assert!(s.browser_use.is_some());
    }
}
