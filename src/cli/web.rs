//! `patreport report --web`: the table of every PAT filling in, in a browser, while the scan
//! runs, then the finished report, on a port of 127.0.0.1 only. The page gets the rows read so
//! far and the counts; no credential or token reaches it (only what the report shows).

use crate::ado::AdoClient;
use crate::engine::Progress;
use crate::inventory::{Pat, User};
use crate::pipeline::{Observer, Stage};
use crate::report::html::sha256_source;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use time::OffsetDateTime;

const SCRIPT: &str = include_str!("web/live.js");
const STYLE: &str = include_str!("web/live.css");

/// One row of the live table.
#[derive(Debug, Clone, serde::Serialize)]
struct LiveRow {
    owner: String,
    principal: String,
    name: Option<String>,
    status: &'static str,
    valid_to: Option<String>,
    scope: String,
}

/// What the scan has done so far, shared by the scan and the server.
pub struct Live {
    listed: AtomicUsize,
    read: AtomicUsize,
    failed: AtomicUsize,
    pats: AtomicUsize,
    rows: Mutex<Vec<LiveRow>>,
    client: OnceLock<AdoClient>,
    /// The finished report's page, once written.
    report: Mutex<Option<PathBuf>>,
    expiring_days: u32,
    include_invalid: bool,
}

impl Live {
    pub fn new(expiring_days: u32, include_invalid: bool) -> Arc<Self> {
        Arc::new(Self {
            listed: AtomicUsize::new(0),
            read: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
            pats: AtomicUsize::new(0),
            rows: Mutex::new(Vec::new()),
            client: OnceLock::new(),
            report: Mutex::new(None),
            expiring_days,
            include_invalid,
        })
    }

    /// The finished report's page is at `path`: the next request gets it.
    pub fn finished(&self, path: PathBuf) {
        *self.report.lock().unwrap_or_else(|p| p.into_inner()) = Some(path);
    }
}

/// Records for the live page, and passes everything on to `inner` (the terminal's progress).
pub struct LiveObserver<'a> {
    pub live: Arc<Live>,
    pub inner: &'a dyn Observer,
}

impl Progress for LiveObserver<'_> {
    fn users_listed(&self, listed: usize) {
        self.live.listed.store(listed, Ordering::Relaxed);
        self.inner.users_listed(listed);
    }

    fn user_scanned(&self, pats: usize, failed: bool) {
        if failed {
            self.live.failed.fetch_add(1, Ordering::Relaxed);
        }
        self.inner.user_scanned(pats, failed);
    }

    fn user_read(&self, user: &User, pats: &[Pat]) {
        let now = OffsetDateTime::now_utc();
        let horizon = now + time::Duration::days(i64::from(self.live.expiring_days));
        let rows: Vec<LiveRow> = pats
            .iter()
            .filter(|p| p.is_valid || self.live.include_invalid)
            .map(|p| LiveRow {
                owner: user.display_name.clone(),
                principal: user.principal_name.clone(),
                name: p.display_name.clone(),
                // The report's rules decide the final status; this is what the table shows
                // until then.
                status: match (p.is_valid, p.valid_to) {
                    (false, _) => "invalid",
                    (true, Some(to)) if to < now => "expired",
                    (true, Some(to)) if to <= horizon => "expiring",
                    _ => "active",
                },
                valid_to: p.valid_to.map(crate::domain::timestamp::rfc3339),
                scope: crate::report::scope::summarize(p.scope.as_deref().unwrap_or_default()),
            })
            .collect();
        self.live.pats.fetch_add(rows.len(), Ordering::Relaxed);
        self.live.read.fetch_add(1, Ordering::Relaxed);
        self.live
            .rows
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(rows);
        self.inner.user_read(user, pats);
    }
}

impl Observer for LiveObserver<'_> {
    fn stage(&self, stage: Stage<'_>) {
        if let Stage::Scanning(client) = &stage {
            let _ = self.live.client.set((*client).clone());
        }
        self.inner.stage(stage);
    }
}

/// The live page's Content-Security-Policy: its own inline script and style, and requests to
/// this server only.
pub fn live_policy() -> String {
    format!(
        "default-src 'none'; script-src '{}'; style-src '{}'; connect-src 'self'; base-uri 'none'; \
         form-action 'none'; require-trusted-types-for 'script'; trusted-types 'none'",
        sha256_source(SCRIPT),
        sha256_source(STYLE)
    )
}

fn live_page(org: &str) -> String {
    let mut title = String::new();
    for c in org.chars() {
        // An organization name is letters, digits and hyphens; escape anyway.
        match c {
            '<' | '>' | '&' | '"' | '\'' => title.push('?'),
            c => title.push(c),
        }
    }
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"{policy}\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>PAT report: {title} (scanning)</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
         <h1>PAT report: {title}</h1>\n<p id=\"status\" role=\"status\">Starting…</p>\n\
         <table><thead><tr><th>Owner</th><th>Principal name</th><th>PAT name</th><th>Status</th>\
         <th>Valid to (UTC)</th><th>Scope</th></tr></thead><tbody id=\"rows\"></tbody></table>\n\
         <script>{SCRIPT}</script>\n</body>\n</html>\n",
        policy = live_policy()
    )
}

#[derive(serde::Deserialize)]
struct From {
    #[serde(default)]
    from: usize,
}

struct Served {
    live: Arc<Live>,
    org: String,
}

/// The server of the live page: on 127.0.0.1 only.
pub fn router(live: Arc<Live>, org: &str) -> Router {
    let state = Arc::new(Served {
        live,
        org: org.to_owned(),
    });
    Router::new()
        .route("/", get(index))
        .route("/live.json", get(progress))
        .with_state(state)
}

fn secure(mut response: Response, policy: String) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, policy),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
        (header::CACHE_CONTROL, "no-store".to_owned()),
        (header::REFERRER_POLICY, "no-referrer".to_owned()),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    response
}

async fn index(State(served): State<Arc<Served>>) -> Response {
    let finished = served
        .live
        .report
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    if let Some(path) = finished
        && let Ok(page) = tokio::fs::read(&path).await
    {
        let response = ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], page).into_response();
        return secure(response, crate::report::html::content_security_policy());
    }
    let response = (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        live_page(&served.org),
    )
        .into_response();
    secure(response, live_policy())
}

async fn progress(State(served): State<Arc<Served>>, Query(from): Query<From>) -> Response {
    let live = &served.live;
    let rows: Vec<LiveRow> = {
        let rows = live.rows.lock().unwrap_or_else(|p| p.into_inner());
        rows.iter().skip(from.from).take(5_000).cloned().collect()
    };
    let done = live
        .report
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .is_some();
    let body = serde_json::json!({
        "listed": live.listed.load(Ordering::Relaxed),
        "read": live.read.load(Ordering::Relaxed),
        "failed": live.failed.load(Ordering::Relaxed),
        "pats": live.pats.load(Ordering::Relaxed),
        "waiting": live.client.get().and_then(AdoClient::waiting_for),
        "done": done,
        "rows": rows,
    });
    let response = (
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response();
    secure(response, "default-src 'none'".to_owned())
}
