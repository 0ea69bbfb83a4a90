//! Revoking against the simulated organization: the dry run sends nothing, batches split at
//! 990, a partial failure is reported id by id and a rerun finishes the job without sending an
//! id twice, stale ids are skipped, a 203 is not a success, and the audit trail says what
//! happened.

use patreport::ado::{AdoClient, AdoCredential, AdoSettings};
use patreport::findings::Findings;
use patreport::report::TokenStatus;
use patreport::revoke::{self, BATCH_LIMIT, Mode, Outcome, PlannedToken, RevokePlan};
use patreport::secret::Secret;
use patreport::simulator::{DEMO_PAT, OrgSpec, SimConfig, SimOrg, SimServer};
use std::collections::BTreeSet;
use std::time::Duration;
use time::OffsetDateTime;

fn org(users: usize) -> SimOrg {
    SimOrg::generate(
        "fabrikam",
        &OrgSpec::with_users(users),
        OffsetDateTime::now_utc(),
    )
}

fn client(url: &str, max_retries: u32) -> AdoClient {
    let mut settings = AdoSettings::new(
        url.parse().unwrap(),
        patreport::domain::OrgName::parse("fabrikam").unwrap(),
    );
    settings.request_timeout = Duration::from_secs(5);
    settings.max_retries = max_retries;
    AdoClient::new(settings, AdoCredential::Pat(Secret::new(DEMO_PAT))).unwrap()
}

/// A plan of the first `n` valid, unexpired PATs of people, as a report would give them.
fn plan_of(org: &SimOrg, n: usize) -> RevokePlan {
    let now = OffsetDateTime::now_utc();
    let tokens: Vec<PlannedToken> = org
        .human_users()
        .flat_map(|u| {
            u.pats
                .iter()
                .filter(move |p| p.is_valid && p.valid_to > now)
                .map(move |p| PlannedToken {
                    authorization_id: p.authorization_id.clone(),
                    owner_display_name: u.display_name.clone(),
                    owner_principal_name: u.principal_name.clone(),
                    owner_descriptor: u.descriptor.clone(),
                    pat_name: p.display_name.clone(),
                    valid_to: Some(p.valid_to),
                    status: TokenStatus::Active,
                    findings: Findings::NONE,
                })
        })
        .take(n)
        .collect();
    assert_eq!(tokens.len(), n, "the org holds {n} valid PATs");
    RevokePlan {
        kind: revoke::plan::PLAN_KIND.into(),
        org: "fabrikam".into(),
        source_report: "test".into(),
        created: now,
        selection: "test".into(),
        tokens,
    }
}

fn outcomes(result: &revoke::RevokeResult) -> Vec<&'static str> {
    result.tokens.iter().map(|(_, o)| o.name()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_checks_every_token_and_sends_nothing() {
    let org = org(60);
    let plan = plan_of(&org, 20);
    let server = SimServer::start(org, SimConfig::strict()).await.unwrap();
    let result = revoke::execute(
        &client(&server.base_url(), 2),
        &plan,
        Mode::DryRun,
        BATCH_LIMIT,
        None,
    )
    .await;
    assert!(outcomes(&result).iter().all(|o| *o == "would_revoke"));
    assert_eq!(result.batches, 0);
    assert!(server.revocations().is_empty(), "nothing was sent");
    // And nothing changed: the same plan still checks out whole.
    let again = revoke::execute(
        &client(&server.base_url(), 2),
        &plan,
        Mode::DryRun,
        BATCH_LIMIT,
        None,
    )
    .await;
    assert_eq!(outcomes(&again), outcomes(&result));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_go_in_batches_of_990_and_991_make_two() {
    let org = org(700);
    for (n, expected) in [(990, vec![990]), (991, vec![990, 1])] {
        let plan = plan_of(&org, n);
        let server = SimServer::start(org.clone(), SimConfig::strict())
            .await
            .unwrap();
        let result = revoke::execute(
            &client(&server.base_url(), 2),
            &plan,
            Mode::Revoke,
            BATCH_LIMIT,
            None,
        )
        .await;
        let sizes: Vec<usize> = server.revocations().iter().map(Vec::len).collect();
        assert_eq!(sizes, expected, "{n} ids");
        assert!(outcomes(&result).iter().all(|o| *o == "revoked"));
        assert_eq!(result.batches, expected.len());
        server.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_batch_is_reported_id_by_id_and_a_rerun_finishes_without_sending_twice() {
    let org = org(80);
    let mut plan = plan_of(&org, 9);
    // A token the listing no longer has: reported, never sent.
    let mut stale = plan.tokens[0].clone();
    stale.authorization_id = "00000000-1111-4222-8333-444444444444".into();
    plan.tokens.push(stale.clone());
    let mut config = SimConfig::strict();
    // The second of three batches fails (no retries here, so the failure stands).
    config.faults.failing_revocation_requests = BTreeSet::from([2]);
    let server = SimServer::start(org, config).await.unwrap();
    let first = revoke::execute(&client(&server.base_url(), 0), &plan, Mode::Revoke, 3, None).await;
    let names = outcomes(&first);
    assert_eq!(
        names,
        [
            "revoked",
            "revoked",
            "revoked",
            "failed",
            "failed",
            "failed",
            "revoked",
            "revoked",
            "revoked",
            "not_listed"
        ]
    );
    let (_, failed) = &first.tokens[3];
    assert!(
        matches!(failed, Outcome::Failed(why) if why.contains("500")),
        "{failed:?}"
    );
    assert_eq!(first.failed(), 3);

    let second =
        revoke::execute(&client(&server.base_url(), 0), &plan, Mode::Revoke, 3, None).await;
    let names = outcomes(&second);
    assert_eq!(&names[..3], ["already_revoked"; 3]);
    assert_eq!(&names[3..6], ["revoked"; 3]);
    assert_eq!(&names[6..9], ["already_revoked"; 3]);
    assert_eq!(names[9], "not_listed");
    assert_eq!(second.failed(), 0);

    let sent: Vec<String> = server.revocations().into_iter().flatten().collect();
    let unique: BTreeSet<&String> = sent.iter().collect();
    assert_eq!(sent.len(), 9, "each valid id sent once: {sent:?}");
    assert_eq!(unique.len(), 9);
    assert!(
        !sent.contains(&stale.authorization_id),
        "a stale id is never sent"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_what_the_confirmed_check_found_valid_is_sent() {
    let org = org(40);
    let plan = plan_of(&org, 3);
    let server = SimServer::start(org, SimConfig::strict()).await.unwrap();
    let confirmed: std::collections::HashSet<String> = plan.tokens[..2]
        .iter()
        .map(|t| t.authorization_id.clone())
        .collect();
    let result = revoke::execute(
        &client(&server.base_url(), 2),
        &plan,
        Mode::Revoke,
        BATCH_LIMIT,
        Some(&confirmed),
    )
    .await;
    assert_eq!(outcomes(&result), ["revoked", "revoked", "not_sent"]);
    let sent: Vec<String> = server.revocations().into_iter().flatten().collect();
    assert_eq!(sent.len(), 2);
    assert!(!sent.contains(&plan.tokens[2].authorization_id));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_batch_is_retried_and_revoked() {
    let org = org(40);
    let plan = plan_of(&org, 5);
    let mut config = SimConfig::strict();
    config.faults.throttled_revocation_requests = BTreeSet::from([1]);
    let server = SimServer::start(org, config).await.unwrap();
    let result = revoke::execute(
        &client(&server.base_url(), 3),
        &plan,
        Mode::Revoke,
        BATCH_LIMIT,
        None,
    )
    .await;
    assert!(
        outcomes(&result).iter().all(|o| *o == "revoked"),
        "{result:?}"
    );
    assert_eq!(
        server.revocations().len(),
        1,
        "the 429 took no effect; the retry did"
    );
    server.shutdown().await;
}

/// A server that lists one valid PAT and answers the revocation with a 203 sign-in page.
async fn sign_in_page_server() -> String {
    use axum::http::{StatusCode, header};
    use axum::response::IntoResponse;
    let listing = serde_json::json!({
        "value": [{ "authorizationId": "11111111-2222-4333-8444-555555555555",
                    "displayName": "ci", "scope": "vso.code", "isValid": true, "isPublic": false,
                    "validFrom": "2026-01-01T00:00:00Z", "validTo": "2099-01-01T00:00:00Z" }],
        "continuationToken": null
    });
    let app = axum::Router::new()
        .route(
            "/fabrikam/_apis/tokenadmin/personalaccesstokens/{descriptor}",
            axum::routing::get(move || {
                let listing = listing.clone();
                async move { axum::Json(listing) }
            }),
        )
        .route(
            "/fabrikam/_apis/tokenadmin/revocations",
            axum::routing::post(|| async {
                (
                    StatusCode::NON_AUTHORITATIVE_INFORMATION,
                    [(header::CONTENT_TYPE, "text/html")],
                    "<html>Sign in</html>",
                )
                    .into_response()
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_203_is_not_a_success_and_stops_the_batches_after_it() {
    let url = sign_in_page_server().await;
    let token = |id: &str| PlannedToken {
        authorization_id: id.into(),
        owner_display_name: "A".into(),
        owner_principal_name: "a@contoso.com".into(),
        owner_descriptor: "aad.a".into(),
        pat_name: Some("ci".into()),
        valid_to: None,
        status: TokenStatus::Active,
        findings: Findings::NONE,
    };
    let plan = RevokePlan {
        kind: revoke::plan::PLAN_KIND.into(),
        org: "fabrikam".into(),
        source_report: "test".into(),
        created: OffsetDateTime::now_utc(),
        selection: "test".into(),
        tokens: vec![
            token("11111111-2222-4333-8444-555555555555"),
            token("11111111-2222-4333-8444-555555555555"),
        ],
    };
    let result = revoke::execute(&client(&url, 0), &plan, Mode::Revoke, 1, None).await;
    let (_, first) = &result.tokens[0];
    assert!(
        matches!(first, Outcome::Failed(why) if why.contains("203")),
        "{first:?}"
    );
    // The repeated id was sent once, and its repeat shares the outcome.
    assert_eq!(result.tokens[1].1, result.tokens[0].1);
    assert_eq!(result.batches, 1);
}

#[test]
fn the_audit_record_matches_what_happened() {
    use patreport::revoke::AuditRecord;
    let dir = tempfile::tempdir().unwrap();
    let org = org(20);
    let plan = plan_of(&org, 3);
    let result = revoke::RevokeResult {
        tokens: vec![
            (plan.tokens[0].clone(), Outcome::Revoked),
            (plan.tokens[1].clone(), Outcome::Failed("HTTP 500".into())),
            (plan.tokens[2].clone(), Outcome::NotListed),
        ],
        batches: 1,
    };
    let path = revoke::audit_file(dir.path(), "fabrikam");
    let at = OffsetDateTime::now_utc();
    AuditRecord::intent(&plan, "ada, with --auth pat", Some("plan.json"), at)
        .append(&path)
        .unwrap();
    AuditRecord::outcome(
        &plan,
        &result,
        Mode::Revoke,
        "ada, with --auth pat",
        Some("plan.json"),
        at,
    )
    .append(&path)
    .unwrap();
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["mode"], "intent");
    assert!(
        lines[0]["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["outcome"] == "pending")
    );
    let done = &lines[1];
    assert_eq!(done["mode"], "revoke");
    assert_eq!(done["actor"], "ada, with --auth pat");
    assert_eq!(done["plan_file"], "plan.json");
    let got: Vec<(&str, &str)> = done["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["authorization_id"].as_str().unwrap(),
                t["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    let want: Vec<(&str, &str)> = plan
        .tokens
        .iter()
        .map(|t| t.authorization_id.as_str())
        .zip(["revoked", "failed", "not_listed"])
        .collect();
    assert_eq!(got, want);
    assert_eq!(done["tokens"][1]["detail"], "HTTP 500");
}
