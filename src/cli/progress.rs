//! Progress of a scan on stderr: a live bar on a terminal, otherwise a line every few seconds
//! whether or not anything moved (stamped with the time spent, and saying what the scan waits
//! for), so a stalled scan is never silent.

use crate::ado::AdoClient;
use crate::engine::Progress;
use crate::pipeline::{Observer, Stage};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
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
    started: Instant,
    quiet: bool,
}

impl CliProgress {
    pub fn new(quiet: bool) -> Self {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            // No length until the first users page: an empty bar reading 0/0 looks finished.
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(
                // Fits 80 columns: the counts are in the message, the bar is short.
                // No bar: its length (users listed) grows while the listing goes on, and a
                // bar that moves backwards as pages arrive misleads.
                ProgressStyle::with_template("{spinner} {elapsed_precise} {wide_msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.set_message("waiting for the first page of users");
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
            started: Instant::now(),
            quiet,
        }
    }

    fn message(&self) -> String {
        let listed = self.listed.load(Ordering::Relaxed);
        if listed == 0 {
            let mut msg = "waiting for the first page of users".to_owned();
            if let Some(waiting) = self.client.get().and_then(AdoClient::waiting_for) {
                msg.push_str(&format!("; {waiting}"));
            }
            return msg;
        }
        let failed = self.failed.load(Ordering::Relaxed);
        let mut msg = format!(
            "{}/{listed} users read, {} PATs, {failed} not read",
            self.scanned.load(Ordering::Relaxed).saturating_sub(failed),
            self.pats.load(Ordering::Relaxed),
        );
        if let Some(client) = self.client.get() {
            if let Some(waiting) = client.waiting_for() {
                msg.push_str(&format!("; {waiting}"));
            }
            let pacing = client.pacing();
            if pacing.gating {
                msg.push_str("; pacing to the rate limit");
            }
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

    /// Off a terminal, a line every [`LOG_EVERY`] while the scan runs (call it from a ticker):
    /// the time spent, and what has happened or what the scan waits for.
    pub fn tick(&self) {
        if self.quiet || self.bar.is_some() {
            return;
        }
        let elapsed = self.started.elapsed().as_secs();
        eprintln!(
            "progress [{:02}:{:02}]: {}",
            elapsed / 60,
            elapsed % 60,
            self.message()
        );
    }

    /// Until dropped: refreshes the bar's text every second (a pause or a retry changes it
    /// while nothing completes), and off a terminal writes a line every [`LOG_EVERY`].
    pub async fn ticker(&self) -> std::convert::Infallible {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(1));
        every.tick().await;
        let mut ticks = 0u64;
        loop {
            every.tick().await;
            ticks += 1;
            if let Some(bar) = &self.bar {
                bar.set_message(self.message());
            } else if ticks.is_multiple_of(LOG_EVERY.as_secs()) {
                self.tick();
            }
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
            bar.set_message(self.message());
        }
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
