//! `POST /api/PatReport/revoke`: revocation over HTTP, dry run first. It exists only when
//! `PATREPORT_REVOKE_ROLES` names roles, and answers only callers holding one of them.
//!
//! 1. `{"org": …, "ids": […]}` (and/or the filters of `patreport revoke`): the tokens are
//!    chosen from the organization's newest report, checked against fresh listings, and the
//!    answer is the plan, what would become of each token, and a confirmation id valid for
//!    five minutes, bound to this plan and this caller. Nothing is revoked.
//! 2. `{"confirm": "<id>"}` from the same caller within those five minutes revokes what is
//!    still valid. The id works once, on any instance: the pending plan is a blob, and using
//!    it writes a second blob that can only be created once.
//!
//! Every step leaves an audit record in the report container (`revocations/{org}/…`).

use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::endpoints::resolve_org;
use super::reply::ApiReply;
use super::state::AppState;
use crate::ado::{AdoClient, AdoSettings};
use crate::callers::Caller;
use crate::domain::timestamp::{rfc3339, stamp};
use crate::findings::{Rule, Severity};
use crate::report::{Format, TokenStatus, read_json};
use crate::revoke::{self, AuditRecord, BATCH_LIMIT, Mode, RevokePlan, RevokeResult, Selection};
use crate::storage::{BlobHeaders, RunStore};

/// How long a plan waits for its confirmation.
const CONFIRM_WITHIN: time::Duration = time::Duration::minutes(5);

/// The request body.
#[derive(Debug, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Request {
    org: Option<String>,
    ids: Vec<String>,
    owners: Vec<String>,
    statuses: Vec<TokenStatus>,
    full_access: bool,
    global: bool,
    findings: Vec<String>,
    severity: Option<Severity>,
    expiring_within_days: Option<u32>,
    confirm: Option<String>,
}

/// A plan waiting for its confirmation, as stored.
#[derive(Debug, serde::Serialize, Deserialize)]
struct Pending {
    plan: RevokePlan,
    /// What the check found valid: the only ids the confirmation may send.
    confirmed: Vec<String>,
    caller_id: String,
    caller: String,
    #[serde(with = "crate::domain::timestamp::serde")]
    expires_at: OffsetDateTime,
}

pub async fn handle(state: &AppState, caller: &Caller, body: &[u8]) -> ApiReply {
    let request: Request = match serde_json::from_slice(body) {
        Ok(request) => request,
        Err(e) => return ApiReply::bad_request(format!("the body is not a revoke request: {e}")),
    };
    let runs = match state.runs().await {
        Ok(runs) => runs,
        Err(e) => return ApiReply::storage_unavailable(e.to_string()),
    };
    match request.confirm.clone() {
        Some(id) => confirm(state, runs, caller, &id, request).await,
        None => propose(state, runs, caller, request).await,
    }
}

/// Step 1: the plan, checked, and a confirmation id.
async fn propose(state: &AppState, runs: &RunStore, caller: &Caller, request: Request) -> ApiReply {
    let org = match resolve_org(state, request.org.as_deref()) {
        Ok(org) => org,
        Err(reply) => return reply,
    };
    let mut findings = Vec::new();
    for code in &request.findings {
        match Rule::from_code(code) {
            Some(rule) => findings.push(rule),
            None => return ApiReply::bad_request(format!("'{code}' is not a finding code")),
        }
    }
    let selection = Selection {
        ids: request.ids,
        owners: request.owners,
        statuses: request.statuses,
        full_access: request.full_access,
        global: request.global,
        findings,
        min_severity: request.severity,
        expiring_within_days: request.expiring_within_days,
    };
    if let Err(e) = selection.check(false) {
        return ApiReply::bad_request(e.to_string());
    }
    let latest = match runs.load_latest(&org).await {
        Ok(Some(latest)) => latest,
        Ok(None) => {
            return ApiReply::not_found(format!("there is no report of '{org}' to choose from"));
        }
        Err(e) => return ApiReply::storage_unavailable(e.to_string()),
    };
    let Some(blob) = latest.files.get(&Format::Json) else {
        return ApiReply::not_found(format!("the newest report of '{org}' has no JSON"));
    };
    // Copied to a temporary file a chunk at a time (a report's JSON may be 100 MB), then read.
    let scratch = match tempfile::NamedTempFile::new() {
        Ok(file) => file,
        Err(e) => return internal(format!("no temporary file for the report: {e}")),
    };
    match runs.blobs().get_to_file(blob, scratch.path()).await {
        Ok(true) => {}
        Ok(false) => return ApiReply::not_found(format!("the report {blob} is no longer stored")),
        Err(e) => return ApiReply::storage_unavailable(e.to_string()),
    }
    let read = std::fs::File::open(scratch.path())
        .map_err(|e| e.to_string())
        .and_then(|f| read_json(std::io::BufReader::new(f)).map_err(|e| e.to_string()));
    let report = match read {
        Ok(report) => report,
        Err(e) => return internal(format!("the report {blob} cannot be read: {e}")),
    };
    let now = OffsetDateTime::now_utc();
    let plan = revoke::plan(&report, blob, &selection, now);
    drop(report);
    let client = match client(state, &org) {
        Ok(client) => client,
        Err(reply) => return reply,
    };
    let checked = revoke::execute(&client, &plan, Mode::DryRun, BATCH_LIMIT, None).await;
    let confirmed: Vec<String> = checked.would_revoke().into_iter().collect();
    // The id names the audit record too, so even a plan with nothing to revoke has one.
    let confirmation = match random_id() {
        Ok(id) => id,
        Err(reply) => return reply,
    };
    let mut body = json!({
        "org": plan.org,
        "sourceReport": plan.source_report,
        "selection": plan.selection,
        "tokens": outcomes(&checked),
        "counts": checked.counts(),
    });
    // The five minutes start once the check is done, not before it.
    let now = OffsetDateTime::now_utc();
    if confirmed.is_empty() {
        body["next"] = Value::from("nothing to revoke: no confirmation is needed");
    } else {
        let pending = Pending {
            confirmed,
            plan: plan.clone(),
            caller_id: caller.id.clone(),
            caller: caller.describe(),
            expires_at: now + CONFIRM_WITHIN,
        };
        // Create-only: a confirmation names one plan, never a replaced one.
        if let Err(reply) = store(runs, &pending_blob(&confirmation), &pending).await {
            return reply;
        }
        body["confirmation"] = Value::from(confirmation.as_str());
        body["expiresAt"] = Value::from(rfc3339(pending.expires_at));
        body["next"] = Value::from(
            "POST the same endpoint with {\"confirm\": \"<confirmation>\"} to revoke what would be revoked",
        );
    }
    let record = AuditRecord::outcome(
        &plan,
        &checked,
        Mode::DryRun,
        &caller.describe(),
        Some(&confirmation),
        now,
    );
    if let Err(reply) = audit(runs, &record, &confirmation).await {
        return reply;
    }
    ApiReply::new(axum::http::StatusCode::OK, body)
}

/// Step 2: the confirmed plan, revoked.
async fn confirm(
    state: &AppState,
    runs: &RunStore,
    caller: &Caller,
    id: &str,
    request: Request,
) -> ApiReply {
    let only_confirm = Request {
        confirm: request.confirm.clone(),
        ..Request::default()
    };
    if request != only_confirm {
        return ApiReply::bad_request(
            "a confirmation takes the plan it was given for, nothing else",
        );
    }
    if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return ApiReply::bad_request("not a confirmation id");
    }
    let pending: Pending = match runs.blobs().get(&pending_blob(id)).await {
        Ok(Some(bytes)) => match serde_json::from_slice(&bytes) {
            Ok(pending) => pending,
            Err(e) => {
                return internal(format!("the pending plan cannot be read: {e}"));
            }
        },
        Ok(None) => return ApiReply::not_found("no plan waits for this confirmation"),
        Err(e) => return ApiReply::storage_unavailable(e.to_string()),
    };
    let now = OffsetDateTime::now_utc();
    if pending.caller_id != caller.id {
        return ApiReply::error(
            axum::http::StatusCode::FORBIDDEN,
            "forbidden",
            "this confirmation belongs to the caller who asked for the plan",
        );
    }
    if now > pending.expires_at {
        return ApiReply::error(
            axum::http::StatusCode::GONE,
            "expired",
            "the confirmation expired: ask for the plan again",
        );
    }
    // Everything that can fail before sending is done before the confirmation is used.
    let plan = pending.plan;
    let confirmed: std::collections::HashSet<String> = pending.confirmed.into_iter().collect();
    let org = match resolve_org(state, Some(&plan.org)) {
        Ok(org) => org,
        Err(reply) => return reply,
    };
    let client = match client(state, &org) {
        Ok(client) => client,
        Err(reply) => return reply,
    };
    // Used once: the marker can be created only once, whatever instance tries. It holds this
    // request's own value, so a create whose answer was lost (and was retried into a 409) is
    // recognized as ours.
    let marker = format!("{}.used", pending_blob(id));
    let ours = match random_id() {
        Ok(nonce) => format!("{nonce} {}", caller.describe()),
        Err(reply) => return reply,
    };
    match runs
        .blobs()
        .put_new(&marker, ours.clone().into_bytes(), &json_headers())
        .await
    {
        Ok(()) => {}
        Err(e) if matches!(e.status(), Some(409 | 412)) => {
            let mine = matches!(runs.blobs().get(&marker).await, Ok(Some(bytes)) if bytes == ours.as_bytes());
            if !mine {
                return ApiReply::error(
                    axum::http::StatusCode::CONFLICT,
                    "used",
                    format!(
                        "this confirmation was used already: its outcome is in the audit \
                         records (revocations/{org}/ in the report container)"
                    ),
                );
            }
        }
        Err(e) => return ApiReply::storage_unavailable(e.to_string()),
    }
    let intent = AuditRecord::intent(
        &plan,
        &caller.describe(),
        Some(id),
        OffsetDateTime::now_utc(),
    );
    if audit(runs, &intent, id).await.is_err() {
        // Nothing is sent without its intent on record; the confirmation is used up, though.
        tracing::warn!(
            confirmation = id,
            "no intent record: nothing revoked, confirmation used"
        );
        return internal(
            "the intent could not be recorded, so nothing was revoked; this confirmation is used \
             up: ask for a new plan",
        );
    }
    let result = revoke::execute(&client, &plan, Mode::Revoke, BATCH_LIMIT, Some(&confirmed)).await;
    let done = AuditRecord::outcome(
        &plan,
        &result,
        Mode::Revoke,
        &caller.describe(),
        Some(id),
        OffsetDateTime::now_utc(),
    );
    let recorded = audit(runs, &done, id).await;
    let mut body = json!({
        "org": plan.org,
        "tokens": outcomes(&result),
        "counts": result.counts(),
        "complete": result.failed() == 0,
    });
    if recorded.is_err() {
        body["warning"] = Value::from("the outcome could not be added to the audit records");
    }
    ApiReply::new(axum::http::StatusCode::OK, body)
}

fn client(state: &AppState, org: &crate::domain::OrgName) -> Result<AdoClient, ApiReply> {
    let mut settings = AdoSettings::new(state.settings.scan.ado_url.clone(), org.clone());
    settings.request_timeout = state.settings.scan.request_timeout;
    settings.max_retries = state.settings.scan.max_retries;
    AdoClient::new(settings, state.credential.clone()).map_err(|e| internal(e.to_string()))
}

fn outcomes(result: &RevokeResult) -> Vec<Value> {
    result
        .tokens
        .iter()
        .map(|(t, outcome)| {
            json!({
                "authorizationId": t.authorization_id,
                "owner": t.owner_principal_name,
                "patName": t.pat_name,
                "outcome": outcome.name(),
                "detail": match outcome {
                    revoke::Outcome::NotChecked(d) | revoke::Outcome::Failed(d) | revoke::Outcome::NotSent(d) => Some(d.as_str()),
                    _ => None,
                },
            })
        })
        .collect()
}

/// 128 random bits from the operating system, as 32 hex digits: a confirmation id. Without
/// the system's randomness there is no confirmation (a guessable one would be worse).
fn random_id() -> Result<String, ApiReply> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)
        .map_err(|e| internal(format!("no randomness for a confirmation: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn internal(message: impl Into<String>) -> ApiReply {
    ApiReply::error(
        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        message,
    )
}

fn pending_blob(id: &str) -> String {
    format!("revocations/pending/{id}.json")
}

fn json_headers() -> BlobHeaders {
    BlobHeaders {
        content_type: "application/json".into(),
        content_disposition: None,
        cache_control: Some("no-cache".into()),
    }
}

/// Write `value` as a new blob: pending plans and audit records are never replaced.
async fn store<T: serde::Serialize>(
    runs: &RunStore,
    blob: &str,
    value: &T,
) -> Result<(), ApiReply> {
    let bytes = serde_json::to_vec_pretty(value)
        .map_err(|e| ApiReply::storage_unavailable(e.to_string()))?;
    runs.blobs()
        .put_new(blob, bytes, &json_headers())
        .await
        .map_err(|e| ApiReply::storage_unavailable(e.to_string()))
}

/// One audit record, as a blob of its own (blobs cannot be appended to safely by several
/// instances at once): `revocations/{org}/{time}-{mode}-{confirmation}.json`.
async fn audit(runs: &RunStore, record: &AuditRecord, confirmation: &str) -> Result<(), ApiReply> {
    let name = format!(
        "revocations/{}/{}-{}-{confirmation}.json",
        record.org.to_ascii_lowercase(),
        stamp(record.at),
        record.mode
    );
    store(runs, &name, record).await
}
