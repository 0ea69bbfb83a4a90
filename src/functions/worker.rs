//! The queue-triggered worker (`PatReportWorker`): one job = scan one organization, build the
//! report, upload its workbook, CSV and JSON, point `{org}/latest.json` at it, and keep the
//! run's status document current throughout.
//!
//! Retries. The answer tells the host whether the job is worth another delivery:
//! * 2xx: done — succeeded, failed for good (bad credential, unknown organization, a report
//!   that cannot be rendered), already finished earlier (a redelivery), or a message that is
//!   not a job at all (it never will be; it is logged and dropped, not retried);
//! * 500: a transient failure (Azure DevOps or storage unreachable, throttled, 5xx) on an
//!   attempt that is not the last: the run goes back to `queued` with the reason, the host
//!   makes the message visible again after `visibilityTimeout` and delivers it again. On the
//!   last attempt (`maxDequeueCount` in host.json = [`MAX_ATTEMPTS`]) the run is marked
//!   failed and the answer is 2xx, so nothing reaches the poison queue for a known failure.
//!
//! A worker that dies (crash, out of memory, function timeout) answers nothing; the host
//! retries it the same way and finally moves the message to the poison queue, where
//! `PatReportPoison` marks the run failed (`poison.rs`), so no run is left hanging.
//!
//! The same pipeline ([`run_in_process`]) runs on-behalf-of HTTP runs inside the handler
//! process, with the caller's credential instead of the app's: one attempt, no queue, so a
//! transient failure is final at once. Either way the status document carries a heartbeat
//! (`heartbeatAt`, at least every [`HEARTBEAT_EVERY`]) for as long as the process works on the
//! run, so a run whose process vanished shows up as stalled instead of `running` forever.

use super::job::JobMessage;
use super::protocol::{InvokeRequest, InvokeResponse, QueueMetadata, queue_item};
use super::state::AppState;
use crate::ado::{AdoClient, AdoCredential, AdoError, AdoSettings};
use crate::auth::AuthMode;
use crate::engine::{self, Progress, ScanError, ScanOptions};
use crate::report::{self, ReportOptions};
use crate::storage::sas::redact_sas;
use crate::storage::{
    Execution, LatestPointer, ReportBytes, ReportFiles, RunProgress, RunState, RunStatus, RunStore,
    RunSummary,
};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use time::OffsetDateTime;
use tokio::sync::watch;
use tracing::Instrument;

/// Deliveries of one job before the host gives up; must equal `maxDequeueCount` in host.json
/// (a test checks).
pub const MAX_ATTEMPTS: u32 = 3;
/// The worker's queue trigger binding name (`PatReportWorker/function.json`).
pub const TRIGGER_BINDING: &str = "job";
/// Status writes while scanning: at most this often...
const PROGRESS_EVERY: Duration = Duration::from_millis(500);
/// ...and at least this often, as a heartbeat (also while the report is written and uploaded).
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(30);

/// How an invocation ended, for the router.
#[derive(Debug)]
pub enum Outcome {
    /// Answer 2xx: the message is done with.
    Done(InvokeResponse),
    /// Answer 500: the host should deliver the message again.
    Retry(String),
}

/// Why a job did not produce a report.
struct Failure {
    message: String,
    transient: bool,
}

impl Failure {
    fn permanent(message: impl Into<String>) -> Self {
        Self {
            message: redact_sas(&message.into()),
            transient: false,
        }
    }
}

/// How one attempt at a run is made.
struct Attempt<'a> {
    credential: &'a AdoCredential,
    /// The credential mode, recorded in the status.
    auth: &'static str,
    number: u32,
    /// No other attempt follows (the queue's last delivery, or an in-process run): a
    /// transient failure is final.
    last: bool,
}

/// What a successful job made.
struct Made {
    files: ReportFiles,
    summary: RunSummary,
    progress: RunProgress,
    finished: OffsetDateTime,
}

/// Handle one queue-trigger invocation.
pub async fn handle(state: &AppState, invocation: &InvokeRequest) -> Outcome {
    let meta = QueueMetadata::from_invocation(invocation);
    let message_id = meta.id.clone().unwrap_or_else(|| "?".into());
    let mut out = InvokeResponse::default();
    let job = match queue_item(invocation, TRIGGER_BINDING)
        .map_err(|e| e.to_string())
        .and_then(|v| JobMessage::from_value(v).map_err(|e| e.to_string()))
    {
        Ok(job) => job,
        Err(problem) => {
            tracing::warn!(
                message_id,
                problem,
                "dropped a queue message that is not a job"
            );
            out.log(format!(
                "Dropped queue message {message_id}: {problem}. It is not retried."
            ));
            return Outcome::Done(out);
        }
    };
    let span = tracing::info_span!("run", run_id = %job.run_id, org = %job.org, attempt = meta.dequeue_count);
    let attempt = Attempt {
        credential: &state.credential,
        auth: state.config.auth.name(),
        number: meta.dequeue_count,
        last: meta.dequeue_count >= MAX_ATTEMPTS,
    };
    run_job(state, job, attempt, out).instrument(span).await
}

/// Run an on-behalf-of HTTP run in this process with the caller's `credential` (the worker's
/// pipeline, one attempt). The status document was recorded `queued` by the request; the
/// outcome is only logged here: the caller follows it through the status URL.
pub async fn run_in_process(state: &AppState, job: JobMessage, credential: AdoCredential) {
    let span =
        tracing::info_span!("run", run_id = %job.run_id, org = %job.org, execution = "in-process");
    let attempt = Attempt {
        credential: &credential,
        auth: AuthMode::OnBehalfOf.name(),
        number: 1,
        last: true,
    };
    match run_job(state, job, attempt, InvokeResponse::default())
        .instrument(span.clone())
        .await
    {
        Outcome::Done(out) => {
            for line in out.logs {
                tracing::info!(parent: &span, "{line}");
            }
        }
        // Only when the status could not be written: its heartbeat stops, so the status
        // endpoint reports the run as stalled.
        Outcome::Retry(reason) => {
            tracing::error!(parent: &span, reason, "the in-process run ended without a recorded result");
        }
    }
}

async fn run_job(
    state: &AppState,
    job: JobMessage,
    attempt: Attempt<'_>,
    mut out: InvokeResponse,
) -> Outcome {
    let last_attempt = attempt.last;
    let (runs, mut status) = match open_run(state, &job).await {
        Ok(opened) => opened,
        Err(retry) => return retry,
    };
    if status.state.is_final() {
        out.log(format!(
            "Run {} is already {}; nothing to do.",
            job.run_id,
            status.state.as_str()
        ));
        return Outcome::Done(out);
    }
    let started = OffsetDateTime::now_utc();
    status.state = RunState::Running;
    status.attempt = attempt.number;
    status.auth = Some(attempt.auth.to_owned());
    status.started_at = Some(started);
    status.updated_at = started;
    status.heartbeat_at = Some(started);
    status.progress = Some(RunProgress::default());
    status.error = None;
    if let Err(e) = runs.save_status(&status).await {
        return Outcome::Retry(format!("report storage: {e}"));
    }
    tracing::info!("scan started");

    let attempt_number = attempt.number;
    match make_report(state, runs, &job, &status, attempt.credential).await {
        Ok(made) => {
            let latest = LatestPointer {
                run_id: job.run_id.clone(),
                org: job.org.clone(),
                generated_at: made.finished,
                files: made.files.clone(),
                summary: made.summary.clone(),
            };
            // The report is already safe; a stale pointer only means `latest` lags one run.
            if let Err(e) = runs.save_latest(&latest).await {
                tracing::warn!(error = %e, "could not update latest.json");
                out.log(format!(
                    "Warning: {}/latest.json was not updated: {e}",
                    job.org.to_ascii_lowercase()
                ));
            }
            let now = OffsetDateTime::now_utc();
            status.state = RunState::Succeeded;
            status.finished_at = Some(now);
            status.updated_at = now;
            status.summary = Some(made.summary.clone());
            status.progress = Some(made.progress.clone());
            status.files = Some(made.files.clone());
            if let Err(e) = runs.save_status(&status).await {
                return Outcome::Retry(format!(
                    "the report was uploaded but its status could not be saved: {e}"
                ));
            }
            let s = &made.summary;
            let line = format!(
                "Run {} for {}: {} PATs of {} users ({} expired, {} expiring, {} full access){}; workbook {}.",
                job.run_id,
                job.org,
                s.pats,
                s.users_scanned,
                s.expired,
                s.expiring,
                s.full_access,
                if s.complete {
                    String::new()
                } else {
                    format!("; INCOMPLETE, {} users could not be read", s.users_failed)
                },
                made.files.xlsx
            );
            tracing::info!(
                pats = s.pats,
                users = s.users_scanned,
                complete = s.complete,
                "run succeeded"
            );
            out.log(line);
            Outcome::Done(out)
        }
        Err(failure) if failure.transient && !last_attempt => {
            let now = OffsetDateTime::now_utc();
            status.state = RunState::Queued;
            status.updated_at = now;
            status.error = Some(format!(
                "attempt {attempt_number} of {MAX_ATTEMPTS} failed and will be retried: {}",
                failure.message
            ));
            if let Err(e) = runs.save_status(&status).await {
                tracing::warn!(error = %e, "could not record the failed attempt");
            }
            tracing::warn!(reason = %failure.message, "attempt failed; the queue will retry");
            Outcome::Retry(failure.message)
        }
        Err(failure) => {
            let now = OffsetDateTime::now_utc();
            let message = match (failure.transient, status.execution) {
                (true, Execution::Queue) => {
                    format!(
                        "{} (gave up after {attempt_number} attempts)",
                        failure.message
                    )
                }
                (true, Execution::InProcess) => format!(
                    "{} (in-process runs are not retried: ask for a new report)",
                    failure.message
                ),
                (false, _) => failure.message,
            };
            status.state = RunState::Failed;
            status.finished_at = Some(now);
            status.updated_at = now;
            status.error = Some(message.clone());
            if let Err(e) = runs.save_status(&status).await {
                // Let the host retry, so the failure is recorded by a later attempt or by the
                // poison handler rather than lost.
                return Outcome::Retry(format!(
                    "the run failed ({message}) and its status could not be saved: {e}"
                ));
            }
            tracing::error!(reason = %message, "run failed");
            out.log(format!(
                "Run {} for {} failed: {message}",
                job.run_id, job.org
            ));
            Outcome::Done(out)
        }
    }
}

/// Scan, write and upload, while the status document gets progress and heartbeats.
async fn make_report(
    state: &AppState,
    runs: &RunStore,
    job: &JobMessage,
    status: &RunStatus,
    credential: &AdoCredential,
) -> Result<Made, Failure> {
    let progress = StatusProgress::default();
    let (stop, stopped) = watch::channel(false);
    let work = async {
        let made = produce(state, runs, job, credential, &progress).await;
        let _ = stop.send(true);
        made
    };
    let (made, ()) = tokio::join!(
        work,
        report_progress(runs, status.clone(), &progress, stopped)
    );
    made
}

async fn produce(
    state: &AppState,
    runs: &RunStore,
    job: &JobMessage,
    credential: &AdoCredential,
    progress: &StatusProgress,
) -> Result<Made, Failure> {
    let config = &state.config;
    // A job queued before the organization was removed from the settings is not run.
    if config.find_org(&job.org).is_none() {
        return Err(Failure::permanent(format!(
            "'{}' is no longer one of the configured organizations ({})",
            job.org,
            crate::config::ORGS
        )));
    }
    let client = AdoClient::new(
        AdoSettings::new(config.ado_url.clone(), job.org.clone()),
        credential.clone(),
    )
    .map_err(|e| Failure::permanent(format!("could not set up the Azure DevOps client: {e}")))?;
    let options = ScanOptions {
        concurrency: config.concurrency,
        time_budget: Some(config.time_budget),
    };

    let inventory = engine::scan(&client, &options, progress)
        .await
        .map_err(|e| {
            let transient = scan_error_is_transient(&e);
            Failure {
                message: redact_sas(&e.to_string()),
                transient,
            }
        })?;

    let now = OffsetDateTime::now_utc();
    let options = ReportOptions {
        expiring_days: config.expiring_days,
        include_invalid: false,
    };
    let report = report::build(inventory, now, options, env!("CARGO_PKG_VERSION"));
    let summary = RunSummary::of(&report);
    let finished = report.run.finished;
    let bytes = tokio::task::spawn_blocking(move || -> Result<ReportBytes, report::ReportError> {
        let xlsx = report::xlsx_bytes(&report)?;
        let mut csv = Vec::new();
        report::write_csv(&report, &mut csv)?;
        let mut json = Vec::new();
        report::write_json(&report, &mut json)?;
        Ok(ReportBytes { xlsx, csv, json })
    })
    .await
    .map_err(|e| Failure::permanent(format!("the report writer stopped unexpectedly: {e}")))?
    .map_err(|e| Failure::permanent(format!("could not write the report: {e}")))?;

    // Two reports of one organization finished within the same second must not overwrite
    // each other: the second gets the end of its run id appended.
    let mut files = ReportFiles::for_report(&job.org, finished, "");
    match runs.blobs().exists(&files.xlsx).await {
        Ok(false) => {}
        Ok(true) => {
            files = ReportFiles::for_report(
                &job.org,
                finished,
                &format!("-{}", &job.run_id[job.run_id.len() - 6..]),
            )
        }
        Err(e) => return Err(storage_failure(e)),
    }
    runs.upload_report(&files, bytes)
        .await
        .map_err(storage_failure)?;
    Ok(Made {
        files,
        summary,
        progress: progress.snapshot(),
        finished,
    })
}

fn storage_failure(e: crate::storage::StorageError) -> Failure {
    let transient = e.is_transient();
    Failure {
        message: format!("uploading the report failed: {e}"),
        transient,
    }
}

/// Whether a scan failure may go away by itself.
fn scan_error_is_transient(e: &ScanError) -> bool {
    match e {
        ScanError::OrgNotFound { .. } => false,
        ScanError::Users { source, .. } | ScanError::TokenAdmin { source, .. } => {
            ado_error_is_transient(source)
        }
    }
}

fn ado_error_is_transient(e: &AdoError) -> bool {
    match e {
        AdoError::Transport(_) => true,
        // A managed identity endpoint can hiccup; a PAT never produces this.
        AdoError::Credential(_) => true,
        AdoError::Service { status, .. } => *status == 408 || *status == 429 || *status >= 500,
        AdoError::Authentication { .. }
        | AdoError::Decode { .. }
        | AdoError::Paging(_)
        | AdoError::Config(_) => false,
    }
}

/// Progress counters the scan updates and the status writer reads.
#[derive(Default)]
struct StatusProgress {
    listed: AtomicUsize,
    scanned: AtomicUsize,
    failed: AtomicUsize,
    pats: AtomicUsize,
}

impl StatusProgress {
    fn snapshot(&self) -> RunProgress {
        RunProgress {
            users_listed: self.listed.load(Ordering::Relaxed),
            users_scanned: self.scanned.load(Ordering::Relaxed),
            users_failed: self.failed.load(Ordering::Relaxed),
            pats_found: self.pats.load(Ordering::Relaxed),
        }
    }
}

impl Progress for StatusProgress {
    fn users_listed(&self, listed: usize) {
        self.listed.store(listed, Ordering::Relaxed);
    }
    fn user_scanned(&self, pats: usize, failed: bool) {
        self.scanned.fetch_add(1, Ordering::Relaxed);
        self.pats.fetch_add(pats, Ordering::Relaxed);
        if failed {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Write the progress and the heartbeat into the status document until `stopped`: when the
/// progress changed, at most every [`PROGRESS_EVERY`]; at least every [`HEARTBEAT_EVERY`]. A
/// failed write is only logged; the run goes on.
async fn report_progress(
    runs: &RunStore,
    mut status: RunStatus,
    progress: &StatusProgress,
    mut stopped: watch::Receiver<bool>,
) {
    let mut last = progress.snapshot();
    let mut last_write = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(PROGRESS_EVERY) => {}
            _ = stopped.changed() => return,
        }
        if *stopped.borrow() {
            return;
        }
        let now = progress.snapshot();
        if now == last && last_write.elapsed() < HEARTBEAT_EVERY {
            continue;
        }
        status.progress = Some(now.clone());
        status.updated_at = OffsetDateTime::now_utc();
        status.heartbeat_at = Some(status.updated_at);
        if let Err(e) = runs.save_status(&status).await {
            tracing::warn!(error = %e, "could not write progress");
        }
        last = now;
        last_write = tokio::time::Instant::now();
    }
}

/// The report storage and the job's run record. A job whose run was never recorded (the timer
/// records runs on a best-effort basis) starts from a fresh `queued` record. A storage failure
/// is worth a retry.
pub(super) async fn open_run<'a>(
    state: &'a AppState,
    job: &JobMessage,
) -> Result<(&'a RunStore, RunStatus), Outcome> {
    let retry = |e: crate::storage::StorageError| Outcome::Retry(format!("report storage: {e}"));
    let runs = state.runs().await.map_err(retry)?;
    let status = runs.load_status(&job.run_id).await.map_err(retry)?;
    let status = status.unwrap_or_else(|| {
        RunStatus::queued(
            &job.run_id,
            &job.org,
            job.source,
            job.requested_by.clone(),
            job.requested_at,
        )
    });
    Ok((runs, status))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_failures_that_can_pass_are_retried() {
        assert!(ado_error_is_transient(&AdoError::Transport(
            "refused".into()
        )));
        assert!(ado_error_is_transient(&AdoError::Service {
            status: 503,
            type_key: None,
            message: String::new()
        }));
        assert!(ado_error_is_transient(&AdoError::Service {
            status: 429,
            type_key: None,
            message: String::new()
        }));
        assert!(!ado_error_is_transient(&AdoError::Service {
            status: 400,
            type_key: None,
            message: String::new()
        }));
        assert!(!ado_error_is_transient(&AdoError::Authentication {
            status: 401,
            detail: String::new(),
            hint: ""
        }));
        assert!(!scan_error_is_transient(&ScanError::OrgNotFound {
            org: "x".into(),
            url: "u".into()
        }));
    }

    #[test]
    fn max_attempts_matches_host_json() {
        let host: serde_json::Value =
            serde_json::from_str(include_str!("../../host.json")).expect("host.json is JSON");
        assert_eq!(
            host["extensions"]["queues"]["maxDequeueCount"],
            MAX_ATTEMPTS
        );
    }
}
