//! The rules: pure functions of one token, the policy and the clock.

use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use super::{Findings, Policy, Rule};
use crate::report::{TokenRow, TokenStatus};

/// Global PATs stopped working on this day (creating or regenerating them was blocked from
/// 15 March 2026).
pub const GLOBAL_RETIREMENT: OffsetDateTime = datetime!(2026-12-01 00:00 UTC);

/// Scopes of the Visual Studio Marketplace (`vso.gallery`, `_acquire`, `_publish`, `_manage`).
const MARKETPLACE_SCOPE: &str = "vso.gallery";

/// The findings of `row` at `now`. `owner_active` is how many active (valid, unexpired)
/// tokens its owner holds.
///
/// A revoked token has none: it can do nothing. An expired one has only "expired, still
/// listed". The others are judged on what they can reach, for how long, and since when.
pub fn assess(
    row: &TokenRow,
    policy: &Policy,
    now: OffsetDateTime,
    owner_active: usize,
) -> Findings {
    let mut found = Findings::NONE;
    match row.status {
        TokenStatus::Invalid => return found,
        TokenStatus::Expired => {
            found.insert(Rule::ExpiredListed);
            return found;
        }
        TokenStatus::Active | TokenStatus::Expiring => {}
    }
    if row.full_access && policy.forbid_full_access {
        found.insert(Rule::FullAccess);
    }
    if row.global && policy.forbid_global {
        found.insert(match super::global_retired(now) {
            false => Rule::Global,
            true => Rule::GlobalRetired,
        });
    }
    let scopes = || row.scope.split_ascii_whitespace();
    if row.global && scopes().any(|s| s.starts_with(MARKETPLACE_SCOPE)) {
        found.insert(Rule::MarketplaceGlobal);
    }
    if row
        .lifetime_days
        .is_some_and(|days| days > i64::from(policy.max_lifetime_days))
    {
        found.insert(Rule::LifetimeOverMax);
    }
    if !row.full_access && scopes().any(|s| policy.is_broad(s)) {
        found.insert(Rule::BroadScope);
    }
    if let Some(expiry) = expiry_rule(row.valid_to, now, policy) {
        found.insert(expiry);
    }
    match (row.valid_from, row.valid_to) {
        (Some(from), Some(_)) if from > now => found.insert(Rule::NotYetValid),
        (Some(_), Some(_)) => {}
        _ => found.insert(Rule::MissingDates),
    }
    if owner_active > policy.max_active_per_owner as usize {
        found.insert(Rule::OwnerManyTokens);
    }
    if let Some(audit) = &row.audit {
        if audit.discovered.is_some() {
            found.insert(Rule::LeakedPublicly);
        }
        if audit.browser_use.is_some() {
            found.insert(Rule::UsedFromBrowser);
        }
        if audit.sensitive_use.is_some() {
            found.insert(Rule::SensitiveUse);
        }
    }
    found
}

/// The findings of an SSH key: expired, expiring, longer-lived than the policy allows.
pub fn assess_ssh_key(
    is_valid: bool,
    valid_from: Option<OffsetDateTime>,
    valid_to: Option<OffsetDateTime>,
    policy: &Policy,
    now: OffsetDateTime,
) -> Findings {
    let mut found = Findings::NONE;
    if !is_valid {
        return found;
    }
    let Some(to) = valid_to else {
        found.insert(Rule::MissingDates);
        return found;
    };
    if to < now {
        found.insert(Rule::ExpiredListed);
        return found;
    }
    if let Some(expiry) = expiry_rule(Some(to), now, policy) {
        found.insert(expiry);
    }
    match valid_from {
        Some(from) if (to - from).whole_days() > i64::from(policy.max_ssh_key_lifetime_days) => {
            found.insert(Rule::SshKeyLongLived)
        }
        Some(_) => {}
        None => found.insert(Rule::MissingDates),
    }
    found
}

/// Expiring within N days means `valid_to` at or before `now` + N days, as in the summary.
fn expiry_rule(
    valid_to: Option<OffsetDateTime>,
    now: OffsetDateTime,
    policy: &Policy,
) -> Option<Rule> {
    let left = valid_to? - now;
    if left.is_negative() {
        None
    } else if left <= Duration::days(i64::from(policy.expiring_urgent_days)) {
        Some(Rule::ExpiresUrgently)
    } else if left <= Duration::days(i64::from(policy.expiring_soon_days)) {
        Some(Rule::ExpiresSoon)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Owner;
    use std::sync::Arc;

    const NOW: OffsetDateTime = datetime!(2026-11-29 12:00 UTC);

    fn row(scope: &str, global: bool, days_left: i64, lifetime: i64) -> TokenRow {
        let to = NOW + Duration::days(days_left) + Duration::hours(1);
        TokenRow {
            owner: Arc::new(Owner {
                display_name: "A".into(),
                principal_name: "a@contoso.com".into(),
                mail_address: String::new(),
                origin: "aad".into(),
                descriptor: "aad.a".into(),
            }),
            pat_name: Some("t".into()),
            scope: Arc::from(scope),
            scope_summary: Arc::from(scope),
            full_access: scope.split(' ').any(|s| s == "app_token"),
            global,
            target_accounts: vec![],
            valid_from: Some(to - Duration::days(lifetime)),
            valid_to: Some(to),
            days_to_expiry: Some(days_left),
            lifetime_days: Some(lifetime),
            status: if days_left < 0 {
                TokenStatus::Expired
            } else {
                TokenStatus::Active
            },
            authorization_id: "id".into(),
            findings: Findings::NONE,
            audit: None,
        }
    }

    fn codes(f: Findings) -> Vec<&'static str> {
        f.iter().map(Rule::code).collect()
    }

    #[test]
    fn each_rule_fires_on_its_own() {
        let p = Policy::default();
        assert!(assess(&row("vso.code", false, 60, 80), &p, NOW, 1).is_empty());
        assert_eq!(
            codes(assess(&row("app_token", false, 60, 80), &p, NOW, 1)),
            ["full_access"]
        );
        assert_eq!(
            codes(assess(&row("vso.code", true, 60, 80), &p, NOW, 1)),
            ["global"]
        );
        assert_eq!(
            codes(assess(
                &row("vso.gallery_publish", true, 60, 80),
                &p,
                NOW,
                1
            )),
            ["global", "marketplace_global"]
        );
        assert_eq!(
            codes(assess(&row("vso.code", false, 60, 91), &p, NOW, 1)),
            ["lifetime_over_max"]
        );
        assert_eq!(
            codes(assess(&row("vso.code_manage", false, 60, 80), &p, NOW, 1)),
            ["broad_scope"]
        );
        assert_eq!(
            codes(assess(&row("vso.code", false, 6, 80), &p, NOW, 1)),
            ["expires_urgently"]
        );
        assert_eq!(
            codes(assess(&row("vso.code", false, 7, 80), &p, NOW, 1)),
            ["expires_soon"]
        );
        assert!(assess(&row("vso.code", false, 30, 80), &p, NOW, 1).is_empty());
        assert_eq!(
            codes(assess(&row("app_token", true, -1, 80), &p, NOW, 1)),
            ["expired_listed"]
        );
        assert_eq!(
            codes(assess(&row("vso.code", false, 60, 80), &p, NOW, 11)),
            ["owner_many_tokens"]
        );
        assert!(assess(&row("vso.code", false, 60, 80), &p, NOW, 10).is_empty());

        let mut future = row("vso.code", false, 60, 10);
        future.valid_from = Some(NOW + Duration::days(1));
        assert_eq!(codes(assess(&future, &p, NOW, 1)), ["not_yet_valid"]);
        let mut undated = row("vso.code", false, 60, 10);
        (
            undated.valid_to,
            undated.days_to_expiry,
            undated.lifetime_days,
        ) = (None, None, None);
        assert_eq!(codes(assess(&undated, &p, NOW, 1)), ["missing_dates"]);
        let mut revoked = row("app_token", true, 60, 400);
        revoked.status = TokenStatus::Invalid;
        assert!(assess(&revoked, &p, NOW, 99).is_empty());
    }

    #[test]
    fn global_wording_changes_on_the_retirement_day() {
        let p = Policy::default();
        let global = row("vso.code", true, 60, 80);
        let before = assess(&global, &p, GLOBAL_RETIREMENT - Duration::seconds(1), 1);
        let after = assess(&global, &p, GLOBAL_RETIREMENT, 1);
        assert_eq!(
            (codes(before), codes(after)),
            (vec!["global"], vec!["global_retired"])
        );
        assert!(
            Rule::Global
                .action()
                .contains("stop working on 1 December 2026")
        );
        assert!(Rule::GlobalRetired.action().contains("no longer work"));
    }

    #[test]
    fn the_policy_changes_the_findings() {
        let relaxed = Policy {
            forbid_full_access: false,
            forbid_global: false,
            max_lifetime_days: 365,
            broad_scopes: vec![],
            expiring_urgent_days: 1,
            expiring_soon_days: 2,
            ..Policy::default()
        };
        let risky = row("app_token vso.code_manage", true, 5, 200);
        assert_eq!(
            codes(assess(&risky, &Policy::default(), NOW, 1)),
            [
                "full_access",
                "global",
                "lifetime_over_max",
                "expires_urgently"
            ]
        );
        assert!(assess(&risky, &relaxed, NOW, 1).is_empty());
        // Marketplace on a global token needs a migration whatever the policy says.
        let marketplace = row("vso.gallery_manage", true, 60, 80);
        assert_eq!(
            codes(assess(&marketplace, &relaxed, NOW, 1)),
            ["marketplace_global"]
        );
    }

    #[test]
    fn ssh_keys_are_judged_on_dates() {
        let p = Policy::default();
        let from = Some(NOW - Duration::days(10));
        let key = |to: OffsetDateTime| assess_ssh_key(true, from, Some(to), &p, NOW);
        assert_eq!(codes(key(NOW - Duration::days(1))), ["expired_listed"]);
        assert_eq!(codes(key(NOW + Duration::days(3))), ["expires_urgently"]);
        assert_eq!(
            codes(key(NOW + Duration::days(400))),
            ["ssh_key_long_lived"]
        );
        assert!(key(NOW + Duration::days(100)).is_empty());
        assert!(assess_ssh_key(false, from, None, &p, NOW).is_empty());
        assert_eq!(
            codes(assess_ssh_key(true, from, None, &p, NOW)),
            ["missing_dates"]
        );
    }
}
