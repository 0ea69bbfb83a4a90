//! The policy the findings are judged against: thresholds an organization chooses, read from
//! a TOML or JSON file (`--policy FILE`, setting `PATREPORT_POLICY`) and recorded in every
//! report. The defaults follow the options of Azure DevOps' own tenant policies (no global
//! PATs, no full-scoped PATs, a maximum lifetime), which only apply to tokens created after
//! they are turned on: the report shows which existing tokens they would refuse.

use std::path::{Path, PathBuf};

/// Thresholds for the rules. Every field has a default, so a file sets only what it changes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    /// A valid token living longer than this (from valid-from to valid-to) is a finding.
    /// Azure DevOps allows at most a year; its "maximum lifespan" tenant policy lets an
    /// organization choose less.
    pub max_lifetime_days: u32,
    /// Whether full-access (`app_token`) tokens are findings ("restrict full-scoped PATs").
    pub forbid_full_access: bool,
    /// Whether global tokens are findings ("restrict global PATs").
    pub forbid_global: bool,
    /// Expiring within this many days: a medium finding.
    pub expiring_urgent_days: u32,
    /// Expiring within this many days (and not urgently): a low finding.
    pub expiring_soon_days: u32,
    /// An owner holding more active tokens than this: a finding on each of them.
    pub max_active_per_owner: u32,
    /// Scopes counted as broad write or manage rights. `*` matches any run of characters.
    pub broad_scopes: Vec<String>,
    /// An SSH key living longer than this is a finding.
    pub max_ssh_key_lifetime_days: u32,
    /// Days before expiry at which notifications list a token (largest first is not needed).
    pub notify_expiry_days: Vec<u32>,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            max_lifetime_days: 90,
            forbid_full_access: true,
            forbid_global: true,
            expiring_urgent_days: 7,
            expiring_soon_days: 30,
            max_active_per_owner: 10,
            broad_scopes: [
                "*_manage",
                "*_full",
                "vso.code_write",
                "vso.packaging_write",
                "vso.profile_write",
                "vso.tokens",
                "vso.tokenadministration",
            ]
            .map(String::from)
            .to_vec(),
            max_ssh_key_lifetime_days: 365,
            notify_expiry_days: vec![60, 30, 14, 7, 1],
        }
    }
}

/// Why a policy file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("could not read the policy file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the policy file {path} is not valid {format}: {detail}")]
    Parse {
        path: PathBuf,
        format: &'static str,
        detail: String,
    },
    #[error("the policy file {path}: {detail}")]
    Invalid { path: PathBuf, detail: String },
}

impl Policy {
    /// The policy a setting gives: inline JSON when it starts with `{` (convenient as an app
    /// setting), else the path of a file ([`Policy::load`]).
    pub fn from_setting(value: &str) -> Result<Policy, PolicyError> {
        let value = value.trim();
        if !value.starts_with('{') {
            return Policy::load(Path::new(value));
        }
        let inline = PathBuf::from("(inline JSON)");
        let policy: Policy = serde_json::from_str(value).map_err(|e| PolicyError::Parse {
            path: inline.clone(),
            format: "JSON",
            detail: e.to_string(),
        })?;
        policy.validate().map_err(|detail| PolicyError::Invalid {
            path: inline,
            detail,
        })?;
        Ok(policy)
    }

    /// Read a policy file: JSON if it ends in `.json`, TOML otherwise.
    pub fn load(path: &Path) -> Result<Policy, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
            path: path.to_owned(),
            source,
        })?;
        let json = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"));
        let policy: Policy = if json {
            serde_json::from_str(&text).map_err(|e| PolicyError::Parse {
                path: path.to_owned(),
                format: "JSON",
                detail: e.to_string(),
            })?
        } else {
            toml::from_str(&text).map_err(|e| PolicyError::Parse {
                path: path.to_owned(),
                format: "TOML",
                detail: e.message().to_owned(),
            })?
        };
        policy.validate().map_err(|detail| PolicyError::Invalid {
            path: path.to_owned(),
            detail,
        })?;
        Ok(policy)
    }

    /// The checks serde cannot express.
    pub fn validate(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        for (name, value) in [
            ("max_lifetime_days", self.max_lifetime_days),
            ("max_ssh_key_lifetime_days", self.max_ssh_key_lifetime_days),
        ] {
            if value == 0 {
                problems.push(format!("{name} must be at least 1"));
            }
        }
        if self.expiring_urgent_days > self.expiring_soon_days {
            problems.push(format!(
                "expiring_urgent_days ({}) must not exceed expiring_soon_days ({})",
                self.expiring_urgent_days, self.expiring_soon_days
            ));
        }
        if self.notify_expiry_days.iter().any(|d| *d > 3650) {
            problems.push("notify_expiry_days must be at most 3650 days".to_owned());
        }
        if let Some(bad) = self
            .broad_scopes
            .iter()
            .find(|s| s.trim().is_empty() || s.contains(char::is_whitespace))
        {
            problems.push(format!(
                "broad_scopes holds {bad:?}: a scope name has no spaces"
            ));
        }
        match problems.is_empty() {
            true => Ok(()),
            false => Err(problems.join("; ")),
        }
    }

    /// Whether `scope` (one scope name) is one of the broad scopes.
    pub fn is_broad(&self, scope: &str) -> bool {
        self.broad_scopes.iter().any(|p| glob(p, scope))
    }
}

/// `*` matches any run of characters; everything else matches itself, case-insensitively.
fn glob(pattern: &str, text: &str) -> bool {
    let (pattern, text) = (pattern.as_bytes(), text.as_bytes());
    // Iterative matching with one backtrack point: linear enough for scope names.
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p].eq_ignore_ascii_case(&text[t]) {
            p += 1;
            t += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matches_suffixes_and_exact_names() {
        let policy = Policy::default();
        for broad in [
            "vso.code_manage",
            "vso.code_full",
            "vso.CODE_WRITE",
            "vso.tokens",
        ] {
            assert!(policy.is_broad(broad), "{broad}");
        }
        for narrow in [
            "vso.code",
            "vso.code_write_x",
            "vso.build_execute",
            "vso.tokens_",
        ] {
            assert!(!policy.is_broad(narrow), "{narrow}");
        }
        assert!(glob("*", ""));
        assert!(glob("a*b*c", "aXXbYYc"));
        assert!(!glob("a*b*c", "aXXbYY"));
    }

    #[test]
    fn a_file_sets_only_what_it_changes_in_toml_or_json() {
        let dir = tempfile::tempdir().unwrap();
        let toml_path = dir.path().join("policy.toml");
        std::fs::write(
            &toml_path,
            "max_lifetime_days = 30\nforbid_global = false\n",
        )
        .unwrap();
        let policy = Policy::load(&toml_path).unwrap();
        assert_eq!(policy.max_lifetime_days, 30);
        assert!(!policy.forbid_global);
        assert_eq!(
            policy.expiring_soon_days,
            Policy::default().expiring_soon_days
        );

        let json_path = dir.path().join("policy.json");
        std::fs::write(&json_path, r#"{"max_active_per_owner": 3}"#).unwrap();
        assert_eq!(Policy::load(&json_path).unwrap().max_active_per_owner, 3);
    }

    #[test]
    fn mistakes_are_named_with_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.toml");
        std::fs::write(&path, "max_lifetime_dayz = 30\n").unwrap();
        let message = Policy::load(&path).unwrap_err().to_string();
        assert!(
            message.contains("p.toml") && message.contains("max_lifetime_dayz"),
            "{message}"
        );

        std::fs::write(&path, "expiring_urgent_days = 40\nmax_lifetime_days = 0\n").unwrap();
        let message = Policy::load(&path).unwrap_err().to_string();
        assert!(message.contains("expiring_urgent_days (40)"), "{message}");
        assert!(
            message.contains("max_lifetime_days must be at least 1"),
            "{message}"
        );

        let inline = Policy::from_setting(r#" {"forbid_global": false} "#).unwrap();
        assert!(!inline.forbid_global);
        let bad = Policy::from_setting(r#"{"forbid_global": "no"}"#).unwrap_err();
        assert!(
            bad.to_string().contains("(inline JSON) is not valid JSON"),
            "{bad}"
        );

        let missing = Policy::load(&dir.path().join("nope.toml")).unwrap_err();
        assert!(missing.to_string().contains("nope.toml"), "{missing}");
    }
}
