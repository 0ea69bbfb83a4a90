//! The handler's HTTP surface, as the Functions host calls it:
//! * `GET /` — the host's readiness ping (every 25 ms at start); answers at once, before any
//!   storage set-up;
//! * `POST /{FunctionName}` — JSON invocations of the functions that are not forwarded
//!   (`PatReport`, `PatReportTimer`, `PatReportWorker`, `PatReportPoison`);
//! * `GET /api/PatReport/runs/{id}`, `GET /api/PatReport/latest` — forwarded raw requests.
//!
//! The three HTTP functions authorize the caller before anything else (`endpoints::authorize`);
//! the timer and the queue functions have no caller (the host alone can invoke them: the
//! handler listens on loopback only).
//!
//! Paths are matched case-insensitively: the host forwards the caller's path as typed, and
//! its own routing ignores case.

use super::endpoints;
use super::poison;
use super::protocol::{HttpRequestData, InvokeRequest, InvokeResponse, json_response};
use super::reply::ApiReply;
use super::state::AppState;
use super::timer;
use super::worker::{self, Outcome};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};
use std::sync::Arc;

/// Function names (the folder names; the host POSTs to `/{name}` with this case).
pub const PATREPORT: &str = "PatReport";
pub const PATREPORT_STATUS: &str = "PatReportStatus";
pub const PATREPORT_LATEST: &str = "PatReportLatest";
pub const PATREPORT_VIEW: &str = "PatReportView";
pub const PATREPORT_RUN_VIEW: &str = "PatReportRunView";
pub const PATREPORT_RUNS: &str = "PatReportRuns";
pub const PATREPORT_UI: &str = "PatReportUi";
pub const PATREPORT_REVOKE: &str = "PatReportRevoke";
pub const PATREPORT_TIMER: &str = "PatReportTimer";
pub const PATREPORT_WORKER: &str = "PatReportWorker";
pub const PATREPORT_POISON: &str = "PatReportPoison";
/// Bindings of `PatReport/function.json`.
pub const HTTP_TRIGGER_BINDING: &str = "req";
pub const HTTP_OUTPUT_BINDING: &str = "res";
pub const JOB_OUTPUT_BINDING: &str = "job";

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(ready).head(ready))
        .fallback(dispatch)
        .with_state(state)
}

async fn ready() -> Response {
    json_response(StatusCode::OK, &json!({ "status": "ok" }))
}

async fn dispatch(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let segments: Vec<&str> = uri.path().split('/').filter(|s| !s.is_empty()).collect();
    let lower: Vec<String> = segments.iter().map(|s| s.to_ascii_lowercase()).collect();
    let lower: Vec<&str> = lower.iter().map(String::as_str).collect();
    let invocation_id = headers
        .get("x-azure-functions-invocationid")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    // The GET endpoints: which function answers, and with which path segment (a run id).
    let (function, get) = match lower.as_slice() {
        [name] if is_invocation(name) => {
            tracing::info!(function = segments[0], invocation_id, "invocation");
            return invoke(&state, name, &method, &body).await;
        }
        // Only when revoke roles are configured; otherwise there is no such route.
        ["api", "patreport", "revoke"] if !state.settings.callers.revoke_roles.is_empty() => {
            return revoke(&state, &headers, &method, invocation_id, &body).await;
        }
        ["api", "patreport", "runs"] => (PATREPORT_RUNS, Get::Runs),
        ["api", "patreport", "ui"] => (PATREPORT_UI, Get::Ui),
        ["api", "patreport", "runs", _] => (PATREPORT_STATUS, Get::Status(segments[3])),
        ["api", "patreport", "runs", _, "view"] => (PATREPORT_RUN_VIEW, Get::RunView(segments[3])),
        ["api", "patreport", "view"] => (PATREPORT_VIEW, Get::View),
        ["api", "patreport", "latest"] => (PATREPORT_LATEST, Get::Latest),
        _ => return no_route(&method, &uri),
    };
    if let Err(refused) = admit(&state, &headers, &method, function, invocation_id).await {
        return refused;
    }
    match get {
        Get::Runs => endpoints::recent_runs(&state).await.into_response(),
        Get::Ui => html(
            super::ui::page(&state.settings.orgs).into_bytes(),
            &super::ui::policy(),
        ),
        Get::Status(id) => endpoints::run_status(&state, id).await.into_response(),
        Get::RunView(id) => page(endpoints::run_view(&state, id).await),
        Get::View => page(endpoints::latest_view(&state, org_query(&uri).as_deref()).await),
        Get::Latest => endpoints::latest(&state, org_query(&uri).as_deref())
            .await
            .into_response(),
    }
}

/// `POST /api/PatReport/revoke`: the caller must hold one of the revoke roles as well as
/// being allowed to read reports.
async fn revoke(
    state: &AppState,
    headers: &HeaderMap,
    method: &Method,
    invocation_id: &str,
    body: &[u8],
) -> Response {
    tracing::info!(function = PATREPORT_REVOKE, invocation_id, "request");
    let caller = match endpoints::authorize(state, headers, PATREPORT_REVOKE).await {
        Ok(caller) => caller,
        Err(refused) => return refused.into_response(),
    };
    let roles = &state.settings.callers.revoke_roles;
    if !caller.roles.iter().any(|r| roles.contains(r)) {
        tracing::info!(caller = %caller.describe(), "revoke refused: no revoke role");
        return ApiReply::error(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "{} may not revoke tokens: this needs one of the app roles {}",
                caller.describe(),
                roles.join(", ")
            ),
        )
        .into_response();
    }
    if method != Method::POST {
        return ApiReply::method_not_allowed(method.as_str(), "POST").into_response();
    }
    super::revoke::handle(state, &caller, body)
        .await
        .into_response()
}

enum Get<'a> {
    Runs,
    Ui,
    Status(&'a str),
    RunView(&'a str),
    View,
    Latest,
}

fn no_route(method: &Method, uri: &Uri) -> Response {
    ApiReply::not_found(format!(
        "no route for {method} {}: the endpoints are POST /api/PatReport, \
         GET /api/PatReport/runs/{{id}}, GET /api/PatReport/runs/{{id}}/view, \
         GET /api/PatReport/runs, GET /api/PatReport/latest, GET /api/PatReport/view and \
         GET /api/PatReport/ui (through the Functions host)",
        uri.path()
    ))
    .into_response()
}

/// The checks every GET endpoint makes first: who is asking (before anything else is looked
/// at), then the method.
async fn admit(
    state: &AppState,
    headers: &HeaderMap,
    method: &Method,
    function: &str,
    invocation_id: &str,
) -> Result<(), Response> {
    tracing::info!(function, invocation_id, "request");
    endpoints::authorize(state, headers, function)
        .await
        .map_err(|refused| refused.into_response())?;
    if method != Method::GET && method != Method::HEAD {
        return Err(ApiReply::method_not_allowed(method.as_str(), "GET").into_response());
    }
    Ok(())
}

/// `?org=` of a request.
fn org_query(uri: &Uri) -> Option<String> {
    uri.query().and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k.eq_ignore_ascii_case("org"))
            .map(|(_, v)| v.into_owned())
    })
}

/// A report page, with the page's own Content-Security-Policy as a header too: nothing but
/// its inline script and style may run, nothing may be fetched. Never cached, never sniffed,
/// and no referrer leaves it.
fn page(view: endpoints::View) -> Response {
    match view {
        endpoints::View::Refused(reply) => reply.into_response(),
        endpoints::View::Page(bytes) => html(
            bytes,
            &format!(
                "{}; frame-ancestors 'none'",
                crate::report::html::content_security_policy()
            ),
        ),
    }
}

/// A page under its Content-Security-Policy, never framed, cached or sniffed.
fn html(bytes: Vec<u8>, policy: &str) -> Response {
    let mut response = Response::new(axum::body::Body::from(bytes));
    let headers = response.headers_mut();
    for (name, value) in [
        ("content-type", crate::report::Format::Html.content_type()),
        ("content-security-policy", policy),
        ("x-frame-options", "DENY"),
        ("x-content-type-options", "nosniff"),
        ("cache-control", "no-store"),
        ("referrer-policy", "no-referrer"),
    ] {
        if let Ok(value) = axum::http::HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    }
    response
}

fn is_invocation(name: &str) -> bool {
    [
        PATREPORT,
        PATREPORT_TIMER,
        PATREPORT_WORKER,
        PATREPORT_POISON,
    ]
    .iter()
    .any(|f| f.eq_ignore_ascii_case(name))
}

async fn invoke(state: &Arc<AppState>, function: &str, method: &Method, body: &[u8]) -> Response {
    if method != Method::POST {
        return ApiReply::method_not_allowed(method.as_str(), "POST").into_response();
    }
    let invocation: InvokeRequest = match serde_json::from_slice(body) {
        Ok(invocation) => invocation,
        Err(e) => {
            return ApiReply::bad_request(format!(
                "not a Functions invocation payload ({{\"Data\":…,\"Metadata\":…}}): {e}"
            ))
            .into_response();
        }
    };
    if function.eq_ignore_ascii_case(PATREPORT) {
        start_run(state, &invocation).await
    } else if function.eq_ignore_ascii_case(PATREPORT_TIMER) {
        axum::response::IntoResponse::into_response(timer::handle(state, &invocation).await)
    } else if function.eq_ignore_ascii_case(PATREPORT_WORKER) {
        outcome(worker::handle(state, &invocation).await)
    } else {
        outcome(poison::handle(state, &invocation).await)
    }
}

/// `PatReport`: an HTTP trigger with a queue output binding, so the host sends `Data.req` and
/// takes the answer from `Outputs.res` and the job from `Outputs.job` (absent when nothing is
/// to be queued: a refusal, or a run started in this process).
async fn start_run(state: &Arc<AppState>, invocation: &InvokeRequest) -> Response {
    let mut out = InvokeResponse::default();
    let reply = match HttpRequestData::from_invocation(invocation, HTTP_TRIGGER_BINDING) {
        Ok(request) => {
            let started = endpoints::start_run(state, &request).await;
            out.log(started.log);
            if let Some(job) = started.job {
                out.output(JOB_OUTPUT_BINDING, Value::String(job.to_text()));
            }
            started.reply
        }
        Err(e) => ApiReply::bad_request(e.to_string()),
    };
    out.output(HTTP_OUTPUT_BINDING, reply.into_output());
    axum::response::IntoResponse::into_response(out)
}

/// A queue invocation's answer: 2xx when done with the message, 500 to have it delivered again.
fn outcome(outcome: Outcome) -> Response {
    match outcome {
        Outcome::Done(out) => axum::response::IntoResponse::into_response(out),
        Outcome::Retry(reason) => {
            tracing::warn!(reason, "asking the host to deliver the job again");
            json_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                &json!({ "error": "retry", "message": reason }),
            )
        }
    }
}
