//! Azure DevOps organization names.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The most characters Azure DevOps allows in an organization name.
pub const MAX_LEN: usize = 50;

/// An organization name as in `https://dev.azure.com/{name}`: letters, digits and hyphens,
/// starting with a letter or digit, at most 50 characters. The service treats names without
/// regard to case; the spelling given is kept for display.
///
/// Because of that alphabet an organization name is safe in a URL path segment, a file name
/// and a blob name, and can never collide with the service's own `_runs/` folder.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct OrgName(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "'{0}' is not an organization name (letters, digits and hyphens, starting with a letter or digit, at most 50)"
)]
pub struct OrgNameError(String);

impl OrgName {
    pub fn parse(text: &str) -> Result<Self, OrgNameError> {
        let text = text.trim();
        let valid = !text.is_empty()
            && text.len() <= MAX_LEN
            && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && text.starts_with(|c: char| c.is_ascii_alphanumeric());
        if valid {
            Ok(Self(text.to_owned()))
        } else {
            Err(OrgNameError(super::quoted(text)))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The lowercase form, for folder and blob names (one folder per organization, whatever
    /// case it was asked for in).
    pub fn key(&self) -> String {
        self.0.to_ascii_lowercase()
    }

    /// Whether `other` names this organization (case-insensitively, as the service does).
    pub fn matches(&self, other: &str) -> bool {
        self.0.eq_ignore_ascii_case(other.trim())
    }
}

impl fmt::Display for OrgName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for OrgName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for OrgName {
    type Err = OrgNameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for OrgName {
    type Error = OrgNameError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<OrgName> for String {
    fn from(value: OrgName) -> Self {
        value.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_once_and_keep_their_spelling() {
        let org = OrgName::parse(" Fabrikam-1 ").unwrap();
        assert_eq!(org.as_str(), "Fabrikam-1");
        assert_eq!(org.key(), "fabrikam-1");
        assert!(org.matches("FABRIKAM-1"));
        for bad in ["", "-x", "a b", "fab/rikam", "../x", &"a".repeat(51)] {
            assert!(OrgName::parse(bad).is_err(), "{bad:?}");
        }
        assert!(OrgName::parse(&"a".repeat(50)).is_ok());
    }

    #[test]
    fn serde_refuses_a_bad_name() {
        let org: OrgName = serde_json::from_str("\"contoso\"").unwrap();
        assert_eq!(serde_json::to_string(&org).unwrap(), "\"contoso\"");
        let e = serde_json::from_str::<OrgName>("\"con/toso\"").unwrap_err();
        assert!(e.to_string().contains("not an organization name"), "{e}");
    }

    #[test]
    fn errors_quote_the_input_briefly_and_on_one_line() {
        let e = OrgName::parse(&format!("a\nb{}", "x".repeat(100))).unwrap_err();
        let text = e.to_string();
        assert!(!text.contains('\n') && text.len() < 200, "{text}");
    }
}
