//! `patreport bench`: the scan against the simulated organization on loopback, side by side with
//! the floor, the sequential walk, memory and workbook time. The simulator runs in a child
//! process so that the memory figures are the client's own.

use super::parse_duration;
use crate::ado::{AdoClient, AdoCredential, AdoSettings};
use crate::bench;
use crate::engine::{self, DEFAULT_CONCURRENCY, NoProgress, ScanOptions};
use crate::report::{self, ReportOptions, XlsxPlan};
use crate::secret::Secret;
use anyhow::{Context, bail};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use time::OffsetDateTime;

const BENCH_PAT: &str = "bench-pat";

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
    /// Skip the sequential baseline (it takes (requests × latency): minutes at the defaults).
    #[arg(long)]
    pub skip_baseline: bool,
    /// Small sizes for a quick look (2,000 people, 10,000 in the memory case).
    #[arg(long)]
    pub quick: bool,
    /// Cases to run.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "memory,speed,throttled"
    )]
    pub case: Vec<Case>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Case {
    Memory,
    Speed,
    Throttled,
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
        let settings = AdoSettings::new(self.url.parse().context("simulator URL")?, "demo");
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

fn mb(bytes: Option<u64>) -> String {
    bytes.map_or("n/a".into(), |b| format!("{:.1} MB", b as f64 / 1e6))
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "MISSED" }
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
    let mut all_met = true;
    // Memory first, so the process's peak is this case's peak.
    if args.case.contains(&Case::Memory) {
        all_met &= memory_case(args, memory_users).await?;
    }
    if args.case.contains(&Case::Speed) {
        all_met &= speed_case(args, users).await?;
    }
    if args.case.contains(&Case::Throttled) {
        all_met &= throttled_case(args, users).await?;
    }
    println!(
        "\n{}",
        if all_met {
            "All targets met."
        } else {
            "Some targets were MISSED."
        }
    );
    Ok(super::exit::OK)
}

fn scan_options(args: &BenchArgs) -> ScanOptions {
    ScanOptions {
        concurrency: args.concurrency,
        time_budget: None,
    }
}

/// 100,000 PATs: peak memory of scan + report + workbook, and the workbook's time.
async fn memory_case(args: &BenchArgs, users: usize) -> anyhow::Result<bool> {
    println!("\n[memory] {users} people, no added latency");
    let sim = Simulator::start(users, Duration::ZERO, None)?;
    let client = sim.client()?;
    let before = bench::rss_bytes();
    let started = Instant::now();
    let inventory = engine::scan(&client, &scan_options(args), &NoProgress).await?;
    let scan_time = started.elapsed();
    drop(sim);
    let after_scan = bench::rss_bytes();
    let options = ReportOptions {
        include_invalid: true,
        ..ReportOptions::default()
    };
    // As `patreport report` does: the workbook is laid out before the report is built.
    let started = Instant::now();
    let plan = XlsxPlan::new(report::row_count(&inventory, options))?;
    let layout_time = started.elapsed();
    let report = report::build(
        inventory,
        OffsetDateTime::now_utc(),
        options,
        env!("CARGO_PKG_VERSION"),
    );
    let after_build = bench::rss_bytes();
    let peak_build = bench::peak_rss_bytes();
    let rows = report.rows.len();
    let dir = tempfile::tempdir().context("temporary directory for the workbook")?;
    let path = dir.path().join("bench.xlsx");
    let started = Instant::now();
    let written = path.clone();
    tokio::task::spawn_blocking(move || plan.save(&report, &written)).await??;
    let xlsx_time = layout_time + started.elapsed();
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let peak = bench::peak_rss_bytes();
    println!(
        "  scan {:.2}s, {rows} rows; workbook {:.2}s ({:.1} MB)",
        scan_time.as_secs_f64(),
        xlsx_time.as_secs_f64(),
        size as f64 / 1e6
    );
    println!(
        "  RSS before {}, after the scan {}, with the report built {} (peak so far {}); peak {}",
        mb(before),
        mb(after_scan),
        mb(after_build),
        mb(peak_build),
        mb(peak)
    );
    let rss_ok = rows < 100_000 || peak.is_some_and(|p| p < 150_000_000);
    let xlsx_ok = rows < 100_000 || xlsx_time < Duration::from_secs(2);
    println!(
        "  target: peak RSS < 150 MB for 100,000 PATs: {}",
        verdict(rss_ok)
    );
    println!("  target: 100,000-row workbook < 2 s: {}", verdict(xlsx_ok));
    Ok(rss_ok && xlsx_ok)
}

/// Wall time against the floor, and against the sequential walk.
async fn speed_case(args: &BenchArgs, users: usize) -> anyhow::Result<bool> {
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
    println!(
        "  floor {:.2}s, wall / floor = {ratio:.3}   target <= 1.25: {}",
        floor.as_secs_f64(),
        verdict(ratio <= 1.25)
    );
    let mut met = ratio <= 1.25 && inventory.failures.is_empty();
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
        println!(
            "  speed-up {speedup:.1}x   target >= 12x: {}",
            verdict(speedup >= 12.0)
        );
        met &= speedup >= 12.0;
    }
    Ok(met)
}

/// A rate-limited organization: no user lost, and close to the rate the service allows.
async fn throttled_case(args: &BenchArgs, users: usize) -> anyhow::Result<bool> {
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
    let ok = ratio <= 1.2 && inventory.failures.is_empty();
    println!(
        "  requests / R = {ideal:.2}s, wall / that = {ratio:.3}   target <= 1.2 with 0 failed users: {}",
        verdict(ok)
    );
    Ok(ok)
}
