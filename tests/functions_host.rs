//! The Functions app end to end, driven by the host simulator (`support::host`) exactly as the
//! Functions host drives it: the built `patreport serve`, Azurite for blobs and queues, and the
//! simulated Azure DevOps organization.

mod support;

use base64::Engine;
use calamine::{Reader, Xlsx};
use patreport::simulator::{DEMO_PAT, OrgSpec, SECRET_MARKER, SimConfig, SimOrg, SimServer};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};
use support::azurite::Azurite;
use support::host::{FunctionHost, PUBLIC_BASE, sample_settings};
use support::proxy::FaultProxy;

const JOBS: &str = "patreport-jobs";
const ORG: &str = "fabrikam";

struct World {
    host: FunctionHost,
    sim: SimServer,
    azurite: Azurite,
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
    let azurite = Azurite::start();
    let org = SimOrg::generate(
        ORG,
        &OrgSpec::with_users(40),
        time::OffsetDateTime::now_utc(),
    );
    let sim = SimServer::start(org, sim_config).await.expect("simulator");
    let mut settings = sample_settings();
    for (k, v) in extra {
        settings.insert((*k).into(), (*v).into());
    }
    settings.insert(
        "AzureWebJobsStorage".into(),
        storage.unwrap_or_else(|| azurite.connection_string()),
    );
    settings.insert("PATREPORT_ORGS".into(), orgs.into());
    settings.insert("PATREPORT_ADO_URL".into(), sim.base_url());
    settings.insert("AZURE_DEVOPS_PAT".into(), DEMO_PAT.into());
    let host = FunctionHost::start(&settings, &azurite.queue_endpoint()).await;
    World { host, sim, azurite }
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
    let expected = expected_ids(w.sim.org());
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
        support::free_port()
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
    let org = SimOrg::generate(
        ORG,
        &OrgSpec::with_users(20),
        time::OffsetDateTime::now_utc(),
    );
    let sim = SimServer::start(org, SimConfig::strict()).await.unwrap();
    let mut settings = sample_settings();
    settings.insert("AzureWebJobsStorage".into(), storage);
    settings.insert("PATREPORT_ORGS".into(), ORG.into());
    settings.insert("PATREPORT_ADO_URL".into(), sim.base_url());
    settings.insert("AZURE_DEVOPS_PAT".into(), DEMO_PAT.into());
    let host = FunctionHost::start(&settings, &azurite.queue_endpoint()).await;

    let accepted = host.http("POST", "/api/PatReport", &[], None).await;
    assert_eq!(accepted.status, 202, "{}", accepted.text());
    let run_id = accepted.json()["runId"].as_str().unwrap().to_owned();
    let run = host.run_queues(Duration::from_secs(180)).await;
    assert_eq!(
        (run.delivered, run.failed, run.completed, run.poisoned),
        (3, 2, 1, 0),
        "{run:?}"
    );
    let s = status(&host, &run_id).await;
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
    // A slow organization (100 ms a request, two listings at a time) takes a few seconds.
    let mut sim = SimConfig::strict();
    sim.faults.latency = Duration::from_millis(100);
    let w = world_with(ORG, None, sim, &[("PATREPORT_CONCURRENCY", "2")]).await;
    let host = &w.host;
    let accepted = host.http("POST", "/api/PatReport", &[], None).await;
    let run_id = accepted.json()["runId"].as_str().unwrap().to_owned();
    let status_path = format!("/api/PatReport/runs/{run_id}");

    let mut seen: Vec<(String, u64)> = Vec::new();
    let watch = async {
        loop {
            let s = host.http("GET", &status_path, &[], None).await.json();
            let state = s["state"].as_str().unwrap_or("").to_owned();
            let scanned = s["progress"]["usersScanned"].as_u64().unwrap_or(0);
            if seen.last() != Some(&(state.clone(), scanned)) {
                seen.push((state.clone(), scanned));
            }
            if state == "succeeded" || state == "failed" {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
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
