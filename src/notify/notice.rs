//! What a notification says: plain data, built by whoever finished the report and rendered
//! by [`super::format`] for each kind of webhook. Nothing here is trusted to be printable:
//! the organization, owners and PAT names come from the organization, and the renderers
//! escape them.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// One report, summed up for a chat message or a program.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Notice {
    pub org: String,
    #[serde(with = "crate::domain::timestamp::serde")]
    pub generated: OffsetDateTime,
    /// `false`: the report is partial; every rendering says so before anything else.
    pub complete: bool,
    pub incomplete_reason: Option<String>,
    /// The report view or a SAS link. Only an `https` one (or `http` to loopback) becomes a
    /// link or button.
    pub link: Option<String>,
    pub headline: Headline,
    /// Already ranked, most severe first. Renderers show at most [`MAX_FINDINGS`].
    pub top_findings: Vec<NoticeFinding>,
    /// `None`: nothing was compared (a first run, `--no-compare`, or no usable earlier report).
    pub changes: Option<ChangeCounts>,
    /// Valid tokens expiring within each step (e.g. 1, 7, 14, 30, 60 days).
    pub expiries: Vec<ExpiryStep>,
}

/// The most findings any rendering shows.
pub const MAX_FINDINGS: usize = 10;

// By hand: a SAS link carries its signature in the query.
impl std::fmt::Debug for Notice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notice")
            .field("org", &self.org)
            .field("generated", &self.generated)
            .field("complete", &self.complete)
            .field("incomplete_reason", &self.incomplete_reason)
            .field(
                "link",
                &self.link.as_deref().map(crate::storage::sas::redact_sas),
            )
            .field("headline", &self.headline)
            .field("top_findings", &self.top_findings)
            .field("changes", &self.changes)
            .field("expiries", &self.expiries)
            .finish()
    }
}

/// The numbers at the top of the report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Headline {
    pub users_with_pats: usize,
    pub pats: usize,
    pub full_access: usize,
    pub global: usize,
    pub expired: usize,
    pub critical: usize,
    pub high: usize,
    pub medium: usize,
    pub low: usize,
}

/// One finding about one PAT.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoticeFinding {
    /// `critical`, `high`, `medium` or `low`.
    pub severity: String,
    pub title: String,
    pub owner: String,
    pub pat_name: Option<String>,
    #[serde(default, with = "crate::domain::timestamp::serde::option")]
    pub valid_to: Option<OffsetDateTime>,
}

/// What changed since the previous report.
/// The change counts of the report (`changes::ChangeCounts`).
pub use crate::changes::ChangeCounts;

/// How many valid tokens expire within `within_days`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpiryStep {
    pub within_days: u32,
    pub pats: usize,
}

impl Notice {
    /// What a notification says about `report`: its headline, its first findings, its
    /// changes and the expiries coming at each of the policy's steps. The link is the
    /// caller's to add (the view, or a SAS link).
    pub fn of(report: &crate::report::Report) -> Notice {
        use crate::report::TokenStatus;
        let s = &report.summary;
        let run = &report.run;
        let mut reasons = Vec::new();
        if s.users_failed > 0 {
            reasons.push(format!("{} users could not be read", s.users_failed));
        }
        if run.stopped_early {
            reasons.push(format!(
                "the scan stopped early ({})",
                run.stop_reason.as_deref().unwrap_or("no reason recorded")
            ));
        }
        let top_findings = crate::findings::ranked(&report.rows)
            .into_iter()
            .take(MAX_FINDINGS)
            .filter_map(|i| {
                let row = &report.rows[i as usize];
                let first = row.findings.iter().next()?;
                Some(NoticeFinding {
                    severity: first.severity().as_str().to_owned(),
                    title: row.findings.labels(),
                    owner: row.owner.display_name.clone(),
                    pat_name: row.pat_name.clone(),
                    valid_to: row.valid_to,
                })
            })
            .collect();
        let mut steps = report
            .policy
            .as_ref()
            .map(|p| p.notify_expiry_days.clone())
            .unwrap_or_else(|| crate::findings::Policy::default().notify_expiry_days);
        steps.sort_unstable();
        steps.dedup();
        let expiries = steps
            .into_iter()
            .map(|days| {
                let limit = run
                    .generated
                    .checked_add(time::Duration::days(i64::from(days)));
                let pats = report
                    .rows
                    .iter()
                    .filter(|r| matches!(r.status, TokenStatus::Active | TokenStatus::Expiring))
                    .filter_map(|r| r.valid_to)
                    .filter(|to| *to >= run.generated && limit.is_none_or(|limit| *to <= limit))
                    .count();
                ExpiryStep {
                    within_days: days,
                    pats,
                }
            })
            .collect();
        Notice {
            org: run.org.to_string(),
            generated: run.generated,
            complete: run.complete,
            incomplete_reason: (!reasons.is_empty()).then(|| reasons.join("; ")),
            link: None,
            headline: Headline {
                users_with_pats: s.users_with_pats,
                pats: s.pats,
                full_access: s.full_access,
                global: s.global,
                expired: s.by_status.expired,
                critical: s.findings.critical,
                high: s.findings.high,
                medium: s.findings.medium,
                low: s.findings.low,
            },
            top_findings,
            changes: report
                .changes
                .as_ref()
                .filter(|c| c.previous.is_some())
                .map(|c| c.counts),
            expiries,
        }
    }
}
