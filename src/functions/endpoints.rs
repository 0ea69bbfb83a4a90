//! The PatReport HTTP endpoints:
//! * `POST /api/PatReport[?org=]` — record a `queued` run and hand its job to the queue; 202
//!   with `Location:` the status URL;
//! * `GET /api/PatReport/runs/{id}` — the run's status, with fresh download links once it
//!   has succeeded;
//! * `GET /api/PatReport/latest[?org=]` — fresh links to the organization's newest report,
//!   without scanning.
//!
//! The functions here decide the answer; `router` delivers it in the form the host expects.

use super::job::{JobMessage, is_run_id, new_run_id};
use super::protocol::HttpRequestData;
use super::reply::ApiReply;
use super::state::AppState;
use crate::storage::{
    ReportFiles, RunSource, RunState, RunStatus, RunStore, SignedLink, StorageError,
};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Where the status of a run is served (relative to the app's base URL).
pub fn status_path(run_id: &str) -> String {
    format!("/api/PatReport/runs/{run_id}")
}

/// A running run that has not written its status for this long has probably lost its worker
/// (the worker writes at least every 30 seconds while it scans).
const STALE_AFTER: time::Duration = time::Duration::minutes(5);

/// The optional JSON body of `POST /api/PatReport`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StartBody {
    #[serde(default)]
    org: Option<String>,
}

/// `POST /api/PatReport`: the answer, and the job to enqueue when there is one.
pub async fn start_run(
    state: &AppState,
    request: &HttpRequestData,
) -> (ApiReply, Option<JobMessage>) {
    if request.method != "POST" {
        return (ApiReply::method_not_allowed(&request.method, "POST"), None);
    }
    let body = match parse_start_body(request.body.as_deref()) {
        Ok(body) => body,
        Err(reply) => return (reply, None),
    };
    let asked = match (
        request.query("org").filter(|o| !o.trim().is_empty()),
        body.org.as_deref(),
    ) {
        (Some(q), Some(b)) if !q.trim().eq_ignore_ascii_case(b.trim()) => {
            return (
                ApiReply::bad_request(format!(
                    "the query says org '{q}' but the body says '{b}': give one"
                )),
                None,
            );
        }
        (Some(q), _) => Some(q.trim().to_owned()),
        (None, b) => b.map(|b| b.trim().to_owned()),
    };
    let org = match resolve_org(state, asked.as_deref()) {
        Ok(org) => org,
        Err(reply) => return (reply, None),
    };

    let now = OffsetDateTime::now_utc();
    let run_id = new_run_id(now);
    let requested_by = request
        .header("x-ms-client-principal-name")
        .map(|p| p.chars().take(256).collect::<String>())
        .filter(|p| !p.is_empty());
    let status = RunStatus::queued(&run_id, &org, RunSource::Http, requested_by.clone(), now);
    let saved = match state.runs().await {
        Ok(runs) => runs.save_status(&status).await,
        Err(e) => Err(e),
    };
    if let Err(e) = saved {
        tracing::error!(org, error = %e, "could not record an on-demand run");
        return (
            ApiReply::storage_unavailable(format!(
                "the run could not be recorded, nothing was queued: {e}"
            )),
            None,
        );
    }

    let status_url = absolute_url(request.url.as_deref(), &status_path(&run_id));
    let reply = ApiReply::new(
        StatusCode::ACCEPTED,
        json!({
            "runId": run_id,
            "org": org,
            "state": RunState::Queued.as_str(),
            "requestedAt": rfc3339(now),
            "statusUrl": status_url,
        }),
    )
    .with_header("Location", status_url.clone());
    let job = JobMessage {
        run_id,
        org,
        requested_at: now,
        source: RunSource::Http,
        requested_by,
    };
    (reply, Some(job))
}

fn parse_start_body(body: Option<&str>) -> Result<StartBody, ApiReply> {
    let text = body.map(str::trim).unwrap_or("");
    if text.is_empty() || text == "null" {
        return Ok(StartBody::default());
    }
    serde_json::from_str::<StartBody>(text).map_err(|e| {
        ApiReply::bad_request(format!(
            "the body must be empty or a JSON object like {{\"org\": \"fabrikam\"}}: {e}"
        ))
    })
}

/// The configured organization meant by `asked` (or the only one, when none is asked for).
fn resolve_org(state: &AppState, asked: Option<&str>) -> Result<String, ApiReply> {
    let orgs = &state.config.orgs;
    match asked {
        Some(asked) => state
            .config
            .find_org(asked)
            .map(str::to_owned)
            .ok_or_else(|| {
                ApiReply::bad_request(format!(
                    "'{}' is not one of the configured organizations (PATREPORT_ORGS): {}",
                    asked.chars().take(60).collect::<String>(),
                    orgs.join(", ")
                ))
            }),
        None if orgs.len() == 1 => Ok(orgs[0].clone()),
        None => Err(ApiReply::bad_request(format!(
            "say which organization with ?org=: one of {}",
            orgs.join(", ")
        ))),
    }
}

/// `GET /api/PatReport/runs/{id}`.
pub async fn run_status(state: &AppState, run_id: &str) -> ApiReply {
    if !is_run_id(run_id) {
        return ApiReply::not_found(format!(
            "there is no run with id '{}'",
            run_id.chars().take(60).collect::<String>()
        ));
    }
    let runs = match state.runs().await {
        Ok(runs) => runs,
        Err(e) => return ApiReply::storage_unavailable(e.to_string()),
    };
    let status = match runs.load_status(run_id).await {
        Ok(Some(status)) => status,
        Ok(None) => return ApiReply::not_found(format!("there is no run with id '{run_id}'")),
        Err(e) => return ApiReply::storage_unavailable(e.to_string()),
    };
    match status_view(state, runs, status, OffsetDateTime::now_utc()).await {
        Ok(body) => ApiReply::new(StatusCode::OK, body),
        Err(e) => {
            ApiReply::storage_unavailable(format!("the download links could not be signed: {e}"))
        }
    }
}

async fn status_view(
    state: &AppState,
    runs: &RunStore,
    status: RunStatus,
    now: OffsetDateTime,
) -> Result<Value, StorageError> {
    let files = status.files.clone();
    let succeeded = status.state == RunState::Succeeded;
    let stale = status.state == RunState::Running && now - status.updated_at > STALE_AFTER;
    let mut body = serde_json::to_value(&status).unwrap_or_else(|_| json!({}));
    if let Some(object) = body.as_object_mut() {
        object.remove("files");
        object.insert(
            "statusUrl".into(),
            Value::String(status_path(&status.run_id)),
        );
        if stale {
            object.insert("stale".into(), Value::Bool(true));
            object.insert(
                "note".into(),
                Value::String(format!(
                    "no progress since {}: the worker may have stopped; the job is retried by the queue and, \
                     after {} attempts, the run is marked failed",
                    rfc3339(status.updated_at),
                    super::worker::MAX_ATTEMPTS
                )),
            );
        }
        if let (true, Some(files)) = (succeeded, files) {
            add_links(object, runs, &files, state.config.sas_lifetime).await?;
        }
    }
    Ok(body)
}

/// `downloadUrl` + `expiresAt` for the workbook, and `files` with a link for every format.
async fn add_links(
    object: &mut Map<String, Value>,
    runs: &RunStore,
    files: &ReportFiles,
    lifetime: time::Duration,
) -> Result<(), StorageError> {
    let mut links = Map::new();
    let mut workbook: Option<SignedLink> = None;
    for (format, blob) in [
        ("xlsx", &files.xlsx),
        ("csv", &files.csv),
        ("json", &files.json),
    ] {
        let link = runs.link(blob, lifetime).await?;
        links.insert(
            format.into(),
            json!({ "name": crate::storage::runs::file_name(blob), "url": link.url, "expiresAt": rfc3339(link.expires_at) }),
        );
        if format == "xlsx" {
            workbook = Some(link);
        }
    }
    if let Some(link) = workbook {
        object.insert("downloadUrl".into(), Value::String(link.url));
        object.insert("expiresAt".into(), Value::String(rfc3339(link.expires_at)));
    }
    object.insert("files".into(), Value::Object(links));
    Ok(())
}

/// `GET /api/PatReport/latest[?org=]`.
pub async fn latest(state: &AppState, asked: Option<&str>) -> ApiReply {
    let org = match resolve_org(state, asked.map(str::trim).filter(|o| !o.is_empty())) {
        Ok(org) => org,
        Err(reply) => return reply,
    };
    let runs = match state.runs().await {
        Ok(runs) => runs,
        Err(e) => return ApiReply::storage_unavailable(e.to_string()),
    };
    let latest = match runs.load_latest(&org).await {
        Ok(Some(latest)) => latest,
        Ok(None) => {
            return ApiReply::not_found(format!(
                "there is no report for '{org}' yet: POST /api/PatReport?org={org} to make one"
            ));
        }
        Err(e) => return ApiReply::storage_unavailable(e.to_string()),
    };
    let mut object = Map::new();
    object.insert("org".into(), Value::String(latest.org.clone()));
    object.insert("runId".into(), Value::String(latest.run_id.clone()));
    object.insert(
        "generatedAt".into(),
        Value::String(rfc3339(latest.generated_at)),
    );
    object.insert(
        "summary".into(),
        serde_json::to_value(&latest.summary).unwrap_or(Value::Null),
    );
    object.insert(
        "statusUrl".into(),
        Value::String(status_path(&latest.run_id)),
    );
    if let Err(e) = add_links(&mut object, runs, &latest.files, state.config.sas_lifetime).await {
        return ApiReply::storage_unavailable(format!(
            "the download links could not be signed: {e}"
        ));
    }
    ApiReply::new(StatusCode::OK, Value::Object(object))
}

/// `path` on the scheme and host of the request's URL (the app's public address); the path
/// alone when the URL is missing or odd. The caller's query (with its `code=` key) is never
/// copied.
fn absolute_url(request_url: Option<&str>, path: &str) -> String {
    match request_url.and_then(|u| url::Url::parse(u).ok()) {
        Some(mut url) if url.has_host() => {
            url.set_path(path);
            url.set_query(None);
            url.set_fragment(None);
            url.into()
        }
        _ => path.to_owned(),
    }
}

pub fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_urls_use_the_public_host_and_drop_the_key() {
        assert_eq!(
            absolute_url(
                Some("https://app.azurewebsites.net/api/PatReport?code=SECRET&org=x"),
                "/api/PatReport/runs/r"
            ),
            "https://app.azurewebsites.net/api/PatReport/runs/r"
        );
        assert_eq!(
            absolute_url(Some("http://localhost:7071/api/PatReport"), "/p"),
            "http://localhost:7071/p"
        );
        assert_eq!(absolute_url(None, "/p"), "/p");
    }

    #[test]
    fn start_bodies_are_optional_but_strict() {
        assert!(parse_start_body(None).unwrap().org.is_none());
        assert!(parse_start_body(Some("  ")).unwrap().org.is_none());
        assert_eq!(
            parse_start_body(Some(r#"{"org":"x"}"#))
                .unwrap()
                .org
                .as_deref(),
            Some("x")
        );
        let e = parse_start_body(Some(r#"{"organisation":"x"}"#)).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert!(
            e.body["message"]
                .as_str()
                .unwrap()
                .contains("unknown field `organisation`"),
            "{:?}",
            e.body
        );
        let e = parse_start_body(Some("org=x")).unwrap_err();
        assert!(e.body["message"].as_str().unwrap().contains("JSON object"));
    }
}
