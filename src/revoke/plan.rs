//! Which tokens to revoke: a selection from a report, written down as a plan. Plain data and
//! functions: nothing here talks to Azure DevOps.

use time::OffsetDateTime;

use crate::findings::{Findings, Rule, Severity};
use crate::report::{Report, TokenRow, TokenStatus};

/// What a plan file says it is.
pub const PLAN_KIND: &str = "patreport.revoke-plan/1";

/// The tokens a revocation is about, and where they were chosen from.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RevokePlan {
    pub kind: String,
    pub org: String,
    /// The report the tokens were chosen from.
    pub source_report: String,
    #[serde(with = "crate::domain::timestamp::serde")]
    pub created: OffsetDateTime,
    /// The filters, as a person would read them.
    pub selection: String,
    pub tokens: Vec<PlannedToken>,
}

/// One token of a plan: enough to check it against a fresh listing and to say what it is.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PlannedToken {
    pub authorization_id: String,
    pub owner_display_name: String,
    pub owner_principal_name: String,
    pub owner_descriptor: String,
    pub pat_name: Option<String>,
    #[serde(default, with = "crate::domain::timestamp::serde::option")]
    pub valid_to: Option<OffsetDateTime>,
    pub status: TokenStatus,
    #[serde(default)]
    pub findings: Findings,
}

/// The filters of `patreport revoke`; every one given must match (an empty list matches all).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    pub ids: Vec<String>,
    /// Principal or display names, compared without regard to case.
    pub owners: Vec<String>,
    pub statuses: Vec<TokenStatus>,
    pub full_access: bool,
    pub global: bool,
    /// Any of these findings.
    pub findings: Vec<Rule>,
    /// The most severe finding at least this severe.
    pub min_severity: Option<Severity>,
    /// Valid and ending within this many days of the report.
    pub expiring_within_days: Option<u32>,
}

/// Why a selection cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SelectionError {
    #[error(
        "no filter given: name the tokens to revoke (--id, --owner, --status, --full-access, \
         --global, --finding, --severity, --expiring-within), a plan file (--plan), or --all"
    )]
    Unfiltered,
    #[error("status {0} cannot be revoked: revoked tokens are invalid already")]
    InvalidStatus(&'static str),
}

impl Selection {
    /// Whether no filter is set: such a selection would take every token of the organization.
    pub fn is_empty(&self) -> bool {
        *self == Selection::default()
    }

    pub fn check(&self, all: bool) -> Result<(), SelectionError> {
        if self.is_empty() && !all {
            return Err(SelectionError::Unfiltered);
        }
        if self.statuses.contains(&TokenStatus::Invalid) {
            return Err(SelectionError::InvalidStatus("invalid"));
        }
        Ok(())
    }

    /// Whether `row` of a report made at `generated` is selected. Revoked rows never are.
    pub fn matches(&self, row: &TokenRow, generated: OffsetDateTime) -> bool {
        let any = |list: &[String], value: &str| list.is_empty() || list.iter().any(|v| v == value);
        row.status != TokenStatus::Invalid
            && !row.authorization_id.is_empty()
            && any(&self.ids, &row.authorization_id)
            && (self.owners.is_empty()
                || self.owners.iter().any(|o| {
                    o.eq_ignore_ascii_case(&row.owner.principal_name)
                        || o.eq_ignore_ascii_case(&row.owner.display_name)
                }))
            && (self.statuses.is_empty() || self.statuses.contains(&row.status))
            && (!self.full_access || row.full_access)
            && (!self.global || row.global)
            && (self.findings.is_empty() || self.findings.iter().any(|r| row.findings.contains(*r)))
            && self
                .min_severity
                .is_none_or(|min| row.findings.severity().is_some_and(|s| s >= min))
            && self.expiring_within_days.is_none_or(|days| {
                // No end beyond the last representable date: every later end is within.
                let limit = generated.checked_add(time::Duration::days(i64::from(days)));
                row.valid_to
                    .is_some_and(|to| to >= generated && limit.is_none_or(|limit| to <= limit))
            })
    }

    /// The filters, as a person would read them.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.ids.is_empty() {
            parts.push(format!("{} authorization ids", self.ids.len()));
        }
        if !self.owners.is_empty() {
            parts.push(format!("owner {}", self.owners.join(" or ")));
        }
        if !self.statuses.is_empty() {
            let names: Vec<&str> = self.statuses.iter().map(|s| s.as_str()).collect();
            parts.push(format!("status {}", names.join(" or ")));
        }
        if self.full_access {
            parts.push("full access".into());
        }
        if self.global {
            parts.push("global".into());
        }
        if !self.findings.is_empty() {
            let codes: Vec<&str> = self.findings.iter().map(|r| r.code()).collect();
            parts.push(format!("finding {}", codes.join(" or ")));
        }
        if let Some(min) = self.min_severity {
            parts.push(format!("severity {} or worse", min.as_str()));
        }
        if let Some(days) = self.expiring_within_days {
            parts.push(format!("expiring within {days} days"));
        }
        if parts.is_empty() {
            "every valid token".into()
        } else {
            parts.join(", ")
        }
    }
}

/// The plan of revoking the tokens of `report` that `selection` takes.
pub fn plan(
    report: &Report,
    source: &str,
    selection: &Selection,
    now: OffsetDateTime,
) -> RevokePlan {
    let tokens = report
        .rows
        .iter()
        .filter(|row| selection.matches(row, report.run.generated))
        .map(|row| PlannedToken {
            authorization_id: row.authorization_id.clone(),
            owner_display_name: row.owner.display_name.clone(),
            owner_principal_name: row.owner.principal_name.clone(),
            owner_descriptor: row.owner.descriptor.clone(),
            pat_name: row.pat_name.clone(),
            valid_to: row.valid_to,
            status: row.status,
            findings: row.findings,
        })
        .collect();
    RevokePlan {
        kind: PLAN_KIND.to_owned(),
        org: report.run.org.to_string(),
        source_report: source.to_owned(),
        created: crate::domain::timestamp::whole_seconds(now),
        selection: selection.describe(),
        tokens,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::build::tests::{NOW, inventory, pat, user};
    use crate::report::{ReportOptions, build};
    use time::Duration;

    fn report() -> Report {
        let later = Some(NOW + Duration::days(60));
        let mut full = pat("full", later);
        full.scope = Some("app_token".into());
        let mut revoked = pat("revoked", later);
        revoked.is_valid = false;
        let soon = pat("soon", Some(NOW + Duration::days(3)));
        build(
            inventory(vec![
                (user("a"), vec![full, pat("plain", later), revoked]),
                (
                    user("b"),
                    vec![soon, pat("gone-by", Some(NOW - Duration::days(2)))],
                ),
            ]),
            NOW,
            &ReportOptions {
                include_invalid: true,
                ..ReportOptions::default()
            },
            "1",
        )
    }

    fn ids(selection: &Selection) -> Vec<String> {
        plan(&report(), "r.json", selection, NOW)
            .tokens
            .into_iter()
            .map(|t| t.authorization_id)
            .collect()
    }

    #[test]
    fn filters_combine_and_never_take_a_revoked_token() {
        let s = |f: fn(&mut Selection)| {
            let mut selection = Selection::default();
            f(&mut selection);
            ids(&selection)
        };
        assert_eq!(s(|s| s.full_access = true), ["full"]);
        assert_eq!(
            s(|s| s.owners = vec!["B@CONTOSO.COM".into()]),
            ["gone-by", "soon"]
        );
        assert_eq!(
            s(|s| s.owners = vec!["A".into()]),
            ["full", "plain"],
            "display name"
        );
        assert_eq!(s(|s| s.statuses = vec![TokenStatus::Expired]), ["gone-by"]);
        assert_eq!(s(|s| s.expiring_within_days = Some(7)), ["soon"]);
        assert_eq!(s(|s| s.findings = vec![Rule::FullAccess]), ["full"]);
        assert_eq!(s(|s| s.min_severity = Some(Severity::Critical)), ["full"]);
        assert_eq!(
            s(|s| {
                s.ids = vec!["revoked".into(), "plain".into()];
            }),
            ["plain"]
        );
        assert_eq!(
            s(|s| {
                s.owners = vec!["a@contoso.com".into()];
                s.full_access = true;
            }),
            ["full"]
        );
        assert_eq!(
            ids(&Selection::default()).len(),
            4,
            "--all: every valid token"
        );
    }

    #[test]
    fn a_selection_needs_a_filter_and_a_revocable_status() {
        assert_eq!(
            Selection::default().check(false),
            Err(SelectionError::Unfiltered)
        );
        assert_eq!(Selection::default().check(true), Ok(()));
        let invalid = Selection {
            statuses: vec![TokenStatus::Invalid],
            ..Selection::default()
        };
        assert!(invalid.check(false).is_err());
        let described = Selection {
            full_access: true,
            expiring_within_days: Some(30),
            ..Selection::default()
        }
        .describe();
        assert_eq!(described, "full access, expiring within 30 days");
    }

    #[test]
    fn a_plan_round_trips_through_json() {
        let selection = Selection {
            owners: vec!["a@contoso.com".into()],
            ..Selection::default()
        };
        let plan = plan(&report(), "r.json", &selection, NOW);
        let text = serde_json::to_string_pretty(&plan).unwrap();
        let back: RevokePlan = serde_json::from_str(&text).unwrap();
        assert_eq!(back, plan);
        assert_eq!(back.kind, PLAN_KIND);
        assert_eq!(back.tokens[0].owner_descriptor, "aad.a");
    }
}
