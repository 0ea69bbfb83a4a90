//! The queue-triggered worker (`PatReportWorker`): one job = one run of the report pipeline
//! for one organization, its outputs uploaded, `{org}/latest.json` pointed at them, and the
//! run's status document moved through its life (`lifecycle`) throughout.
//!
//! Retries. The answer tells the host whether the job is worth another delivery:
//! * 2xx: done — succeeded, failed for good (bad credential, unknown organization, a report
//!   that cannot be rendered), already finished earlier (a redelivery), or a message that is
//!   not a job at all (it never will be; it is logged and dropped, not retried);
//! * 500: a transient failure (Azure DevOps or storage unreachable, throttled, 5xx; each layer
//!   says which of its errors are) on an attempt that is not the last: the run goes back to
//!   `queued` with the reason, the host makes the message visible again after
//!   `visibilityTimeout` and delivers it again. On the last attempt (`maxDequeueCount` in
//!   host.json = [`MAX_ATTEMPTS`]) the run is marked failed and the answer is 2xx, so nothing
//!   reaches the poison queue for a known failure.
//!
//! A worker that dies (crash, out of memory, function timeout) answers nothing; the host
//! retries it the same way and finally moves the message to the poison queue, where
//! `PatReportPoison` marks the run failed (`poison.rs`), so no run is left hanging.
//!
//! The same code ([`run_in_process`]) runs on-behalf-of HTTP runs inside the handler process,
//! with the caller's credential instead of the app's: one attempt, no queue, so a transient
//! failure is final at once. Either way the status document carries a heartbeat (at least every
//! [`HEARTBEAT_EVERY`]) for as long as the process works on the run, so a run whose process
//! vanished shows up as stalled instead of `running` forever.

use super::job::JobMessage;
use super::protocol::{InvokeRequest, InvokeResponse, QueueMetadata, queue_item};
use super::state::AppState;
use crate::ado::AdoCredential;
use crate::credentials::AuthMode;
use crate::engine::Progress;
use crate::lifecycle::RunSource;
use crate::lifecycle::{
    Execution, HEARTBEAT_EVERY, LatestPointer, MAX_ATTEMPTS, ReportFiles, RunProgress, RunResult,
    RunStatus, RunSummary,
};
use crate::pipeline::{self, Observer, Produced, Stage};
use crate::report::Format;
use crate::storage::{BlobSink, RunStore, StorageError};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use time::OffsetDateTime;
use tokio::sync::watch;
use tracing::Instrument;

/// The worker's queue trigger binding name (`PatReportWorker/function.json`).
pub const TRIGGER_BINDING: &str = "job";
/// Status writes while scanning: at most this often (and at least every [`HEARTBEAT_EVERY`]).
const PROGRESS_EVERY: Duration = Duration::from_millis(500);

/// How an invocation ended, for the router.
#[derive(Debug)]
pub enum Outcome {
    /// Answer 2xx: the message is done with.
    Done(InvokeResponse),
    /// Answer 500: the host should deliver the message again.
    Retry(String),
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

/// Handle one queue-trigger invocation.
pub async fn handle(state: &AppState, invocation: &InvokeRequest) -> Outcome {
    let meta = QueueMetadata::from_invocation(invocation);
    let message_id = meta.id.clone().unwrap_or_else(|| "?".into());
    let out = InvokeResponse::default();
    let job = match read_job(invocation) {
        Ok(job) => job,
        Err(problem) => {
            tracing::warn!(
                message_id,
                problem,
                "dropped a queue message that is not a job"
            );
            let mut out = out;
            out.log(format!(
                "Dropped queue message {message_id}: {problem}. It is not retried."
            ));
            return Outcome::Done(out);
        }
    };
    let span = tracing::info_span!("run", run_id = %job.run_id, org = %job.org, attempt = meta.dequeue_count);
    let attempt = Attempt {
        credential: &state.credential,
        auth: state.settings.auth.name(),
        number: meta.dequeue_count,
        last: meta.dequeue_count >= MAX_ATTEMPTS,
    };
    run_job(state, job, attempt, out).instrument(span).await
}

/// The job in a queue invocation, or why there is none.
pub(super) fn read_job(invocation: &InvokeRequest) -> Result<JobMessage, String> {
    queue_item(invocation, TRIGGER_BINDING)
        .map_err(|e| e.to_string())
        .and_then(|v| JobMessage::from_value(v).map_err(|e| e.to_string()))
}

/// Run an on-behalf-of HTTP run in this process with the caller's `credential` (the worker's
/// code, one attempt). The status document was recorded `queued` by the request; the outcome
/// is only logged here: the caller follows it through the status URL.
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
    let (runs, mut status) = match open_run(state, &job).await {
        Ok(opened) => opened,
        Err(retry) => return retry,
    };
    if status.state().is_final() {
        out.log(format!(
            "Run {} is already {}; nothing to do.",
            job.run_id,
            status.state().as_str()
        ));
        return Outcome::Done(out);
    }
    if let Err(refused) = status.start(attempt.number, attempt.auth, OffsetDateTime::now_utc()) {
        // A delivery older than the one that already runs (or ran) this job.
        out.log(format!("Delivery ignored: {refused}."));
        return Outcome::Done(out);
    }
    if let Err(e) = runs.save_status(&status).await {
        return Outcome::Retry(format!("report storage: {e}"));
    }
    tracing::info!("scan started");

    let on_behalf_of = attempt.auth == AuthMode::OnBehalfOf.name();
    let made = make_report(state, runs, &job, &status, attempt.credential, on_behalf_of).await;
    let now = OffsetDateTime::now_utc();
    match made {
        Ok((produced, progress)) => {
            let changes = produced
                .changes
                .as_ref()
                .filter(|c| c.previous.is_some())
                .map(|c| c.counts);
            let mut summary =
                RunSummary::from_parts(produced.run.complete, &produced.summary, changes);
            summary.refresh = produced.run.refresh.clone();
            let files: ReportFiles = produced
                .outputs
                .iter()
                .map(|o| (o.format, o.location.clone()))
                .collect();
            let latest = LatestPointer {
                run_id: job.run_id.clone(),
                org: job.org.clone(),
                generated_at: produced.run.finished,
                files: files.clone(),
                summary: summary.clone(),
            };
            // The report is already safe; a stale pointer only means `latest` lags one run.
            if let Err(e) = runs.save_latest(&latest).await {
                tracing::warn!(error = %e, "could not update latest.json");
                out.log(format!(
                    "Warning: {}/latest.json was not updated: {e}",
                    job.org.key()
                ));
            }
            let result = RunResult {
                summary: summary.clone(),
                progress,
                files: files.clone(),
                notifications: Vec::new(),
            };
            if let Err(refused) = status.succeed(result, now) {
                tracing::error!(%refused, "the run could not be marked succeeded");
            }
            if let Err(e) = runs.save_status(&status).await {
                return Outcome::Retry(format!(
                    "the report was uploaded but its status could not be saved: {e}"
                ));
            }
            // Told only once the run is recorded as succeeded, so a retried delivery of the
            // job finds it done and tells no one twice.
            if job.source == RunSource::Timer && !state.settings.notify.is_empty() {
                let outcomes = notify(state, runs, &produced, &files).await;
                for o in outcomes.iter().filter(|o| !o.delivered) {
                    out.log(format!(
                        "Warning: the {} was not notified: {}",
                        o.target,
                        o.error.as_deref().unwrap_or("no reason recorded")
                    ));
                }
                status.record_notifications(outcomes, OffsetDateTime::now_utc());
                if let Err(e) = runs.save_status(&status).await {
                    tracing::warn!(error = %e, "the notifications' outcome was not recorded");
                }
            }
            let s = &summary;
            let line = format!(
                "Run {} for {}: {} PATs of the {} users read of {} listed ({} expired, {} expiring, {} full access){}; files {}.",
                job.run_id,
                job.org,
                s.pats,
                s.users_read,
                s.users_listed,
                s.expired,
                s.expiring,
                s.full_access,
                if s.complete {
                    String::new()
                } else {
                    format!("; INCOMPLETE, {} users could not be read", s.users_failed)
                },
                files.values().cloned().collect::<Vec<_>>().join(", ")
            );
            tracing::info!(
                pats = s.pats,
                users_listed = s.users_listed,
                users_read = s.users_read,
                complete = s.complete,
                "run succeeded"
            );
            out.log(line);
            Outcome::Done(out)
        }
        Err(failure) if failure.transient && !attempt.last => {
            let reason = format!(
                "attempt {} of {MAX_ATTEMPTS} failed and will be retried: {}",
                attempt.number, failure.message
            );
            if let Err(refused) = status.requeue(reason, now) {
                tracing::error!(%refused, "the run could not go back to the queue");
            }
            if let Err(e) = runs.save_status(&status).await {
                tracing::warn!(error = %e, "could not record the failed attempt");
            }
            tracing::warn!(reason = %failure.message, "attempt failed; the queue will retry");
            Outcome::Retry(failure.message)
        }
        Err(failure) => {
            let message = match (failure.transient, status.execution) {
                (true, Execution::Queue) => {
                    format!(
                        "{} (gave up after {} attempts)",
                        failure.message, attempt.number
                    )
                }
                (true, Execution::InProcess) => format!(
                    "{} (in-process runs are not retried: ask for a new report)",
                    failure.message
                ),
                (false, _) => failure.message,
            };
            if let Err(refused) = status.fail(message.clone(), now) {
                tracing::error!(%refused, "the run could not be marked failed");
            }
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

/// Why a job did not produce a report.
struct Failure {
    message: String,
    transient: bool,
}

/// Tell the configured webhooks of a scheduled report, with a read-only link to its page (the
/// HTML report; the workbook when there is none) that lives `PATREPORT_SAS_MINUTES`. Never
/// fails the run: the outcomes go into its status.
async fn notify(
    state: &AppState,
    runs: &RunStore,
    produced: &Produced,
    files: &ReportFiles,
) -> Vec<crate::notify::Outcome> {
    let settings = &state.settings;
    let blob = files
        .get(&Format::Html)
        .or_else(|| files.get(&Format::Xlsx));
    let link = match blob {
        Some(blob) => runs
            .link(blob, settings.sas_lifetime)
            .await
            .map(|link| link.url)
            .map_err(|e| tracing::warn!(error = %e, "no link for the notification"))
            .ok(),
        None => None,
    };
    let mut notice = produced.notice.clone();
    notice.link = link;
    crate::notify::deliver(
        &crate::notify::http_client(),
        &settings.notify,
        &notice,
        &crate::notify::RetryPolicy::default(),
    )
    .await
}

/// The pipeline with the service's plan for this job, uploading to the report container,
/// while the status document gets progress and heartbeats.
async fn make_report(
    state: &AppState,
    runs: &RunStore,
    job: &JobMessage,
    status: &RunStatus,
    credential: &AdoCredential,
    on_behalf_of: bool,
) -> Result<(Produced, RunProgress), Failure> {
    // A job queued before the organization was removed from the settings is not run.
    let Some(org) = state.settings.find_org(job.org.as_str()) else {
        return Err(Failure {
            message: format!(
                "'{}' is no longer one of the configured organizations ({})",
                job.org,
                crate::settings::names::ORGS
            ),
            transient: false,
        });
    };
    let mut plan = state.settings.report_plan(org.clone());
    if on_behalf_of {
        // The caller's rights are not the service's: a state made with the service's
        // credential must not hand the caller tokens it could not list itself, and the
        // caller's view must not become the state the service refreshes from.
        plan.refresh.incremental = false;
    }
    let progress = StatusProgress::default();
    let sink = BlobSink::new(runs, job.run_id.clone());
    let (stop, stopped) = watch::channel(false);
    let work = async {
        let made = pipeline::run(&plan, credential.clone(), &progress, &sink).await;
        let _ = stop.send(true);
        made
    };
    let (made, ()) = tokio::join!(
        work,
        report_progress(runs, status.clone(), &progress, stopped)
    );
    made.map(|produced| (produced, progress.snapshot()))
        .map_err(|e| Failure {
            message: crate::scrub::scrub_shapes(&e.to_string()),
            transient: e.is_transient(),
        })
}

/// Progress counters the scan updates and the status writer reads.
#[derive(Default)]
struct StatusProgress {
    listed: AtomicUsize,
    scanned: AtomicUsize,
    failed: AtomicUsize,
    pats: AtomicUsize,
    /// Read for the throttling figures once the scan has started.
    client: std::sync::OnceLock<crate::ado::AdoClient>,
}

impl StatusProgress {
    fn snapshot(&self) -> RunProgress {
        let pacing = self.client.get().map(|c| c.pacing());
        let limited = pacing.as_ref().filter(|p| p.tstu_limit.is_some());
        RunProgress {
            tstu_per_call: limited
                .and_then(|p| p.mean_tstu_per_call())
                .map(crate::lifecycle::Figure),
            tstu_consumed: limited.map(|p| crate::lifecycle::Figure(p.tstu_consumed)),
            rate_limit_delay_seconds: pacing.as_ref().map_or(0, |p| p.delayed.as_secs()),
            lowest_remaining: limited
                .and_then(|p| p.lowest_remaining)
                .map(crate::lifecycle::Figure),
            users_listed: self.listed.load(Ordering::Relaxed),
            users_scanned: self.scanned.load(Ordering::Relaxed),
            users_read: self
                .scanned
                .load(Ordering::Relaxed)
                .saturating_sub(self.failed.load(Ordering::Relaxed)),
            users_failed: self.failed.load(Ordering::Relaxed),
            pats_found: self.pats.load(Ordering::Relaxed),
            throttled: pacing.as_ref().map_or(0, |p| p.throttled),
            throttle_wait_seconds: pacing.as_ref().map_or(0, |p| p.throttle_wait.as_secs()),
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

impl Observer for StatusProgress {
    fn stage(&self, stage: Stage<'_>) {
        match stage {
            Stage::Scanning(client) => {
                let _ = self.client.set(client.clone());
                tracing::debug!("scanning");
            }
            Stage::Writing => tracing::info!("scan finished; writing the report"),
            Stage::Delivering => tracing::info!("uploading the report"),
        }
    }
}

/// Write the progress and the heartbeat into the status document until `stopped`: when the
/// progress changed, at most every [`PROGRESS_EVERY`]; at least every [`HEARTBEAT_EVERY`]
/// (also while the report is written and uploaded). A failed write is only logged.
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
        if status
            .record_progress(now.clone(), OffsetDateTime::now_utc())
            .is_err()
        {
            return;
        }
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
    let retry = |e: StorageError| Outcome::Retry(format!("report storage: {e}"));
    let runs = state.runs().await.map_err(retry)?;
    let status = runs.load_status(&job.run_id).await.map_err(retry)?;
    let status = status.unwrap_or_else(|| {
        RunStatus::queued(
            job.run_id.clone(),
            job.org.clone(),
            job.source,
            job.requested_by.clone(),
            Execution::Queue,
            job.requested_at,
        )
    });
    Ok((runs, status))
}

#[cfg(test)]
mod tests {
    use super::*;

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
