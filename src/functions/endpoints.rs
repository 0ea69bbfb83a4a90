//! The PatReport HTTP endpoints:
//! * `POST /api/PatReport[?org=]` — record a `queued` run and hand its job to the queue (or,
//!   with `PATREPORT_HTTP_RUNS=on-behalf-of`, exchange the caller's token and run it in this
//!   process); 202 with `Location:` the status URL;
//! * `GET /api/PatReport/runs/{id}` — the run's status, with fresh download links once it
//!   has succeeded;
//! * `GET /api/PatReport/latest[?org=]` — fresh links to the organization's newest report,
//!   without scanning.
//!
//! Every one of them first authorizes the caller (`auth::CallerPolicy`): 401 without a valid
//! token, 403 without an allowed role or group, before anything else is looked at.
//!
//! The functions here decide the answer; `router` delivers it in the form the host expects.

use super::in_process;
use super::job::JobMessage;
use super::protocol::HttpRequestData;
use super::reply::ApiReply;
use super::state::AppState;
use crate::callers::{Caller, bearer_token};
use crate::domain::timestamp::rfc3339;
use crate::domain::{OrgName, RunId};
use crate::lifecycle::{Execution, ReportFiles, RunSource, RunState, RunStatus, STALLED};
use crate::report::Format;
use crate::storage::runs::file_name;
use crate::storage::{RunStore, SignedLink, StorageError};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::sync::Arc;
use time::OffsetDateTime;

/// Where the status of a run is served (relative to the app's base URL).
pub fn status_path(run_id: &RunId) -> String {
    format!("/api/PatReport/runs/{run_id}")
}

/// Where a run's report is shown in the browser.
pub fn view_path(run_id: &RunId) -> String {
    format!("/api/PatReport/runs/{run_id}/view")
}

/// The answer of a view: the stored HTML report, or why there is none.
pub enum View {
    Page(Vec<u8>),
    Refused(ApiReply),
}

/// `GET /api/PatReport/runs/{id}/view`: the run's report as a page. Read from storage, so it
/// answers well within the host's HTTP limit.
pub async fn run_view(state: &AppState, run_id: &str) -> View {
    let Ok(run_id) = RunId::parse(run_id) else {
        return View::Refused(ApiReply::not_found(format!(
            "there is no run with id '{}'",
            run_id.chars().take(60).collect::<String>()
        )));
    };
    let runs = match state.runs().await {
        Ok(runs) => runs,
        Err(e) => return View::Refused(ApiReply::storage_unavailable(e.to_string())),
    };
    let status = match runs.load_status(&run_id).await {
        Ok(Some(status)) => status,
        Ok(None) => {
            return View::Refused(ApiReply::not_found(format!(
                "there is no run with id '{run_id}'"
            )));
        }
        Err(e) => return View::Refused(ApiReply::storage_unavailable(e.to_string())),
    };
    let page = status.files().and_then(|f| f.get(&Format::Html)).cloned();
    match (status.state(), page) {
        (RunState::Succeeded, Some(blob)) => page_from(runs, &blob).await,
        (RunState::Succeeded, None) => View::Refused(ApiReply::not_found(format!(
            "run {run_id} was made before reports had a page: its workbook, CSV and JSON are at {}",
            status_path(&run_id)
        ))),
        (state, _) => View::Refused(ApiReply::error(
            StatusCode::CONFLICT,
            "not_ready",
            format!(
                "run {run_id} is {}: its page exists once it has succeeded; follow {}",
                state.as_str(),
                status_path(&run_id)
            ),
        )),
    }
}

/// `GET /api/PatReport/view[?org=]`: the newest report of an organization as a page.
pub async fn latest_view(state: &AppState, asked: Option<&str>) -> View {
    let org = match resolve_org(state, asked.map(str::trim).filter(|o| !o.is_empty())) {
        Ok(org) => org,
        Err(reply) => return View::Refused(reply),
    };
    let runs = match state.runs().await {
        Ok(runs) => runs,
        Err(e) => return View::Refused(ApiReply::storage_unavailable(e.to_string())),
    };
    match runs.load_latest(&org).await {
        Ok(Some(latest)) => match latest.files.get(&Format::Html) {
            Some(blob) => page_from(runs, blob).await,
            None => View::Refused(ApiReply::not_found(format!(
                "the newest report of '{org}' was made before reports had a page: ask for a new one \
                 (POST /api/PatReport?org={org})"
            ))),
        },
        Ok(None) => View::Refused(ApiReply::not_found(format!(
            "there is no report for '{org}' yet: POST /api/PatReport?org={org} to make one"
        ))),
        Err(e) => View::Refused(ApiReply::storage_unavailable(e.to_string())),
    }
}

async fn page_from(runs: &RunStore, blob: &str) -> View {
    match runs.blobs().get(blob).await {
        Ok(Some(bytes)) => View::Page(bytes),
        Ok(None) => View::Refused(ApiReply::not_found(format!(
            "the report page {} is no longer stored",
            file_name(blob)
        ))),
        Err(e) => View::Refused(ApiReply::storage_unavailable(e.to_string())),
    }
}

/// The caller of a request, or the answer that refuses it.
pub async fn authorize(
    state: &AppState,
    headers: &HeaderMap,
    function: &str,
) -> Result<Caller, ApiReply> {
    match state.callers.authorize(headers).await {
        Ok(caller) => {
            tracing::info!(function, caller = %caller.describe(), "caller authorized");
            Ok(caller)
        }
        Err(denied) => {
            let reply = ApiReply::denied(&denied);
            tracing::info!(
                function,
                status = reply.status.as_u16(),
                reason = denied.reason(),
                "caller refused"
            );
            Err(reply)
        }
    }
}

/// What `POST /api/PatReport` did.
pub struct Started {
    pub reply: ApiReply,
    /// The job for the queue output binding (queued runs only).
    pub job: Option<JobMessage>,
    /// One line for the invocation's `Logs`.
    pub log: String,
}

impl Started {
    fn answered(reply: ApiReply) -> Self {
        let log = format!(
            "Answered {}: {}",
            reply.status.as_u16(),
            reply
                .body
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("")
        );
        Self {
            reply,
            job: None,
            log,
        }
    }
}

/// The optional JSON body of `POST /api/PatReport`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StartBody {
    #[serde(default)]
    org: Option<String>,
}

/// `POST /api/PatReport`: the answer, and the job to enqueue when there is one.
pub async fn start_run(state: &Arc<AppState>, request: &HttpRequestData) -> Started {
    let headers = request.header_map();
    let caller = match authorize(state, &headers, super::router::PATREPORT).await {
        Ok(caller) => caller,
        Err(reply) => return Started::answered(reply),
    };
    if request.method != "POST" {
        return Started::answered(ApiReply::method_not_allowed(&request.method, "POST"));
    }
    let body = match parse_start_body(request.body.as_deref()) {
        Ok(body) => body,
        Err(reply) => return Started::answered(reply),
    };
    let asked = match (
        request.query("org").filter(|o| !o.trim().is_empty()),
        body.org.as_deref(),
    ) {
        (Some(q), Some(b)) if !q.trim().eq_ignore_ascii_case(b.trim()) => {
            return Started::answered(ApiReply::bad_request(format!(
                "the query says org '{q}' but the body says '{b}': give one"
            )));
        }
        (Some(q), _) => Some(q.trim().to_owned()),
        (None, b) => b.map(|b| b.trim().to_owned()),
    };
    let org = match resolve_org(state, asked.as_deref()) {
        Ok(org) => org,
        Err(reply) => return Started::answered(reply),
    };

    // On-behalf-of: exchange the caller's token now, so that missing consent or an expired
    // token is the answer to this request rather than a failed run later.
    let in_process = match &state.on_behalf_of {
        None => None,
        Some(obo) => {
            let Some(slot) = state.in_process.try_reserve() else {
                return Started::answered(ApiReply::busy(format!(
                    "{} on-behalf-of runs are already in progress on this instance: try again when one \
                     has finished",
                    in_process::MAX_IN_PROCESS_RUNS
                )));
            };
            match obo.credential_for(bearer_token(&headers)).await {
                Ok(credential) => Some((slot, credential)),
                Err(refused) => {
                    let reply = ApiReply::exchange_refused(&refused);
                    tracing::warn!(
                        caller = %caller.describe(),
                        status = reply.status.as_u16(),
                        reason = %refused,
                        "the on-behalf-of exchange was refused"
                    );
                    return Started::answered(reply);
                }
            }
        }
    };

    let now = OffsetDateTime::now_utc();
    let run_id = RunId::new(now);
    // The authenticated caller, not a header anyone could send.
    let requested_by = Some(caller.describe().chars().take(256).collect::<String>());
    let execution = match in_process {
        Some(_) => Execution::InProcess,
        None => Execution::Queue,
    };
    let status = RunStatus::queued(
        run_id.clone(),
        org.clone(),
        RunSource::Http,
        requested_by.clone(),
        execution,
        now,
    );
    let saved = match state.runs().await {
        Ok(runs) => runs.save_status(&status).await,
        Err(e) => Err(e),
    };
    if let Err(e) = saved {
        tracing::error!(%org, error = %e, "could not record an on-demand run");
        return Started::answered(ApiReply::storage_unavailable(format!(
            "the run could not be recorded, nothing was {}: {e}",
            if in_process.is_some() {
                "started"
            } else {
                "queued"
            }
        )));
    }

    let status_url = absolute_url(request.url.as_deref(), &status_path(&run_id));
    let reply = ApiReply::new(
        StatusCode::ACCEPTED,
        json!({
            "runId": run_id,
            "org": org,
            "state": RunState::Queued.as_str(),
            "execution": status.execution.as_str(),
            "requestedBy": requested_by,
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
    match in_process {
        Some((slot, credential)) => {
            let log = format!(
                "Started run {} for {} in this process, on behalf of {}.",
                job.run_id,
                job.org,
                caller.describe()
            );
            in_process::start(state, slot, job, credential);
            Started {
                reply,
                job: None,
                log,
            }
        }
        None => Started {
            reply,
            log: format!("Queued run {} for {}.", job.run_id, job.org),
            job: Some(job),
        },
    }
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
pub(super) fn resolve_org(state: &AppState, asked: Option<&str>) -> Result<OrgName, ApiReply> {
    let orgs = &state.settings.orgs;
    let names = || {
        orgs.iter()
            .map(|o| o.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match asked {
        Some(asked) => state.settings.find_org(asked).cloned().ok_or_else(|| {
            ApiReply::bad_request(format!(
                "'{}' is not one of the configured organizations (PATREPORT_ORGS): {}",
                asked.chars().take(60).collect::<String>(),
                names()
            ))
        }),
        None if orgs.len() == 1 => Ok(orgs[0].clone()),
        None => Err(ApiReply::bad_request(format!(
            "say which organization with ?org=: one of {}",
            names()
        ))),
    }
}

/// `GET /api/PatReport/runs/{id}`.
pub async fn run_status(state: &AppState, run_id: &str) -> ApiReply {
    let Ok(run_id) = RunId::parse(run_id) else {
        return ApiReply::not_found(format!(
            "there is no run with id '{}'",
            run_id.chars().take(60).collect::<String>()
        ));
    };
    let runs = match state.runs().await {
        Ok(runs) => runs,
        Err(e) => return ApiReply::storage_unavailable(e.to_string()),
    };
    let status = match runs.load_status(&run_id).await {
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
    let mut body = status_body(&status, now);
    if let (Some(object), RunState::Succeeded, Some(files)) =
        (body.as_object_mut(), status.state(), status.files())
    {
        add_links(object, runs, files, state.settings.sas_lifetime).await?;
    }
    Ok(body)
}

/// A run's status as the API shows it, without download links (signing them is per call):
/// `stalled` derived, and where to read the status and see the page.
fn status_body(status: &RunStatus, now: OffsetDateTime) -> Value {
    let mut body = serde_json::to_value(status).unwrap_or_else(|_| json!({}));
    if let Some(object) = body.as_object_mut() {
        object.remove("files");
        object.insert(
            "statusUrl".into(),
            Value::String(status_path(&status.run_id)),
        );
        if let Some(message) = status.stalled(now) {
            object.insert(
                "recordedState".into(),
                Value::String(status.state().as_str().into()),
            );
            object.insert("state".into(), Value::String(STALLED.into()));
            object.insert("message".into(), Value::String(message));
        }
        let has_page = status
            .files()
            .is_some_and(|f| f.contains_key(&Format::Html));
        if status.state() == RunState::Succeeded && has_page {
            object.insert("viewUrl".into(), Value::String(view_path(&status.run_id)));
        }
    }
    body
}

/// How many runs `GET /api/PatReport/runs` lists.
pub const RECENT_RUNS: usize = 20;

/// `GET /api/PatReport/runs`: the newest runs, newest first, without download links (a run's
/// own status has them).
pub async fn recent_runs(state: &AppState) -> ApiReply {
    let runs = match state.runs().await {
        Ok(runs) => runs,
        Err(e) => return ApiReply::storage_unavailable(e.to_string()),
    };
    match runs.recent(RECENT_RUNS).await {
        Ok(list) => {
            let now = OffsetDateTime::now_utc();
            let list: Vec<Value> = list.iter().map(|s| status_body(s, now)).collect();
            ApiReply::new(StatusCode::OK, json!({ "runs": list }))
        }
        Err(e) => ApiReply::storage_unavailable(e.to_string()),
    }
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
    for (format, blob) in files {
        let link = runs.link(blob, lifetime).await?;
        links.insert(
            format.extension().into(),
            json!({ "name": file_name(blob), "url": link.url, "expiresAt": rfc3339(link.expires_at) }),
        );
        if *format == Format::Xlsx {
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
    object.insert("org".into(), Value::String(latest.org.to_string()));
    object.insert("runId".into(), Value::String(latest.run_id.to_string()));
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
    if latest.files.contains_key(&Format::Html) {
        object.insert(
            "viewUrl".into(),
            Value::String(format!("/api/PatReport/view?org={}", latest.org)),
        );
    }
    if let Err(e) = add_links(
        &mut object,
        runs,
        &latest.files,
        state.settings.sas_lifetime,
    )
    .await
    {
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
