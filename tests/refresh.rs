//! The incremental refresh against the simulated organization and its audit log: after random
//! sequences of changes (creations, renames, revocations by owners and administrators,
//! expiries, leaks, uses, users arriving and leaving, deliberately ambiguous names), refresh
//! after refresh yields exactly the inventory a full scan of the same organization yields;
//! and every reason to fall back to a full scan does.

use patreport::ado::{AdoClient, AdoCredential, AdoSettings};
use patreport::domain::OrgName;
use patreport::engine::{self, NoProgress, ScanOptions};
use patreport::inventory::Inventory;
use patreport::refresh::{self, RefreshInfo, RefreshOptions, STATE_VERSION, State};
use patreport::secret::Secret;
use patreport::simulator::{
    AuditActor, AuditCategory, AuditMode, DEMO_PAT, EventDraft, OrgSpec, SimConfig, SimOrg,
    SimServer,
};
use std::collections::BTreeMap;
use std::time::Duration;
use time::OffsetDateTime;

const ORG: &str = "fabrikam";

fn client_for(server: &SimServer) -> AdoClient {
    let url: url::Url = server.base_url().parse().unwrap();
    let mut settings = AdoSettings::new(url.clone(), OrgName::parse(ORG).unwrap());
    settings.audit_url = url;
    settings.request_timeout = Duration::from_secs(10);
    AdoClient::new(settings, AdoCredential::Pat(Secret::new(DEMO_PAT))).unwrap()
}

fn incremental() -> RefreshOptions {
    RefreshOptions {
        incremental: true,
        ..RefreshOptions::default()
    }
}

async fn full(client: &AdoClient) -> Inventory {
    engine::scan(client, &ScanOptions::default(), &NoProgress)
        .await
        .unwrap()
}

fn state_of(inventory: &Inventory, as_of: OffsetDateTime, last_full: OffsetDateTime) -> State {
    State {
        version: STATE_VERSION,
        org: OrgName::parse(ORG).unwrap(),
        as_of,
        last_full_scan: last_full,
        ssh_keys: false,
        users: inventory.users.clone(),
        signals: inventory.signals.clone(),
        seen_events: Vec::new(),
        audit_until: None,
    }
}

async fn refreshed(client: &AdoClient, state: Option<State>) -> (Inventory, RefreshInfo) {
    refresh::inventory(
        client,
        &ScanOptions::default(),
        &incremental(),
        state.map(Ok),
        &NoProgress,
        OffsetDateTime::now_utc(),
    )
    .await
    .unwrap()
}

/// The same users (with the same fields) holding the same tokens (same ids, same fields).
fn assert_same(refreshed: &Inventory, full: &Inventory, round: &str) {
    let by_user = |inv: &Inventory| -> BTreeMap<String, _> {
        inv.users
            .iter()
            .map(|u| (u.user.descriptor.clone(), u.clone()))
            .collect()
    };
    let (a, b) = (by_user(refreshed), by_user(full));
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        b.keys().collect::<Vec<_>>(),
        "{round}: other users"
    );
    for (descriptor, mine) in &a {
        let theirs = &b[descriptor];
        assert_eq!(mine.user, theirs.user, "{round}: user {descriptor} differs");
        assert!(
            refresh::same_tokens(mine, theirs),
            "{round}: the tokens of {descriptor} differ:\nrefresh {:#?}\nfull {:#?}",
            mine.pats,
            theirs.pats
        );
    }
    assert!(refreshed.failures.is_empty() && full.failures.is_empty());
}

fn org(users: usize, seed: u64) -> SimOrg {
    SimOrg::generate(
        ORG,
        &OrgSpec {
            seed,
            ..OrgSpec::with_users(users)
        },
        OffsetDateTime::now_utc(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_after_refresh_is_the_full_scan_whatever_changed() {
    let (mut incremental_rounds, mut rounds) = (0, 0);
    for seed in 0..6u64 {
        let server = SimServer::start(org(60, seed), SimConfig::strict())
            .await
            .unwrap();
        let client = client_for(&server);
        let started = OffsetDateTime::now_utc();
        let first = full(&client).await;
        let mut state = state_of(&first, started, started);
        for round in 0..4u64 {
            let count = 6 + ((seed + round) % 3) as usize * 7;
            let at = OffsetDateTime::now_utc() - time::Duration::milliseconds(5);
            let changes = server.mutate(|m| m.random(seed * 1000 + round, count, at));
            let pat_calls = server.stats().pat_requests;
            let (inventory, info) = refreshed(&client, Some(state)).await;
            let read = server.stats().pat_requests - pat_calls;
            let truth = full(&client).await;
            let label = format!(
                "seed {seed} round {round} ({changes:?}; {})",
                info.describe()
            );
            assert_same(&inventory, &truth, &label);
            rounds += 1;
            eprintln!("{label}: {read} listings");
            if info.is_incremental() {
                incremental_rounds += 1;
                assert!(
                    read < truth.users.len() as u64,
                    "{label}: read {read} users' tokens of {}",
                    truth.users.len()
                );
                assert_eq!(
                    info.owners_read + info.owners_reused,
                    truth.users.len() as u64
                );
            } else {
                assert!(info.reason.is_some(), "{label}: a full scan says why");
            }
            state = state_of(
                &inventory,
                info.as_of.unwrap(),
                info.last_full_scan.unwrap(),
            );
            state.seen_events = info.seen_events.clone();
        }
        server.shutdown().await;
    }
    // Most rounds must refresh; a fallback in every round would prove nothing.
    assert!(
        incremental_rounds * 2 > rounds,
        "only {incremental_rounds} of {rounds} rounds were incremental"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refreshes_through_throttling_and_transient_errors_are_still_the_full_scan() {
    // The demo's faults: 429s with Retry-After, transient 500s, delayed answers, BOMs, on every
    // route, the audit log's included.
    let mut config = SimConfig::demo();
    config.faults.transient_500_probability = 0.05;
    config.faults.throttle_probability = 0.01;
    let server = SimServer::start(org(40, 21), config).await.unwrap();
    let client = client_for(&server);
    let started = OffsetDateTime::now_utc();
    let first = full(&client).await;
    let mut state = state_of(&first, started, started);
    for round in 0..3u64 {
        let at = OffsetDateTime::now_utc() - time::Duration::milliseconds(5);
        server.mutate(|m| m.random(90 + round, 12, at));
        let (inventory, info) = refreshed(&client, Some(state)).await;
        let truth = full(&client).await;
        assert_same(
            &inventory,
            &truth,
            &format!("round {round}: {}", info.describe()),
        );
        state = state_of(
            &inventory,
            info.as_of.unwrap(),
            info.last_full_scan.unwrap(),
        );
        state.seen_events = info.seen_events.clone();
    }
    assert!(
        server.stats().throttled_429 + server.stats().server_errors_500 > 0,
        "faults were served"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn no_state_a_forbidden_log_or_an_old_state_fall_back_to_a_full_scan_and_say_why() {
    let forbidden = SimConfig {
        audit: patreport::simulator::AuditConfig {
            mode: AuditMode::Off,
            ..Default::default()
        },
        ..SimConfig::strict()
    };
    let server = SimServer::start(org(30, 7), forbidden).await.unwrap();
    let client = client_for(&server);
    let first = full(&client).await;
    let now = OffsetDateTime::now_utc();

    let (inventory, info) = refreshed(&client, None).await;
    assert!(!info.is_incremental());
    assert!(
        info.reason.as_deref().unwrap().contains("no earlier state"),
        "{info:?}"
    );
    assert_same(&inventory, &first, "no state");

    let (inventory, info) = refreshed(&client, Some(state_of(&first, now, now))).await;
    assert!(!info.is_incremental());
    assert!(
        info.reason.as_deref().unwrap().contains("HTTP 403"),
        "{info:?}"
    );
    assert_same(&inventory, &first, "forbidden");
    assert_eq!(
        info.audit_until,
        Some(now),
        "the next run reads the log from where this state's run got to"
    );

    let old = now - time::Duration::days(91);
    let (_, info) = refreshed(&client, Some(state_of(&first, old, old))).await;
    assert!(
        info.reason.as_deref().unwrap().contains("90 days"),
        "{info:?}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn an_unknown_token_action_and_a_due_full_scan_fall_back_and_the_check_reports_mismatches() {
    let mut generated = org(30, 11);
    let now = OffsetDateTime::now_utc();
    generated.audit.record(EventDraft {
        at: now - time::Duration::seconds(5),
        actor: AuditActor::system(),
        action_id: "Token.PatAccessInvalidEvent".into(),
        area: "Token".into(),
        category: AuditCategory::Modify,
        project: None,
        data: serde_json::Map::new(),
        details: "an undocumented action".into(),
        correlation_id: None,
    });
    let server = SimServer::start(generated, SimConfig::strict())
        .await
        .unwrap();
    let client = client_for(&server);
    let first = full(&client).await;
    let before = now - time::Duration::minutes(1);
    let (inventory, info) = refreshed(&client, Some(state_of(&first, before, before))).await;
    assert!(
        info.reason
            .as_deref()
            .unwrap()
            .contains("Token.PatAccessInvalidEvent"),
        "{info:?}"
    );
    assert_same(&inventory, &first, "unknown action");
    server.shutdown().await;

    let server = SimServer::start(org(30, 11), SimConfig::strict())
        .await
        .unwrap();
    let client = client_for(&server);
    let first = full(&client).await;
    // A state whose last full scan is 8 days old: the full scan is due, and it is compared
    // with what the state holds. A state that lost one owner's token shows as a mismatch.
    let mut stale = state_of(&first, now, now - time::Duration::days(8));
    let holder = stale.users.iter_mut().find(|u| !u.pats.is_empty()).unwrap();
    let who = holder.user.principal_name.clone();
    holder.pats.pop();
    let (inventory, info) = refreshed(&client, Some(stale)).await;
    assert!(!info.is_incremental());
    assert!(info.reason.as_deref().unwrap().contains("full scan is due"));
    let check = info.check.unwrap();
    assert!(
        check.contains("1 owners") && check.contains(&who),
        "{check}"
    );
    assert_same(&inventory, &first, "due");
    server.shutdown().await;
}

#[tokio::test]
async fn a_public_discovery_is_a_leak_on_the_token_and_uses_give_the_last_audited_use() {
    let server = SimServer::start(org(40, 3), SimConfig::strict())
        .await
        .unwrap();
    let client = client_for(&server);
    let first = full(&client).await;
    let now = OffsetDateTime::now_utc();
    let state = state_of(&first, now, now);
    // Two tokens of people with named, valid PATs: one is found in public, one used from a
    // browser for a security change.
    let mut named = first.users.iter().flat_map(|u| {
        u.pats
            .iter()
            .filter(|p| p.is_valid && p.display_name.is_some())
            .map(|p| p.authorization_id.clone().unwrap())
    });
    let (leaked, used) = (named.next().unwrap(), named.nth(3).unwrap());
    let at = OffsetDateTime::now_utc() - time::Duration::milliseconds(5);
    server.mutate(|m| {
        m.public_discovery(&leaked, at).unwrap();
        m.pat_use(
            &used,
            patreport::simulator::PatUse::SecurityPermissionChanged,
            patreport::simulator::BROWSER_USER_AGENT,
            at,
        )
        .unwrap();
    });
    let (inventory, info) = refreshed(&client, Some(state)).await;
    assert!(info.is_incremental(), "{info:?}");
    let leak = &inventory.signals[&leaked.to_ascii_lowercase()];
    assert!(leak.discovered.is_some(), "{leak:?}");
    let use_ = &inventory.signals[&used.to_ascii_lowercase()];
    assert!(use_.last_use.is_some() && use_.browser_use.is_some() && use_.sensitive_use.is_some());

    // In the report: the leak is a critical finding, the use fills the audit columns.
    let report = patreport::report::build(
        inventory,
        OffsetDateTime::now_utc(),
        &Default::default(),
        "t",
    );
    let row = |id: &str| {
        report
            .rows
            .iter()
            .find(|r| r.authorization_id.eq_ignore_ascii_case(id))
            .unwrap()
    };
    let codes = |id: &str| -> Vec<&str> { row(id).findings.iter().map(|r| r.code()).collect() };
    assert!(codes(&leaked).contains(&"leaked_publicly"));
    assert_eq!(
        row(&leaked).findings.severity(),
        Some(patreport::findings::Severity::Critical)
    );
    assert!(codes(&used).contains(&"used_from_browser"));
    assert!(codes(&used).contains(&"sensitive_use"));
    server.shutdown().await;
}

#[tokio::test]
async fn a_gap_the_last_run_could_not_read_is_read_for_its_leaks() {
    let server = SimServer::start(org(30, 5), SimConfig::strict())
        .await
        .unwrap();
    let client = client_for(&server);
    let first = full(&client).await;
    let now = OffsetDateTime::now_utc();
    let leaked = first
        .users
        .iter()
        .flat_map(|u| &u.pats)
        .find(|p| p.is_valid && p.display_name.is_some())
        .and_then(|p| p.authorization_id.clone())
        .unwrap();
    // Found in public an hour ago; the last run (at `now`) could not read the log since two
    // hours ago.
    server.mutate(|m| {
        m.public_discovery(&leaked, now - time::Duration::hours(1))
            .unwrap()
    });
    let mut state = state_of(&first, now, now);
    state.audit_until = Some(now - time::Duration::hours(2));
    let (inventory, info) = refreshed(&client, Some(state)).await;
    assert_eq!(
        info.audit_from,
        Some(now - time::Duration::hours(2) - refresh::OVERLAP)
    );
    assert!(
        inventory.signals[&leaked.to_ascii_lowercase()]
            .discovered
            .is_some(),
        "{info:?}"
    );
    assert_same(&inventory, &full(&client).await, "gap");
    server.shutdown().await;
}

/// Requests the stop once the first page of users is listed (an interrupt at a known point).
struct StopAfterFirstPage(patreport::engine::Stop);
impl patreport::engine::Progress for StopAfterFirstPage {
    fn users_listed(&self, _listed: usize) {
        self.0.request(patreport::engine::StopReason::Interrupted);
    }
}

#[tokio::test]
async fn an_interrupted_refresh_is_a_partial_report_not_a_second_scan() {
    let server = SimServer::start(org(1200, 9), SimConfig::strict())
        .await
        .unwrap();
    let client = client_for(&server);
    let first = full(&client).await;
    let now = OffsetDateTime::now_utc();
    let state = state_of(&first, now, now);
    // A creation by someone on a later page: an interrupted refresh never lists them, so the
    // event is unresolved, which must not start a full scan after the interrupt.
    let last = first.users.last().unwrap().user.descriptor.clone();
    server.mutate(|m| {
        m.create_pat(
            &last,
            patreport::simulator::NewPat::named("late", now + time::Duration::days(9)),
            now,
        )
        .unwrap()
    });
    let scan = ScanOptions::default();
    let stopping = StopAfterFirstPage(scan.stop.clone());
    let listings = server.stats().pat_requests;
    let (inventory, info) = refresh::inventory(
        &client,
        &scan,
        &incremental(),
        Some(Ok(state)),
        &stopping,
        OffsetDateTime::now_utc(),
    )
    .await
    .unwrap();
    assert!(inventory.stopped_early.is_some(), "{info:?}");
    assert!(info.is_incremental(), "{info:?}");
    assert!(
        info.reason.as_deref().unwrap().contains("did not finish"),
        "{info:?}"
    );
    assert!(
        server.stats().pat_requests - listings < 10,
        "no full scan followed the interrupted refresh"
    );
    server.shutdown().await;
}
