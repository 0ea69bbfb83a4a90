//! The one report pipeline: check the outputs → scan → lay the workbook out → build the report
//! → write every output → deliver them. The command line, the Functions worker (queued and
//! on-behalf-of runs) and the benchmark all call [`run`]; they differ only in their plan, their
//! credential, where progress goes ([`Observer`]) and where the files end up ([`Sink`]).
//!
//! Memory is the reason for the order. The workbook is laid out right after the scan, while
//! only the inventory is held (see `report::XlsxPlan`); the report is then built from the
//! inventory by value; every output is streamed to a file; the rows are dropped before the
//! files are delivered, so an upload holds one block at a time, never a whole output.

pub mod sink;

pub use sink::{Delivered, LocalFiles, Opened, PreviousReport, Sink, SinkError};

use crate::ado::{AdoClient, AdoCredential, AdoError, AdoSettings};
use crate::bench::Memory;
use crate::changes::{self, ChangeSummary, Changes};
use crate::domain::OrgName;
use crate::engine::{self, ScanError, ScanOptions};
use crate::notify::Notice;
use crate::refresh;
use crate::report::{self, Format, Report, ReportError, ReportOptions, RunInfo, Summary, XlsxPlan};
use std::io::{BufWriter, Write};
use std::time::{Duration, Instant};
use time::OffsetDateTime;

/// Everything that decides what one report is: whose tokens, read how, judged how, written as
/// what. Built from the command line (`cli::report`) or from the service settings plus a job
/// (`functions::worker`).
#[derive(Debug, Clone)]
pub struct ReportPlan {
    /// The organization and how to reach it.
    pub client: AdoSettings,
    pub scan: ScanOptions,
    pub report: ReportOptions,
    /// At least one; in [`Format::ALL`] order.
    pub formats: Vec<Format>,
    /// What to compare the report with.
    pub compare: Compare,
    /// Whether to refresh incrementally from the audit log (see `refresh`).
    pub refresh: crate::refresh::RefreshOptions,
}

/// Which earlier report the changes are counted against.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Compare {
    /// The newest earlier report of the organization where the sink keeps them (the output
    /// folder; `latest.json` in Blob Storage).
    #[default]
    Previous,
    /// This JSON report (`--compare FILE`).
    File(std::path::PathBuf),
    /// No comparison: the report has no `changes` section.
    Off,
}

impl ReportPlan {
    pub fn org(&self) -> &OrgName {
        &self.client.organization
    }
}

/// The stages after the scan starts, for progress displays and heartbeats.
pub enum Stage<'a> {
    /// The scan is starting; the client is where throttling figures can be read.
    Scanning(&'a AdoClient),
    /// Building the report and writing its files.
    Writing,
    /// Handing the files over (uploading them, for the Functions app).
    Delivering,
}

/// Where a run reports what it is doing: the scan's counts, and the stages.
pub trait Observer: engine::Progress {
    fn stage(&self, _stage: Stage<'_>) {}
}

/// An observer that ignores everything.
pub struct Quiet;
impl engine::Progress for Quiet {}
impl Observer for Quiet {}

/// What a finished run made: the report's headline (its rows are gone by now), where each
/// output went, and how long each stage took.
#[derive(Debug, Clone)]
pub struct Produced {
    pub run: RunInfo,
    pub summary: Summary,
    /// The comparison with the earlier report, without its lists (`None`: not asked for).
    pub changes: Option<ChangeSummary>,
    /// What a notification of this report says (without a link: the caller adds one).
    pub notice: Notice,
    pub outputs: Vec<Delivered>,
    pub timings: Timings,
}

/// Wall time of each stage, for the benchmark and the logs.
#[derive(Debug, Clone, Default)]
pub struct Timings {
    pub scan: Duration,
    /// Laying the workbook out (see `XlsxPlan`).
    pub layout: Duration,
    pub build: Duration,
    /// Writing each output to its file.
    pub write: Vec<(Format, Duration)>,
    pub deliver: Duration,
    /// The process's memory at the end of each stage (Linux), for the benchmark: where the
    /// peak happens.
    pub memory: Vec<(&'static str, Memory)>,
}

impl Timings {
    fn note_memory(&mut self, stage: &'static str) {
        if let Some(memory) = Memory::now() {
            self.memory.push((stage, memory));
        }
    }

    /// The time spent on the workbook: its layout plus its writing.
    pub fn workbook(&self) -> Option<Duration> {
        self.write
            .iter()
            .find(|(f, _)| *f == Format::Xlsx)
            .map(|(_, d)| self.layout + *d)
    }
}

/// Why no report was made. Each variant keeps the layer's own error, which says whether it
/// is worth trying again ([`PipelineError::is_transient`]).
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// Found before the scan: the outputs could not be written anyway.
    #[error("{0}")]
    Output(SinkError),
    #[error("could not set up the Azure DevOps client: {0}")]
    Client(AdoError),
    #[error(transparent)]
    Scan(ScanError),
    #[error("could not write the report: {0}")]
    Render(ReportError),
    #[error("{0}")]
    Deliver(SinkError),
    #[error("the report writer stopped unexpectedly: {0}")]
    Crashed(String),
}

impl PipelineError {
    /// Worth another attempt later, as the layer that failed says.
    pub fn is_transient(&self) -> bool {
        match self {
            PipelineError::Scan(e) => e.is_transient(),
            PipelineError::Deliver(e) | PipelineError::Output(e) => e.is_transient(),
            PipelineError::Client(_) | PipelineError::Render(_) | PipelineError::Crashed(_) => {
                false
            }
        }
    }
}

/// The tool's version, recorded in every report.
pub const TOOL_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Make one report.
pub async fn run(
    plan: &ReportPlan,
    credential: AdoCredential,
    observer: &dyn Observer,
    sink: &dyn Sink,
) -> Result<Produced, PipelineError> {
    sink.check(&plan.formats)
        .await
        .map_err(PipelineError::Output)?;
    // Found now, before the scan: the earlier report as it is when the run starts.
    let baseline = match &plan.compare {
        Compare::Off => None,
        Compare::File(path) => {
            std::fs::File::open(path).map_err(|e| {
                PipelineError::Output(SinkError::Local {
                    problem: "cannot read the report to compare with".into(),
                    path: path.clone(),
                    source: Some(e),
                })
            })?;
            Some(Ok(Some(sink::PreviousReport {
                name: path.display().to_string(),
                path: path.clone(),
            })))
        }
        Compare::Previous => Some(sink.previous(plan.org()).await),
    };
    // The state of the last full picture, when a refresh may start from it.
    let state = match plan.refresh.incremental {
        false => None,
        true => load_state(sink, plan.org()).await,
    };
    let made = produce(plan, credential, observer, sink, baseline, state).await;
    if made.is_err() {
        sink.abandon();
    }
    made
}

async fn produce(
    plan: &ReportPlan,
    credential: AdoCredential,
    observer: &dyn Observer,
    sink: &dyn Sink,
    baseline: Option<Result<Option<sink::PreviousReport>, SinkError>>,
    state: refresh::Found,
) -> Result<Produced, PipelineError> {
    let client = AdoClient::new(plan.client.clone(), credential).map_err(PipelineError::Client)?;
    client.reach().await.map_err(|source| {
        PipelineError::Scan(ScanError::Users {
            org: plan.org().to_string(),
            source,
        })
    })?;
    let mut timings = Timings::default();
    let started = Instant::now();
    observer.stage(Stage::Scanning(&client));
    let (inventory, refreshed) = refresh::inventory(
        &client,
        &plan.scan,
        &plan.refresh,
        state,
        observer,
        OffsetDateTime::now_utc(),
    )
    .await
    .map_err(PipelineError::Scan)?;
    timings.scan = started.elapsed();
    timings.note_memory("scan");
    // Written now, before the report takes the inventory apart; kept once the report is
    // delivered. Only a complete picture can be refreshed from, and only refreshing runs keep
    // one (a run without the audit log would drop the signals the state carries).
    let opened = match plan.refresh.incremental && inventory.is_complete() {
        true => open_state(sink, &inventory.org),
        false => None,
    };
    let (inventory, refreshed, new_state) = match opened {
        None => (inventory, refreshed, None),
        // Serializing every user's tokens is blocking work: off the async threads, as the
        // other files are.
        Some((path, file)) => {
            let ssh_keys = plan.scan.include_ssh_keys;
            tokio::task::spawn_blocking(move || {
                let kept = write_state(path, file, &inventory, &refreshed, ssh_keys);
                (inventory, refreshed, kept)
            })
            .await
            .map_err(|e| PipelineError::Crashed(e.to_string()))?
        }
    };

    observer.stage(Stage::Writing);
    // Lay the workbook out while memory is at its lowest (see `XlsxPlan`).
    let started = Instant::now();
    let layout = match plan.formats.contains(&Format::Xlsx) {
        true => Some(
            XlsxPlan::new(report::row_count(&inventory, &plan.report))
                .map_err(PipelineError::Render)?,
        ),
        false => None,
    };
    timings.layout = started.elapsed();
    timings.note_memory("layout");
    let started = Instant::now();
    let mut report = report::build(
        inventory,
        OffsetDateTime::now_utc(),
        &plan.report,
        TOOL_VERSION,
    );
    report.run.refresh = Some(refreshed);
    if let Some(found) = baseline {
        // Reading up to 100 MB of the earlier report is blocking work: off the async threads.
        let compared = tokio::task::spawn_blocking(move || {
            let changes = changes_since(found, &report);
            (report, changes)
        })
        .await
        .map_err(|e| PipelineError::Crashed(e.to_string()))?;
        report = compared.0;
        report.changes = Some(compared.1);
    }
    timings.build = started.elapsed();
    timings.note_memory("build");
    let opened = sink
        .open(plan.org(), report.run.finished, &plan.formats)
        .map_err(PipelineError::Output)?;
    let paths: Vec<_> = opened.iter().map(|o| o.path.clone()).collect();
    let written = tokio::task::spawn_blocking(move || {
        let written = write_outputs(&report, layout, opened);
        let notice = Notice::of(&report);
        let changes = report.changes.as_ref().map(Changes::summary);
        (written, report.run, report.summary, notice, changes)
    })
    .await;
    let (written, run, summary, notice, changes) = match written {
        Ok(done) => done,
        Err(e) => {
            discard(&paths);
            return Err(PipelineError::Crashed(e.to_string()));
        }
    };
    let written = match written {
        Ok((written, write_times)) => {
            timings.write = write_times;
            timings.note_memory("write");
            written
        }
        Err(e) => {
            // A half-written file is worse than none: it could be mistaken for a report.
            discard(&paths);
            return Err(PipelineError::Render(e));
        }
    };

    observer.stage(Stage::Delivering);
    let started = Instant::now();
    let outputs = sink
        .deliver(plan.org(), run.finished, written)
        .await
        .map_err(PipelineError::Deliver)?;
    timings.deliver = started.elapsed();
    timings.note_memory("deliver");
    if let Some(path) = new_state
        && let Err(e) = sink.keep_state(plan.org(), path).await
    {
        // The report stands; the next refresh starts from the earlier state (or scans fully).
        tracing::warn!(error = %e, "the state of this picture could not be kept");
    }
    Ok(Produced {
        run,
        summary,
        changes,
        notice,
        outputs,
        timings,
    })
}

/// The state of `org` from the sink: none, unusable (why), or read.
async fn load_state(sink: &dyn Sink, org: &OrgName) -> refresh::Found {
    let path = match sink.state(org).await {
        Ok(Some(path)) => path,
        Ok(None) => return None,
        Err(e) => return Some(Err(format!("could not look for it ({e})"))),
    };
    let org = org.clone();
    let read = tokio::task::spawn_blocking(move || {
        std::fs::File::open(&path)
            .map_err(|e| format!("cannot open {}: {e}", path.display()))
            .and_then(|file| refresh::State::read(file, &org).map_err(|e| e.to_string()))
    })
    .await
    .unwrap_or_else(|e| Err(e.to_string()));
    Some(read)
}

/// A file for the state of this picture from the sink; `None` (and a warning) when there is
/// none: the report does not depend on it.
fn open_state(sink: &dyn Sink, org: &OrgName) -> Option<(std::path::PathBuf, std::fs::File)> {
    match sink.open_state(org) {
        Ok(opened) => opened,
        Err(e) => {
            tracing::warn!(error = %e, "the state of this picture cannot be written");
            None
        }
    }
}

/// Write the state of this picture into the file [`open_state`] gave; its path, or `None`
/// (and a warning, the file removed) when it could not be written. Runs on a blocking thread.
fn write_state(
    path: std::path::PathBuf,
    file: std::fs::File,
    inventory: &crate::inventory::Inventory,
    refreshed: &refresh::RefreshInfo,
    ssh_keys: bool,
) -> Option<std::path::PathBuf> {
    let state = refresh::StateRef {
        version: refresh::STATE_VERSION,
        org: &inventory.org,
        as_of: refreshed.as_of.unwrap_or(inventory.started),
        last_full_scan: refreshed.last_full_scan.unwrap_or(inventory.started),
        ssh_keys,
        users: &inventory.users,
        signals: &inventory.signals,
        seen_events: &refreshed.seen_events,
        audit_until: refreshed.audit_until,
    };
    match state.write(file) {
        Ok(()) => Some(path),
        Err(e) => {
            tracing::warn!(error = %e, path = %path.display(), "the state of this picture could not be written");
            let _ = std::fs::remove_file(&path);
            None
        }
    }
}

/// The changes since the earlier report `found`, or why there are none. Never fails the run:
/// an unreadable earlier report is a note in the report.
fn changes_since(
    found: Result<Option<sink::PreviousReport>, SinkError>,
    report: &Report,
) -> Changes {
    let previous = match found {
        Ok(Some(previous)) => previous,
        Ok(None) => return Changes::none(changes::FIRST_RUN),
        Err(e) => {
            return Changes::none(format!(
                "Not compared: could not look for the earlier report ({e})."
            ));
        }
    };
    let compared = std::fs::File::open(&previous.path)
        .map_err(|e| e.to_string())
        .and_then(|file| {
            changes::compare_with(file, &previous.name, report).map_err(|e| e.to_string())
        });
    match compared {
        Ok(changes) => changes,
        Err(e) => Changes::none(format!(
            "Not compared: could not read the earlier report {}: {e}",
            previous.name
        )),
    }
}

/// The files written, and how long each took.
type Written = (Vec<(Format, std::path::PathBuf)>, Vec<(Format, Duration)>);

/// Write `report` into each opened file. Runs on a blocking thread.
fn write_outputs(
    report: &Report,
    mut layout: Option<XlsxPlan>,
    opened: Vec<Opened>,
) -> Result<Written, ReportError> {
    let mut written = Vec::with_capacity(opened.len());
    let mut times = Vec::with_capacity(opened.len());
    for Opened { format, path, file } in opened {
        let started = Instant::now();
        let mut out = BufWriter::new(file);
        match format {
            Format::Xlsx => {
                let layout = match layout.take() {
                    Some(layout) => layout,
                    None => XlsxPlan::new(report.rows.len())?,
                };
                layout.save_to_writer(report, &mut out)?;
            }
            Format::Csv => report::write_csv(report, &mut out)?,
            Format::Json => report::write_json(report, &mut out)?,
            Format::Html => report::write_html(report, &mut out)?,
        }
        // A buffered write that fails only when flushed must fail the output, not vanish.
        out.flush().map_err(|source| ReportError::File {
            path: path.clone(),
            source,
        })?;
        times.push((format, started.elapsed()));
        written.push((format, path));
    }
    Ok((written, times))
}

fn discard(paths: &[std::path::PathBuf]) {
    for path in paths {
        let _ = std::fs::remove_file(path);
    }
}
