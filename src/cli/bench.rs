//! `patreport bench`: the scan against the simulated organization on loopback, side by side with
//! the floor, the sequential walk, memory and workbook time. The simulator runs in a child
//! process so that the memory figures are the client's own, and each memory case runs the whole
//! report pipeline in a child process of its own (`bench-probe`), so that each path's peak is
//! its own: the command line's (files in a folder) and the Functions worker's (a queued job,
//! its status document, uploads to Azurite).

use crate::ado::{AdoClient, AdoCredential, AdoSettings};
use crate::bench::{self, Memory};
use crate::domain::{OrgName, RunId};
use crate::engine::{self, DEFAULT_CONCURRENCY, NoProgress, ScanOptions};
use crate::functions::{self, AppState};
use crate::lifecycle::RunSource;
use crate::pipeline::{self, LocalFiles, Quiet};
use crate::report::Format;
use crate::secret::Secret;
use crate::settings::parse::duration as parse_duration;
use crate::settings::{ScanSettings, ServiceSettings, names};
use anyhow::{Context, bail};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use time::OffsetDateTime;

const BENCH_PAT: &str = "bench-pat";
/// The memory and workbook targets are stated for this many PATs.
const MEMORY_CASE_ROWS: usize = 100_000;
const PEAK_TARGET: u64 = 150_000_000;
/// How much more the worker path may peak at than the command line's.
const WORKER_OVER_CLI: f64 = 1.10;

#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// People in the organization of the speed cases.
    #[arg(long, default_value_t = 10_000)]
    pub users: usize,
    /// Latency the simulator adds to every answer.
    #[arg(long, default_value = "20ms", value_parser = parse_duration)]
    pub latency: Duration,
    /// PAT listings in flight.
    #[arg(long, default_value_t = DEFAULT_CONCURRENCY)]
    pub concurrency: usize,
    /// People in the organization of the memory case (40,000 hold about 100,000 PATs).
    #[arg(long, default_value_t = 40_000)]
    pub memory_users: usize,
    /// Throttled case: the rate-limit window.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub window: Duration,
    /// Throttled case: requests per window served without delay (R = this / window).
    #[arg(long, default_value_t = 1000)]
    pub window_soft: usize,
    /// Throttled case: requests per window before 429.
    #[arg(long, default_value_t = 1500)]
    pub window_budget: usize,
    /// TSTU cases: the mean cost of one Token Admin listing, one case each (a Graph page costs
    /// ten times as much; each call varies by ±50%).
    #[arg(long, value_delimiter = ',', default_value = "0.005,0.02,0.1")]
    pub tstu_costs: Vec<f64>,
    /// TSTU cases: the sliding window (the service's is 5m; the cases take about
    /// ⌈cost / 200⌉ windows each).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub tstu_window: Duration,
    /// Skip the sequential baseline (it takes (requests × latency): minutes at the defaults).
    #[arg(long)]
    pub skip_baseline: bool,
    /// Small sizes for a quick look (2,000 people, 10,000 in the memory case). Targets stated
    /// for a size that did not run are reported as not measured.
    #[arg(long)]
    pub quick: bool,
    /// Storage for the worker path of the memory case (a connection string with an account
    /// key). Default: start Azurite from node_modules (installed by `npm ci`).
    #[arg(long, env = "PATREPORT_BENCH_STORAGE")]
    pub storage: Option<String>,
    /// Cases to run.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "memory,speed,throttled,tstu,view"
    )]
    pub case: Vec<Case>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Case {
    Memory,
    Speed,
    Throttled,
    /// The documented rate limit: 200 TSTU per sliding window, one scan per cost per call.
    Tstu,
    /// The HTML view of a 100,000-PAT report in headless Chromium (`scripts/view-bench.mjs`).
    View,
    /// An incremental refresh after 20 owners changed, against a full scan of the same
    /// organization at the same latency.
    Refresh,
}

/// One target's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Met,
    Missed,
    /// The case did not run at the size the target is stated for.
    NotMeasured,
}

impl Verdict {
    fn of(measured: bool, ok: bool) -> Self {
        match (measured, ok) {
            (false, _) => Verdict::NotMeasured,
            (true, true) => Verdict::Met,
            (true, false) => Verdict::Missed,
        }
    }

    fn text(self) -> &'static str {
        match self {
            Verdict::Met => "met",
            Verdict::Missed => "MISSED",
            Verdict::NotMeasured => "not measured",
        }
    }
}

/// The simulator child process; killed when dropped.
struct Simulator {
    child: Child,
    url: String,
    // Held open for the child's lifetime: a closed pipe would fail its later writes.
    _stdout: BufReader<std::process::ChildStdout>,
}

impl Simulator {
    fn start(
        users: usize,
        latency: Duration,
        window: Option<(&BenchArgs, Duration)>,
    ) -> anyhow::Result<Self> {
        Self::start_with(users, latency, window, None)
    }

    /// As [`start`](Self::start), with the TSTU model at `(listing cost, window)`.
    fn start_with(
        users: usize,
        latency: Duration,
        window: Option<(&BenchArgs, Duration)>,
        tstu: Option<(f64, Duration)>,
    ) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("locating the patreport binary")?;
        let mut cmd = Command::new(exe);
        cmd.args([
            "simulate",
            "--users",
            &users.to_string(),
            "--accept-pat",
            BENCH_PAT,
        ])
        .args(["--latency", &format!("{}ms", latency.as_millis())])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
        if let Some((args, window)) = window {
            cmd.args(["--window", &format!("{}ms", window.as_millis())])
                .args(["--window-soft", &args.window_soft.to_string()])
                .args(["--window-budget", &args.window_budget.to_string()]);
        }
        if let Some((cost, window)) = tstu {
            cmd.args(["--tstu-cost", &cost.to_string()])
                .args(["--tstu-window", &format!("{}ms", window.as_millis())]);
        }
        let mut child = cmd.spawn().context("starting the simulator process")?;
        let stdout = child.stdout.take().context("simulator stdout")?;
        let mut stdout = BufReader::new(stdout);
        let mut line = String::new();
        stdout
            .read_line(&mut line)
            .context("reading the simulator's address")?;
        let url = line
            .split_whitespace()
            .last()
            .unwrap_or_default()
            .to_owned();
        if !url.starts_with("http://") {
            let _ = child.kill();
            bail!("the simulator did not report its address (got {line:?})");
        }
        Ok(Self {
            child,
            url,
            _stdout: stdout,
        })
    }

    fn client(&self) -> anyhow::Result<AdoClient> {
        let settings = AdoSettings::new(
            self.url.parse().context("simulator URL")?,
            OrgName::parse("demo")?,
        );
        Ok(AdoClient::new(
            settings,
            AdoCredential::Pat(Secret::new(BENCH_PAT)),
        )?)
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

pub async fn run(args: &BenchArgs) -> anyhow::Result<u8> {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    println!(
        "patreport {} bench on {} cores ({cpu}), {} build",
        env!("CARGO_PKG_VERSION"),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        if cfg!(debug_assertions) {
            "DEBUG (numbers are not meaningful)"
        } else {
            "release"
        }
    );
    let (users, memory_users) = if args.quick {
        (2_000, 10_000)
    } else {
        (args.users, args.memory_users)
    };
    let mut verdicts = Vec::new();
    if args.case.contains(&Case::Memory) {
        verdicts.extend(memory_case(args, memory_users).await?);
    }
    if args.case.contains(&Case::Speed) {
        verdicts.extend(speed_case(args, users).await?);
    }
    if args.case.contains(&Case::Throttled) {
        verdicts.extend(throttled_case(args, users).await?);
    }
    if args.case.contains(&Case::Tstu) {
        verdicts.extend(tstu_case(args, users).await?);
    }
    if args.case.contains(&Case::View) {
        verdicts.extend(view_case(memory_users).await?);
    }
    if args.case.contains(&Case::Refresh) {
        verdicts.extend(refresh_case(args, users).await?);
    }
    let missed = verdicts.iter().filter(|v| **v == Verdict::Missed).count();
    let unmeasured = verdicts
        .iter()
        .filter(|v| **v == Verdict::NotMeasured)
        .count();
    println!(
        "\n{}",
        match (missed, unmeasured) {
            (0, 0) => "All targets met.".to_owned(),
            (0, n) => format!("No target missed; {n} not measured at full size."),
            (m, _) => format!("{m} targets MISSED."),
        }
    );
    Ok(super::exit::OK)
}

/// What one probe reports.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct ProbeFigures {
    rows: usize,
    users: usize,
    seconds: f64,
    workbook_seconds: Option<f64>,
    peak_rss: u64,
    /// Resident memory after each stage of the pipeline, and the peak so far (command line
    /// path: the stages are the pipeline's own).
    #[serde(default)]
    stages: Vec<(String, u64, u64)>,
    /// Whether the report was compared with an earlier one.
    #[serde(default)]
    compared: bool,
}

/// 100,000 PATs through the whole pipeline, by the command line's path and the worker's.
async fn memory_case(args: &BenchArgs, users: usize) -> anyhow::Result<Vec<Verdict>> {
    println!("\n[memory] {users} people, no added latency; each path in a process of its own");
    let sim = Simulator::start(users, Duration::ZERO, None)?;
    // The second command-line report goes into the first's folder, as a daily run does: it
    // reads the first (100,000 rows of JSON) to count the changes.
    let folder = tempfile::tempdir().context("a folder for the reports")?;
    let cli = probe(&sim, ProbePath::Cli, None, Some(folder.path()))?;
    let compared = probe(&sim, ProbePath::Cli, None, Some(folder.path()))?;
    let storage = match &args.storage {
        Some(connection) => Some((connection.clone(), None)),
        None => match AzuriteProcess::start() {
            Ok(azurite) => Some((azurite.connection_string(), Some(azurite))),
            Err(e) => {
                println!("  worker path: no storage ({e}); pass --storage or run `npm ci`");
                None
            }
        },
    };
    let worker = match &storage {
        Some((connection, _)) => Some(probe(&sim, ProbePath::Worker, Some(connection), None)?),
        None => None,
    };
    drop(sim);
    println!(
        "  {:<8} {:>8} {:>9} {:>10} {:>11}",
        "path", "rows", "time", "workbook", "peak RSS"
    );
    for (name, f) in [
        ("cli", Some(&cli)),
        ("cli+cmp", Some(&compared)),
        ("worker", worker.as_ref()),
    ] {
        match f {
            Some(f) => println!(
                "  {name:<8} {:>8} {:>8.2}s {:>10} {:>11}",
                f.rows,
                f.seconds,
                f.workbook_seconds
                    .map_or("-".into(), |s| format!("{s:.2}s")),
                mb(f.peak_rss)
            ),
            None => println!("  {name:<8} {:>8}", "not run"),
        }
    }
    if !cli.stages.is_empty() {
        let stages: Vec<String> = cli
            .stages
            .iter()
            .map(|(stage, current, peak)| format!("{stage} {} (peak {})", mb(*current), mb(*peak)))
            .collect();
        println!(
            "  command line, resident after each stage: {}",
            stages.join(", ")
        );
    }
    let full = |f: &ProbeFigures| f.rows >= MEMORY_CASE_ROWS;
    let cli_peak = Verdict::of(full(&cli), cli.peak_rss < PEAK_TARGET);
    let compared_peak = Verdict::of(
        full(&compared) && compared.compared,
        compared.peak_rss < PEAK_TARGET,
    );
    let workbook = Verdict::of(full(&cli), cli.workbook_seconds.is_some_and(|s| s < 2.0));
    let (worker_peak, worker_ratio) = match &worker {
        Some(w) => (
            Verdict::of(full(w), w.peak_rss < PEAK_TARGET),
            Verdict::of(
                full(w) && full(&cli),
                w.peak_rss as f64 <= cli.peak_rss as f64 * WORKER_OVER_CLI,
            ),
        ),
        None => (Verdict::NotMeasured, Verdict::NotMeasured),
    };
    println!(
        "  target: peak RSS < 150 MB for 100,000 PATs, command line: {}",
        cli_peak.text()
    );
    println!(
        "  target: peak RSS < 150 MB for 100,000 PATs, command line comparing with the last report: {}",
        compared_peak.text()
    );
    println!(
        "  target: peak RSS < 150 MB for 100,000 PATs, Functions worker: {}",
        worker_peak.text()
    );
    if let Some(w) = &worker {
        println!(
            "  worker / command line peak = {:.3}",
            w.peak_rss as f64 / cli.peak_rss.max(1) as f64
        );
    }
    println!(
        "  target: worker peak within 10% of the command line's: {}",
        worker_ratio.text()
    );
    println!("  target: 100,000-row workbook < 2 s: {}", workbook.text());
    Ok(vec![
        cli_peak,
        compared_peak,
        worker_peak,
        worker_ratio,
        workbook,
    ])
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProbePath {
    /// `patreport report`: the pipeline into a local folder.
    Cli,
    /// The Functions worker: a queued job through `PatReportWorker`, uploads to storage.
    Worker,
}

/// Run one path of the memory case in a child process and read its figures.
fn probe(
    sim: &Simulator,
    path: ProbePath,
    storage: Option<&str>,
    dir: Option<&std::path::Path>,
) -> anyhow::Result<ProbeFigures> {
    let exe = std::env::current_exe().context("locating the patreport binary")?;
    let mut cmd = Command::new(exe);
    cmd.args(["bench-probe", "--ado-url", &sim.url])
        .arg("--path")
        .arg(match path {
            ProbePath::Cli => "cli",
            ProbePath::Worker => "worker",
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if let Some(storage) = storage {
        cmd.env(names::STORAGE_CONNECTION, storage);
    }
    if let Some(dir) = dir {
        cmd.arg("--dir").arg(dir);
    }
    let output = cmd.output().context("running a bench probe")?;
    let text = String::from_utf8_lossy(&output.stdout);
    let line = text.lines().last().unwrap_or_default();
    serde_json::from_str(line).with_context(|| {
        format!(
            "the {path:?} probe did not report its figures ({}): {text}",
            output.status
        )
    })
}

#[derive(Debug, Clone, clap::Args)]
pub struct ProbeArgs {
    #[arg(long, value_enum)]
    pub path: ProbePath,
    /// The simulator to scan.
    #[arg(long)]
    pub ado_url: url::Url,
    /// The folder of the command line's report (an earlier report there is compared with);
    /// a new temporary one when not given.
    #[arg(long)]
    pub dir: Option<std::path::PathBuf>,
}

/// One report of the simulated organization into `dir`, the way `patreport report` makes it
/// (every token, valid or not, as the benchmark's figures count them).
async fn local_report(
    ado_url: url::Url,
    org: OrgName,
    formats: Vec<Format>,
    dir: &std::path::Path,
) -> anyhow::Result<pipeline::Produced> {
    let mut scan = ScanSettings::defaults(None);
    scan.ado_url = ado_url;
    scan.include_invalid = true;
    let plan = scan.plan(org, formats);
    let credential = AdoCredential::Pat(Secret::new(BENCH_PAT));
    Ok(pipeline::run(&plan, credential, &Quiet, &LocalFiles::new(dir)).await?)
}

/// `patreport bench-probe` (hidden): one report through one path, then one JSON line of
/// figures on stdout. Memory is read once at the end: the peak is the whole run's.
pub async fn probe_run(args: &ProbeArgs) -> anyhow::Result<u8> {
    let org = OrgName::parse("demo")?;
    let started = Instant::now();
    let mut stages = Vec::new();
    let mut compared = false;
    let (rows, users, workbook) = match args.path {
        ProbePath::Cli => {
            let temporary = tempfile::tempdir().context("a folder for the report")?;
            let dir = args.dir.as_deref().unwrap_or(temporary.path());
            let produced =
                local_report(args.ado_url.clone(), org, Format::ALL.to_vec(), dir).await?;
            compared = produced
                .changes
                .as_ref()
                .is_some_and(|c| c.previous.is_some());
            stages = produced
                .timings
                .memory
                .iter()
                .map(|(stage, m)| ((*stage).to_owned(), m.current, m.peak))
                .collect();
            (
                produced.summary.pats,
                produced.summary.users_listed,
                produced.timings.workbook(),
            )
        }
        ProbePath::Worker => worker_probe(&args.ado_url, org).await?,
    };
    let seconds = started.elapsed().as_secs_f64();
    let memory = Memory::now().context("reading this process's memory (Linux only)")?;
    let figures = ProbeFigures {
        rows,
        users,
        seconds,
        workbook_seconds: workbook.map(|d| d.as_secs_f64()),
        peak_rss: memory.peak,
        stages,
        compared,
    };
    println!("{}", serde_json::to_string(&figures)?);
    Ok(super::exit::OK)
}

/// The worker's own code: settings as the app reads them, a queued job, the invocation the
/// host would send, the status document and uploads. Storage comes from the environment.
async fn worker_probe(
    ado_url: &url::Url,
    org: OrgName,
) -> anyhow::Result<(usize, usize, Option<Duration>)> {
    let storage = std::env::var(names::STORAGE_CONNECTION)
        .context("the worker path needs storage (AzureWebJobsStorage)")?;
    let settings: BTreeMap<&str, String> = BTreeMap::from([
        (names::ORGS, org.to_string()),
        (names::ADO_URL, ado_url.to_string()),
        (names::AUTH, "pat".into()),
        (names::PAT, BENCH_PAT.into()),
        (names::STORAGE_CONNECTION, storage),
        (names::SCHEDULE, "0 0 6 * * 1".into()),
        (names::INCLUDE_INVALID, "true".into()),
        (names::CONTAINER, format!("bench-{:08x}", fastrand::u32(..))),
    ]);
    let settings = ServiceSettings::from_lookup(|name| settings.get(name).cloned())?;
    let state = AppState::for_settings(settings)?;
    let now = OffsetDateTime::now_utc();
    let job = functions::job::JobMessage {
        run_id: RunId::new(now),
        org,
        requested_at: now,
        source: RunSource::Timer,
        requested_by: None,
    };
    let invocation: functions::protocol::InvokeRequest =
        serde_json::from_value(serde_json::json!({
            "Data": { functions::worker::TRIGGER_BINDING: job.to_text() },
            "Metadata": { "DequeueCount": 1, "Id": "bench" }
        }))?;
    match functions::worker::handle(&state, &invocation).await {
        functions::worker::Outcome::Done(_) => {}
        functions::worker::Outcome::Retry(reason) => {
            bail!("the worker asked for a retry: {reason}")
        }
    }
    let status = state
        .runs()
        .await?
        .load_status(&job.run_id)
        .await?
        .context("the run has no status document")?;
    let summary = status
        .summary()
        .with_context(|| format!("the run did not succeed: {:?}", status.error()))?;
    Ok((summary.pats, summary.users_listed, None))
}

/// A file of the repository's tree (the bench's helpers), from the current folder or the
/// checkout the binary was built in.
fn repo_file(relative: &str) -> Option<PathBuf> {
    [
        std::env::current_dir().unwrap_or_default(),
        PathBuf::from(env!("CARGO_MANIFEST_DIR")),
    ]
    .into_iter()
    .map(|root| root.join(relative))
    .find(|p| p.exists())
}

/// Azurite from `node_modules`, for the worker path; stopped when dropped.
struct AzuriteProcess {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl AzuriteProcess {
    fn start() -> anyhow::Result<Self> {
        let entry = repo_file("node_modules/azurite/dist/src/blob/main.js")
            .context("Azurite is not installed")?;
        let dir = tempfile::tempdir()?;
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
            listener.local_addr()?.port()
        };
        let child = Command::new("node")
            .arg(&entry)
            .args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()])
            .args([
                "--inMemoryPersistence",
                "--disableTelemetry",
                "--skipApiVersionCheck",
                "--loose",
            ])
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting node")?;
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if started.elapsed() > Duration::from_secs(30) {
                bail!("Azurite did not start listening within 30 s");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(Self {
            child,
            port,
            _dir: dir,
        })
    }

    fn connection_string(&self) -> String {
        format!(
            "DefaultEndpointsProtocol=http;AccountName={a};AccountKey={k};BlobEndpoint=http://127.0.0.1:{p}/{a}",
            a = crate::storage::connection::DEV_ACCOUNT,
            k = crate::storage::connection::DEV_ACCOUNT_KEY,
            p = self.port
        )
    }
}

impl Drop for AzuriteProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What `scripts/view-bench.mjs` reports.
#[derive(Debug, serde::Deserialize)]
struct ViewFigures {
    html_bytes: u64,
    json_bytes: Option<u64>,
    first_rows_ms: f64,
    keystroke_ms: f64,
    rows: usize,
}

/// The HTML view of the memory case's organization: its size against the JSON's, the time
/// until the first rows show and a search keystroke, in headless Chromium.
async fn view_case(users: usize) -> anyhow::Result<Vec<Verdict>> {
    println!("\n[view] {users} people: the HTML report in headless Chromium");
    let sim = Simulator::start(users, Duration::ZERO, None)?;
    let dir = tempfile::tempdir().context("a folder for the report")?;
    let produced = local_report(
        sim.url.parse().context("simulator URL")?,
        OrgName::parse("demo")?,
        vec![Format::Json, Format::Html],
        dir.path(),
    )
    .await?;
    drop(sim);
    let html = produced
        .outputs
        .iter()
        .find(|o| o.format == Format::Html)
        .map(|o| o.location.clone())
        .context("the HTML output")?;
    let script = repo_file("scripts/view-bench.mjs")
        .context("scripts/view-bench.mjs is not here: run the bench from the repository")?;
    let output = Command::new("node")
        .arg(&script)
        .arg(&html)
        .current_dir(
            script
                .parent()
                .and_then(|p| p.parent())
                .unwrap_or(dir.path()),
        )
        .stderr(Stdio::inherit())
        .output();
    let figures: Option<ViewFigures> = output.ok().and_then(|o| {
        let text = String::from_utf8_lossy(&o.stdout).into_owned();
        serde_json::from_str(text.lines().last().unwrap_or_default()).ok()
    });
    let Some(f) = figures else {
        println!("  not measured: node, @playwright/test (npm ci) or Chromium is missing");
        return Ok(vec![Verdict::NotMeasured; 3]);
    };
    let full = f.rows >= MEMORY_CASE_ROWS;
    let ratio = f.json_bytes.map(|j| f.html_bytes as f64 / j.max(1) as f64);
    println!(
        "  {} rows; html {}, json {} (html / json = {})",
        f.rows,
        mb(f.html_bytes),
        f.json_bytes.map_or("-".into(), mb),
        ratio.map_or("-".into(), |r| format!("{r:.2}"))
    );
    let size = Verdict::of(full && ratio.is_some(), ratio.is_some_and(|r| r <= 1.5));
    let first = Verdict::of(full, f.first_rows_ms <= 1500.0);
    let key = Verdict::of(full, f.keystroke_ms <= 100.0);
    println!("  target: html no more than 1.5x the json: {}", size.text());
    println!(
        "  first rows visible {:.0} ms   target <= 1500 ms: {}",
        f.first_rows_ms,
        first.text()
    );
    println!(
        "  search keystroke {:.1} ms   target <= 100 ms: {}",
        f.keystroke_ms,
        key.text()
    );
    Ok(vec![size, first, key])
}

fn scan_options(args: &BenchArgs) -> ScanOptions {
    ScanOptions {
        concurrency: args.concurrency,
        time_budget: None,
        stop: Default::default(),
        include_ssh_keys: false,
    }
}

/// Wall time against the floor, and against the sequential walk.
async fn speed_case(args: &BenchArgs, users: usize) -> anyhow::Result<Vec<Verdict>> {
    println!(
        "\n[speed] {users} people, {} ms latency, concurrency {}",
        args.latency.as_millis(),
        args.concurrency
    );
    let sim = Simulator::start(users, args.latency, None)?;
    let client = sim.client()?;
    let started = Instant::now();
    let inventory = engine::scan(&client, &scan_options(args), &NoProgress).await?;
    let wall = started.elapsed();
    let pat_requests = inventory.stats.pat_pages;
    let floor = bench::floor(
        inventory.stats.user_pages,
        pat_requests,
        args.latency,
        args.concurrency,
    );
    let ratio = wall.as_secs_f64() / floor.as_secs_f64().max(f64::EPSILON);
    println!(
        "  scan {:.2}s: {} users, {} PATs, {} requests ({} user pages, {} PAT pages), {} failed",
        wall.as_secs_f64(),
        inventory.users.len(),
        inventory.pat_count(),
        inventory.stats.api_calls,
        inventory.stats.user_pages,
        pat_requests,
        inventory.failures.len()
    );
    let full = users >= 10_000;
    let speed = Verdict::of(full, ratio <= 1.25 && inventory.failures.is_empty());
    println!(
        "  floor {:.2}s, wall / floor = {ratio:.3}   target <= 1.25 at 10,000 people: {}",
        floor.as_secs_f64(),
        speed.text()
    );
    let mut verdicts = vec![speed];
    if !args.skip_baseline {
        let client = sim.client()?;
        let started = Instant::now();
        let (b_users, b_pats, b_requests) = bench::sequential_scan(&client).await?;
        let baseline = started.elapsed();
        let speedup = baseline.as_secs_f64() / wall.as_secs_f64().max(f64::EPSILON);
        println!(
            "  sequential baseline {:.2}s ({b_users} users, {b_pats} PATs, {b_requests} requests, one at a time)",
            baseline.as_secs_f64()
        );
        let verdict = Verdict::of(full, speedup >= 12.0);
        println!(
            "  speed-up {speedup:.1}x   target >= 12x at 10,000 people: {}",
            verdict.text()
        );
        verdicts.push(verdict);
    }
    Ok(verdicts)
}

/// A rate-limited organization: no user lost, and close to the rate the service allows.
async fn throttled_case(args: &BenchArgs, users: usize) -> anyhow::Result<Vec<Verdict>> {
    let rate = args.window_soft as f64 / args.window.as_secs_f64();
    println!(
        "\n[throttled] {users} people, {} ms latency, window {:.0}s: {} requests served undelayed, 429 past {} (R = {rate:.0} requests/s)",
        args.latency.as_millis(),
        args.window.as_secs_f64(),
        args.window_soft,
        args.window_budget
    );
    let sim = Simulator::start(users, args.latency, Some((args, args.window)))?;
    let client = sim.client()?;
    let started = Instant::now();
    let inventory = engine::scan(&client, &scan_options(args), &NoProgress).await?;
    let wall = started.elapsed();
    let ideal = inventory.stats.api_calls as f64 / rate;
    let ratio = wall.as_secs_f64() / ideal;
    println!(
        "  scan {:.2}s: {} requests, {} users failed, throttled {} times ({:.1}s paused), {} retries",
        wall.as_secs_f64(),
        inventory.stats.api_calls,
        inventory.failures.len(),
        inventory.stats.throttled,
        inventory.stats.throttle_wait.as_secs_f64(),
        inventory.stats.retries
    );
    let verdict = Verdict::of(
        users >= 10_000,
        ratio <= 1.2 && inventory.failures.is_empty(),
    );
    println!(
        "  requests / R = {ideal:.2}s, wall / that = {ratio:.3}   target <= 1.2 with 0 failed users at 10,000 people: {}",
        verdict.text()
    );
    Ok(vec![verdict])
}

/// Owners changed between the full scan and the refresh in the refresh case.
const REFRESH_CHANGED_OWNERS: usize = 20;

/// An incremental refresh after [`REFRESH_CHANGED_OWNERS`] owners changed: its Token Admin
/// requests and wall time against a full scan's of the same organization at the same latency,
/// and its inventory against the full scan's. The simulator runs in this process here: the
/// organization has to change between the scans, and both scans are measured the same way.
async fn refresh_case(args: &BenchArgs, users: usize) -> anyhow::Result<Vec<Verdict>> {
    use crate::refresh::{self, RefreshOptions, STATE_VERSION, State};
    use crate::simulator::{NewPat, OrgSpec, PatChange, PatUse, SimConfig, SimOrg, SimServer};
    println!(
        "\n[refresh] {users} people, {} ms latency, {REFRESH_CHANGED_OWNERS} owners changed since the state",
        args.latency.as_millis()
    );
    let org = SimOrg::generate(
        "demo",
        &OrgSpec::with_users(users),
        OffsetDateTime::now_utc(),
    );
    let mut config = SimConfig::strict();
    config.faults.latency = args.latency;
    config.auth = crate::simulator::AuthConfig::accepting(&[BENCH_PAT], &[]);
    let server = SimServer::start(org, config).await?;
    let url: url::Url = server.base_url().parse()?;
    let mut settings = AdoSettings::new(url.clone(), OrgName::parse("demo")?);
    settings.audit_url = url;
    let client = AdoClient::new(settings, AdoCredential::Pat(Secret::new(BENCH_PAT)))?;
    let options = scan_options(args);

    let as_of = OffsetDateTime::now_utc();
    let listings = || server.stats().pat_requests;
    let (before, started) = (listings(), Instant::now());
    let first = engine::scan(&client, &options, &NoProgress).await?;
    let full_wall = started.elapsed();
    let full_listings = listings() - before;

    // Twenty people change: each gets one of the changes the audit log records, in turn.
    let people: Vec<(String, Option<String>)> = first
        .users
        .iter()
        .filter_map(|u| {
            let valid = u
                .pats
                .iter()
                .find(|p| p.is_valid && p.display_name.is_some());
            valid.map(|p| (u.user.descriptor.clone(), p.authorization_id.clone()))
        })
        .step_by((first.users.len() / (REFRESH_CHANGED_OWNERS * 3)).max(1))
        .take(REFRESH_CHANGED_OWNERS)
        .collect();
    let at = OffsetDateTime::now_utc();
    server.mutate(|m| {
        for (i, (owner, pat)) in people.iter().enumerate() {
            let Some(pat) = pat.as_deref() else { continue };
            let done = match i % 6 {
                0 => m
                    .create_pat(
                        owner,
                        NewPat::named(&format!("bench new {i}"), at + time::Duration::days(30)),
                        at,
                    )
                    .map(drop),
                1 => m.update_pat(
                    pat,
                    PatChange {
                        display_name: Some(format!("bench renamed {i}")),
                        ..PatChange::default()
                    },
                    at,
                ),
                2 => m.revoke_by_owner(pat, at),
                3 => m.revoke_by_admin(pat, at),
                4 => m.expire(pat, at),
                _ => m.public_discovery(pat, at),
            };
            if let Err(e) = done {
                tracing::warn!(error = %e, "a bench change could not be made");
            }
            let _ = m.pat_use(
                pat,
                PatUse::GitRepositoryCreated,
                crate::simulator::GIT_USER_AGENT,
                at,
            );
        }
    });
    let state = State {
        version: STATE_VERSION,
        org: first.org.clone(),
        as_of,
        last_full_scan: as_of,
        ssh_keys: false,
        users: first.users,
        signals: first.signals,
        seen_events: Vec::new(),
        audit_until: None,
    };
    let incremental = RefreshOptions {
        incremental: true,
        ..RefreshOptions::default()
    };
    let (before, started) = (listings(), Instant::now());
    let (refreshed, info) = refresh::inventory(
        &client,
        &options,
        &incremental,
        Some(Ok(state)),
        &NoProgress,
        OffsetDateTime::now_utc(),
    )
    .await?;
    let refresh_wall = started.elapsed();
    let refresh_listings = listings() - before;

    // The refresh's floor: the users listing, one page after the other.
    let started = Instant::now();
    let mut pages = std::pin::pin!(client.users());
    while let Some(page) = futures::StreamExt::next(&mut pages).await {
        page?;
    }
    let listing_wall = started.elapsed();
    println!(
        "  the users listing alone {:.2}s",
        listing_wall.as_secs_f64()
    );
    let (before, started) = (listings(), Instant::now());
    let truth = engine::scan(&client, &options, &NoProgress).await?;
    let second_full = started.elapsed();
    let _ = listings() - before;
    let by_user = |inv: &crate::inventory::Inventory| {
        inv.users
            .iter()
            .map(|u| (u.user.descriptor.clone(), u.clone()))
            .collect::<BTreeMap<_, _>>()
    };
    let (mine, theirs) = (by_user(&refreshed), by_user(&truth));
    let identical = mine.len() == theirs.len()
        && mine.iter().all(|(d, u)| {
            theirs
                .get(d)
                .is_some_and(|t| t.user == u.user && refresh::same_tokens(u, t))
        })
        && refreshed.failures.is_empty()
        && truth.failures.is_empty();
    server.shutdown().await;

    println!(
        "  full scan {:.2}s ({full_listings} Token Admin requests); again after the changes {:.2}s",
        full_wall.as_secs_f64(),
        second_full.as_secs_f64()
    );
    println!(
        "  refresh {:.2}s ({refresh_listings} Token Admin requests, {} user pages, {} requests in all): {}",
        refresh_wall.as_secs_f64(),
        refreshed.stats.user_pages,
        refreshed.stats.api_calls,
        info.describe()
    );
    let full_size = users >= 10_000;
    let calls = refresh_listings as f64 / full_listings.max(1) as f64;
    let time = refresh_wall.as_secs_f64() / full_wall.as_secs_f64().max(f64::EPSILON);
    let calls_verdict = Verdict::of(full_size, calls <= 0.02 && info.is_incremental());
    let time_verdict = Verdict::of(full_size, time <= 0.05 && info.is_incremental());
    let same_verdict = Verdict::of(true, identical);
    println!(
        "  Token Admin requests refresh / full = {:.2}%   target <= 2% at 10,000 people: {}",
        calls * 100.0,
        calls_verdict.text()
    );
    println!(
        "  wall refresh / full = {:.2}%   target <= 5% at 10,000 people: {}",
        time * 100.0,
        time_verdict.text()
    );
    println!(
        "  the refreshed inventory is the full scan's (users, ids, fields): {}",
        same_verdict.text()
    );
    Ok(vec![calls_verdict, time_verdict, same_verdict])
}

/// The documented rate limit: one scan per cost per call, each against its floor (the latency
/// floor, or the budget floor when that is longer: `bench::budget_floor`), with no user lost;
/// and, where the budget is never approached, against the same scan unthrottled.
async fn tstu_case(args: &BenchArgs, users: usize) -> anyhow::Result<Vec<Verdict>> {
    const LIMIT: f64 = 200.0;
    let window = args.tstu_window;
    println!(
        "\n[tstu] {users} people, {} ms latency, concurrency {}: {LIMIT:.0} TSTU per {:.0} s sliding window; a Graph page costs 10x a Token Admin listing, each call ±50%",
        args.latency.as_millis(),
        args.concurrency,
        window.as_secs_f64()
    );
    let full = users >= 10_000 && window >= Duration::from_secs(60);
    // The unthrottled scan, for the cases that never approach the budget.
    let sim = Simulator::start(users, args.latency, None)?;
    let started = Instant::now();
    engine::scan(&sim.client()?, &scan_options(args), &NoProgress).await?;
    let unthrottled = started.elapsed();
    drop(sim);
    println!("  unthrottled scan {:.2}s", unthrottled.as_secs_f64());
    let mut verdicts = Vec::new();
    for &cost in &args.tstu_costs {
        let sim = Simulator::start_with(users, args.latency, None, Some((cost, window)))?;
        let client = sim.client()?;
        let started = Instant::now();
        let inventory = engine::scan(&client, &scan_options(args), &NoProgress).await?;
        let wall = started.elapsed();
        drop(sim);
        let st = &inventory.stats;
        // The model's mean costs: what the calls cost on average (each one varies).
        let total = st.user_pages as f64 * cost * 10.0 + st.pat_pages as f64 * cost;
        let latency_floor =
            bench::floor(st.user_pages, st.pat_pages, args.latency, args.concurrency);
        let budget = bench::budget_floor(
            total,
            LIMIT,
            window,
            st.user_pages + st.pat_pages,
            args.latency,
            args.concurrency,
        );
        let floor = latency_floor.max(budget);
        let ratio = wall.as_secs_f64() / floor.as_secs_f64().max(f64::EPSILON);
        println!(
            "  cost {cost} TSTU per listing: {total:.1} TSTU in all; scan {:.2}s, {} requests, {} users failed, throttled {} times, delayed {:.1}s",
            wall.as_secs_f64(),
            st.api_calls,
            inventory.failures.len(),
            st.throttled,
            st.rate_limit_delay.as_secs_f64()
        );
        println!(
            "    measured by the client: {:.1} TSTU, {} per call ({}), lowest Remaining {}",
            st.tstu_consumed,
            st.tstu_per_call.map_or("-".into(), |c| format!("{c:.4}")),
            st.tstu_per_call_by_api
                .iter()
                .map(|(api, c)| format!("{api} {c:.4}"))
                .collect::<Vec<_>>()
                .join(", "),
            st.lowest_remaining
                .map_or("-".into(), |r| format!("{r:.1}"))
        );
        let verdict = Verdict::of(full, ratio <= 1.05 && inventory.failures.is_empty());
        println!(
            "    floor {:.2}s (latency {:.2}s, budget {:.2}s), wall / floor = {ratio:.3}   target <= 1.05 with 0 failed users: {}",
            floor.as_secs_f64(),
            latency_floor.as_secs_f64(),
            budget.as_secs_f64(),
            verdict.text()
        );
        verdicts.push(verdict);
        if total <= LIMIT {
            let against = wall.as_secs_f64() / unthrottled.as_secs_f64().max(f64::EPSILON);
            let verdict = Verdict::of(full, against <= 1.05);
            println!(
                "    budget never approached: wall / unthrottled = {against:.3}   target <= 1.05 (no slower, within run-to-run noise): {}",
                verdict.text()
            );
            verdicts.push(verdict);
        }
    }
    Ok(verdicts)
}
