//! The scan against the simulated Azure DevOps organization, with and without the faults of
//! the contract: every user on every page and every PAT on every page arrives exactly once,
//! and every failure is visible.

use patreport::ado::{AdoClient, AdoCredential, AdoError, AdoSettings};
use patreport::engine::{self, NoProgress, Progress, ScanError, ScanOptions, Stop, StopReason};
use patreport::inventory::Inventory;
use patreport::secret::Secret;
use patreport::simulator::{
    AuthConfig, AuthFailureMode, DEMO_PAT, FaultConfig, OrgSpec, Persistence, SimConfig, SimOrg,
    SimServer, SimUser, Storm, TstuCosts, TstuLimit,
};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use time::OffsetDateTime;

fn org(users: usize) -> SimOrg {
    SimOrg::generate(
        "fabrikam",
        &OrgSpec::with_users(users),
        OffsetDateTime::now_utc(),
    )
}

fn client_for(server: &SimServer, org: &str) -> AdoClient {
    let mut settings = AdoSettings::new(
        server.base_url().parse().unwrap(),
        patreport::domain::OrgName::parse(org).unwrap(),
    );
    settings.request_timeout = Duration::from_secs(5);
    AdoClient::new(settings, AdoCredential::Pat(Secret::new(DEMO_PAT))).unwrap()
}

async fn scan_with(org: SimOrg, config: SimConfig) -> (Result<Inventory, ScanError>, SimServer) {
    let name = org.name.clone();
    let server = SimServer::start(org, config).await.unwrap();
    let client = client_for(&server, &name);
    let result = engine::scan(&client, &ScanOptions::default(), &NoProgress).await;
    (result, server)
}

/// descriptor → authorization ids, from the simulated truth (people only).
fn expected(org: &SimOrg) -> BTreeMap<String, BTreeSet<String>> {
    org.human_users()
        .map(|u| {
            (
                u.descriptor.clone(),
                u.pats.iter().map(|p| p.authorization_id.clone()).collect(),
            )
        })
        .collect()
}

/// The same map from a scan, asserting on the way that nothing arrived twice.
fn found(inv: &Inventory) -> BTreeMap<String, BTreeSet<String>> {
    let mut map = BTreeMap::new();
    for u in &inv.users {
        let ids: Vec<String> = u
            .pats
            .iter()
            .map(|p| p.authorization_id.clone().unwrap())
            .collect();
        let set: BTreeSet<String> = ids.iter().cloned().collect();
        assert_eq!(
            set.len(),
            ids.len(),
            "a PAT of {} arrived twice",
            u.user.descriptor
        );
        assert!(
            map.insert(u.user.descriptor.clone(), set).is_none(),
            "user {} arrived twice",
            u.user.descriptor
        );
    }
    map
}

fn assert_exact(inv: &Inventory, org: &SimOrg) {
    assert!(inv.failures.is_empty(), "failures: {:?}", inv.failures);
    assert!(inv.is_complete());
    assert_eq!(found(inv), expected(org));
    assert_eq!(inv.pat_count(), org.pat_count());
}

#[tokio::test]
async fn every_user_and_pat_arrives_exactly_once_across_uneven_pages() {
    let org = org(1300);
    let truth = org.clone();
    let (result, server) = scan_with(org, SimConfig::strict()).await;
    let inv = result.unwrap();
    assert_exact(&inv, &truth);
    // More than one page of users, and more than one page of PATs for someone.
    assert!(
        inv.stats.user_pages >= 3,
        "user pages: {}",
        inv.stats.user_pages
    );
    assert!(inv.stats.pat_pages > inv.users.len() as u64);
    assert_eq!(server.stats().bad_requests, 0);
    assert_eq!(server.stats().not_found, 0);
    // SSH keys were not asked for: not one isPublic=true request, none in the inventory.
    assert!(truth.ssh_key_count() > 0);
    assert_eq!(server.stats().ssh_key_requests, 0);
    assert_eq!((inv.ssh_key_count(), inv.stats.ssh_key_pages), (0, 0));
}

/// descriptor → SSH key authorization ids, from the simulated truth (people only).
fn expected_keys(org: &SimOrg) -> BTreeMap<String, Vec<String>> {
    org.human_users()
        .map(|u| {
            let ids = u.ssh_keys.iter().map(|k| k.authorization_id.clone());
            (u.descriptor.clone(), ids.collect())
        })
        .collect()
}

/// The same map from a scan, in the order the keys were listed.
fn found_keys(inv: &Inventory) -> BTreeMap<String, Vec<String>> {
    inv.users
        .iter()
        .map(|u| {
            let ids = u
                .ssh_keys
                .iter()
                .map(|k| k.authorization_id.clone().unwrap());
            (u.user.descriptor.clone(), ids.collect())
        })
        .collect()
}

/// What the progress callbacks were told.
#[derive(Default)]
struct Tally {
    scanned: AtomicUsize,
    failed: AtomicUsize,
    read: std::sync::Mutex<BTreeSet<String>>,
}

impl Progress for Tally {
    fn user_scanned(&self, _pats: usize, failed: bool) {
        let counter = if failed { &self.failed } else { &self.scanned };
        counter.fetch_add(1, Ordering::SeqCst);
    }
    fn user_read(&self, user: &patreport::inventory::User, _pats: &[patreport::inventory::Pat]) {
        self.read.lock().unwrap().insert(user.descriptor.clone());
    }
}

fn with_ssh_keys() -> ScanOptions {
    ScanOptions {
        include_ssh_keys: true,
        ..ScanOptions::default()
    }
}

#[tokio::test]
async fn ssh_keys_when_asked_arrive_exactly_once_through_the_faults() {
    let org = org(300);
    let truth = org.clone();
    let mut config = frequent_faults(&descriptors(&truth, 4, |u| !u.ssh_keys.is_empty()));
    config.faults.slow_delay = Duration::from_millis(5);
    let server = SimServer::start(org, config).await.unwrap();
    let mut client = client_for(&server, "fabrikam");
    let mut settings = client.settings().clone();
    // Small pages: the heavy user's 25 keys take nine, a 3-key user's one full page.
    settings.pat_page_size = 3;
    client = AdoClient::new(settings, AdoCredential::Pat(Secret::new(DEMO_PAT))).unwrap();
    let inv = engine::scan(&client, &with_ssh_keys(), &NoProgress)
        .await
        .unwrap();
    assert_exact(&inv, &truth);
    assert_eq!(found_keys(&inv), expected_keys(&truth));
    assert_eq!(inv.ssh_key_count(), truth.ssh_key_count());
    let sim = server.stats();
    assert!(
        sim.throttled_429 > 0 && sim.server_errors_500 > 0 && sim.malformed_bodies > 0,
        "{sim:?}"
    );
    // Every user got one SSH key listing, and its pages are counted.
    assert!(sim.ssh_key_requests >= truth.human_users().count() as u64);
    // (A user's first page, the one truncated, is always a PAT page: none was read twice.)
    assert_eq!(inv.stats.ssh_key_pages, sim.ssh_key_pages);
    let heavy = inv.users.iter().find(|u| u.ssh_keys.len() == 25).unwrap();
    let names: Vec<Option<&str>> = heavy
        .ssh_keys
        .iter()
        .map(|k| k.display_name.as_deref())
        .collect();
    assert_eq!(names[0], None);
    assert!(heavy.ssh_keys.iter().any(|k| !k.is_valid));
    assert_eq!(heavy.ssh_keys[1].valid_from, None, "the no-date sentinel");
}

#[tokio::test]
async fn a_user_whose_ssh_keys_cannot_be_read_is_a_failure_record() {
    let org = org(200);
    let truth = org.clone();
    let broken = truth
        .human_users()
        .filter(|u| !u.pats.is_empty())
        .nth(7)
        .unwrap()
        .descriptor
        .clone();
    let mut config = SimConfig::strict();
    config.faults.failing_ssh_descriptors.insert(broken.clone());
    let server = SimServer::start(org, config).await.unwrap();
    let mut client = client_for(&server, "fabrikam");
    let mut settings = client.settings().clone();
    settings.max_retries = 2; // keep the test quick
    client = AdoClient::new(settings, AdoCredential::Pat(Secret::new(DEMO_PAT))).unwrap();
    let progress = Tally::default();
    let inv = engine::scan(&client, &with_ssh_keys(), &progress)
        .await
        .unwrap();
    assert!(!inv.is_complete());
    assert_eq!(inv.failures.len(), 1, "{:?}", inv.failures);
    // Progress saw each user once, and the failed one never as read.
    let read = progress.read.lock().unwrap();
    assert_eq!(progress.scanned.load(Ordering::SeqCst), inv.users.len());
    assert_eq!(progress.failed.load(Ordering::SeqCst), 1);
    assert_eq!(read.len(), inv.users.len());
    assert!(!read.contains(&broken));
    let failure = &inv.failures[0];
    assert_eq!(failure.user.descriptor, broken);
    assert_eq!(failure.status, Some(500));
    assert!(
        failure.message.contains("SSH keys") && failure.message.contains("HTTP 500"),
        "{}",
        failure.message
    );
    // The user is not also listed as read, and everyone else is exact.
    assert!(inv.users.iter().all(|u| u.user.descriptor != broken));
    let mut want = expected(&truth);
    want.remove(&broken);
    assert_eq!(found(&inv), want);
    let mut want_keys = expected_keys(&truth);
    want_keys.remove(&broken);
    assert_eq!(found_keys(&inv), want_keys);
    // Given up only after the retries.
    assert!(server.stats().server_errors_500 > 1, "{:?}", server.stats());
}

#[tokio::test]
async fn values_arrive_unchanged_and_service_identities_are_skipped() {
    let org = org(300);
    let truth = org.clone();
    let (result, _server) = scan_with(org, SimConfig::strict()).await;
    let inv = result.unwrap();
    assert!(
        inv.users
            .iter()
            .all(|u| !u.user.descriptor.starts_with("svc.")
                && !u.user.descriptor.starts_with("acs."))
    );
    let mut null_names = 0;
    for scanned in &inv.users {
        let sim = truth
            .user(&scanned.user.descriptor)
            .expect("listed user exists");
        assert_eq!(scanned.user.display_name, sim.display_name);
        assert_eq!(scanned.user.principal_name, sim.principal_name);
        assert_eq!(scanned.user.mail_address, sim.mail_address);
        assert_eq!(scanned.user.origin, sim.origin);
        for pat in &scanned.pats {
            let id = pat.authorization_id.as_deref().unwrap();
            let expected = sim.pats.iter().find(|p| p.authorization_id == id).unwrap();
            assert_eq!(pat.display_name, expected.display_name);
            null_names += usize::from(pat.display_name.is_none());
            assert_eq!(pat.scope.as_deref(), Some(expected.scope.as_str()));
            assert_eq!(pat.target_accounts, expected.target_accounts);
            assert_eq!(pat.is_valid, expected.is_valid);
            let valid_to = pat.valid_to.unwrap();
            assert!(
                (valid_to - expected.valid_to).abs() < time::Duration::seconds(1),
                "{id}: {valid_to} vs {}",
                expected.valid_to
            );
        }
    }
    assert!(
        null_names > 0,
        "the simulated org has a PAT with a null name"
    );
}

/// The first `n` people for whom `pick` holds.
fn descriptors(org: &SimOrg, n: usize, pick: impl Fn(&SimUser) -> bool) -> Vec<String> {
    org.human_users()
        .filter(|u| pick(u))
        .take(n)
        .map(|u| u.descriptor.clone())
        .collect()
}

/// The demo's faults, more of them and without waits, and the first Token Admin page of each
/// of `truncated_once` truncated once.
fn frequent_faults(truncated_once: &[String]) -> SimConfig {
    let mut config = SimConfig::demo();
    config.faults.retry_after_secs = 0;
    config.faults.throttle_probability = 0.05;
    config.faults.transient_500_probability = 0.05;
    config.faults.delayed_200_delay = Duration::from_millis(5);
    config.faults.malformed_json = truncated_once
        .iter()
        .map(|d| (d.clone(), Persistence::FirstTimeOnly))
        .collect();
    config
}

#[tokio::test]
async fn throttling_transient_errors_bom_and_malformed_bodies_lose_nothing() {
    let org = org(700);
    let truth = org.clone();
    let some = descriptors(&truth, 5, |u| !u.pats.is_empty());
    let mut config = frequent_faults(&some);
    config.faults.storm = Some(Storm {
        start_at: 40,
        count: 6,
    });
    config.faults.bom = true;
    let (result, server) = scan_with(org, config).await;
    let inv = result.unwrap();
    assert_exact(&inv, &truth);
    let sim = server.stats();
    assert!(
        sim.throttled_429 > 0 && sim.server_errors_500 > 0 && sim.malformed_bodies >= 5,
        "{sim:?}"
    );
    assert!(
        inv.stats.retries >= sim.throttled_429 + sim.server_errors_500,
        "{:?} vs {sim:?}",
        inv.stats
    );
    assert!(inv.stats.throttled >= sim.throttled_429);
}

#[tokio::test]
async fn a_user_whose_tokens_cannot_be_read_is_reported_not_dropped() {
    let org = org(200);
    let truth = org.clone();
    let broken: Vec<String> = truth
        .human_users()
        .skip(10)
        .take(2)
        .map(|u| u.descriptor.clone())
        .collect();
    let malformed = truth.human_users().nth(20).unwrap().descriptor.clone();
    let mut config = SimConfig::strict();
    config.faults.failing_descriptors = broken.iter().cloned().collect();
    config.faults.malformed_json = [(malformed.clone(), Persistence::Always)].into();
    let server = SimServer::start(org, config).await.unwrap();
    let mut settings = AdoSettings::new(
        server.base_url().parse().unwrap(),
        patreport::domain::OrgName::parse("fabrikam").unwrap(),
    );
    settings.max_retries = 2; // keep the test quick
    let client = AdoClient::new(settings, AdoCredential::Pat(Secret::new(DEMO_PAT))).unwrap();
    let inv = engine::scan(&client, &ScanOptions::default(), &NoProgress)
        .await
        .unwrap();

    assert!(!inv.is_complete());
    let failed: BTreeMap<&str, (Option<u16>, &str)> = inv
        .failures
        .iter()
        .map(|f| (f.user.descriptor.as_str(), (f.status, f.message.as_str())))
        .collect();
    assert_eq!(failed.len(), 3, "{failed:?}");
    for d in &broken {
        let (status, message) = failed[d.as_str()];
        assert_eq!(status, Some(500));
        assert!(!message.is_empty());
    }
    let (status, message) = failed[malformed.as_str()];
    assert_eq!(status, None);
    assert!(message.contains("could not read the answer"), "{message}");
    // Everyone else is complete and exact.
    let mut want = expected(&truth);
    for d in failed.keys() {
        want.remove(*d);
    }
    assert_eq!(found(&inv), want);
}

async fn fatal_with(auth: AuthConfig) -> ScanError {
    let mut config = SimConfig::strict();
    config.auth = auth;
    scan_with(org(50), config)
        .await
        .0
        .expect_err("the scan must stop")
}

#[tokio::test]
async fn a_refused_credential_is_one_clear_authentication_error() {
    for mode in [
        AuthFailureMode::Unauthorized401,
        AuthFailureMode::SignInPage203,
        AuthFailureMode::Redirect302,
    ] {
        let err = fatal_with(AuthConfig::always_refuse(mode)).await;
        let ScanError::Users {
            source: AdoError::Authentication { status, .. },
            ..
        } = &err
        else {
            panic!("{mode:?}: expected an authentication error, got {err:?}");
        };
        let text = err.to_string();
        assert!(
            text.contains("Project Collection Administrator")
                && text.contains("vso.tokenadministration"),
            "{text}"
        );
        match mode {
            AuthFailureMode::SignInPage203 => assert_eq!(*status, 203),
            AuthFailureMode::Redirect302 => assert_eq!(*status, 302),
            _ => assert_eq!(*status, 401),
        }
    }
}

#[tokio::test]
async fn a_wrong_pat_is_refused_with_401_because_we_suppress_the_sign_in_redirect() {
    let mut config = SimConfig::strict();
    config.auth = AuthConfig::accepting(&["some-other-pat"], &[]);
    let err = scan_with(org(10), config).await.0.unwrap_err();
    assert!(
        matches!(
            err,
            ScanError::Users {
                source: AdoError::Authentication { status: 401, .. },
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_caller_who_is_not_a_token_administrator_is_told_so() {
    let mut auth = AuthConfig::accepting(&[DEMO_PAT], &[]);
    auth.token_admin = false;
    let err = fatal_with(auth).await;
    assert!(
        matches!(
            err,
            ScanError::TokenAdmin {
                source: AdoError::Authentication { status: 401, .. },
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_unknown_organization_is_named() {
    let server = SimServer::start(org(5), SimConfig::strict()).await.unwrap();
    let client = client_for(&server, "no-such-org");
    let err = engine::scan(&client, &ScanOptions::default(), &NoProgress)
        .await
        .unwrap_err();
    assert!(matches!(err, ScanError::OrgNotFound { .. }), "{err:?}");
    assert!(err.to_string().contains("no-such-org"));
}

#[tokio::test]
async fn slow_answers_time_out_and_are_retried() {
    let org = org(40);
    let truth = org.clone();
    let mut config = SimConfig::strict();
    config.faults = FaultConfig {
        slow_probability: 0.1,
        slow_delay: Duration::from_secs(3),
        ..FaultConfig::none()
    };
    let server = SimServer::start(org, config).await.unwrap();
    let mut settings = AdoSettings::new(
        server.base_url().parse().unwrap(),
        patreport::domain::OrgName::parse("fabrikam").unwrap(),
    );
    settings.request_timeout = Duration::from_millis(800);
    let client = AdoClient::new(settings, AdoCredential::Pat(Secret::new(DEMO_PAT))).unwrap();
    let inv = engine::scan(&client, &ScanOptions::default(), &NoProgress)
        .await
        .unwrap();
    assert_exact(&inv, &truth);
    assert!(inv.stats.retries > 0);
}

/// Stops the scan (as its time budget does) once `after` users have been scanned: the test,
/// not the machine's speed, decides where the scan is cut.
struct StopAfter {
    after: usize,
    stop: Stop,
    scanned: AtomicUsize,
    listed: AtomicUsize,
}

impl Progress for StopAfter {
    fn users_listed(&self, listed: usize) {
        self.listed.store(listed, Ordering::SeqCst);
    }
    fn user_scanned(&self, _pats: usize, failed: bool) {
        if !failed && self.scanned.fetch_add(1, Ordering::SeqCst) + 1 == self.after {
            self.stop.request(StopReason::TimeBudget);
        }
    }
}

#[tokio::test]
async fn a_time_budget_stops_cleanly_and_every_listed_user_is_accounted_for() {
    let org = org(600);
    let server = SimServer::start(org, SimConfig::strict()).await.unwrap();
    let client = client_for(&server, "fabrikam");
    let progress = StopAfter {
        after: 50,
        stop: Stop::default(),
        scanned: AtomicUsize::new(0),
        listed: AtomicUsize::new(0),
    };
    let options = ScanOptions {
        concurrency: 4,
        stop: progress.stop.clone(),
        ..ScanOptions::default()
    };
    let inv = engine::scan(&client, &options, &progress).await.unwrap();
    assert!(!inv.is_complete());
    let skipped = inv
        .failures
        .iter()
        .filter(|f| f.message.contains("time budget"))
        .count();
    assert!(skipped > 0, "some users were not reached");
    // Listings in flight when the budget ran out finish; no new one starts.
    assert!(
        (50..=50 + 4).contains(&inv.users.len()),
        "{} users scanned",
        inv.users.len()
    );
    assert_eq!(
        inv.users.len() + inv.failures.len(),
        progress.listed.load(Ordering::SeqCst),
        "every listed user is scanned or recorded as not scanned"
    );
    assert!(
        inv.failures
            .iter()
            .all(|f| f.message.contains("time budget"))
    );
}

#[tokio::test]
async fn a_rate_limited_scan_slows_down_and_loses_no_user() {
    let org = org(500);
    let truth = org.clone();
    let mut config = SimConfig::strict();
    config.faults.latency = Duration::from_millis(2);
    config.faults.window = Some(patreport::simulator::WindowLimit {
        window: Duration::from_secs(2),
        budget: 300,
        soft_threshold: 200,
        delay: Duration::from_millis(50),
    });
    let (result, server) = scan_with(org, config).await;
    let inv = result.unwrap();
    assert_exact(&inv, &truth);
    let sim = server.stats();
    // The scan needs ~500 requests, 2.5 windows' worth: it came close to the limit ...
    assert_eq!(inv.stats.tstu_limit, Some(200.0));
    assert!(
        inv.stats.lowest_remaining.is_some_and(|r| r < 60.0),
        "{:?}",
        inv.stats
    );
    // ... and the governor kept it under the limit, and mostly under the hard budget.
    assert!(sim.throttled_429 < 20, "{sim:?}");
}

// ---------------------------------------------------------------------------------------------
// A broken or hostile server cannot hang a run, inflate it, or carry the credential into it.

/// The human user with the most PATs (several pages at the default page size).
fn heavy_user(org: &SimOrg) -> String {
    org.human_users()
        .max_by_key(|u| u.pats.len())
        .map(|u| u.descriptor.clone())
        .unwrap()
}

#[tokio::test]
async fn a_listing_that_never_ends_becomes_a_failed_user_at_the_page_limit() {
    let org = org(30);
    let endless = heavy_user(&org);
    let mut config = SimConfig::strict();
    config
        .faults
        .hostile
        .endless_descriptors
        .insert(endless.clone());
    let server = SimServer::start(org.clone(), config).await.unwrap();
    let mut client = client_for(&server, "fabrikam");
    let mut settings = client.settings().clone();
    settings.page_limit = 5;
    client = AdoClient::new(settings, AdoCredential::Pat(Secret::new(DEMO_PAT))).unwrap();
    let inv = engine::scan(&client, &ScanOptions::default(), &NoProgress)
        .await
        .unwrap();
    assert_eq!(inv.failures.len(), 1, "{:?}", inv.failures);
    let failure = &inv.failures[0];
    assert_eq!(failure.user.descriptor, endless);
    assert!(
        failure.message.contains("page limit"),
        "{}",
        failure.message
    );
    assert_eq!(inv.users.len(), org.human_users().count() - 1);
    assert!(
        server.stats().pat_requests < 200,
        "the endless listing was cut"
    );
}

#[tokio::test]
async fn entries_the_service_repeats_are_reported_once_and_counted() {
    let org = org(1200);
    let truth = org.clone();
    let mut config = SimConfig::strict();
    config.faults.hostile.repeat_entries = true;
    let (result, _server) = scan_with(org, config).await;
    let inv = result.unwrap();
    // Exactly the organization's tokens, each once; nothing was lost, so the run is complete.
    assert_exact(&inv, &truth);
    assert!(inv.is_complete());
    assert!(inv.stats.duplicate_users > 0, "{:?}", inv.stats);
    assert!(inv.stats.duplicate_pats > 0, "{:?}", inv.stats);
}

#[tokio::test]
async fn an_error_that_echoes_the_credential_reaches_no_record() {
    let org = org(10);
    let victim = heavy_user(&org);
    let mut config = SimConfig::strict();
    config
        .faults
        .hostile
        .echo_authorization
        .insert(victim.clone());
    let (result, _server) = scan_with(org, config).await;
    let inv = result.unwrap();
    let failure = inv
        .failures
        .iter()
        .find(|f| f.user.descriptor == victim)
        .expect("the user is an error record");
    let basic = base64_basic(DEMO_PAT);
    let text = format!("{failure:?}");
    assert!(text.contains("Authorization: Basic [REDACTED]"), "{text}");
    assert!(!text.contains(&basic) && !text.contains(DEMO_PAT), "{text}");
}

fn base64_basic(pat: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(format!(":{pat}"))
}

#[tokio::test]
async fn a_name_with_a_lone_surrogate_costs_one_character_not_the_page() {
    let org = org(10);
    let odd = heavy_user(&org);
    let truth = org.clone();
    let mut config = SimConfig::strict();
    config.faults.hostile.lone_surrogate.insert(odd.clone());
    let (result, _server) = scan_with(org, config).await;
    let inv = result.unwrap();
    assert_exact(&inv, &truth);
    let user = inv.users.iter().find(|u| u.user.descriptor == odd).unwrap();
    assert!(
        user.pats
            .iter()
            .filter_map(|p| p.display_name.as_deref())
            .all(|n| n.starts_with('\u{fffd}')),
        "{:?}",
        user.pats
    );
}

#[tokio::test]
async fn a_retry_after_longer_than_the_budget_left_ends_the_run_instead_of_waiting() {
    let org = org(200);
    let mut config = SimConfig::strict();
    config.faults.retry_after_secs = 3600;
    config.faults.storm = Some(Storm {
        start_at: 20,
        count: 1,
    });
    let server = SimServer::start(org, config).await.unwrap();
    let client = client_for(&server, "fabrikam");
    let options = ScanOptions {
        time_budget: Some(Duration::from_secs(600)),
        ..ScanOptions::default()
    };
    // A guard against a hang, not a timing assertion: without the fix this waits an hour.
    let inv = tokio::time::timeout(
        Duration::from_secs(120),
        engine::scan(&client, &options, &NoProgress),
    )
    .await
    .expect("the scan ended instead of waiting out the Retry-After")
    .unwrap();
    assert!(!inv.is_complete());
    assert!(
        inv.failures
            .iter()
            .any(|f| f.message.contains("asked to wait 3600 s")),
        "{:?}",
        inv.failures
    );
    assert!(
        inv.failures
            .iter()
            .any(|f| f.message.contains("time budget"))
            || inv
                .stopped_early
                .as_deref()
                .is_some_and(|s| s.contains("time budget")),
        "{inv:?}"
    );
}

/// The documented limit in small: 10 TSTU per second, a listing costing 1, refusals as the
/// 403 some clients meet (`TF400733`, `RequestBlockedException`). The first burst of listings
/// goes past the limit before any answer can slow it, so some are refused; every refusal is
/// retried as throttling and no user is lost.
#[tokio::test]
async fn a_403_that_says_the_request_was_blocked_is_retried_as_throttling() {
    let org = org(40);
    let truth = org.clone();
    let mut config = SimConfig::strict();
    config.faults.tstu = Some(TstuLimit {
        window: Duration::from_secs(1),
        limit: 10.0,
        block_over: 1.0,
        max_delay: Duration::from_millis(20),
        costs: TstuCosts {
            graph: 0.1,
            token_admin: 1.0,
            revocations: 1.0,
            audit: 1.0,
        },
        noise: 0.0,
        blocked_as_403: true,
        ..TstuLimit::documented(1.0)
    });
    let (result, server) = scan_with(org, config).await;
    let inv = result.unwrap();
    assert_exact(&inv, &truth);
    let sim = server.stats();
    assert!(sim.throttled_429 > 0, "some requests were refused: {sim:?}");
    assert!(
        inv.stats.throttled > 0 && inv.stats.retries > 0,
        "{:?}",
        inv.stats
    );
    // The figures of the run: the limit as reported, what was consumed, the closest call.
    assert_eq!(inv.stats.tstu_limit, Some(10.0));
    assert!(inv.stats.tstu_consumed > 10.0, "{:?}", inv.stats);
    assert!(inv.stats.tstu_per_call_by_api.contains_key("tokenadmin"));
    assert!(inv.stats.lowest_remaining.is_some_and(|r| r < 3.0));
}
