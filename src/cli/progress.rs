//! Progress of a scan on stderr: a live bar on a terminal, a log line every few seconds otherwise.

use crate::ado::AdoClient;
use crate::engine::Progress;
use crate::pipeline::{Observer, Stage};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How often a non-terminal progress line is written.
const LOG_EVERY: Duration = Duration::from_secs(5);

pub struct CliProgress {
    /// Read for throttling figures once the scan has started.
    client: OnceLock<AdoClient>,
    bar: Option<ProgressBar>,
    listed: AtomicUsize,
    scanned: AtomicUsize,
    pats: AtomicUsize,
    failed: AtomicUsize,
    last_log: Mutex<Instant>,
    quiet: bool,
}

impl CliProgress {
    pub fn new(quiet: bool) -> Self {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} users  {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Self {
            client: OnceLock::new(),
            bar,
            listed: AtomicUsize::new(0),
            scanned: AtomicUsize::new(0),
            pats: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
            last_log: Mutex::new(Instant::now()),
            quiet,
        }
    }

    fn message(&self) -> String {
        let mut msg = format!(
            "{} PATs, {} failed",
            self.pats.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed)
        );
        if let Some(client) = self.client.get() {
            let pacing = client.pacing();
            if pacing.throttled > 0 {
                msg.push_str(&format!(
                    ", throttled {}x ({:.1}s waiting)",
                    pacing.throttled,
                    pacing.throttle_wait.as_secs_f64()
                ));
            }
        }
        msg
    }

    fn maybe_log(&self) {
        if self.quiet || self.bar.is_some() {
            return;
        }
        let mut last = self.last_log.lock().unwrap_or_else(|p| p.into_inner());
        if last.elapsed() >= LOG_EVERY {
            *last = Instant::now();
            eprintln!(
                "progress: {}/{} users scanned, {}",
                self.scanned.load(Ordering::Relaxed),
                self.listed.load(Ordering::Relaxed),
                self.message()
            );
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Progress for CliProgress {
    fn users_listed(&self, listed: usize) {
        self.listed.store(listed, Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.set_length(listed as u64);
        }
        self.maybe_log();
    }

    fn user_scanned(&self, pats: usize, failed: bool) {
        self.scanned.fetch_add(1, Ordering::Relaxed);
        self.pats.fetch_add(pats, Ordering::Relaxed);
        if failed {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(bar) = &self.bar {
            bar.inc(1);
            bar.set_message(self.message());
        }
        self.maybe_log();
    }
}

impl Observer for CliProgress {
    fn stage(&self, stage: Stage<'_>) {
        match stage {
            Stage::Scanning(client) => {
                let _ = self.client.set(client.clone());
            }
            Stage::Writing => {
                if let Some(bar) = &self.bar {
                    bar.set_message("writing the report");
                }
            }
            Stage::Delivering => {}
        }
    }
}
