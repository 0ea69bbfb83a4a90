//! Client-wide pacing: when Azure DevOps asks one request to slow down (429, or
//! `Retry-After` on a delayed 200), every worker waits, not just the one that was told.
//! Also counts calls, retries and throttling for the Run sheet.

use azure_core::http::headers::HeaderName;
use azure_core::http::policies::{Policy, PolicyResult};
use azure_core::http::{Context, Request};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::time::Instant;

const RETRY_AFTER: HeaderName = HeaderName::from_static("retry-after");

/// Longest single pause we accept from a `Retry-After` (the service documents up to 30 s;
/// a larger value is more likely a bug than a real instruction).
const MAX_PAUSE: Duration = Duration::from_secs(60);

/// Shared by every request of one client.
#[derive(Debug, Default)]
pub struct Pacer {
    calls: AtomicU64,
    attempts: AtomicU64,
    throttled: AtomicU64,
    pause: Mutex<PauseState>,
}

#[derive(Debug, Default)]
struct PauseState {
    until: Option<Instant>,
    /// Wall-clock time covered by pauses (overlapping pauses count once).
    total: Duration,
}

/// A snapshot of the counters.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PacingStats {
    pub api_calls: u64,
    pub retries: u64,
    pub throttled: u64,
    pub throttle_wait: Duration,
}

impl Pacer {
    /// One logical call (retries of it are counted by the per-try policy).
    pub fn note_call(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
    }

    pub fn stats(&self) -> PacingStats {
        let attempts = self.attempts.load(Ordering::Relaxed);
        let calls = self.calls.load(Ordering::Relaxed);
        PacingStats {
            api_calls: attempts,
            retries: attempts.saturating_sub(calls),
            throttled: self.throttled.load(Ordering::Relaxed),
            throttle_wait: self.lock().total,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PauseState> {
        // A panic while holding this lock cannot leave the state inconsistent.
        self.pause
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Hold every request until `now + wait`.
    pub fn hold(&self, wait: Duration) {
        let wait = wait.min(MAX_PAUSE);
        let now = Instant::now();
        let target = now + wait;
        let mut state = self.lock();
        let current = state.until.filter(|u| *u > now).unwrap_or(now);
        if target > current {
            state.total += target - current;
            state.until = Some(target);
        }
    }

    /// Wait until no pause is in force.
    pub async fn wait_turn(&self) {
        loop {
            let until = self.lock().until;
            match until {
                Some(t) if t > Instant::now() => tokio::time::sleep_until(t).await,
                _ => return,
            }
        }
    }

    fn observe(&self, status: u16, retry_after: Option<Duration>) {
        let asked_to_wait =
            status == 429 || (retry_after.is_some() && (200..300).contains(&status));
        if asked_to_wait {
            self.throttled.fetch_add(1, Ordering::Relaxed);
            // A 429 without Retry-After still means "slow down": pause briefly.
            self.hold(retry_after.unwrap_or(Duration::from_secs(1)));
        }
    }
}

/// Per-try policy: waits for the shared pause, then records what each answer says.
#[derive(Debug)]
pub struct PacingPolicy {
    pacer: Arc<Pacer>,
}

impl PacingPolicy {
    pub fn new(pacer: Arc<Pacer>) -> Self {
        Self { pacer }
    }
}

#[async_trait::async_trait]
impl Policy for PacingPolicy {
    async fn send(
        &self,
        ctx: &Context,
        request: &mut Request,
        next: &[Arc<dyn Policy>],
    ) -> PolicyResult {
        self.pacer.wait_turn().await;
        self.pacer.attempts.fetch_add(1, Ordering::Relaxed);
        let result = next[0].send(ctx, request, &next[1..]).await;
        if let Ok(response) = &result {
            let retry_after = response
                .headers()
                .get_optional_str(&RETRY_AFTER)
                .and_then(parse_retry_after);
            self.pacer
                .observe(u16::from(response.status()), retry_after);
        }
        result
    }
}

/// `Retry-After` in seconds (the service sends whole or decimal seconds).
fn parse_retry_after(value: &str) -> Option<Duration> {
    let secs: f64 = value.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn overlapping_pauses_count_once_and_every_waiter_waits() {
        let pacer = Arc::new(Pacer::default());
        pacer.observe(429, Some(Duration::from_secs(2)));
        pacer.observe(200, Some(Duration::from_secs(1))); // inside the first pause
        let start = Instant::now();
        let a = tokio::spawn({
            let p = pacer.clone();
            async move { p.wait_turn().await }
        });
        pacer.wait_turn().await;
        a.await.unwrap();
        assert_eq!(start.elapsed(), Duration::from_secs(2));
        let stats = pacer.stats();
        assert_eq!(stats.throttled, 2);
        assert_eq!(stats.throttle_wait, Duration::from_secs(2));
    }

    #[test]
    fn a_plain_200_or_500_does_not_pause() {
        let pacer = Pacer::default();
        pacer.observe(200, None);
        pacer.observe(500, None);
        assert_eq!(pacer.stats().throttled, 0);
        assert_eq!(pacer.stats().throttle_wait, Duration::ZERO);
    }

    #[test]
    fn retry_after_parses_seconds_and_rejects_garbage() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after("0.25"), Some(Duration::from_millis(250)));
        assert_eq!(parse_retry_after("soon"), None);
        assert_eq!(parse_retry_after("-1"), None);
    }
}
