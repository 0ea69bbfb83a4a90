//! The Functions app end to end, driven by the host simulator (`support::host`) exactly as the
//! Functions host drives it: the built `patreport serve`, Azurite for blobs and queues, the
//! simulated Azure DevOps organization, and a fake Entra ID (`auth_support`) that signs the
//! callers' tokens, publishes its keys and exchanges tokens on behalf of callers.
//!
//! The served binary reaches the fake Entra as `https://127.0.0.1:<port>` and trusts its test
//! CA through `PATREPORT_EXTRA_CA_FILE`; the caller settings are the documented ones
//! (`AZURE_TENANT_ID`, `PATREPORT_API_CLIENT_ID`, `PATREPORT_ALLOWED_ROLES`), plus
//! `PATREPORT_CALLER_ISSUERS` because the fake's tokens name its TLS host, not 127.0.0.1.

mod auth_support;
mod support;

use auth_support::{API_APP, API_SECRET, AdoSeen, TENANT, TestCloud, ca_pem};
use base64::Engine;
use calamine::{Reader, Xlsx};
use patreport::simulator::{
    AuthConfig, DEMO_PAT, Gate, OrgSpec, SECRET_MARKER, SimConfig, SimOrg, SimServer,
};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::azurite::Azurite;
use support::host::{FunctionHost, PUBLIC_BASE, sample_settings};
use support::proxy::FaultProxy;

const JOBS: &str = "patreport-jobs";
const ORG: &str = "fabrikam";
/// The app role callers need (`PATREPORT_ALLOWED_ROLES`).
const ROLE: &str = "PatReport.Read";
/// `Caller::describe` of the fake Entra's default caller.
const CALLER: &str = "Casey Caller <casey@contoso.test> (caller-oid)";

struct World {
    host: FunctionHost,
    sim: SimServer,
    azurite: Azurite,
    cloud: TestCloud,
    /// The Azure DevOps tokens the simulated organization accepted.
    seen: Arc<AdoSeen>,
    /// The handler's settings (to start it again).
    settings: BTreeMap<String, String>,
    _ca: tempfile::TempDir,
}

/// A fresh Azurite, the simulated organization `fabrikam` and the handler, configured from
/// local.settings.sample.json with the endpoints replaced. `storage` overrides the
/// connection string the handler gets (Azurite's by default).
async fn world(orgs: &str, storage: Option<String>) -> World {
    world_with(orgs, storage, SimConfig::strict(), &[]).await
}

async fn world_with(
    orgs: &str,
    storage: Option<String>,
    sim_config: SimConfig,
    extra: &[(&str, &str)],
) -> World {
    world_on(Azurite::start(), orgs, storage, sim_config, extra).await
}

/// As [`world_with`], on an Azurite already started. The simulated organization accepts the
/// PATs of `sim_config` (the demo PAT by default) and the Azure DevOps tokens the fake Entra
/// issues; every HTTP call of `host.http` carries a valid caller token with [`ROLE`].
async fn world_on(
    azurite: Azurite,
    orgs: &str,
    storage: Option<String>,
    mut sim_config: SimConfig,
    extra: &[(&str, &str)],
) -> World {
    let cloud = TestCloud::start().await;
    let (validator, seen) = cloud.entra.ado_validator();
    sim_config.auth = sim_config.auth.clone().with_bearer_validator(validator);
    let org = SimOrg::generate(
        ORG,
        &OrgSpec::with_users(40),
        time::OffsetDateTime::now_utc(),
    );
    let sim = SimServer::start(org, sim_config).await.expect("simulator");
    let ca = support::scratch_dir("patreport-ca-");
    let ca_file = ca.path().join("test-ca.pem");
    std::fs::write(&ca_file, ca_pem()).expect("write the test CA");
    let mut settings = sample_settings();
    settings.insert(
        "AzureWebJobsStorage".into(),
        storage.unwrap_or_else(|| azurite.connection_string()),
    );
    settings.insert("PATREPORT_ORGS".into(), orgs.into());
    settings.insert("PATREPORT_ADO_URL".into(), sim.base_url());
    settings.insert("PATREPORT_AUDIT_URL".into(), sim.base_url());
    settings.insert("AZURE_DEVOPS_PAT".into(), DEMO_PAT.into());
    for (k, v) in [
        ("AZURE_AUTHORITY_HOST", cloud.entra.loopback_authority()),
        ("AZURE_TENANT_ID", TENANT.into()),
        ("PATREPORT_API_CLIENT_ID", API_APP.into()),
        ("PATREPORT_CALLER_ISSUERS", cloud.entra.issuer()),
        ("PATREPORT_ALLOWED_ROLES", ROLE.into()),
        (
            "PATREPORT_EXTRA_CA_FILE",
            ca_file.to_string_lossy().into_owned(),
        ),
    ] {
        settings.insert(k.into(), v);
    }
    for (k, v) in extra {
        settings.insert((*k).into(), (*v).into());
    }
    let mut host = FunctionHost::start(&settings, &azurite.queue_endpoint()).await;
    host.set_bearer(cloud.entra.caller_token(json!({ "roles": [ROLE] })));
    World {
        host,
        sim,
        azurite,
        cloud,
        seen,
        settings,
        _ca: ca,
    }
}

/// The PATs a complete report of the simulated org must list: valid ones of people.
fn expected_ids(org: &SimOrg) -> BTreeSet<String> {
    org.human_users()
        .flat_map(|u| u.pats.iter().filter(|p| p.is_valid))
        .map(|p| p.authorization_id.clone())
        .collect()
}

/// Path and query of an absolute URL of the app.
fn local(url: &str) -> String {
    url.strip_prefix(PUBLIC_BASE).unwrap_or(url).to_owned()
}

async fn status(host: &FunctionHost, run_id: &str) -> Value {
    let r = host
        .http("GET", &format!("/api/PatReport/runs/{run_id}"), &[], None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

/// Poll the status URL until the run is final (the worker runs while `run_queues` runs).
async fn poll_until_final(host: &FunctionHost, status_path: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = host
            .http("GET", status_path, &[("x-functions-key", "local")], None)
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.header("cache-control"), Some("no-store"));
        let body = r.json();
        if matches!(body["state"].as_str(), Some("succeeded" | "failed")) {
            return body;
        }
        assert!(Instant::now() < deadline, "run not final in time: {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn workbook_ids(bytes: &[u8]) -> BTreeSet<String> {
    let mut workbook: Xlsx<_> =
        calamine::open_workbook_from_rs(std::io::Cursor::new(bytes.to_vec()))
            .expect("an xlsx workbook");
    let range = workbook.worksheet_range("Tokens").expect("a Tokens sheet");
    let mut rows = range.rows();
    let header = rows.next().expect("a header row");
    let col = header
        .iter()
        .position(|c| matches!(c, calamine::Data::String(s) if s == "Authorization id"))
        .expect("an Authorization id column");
    rows.map(|r| r[col].to_string())
        .filter(|id| !id.is_empty())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_on_demand_report_runs_end_to_end_and_downloads_through_its_link() {
    let w = world(ORG, None).await;
    let host = &w.host;

    let r = host
        .http(
            "POST",
            "/api/PatReport",
            &[
                ("x-functions-key", "local"),
                ("Content-Type", "application/json"),
            ],
            Some(""),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"));
    let accepted = r.json();
    let run_id = accepted["runId"].as_str().expect("runId").to_owned();
    assert_eq!(accepted["state"], "queued");
    assert_eq!(accepted["org"], ORG);
    let status_url = accepted["statusUrl"]
        .as_str()
        .expect("statusUrl")
        .to_owned();
    assert_eq!(r.header("location"), Some(status_url.as_str()));
    assert_eq!(
        status_url,
        format!("{PUBLIC_BASE}/api/PatReport/runs/{run_id}")
    );
    assert_eq!(status(host, &run_id).await["state"], "queued");
    assert!(
        host.logs_of("PatReport")
            .iter()
            .any(|l| l.contains(&run_id)),
        "{:?}",
        host.logs_of("PatReport")
    );

    let run = host.run_queues(Duration::from_secs(120)).await;
    assert_eq!(
        (run.delivered, run.completed, run.poisoned),
        (1, 1, 0),
        "{run:?}"
    );

    let done = poll_until_final(host, &local(&status_url)).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["attempt"], 1);
    assert_eq!(done["requestedBy"], CALLER, "the authenticated caller");
    assert_eq!(done["execution"], "queue");
    assert_eq!(done["auth"], "pat", "the worker's own credential");
    assert!(done["heartbeatAt"].is_string(), "{done}");
    let expected = expected_ids(&w.sim.org());
    assert_eq!(done["summary"]["pats"], expected.len(), "{done}");
    assert_eq!(done["summary"]["complete"], true);
    let download = done["downloadUrl"].as_str().expect("downloadUrl");
    assert!(
        download.contains("sp=r&") && download.contains("sr=b&"),
        "{download}"
    );
    assert!(done["expiresAt"].is_string());
    let xlsx_name = done["files"]["xlsx"]["name"].as_str().unwrap().to_owned();
    assert!(
        xlsx_name.starts_with("patreport-fabrikam-") && xlsx_name.ends_with(".xlsx"),
        "{xlsx_name}"
    );
    assert!(
        download.contains("/fabrikam/20"),
        "dated folder: {download}"
    );

    // The workbook, with nothing but its link.
    let response = reqwest::get(download).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    );
    assert_eq!(
        response.headers()["content-disposition"].to_str().unwrap(),
        format!("attachment; filename=\"{xlsx_name}\"")
    );
    let ids = workbook_ids(&response.bytes().await.unwrap());
    assert_eq!(
        ids, expected,
        "the workbook lists exactly the simulated organization's valid PATs"
    );
    for (format, content_type) in [
        ("csv", "text/csv; charset=utf-8"),
        ("json", "application/json"),
    ] {
        let r = reqwest::get(done["files"][format]["url"].as_str().unwrap())
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{format}");
        assert_eq!(r.headers()["content-type"], content_type);
        assert!(!r.text().await.unwrap().contains(SECRET_MARKER));
    }

    // The newest report without scanning again.
    let latest = host.http("GET", "/api/PatReport/latest", &[], None).await;
    assert_eq!(latest.status, 200, "{}", latest.text());
    let latest = latest.json();
    assert_eq!(latest["runId"], run_id.as_str());
    assert_eq!(latest["summary"]["pats"], expected.len());
    assert_eq!(
        reqwest::get(latest["downloadUrl"].as_str().unwrap())
            .await
            .unwrap()
            .status(),
        200
    );

    assert!(
        host.logs_of("PatReportWorker")
            .iter()
            .any(|l| l.contains("PATs of") && l.contains(&run_id))
    );
    let log = host.log_text();
    assert!(log.contains("patreport custom handler listening"), "{log}");
    for secret in [DEMO_PAT, SECRET_MARKER, "sig=", "AccountKey"] {
        assert!(
            !log.contains(secret),
            "the handler log contains {secret}:\n{log}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_timer_queues_one_run_per_org_and_every_run_ends_with_an_answer() {
    let w = world("fabrikam,ghost", None).await;
    let host = &w.host;
    let firings = [
        json!({ "Schedule": { "AdjustForDST": true }, "ScheduleStatus": null, "IsPastDue": true }),
        json!({ "Schedule": { "AdjustForDST": true },
                "ScheduleStatus": { "Last": "0001-01-01T00:00:00+00:00", "Next": "2026-11-30T06:00:00+00:00", "LastUpdated": "0001-01-01T00:00:00+00:00" },
                "IsPastDue": false }),
        json!({ "Schedule": { "AdjustForDST": true },
                "ScheduleStatus": { "Last": "2026-11-23T06:00:00.0096035+00:00", "Next": "2026-11-30T06:00:00+00:00", "LastUpdated": "2026-11-23T06:00:00.0096035+00:00" },
                "IsPastDue": false }),
    ];
    let mut runs: BTreeMap<String, String> = BTreeMap::new();
    for timer in firings {
        let outputs = host.fire_timer("PatReportTimer", timer).await;
        let jobs = outputs["jobs"].as_array().expect("a jobs array");
        assert_eq!(
            jobs.len(),
            2,
            "one job per configured organization: {outputs:?}"
        );
        for job in jobs {
            let job: Value =
                serde_json::from_str(job.as_str().expect("a message text")).expect("a JSON job");
            assert_eq!(job["source"], "timer");
            runs.insert(
                job["runId"].as_str().unwrap().to_owned(),
                job["org"].as_str().unwrap().to_owned(),
            );
        }
    }
    let logs = host.logs_of("PatReportTimer");
    assert!(
        logs[0].contains("past due")
            && logs[1].contains("first scheduled run")
            && logs[2].contains("on schedule"),
        "{logs:?}"
    );
    assert_eq!(w.host.queues.count(JOBS).await, 6);

    let run = host.run_queues(Duration::from_secs(180)).await;
    assert_eq!(
        (run.delivered, run.completed, run.poisoned),
        (6, 6, 0),
        "{run:?}"
    );
    let mut workbooks = BTreeSet::new();
    for (run_id, org) in &runs {
        let s = status(host, run_id).await;
        assert_eq!(s["source"], "timer");
        if org == "fabrikam" {
            assert_eq!(s["state"], "succeeded", "{s}");
            workbooks.insert(s["files"]["xlsx"]["name"].as_str().unwrap().to_owned());
        } else {
            assert_eq!(s["state"], "failed", "{s}");
            let error = s["error"].as_str().unwrap();
            assert!(
                error.contains("ghost") && error.contains("not found"),
                "a failed run says why: {error}"
            );
            assert_eq!(s["attempt"], 1, "an unknown organization is not retried");
        }
    }
    assert_eq!(
        workbooks.len(),
        3,
        "runs finishing in the same second do not overwrite each other: {workbooks:?}"
    );
    let ghost = host
        .http("GET", "/api/PatReport/latest?org=ghost", &[], None)
        .await;
    assert_eq!(ghost.status, 404);
    assert!(
        ghost.json()["message"]
            .as_str()
            .unwrap()
            .contains("no report")
    );
    let unknown = host
        .http("GET", "/api/PatReport/latest?org=contoso", &[], None)
        .await;
    assert_eq!(unknown.status, 400);
    let ambiguous = host.http("GET", "/api/PatReport/latest", &[], None).await;
    assert_eq!(
        ambiguous.status, 400,
        "two organizations configured: say which"
    );
    assert_eq!(
        host.http("GET", "/api/PatReport/latest?org=FABRIKAM", &[], None)
            .await
            .status,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_clear_json_answers() {
    let w = world(ORG, None).await;
    let host = &w.host;
    let json_type = [("Content-Type", "application/json")];

    let r = host
        .http("POST", "/api/PatReport", &json_type, Some("{\"org\":"))
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let body = r.json();
    assert_eq!(body["error"], "bad_request");
    assert!(
        body["message"].as_str().unwrap().contains("JSON object"),
        "{body}"
    );

    let r = host
        .http(
            "POST",
            "/api/PatReport",
            &json_type,
            Some("{\"organisation\":\"fabrikam\"}"),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(
        r.json()["message"]
            .as_str()
            .unwrap()
            .contains("organisation"),
        "names the unknown field"
    );

    let r = host
        .http("POST", "/api/PatReport?org=contoso", &[], None)
        .await;
    assert_eq!(r.status, 400);
    assert!(
        r.json()["message"].as_str().unwrap().contains("fabrikam"),
        "lists the configured organizations"
    );

    let r = host
        .http(
            "POST",
            "/api/PatReport?org=fabrikam",
            &json_type,
            Some("{\"org\":\"contoso\"}"),
        )
        .await;
    assert_eq!(r.status, 400);

    let r = host
        .http(
            "GET",
            "/api/PatReport/runs/20261124-090503-0123456789abcdef",
            &[],
            None,
        )
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"], "not_found");
    let r = host
        .http("GET", "/api/PatReport/runs/..%2F..%2Fhost.json", &[], None)
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(r.header("content-type"), Some("application/json"));

    // Routes no function has: the host itself says 404; the handler's own answer to an
    // unknown path (should one ever reach it) is a JSON 404 too.
    assert_eq!(
        host.http("GET", "/api/PatReport/nothing", &[], None)
            .await
            .status,
        404
    );
    assert_eq!(
        host.http("GET", "/api/PatReport", &[], None).await.status,
        404
    );
    let direct = reqwest::get(host.handler_url("/api/PatReport/nothing"))
        .await
        .unwrap();
    assert_eq!(direct.status(), 404);
    assert_eq!(direct.headers()["content-type"], "application/json");
    let body: Value = direct.json().await.unwrap();
    assert!(
        body["message"].as_str().unwrap().contains("no route"),
        "{body}"
    );

    // A queue message that is not a job is dropped, not retried into the poison queue.
    let garbage = base64::engine::general_purpose::STANDARD.encode("this is not a job");
    host.queues.put(JOBS, &garbage).await;
    let run = host.run_queues(Duration::from_secs(30)).await;
    assert_eq!(
        (run.delivered, run.completed, run.poisoned),
        (1, 1, 0),
        "{run:?}"
    );
    assert!(
        host.logs_of("PatReportWorker")
            .iter()
            .any(|l| l.contains("not retried"))
    );

    // Nothing above leaked a stack trace.
    for invocation in host.invocations.lock().unwrap().iter() {
        assert!(!format!("{:?}", invocation.outputs).contains("panicked"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_that_does_not_answer_gives_503_and_nothing_is_queued() {
    let dead = format!(
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={};BlobEndpoint=http://127.0.0.1:{}/devstoreaccount1;",
        patreport::storage::connection::DEV_ACCOUNT_KEY,
        support::REFUSING_PORT
    );
    let started = Instant::now();
    let w = world(ORG, Some(dead)).await;
    let host = &w.host;
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "ready although storage is down"
    );

    let r = host.http("POST", "/api/PatReport", &[], None).await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.header("retry-after"), Some("30"));
    let body = r.json();
    assert_eq!(body["error"], "storage_unavailable");
    assert!(
        body["message"].as_str().unwrap().contains("unreachable"),
        "{body}"
    );
    assert!(!r.text().contains("AccountKey") && !r.text().contains("sig="));
    let invocation = host.invocations.lock().unwrap().last().cloned().unwrap();
    assert!(
        !invocation.outputs.contains_key("job"),
        "no job without a recorded run"
    );
    assert_eq!(host.queues.count(JOBS).await, 0);

    for path in [
        "/api/PatReport/runs/20261124-090503-0123456789abcdef",
        "/api/PatReport/latest",
    ] {
        let r = host.http("GET", path, &[], None).await;
        assert_eq!(r.status, 503, "{path}: {}", r.text());
        assert_eq!(r.json()["error"], "storage_unavailable");
    }
    drop(w.azurite);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_upload_keeps_failing_is_retried_then_marked_failed() {
    let azurite = Azurite::start();
    let proxy = FaultProxy::start(&format!("http://127.0.0.1:{}", azurite.blob_port)).await;
    proxy.fail_when(|method, path| {
        (method == axum::http::Method::PUT && path.ends_with(".xlsx"))
            .then_some(axum::http::StatusCode::SERVICE_UNAVAILABLE)
    });
    let storage = azurite
        .connection_string_with_blob(&format!("http://127.0.0.1:{}/devstoreaccount1", proxy.port));
    let w = world_on(azurite, ORG, Some(storage), SimConfig::strict(), &[]).await;
    let host = &w.host;

    let accepted = host.http("POST", "/api/PatReport", &[], None).await;
    assert_eq!(accepted.status, 202, "{}", accepted.text());
    let run_id = accepted.json()["runId"].as_str().unwrap().to_owned();
    let run = host.run_queues(Duration::from_secs(180)).await;
    assert_eq!(
        (run.delivered, run.failed, run.completed, run.poisoned),
        (3, 2, 1, 0),
        "{run:?}"
    );
    let s = status(host, &run_id).await;
    assert_eq!(s["state"], "failed", "{s}");
    assert_eq!(s["attempt"], 3);
    let error = s["error"].as_str().unwrap();
    assert!(
        error.contains("upload") && error.contains("gave up after 3 attempts"),
        "{error}"
    );
    assert!(!error.contains("sig="), "{error}");
    assert!(s.get("downloadUrl").is_none());
    assert!(!proxy.failed().is_empty());
    assert_eq!(
        host.queues.count("patreport-jobs-poison").await,
        0,
        "a known failure does not go to the poison queue"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_reaches_the_poison_queue_marks_its_run_failed() {
    let w = world(ORG, None).await;
    let host = &w.host;
    let accepted = host.http("POST", "/api/PatReport", &[], None).await;
    assert_eq!(accepted.status, 202);
    let run_id = accepted.json()["runId"].as_str().unwrap().to_owned();
    // As if the worker had crashed on every delivery: the host moves the message on.
    let message = host.queues.get(JOBS, 30).await.expect("the queued job");
    host.queues
        .put("patreport-jobs-poison", &message.text)
        .await;
    host.queues.delete(JOBS, &message).await;

    let run = host.run_queues(Duration::from_secs(30)).await;
    assert_eq!((run.delivered, run.completed), (1, 1), "{run:?}");
    let s = status(host, &run_id).await;
    assert_eq!(s["state"], "failed");
    assert!(
        s["error"].as_str().unwrap().contains("without an answer"),
        "{s}"
    );
    assert!(
        host.logs_of("PatReportPoison")
            .iter()
            .any(|l| l.contains(&run_id))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_scan_reports_its_progress_in_the_status() {
    // The simulated organization answers Token Admin only as far as the test lets it (a
    // gate), so the scan is observed part-way whatever the machine's speed.
    let gate = Gate::closed();
    let mut sim = SimConfig::strict();
    sim.gate = Some(gate.clone());
    let w = world_with(ORG, None, sim, &[("PATREPORT_CONCURRENCY", "2")]).await;
    let host = &w.host;
    let accepted = host.http("POST", "/api/PatReport", &[], None).await;
    let run_id = accepted.json()["runId"].as_str().unwrap().to_owned();
    let status_path = format!("/api/PatReport/runs/{run_id}");

    let mut seen: Vec<(String, u64)> = Vec::new();
    let watch = async {
        // Poll until `done` holds for the status; record every distinct (state, scanned).
        let until = async |seen: &mut Vec<(String, u64)>, done: &dyn Fn(&str, u64) -> bool| {
            let deadline = Instant::now() + Duration::from_secs(90);
            loop {
                let s = host.http("GET", &status_path, &[], None).await.json();
                let state = s["state"].as_str().unwrap_or("").to_owned();
                let scanned = s["progress"]["usersScanned"].as_u64().unwrap_or(0);
                if seen.last() != Some(&(state.clone(), scanned)) {
                    seen.push((state.clone(), scanned));
                }
                if done(&state, scanned) {
                    return scanned;
                }
                assert!(
                    Instant::now() < deadline,
                    "the run never got there: {seen:?}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        until(&mut seen, &|state, _| state == "running").await;
        gate.let_through(5);
        let first = until(&mut seen, &|_, scanned| scanned > 0).await;
        gate.let_through(10);
        until(&mut seen, &|_, scanned| scanned > first).await;
        gate.open();
        until(&mut seen, &|state, _| {
            state == "succeeded" || state == "failed"
        })
        .await;
    };
    let (run, ()) = tokio::join!(host.run_queues(Duration::from_secs(120)), watch);
    assert_eq!(run.completed, 1, "{run:?}");
    let partial = seen
        .iter()
        .filter(|(state, n)| state == "running" && *n > 0 && *n < 40)
        .count();
    assert!(
        partial >= 2,
        "progress was reported while scanning: {seen:?}"
    );
    let counts: Vec<u64> = seen.iter().map(|(_, n)| *n).collect();
    assert!(
        counts.windows(2).all(|p| p[0] <= p[1]),
        "progress only grows: {seen:?}"
    );
    let done = status(host, &run_id).await;
    assert_eq!(done["state"], "succeeded");
    assert_eq!(done["progress"]["usersScanned"], 40);
    assert_eq!(
        done["progress"]["patsFound"],
        done["summary"]["pats"].as_u64().unwrap() + done["summary"]["invalid"].as_u64().unwrap()
    );
}

/// A status document of another process, written straight into the report container.
async fn put_status(azurite: &Azurite, status: &patreport::lifecycle::RunStatus) {
    use patreport::storage::{BlobStore, RunStore, StorageAccess, StoreOptions};
    let account =
        patreport::storage::connection::parse_connection_string(&azurite.connection_string())
            .expect("connection string");
    let store = BlobStore::new(&StorageAccess::Key(account), StoreOptions::new("reports"))
        .expect("blob store");
    RunStore::new(store)
        .save_status(status)
        .await
        .expect("save the status");
}

/// The caller is checked before anything else, by every HTTP function, the way the host
/// calls each one (the POST as a JSON invocation, the GETs forwarded).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_http_function_refuses_callers_without_a_valid_token_or_the_role() {
    let w = world("fabrikam,contoso", None).await;
    let host = &w.host;
    let entra = &w.cloud.entra;
    let now = auth_support::now();
    let wrong_audience = entra.caller_token(json!({ "roles": [ROLE], "aud": "api://another-app" }));
    let expired = entra.caller_token(
        json!({ "roles": [ROLE], "iat": now - 7200, "nbf": now - 7200, "exp": now - 3600 }),
    );
    let forged = auth_support::attacker_key().sign_as(
        &entra.active_kid(),
        &json!({ "aud": API_APP, "iss": entra.issuer(), "oid": "x", "roles": [ROLE], "exp": now + 600 }),
    );
    let no_role = entra
        .caller_token(json!({ "roles": ["Other.Role"], "oid": "nora-oid", "name": "Nora Norole" }));
    let requests = [
        ("POST", "/api/PatReport?org=contoso"),
        (
            "GET",
            "/api/PatReport/runs/20261124-090503-0123456789abcdef",
        ),
        ("GET", "/api/PatReport/latest?org=contoso"),
        ("GET", "/api/PatReport/view?org=contoso"),
        (
            "GET",
            "/api/PatReport/runs/20261124-090503-0123456789abcdef/view",
        ),
        ("GET", "/api/PatReport/runs"),
        ("GET", "/api/PatReport/ui"),
    ];
    let mut tokens = vec![wrong_audience.clone(), expired.clone(), forged.clone()];
    for (method, path) in requests {
        for (token, why) in [
            (None, "no access token"),
            (Some("not-a-jwt"), "not a JWT"),
            (Some(wrong_audience.as_str()), "another audience"),
            (Some(expired.as_str()), "expired"),
            (Some(forged.as_str()), "bad signature"),
        ] {
            let r = host.http_as(token, method, path, &[], None).await;
            assert_eq!(r.status, 401, "{method} {path} ({why}): {}", r.text());
            assert_eq!(r.header("content-type"), Some("application/json"));
            assert!(
                r.header("www-authenticate")
                    .is_some_and(|v| v.starts_with("Bearer ")),
                "{method} {path}: {:?}",
                r.headers
            );
            let body = r.json();
            assert_eq!(body["error"], "unauthorized");
            let message = body["message"].as_str().unwrap();
            assert!(message.contains(why), "{method} {path}: {message}");
            assert!(
                !r.text().contains("fabrikam"),
                "nothing about the app before the caller is known: {}",
                r.text()
            );
        }
        let r = host.http_as(Some(&no_role), method, path, &[], None).await;
        assert_eq!(r.status, 403, "{method} {path}: {}", r.text());
        assert!(r.header("www-authenticate").is_none());
        let body = r.json();
        assert_eq!(body["error"], "forbidden");
        let message = body["message"].as_str().unwrap();
        assert!(
            message.contains("Nora Norole") && message.contains(ROLE),
            "names who and what is missing: {message}"
        );
    }
    tokens.push(no_role);
    let refusals = host
        .invocations
        .lock()
        .unwrap()
        .iter()
        .filter(|i| i.function == "PatReport")
        .map(|i| i.outputs.contains_key("job"))
        .collect::<Vec<_>>();
    assert_eq!(
        refusals,
        vec![false; 6],
        "nothing queued for a refused caller"
    );
    assert_eq!(host.queues.count(JOBS).await, 0);

    // An allowed caller is recorded as authenticated, whatever headers it adds.
    let r = host
        .http(
            "POST",
            "/api/PatReport?org=contoso",
            &[("X-MS-CLIENT-PRINCIPAL-NAME", "mallory@evil.test")],
            None,
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let accepted = r.json();
    assert_eq!(accepted["requestedBy"], CALLER);
    assert_eq!(accepted["execution"], "queue");
    let s = status(host, accepted["runId"].as_str().unwrap()).await;
    assert_eq!(s["requestedBy"], CALLER, "{s}");
    assert!(!s.to_string().contains("mallory"));
    assert_eq!(host.queues.count(JOBS).await, 1);
    let job: Value = serde_json::from_str(&support::queue::decode_base64_text(
        &host.queues.peek_texts(JOBS).await[0],
    ))
    .expect("a JSON job");
    assert_eq!(job["requestedBy"], CALLER);

    let log = host.log_text();
    assert!(log.contains("caller refused"), "{log}");
    for token in &tokens {
        assert!(
            !log.contains(token.as_str()),
            "a caller token is in the log"
        );
        assert!(!r.text().contains(token.as_str()));
    }
}

/// `PATREPORT_HTTP_RUNS=on-behalf-of`: the request exchanges the caller's token, the scan runs
/// in the handler with the caller's own Azure DevOps token (the simulated org accepts no PAT
/// here), nothing goes through the queue, and refusals of the exchange answer the request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_on_behalf_of_request_scans_in_the_handler_with_the_callers_rights() {
    let mut sim = SimConfig::strict();
    sim.auth = AuthConfig::accepting(&[], &[]);
    sim.faults.latency = Duration::from_millis(40);
    let mut w = world_with(
        ORG,
        None,
        sim,
        &[
            ("PATREPORT_HTTP_RUNS", "on-behalf-of"),
            ("PATREPORT_API_CLIENT_SECRET", API_SECRET),
            ("PATREPORT_CONCURRENCY", "2"),
        ],
    )
    .await;
    let caller_token = w.cloud.entra.caller_token(json!({ "roles": [ROLE] }));
    w.host.set_bearer(caller_token.clone());
    let host = &w.host;

    let r = host.http("POST", "/api/PatReport", &[], None).await;
    assert_eq!(r.status, 202, "{}", r.text());
    let accepted = r.json();
    assert_eq!(accepted["execution"], "in-process");
    assert_eq!(accepted["requestedBy"], CALLER);
    let run_id = accepted["runId"].as_str().unwrap().to_owned();
    let invocation = host.invocations.lock().unwrap().last().cloned().unwrap();
    assert!(
        !invocation.outputs.contains_key("job"),
        "an on-behalf-of run is not queued: {:?}",
        invocation.outputs
    );
    assert!(
        invocation
            .logs
            .iter()
            .any(|l| l.contains("in this process")),
        "{:?}",
        invocation.logs
    );

    let done = poll_until_final(host, &format!("/api/PatReport/runs/{run_id}")).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["auth"], "on-behalf-of");
    assert_eq!(done["execution"], "in-process");
    assert_eq!(done["requestedBy"], CALLER);
    assert!(done["heartbeatAt"].is_string(), "{done}");
    assert_eq!(
        w.seen.oids(),
        vec!["caller-oid".to_owned()],
        "Azure DevOps saw the caller, and only the caller"
    );
    assert!(
        w.cloud
            .entra
            .grants()
            .contains(&"urn:ietf:params:oauth:grant-type:jwt-bearer".to_owned())
    );
    let expected = expected_ids(&w.sim.org());
    let workbook = reqwest::get(done["downloadUrl"].as_str().expect("downloadUrl"))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(workbook_ids(&workbook), expected);
    let latest = host.http("GET", "/api/PatReport/latest", &[], None).await;
    assert_eq!(latest.json()["runId"], run_id.as_str());
    assert_eq!(host.queues.count(JOBS).await, 0);
    assert_eq!(host.queues.count("patreport-jobs-poison").await, 0);

    // A caller who has not consented gets the reason from the POST; nothing is recorded.
    w.cloud.entra.withhold_consent("dana-oid");
    let dana = w.cloud.entra.caller_token(
        json!({ "roles": [ROLE], "oid": "dana-oid", "name": "Dana", "preferred_username": "dana@contoso.test" }),
    );
    let r = host
        .http_as(Some(&dana), "POST", "/api/PatReport", &[], None)
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    let body = r.json();
    assert_eq!(body["error"], "forbidden");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("AADSTS65001") && message.contains("user_impersonation"),
        "says which permission to grant: {message}"
    );
    assert!(body.get("runId").is_none());
    assert!(!r.text().contains(&dana));

    // Shutting down ends an in-process run; it is marked failed, saying so, not left running.
    let r = host.http("POST", "/api/PatReport", &[], None).await;
    assert_eq!(r.status, 202, "{}", r.text());
    let second = r.json()["runId"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = status(host, &second).await;
        if s["state"] == "running" {
            break;
        }
        assert_ne!(
            s["state"], "succeeded",
            "the run ended before the test stopped it"
        );
        assert!(Instant::now() < deadline, "the run did not start: {s}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let exit = w.host.terminate(Duration::from_secs(15)).await;
    assert!(exit.is_some(), "the handler stops on SIGTERM");
    let log = w.host.log_text();
    assert!(log.contains("in-process run marked failed"), "{log}");
    w.host = FunctionHost::start(&w.settings, &w.azurite.queue_endpoint()).await;
    w.host.set_bearer(caller_token.clone());
    let s = status(&w.host, &second).await;
    assert_eq!(s["state"], "failed", "{s}");
    assert!(
        s["error"]
            .as_str()
            .unwrap()
            .contains("ask for a new report"),
        "{s}"
    );

    // No token of any kind reached a log, a status or a queue.
    let mut secrets: Vec<String> = w.seen.tokens.lock().unwrap().iter().cloned().collect();
    assert!(!secrets.is_empty());
    secrets.extend([caller_token, dana, API_SECRET.to_owned()]);
    let texts = [
        log,
        w.host.log_text(),
        done.to_string(),
        s.to_string(),
        format!("{:?}", w.host.invocations.lock().unwrap()),
    ];
    for text in &texts {
        for secret in &secrets {
            assert!(!text.contains(secret.as_str()), "a token leaked: {text}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_process_stopped_answering_is_reported_as_stalled() {
    use patreport::domain::{OrgName, RunId};
    use patreport::lifecycle::{Execution, RunProgress, RunSource, RunStatus};
    let w = world(ORG, None).await;
    let now = time::OffsetDateTime::now_utc();
    let run = |suffix: &str, execution: Execution, heartbeat_minutes_ago: i64| {
        let id = RunId::parse(&format!("20261124-090503-00000000000000{suffix}")).unwrap();
        let mut s = RunStatus::queued(
            id,
            OrgName::parse(ORG).unwrap(),
            RunSource::Http,
            Some(CALLER.into()),
            execution,
            now - time::Duration::minutes(30),
        );
        s.start(1, "pat", now - time::Duration::minutes(29))
            .unwrap();
        s.record_progress(
            RunProgress::default(),
            now - time::Duration::minutes(heartbeat_minutes_ago),
        )
        .unwrap();
        s
    };
    let in_process = run("a1", Execution::InProcess, 10);
    let queued = run("b2", Execution::Queue, 10);
    let alive = run("c3", Execution::InProcess, 0);
    for s in [&in_process, &queued, &alive] {
        put_status(&w.azurite, s).await;
    }
    let s = status(&w.host, in_process.run_id.as_str()).await;
    assert_eq!(s["state"], "stalled", "{s}");
    assert_eq!(s["recordedState"], "running");
    let message = s["message"].as_str().unwrap();
    assert!(
        message.contains("not retried") && message.contains("ask for a new report"),
        "{message}"
    );
    let s = status(&w.host, queued.run_id.as_str()).await;
    assert_eq!(s["state"], "stalled", "{s}");
    assert!(
        s["message"]
            .as_str()
            .unwrap()
            .contains("delivers the job again"),
        "{s}"
    );
    let s = status(&w.host, alive.run_id.as_str()).await;
    assert_eq!(s["state"], "running", "{s}");
    assert!(s.get("message").is_none());
}

/// The handler as the host starts it, expected to stop at once: its exit status and output.
fn start_failing(settings: &BTreeMap<String, String>) -> (std::process::ExitStatus, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_patreport"))
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(settings)
        .env("FUNCTIONS_CUSTOMHANDLER_PORT", "0")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run patreport serve");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status, text)
}

#[test]
fn on_behalf_of_is_refused_as_the_credential_of_scheduled_runs() {
    let mut settings = sample_settings();
    settings.insert("PATREPORT_ORGS".into(), ORG.into());
    settings.insert("PATREPORT_AUTH".into(), "on-behalf-of".into());
    let (exit, text) = start_failing(&settings);
    assert!(!exit.success());
    assert!(
        text.contains("PATREPORT_AUTH") && text.contains("PATREPORT_HTTP_RUNS=on-behalf-of"),
        "{text}"
    );
    // On-behalf-of HTTP runs need the API app: said at start-up, not at the first request.
    settings.insert("PATREPORT_AUTH".into(), "pat".into());
    settings.insert("PATREPORT_HTTP_RUNS".into(), "on-behalf-of".into());
    settings.insert("AZURE_TENANT_ID".into(), TENANT.into());
    let (exit, text) = start_failing(&settings);
    assert!(!exit.success());
    assert!(
        text.contains("PATREPORT_HTTP_RUNS") && text.contains("PATREPORT_API_CLIENT_ID"),
        "{text}"
    );
}

/// The report as a page in the browser: served from storage behind the caller check, with
/// the page's own Content-Security-Policy as a header and nothing cached or sniffed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_run_is_served_as_a_page_with_a_strict_policy() {
    let w = world(ORG, None).await;
    let host = &w.host;
    let accepted = host.http("POST", "/api/PatReport", &[], None).await;
    let run_id = accepted.json()["runId"].as_str().unwrap().to_owned();
    let run = host.run_queues(Duration::from_secs(120)).await;
    assert_eq!(run.completed, 1, "{run:?}");
    let done = status(host, &run_id).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    let view = done["viewUrl"].as_str().expect("the status names the page");
    assert_eq!(view, format!("/api/PatReport/runs/{run_id}/view"));
    let latest = host
        .http("GET", "/api/PatReport/latest", &[], None)
        .await
        .json();
    assert_eq!(latest["viewUrl"], format!("/api/PatReport/view?org={ORG}"));

    for path in [view.to_owned(), "/api/PatReport/view".to_owned()] {
        let r = host.http("GET", &path, &[], None).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
        assert_eq!(
            r.header("content-security-policy").map(str::to_owned),
            Some(format!(
                "{}; frame-ancestors 'none'",
                patreport::report::html::content_security_policy()
            ))
        );
        assert_eq!(r.header("x-frame-options"), Some("DENY"));
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(r.header("cache-control"), Some("no-store"));
        assert_eq!(r.header("referrer-policy"), Some("no-referrer"));
        let page = r.text();
        assert!(page.contains("<html") && page.contains("Content-Security-Policy"));
        assert!(!page.contains(SECRET_MARKER), "no token value in the page");
        // Every PAT of the organization is in the page's data.
        for id in expected_ids(&w.sim.org()).iter().take(5) {
            assert!(page.contains(id.as_str()), "{id} missing from the page");
        }
    }
    // The start page: the configured organizations, under its own strict policy.
    let r = host.http("GET", "/api/PatReport/ui", &[], None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(
        r.header("content-security-policy").map(str::to_owned),
        Some(patreport::functions::ui::policy())
    );
    assert_eq!(r.header("x-frame-options"), Some("DENY"));
    assert!(r.text().contains(&format!(r#"{{"orgs":["{ORG}"]}}"#)));
    // The recent runs list this one, finished, with its page and without signed links.
    let r = host.http("GET", "/api/PatReport/runs", &[], None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let list = r.json();
    let runs = list["runs"].as_array().expect("a list of runs");
    assert_eq!(runs.len(), 1, "{list}");
    assert_eq!(runs[0]["runId"], run_id.as_str());
    assert_eq!(runs[0]["state"], "succeeded");
    assert_eq!(runs[0]["viewUrl"], view);
    assert!(runs[0].get("downloadUrl").is_none(), "{list}");

    // A run that is not finished has no page yet.
    let r = host
        .http(
            "GET",
            "/api/PatReport/runs/20261124-090503-0123456789abcdef/view",
            &[],
            None,
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_runs_notify_record_what_became_of_each_webhook_and_compare_with_the_last() {
    let receiver = support::webhook::Receiver::start().await;
    let hooks = format!(
        "json:{url}/hook-secret-sig, slack:{url}/refuse",
        url = receiver.url
    );
    let w = world_with(
        "fabrikam",
        None,
        SimConfig::strict(),
        &[("PATREPORT_NOTIFY", &hooks)],
    )
    .await;
    let host = &w.host;
    let timer =
        json!({ "Schedule": { "AdjustForDST": true }, "ScheduleStatus": null, "IsPastDue": false });
    let mut statuses = Vec::new();
    for _ in 0..2 {
        let outputs = host.fire_timer("PatReportTimer", timer.clone()).await;
        let job: Value = serde_json::from_str(outputs["jobs"][0].as_str().unwrap()).unwrap();
        let run = host.run_queues(Duration::from_secs(120)).await;
        assert_eq!((run.completed, run.poisoned), (1, 0), "{run:?}");
        statuses.push(status(host, job["runId"].as_str().unwrap()).await);
    }

    // First run: told, nothing to compare with.
    let first = &statuses[0];
    assert_eq!(first["state"], "succeeded", "{first}");
    let told = first["notifications"].as_array().expect("notifications");
    assert_eq!(told.len(), 2, "{first}");
    assert_eq!(told[0]["delivered"], true);
    assert_eq!(told[0]["flavor"], "generic");
    assert_eq!(
        (
            &told[1]["delivered"],
            &told[1]["last_status"],
            &told[1]["attempts"]
        ),
        (&json!(false), &json!(400), &json!(1))
    );
    assert_eq!(first["summary"]["changes"], Value::Null);
    assert!(first["summary"]["findings"]["tokens"].as_u64().unwrap() > 0);

    // The message is the report's, with a read-only link to its page.
    let bodies: Vec<Value> = receiver
        .seen()
        .into_iter()
        .filter(|(p, _)| p == "/hook-secret-sig")
        .map(|(_, b)| b)
        .collect();
    assert_eq!(bodies.len(), 2, "one message per scheduled run");
    let message = &bodies[0];
    assert_eq!(message["schema"], "patreport.notice/1");
    assert_eq!(message["org"], "fabrikam");
    assert_eq!(message["headline"]["pats"], first["summary"]["pats"]);
    let link = message["link"].as_str().expect("a link");
    assert!(link.contains(".html?") && link.contains("sp=r"), "{link}");

    // Second run: compared with the report latest.json pointed to; the org did not change.
    let second = &statuses[1];
    assert_eq!(
        second["summary"]["changes"],
        json!({ "new_pats": 0, "gone_pats": 0, "changed_pats": 0, "new_holders": 0, "holders_gone": 0, "not_compared": 0 }),
        "{second}"
    );
    assert_eq!(bodies[1]["changes"]["new_pats"], 0);
    // Scheduled runs refresh from the audit log: the first had no state (its own run wrote
    // {org}/state.json), the second refreshed from it.
    assert_eq!(first["summary"]["refresh"]["mode"], "full", "{first}");
    assert!(
        first["summary"]["refresh"]["reason"]
            .as_str()
            .unwrap_or("")
            .contains("no earlier state"),
        "{first}"
    );
    assert_eq!(
        second["summary"]["refresh"]["mode"], "incremental",
        "{second}"
    );
    let worker = host.logs_of("PatReportWorker").join("\n");
    for log in [host.log_text(), worker.clone()] {
        assert!(
            !log.contains("hook-secret-sig"),
            "a webhook URL reached a log"
        );
    }
    assert!(
        worker.contains("slack webhook at 127.0.0.1 was not notified"),
        "the refused webhook is in the run's log: {worker}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_revoke_endpoint_is_absent_without_revoke_roles() {
    let w = world(ORG, None).await;
    let r = w
        .host
        .http(
            "POST",
            "/api/PatReport/revoke",
            &[],
            Some("{\"ids\":[\"x\"]}"),
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.text());
    assert!(w.sim.revocations().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_over_http_needs_the_revoke_role_a_plan_and_its_confirmation() {
    const REVOKER: &str = "PatReport.Revoke";
    let mut w = world_with(
        ORG,
        None,
        SimConfig::strict(),
        &[("PATREPORT_REVOKE_ROLES", REVOKER)],
    )
    .await;
    // A report to choose from.
    let r = w.host.http("POST", "/api/PatReport", &[], None).await;
    assert_eq!(r.status, 202, "{}", r.text());
    let run = w.host.run_queues(Duration::from_secs(120)).await;
    assert_eq!(run.completed, 1, "{run:?}");
    let json_type = [("Content-Type", "application/json")];
    let ask = "{\"full_access\": true}";

    // A reader without the revoke role is refused.
    let r = w
        .host
        .http("POST", "/api/PatReport/revoke", &json_type, Some(ask))
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains(REVOKER));

    // With it: the plan, checked, and a confirmation. Nothing revoked yet.
    w.host.set_bearer(
        w.cloud
            .entra
            .caller_token(json!({ "roles": [ROLE, REVOKER] })),
    );
    let r = w
        .host
        .http("POST", "/api/PatReport/revoke", &json_type, Some(ask))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let plan = r.json();
    let planned = plan["tokens"].as_array().unwrap().len();
    assert!(planned > 0, "{plan}");
    assert!(
        plan["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["outcome"] == "would_revoke")
    );
    assert!(w.sim.revocations().is_empty(), "a plan revokes nothing");
    let confirmation = plan["confirmation"].as_str().unwrap().to_owned();
    let confirm = format!("{{\"confirm\": \"{confirmation}\"}}");

    // Another revoker cannot use this caller's confirmation.
    w.host.set_bearer(
        w.cloud
            .entra
            .caller_token(json!({ "roles": [ROLE, REVOKER], "oid": "someone-else" })),
    );
    let r = w
        .host
        .http("POST", "/api/PatReport/revoke", &json_type, Some(&confirm))
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(w.sim.revocations().is_empty());

    // The caller who asked: revoked, once.
    w.host.set_bearer(
        w.cloud
            .entra
            .caller_token(json!({ "roles": [ROLE, REVOKER] })),
    );
    let r = w
        .host
        .http("POST", "/api/PatReport/revoke", &json_type, Some(&confirm))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let done = r.json();
    assert_eq!(done["complete"], true, "{done}");
    assert_eq!(done["counts"]["revoked"], planned);
    let sent: usize = w.sim.revocations().iter().map(Vec::len).sum();
    assert_eq!(sent, planned);
    let r = w
        .host
        .http("POST", "/api/PatReport/revoke", &json_type, Some(&confirm))
        .await;
    assert_eq!(r.status, 409, "a confirmation works once: {}", r.text());
    assert_eq!(
        w.sim.revocations().iter().map(Vec::len).sum::<usize>(),
        planned
    );
}
