//! The life of a run of the Functions app, as plain data with the moves it may make.
//!
//! ```text
//!   queued ──start──► running ──succeed──► succeeded
//!     ▲                 │ │
//!     └────requeue──────┘ └──fail──► failed       (queued ──fail──► failed too)
//! ```
//!
//! * `start` again on a running run is a new delivery of a job whose worker died: allowed
//!   only with a later attempt number.
//! * `succeeded` and `failed` are final: every move from them is refused, so a late or
//!   duplicate delivery can never undo an answer a caller has already seen.
//! * `stalled` is not stored: it is what a running run (or an in-process run that never
//!   started) looks like once its heartbeat is older than [`STALLED_AFTER`]; see
//!   [`RunStatus::stalled`].
//!
//! Storage only saves and loads these documents (`storage::runs`); the worker, the poison
//! handler and the in-process runner move them.

use crate::changes::ChangeCounts;
use crate::domain::timestamp::{self, rfc3339};
use crate::domain::{OrgName, RunId};
use crate::findings::FindingCounts;
use crate::report::{Format, Report, Summary};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;
use time::OffsetDateTime;

/// Deliveries of one queued job before the host gives up; must equal `maxDequeueCount` in
/// host.json (a test checks).
pub const MAX_ATTEMPTS: u32 = 3;
/// A working process writes the status at least this often (its heartbeat).
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(30);
/// A run whose heartbeat is this old has lost the process that ran it (six missed beats).
pub const STALLED_AFTER: time::Duration = time::Duration::minutes(3);
/// The state shown for a run whose process stopped without recording an end.
pub const STALLED: &str = "stalled";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    Queued,
    Running,
    Succeeded,
    Failed,
}

impl RunState {
    pub fn is_final(self) -> bool {
        matches!(self, RunState::Succeeded | RunState::Failed)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Queued => "queued",
            RunState::Running => "running",
            RunState::Succeeded => "succeeded",
            RunState::Failed => "failed",
        }
    }
}

/// Who asked for a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunSource {
    Http,
    Timer,
}

/// Where a run's scan runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Execution {
    /// A queued job, run by the worker function (retried by the queue if the worker dies).
    #[default]
    Queue,
    /// In the process that answered the HTTP request (on-behalf-of runs: the caller's token
    /// must not leave that process). Not retried: lost if the instance goes away.
    InProcess,
}

impl Execution {
    pub fn as_str(self) -> &'static str {
        match self {
            Execution::Queue => "queue",
            Execution::InProcess => "in-process",
        }
    }
}

/// Counts while the scan runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunProgress {
    pub users_listed: usize,
    /// Listed users whose listing is over: read, or failed.
    pub users_scanned: usize,
    /// Listed users whose tokens were read.
    #[serde(default)]
    pub users_read: usize,
    pub users_failed: usize,
    pub pats_found: usize,
    /// Answers that asked the scan to slow down, and the whole seconds spent waiting for them.
    #[serde(default)]
    pub throttled: u64,
    #[serde(default)]
    pub throttle_wait_seconds: u64,
    /// The rate-limit figures so far (see `RunStats`): estimated TSTU per call, TSTU
    /// consumed, whole seconds the service delayed answers, the lowest `Remaining` seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tstu_per_call: Option<Figure>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tstu_consumed: Option<Figure>,
    #[serde(default)]
    pub rate_limit_delay_seconds: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lowest_remaining: Option<Figure>,
}

/// A measured figure in the status document. Equal when bit for bit equal: the document is
/// compared as a whole (has the progress changed?), never computed with.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Figure(pub f64);

impl PartialEq for Figure {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_bits() == other.0.to_bits()
    }
}

impl Eq for Figure {}

/// The headline figures of a finished report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunSummary {
    /// False when some users could not be read or the scan stopped early.
    pub complete: bool,
    /// Users the scan listed, and of those the users whose tokens were read.
    #[serde(default)]
    pub users_listed: usize,
    #[serde(default)]
    pub users_read: usize,
    pub users_failed: usize,
    pub users_with_pats: usize,
    pub pats: usize,
    pub active: usize,
    pub expiring: usize,
    pub expired: usize,
    pub invalid: usize,
    pub full_access: usize,
    pub global: usize,
    /// Tokens by their most severe finding, and per rule.
    #[serde(default)]
    pub findings: FindingCounts,
    /// What changed since the previous report (`None`: a first run, or not compared).
    #[serde(default)]
    pub changes: Option<ChangeCounts>,
    /// Full scan or incremental refresh, and why (`None` in statuses written before it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh: Option<crate::inventory::RefreshInfo>,
}

impl RunSummary {
    pub fn of(report: &Report) -> Self {
        let changes = report
            .changes
            .as_ref()
            .filter(|c| c.previous.is_some())
            .map(|c| c.counts);
        Self::from_parts(report.run.complete, &report.summary, changes)
    }

    pub fn from_parts(complete: bool, summary: &Summary, changes: Option<ChangeCounts>) -> Self {
        Self {
            complete,
            users_listed: summary.users_listed,
            users_read: summary.users_read,
            users_failed: summary.users_failed,
            users_with_pats: summary.users_with_pats,
            pats: summary.pats,
            active: summary.by_status.active,
            expiring: summary.by_status.expiring,
            expired: summary.by_status.expired,
            invalid: summary.by_status.invalid,
            full_access: summary.full_access,
            global: summary.global,
            findings: summary.findings.clone(),
            changes,
            refresh: None,
        }
    }
}

/// Where a run's outputs are stored, by format (`{"xlsx": "…", "csv": "…", "json": "…"}`).
pub type ReportFiles = BTreeMap<Format, String>;

/// What a run made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunResult {
    pub summary: RunSummary,
    pub progress: RunProgress,
    pub files: ReportFiles,
    /// What became of each webhook told of the report (none configured: empty).
    pub notifications: Vec<crate::notify::Outcome>,
}

/// A move the run's state does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("run {run_id} is {from}, so it cannot {action}")]
pub struct IllegalMove {
    pub run_id: RunId,
    pub from: &'static str,
    pub action: &'static str,
}

/// The status document of one run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunStatus {
    pub run_id: RunId,
    pub org: OrgName,
    state: RunState,
    pub source: RunSource,
    /// The authenticated caller (`Caller::describe`) of an HTTP run; none for the timer.
    pub requested_by: Option<String>,
    #[serde(default)]
    pub execution: Execution,
    /// The credential mode the scan uses (`managed-identity`, `on-behalf-of`, ...), once it runs.
    #[serde(default)]
    auth: Option<String>,
    #[serde(with = "timestamp::serde")]
    pub requested_at: OffsetDateTime,
    #[serde(with = "timestamp::serde")]
    updated_at: OffsetDateTime,
    /// The last sign of life of the process running the scan, written at least every
    /// [`HEARTBEAT_EVERY`] while it works.
    #[serde(default, with = "timestamp::serde::option")]
    heartbeat_at: Option<OffsetDateTime>,
    #[serde(default, with = "timestamp::serde::option")]
    started_at: Option<OffsetDateTime>,
    #[serde(default, with = "timestamp::serde::option")]
    finished_at: Option<OffsetDateTime>,
    /// Delivery attempt of the job (the queue's dequeue count); 0 while first queued.
    #[serde(default)]
    attempt: u32,
    #[serde(default)]
    progress: Option<RunProgress>,
    #[serde(default)]
    summary: Option<RunSummary>,
    #[serde(default)]
    files: Option<ReportFiles>,
    /// The webhooks told of the report, and what became of each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    notifications: Vec<crate::notify::Outcome>,
    /// Why the run failed (final), or why the last attempt failed (while it is retried).
    #[serde(default)]
    error: Option<String>,
}

impl RunStatus {
    /// A run just asked for.
    pub fn queued(
        run_id: RunId,
        org: OrgName,
        source: RunSource,
        requested_by: Option<String>,
        execution: Execution,
        at: OffsetDateTime,
    ) -> Self {
        Self {
            run_id,
            org,
            state: RunState::Queued,
            source,
            requested_by,
            execution,
            auth: None,
            requested_at: at,
            updated_at: at,
            heartbeat_at: None,
            started_at: None,
            finished_at: None,
            attempt: 0,
            progress: None,
            summary: None,
            files: None,
            notifications: Vec::new(),
            error: None,
        }
    }

    pub fn state(&self) -> RunState {
        self.state
    }
    pub fn attempt(&self) -> u32 {
        self.attempt
    }
    pub fn auth(&self) -> Option<&str> {
        self.auth.as_deref()
    }
    pub fn updated_at(&self) -> OffsetDateTime {
        self.updated_at
    }
    pub fn heartbeat_at(&self) -> Option<OffsetDateTime> {
        self.heartbeat_at
    }
    pub fn started_at(&self) -> Option<OffsetDateTime> {
        self.started_at
    }
    pub fn finished_at(&self) -> Option<OffsetDateTime> {
        self.finished_at
    }
    pub fn progress(&self) -> Option<&RunProgress> {
        self.progress.as_ref()
    }
    pub fn summary(&self) -> Option<&RunSummary> {
        self.summary.as_ref()
    }
    pub fn files(&self) -> Option<&ReportFiles> {
        self.files.as_ref()
    }
    pub fn notifications(&self) -> &[crate::notify::Outcome] {
        &self.notifications
    }
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    fn refuse(&self, action: &'static str) -> IllegalMove {
        IllegalMove {
            run_id: self.run_id.clone(),
            from: self.state.as_str(),
            action,
        }
    }

    fn touch(&mut self, at: OffsetDateTime) {
        self.updated_at = at;
    }

    /// Attempt `attempt` starts working, with credential mode `auth`. A running run may be
    /// started again only by a later delivery (its previous worker died mid-run).
    pub fn start(
        &mut self,
        attempt: u32,
        auth: &str,
        at: OffsetDateTime,
    ) -> Result<(), IllegalMove> {
        match self.state {
            RunState::Queued => {}
            RunState::Running if attempt > self.attempt => {}
            _ => return Err(self.refuse("start")),
        }
        self.state = RunState::Running;
        self.attempt = attempt;
        self.auth = Some(auth.to_owned());
        self.started_at = Some(at);
        self.heartbeat_at = Some(at);
        self.progress = Some(RunProgress::default());
        self.error = None;
        self.touch(at);
        Ok(())
    }

    /// The scan's counts so far; also a heartbeat.
    pub fn record_progress(
        &mut self,
        progress: RunProgress,
        at: OffsetDateTime,
    ) -> Result<(), IllegalMove> {
        if self.state != RunState::Running {
            return Err(self.refuse("record progress"));
        }
        self.progress = Some(progress);
        self.heartbeat_at = Some(at);
        self.touch(at);
        Ok(())
    }

    /// The report is stored.
    pub fn succeed(&mut self, result: RunResult, at: OffsetDateTime) -> Result<(), IllegalMove> {
        if self.state != RunState::Running {
            return Err(self.refuse("succeed"));
        }
        self.state = RunState::Succeeded;
        self.summary = Some(result.summary);
        self.progress = Some(result.progress);
        self.files = Some(result.files);
        self.notifications = result.notifications;
        self.finished_at = Some(at);
        self.error = None;
        self.touch(at);
        Ok(())
    }

    /// The webhooks told of a succeeded run, and what became of each.
    pub fn record_notifications(
        &mut self,
        outcomes: Vec<crate::notify::Outcome>,
        at: OffsetDateTime,
    ) {
        self.notifications = outcomes;
        self.touch(at);
    }

    /// This attempt failed in a way a later one may not: back to the queue, saying why.
    pub fn requeue(&mut self, reason: String, at: OffsetDateTime) -> Result<(), IllegalMove> {
        if self.state != RunState::Running {
            return Err(self.refuse("go back to the queue"));
        }
        self.state = RunState::Queued;
        self.error = Some(reason);
        self.touch(at);
        Ok(())
    }

    /// The run ends without a report, for good.
    pub fn fail(&mut self, reason: String, at: OffsetDateTime) -> Result<(), IllegalMove> {
        if self.state.is_final() {
            return Err(self.refuse("fail"));
        }
        self.state = RunState::Failed;
        self.error = Some(reason);
        self.finished_at = Some(at);
        self.touch(at);
        Ok(())
    }

    /// Why the run is stalled, when its process has stopped giving signs of life: a running
    /// run whose heartbeat is older than [`STALLED_AFTER`], or an in-process run that never
    /// started. A queued job is not stalled: it may wait its turn in the queue for long.
    pub fn stalled(&self, now: OffsetDateTime) -> Option<String> {
        let waiting_in_process =
            self.state == RunState::Queued && self.execution == Execution::InProcess;
        if self.state != RunState::Running && !waiting_in_process {
            return None;
        }
        let last = self.heartbeat_at.unwrap_or(self.updated_at);
        if now - last <= STALLED_AFTER {
            return None;
        }
        Some(match self.execution {
            Execution::Queue => format!(
                "no heartbeat since {}: the worker running this job has stopped (restart, crash or \
                 timeout). The queue delivers the job again after its visibility timeout; after \
                 {MAX_ATTEMPTS} attempts the run is marked failed",
                rfc3339(last)
            ),
            Execution::InProcess => format!(
                "no heartbeat since {}: this on-behalf-of run was running inside the instance that \
                 answered the request, and that instance has stopped (recycled, scaled in or \
                 crashed). In-process runs are not retried: ask for a new report (POST \
                 /api/PatReport)",
                rfc3339(last)
            ),
        })
    }
}

/// `{org}/latest.json`: the newest successful report of an organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LatestPointer {
    pub run_id: RunId,
    pub org: OrgName,
    #[serde(with = "timestamp::serde")]
    pub generated_at: OffsetDateTime,
    pub files: ReportFiles,
    pub summary: RunSummary,
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const AT: OffsetDateTime = datetime!(2026-11-24 09:00:00 UTC);

    fn later(minutes: i64) -> OffsetDateTime {
        AT + time::Duration::minutes(minutes)
    }

    fn queued(execution: Execution) -> RunStatus {
        RunStatus::queued(
            RunId::new(AT),
            OrgName::parse("fabrikam").unwrap(),
            RunSource::Http,
            None,
            execution,
            AT,
        )
    }

    fn result() -> RunResult {
        RunResult {
            summary: RunSummary::default(),
            progress: RunProgress::default(),
            files: ReportFiles::from([(Format::Xlsx, "a.xlsx".to_owned())]),
            notifications: Vec::new(),
        }
    }

    #[test]
    fn a_run_goes_queued_running_succeeded() {
        let mut s = queued(Execution::Queue);
        s.start(1, "pat", later(1)).unwrap();
        assert_eq!(
            (s.state(), s.attempt(), s.auth()),
            (RunState::Running, 1, Some("pat"))
        );
        let progress = RunProgress {
            users_listed: 3,
            ..Default::default()
        };
        s.record_progress(progress.clone(), later(2)).unwrap();
        assert_eq!(
            (s.progress(), s.heartbeat_at()),
            (Some(&progress), Some(later(2)))
        );
        s.succeed(result(), later(3)).unwrap();
        assert_eq!(s.state(), RunState::Succeeded);
        assert_eq!(s.finished_at(), Some(later(3)));
        assert_eq!(s.files().unwrap()[&Format::Xlsx], "a.xlsx");
    }

    #[test]
    fn illegal_moves_are_refused_and_change_nothing() {
        let mut s = queued(Execution::Queue);
        let before = s.clone();
        assert!(s.succeed(result(), later(1)).is_err());
        assert!(s.record_progress(RunProgress::default(), later(1)).is_err());
        assert!(s.requeue("x".into(), later(1)).is_err());
        assert_eq!(s, before);
        s.start(1, "pat", later(1)).unwrap();
        // The same delivery cannot start twice; a later one may (its worker died).
        assert!(s.start(1, "pat", later(2)).is_err());
        s.start(2, "pat", later(2)).unwrap();
        s.fail("gone".into(), later(3)).unwrap();
        let failed = s.clone();
        let e = s.start(3, "pat", later(4)).unwrap_err();
        assert!(
            e.to_string().contains("is failed, so it cannot start"),
            "{e}"
        );
        assert!(s.fail("again".into(), later(4)).is_err());
        assert!(s.succeed(result(), later(4)).is_err());
        assert_eq!(s, failed);
    }

    #[test]
    fn a_transient_failure_requeues_with_its_reason() {
        let mut s = queued(Execution::Queue);
        s.start(1, "pat", later(1)).unwrap();
        s.requeue("storage down".into(), later(2)).unwrap();
        assert_eq!(
            (s.state(), s.error()),
            (RunState::Queued, Some("storage down"))
        );
        s.start(2, "pat", later(3)).unwrap();
        assert_eq!(s.error(), None);
        // A queued run can also fail for good (the poison handler, a vanished organization).
        let mut q = queued(Execution::Queue);
        q.fail("poison".into(), later(1)).unwrap();
        assert_eq!(q.state(), RunState::Failed);
    }

    #[test]
    fn runs_whose_heartbeat_stopped_are_stalled() {
        let mut s = queued(Execution::Queue);
        // A queued job waits its turn, however long.
        assert_eq!(s.stalled(later(60)), None);
        // An in-process run that never started is stalled.
        s.execution = Execution::InProcess;
        assert_eq!(s.stalled(later(1)), None);
        let m = s.stalled(later(4)).unwrap();
        assert!(m.contains("not retried") && m.contains("POST"), "{m}");
        // Running: the heartbeat decides.
        s.start(1, "on-behalf-of", later(5)).unwrap();
        s.record_progress(RunProgress::default(), later(10))
            .unwrap();
        assert_eq!(s.stalled(later(12)), None);
        assert!(
            s.stalled(later(14))
                .unwrap()
                .contains("2026-11-24T09:10:00Z")
        );
        s.execution = Execution::Queue;
        assert!(
            s.stalled(later(14))
                .unwrap()
                .contains("delivers the job again")
        );
        s.succeed(result(), later(15)).unwrap();
        assert_eq!(s.stalled(later(600)), None);
    }

    #[test]
    fn status_documents_round_trip_in_camel_case() {
        let mut s = queued(Execution::InProcess);
        s.start(1, "pat", later(1)).unwrap();
        let text = serde_json::to_string(&s).unwrap();
        assert!(
            text.contains(&format!("\"runId\":\"{}\"", s.run_id))
                && text.contains("\"state\":\"running\"")
                && text.contains("usersListed")
                && text.contains("\"execution\":\"in-process\"")
                && text.contains("\"heartbeatAt\":\"2026-11-24T09:01:00Z\""),
            "{text}"
        );
        assert_eq!(serde_json::from_str::<RunStatus>(&text).unwrap(), s);
    }

    #[test]
    fn status_documents_of_earlier_versions_still_read() {
        let old = r#"{"runId":"20261124-090503-0123456789abcdef","org":"fabrikam","state":"succeeded",
            "source":"http","requestedBy":null,"requestedAt":"2026-11-24T09:05:03.123456Z",
            "updatedAt":"2026-11-24T09:05:03Z",
            "files":{"xlsx":"f/a.xlsx","csv":"f/a.csv","json":"f/a.json"}}"#;
        let s: RunStatus = serde_json::from_str(old).unwrap();
        assert_eq!(
            (s.execution, s.heartbeat_at(), s.auth()),
            (Execution::Queue, None, None)
        );
        assert_eq!(s.files().unwrap()[&Format::Csv], "f/a.csv");
        // A document naming an organization or run id that could not be ours is refused.
        let bad = old.replace("\"fabrikam\"", "\"../x\"");
        assert!(serde_json::from_str::<RunStatus>(&bad).is_err());
    }
}
