//! The audit trail: one JSON line per `patreport revoke` run (dry or not), appended to a file
//! next to the reports. A run that sends anything writes an intent line first, so a process
//! that dies mid-way still leaves a trace of what it was about to do.

use std::io::Write;
use std::path::{Path, PathBuf};

use time::OffsetDateTime;

use super::plan::RevokePlan;
use super::run::{Mode, RevokeResult};

/// One line of the audit file.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AuditRecord {
    #[serde(with = "crate::domain::timestamp::serde")]
    pub at: OffsetDateTime,
    /// `dry-run`, `intent` (about to send) or `revoke` (what happened).
    pub mode: String,
    /// Who ran it, as far as this machine knows: the account and the credential mode.
    pub actor: String,
    pub org: String,
    pub source_report: String,
    pub plan_file: Option<String>,
    pub selection: String,
    pub batches: usize,
    pub tokens: Vec<AuditEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AuditEntry {
    pub authorization_id: String,
    pub owner_principal_name: String,
    pub pat_name: Option<String>,
    /// `would_revoke`, `revoked`, `already_revoked`, `not_listed`, `not_checked`, `failed`,
    /// `not_sent`; `pending` in an intent line.
    pub outcome: String,
    pub detail: Option<String>,
}

/// `patreport-{org}-revocations.jsonl` in `dir`.
pub fn audit_file(dir: &Path, org: &str) -> PathBuf {
    dir.join(format!("patreport-{org}-revocations.jsonl"))
}

impl AuditRecord {
    /// The line saying what is about to be sent.
    pub fn intent(
        plan: &RevokePlan,
        actor: &str,
        plan_file: Option<&str>,
        at: OffsetDateTime,
    ) -> Self {
        AuditRecord {
            at,
            mode: "intent".into(),
            actor: actor.to_owned(),
            org: plan.org.clone(),
            source_report: plan.source_report.clone(),
            plan_file: plan_file.map(str::to_owned),
            selection: plan.selection.clone(),
            batches: 0,
            tokens: plan
                .tokens
                .iter()
                .map(|t| AuditEntry {
                    authorization_id: t.authorization_id.clone(),
                    owner_principal_name: t.owner_principal_name.clone(),
                    pat_name: t.pat_name.clone(),
                    outcome: "pending".into(),
                    detail: None,
                })
                .collect(),
        }
    }

    /// The line saying what happened.
    pub fn outcome(
        plan: &RevokePlan,
        result: &RevokeResult,
        mode: Mode,
        actor: &str,
        plan_file: Option<&str>,
        at: OffsetDateTime,
    ) -> Self {
        AuditRecord {
            at,
            mode: match mode {
                Mode::DryRun => "dry-run",
                Mode::Revoke => "revoke",
            }
            .into(),
            actor: actor.to_owned(),
            org: plan.org.clone(),
            source_report: plan.source_report.clone(),
            plan_file: plan_file.map(str::to_owned),
            selection: plan.selection.clone(),
            batches: result.batches,
            tokens: result
                .tokens
                .iter()
                .map(|(t, outcome)| AuditEntry {
                    authorization_id: t.authorization_id.clone(),
                    owner_principal_name: t.owner_principal_name.clone(),
                    pat_name: t.pat_name.clone(),
                    outcome: outcome.name().into(),
                    detail: match outcome {
                        super::run::Outcome::NotChecked(d)
                        | super::run::Outcome::Failed(d)
                        | super::run::Outcome::NotSent(d) => Some(d.clone()),
                        _ => None,
                    },
                })
                .collect(),
        }
    }

    /// Append this record as one line to `path` (created if missing).
    pub fn append(&self, path: &Path) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(self).map_err(std::io::Error::other)?;
        line.push(b'\n');
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        // One write of the whole line: concurrent runs interleave lines, never parts of them.
        file.write_all(&line)?;
        file.sync_data()
    }
}

/// Who is running this, as far as the machine knows.
pub fn actor(auth: &str) -> String {
    let user = ["USER", "USERNAME", "LOGNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|u| !u.trim().is_empty()))
        .unwrap_or_else(|| "an unknown account".into());
    let host = std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty());
    match host {
        Some(host) => format!("{user} on {host}, with --auth {auth}"),
        None => format!("{user}, with --auth {auth}"),
    }
}
