//! The HTTP side: route matching (case-insensitive, as the service does), the request
//! pipeline (organization, authentication, faults, `api-version`), the handlers (Graph users;
//! the Token Admin listing, of PATs or, with `isPublic=true`, SSH keys; Token Admin
//! revocations; the Audit Log query), and the [`SimServer`] that runs it all on a loopback
//! port.
//!
//! The served org can change while it is served ([`SimServer::mutate`]): handlers work on a
//! snapshot (an `Arc` of the org and its indexes) taken when the request arrives, and a
//! mutation swaps in a changed copy, so one answer never sees half a change.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header::ACCEPT;
use axum::http::{HeaderMap, Method, Response, StatusCode, Uri};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::api_version::{Api, negotiate};
use super::audit::{
    self, AuditActor, AuditConfig, AuditLog, AuditMode, AuditQuery, DEMO_PAT_AUTHORIZATION_ID,
    PatAction, Scope,
};
use super::auth::{self, AuthConfig};
use super::config::SimConfig;
use super::data::SimOrg;
use super::faults::{self, Early, Faults};
use super::hash::{hash_bytes, mix64};
use super::mutations::Mutations;
use super::paging::{
    GraphCursor, PagingConfig, PatCursor, decode_graph_token, decode_pat_token, encode_graph_token,
    encode_pat_token, graph_page, listing_key, pat_page_size, subject_mask,
};
use super::reply::Reply;
use super::revocations::{self, Revocations};
use super::stats::{SimStats, SimStatsSnapshot, add, bump};
use super::tstu::{Decision, TstuApi};
use super::wire::{
    self, Continuation, Entries, ExceptionType, PageEnd, guid_from_u128, parse_guid,
};

/// A router serving `org` under `config`, for in-process use.
pub fn router(org: Arc<SimOrg>, config: SimConfig) -> Router {
    build(org, config).0
}

fn build(org: Arc<SimOrg>, config: SimConfig) -> (Router, Arc<AppState>) {
    let state = Arc::new(AppState::new(org, config));
    // One fallback handler instead of axum routes: the service matches paths ignoring case,
    // and axum's router does not.
    let router = Router::new()
        .fallback(handle)
        .with_state(Arc::clone(&state));
    (router, state)
}

/// A simulated Azure DevOps organization served on `127.0.0.1` on a free port.
pub struct SimServer {
    base_url: String,
    state: Arc<AppState>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl SimServer {
    /// Binds `127.0.0.1:0` and serves in a background task.
    pub async fn start(org: SimOrg, config: SimConfig) -> std::io::Result<SimServer> {
        Self::start_on(org, config, 0).await
    }

    /// As [`start`](Self::start), on a chosen loopback port (0: any free port).
    pub async fn start_on(org: SimOrg, config: SimConfig, port: u16) -> std::io::Result<SimServer> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await?;
        let addr = listener.local_addr()?;
        let (router, state) = build(Arc::new(org), config);
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    // A dropped sender also means "stop".
                    let _ = rx.await;
                })
                .await;
            if let Err(error) = served {
                tracing::warn!(%error, "simulated Azure DevOps server stopped with an error");
            }
        });
        Ok(SimServer {
            base_url: format!("http://{addr}"),
            state,
            shutdown: Some(tx),
            task: Some(task),
        })
    }

    /// `http://127.0.0.1:<port>`, without a trailing slash. The organization's URLs are
    /// `{base_url}/{org}/_apis/...`.
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    /// A snapshot of the organization being served: as generated, plus what
    /// [`mutate`](Self::mutate) changed since. Revocations through the Token Admin route do not
    /// change it (see [`revocations`](Self::revocations)). Its `audit` is empty: the server
    /// keeps the log, see [`audit_log`](Self::audit_log).
    pub fn org(&self) -> Arc<SimOrg> {
        Arc::clone(&self.state.snapshot().org)
    }

    /// A copy of the audit log being served (newest first), with the events of the
    /// generated org, of [`mutate`](Self::mutate) and of Token Admin revocations.
    pub fn audit_log(&self) -> AuditLog {
        self.state.live().audit.clone()
    }

    /// Changes the served org: `f`'s mutations change it and append their audit events
    /// (stamped at the `at` each is given), all at once for requests that arrive later.
    /// Requests already being answered finish on the org as it was.
    pub fn mutate<R>(&self, f: impl FnOnce(&mut Mutations<'_>) -> R) -> R {
        let mut live = self.state.live_mut();
        let live = &mut *live;
        let org = Arc::make_mut(&mut live.org);
        let result = org.mutate(f);
        live.audit.append(&mut org.audit);
        live.index = Arc::new(Index::new(org));
        result
    }

    pub fn stats(&self) -> SimStatsSnapshot {
        self.state.stats.snapshot()
    }

    /// The authorization ids of each revocation request that took effect (answered 204), as
    /// sent and in order, unknown ids included: a test can check that no id was sent twice.
    /// [`org`](Self::org) does not show them (it changes only under [`mutate`](Self::mutate));
    /// the listings show the revoked entries with `isValid: false`.
    pub fn revocations(&self) -> Vec<Vec<String>> {
        self.state.revocations.log()
    }

    /// Stops accepting requests and waits (briefly) for open ones to finish.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            // Idle keep-alive connections of a client still alive can hold a graceful
            // shutdown open; do not wait on them for long.
            let abort = task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(2), task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }
}

impl Drop for SimServer {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Where to find users and tokens in one version of the org.
#[derive(Debug, Default)]
struct Index {
    /// Descriptor → position in `org.users`.
    users: HashMap<String, usize>,
    /// Authorization id → (user, position) of PATs and of SSH keys.
    pats: HashMap<u128, (usize, usize)>,
    ssh_keys: HashMap<u128, (usize, usize)>,
}

impl Index {
    fn new(org: &SimOrg) -> Self {
        let mut index = Index::default();
        for (u, user) in org.users.iter().enumerate() {
            index.users.insert(user.descriptor.clone(), u);
            for (p, pat) in user.pats.iter().enumerate() {
                if let Some(id) = parse_guid(&pat.authorization_id) {
                    index.pats.insert(id, (u, p));
                }
            }
            for (k, key) in user.ssh_keys.iter().enumerate() {
                if let Some(id) = parse_guid(&key.authorization_id) {
                    index.ssh_keys.insert(id, (u, k));
                }
            }
        }
        index
    }
}

/// The org as served now. `org.audit` stays empty: the log lives in `audit`, so recording
/// an event never copies the org.
struct Live {
    org: Arc<SimOrg>,
    index: Arc<Index>,
    audit: AuditLog,
}

/// What one request works on.
#[derive(Clone)]
struct Snapshot {
    org: Arc<SimOrg>,
    index: Arc<Index>,
}

struct AppState {
    live: RwLock<Live>,
    audit_config: AuditConfig,
    auth: AuthConfig,
    paging: PagingConfig,
    gate: Option<super::config::Gate>,
    faults: Faults,
    revocations: Revocations,
    revocation_batch_limit: usize,
    stats: SimStats,
    /// Keys continuation tokens, so tokens from another org or a forged one are refused.
    token_key: u64,
}

/// One request's answer, and how it is to be delivered.
struct Outcome {
    reply: Reply,
    api_version: Option<String>,
    hold: Duration,
}

impl From<Reply> for Outcome {
    fn from(reply: Reply) -> Self {
        Outcome {
            reply,
            api_version: None,
            hold: Duration::ZERO,
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Route {
    SignIn,
    GraphUsers { org: String },
    Pats { org: String, descriptor: String },
    Revocations { org: String },
    AuditLog { org: String },
    Unknown,
}

impl Route {
    fn parse(path: &str) -> Route {
        let mut segments: Vec<String> = path.split('/').skip(1).map(percent_decode).collect();
        if segments.len() > 1 && segments.last().is_some_and(String::is_empty) {
            segments.pop();
        }
        let lower: Vec<String> = segments.iter().map(|s| s.to_ascii_lowercase()).collect();
        let lower: Vec<&str> = lower.iter().map(String::as_str).collect();
        let mut owned = segments.into_iter();
        match lower.as_slice() {
            ["_signin"] => Route::SignIn,
            [_, "_apis", "graph", "users"] => Route::GraphUsers {
                org: owned.next().unwrap_or_default(),
            },
            [_, "_apis", "tokenadmin", "personalaccesstokens", _] => Route::Pats {
                org: owned.next().unwrap_or_default(),
                descriptor: owned.nth(3).unwrap_or_default(),
            },
            [_, "_apis", "tokenadmin", "revocations"] => Route::Revocations {
                org: owned.next().unwrap_or_default(),
            },
            [_, "_apis", "audit", "auditlog"] => Route::AuditLog {
                org: owned.next().unwrap_or_default(),
            },
            _ => Route::Unknown,
        }
    }
}

/// Decodes `%XX` escapes; malformed escapes stay as they are.
fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What the pipeline reads of a request.
struct Request<'a> {
    method: &'a Method,
    uri: &'a Uri,
    headers: &'a HeaderMap,
    body: &'a [u8],
}

/// Query parameters; names match ignoring case, as the service's do.
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(query: Option<&str>) -> Query {
        let pairs = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes());
        Query(pairs.into_owned().collect())
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn bad_request(kind: ExceptionType, message: &str) -> Reply {
    Reply::error(StatusCode::BAD_REQUEST, kind, message)
}

/// `isPublic`: absent or `false` means PATs, `true` SSH keys (any case); `None` for any other
/// value, which [`bad_is_public`] answers.
fn is_public(query: &Query) -> Option<bool> {
    match query
        .get("isPublic")
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("false") => Some(false),
        Some("true") => Some(true),
        Some(_) => None,
    }
}

fn bad_is_public() -> Reply {
    bad_request(
        ExceptionType::Argument,
        "The value of isPublic is not a valid boolean.\r\nParameter name: isPublic",
    )
}

fn now_epoch() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// A descriptor's shape: `<kind>.<base64url>`.
fn well_formed_descriptor(descriptor: &str) -> bool {
    descriptor.split_once('.').is_some_and(|(kind, id)| {
        (2..=8).contains(&kind.len())
            && kind.bytes().all(|b| b.is_ascii_alphanumeric())
            && !id.is_empty()
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'=')
    })
}

async fn handle(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response<Body> {
    if let Some(gate) = &state.gate
        && uri
            .path()
            .to_ascii_lowercase()
            .contains("/_apis/tokenadmin/")
    {
        gate.pass().await;
    }
    let seq = bump(&state.stats.requests_total);
    let faults = state.faults.config();
    if !faults.latency.is_zero() {
        tokio::time::sleep(faults.latency).await;
    }
    let activity = state.activity_id(seq);
    let request = Request {
        method: &method,
        uri: &uri,
        headers: &headers,
        body: &body,
    };
    let outcome = state.respond(seq, &request, &activity);
    if !outcome.hold.is_zero() {
        tokio::time::sleep(outcome.hold).await;
    }
    // Official clients send X-TFS-Session and expect it back.
    let session = headers
        .get("x-tfs-session")
        .and_then(|v| v.to_str().ok())
        .filter(|v| parse_guid(v).is_some())
        .unwrap_or(&activity);
    outcome
        .reply
        .header("activityid", &activity)
        .header("x-tfs-session", session)
        .header("x-vss-e2eid", &activity)
        .header("x-content-type-options", "nosniff")
        .into_response(faults.bom, outcome.api_version.as_deref())
}

impl AppState {
    fn new(mut org: Arc<SimOrg>, config: SimConfig) -> Self {
        let token_key = hash_bytes(0x70CE_2026 ^ config.faults.seed, org.name.as_bytes());
        // Revocation events go straight into the server's log, under ids of their own.
        let mut audit = org.audit.sibling(0x0005_E27E);
        if !org.audit.is_empty() {
            audit.append(&mut Arc::make_mut(&mut org).audit);
        }
        let index = Arc::new(Index::new(&org));
        AppState {
            live: RwLock::new(Live { org, index, audit }),
            audit_config: config.audit,
            auth: config.auth,
            paging: config.paging,
            gate: config.gate,
            faults: Faults::new(config.faults),
            revocations: Revocations::default(),
            revocation_batch_limit: config.revocation_batch_limit,
            stats: SimStats::default(),
            token_key,
        }
    }

    fn live(&self) -> std::sync::RwLockReadGuard<'_, Live> {
        self.live.read().unwrap_or_else(|p| p.into_inner())
    }

    fn live_mut(&self) -> std::sync::RwLockWriteGuard<'_, Live> {
        self.live.write().unwrap_or_else(|p| p.into_inner())
    }

    fn snapshot(&self) -> Snapshot {
        let live = self.live();
        Snapshot {
            org: Arc::clone(&live.org),
            index: Arc::clone(&live.index),
        }
    }

    fn activity_id(&self, seq: u64) -> String {
        let hi = mix64(self.token_key ^ seq);
        let lo = mix64(hi ^ seq.rotate_left(17));
        let v = (u128::from(hi) << 64) | u128::from(lo);
        guid_from_u128((v & !(0xF << 76)) | (0x4 << 76))
    }

    /// Runs the pipeline: route, method, organization, authentication, injected faults,
    /// `api-version`, then the handler.
    fn respond(&self, seq: u64, request: &Request<'_>, activity: &str) -> Outcome {
        let Request {
            method,
            uri,
            headers,
            body,
        } = *request;
        let stats = &self.stats;
        let path = uri.path();
        let route = Route::parse(path);
        let not_allowed = |allow: &'static str| {
            bump(&stats.method_not_allowed);
            let message =
                format!("The requested resource does not support http method '{method}'.");
            Reply::error(
                StatusCode::METHOD_NOT_ALLOWED,
                ExceptionType::Http,
                &message,
            )
            .header("allow", allow)
            .into()
        };
        let (org, api) = match &route {
            Route::Unknown => {
                bump(&stats.not_found);
                let message = format!(
                    "The controller for path '{path}' was not found or does not implement IController."
                );
                return Reply::error(StatusCode::NOT_FOUND, ExceptionType::Http, &message).into();
            }
            Route::Revocations { .. } if method != Method::POST => return not_allowed("POST"),
            Route::Revocations { org } => (org, Api::TokenAdmin),
            _ if method != Method::GET => return not_allowed("GET"),
            Route::SignIn => {
                bump(&stats.sign_in_requests);
                return auth::sign_in_page(StatusCode::OK).into();
            }
            Route::GraphUsers { org } => (org, Api::GraphUsers),
            Route::Pats { org, .. } => (org, Api::TokenAdmin),
            Route::AuditLog { org } => (org, Api::Audit),
        };
        let live = self.snapshot();
        if !org.eq_ignore_ascii_case(&live.org.name) {
            bump(&stats.not_found);
            let message = format!(
                "The organization '{org}' does not exist, or you do not have permission to access it."
            );
            return Reply::error(
                StatusCode::NOT_FOUND,
                ExceptionType::HostDoesNotExist,
                &message,
            )
            .into();
        }
        let query = Query::parse(uri.query());
        let revocation = matches!(route, Route::Revocations { .. });
        // Counted apart, so a test can tell that a scan asked for no SSH keys at all.
        let ssh_listing = matches!(route, Route::Pats { .. })
            && query
                .get("isPublic")
                .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        bump(match api {
            Api::GraphUsers => &stats.graph_user_requests,
            Api::TokenAdmin if revocation => &stats.revocation_requests,
            Api::TokenAdmin if ssh_listing => &stats.ssh_key_requests,
            Api::TokenAdmin => &stats.pat_requests,
            Api::Audit => &stats.audit_requests,
        });
        let path_and_query = uri.path_and_query().map_or(path, |pq| pq.as_str());
        if !auth::authenticate(&self.auth, headers) {
            bump(&stats.auth_failures);
            return auth::refusal(&self.auth, headers, path_and_query).into();
        }
        if api == Api::TokenAdmin && !self.auth.token_admin {
            bump(&stats.not_token_admin);
            return auth::not_token_admin().into();
        }
        if api == Api::Audit && self.audit_config.mode != AuditMode::Enabled {
            bump(&stats.audit_forbidden);
            return audit::forbidden(self.audit_config.mode).into();
        }
        // The documented limit meters each identity: here, each credential.
        let metered = self.faults.meter(
            headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or(""),
            match &route {
                Route::GraphUsers { .. } => TstuApi::Graph,
                Route::Revocations { .. } => TstuApi::Revocations,
                Route::AuditLog { .. } => TstuApi::Audit,
                _ => TstuApi::TokenAdmin,
            },
        );
        if let (Some(m), Some(limit)) = (&metered, &self.faults.config().tstu)
            && let Decision::Blocked { retry_after } = m.decision
        {
            bump(&stats.throttled_429);
            return faults::blocked(limit, m, retry_after).into();
        }
        let mut fault_key = path_and_query.to_ascii_lowercase();
        let configured = if revocation {
            // Every revocation POST has the same URL: the body tells one batch from another,
            // so a retried batch meets that batch's next attempt, not another batch's faults.
            fault_key.push_str(&format!("#{:016x}", hash_bytes(0x2E70_CA7E, body)));
            self.faults.revocation()
        } else {
            Ok(())
        };
        // The random faults hit every route, revocations included, as on the service; a
        // faulted revocation has no effect.
        let late = match configured.and_then(|()| self.faults.early(seq, &fault_key)) {
            Ok(late) => late,
            Err(Early::Throttle { retry_after_secs }) => {
                bump(&stats.throttled_429);
                let reset = now_epoch() + i64::try_from(retry_after_secs).unwrap_or(0);
                return faults::throttled(retry_after_secs, reset).into();
            }
            Err(Early::ServerError) => {
                bump(&stats.server_errors_500);
                return faults::server_error(activity).into();
            }
        };
        let accept = headers.get(ACCEPT).and_then(|v| v.to_str().ok());
        let version = match negotiate(api, method.as_str(), query.get("api-version"), accept) {
            Ok(v) => v,
            Err(e) => {
                bump(&stats.bad_requests);
                return bad_request(e.kind, &e.message).into();
            }
        };
        let reply = match &route {
            Route::Pats { descriptor, .. }
                if self
                    .faults
                    .config()
                    .hostile
                    .echo_authorization
                    .contains(descriptor) =>
            {
                let sent = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                bad_request(
                    ExceptionType::Argument,
                    &format!(
                        "The request could not be processed. Request headers: Authorization: {sent}"
                    ),
                )
            }
            Route::Pats { descriptor, .. } => {
                self.token_listing(&live, descriptor, &query, activity)
            }
            Route::Revocations { .. } => self.revoke(&live, &query, headers, body),
            Route::AuditLog { .. } => self.audit_log(&live, &query),
            _ => self.graph_users(&live, org, &query, headers),
        };
        let mut hold = Duration::ZERO;
        let reply = match reply.status {
            status if status.is_success() => {
                hold = late.hold;
                if late.throttled.is_some() {
                    bump(&stats.delayed_200);
                }
                let always = self.faults.config().rate_limit_headers;
                let reply = faults::rate_limit_headers(reply, &late, always);
                match (&metered, &self.faults.config().tstu) {
                    (Some(m), Some(limit)) => {
                        if matches!(m.decision, Decision::Delayed { .. }) {
                            bump(&stats.delayed_200);
                        }
                        let (reply, held) = faults::tstu_headers(reply, limit, m);
                        hold = hold.max(held);
                        reply
                    }
                    _ => reply,
                }
            }
            status => {
                bump(match status {
                    StatusCode::NOT_FOUND => &stats.not_found,
                    StatusCode::INTERNAL_SERVER_ERROR => &stats.server_errors_500,
                    _ => &stats.bad_requests,
                });
                reply
            }
        };
        Outcome {
            reply,
            api_version: Some(version),
            hold,
        }
    }

    /// `POST {org}/_apis/tokenadmin/revocations`: checks the body and, when it is good,
    /// revokes the org's PATs (or, with `isPublic=true`, SSH keys) it names; 204 without a
    /// body, as the service answers.
    fn revoke(&self, live: &Snapshot, query: &Query, headers: &HeaderMap, body: &[u8]) -> Reply {
        let Some(ssh_keys) = is_public(query) else {
            return bad_is_public();
        };
        if let Some(reply) = revocations::unsupported_media_type(headers) {
            return reply;
        }
        let ids = match revocations::parse_body(body, self.revocation_batch_limit) {
            Ok(ids) => ids,
            Err(message) => return bad_request(ExceptionType::Argument, &message),
        };
        let (org, index) = (&live.org, &live.index);
        let validity = |id: u128| {
            if ssh_keys {
                index
                    .ssh_keys
                    .get(&id)
                    .map(|&(u, k)| org.users[u].ssh_keys[k].is_valid)
            } else {
                index
                    .pats
                    .get(&id)
                    .map(|&(u, p)| org.users[u].pats[p].is_valid)
            }
        };
        let revoked = self.revocations.apply(ids, &validity);
        add(&self.stats.tokens_revoked, revoked.len());
        self.record_revocations(live, &revoked, ssh_keys, headers);
        Reply::empty(StatusCode::NO_CONTENT)
    }

    /// Writes a `Token.PatRevokeEvent` (or `Token.SshRevokeEvent`) for each token a
    /// revocation request turned invalid, with the simulator's token administrator as actor:
    /// with `DEMO_PAT`-style Basic credentials the mechanism names the admin's own PAT, with
    /// a bearer token it is `AAD`.
    fn record_revocations(
        &self,
        live: &Snapshot,
        revoked: &[u128],
        ssh_keys: bool,
        headers: &HeaderMap,
    ) {
        if revoked.is_empty() {
            return;
        }
        let bearer = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.len() > 7 && v[..7].eq_ignore_ascii_case("bearer "));
        let mechanism = if bearer {
            "AAD".to_string()
        } else {
            audit::pat_mechanism(DEMO_PAT_AUTHORIZATION_ID)
        };
        let agent = headers
            .get("user-agent")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let at = time::OffsetDateTime::now_utc();
        let actor = AuditActor::token_admin(&mechanism, agent);
        let mut log = self.live_mut();
        for id in revoked {
            let draft = if ssh_keys {
                live.index.ssh_keys.get(id).map(|&(u, k)| {
                    let key = &live.org.users[u].ssh_keys[k];
                    audit::ssh_revoke_event(key, actor.clone(), at)
                })
            } else {
                live.index.pats.get(id).map(|&(u, p)| {
                    let owner = &live.org.users[u];
                    audit::pat_event(PatAction::Revoke, &owner.pats[p], owner, actor.clone(), at)
                })
            };
            if let Some(draft) = draft {
                log.audit.record(draft);
            }
        }
    }

    /// `GET {org}/_apis/audit/auditlog`: the events of the window, newest first, in uneven
    /// pages; the continuation token is the id of a page's last entry.
    fn audit_log(&self, live: &Snapshot, query: &Query) -> Reply {
        let config = &self.audit_config;
        let parsed = match AuditQuery::parse(|name| query.get(name), config) {
            Ok(q) => q,
            Err((kind, message)) => return bad_request(kind, &message),
        };
        let scope = Scope::of(&live.org.name);
        let now = time::OffsetDateTime::now_utc();
        let (body, served) = {
            let log = self.live();
            audit::query_page(&log.audit, &parsed, now, config, &scope, self.token_key)
        };
        bump(&self.stats.audit_pages);
        add(&self.stats.audit_events_served, served);
        Reply::json(StatusCode::OK, body)
    }

    /// `GET {org}/_apis/graph/users`: uneven server-chosen pages, the token in
    /// `X-MS-ContinuationToken` only, absent on the last page.
    fn graph_users(&self, live: &Snapshot, org: &str, query: &Query, headers: &HeaderMap) -> Reply {
        let all = &live.org.users;
        let mask = subject_mask(query.get("subjectTypes"));
        let cursor = match query.get("continuationToken").filter(|t| !t.is_empty()) {
            None => GraphCursor {
                next_index: 0,
                page: 0,
                mask,
            },
            Some(token) => match decode_graph_token(self.token_key, token) {
                // A user removed mid-listing can leave a token past the end: it ends the
                // listing rather than failing it.
                Some(c) if c.mask == mask => GraphCursor {
                    next_index: c
                        .next_index
                        .min(u32::try_from(all.len()).unwrap_or(u32::MAX)),
                    ..c
                },
                Some(_) => {
                    return bad_request(
                        ExceptionType::Argument,
                        "The continuation token was issued for a different query; send the same \
                         subjectTypes as the request that returned it.\r\nParameter name: continuationToken",
                    );
                }
                None => {
                    return bad_request(
                        ExceptionType::Argument,
                        "The continuation token is not valid. Send the X-MS-ContinuationToken \
                         response header back unchanged, URL-encoded.\r\nParameter name: continuationToken",
                    );
                }
            },
        };
        let size = self.paging.graph_page_size(cursor.page);
        let (mut users, next, more) = graph_page(all, cursor.next_index as usize, size, mask);
        if self.faults.config().hostile.repeat_entries && cursor.page > 0 {
            // The previous page's last user, again.
            let (before, _, _) = graph_page(all, 0, cursor.next_index as usize, mask);
            if let Some(last) = before.last() {
                users.insert(0, last);
            }
        }
        // Links point back at this server, as the service's point at itself.
        let base = headers
            .get("host")
            .and_then(|h| h.to_str().ok())
            .map_or_else(
                || "https://vssps.dev.azure.com".to_string(),
                |h| format!("http://{h}"),
            );
        bump(&self.stats.user_pages);
        add(&self.stats.users_served, users.len());
        let reply = Reply::json(StatusCode::OK, wire::graph_users_page(&users, &base, org));
        if more {
            let next = GraphCursor {
                next_index: u32::try_from(next).unwrap_or(u32::MAX),
                page: cursor.page.wrapping_add(1),
                mask,
            };
            reply.header(
                "x-ms-continuationtoken",
                encode_graph_token(self.token_key, next),
            )
        } else {
            reply
        }
    }

    /// `GET {org}/_apis/tokenadmin/personalaccesstokens/{descriptor}`: client-sized pages,
    /// a GUID token in the body, one of four end markers on the last page. The user's PATs,
    /// or with `isPublic=true` the user's SSH keys, under the same rules and faults; a token
    /// is good only for the user and the listing that issued it.
    fn token_listing(
        &self,
        live: &Snapshot,
        descriptor: &str,
        query: &Query,
        activity: &str,
    ) -> Reply {
        if !well_formed_descriptor(descriptor) {
            return bad_request(
                ExceptionType::Argument,
                &format!(
                    "The subject descriptor '{descriptor}' is not valid.\r\nParameter name: subjectDescriptor"
                ),
            );
        }
        let Some(&position) = live.index.users.get(descriptor) else {
            return Reply::error(
                StatusCode::NOT_FOUND,
                ExceptionType::SubjectNotFound,
                &format!(
                    "No user with the subject descriptor '{descriptor}' exists in this organization."
                ),
            );
        };
        let max = self.paging.pat_max_page_size;
        let page_size = match query.get("pageSize").map(str::parse::<i64>) {
            None => self.paging.pat_default_page_size,
            Some(Ok(n)) if n >= 1 && n <= max as i64 => n as usize,
            Some(Ok(_)) => {
                return bad_request(
                    ExceptionType::ArgumentOutOfRange,
                    &format!(
                        "Specified argument was out of the range of valid values: pageSize must be \
                         between 1 and {max}.\r\nParameter name: pageSize"
                    ),
                );
            }
            Some(Err(_)) => {
                return bad_request(
                    ExceptionType::Argument,
                    "The value of pageSize is not a valid integer.\r\nParameter name: pageSize",
                );
            }
        };
        let Some(ssh_keys) = is_public(query) else {
            return bad_is_public();
        };
        let user = &live.org.users[position];
        let entries = if ssh_keys {
            Entries::SshKeys(&user.ssh_keys)
        } else {
            Entries::Pats(&user.pats)
        };
        let key = listing_key(self.token_key, ssh_keys);
        let cursor = match query.get("continuationToken").filter(|t| !t.is_empty()) {
            None => PatCursor {
                offset: 0,
                ordinal: 0,
            },
            Some(token) => match decode_pat_token(key, descriptor, token) {
                Some(c) if c.offset as usize <= entries.count() => c,
                _ => {
                    return bad_request(
                        ExceptionType::Argument,
                        "The continuation token is not valid for this subject descriptor.\r\n\
                         Parameter name: continuationToken",
                    );
                }
            },
        };
        if self.faults.fails_persistently(descriptor)
            || (ssh_keys && self.faults.ssh_keys_fail_persistently(descriptor))
        {
            return faults::server_error(activity);
        }
        // Users take turns with the four ways of saying "last page".
        let end = Continuation::End(PageEnd::ALL[position % PageEnd::ALL.len()]);
        let start = cursor.offset as usize;
        let size = pat_page_size(
            key,
            descriptor,
            cursor,
            page_size,
            self.paging.pat_uneven_pages,
        );
        let stop = (start + size).min(entries.count());
        let hostile = &self.faults.config().hostile;
        let endless = hostile.endless_descriptors.contains(descriptor);
        let continuation = if endless || stop < entries.count() {
            let next = PatCursor {
                // An endless listing serves its first page again and again, each time with a
                // token never seen before.
                offset: if endless {
                    0
                } else {
                    u32::try_from(stop).unwrap_or(u32::MAX)
                },
                ordinal: cursor.ordinal.wrapping_add(1),
            };
            Continuation::Next(encode_pat_token(key, descriptor, next))
        } else {
            end
        };
        let (pages, served) = if ssh_keys {
            (&self.stats.ssh_key_pages, &self.stats.ssh_keys_served)
        } else {
            (&self.stats.pat_pages, &self.stats.pats_served)
        };
        bump(pages);
        add(served, stop - start);
        let repeat = hostile.repeat_entries && start > 0;
        let first = if repeat { start - 1 } else { start };
        let mut body = {
            // Under the read lock: a revocation lands on a page entirely or not at all.
            let revoked = self.revocations.read();
            wire::token_page(entries.slice(first..stop), &continuation, &|id| {
                revoked.is_revoked(id)
            })
        };
        if hostile.lone_surrogate.contains(descriptor) {
            body = wire::with_lone_surrogate_names(&body);
        }
        let mut reply = Reply::json(StatusCode::OK, body);
        if self.faults.malformed(descriptor) {
            bump(&self.stats.malformed_bodies);
            reply.truncate = true;
        }
        reply
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_match_ignoring_case() {
        assert_eq!(
            Route::parse("/Fabrikam/_apis/Graph/Users"),
            Route::GraphUsers {
                org: "Fabrikam".into()
            }
        );
        assert_eq!(
            Route::parse("/fabrikam/_APIS/TokenAdmin/PersonalAccessTokens/msa.AbC%2D/"),
            Route::Pats {
                org: "fabrikam".into(),
                descriptor: "msa.AbC-".into()
            }
        );
        assert_eq!(
            Route::parse("/fabrikam/_apis/TokenAdmin/Revocations"),
            Route::Revocations {
                org: "fabrikam".into()
            }
        );
        assert_eq!(Route::parse("/_signin"), Route::SignIn);
        assert_eq!(Route::parse("/fabrikam/_apis/graph/groups"), Route::Unknown);
        assert_eq!(Route::parse("/"), Route::Unknown);
    }

    #[test]
    fn descriptor_shape_is_checked() {
        assert!(well_formed_descriptor(
            "aad.NjU5MDNmOTItNTNkYy03MWIzLWJiMGUtZTY5Y2ZhMWNiNzE5"
        ));
        assert!(!well_formed_descriptor("aad"));
        assert!(!well_formed_descriptor("aad."));
        assert!(!well_formed_descriptor("a a.x"));
        assert!(!well_formed_descriptor("aad.<script>"));
    }
}
