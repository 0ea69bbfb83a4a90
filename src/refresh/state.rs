//! The state of the last full picture of an organization: its users and tokens as the last
//! complete scan (or refresh) saw them, when, and what the audit log said about its tokens.
//! An incremental refresh starts from it. It has its own version, independent of the
//! report's JSON schema, and never holds a secret (the inventory types have no secret field).

use crate::auditlog::Signals;
use crate::domain::OrgName;
use crate::inventory::UserTokens;
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};
use time::OffsetDateTime;

/// The state's shape. A reader takes this version and every earlier one.
pub const STATE_VERSION: u32 = 1;

/// A state as read.
#[derive(Debug, Clone, Deserialize)]
pub struct State {
    pub version: u32,
    pub org: OrgName,
    /// The picture holds for the organization at this time: the audit log is read from here.
    #[serde(with = "crate::domain::timestamp::serde")]
    pub as_of: OffsetDateTime,
    /// When the last full scan (every user's tokens listed) happened.
    #[serde(with = "crate::domain::timestamp::serde")]
    pub last_full_scan: OffsetDateTime,
    /// Whether the users' SSH keys were listed too.
    #[serde(default)]
    pub ssh_keys: bool,
    pub users: Vec<UserTokens>,
    #[serde(default)]
    pub signals: Signals,
    /// Ids of the `Token` events already applied that the next window's overlap reads again:
    /// skipped then, so an event whose token is gone by now cannot force a full scan.
    #[serde(default)]
    pub seen_events: Vec<String>,
    /// The audit log has been read up to here (`None`: up to `as_of`). Behind `as_of` after a
    /// run that could not read the log, so the next one reads the gap for its leaks and uses.
    #[serde(default, with = "crate::domain::timestamp::serde::option")]
    pub audit_until: Option<OffsetDateTime>,
}

/// A state as written: borrows the inventory, so writing it copies nothing.
#[derive(Serialize)]
pub struct StateRef<'a> {
    pub version: u32,
    pub org: &'a OrgName,
    #[serde(with = "crate::domain::timestamp::serde")]
    pub as_of: OffsetDateTime,
    #[serde(with = "crate::domain::timestamp::serde")]
    pub last_full_scan: OffsetDateTime,
    pub ssh_keys: bool,
    pub users: &'a [UserTokens],
    pub signals: &'a Signals,
    pub seen_events: &'a [String],
    #[serde(with = "crate::domain::timestamp::serde::option")]
    pub audit_until: Option<OffsetDateTime>,
}

/// Why a stored state cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("unreadable: {0}")]
    Unreadable(String),
    #[error(
        "written by a newer patreport (state version {0}; this one reads up to {STATE_VERSION})"
    )]
    Newer(u32),
    #[error("it is the state of organization '{0}'")]
    OtherOrg(String),
}

impl State {
    /// Read a state of `org`.
    pub fn read(reader: impl Read, org: &OrgName) -> Result<State, StateError> {
        let state: State = serde_json::from_reader(std::io::BufReader::new(reader))
            .map_err(|e| StateError::Unreadable(e.to_string()))?;
        if state.version > STATE_VERSION {
            return Err(StateError::Newer(state.version));
        }
        if !state.org.as_str().eq_ignore_ascii_case(org.as_str()) {
            return Err(StateError::OtherOrg(state.org.to_string()));
        }
        Ok(state)
    }
}

impl StateRef<'_> {
    pub fn write(&self, writer: impl Write) -> std::io::Result<()> {
        let mut out = std::io::BufWriter::new(writer);
        serde_json::to_writer(&mut out, self)?;
        out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::{Pat, User};
    use time::macros::datetime;

    #[test]
    fn a_state_reads_back_and_refuses_newer_versions_and_other_orgs() {
        let org = OrgName::parse("contoso").unwrap();
        let users = vec![UserTokens {
            user: User {
                descriptor: "aad.a".into(),
                ..User::default()
            },
            pats: vec![Pat {
                authorization_id: Some("id".into()),
                is_valid: true,
                ..Pat::default()
            }],
            ssh_keys: vec![],
        }];
        let signals = Signals::new();
        let mut bytes = Vec::new();
        StateRef {
            version: STATE_VERSION,
            org: &org,
            as_of: datetime!(2026-11-29 10:00 UTC),
            last_full_scan: datetime!(2026-11-28 10:00 UTC),
            ssh_keys: false,
            users: &users,
            signals: &signals,
            seen_events: &[],
            audit_until: None,
        }
        .write(&mut bytes)
        .unwrap();
        let state = State::read(&bytes[..], &OrgName::parse("Contoso").unwrap()).unwrap();
        assert_eq!(state.users, users);
        assert_eq!(state.as_of, datetime!(2026-11-29 10:00 UTC));
        let other = State::read(&bytes[..], &OrgName::parse("fabrikam").unwrap());
        assert!(matches!(other, Err(StateError::OtherOrg(_))));
        let newer = String::from_utf8(bytes)
            .unwrap()
            .replace(&format!("\"version\":{STATE_VERSION}"), "\"version\":99");
        assert!(matches!(
            State::read(newer.as_bytes(), &org),
            Err(StateError::Newer(99))
        ));
    }
}
