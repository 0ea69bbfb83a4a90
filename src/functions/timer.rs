//! The timer function (`PatReportTimer`): one job per configured organization, through the
//! function's queue output binding, so scheduled and on-demand runs share the worker.
//!
//! The schedule is `%PATREPORT_SCHEDULE%` in function.json (read by the host, not by us).
//! `useMonitor` is on so a run missed while the app was down fires once at start with
//! `IsPastDue: true`; `runOnStartup` is off so scale-outs and restarts do not trigger scans.

use super::job::JobMessage;
use super::protocol::{InvokeRequest, InvokeResponse, TimerInfo};
use super::state::AppState;
use crate::domain::RunId;
use crate::lifecycle::{Execution, RunSource, RunStatus};
use serde_json::Value;
use time::OffsetDateTime;

/// The timer trigger binding (`PatReportTimer/function.json`).
pub const TRIGGER_BINDING: &str = "timer";
/// Its queue output binding.
pub const JOBS_BINDING: &str = "jobs";

pub async fn handle(state: &AppState, invocation: &InvokeRequest) -> InvokeResponse {
    let timer = TimerInfo::from_invocation(invocation, TRIGGER_BINDING);
    let mut out = InvokeResponse::default();
    let now = OffsetDateTime::now_utc();
    let mut messages = Vec::new();
    let mut queued = Vec::new();
    for org in &state.settings.orgs {
        let run_id = RunId::new(now);
        // Recording the run is best effort: the worker creates the record if it is missing,
        // and the job must be queued even when storage has a bad moment.
        let status = RunStatus::queued(
            run_id.clone(),
            org.clone(),
            RunSource::Timer,
            None,
            Execution::Queue,
            now,
        );
        let recorded = match state.runs().await {
            Ok(runs) => runs.save_status(&status).await,
            Err(e) => Err(e),
        };
        if let Err(e) = recorded {
            tracing::warn!(%org, %run_id, error = %e, "could not record a scheduled run; queuing it anyway");
            out.log(format!(
                "Warning: run {run_id} for {org} was not recorded ({e}); queued anyway."
            ));
        }
        let job = JobMessage {
            run_id: run_id.clone(),
            org: org.clone(),
            requested_at: now,
            source: RunSource::Timer,
            requested_by: None,
        };
        messages.push(Value::String(job.to_text()));
        queued.push(format!("{org} as run {run_id}"));
    }
    let why = match (timer.is_past_due, timer.is_first_run()) {
        (true, _) => "past due (a scheduled run was missed)",
        (false, true) => "first scheduled run",
        (false, false) => "on schedule",
    };
    tracing::info!(
        past_due = timer.is_past_due,
        jobs = messages.len(),
        "timer fired"
    );
    out.log(format!("Timer fired, {why}: queued {}.", queued.join(", ")));
    out.output(JOBS_BINDING, Value::Array(messages));
    out
}
