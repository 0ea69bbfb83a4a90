//! Run ids: the names of the Functions app's runs.

use super::timestamp;
use serde::{Deserialize, Serialize};
use std::fmt;
use time::OffsetDateTime;

/// `yyyymmdd-hhmmss-` (UTC) and 16 random hex digits: sortable by time, and two runs asked
/// for in the same second stay apart. Only ASCII digits, letters a-f and hyphens, so a run id
/// is safe in a blob name and a URL path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RunId(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a run id")]
pub struct RunIdError(String);

const LEN: usize = 32;

impl RunId {
    /// A new id for a run asked for at `now`.
    pub fn new(now: OffsetDateTime) -> Self {
        Self(format!(
            "{}-{:016x}",
            timestamp::stamp(now),
            fastrand::u64(..)
        ))
    }

    pub fn parse(text: &str) -> Result<Self, RunIdError> {
        let b = text.as_bytes();
        let valid = b.len() == LEN
            && b[..8].iter().all(u8::is_ascii_digit)
            && b[8] == b'-'
            && b[9..15].iter().all(u8::is_ascii_digit)
            && b[15] == b'-'
            && b[16..]
                .iter()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c));
        if valid {
            Ok(Self(text.to_owned()))
        } else {
            Err(RunIdError(super::quoted(text)))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The last six hex digits: enough to tell apart two reports of one organization that
    /// finished in the same second.
    pub fn short(&self) -> &str {
        &self.0[LEN - 6..]
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for RunId {
    type Error = RunIdError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<RunId> for String {
    fn from(value: RunId) -> Self {
        value.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn run_ids_are_sortable_and_checked() {
        let id = RunId::new(datetime!(2026-11-24 09:05:03 +02:00));
        assert!(id.as_str().starts_with("20261124-070503-"), "{id}");
        assert_eq!(RunId::parse(id.as_str()).unwrap(), id);
        assert_eq!(id.short(), &id.as_str()[26..]);
        assert!(RunId::parse("../../etc/passwd").is_err());
        assert!(RunId::parse("20261124-070503-XYZ0000000000000").is_err());
        assert_ne!(
            RunId::new(datetime!(2026-11-24 09:05:03 UTC)),
            RunId::new(datetime!(2026-11-24 09:05:03 UTC))
        );
    }

    #[test]
    fn serde_refuses_a_bad_id() {
        assert!(serde_json::from_str::<RunId>("\"x\"").is_err());
        let id = RunId::new(datetime!(2026-11-24 09:05:03 UTC));
        let text = serde_json::to_string(&id).unwrap();
        assert_eq!(serde_json::from_str::<RunId>(&text).unwrap(), id);
    }
}
