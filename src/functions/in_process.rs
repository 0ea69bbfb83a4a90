//! On-behalf-of HTTP runs, which scan inside the handler process.
//!
//! The caller's token may not leave the process that received it (not in a queue message, not
//! in a blob), so such a run cannot go through the queue: the request exchanges the token,
//! records the run and spawns it here, on the worker's pipeline ([`worker::run_in_process`]).
//!
//! The price: nothing retries such a run. A recycled, scaled-in or crashed instance ends it.
//! On an orderly shutdown [`abandon_all`] marks the runs still in progress failed; after a
//! crash their heartbeat stops and the status endpoint reports them as stalled. At most
//! [`MAX_IN_PROCESS_RUNS`] run at once per instance; more requests are answered 429.

use super::job::JobMessage;
use super::state::AppState;
use super::worker;
use crate::ado::AdoCredential;
use crate::domain::RunId;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use time::OffsetDateTime;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;

/// Scans of one instance at once: each one holds `PATREPORT_CONCURRENCY` requests in flight
/// and the whole inventory in memory, like the worker's one-job-at-a-time (`batchSize: 1`).
pub const MAX_IN_PROCESS_RUNS: usize = 2;

/// The runs in progress in this process.
pub struct InProcessRuns {
    permits: Arc<Semaphore>,
    running: Mutex<HashMap<RunId, JoinHandle<()>>>,
}

/// A place for one more run, held (not read) until the run ends.
pub struct Slot(#[allow(dead_code)] OwnedSemaphorePermit);

impl InProcessRuns {
    pub fn new(max: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(max)),
            running: Mutex::new(HashMap::new()),
        }
    }

    /// A slot, unless the instance already runs as many as it may.
    pub fn try_reserve(&self) -> Option<Slot> {
        self.permits.clone().try_acquire_owned().ok().map(Slot)
    }

    /// Run ids in progress.
    pub fn running(&self) -> Vec<RunId> {
        let running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        running.keys().cloned().collect()
    }

    fn finished(&self, run_id: &RunId) {
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        running.remove(run_id);
    }
}

/// Start `job` in the background with the caller's `credential`.
pub fn start(state: &Arc<AppState>, slot: Slot, job: JobMessage, credential: AdoCredential) {
    let run_id = job.run_id.clone();
    let task_state = state.clone();
    // The map is locked while spawning, so the task cannot remove its entry before it exists.
    let mut running = state
        .in_process
        .running
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let id = run_id.clone();
    let task = tokio::spawn(async move {
        let _slot = slot;
        worker::run_in_process(&task_state, job, credential).await;
        task_state.in_process.finished(&id);
    });
    running.insert(run_id, task);
}

/// On shutdown: stop the runs in progress and mark them failed, saying why, so their callers
/// get an answer rather than a run that stalls. Best effort (storage may be gone too).
pub async fn abandon_all(state: &AppState) {
    let abandoned: Vec<(RunId, JoinHandle<()>)> = {
        let mut running = state
            .in_process
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        running.drain().collect()
    };
    if abandoned.is_empty() {
        return;
    }
    let Ok(runs) = state.runs().await else {
        tracing::warn!(
            runs = abandoned.len(),
            "shutting down with in-process runs, and report storage is unreachable: they will show as stalled"
        );
        return;
    };
    for (run_id, task) in abandoned {
        // Wait for the task to be gone, so none of its status writes can follow ours.
        task.abort();
        let _ = task.await;
        let mut status = match runs.load_status(&run_id).await {
            Ok(Some(status)) => status,
            _ => continue,
        };
        let reason = "the instance running this on-behalf-of run shut down (restart, scale-in or \
             deployment) before it finished; in-process runs are not retried: ask for a new report";
        if status
            .fail(reason.to_owned(), OffsetDateTime::now_utc())
            .is_err()
        {
            // It ended on its own after all.
            continue;
        }
        match runs.save_status(&status).await {
            Ok(()) => tracing::warn!(%run_id, "shutting down: in-process run marked failed"),
            Err(e) => {
                tracing::warn!(%run_id, error = %e, "shutting down: could not mark the in-process run failed")
            }
        }
    }
}
