//! The rules that turn an [`Inventory`] into a [`Report`]. Pure: the clock is an argument.

use std::cmp::Ordering;

use time::{Duration, OffsetDateTime};

use super::model::{
    ErrorRow, Holder, Owner, OwnerSummary, Report, ReportOptions, RunInfo, ScopeCount, SshKeyRow,
    StatusCounts, Summary, TokenRow, TokenStatus, WeekCount,
};
use super::scope;
use crate::domain::timestamp::whole_seconds;
use crate::findings::{self, FindingCounts, Findings, Severity};
use crate::inventory::{Inventory, Pat, SshKey, UserTokens};
use std::sync::Arc;

/// How many users the "top holders" table lists.
const TOP_HOLDERS: usize = 10;

const SECONDS_PER_DAY: i64 = 86_400;

/// Builds the report of `inventory` as seen at `now`.
///
/// * One row per PAT, ordered by owner principal name (case-insensitive), then `valid_to`
///   (PATs without one last), then authorization id, so the same inventory always gives
///   the same report whatever order the scan finished in.
/// * Invalid (revoked) PATs become rows only with `options.include_invalid`, but
///   `summary.by_status.invalid` counts them either way, so the summary always says how
///   many exist. `pats`, `users_with_pats`, `full_access`, `global` and `top_holders`
///   count rows; the `expiring_within_*` figures count valid, unexpired PATs.
/// * One error row per user whose PATs could not be listed.
///
/// Takes the inventory by value: its strings move into the rows, so a large organization is
/// not held in memory twice.
pub fn build(
    inventory: Inventory,
    now: OffsetDateTime,
    options: &ReportOptions,
    tool_version: &str,
) -> Report {
    // `None` when the window reaches past the last representable date: no end is beyond it.
    let horizon = now.checked_add(Duration::days(i64::from(options.expiring_days)));
    let soon_limits = [7, 30, 90].map(|days| now.checked_add(Duration::days(days)));

    // Rows carry the index of their owner, whose lowercased principal name is the
    // primary sort key, computed once per user rather than once per comparison.
    let mut keyed: Vec<(usize, TokenRow)> = Vec::with_capacity(inventory.pat_count());
    let complete = inventory.is_complete();
    let Inventory {
        org,
        started,
        finished,
        users,
        failures,
        stopped_early,
        stats,
        mut signals,
    } = inventory;
    let mut owners: Vec<Arc<Owner>> = Vec::with_capacity(users.len());
    let mut scopes = Scopes::default();
    let mut by_status = StatusCounts::default();
    let mut soon = [0usize; 3];
    // Active (valid, unexpired) tokens per owner, for the "holds many tokens" rule.
    let mut active = Vec::with_capacity(users.len());
    let mut ssh_keys = Vec::new();
    for (
        index,
        UserTokens {
            user,
            pats,
            ssh_keys: keys,
        },
    ) in users.into_iter().enumerate()
    {
        let user = Arc::new(Owner {
            display_name: user.display_name,
            principal_name: user.principal_name,
            mail_address: user.mail_address,
            origin: user.origin,
            descriptor: user.descriptor,
        });
        let mut owner_active = 0usize;
        for pat in pats {
            let status = status_of(&pat, now, horizon);
            owner_active += usize::from(matches!(
                status,
                TokenStatus::Active | TokenStatus::Expiring
            ));
            match status {
                TokenStatus::Active => by_status.active += 1,
                TokenStatus::Expiring => by_status.expiring += 1,
                TokenStatus::Expired => by_status.expired += 1,
                TokenStatus::Invalid => by_status.invalid += 1,
            }
            if pat.is_valid
                && let Some(valid_to) = pat.valid_to
                && valid_to >= now
            {
                for (count, limit) in soon.iter_mut().zip(soon_limits) {
                    *count += usize::from(within(valid_to, limit));
                }
            }
            if listed(&pat, options) {
                let mut row = token_row(&user, pat, status, now, &mut scopes);
                if !signals.is_empty() {
                    row.audit = signals
                        .remove(&row.authorization_id.to_ascii_lowercase())
                        .map(Box::new);
                }
                keyed.push((index, row));
            }
        }
        for key in keys {
            ssh_keys.push(ssh_key_row(&user, key, now, horizon, &options.policy));
        }
        owners.push(user);
        active.push(owner_active);
    }
    // Keys by owner, then expiry, as the tokens are.
    ssh_keys.sort_by(|a: &SshKeyRow, b: &SshKeyRow| {
        (
            a.owner_principal_name.to_lowercase(),
            &a.owner_principal_name,
        )
            .cmp(&(
                b.owner_principal_name.to_lowercase(),
                &b.owner_principal_name,
            ))
            .then_with(|| cmp_none_last(a.valid_to, b.valid_to))
            .then_with(|| a.authorization_id.cmp(&b.authorization_id))
    });
    for (index, row) in &mut keyed {
        row.findings = findings::assess(row, &options.policy, now, active[*index]);
    }

    let sort_keys: Vec<String> = owners
        .iter()
        .map(|u| u.principal_name.to_lowercase())
        .collect();
    keyed.sort_by(|(ia, a), (ib, b)| {
        sort_keys[*ia]
            .cmp(&sort_keys[*ib])
            .then_with(|| a.owner.principal_name.cmp(&b.owner.principal_name))
            .then_with(|| a.owner.descriptor.cmp(&b.owner.descriptor))
            .then_with(|| cmp_none_last(a.valid_to, b.valid_to))
            .then_with(|| a.authorization_id.cmp(&b.authorization_id))
            .then_with(|| a.pat_name.cmp(&b.pat_name))
            .then_with(|| a.valid_from.cmp(&b.valid_from))
    });

    let top_holders = top_holders(&owners, &keyed, &sort_keys);
    let users_with_pats = count_owners(&keyed);
    let owner_summaries = owner_summaries(&owners, &keyed, now);
    let rows: Vec<TokenRow> = keyed.into_iter().map(|(_, row)| row).collect();

    let summary = Summary {
        users_listed: owners.len() + failures.len(),
        users_read: owners.len(),
        users_failed: failures.len(),
        users_with_pats,
        pats: rows.len(),
        by_status,
        full_access: rows.iter().filter(|r| r.full_access).count(),
        global: rows.iter().filter(|r| r.global).count(),
        expiring_within_7_days: soon[0],
        expiring_within_30_days: soon[1],
        expiring_within_90_days: soon[2],
        top_holders,
        findings: FindingCounts::tally(rows.iter().map(|r| r.findings)),
        expiries_by_week: expiries_by_week(&rows, now),
        top_scopes: top_scopes(&rows),
        ssh_keys: ssh_keys.len(),
        ssh_key_findings: FindingCounts::tally(ssh_keys.iter().map(|k| k.findings)),
    };

    let errors = failures
        .into_iter()
        .map(|f| ErrorRow {
            user_display_name: f.user.display_name,
            user_principal_name: f.user.principal_name,
            user_descriptor: f.user.descriptor,
            http_status: f.status,
            message: f.message,
        })
        .collect();

    let run = RunInfo {
        org,
        // Times are kept (and written) in whole seconds; the duration is measured first.
        duration_seconds: (finished - started).as_seconds_f64().max(0.0),
        started: whole_seconds(started),
        finished: whole_seconds(finished),
        api_calls: stats.api_calls,
        retries: stats.retries,
        throttled: stats.throttled,
        throttle_wait_seconds: stats.throttle_wait.as_secs_f64(),
        tool_version: tool_version.to_owned(),
        duplicate_users: stats.duplicate_users,
        duplicate_pats: stats.duplicate_pats,
        tstu_limit: stats.tstu_limit,
        tstu_consumed: stats.tstu_consumed,
        tstu_per_call: stats.tstu_per_call,
        tstu_per_call_by_api: stats.tstu_per_call_by_api.clone(),
        rate_limit_delay_seconds: stats.rate_limit_delay.as_secs_f64(),
        lowest_remaining: stats.lowest_remaining,
        complete,
        stopped_early: stopped_early.is_some(),
        stop_reason: stopped_early,
        expiring_days: options.expiring_days,
        generated: whole_seconds(now),
        refresh: None,
    };

    Report {
        schema_version: super::model::SCHEMA_VERSION,
        run,
        summary,
        policy: Some(options.policy.clone()),
        rows,
        owners: owner_summaries,
        errors,
        ssh_keys: options.ssh_keys_listed.then_some(ssh_keys),
        changes: None,
    }
}

/// How many rows [`build`] will make of `inventory`: known before the report is built, so the
/// workbook can be laid out while memory is low (see `xlsx::XlsxPlan`).
pub fn row_count(inventory: &Inventory, options: &ReportOptions) -> usize {
    inventory
        .users
        .iter()
        .flat_map(|u| &u.pats)
        .filter(|p| listed(p, options))
        .count()
}

/// Whether a PAT becomes a row: invalid (revoked) ones only when asked for.
fn listed(pat: &Pat, options: &ReportOptions) -> bool {
    pat.is_valid || options.include_invalid
}

/// The status of a PAT at `now`; invalid wins over expired.
fn status_of(pat: &Pat, now: OffsetDateTime, horizon: Option<OffsetDateTime>) -> TokenStatus {
    status_at(pat.is_valid, pat.valid_to, now, horizon)
}

/// The status of a token (PAT or SSH key) valid or not, ending at `valid_to`.
fn status_at(
    is_valid: bool,
    valid_to: Option<OffsetDateTime>,
    now: OffsetDateTime,
    horizon: Option<OffsetDateTime>,
) -> TokenStatus {
    if !is_valid {
        return TokenStatus::Invalid;
    }
    match valid_to {
        Some(to) if to < now => TokenStatus::Expired,
        Some(to) if within(to, horizon) => TokenStatus::Expiring,
        _ => TokenStatus::Active,
    }
}

/// Scope strings and their summaries, one shared copy per distinct scope: an organization has
/// a few dozen distinct scope sets spread over many thousands of PATs.
#[derive(Default)]
struct Scopes(std::collections::HashMap<String, (Arc<str>, Arc<str>)>);

impl Scopes {
    fn get(&mut self, scope: String) -> (Arc<str>, Arc<str>) {
        if let Some(found) = self.0.get(&scope) {
            return found.clone();
        }
        let shared = (
            Arc::from(scope.as_str()),
            Arc::from(scope::summarize(&scope)),
        );
        self.0.insert(scope, shared.clone());
        shared
    }
}

fn token_row(
    owner: &Arc<Owner>,
    pat: Pat,
    status: TokenStatus,
    now: OffsetDateTime,
    scopes: &mut Scopes,
) -> TokenRow {
    let (scope, scope_summary) = scopes.get(pat.scope.unwrap_or_default());
    let dates = Dates::of(pat.valid_from, pat.valid_to, now);
    let target_accounts = pat.target_accounts.unwrap_or_default();
    TokenRow {
        owner: Arc::clone(owner),
        pat_name: pat.display_name,
        scope_summary,
        full_access: scope.split_ascii_whitespace().any(|s| s == "app_token"),
        global: target_accounts.is_empty(),
        target_accounts,
        scope,
        valid_from: dates.valid_from,
        valid_to: dates.valid_to,
        days_to_expiry: dates.days_to_expiry,
        lifetime_days: dates.lifetime_days,
        status,
        authorization_id: pat.authorization_id.unwrap_or_default(),
        findings: Findings::NONE,
        audit: None,
    }
}

/// A token's dates as a row keeps them: whole seconds, and the days they make.
struct Dates {
    valid_from: Option<OffsetDateTime>,
    valid_to: Option<OffsetDateTime>,
    days_to_expiry: Option<i64>,
    lifetime_days: Option<i64>,
}

impl Dates {
    fn of(from: Option<OffsetDateTime>, to: Option<OffsetDateTime>, now: OffsetDateTime) -> Self {
        Dates {
            valid_from: from.map(whole_seconds),
            valid_to: to.map(whole_seconds),
            days_to_expiry: to.map(|to| whole_days(now, to)),
            lifetime_days: from.zip(to).map(|(from, to)| whole_days(from, to)),
        }
    }
}

fn ssh_key_row(
    owner: &Owner,
    key: SshKey,
    now: OffsetDateTime,
    horizon: Option<OffsetDateTime>,
    policy: &crate::findings::Policy,
) -> SshKeyRow {
    let status = status_at(key.is_valid, key.valid_to, now, horizon);
    let dates = Dates::of(key.valid_from, key.valid_to, now);
    let findings =
        findings::assess_ssh_key(key.is_valid, key.valid_from, key.valid_to, policy, now);
    SshKeyRow {
        owner_display_name: owner.display_name.clone(),
        owner_principal_name: owner.principal_name.clone(),
        name: key.display_name,
        status,
        valid_from: dates.valid_from,
        valid_to: dates.valid_to,
        days_to_expiry: dates.days_to_expiry,
        lifetime_days: dates.lifetime_days,
        authorization_id: key.authorization_id.unwrap_or_default(),
        severity: findings.severity(),
        findings,
    }
}

/// Whether `date` is at or before `limit`; no limit means beyond every date.
fn within(date: OffsetDateTime, limit: Option<OffsetDateTime>) -> bool {
    limit.is_none_or(|limit| date <= limit)
}

/// Whole days from `from` to `to`, rounded down (so one second past expiry is day -1).
fn whole_days(from: OffsetDateTime, to: OffsetDateTime) -> i64 {
    (to - from).whole_seconds().div_euclid(SECONDS_PER_DAY)
}

/// Orders dates with "no date" last: a PAT without an end is the latest to expire.
fn cmp_none_last(a: Option<OffsetDateTime>, b: Option<OffsetDateTime>) -> Ordering {
    match (a, b) {
        (Some(a), Some(b)) => a.cmp(&b),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

/// Distinct owners among the rows (sorted, so one owner's rows are adjacent).
fn count_owners(keyed: &[(usize, TokenRow)]) -> usize {
    let mut owners: Vec<usize> = keyed.iter().map(|(i, _)| *i).collect();
    owners.sort_unstable();
    owners.dedup();
    owners.len()
}

/// Weeks shown in the expiry chart: the next 90 days, and a little more.
const EXPIRY_WEEKS: i64 = 13;
/// Scopes shown in the top-scopes chart.
const TOP_SCOPES: usize = 10;

/// Valid, unexpired tokens expiring in each of the next [`EXPIRY_WEEKS`] weeks.
fn expiries_by_week(rows: &[TokenRow], now: OffsetDateTime) -> Vec<WeekCount> {
    let mut weeks = [0usize; EXPIRY_WEEKS as usize];
    for row in rows {
        if let (TokenStatus::Active | TokenStatus::Expiring, Some(to)) = (row.status, row.valid_to)
            && to >= now
        {
            let week = (to - now).whole_seconds().div_euclid(7 * SECONDS_PER_DAY);
            if let Some(count) = usize::try_from(week).ok().and_then(|w| weeks.get_mut(w)) {
                *count += 1;
            }
        }
    }
    (0..EXPIRY_WEEKS)
        .zip(weeks)
        .map(|(week, pats)| WeekCount {
            week_of: crate::domain::timestamp::date_only(now + Duration::weeks(week)),
            pats,
        })
        .collect()
}

/// The scopes valid, unexpired tokens carry most. Rows share their scope strings, so each
/// distinct string is split once.
fn top_scopes(rows: &[TokenRow]) -> Vec<ScopeCount> {
    let mut per_string: std::collections::HashMap<&str, usize> = Default::default();
    for row in rows {
        if matches!(row.status, TokenStatus::Active | TokenStatus::Expiring) {
            *per_string.entry(&row.scope).or_default() += 1;
        }
    }
    let mut per_scope: std::collections::HashMap<&str, usize> = Default::default();
    for (scopes, count) in per_string {
        let mut seen = Vec::new();
        for one in scopes.split_ascii_whitespace() {
            if !seen.contains(&one) {
                seen.push(one);
                *per_scope.entry(one).or_default() += count;
            }
        }
    }
    let mut ranked: Vec<(&str, usize)> = per_scope.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    ranked
        .into_iter()
        .take(TOP_SCOPES)
        .map(|(one, pats)| ScopeCount {
            scope: one.to_owned(),
            label: scope::label(one).unwrap_or(one).to_owned(),
            pats,
        })
        .collect()
}

/// Every owner with rows, with counts by status and finding: most critical findings first,
/// then most high, then most tokens, then by name (rows are in principal-name order already).
fn owner_summaries(
    owners: &[Arc<Owner>],
    keyed: &[(usize, TokenRow)],
    now: OffsetDateTime,
) -> Vec<OwnerSummary> {
    let mut summaries: Vec<OwnerSummary> = Vec::new();
    let mut last: Option<usize> = None;
    for (index, row) in keyed {
        if last != Some(*index) {
            last = Some(*index);
            let owner = &owners[*index];
            summaries.push(OwnerSummary {
                display_name: owner.display_name.clone(),
                principal_name: owner.principal_name.clone(),
                ..OwnerSummary::default()
            });
        }
        let Some(summary) = summaries.last_mut() else {
            continue;
        };
        summary.pats += 1;
        match row.status {
            TokenStatus::Active => summary.by_status.active += 1,
            TokenStatus::Expiring => summary.by_status.expiring += 1,
            TokenStatus::Expired => summary.by_status.expired += 1,
            TokenStatus::Invalid => summary.by_status.invalid += 1,
        }
        summary.full_access += usize::from(row.full_access);
        summary.global += usize::from(row.global);
        match row.findings.severity() {
            Some(Severity::Critical) => summary.critical += 1,
            Some(Severity::High) => summary.high += 1,
            Some(Severity::Medium) => summary.medium += 1,
            Some(Severity::Low) => summary.low += 1,
            None => {}
        }
        if matches!(row.status, TokenStatus::Active | TokenStatus::Expiring)
            && let Some(to) = row.valid_to
            && to >= now
        {
            summary.next_expiry = Some(summary.next_expiry.map_or(to, |e| e.min(to)));
        }
    }
    // Stable: equal owners keep the rows' principal-name order.
    summaries.sort_by(|a, b| {
        (b.critical, b.high, b.medium, b.pats).cmp(&(a.critical, a.high, a.medium, a.pats))
    });
    summaries
}

/// The users with the most rows, most first; ties by principal name.
fn top_holders(
    owners: &[Arc<Owner>],
    keyed: &[(usize, TokenRow)],
    sort_keys: &[String],
) -> Vec<Holder> {
    let mut counts = vec![(0usize, 0usize); owners.len()];
    for (index, row) in keyed {
        counts[*index].0 += 1;
        counts[*index].1 += usize::from(row.full_access);
    }
    let mut holders: Vec<usize> = (0..counts.len()).filter(|&i| counts[i].0 > 0).collect();
    holders.sort_by(|&a, &b| {
        let (ua, ub) = (&owners[a], &owners[b]);
        counts[b]
            .0
            .cmp(&counts[a].0)
            .then_with(|| sort_keys[a].cmp(&sort_keys[b]))
            .then_with(|| ua.principal_name.cmp(&ub.principal_name))
            .then_with(|| ua.descriptor.cmp(&ub.descriptor))
    });
    holders
        .into_iter()
        .take(TOP_HOLDERS)
        .map(|i| {
            let user = &owners[i];
            Holder {
                display_name: user.display_name.clone(),
                principal_name: user.principal_name.clone(),
                pats: counts[i].0,
                full_access: counts[i].1,
            }
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::inventory::{RunStats, User, UserFailure, UserTokens};
    use time::macros::datetime;

    pub(crate) const NOW: OffsetDateTime = datetime!(2026-03-10 12:00 UTC);

    pub(crate) fn user(name: &str) -> User {
        User {
            descriptor: format!("aad.{name}"),
            display_name: name.to_uppercase(),
            principal_name: format!("{name}@contoso.com"),
            mail_address: format!("{name}@contoso.com"),
            origin: "aad".into(),
        }
    }

    pub(crate) fn pat(id: &str, valid_to: Option<OffsetDateTime>) -> Pat {
        Pat {
            authorization_id: Some(id.into()),
            display_name: Some(format!("pat {id}")),
            scope: Some("vso.code".into()),
            target_accounts: Some(vec!["org-guid".into()]),
            valid_from: Some(datetime!(2026-01-01 00:00 UTC)),
            valid_to,
            is_valid: true,
        }
    }

    pub(crate) fn inventory(users: Vec<(User, Vec<Pat>)>) -> Inventory {
        Inventory {
            org: crate::domain::OrgName::parse("contoso").unwrap(),
            started: datetime!(2026-03-10 11:59 UTC),
            finished: datetime!(2026-03-10 11:59:30.5 UTC),
            users: users
                .into_iter()
                .map(|(user, pats)| UserTokens {
                    user,
                    pats,
                    ssh_keys: Vec::new(),
                })
                .collect(),
            failures: vec![],
            stopped_early: None,
            signals: Default::default(),
            stats: RunStats {
                api_calls: 12,
                retries: 2,
                throttled: 1,
                ..RunStats::default()
            },
        }
    }

    fn one(p: Pat) -> Report {
        build(
            inventory(vec![(user("a"), vec![p])]),
            NOW,
            &ReportOptions::default(),
            "1.0",
        )
    }

    fn status(valid_to: OffsetDateTime) -> TokenStatus {
        one(pat("x", Some(valid_to))).rows[0].status
    }

    #[test]
    fn a_pat_that_ended_yesterday_is_expired() {
        assert_eq!(status(NOW - Duration::days(1)), TokenStatus::Expired);
        assert_eq!(status(NOW - Duration::seconds(1)), TokenStatus::Expired);
    }

    #[test]
    fn a_pat_ending_exactly_at_the_window_edge_is_expiring() {
        assert_eq!(status(NOW), TokenStatus::Expiring);
        assert_eq!(status(NOW + Duration::days(30)), TokenStatus::Expiring);
    }

    #[test]
    fn a_pat_ending_beyond_the_window_is_active() {
        assert_eq!(
            status(NOW + Duration::days(30) + Duration::seconds(1)),
            TokenStatus::Active
        );
    }

    #[test]
    fn the_expiring_window_follows_the_options() {
        let inv = inventory(vec![(
            user("a"),
            vec![pat("x", Some(NOW + Duration::days(10)))],
        )]);
        let narrow = ReportOptions {
            expiring_days: 7,
            ..ReportOptions::default()
        };
        assert_eq!(
            build(inv.clone(), NOW, &narrow, "1").rows[0].status,
            TokenStatus::Active
        );
        assert_eq!(build(inv.clone(), NOW, &narrow, "1").run.expiring_days, 7);
    }

    #[test]
    fn a_window_past_the_end_of_time_makes_every_valid_pat_expiring() {
        let inv = inventory(vec![(
            user("a"),
            vec![pat("x", Some(NOW + Duration::days(5000)))],
        )]);
        let huge = ReportOptions {
            expiring_days: u32::MAX,
            ..ReportOptions::default()
        };
        assert_eq!(
            build(inv.clone(), NOW, &huge, "1").rows[0].status,
            TokenStatus::Expiring
        );
    }

    #[test]
    fn invalid_wins_over_expired() {
        let p = Pat {
            is_valid: false,
            ..pat("x", Some(NOW - Duration::days(3)))
        };
        let inv = inventory(vec![(user("a"), vec![p])]);
        let opts = ReportOptions {
            include_invalid: true,
            ..ReportOptions::default()
        };
        assert_eq!(
            build(inv.clone(), NOW, &opts, "1").rows[0].status,
            TokenStatus::Invalid
        );
    }

    #[test]
    fn a_pat_without_an_end_is_active_with_no_days_to_expiry() {
        let r = one(pat("x", None));
        assert_eq!(r.rows[0].status, TokenStatus::Active);
        assert_eq!(r.rows[0].days_to_expiry, None);
        assert_eq!(r.rows[0].lifetime_days, None);
    }

    #[test]
    fn days_to_expiry_rounds_down_and_goes_negative_once_expired() {
        let days = |to| one(pat("x", Some(to))).rows[0].days_to_expiry;
        assert_eq!(days(NOW + Duration::days(5)), Some(5));
        assert_eq!(
            days(NOW + Duration::days(5) - Duration::seconds(1)),
            Some(4)
        );
        assert_eq!(days(NOW + Duration::hours(23)), Some(0));
        assert_eq!(days(NOW - Duration::seconds(1)), Some(-1));
        assert_eq!(days(NOW - Duration::days(2)), Some(-2));
    }

    #[test]
    fn lifetime_is_whole_days_from_valid_from_to_valid_to() {
        let p = Pat {
            valid_from: Some(datetime!(2026-01-01 10:00 UTC)),
            valid_to: Some(datetime!(2026-01-31 09:59 UTC)),
            ..pat("x", None)
        };
        assert_eq!(one(p).rows[0].lifetime_days, Some(29));
        let no_start = Pat {
            valid_from: None,
            ..pat("x", Some(NOW))
        };
        assert_eq!(one(no_start).rows[0].lifetime_days, None);
    }

    #[test]
    fn null_name_scope_and_id_are_kept_as_none_or_empty() {
        let p = Pat {
            display_name: None,
            scope: None,
            authorization_id: None,
            ..pat("x", Some(NOW))
        };
        let row = &one(p).rows[0];
        assert_eq!(row.pat_name, None);
        assert_eq!(&*row.scope, "");
        assert_eq!(&*row.scope_summary, "(none)");
        assert_eq!(row.authorization_id, "");
        assert!(!row.full_access);
    }

    #[test]
    fn invalid_pats_are_rows_only_when_included_but_always_counted() {
        let inv = inventory(vec![(
            user("a"),
            vec![
                pat("ok", Some(NOW + Duration::days(100))),
                Pat {
                    is_valid: false,
                    ..pat("bad", None)
                },
            ],
        )]);
        let without = build(inv.clone(), NOW, &ReportOptions::default(), "1");
        assert_eq!(without.rows.len(), 1);
        assert_eq!(without.summary.pats, 1);
        assert_eq!(
            without.summary.by_status,
            StatusCounts {
                active: 1,
                invalid: 1,
                ..StatusCounts::default()
            }
        );

        let with = build(
            inv.clone(),
            NOW,
            &ReportOptions {
                include_invalid: true,
                ..ReportOptions::default()
            },
            "1",
        );
        assert_eq!(with.rows.len(), 2);
        assert_eq!(with.summary.pats, 2);
        assert_eq!(with.summary.by_status, without.summary.by_status);

        // The workbook is laid out from this count before the report exists: it must agree.
        let all = ReportOptions {
            include_invalid: true,
            ..ReportOptions::default()
        };
        assert_eq!(
            row_count(&inv, &ReportOptions::default()),
            without.rows.len()
        );
        assert_eq!(row_count(&inv, &all), with.rows.len());
    }

    #[test]
    fn global_and_full_access_flags() {
        let full = Pat {
            scope: Some("vso.code app_token".into()),
            ..pat("1", None)
        };
        let global_none = Pat {
            target_accounts: None,
            ..pat("2", None)
        };
        let global_empty = Pat {
            target_accounts: Some(vec![]),
            ..pat("3", None)
        };
        let not_full = Pat {
            scope: Some("app_tokens vso.app_token".into()),
            ..pat("4", None)
        };
        let r = build(
            inventory(vec![(
                user("a"),
                vec![full, global_none, global_empty, not_full],
            )]),
            NOW,
            &ReportOptions::default(),
            "1",
        );
        let flags: Vec<(bool, bool)> = r.rows.iter().map(|r| (r.full_access, r.global)).collect();
        assert_eq!(
            flags,
            [(true, false), (false, true), (false, true), (false, false)]
        );
        assert_eq!(&*r.rows[0].scope_summary, "Code (read), Full access");
        assert_eq!((r.summary.full_access, r.summary.global), (1, 2));
    }

    #[test]
    fn rows_are_ordered_by_owner_case_insensitively_then_end_then_id() {
        let upper = User {
            principal_name: "Bob@contoso.com".into(),
            ..user("b")
        };
        let later = NOW + Duration::days(200);
        let sooner = NOW + Duration::days(100);
        let inv = inventory(vec![
            (user("carol"), vec![pat("c1", Some(sooner))]),
            (
                upper,
                vec![
                    pat("b2", None),
                    pat("b3", Some(later)),
                    pat("b1", Some(later)),
                    pat("b0", Some(sooner)),
                ],
            ),
            (user("alice"), vec![pat("a1", Some(later))]),
        ]);
        let ids: Vec<String> = build(inv.clone(), NOW, &ReportOptions::default(), "1")
            .rows
            .into_iter()
            .map(|r| r.authorization_id)
            .collect();
        assert_eq!(ids, ["a1", "b0", "b1", "b3", "b2", "c1"]);
    }

    #[test]
    fn summary_counts_users_pats_and_expiry_windows() {
        let mut inv = inventory(vec![
            (
                user("a"),
                vec![
                    pat("7", Some(NOW + Duration::days(7))),
                    pat("8", Some(NOW + Duration::days(8))),
                    pat("31", Some(NOW + Duration::days(31))),
                    pat("91", Some(NOW + Duration::days(91))),
                    pat("expired", Some(NOW - Duration::days(1))),
                    Pat {
                        is_valid: false,
                        ..pat("revoked", Some(NOW + Duration::days(1)))
                    },
                ],
            ),
            (user("b"), vec![]),
            (
                user("c"),
                vec![Pat {
                    is_valid: false,
                    ..pat("revoked2", None)
                }],
            ),
        ]);
        inv.failures.push(UserFailure {
            user: user("d"),
            status: Some(500),
            message: "boom".into(),
        });
        let s = build(inv.clone(), NOW, &ReportOptions::default(), "1").summary;
        assert_eq!(
            (
                s.users_listed,
                s.users_read,
                s.users_failed,
                s.users_with_pats
            ),
            (4, 3, 1, 1)
        );
        assert_eq!(s.pats, 5);
        assert_eq!(
            s.by_status,
            StatusCounts {
                active: 2,
                expiring: 2,
                expired: 1,
                invalid: 2
            }
        );
        assert_eq!(
            (
                s.expiring_within_7_days,
                s.expiring_within_30_days,
                s.expiring_within_90_days
            ),
            (1, 2, 3)
        );
    }

    #[test]
    fn top_holders_are_most_pats_first_then_by_name_at_most_ten() {
        let mut users = vec![];
        for (name, n) in [("zed", 3), ("Amy", 1), ("bob", 3), ("none", 0)] {
            users.push((
                user(name),
                (0..n).map(|i| pat(&format!("{name}{i}"), None)).collect(),
            ));
        }
        for i in 0..12 {
            users.push((user(&format!("u{i:02}")), vec![pat(&format!("u{i}"), None)]));
        }
        users[0].1[0].scope = Some("app_token".into());
        let s = build(inventory(users), NOW, &ReportOptions::default(), "1").summary;
        let names: Vec<&str> = s
            .top_holders
            .iter()
            .map(|h| h.display_name.as_str())
            .collect();
        assert_eq!(
            names,
            [
                "BOB", "ZED", "AMY", "U00", "U01", "U02", "U03", "U04", "U05", "U06"
            ]
        );
        assert_eq!(
            (s.top_holders[1].pats, s.top_holders[1].full_access),
            (3, 1)
        );
        assert_eq!(s.users_with_pats, 15);
    }

    #[test]
    fn errors_and_run_info_come_from_the_inventory() {
        let mut inv = inventory(vec![]);
        inv.failures.push(UserFailure {
            user: user("d"),
            status: None,
            message: "timed out".into(),
        });
        inv.stats.throttle_wait = std::time::Duration::from_millis(1500);
        inv.stats.tstu_limit = Some(200.0);
        inv.stats.tstu_consumed = 51.5;
        inv.stats.tstu_per_call = Some(0.005);
        inv.stats.tstu_per_call_by_api = [("tokenadmin".to_owned(), 0.005)].into();
        inv.stats.rate_limit_delay = std::time::Duration::from_millis(250);
        inv.stats.lowest_remaining = Some(148.5);
        let r = build(inv.clone(), NOW, &ReportOptions::default(), "9.9.9");
        assert_eq!(
            (
                r.run.tstu_limit,
                r.run.tstu_consumed,
                r.run.tstu_per_call,
                r.run.rate_limit_delay_seconds,
                r.run.lowest_remaining
            ),
            (Some(200.0), 51.5, Some(0.005), 0.25, Some(148.5))
        );
        assert_eq!(r.run.tstu_per_call_by_api["tokenadmin"], 0.005);
        assert_eq!(
            r.errors,
            [ErrorRow {
                user_display_name: "D".into(),
                user_principal_name: "d@contoso.com".into(),
                user_descriptor: "aad.d".into(),
                http_status: None,
                message: "timed out".into(),
            }]
        );
        assert_eq!(r.run.org.as_str(), "contoso");
        assert_eq!(r.run.duration_seconds, 30.5);
        assert_eq!(
            (r.run.api_calls, r.run.retries, r.run.throttled),
            (12, 2, 1)
        );
        assert_eq!(r.run.throttle_wait_seconds, 1.5);
        assert!(!r.run.complete);
        assert_eq!(r.run.generated, NOW);
        assert_eq!(r.run.tool_version, "9.9.9");
        assert!(r.rows.is_empty());
    }

    #[test]
    fn ssh_keys_become_rows_with_findings_only_when_listed() {
        let key = |id: &str, to: OffsetDateTime| crate::inventory::SshKey {
            authorization_id: Some(id.into()),
            display_name: Some(format!("key {id}")),
            scope: None,
            valid_from: Some(NOW - Duration::days(10)),
            valid_to: Some(to),
            is_valid: true,
        };
        let mut inv = inventory(vec![(user("b"), vec![]), (user("a"), vec![])]);
        inv.users[0].ssh_keys = vec![key("b1", NOW + Duration::days(500))];
        inv.users[1].ssh_keys = vec![
            key("a2", NOW + Duration::days(3)),
            key("a1", NOW - Duration::days(1)),
        ];
        let listed = ReportOptions {
            ssh_keys_listed: true,
            ..ReportOptions::default()
        };
        let report = build(inv.clone(), NOW, &listed, "1");
        let keys = report.ssh_keys.expect("listed");
        let got: Vec<(&str, TokenStatus, Vec<&str>)> = keys
            .iter()
            .map(|k| {
                (
                    k.authorization_id.as_str(),
                    k.status,
                    k.findings.iter().map(crate::findings::Rule::code).collect(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("a1", TokenStatus::Expired, vec!["expired_listed"]),
                ("a2", TokenStatus::Expiring, vec!["expires_urgently"]),
                ("b1", TokenStatus::Active, vec!["ssh_key_long_lived"]),
            ]
        );
        assert_eq!(report.summary.ssh_keys, 3);
        assert_eq!(report.summary.ssh_key_findings.tokens, 3);
        // Keys are never PATs.
        assert_eq!(report.summary.pats, 0);
        assert!(
            build(inv, NOW, &ReportOptions::default(), "1")
                .ssh_keys
                .is_none()
        );
    }

    #[test]
    fn owners_list_every_holder_with_the_most_to_act_on_first() {
        let later = Some(NOW + Duration::days(60));
        let mut full = pat("full", later);
        full.scope = Some("app_token".into());
        let report = build(
            inventory(vec![
                (user("a"), vec![pat("a1", later), pat("a2", later)]),
                (user("b"), vec![full]),
                (user("c"), vec![]),
            ]),
            NOW,
            &ReportOptions::default(),
            "1",
        );
        let owners: Vec<(&str, usize, usize)> = report
            .owners
            .iter()
            .map(|o| (o.principal_name.as_str(), o.pats, o.critical))
            .collect();
        assert_eq!(owners, [("b@contoso.com", 1, 1), ("a@contoso.com", 2, 0)]);
        assert_eq!(report.owners[1].next_expiry, later);
        assert_eq!(report.summary.findings.critical, 1);
        assert_eq!(report.summary.expiries_by_week.len(), 13);
        assert_eq!(
            report.summary.expiries_by_week[8].pats, 3,
            "60 days ahead is week 8"
        );
        assert_eq!(report.summary.top_scopes[0].scope, "vso.code");
        assert_eq!(report.summary.top_scopes[0].pats, 2);
    }
}
