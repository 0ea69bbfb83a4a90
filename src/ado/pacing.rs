//! Client-wide pacing (the governor). Azure DevOps meters each identity over a sliding window:
//! it first announces usage (`X-RateLimit-Limit/Remaining/Reset`), then delays answers and adds
//! `Retry-After`, then refuses with 429. Every worker shares one governor, so a signal seen by
//! one request slows all of them:
//!
//! - **Retry-After** (on a 429 or a delayed 200) pauses every request for that long, and halves
//!   the request rate (multiplicative decrease, at most once per half second so one burst of
//!   in-flight answers counts once);
//! - **X-RateLimit-Remaining** below a fifth of the limit switches on proactive pacing at the
//!   rate the window sustains (`limit / window`), in proportion to what is left (the sustainable
//!   rate at 10% left): the rate falls toward zero as the remainder does, so the scan slows before
//!   the threshold rather than bouncing off it (each bounce costs a whole-second `Retry-After`
//!   pause), and speeds up as soon as earlier requests leave the window;
//! - with no new signal the rate recovers by 10% a second, and all pacing stops once the
//!   service reports plenty of room again (half the limit or more remaining).
//!
//! It also counts calls, retries and throttling for the Run sheet.

use super::error::AdoError;
use crate::stop::{Stop, StopReason};
use azure_core::error::ErrorKind;
use azure_core::http::headers::{HeaderName, Headers};
use azure_core::http::policies::{Policy, PolicyResult, RetryPolicyCount};
use azure_core::http::{AsyncRawResponse, Context, Request};
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::time::Instant;

const RETRY_AFTER: HeaderName = HeaderName::from_static("retry-after");
const RETRY_AFTER_MS: HeaderName = HeaderName::from_static("retry-after-ms");
const X_MS_RETRY_AFTER_MS: HeaderName = HeaderName::from_static("x-ms-retry-after-ms");
const RATE_LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
const RATE_REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
const RATE_RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");

/// Longest single pause we accept from a `Retry-After`, on every retry path (the governor's
/// pause and the SDK's retry policy alike): the service documents delays of up to 30 s; a
/// larger value is more likely a bug than an instruction.
const MAX_PAUSE: Duration = Duration::from_secs(60);
/// Pacing aims to keep this share of the limit in reserve, and stops above twice it. Small,
/// because a window holding `(1 - share) × limit` requests sustains only that many per window:
/// the reserve is throughput given up for safety.
const PACE_BELOW: f64 = 0.1;
/// One multiplicative decrease per this interval.
const DECREASE_EVERY: Duration = Duration::from_millis(500);
/// Recovery step: +10% of the rate per second without a signal.
const RECOVER_EVERY: Duration = Duration::from_secs(1);
const RECOVER_FACTOR: f64 = 1.1;
/// Send times kept to measure the current request rate.
const RATE_SAMPLES: usize = 128;
/// The slowest the governor will ever go, in requests per second.
const MIN_RATE: f64 = 0.5;
/// Proactive pacing never drops below this share of the sustainable rate, so that answers (and
/// with them fresh usage figures) keep arriving.
const MIN_PACED_SHARE: f64 = 0.1;
/// Waiting requests look at the rate again at least this often.
const RECHECK: Duration = Duration::from_millis(50);

/// Shared by every request of one client.
#[derive(Debug, Default)]
pub struct Pacer {
    calls: AtomicU64,
    attempts: AtomicU64,
    throttled: AtomicU64,
    state: Mutex<State>,
    /// The scan's time budget: its end and the signal that ends it.
    budget: Mutex<Option<(Instant, Stop)>>,
    /// The latest retry: which attempt, of how many, after what, and when.
    retry: Mutex<Option<(u32, u32, String, Instant)>>,
}

#[derive(Debug, Default)]
struct State {
    pause_until: Option<Instant>,
    /// Wall-clock time covered by pauses (overlapping pauses count once).
    paused: Duration,
    /// When the last request was let through.
    last_send: Option<Instant>,
    /// Rate the service's usage headers call for; `None`: no pacing needed.
    header_rate: Option<f64>,
    /// Rate after a Retry-After or 429, recovering over time; `None`: no cap.
    backoff_rate: Option<f64>,
    last_decrease: Option<Instant>,
    last_recovery: Option<Instant>,
    recent_sends: VecDeque<Instant>,
}

/// A snapshot of the counters.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PacingStats {
    pub api_calls: u64,
    pub retries: u64,
    pub throttled: u64,
    pub throttle_wait: Duration,
    /// The request rate the governor currently allows (`None`: unlimited).
    pub rate_limit: Option<f64>,
}

/// What one answer says about throttling.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Signals {
    pub status: u16,
    pub retry_after: Option<Duration>,
    pub limit: Option<f64>,
    pub remaining: Option<f64>,
    /// Seconds until usage would be back to zero (`X-RateLimit-Reset` minus now).
    pub reset_in: Option<f64>,
}

impl Signals {
    pub fn from_headers(status: u16, headers: &Headers) -> Self {
        let num = |name: &HeaderName| {
            headers
                .get_optional_str(name)
                .and_then(|v| v.trim().parse::<f64>().ok())
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        Signals {
            status,
            retry_after: headers
                .get_optional_str(&RETRY_AFTER)
                .and_then(parse_retry_after),
            limit: num(&RATE_LIMIT).filter(|l| *l > 0.0),
            remaining: num(&RATE_REMAINING).filter(|r| *r >= 0.0),
            reset_in: num(&RATE_RESET).map(|reset| reset - now),
        }
    }
}

impl Pacer {
    /// Bind requests to a time budget ending at `deadline`: a `Retry-After` longer than what is
    /// left stops the scan (through `stop`) instead of waiting past the budget.
    pub fn bound_by(&self, deadline: Instant, stop: Stop) {
        *self.budget.lock().unwrap_or_else(|p| p.into_inner()) = Some((deadline, stop));
    }

    /// What is left of the time budget, and the signal to request when it is not enough.
    fn time_left(&self) -> Option<(Duration, Stop)> {
        let budget = self.budget.lock().unwrap_or_else(|p| p.into_inner());
        budget.as_ref().map(|(deadline, stop)| {
            (
                deadline.saturating_duration_since(Instant::now()),
                stop.clone(),
            )
        })
    }

    /// What the scan waits for right now, for progress displays: a pause the service asked
    /// for, or a retry of the last few seconds ("retry 2 of 8 after HTTP 503").
    pub fn waiting_for(&self) -> Option<String> {
        let now = Instant::now();
        let paused = self.lock().pause_until.filter(|p| *p > now);
        if let Some(until) = paused {
            return Some(format!(
                "the service asked to slow down: waiting {:.0} s",
                (until - now).as_secs_f64().ceil()
            ));
        }
        let retry = self.retry.lock().unwrap_or_else(|p| p.into_inner());
        retry
            .as_ref()
            .filter(|(.., at)| now.saturating_duration_since(*at) < Duration::from_secs(15))
            .map(|(attempt, of, why, _)| format!("retry {attempt} of {of} after {why}"))
    }

    fn note_retry(&self, attempt: u32, of: u32, why: String) {
        *self.retry.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((attempt, of, why, Instant::now()));
    }

    /// One logical call (retries of it are counted by the per-try policy).
    pub fn note_call(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
    }

    pub fn stats(&self) -> PacingStats {
        let attempts = self.attempts.load(Ordering::Relaxed);
        let calls = self.calls.load(Ordering::Relaxed);
        let state = self.lock();
        PacingStats {
            api_calls: attempts,
            retries: attempts.saturating_sub(calls),
            throttled: self.throttled.load(Ordering::Relaxed),
            throttle_wait: state.paused,
            rate_limit: state.rate(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the state inconsistent.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Hold every request until `now + wait`.
    pub fn hold(&self, wait: Duration) {
        self.lock().hold(Instant::now(), wait.min(MAX_PAUSE));
    }

    /// Wait for this request's turn: after any pause, and at the paced rate. The rate is read
    /// afresh at least every `RECHECK`, so a change (either way) applies to waiting requests too.
    pub async fn wait_turn(&self) {
        loop {
            let wake = {
                let mut state = self.lock();
                let now = Instant::now();
                state.recover(now);
                let paused = state.pause_until.filter(|p| *p > now);
                let spaced = state
                    .rate()
                    .and_then(|rate| {
                        state
                            .last_send
                            .map(|t| t + Duration::from_secs_f64(1.0 / rate))
                    })
                    .filter(|t| *t > now);
                match paused.or(spaced) {
                    Some(t) => t.min(now + RECHECK),
                    None => {
                        state.last_send = Some(now);
                        state.recent_sends.push_back(now);
                        if state.recent_sends.len() > RATE_SAMPLES {
                            state.recent_sends.pop_front();
                        }
                        return;
                    }
                }
            };
            tokio::time::sleep_until(wake).await;
        }
    }

    /// Take in what an answer says.
    pub fn observe(&self, signals: Signals) {
        let told_to_wait = signals.status == 429
            || (signals.retry_after.is_some() && (200..300).contains(&signals.status));
        let mut state = self.lock();
        let now = Instant::now();
        if told_to_wait {
            self.throttled.fetch_add(1, Ordering::Relaxed);
            // A 429 without Retry-After still means "slow down": pause briefly.
            state.hold(
                now,
                signals
                    .retry_after
                    .unwrap_or(Duration::from_secs(1))
                    .min(MAX_PAUSE),
            );
            state.decrease(now);
        }
        if let (Some(limit), Some(remaining)) = (signals.limit, signals.remaining) {
            let share = remaining / limit;
            // The window length shows in Reset: with steady use, usage returns to zero one
            // window after the last request.
            let sustainable = signals.reset_in.filter(|w| *w >= 1.0).map(|w| limit / w);
            if share < 2.0 * PACE_BELOW {
                // Proportional: at the reserve the sustainable rate, less below it, more above.
                if let Some(sustainable) = sustainable {
                    let scaled = (share / PACE_BELOW).max(MIN_PACED_SHARE);
                    state.header_rate = Some((sustainable * scaled).max(MIN_RATE));
                }
            } else {
                // The service itself reports plenty of room: that outranks an older backoff.
                state.header_rate = None;
                state.backoff_rate = None;
            }
        }
    }
}

impl State {
    fn hold(&mut self, now: Instant, wait: Duration) {
        let target = now + wait;
        let current = self.pause_until.filter(|u| *u > now).unwrap_or(now);
        if target > current {
            self.paused += target - current;
            self.pause_until = Some(target);
        }
    }

    fn rate(&self) -> Option<f64> {
        match (self.header_rate, self.backoff_rate) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Requests per second over the recent sends.
    fn measured_rate(&self) -> Option<f64> {
        let (first, last) = (self.recent_sends.front()?, self.recent_sends.back()?);
        let span = last.saturating_duration_since(*first).as_secs_f64();
        (span > 0.0).then(|| (self.recent_sends.len() - 1) as f64 / span)
    }

    fn decrease(&mut self, now: Instant) {
        if self
            .last_decrease
            .is_some_and(|t| now.saturating_duration_since(t) < DECREASE_EVERY)
        {
            return;
        }
        self.last_decrease = Some(now);
        self.last_recovery = Some(now);
        let current = self.rate().or_else(|| self.measured_rate());
        self.backoff_rate = current
            .map(|r| (r / 2.0).max(MIN_RATE))
            .or(Some(MIN_RATE.max(1.0)));
    }

    fn recover(&mut self, now: Instant) {
        let Some(rate) = self.backoff_rate else {
            return;
        };
        let since = self
            .last_recovery
            .map_or(RECOVER_EVERY, |t| now.saturating_duration_since(t));
        if since < RECOVER_EVERY {
            return;
        }
        let steps = (since.as_secs_f64() / RECOVER_EVERY.as_secs_f64()).floor() as i32;
        let raised = rate * RECOVER_FACTOR.powi(steps);
        self.last_recovery = Some(now);
        // Once the cap is far above what we actually send, it no longer limits anything.
        let measured = self.measured_rate().unwrap_or(0.0);
        self.backoff_rate = (raised < 4.0 * measured.max(MIN_RATE)).then_some(raised);
    }
}

/// Per-try policy: waits for its turn, then records what each answer says.
#[derive(Debug)]
pub struct PacingPolicy {
    pacer: Arc<Pacer>,
    max_retries: u32,
}

impl PacingPolicy {
    pub fn new(pacer: Arc<Pacer>, max_retries: u32) -> Self {
        Self { pacer, max_retries }
    }
}

/// Why an attempt is retried, in a few words.
/// The statuses the SDK's retry policy retries (its defaults, which the client keeps).
fn retried_by_sdk(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
}

fn retry_reason(result: &PolicyResult) -> Option<String> {
    match result {
        Ok(response) => {
            let status = u16::from(response.status());
            retried_by_sdk(status).then(|| format!("HTTP {status}"))
        }
        Err(e) => {
            let text = crate::ado::error::error_chain(e).to_ascii_lowercase();
            let why = if text.contains("refused") {
                "connection refused"
            } else if text.contains("timed out") || text.contains("timeout") {
                "a timeout"
            } else if text.contains("dns") || text.contains("resolve") {
                "a name lookup failure"
            } else {
                "a connection error"
            };
            Some(why.to_owned())
        }
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
        let attempt = ctx.value::<RetryPolicyCount>().map_or(0, |c| **c);
        let result = next[0].send(ctx, request, &next[1..]).await;
        if attempt < self.max_retries
            && let Some(why) = retry_reason(&result)
        {
            self.pacer.note_retry(attempt + 1, self.max_retries, why);
        }
        let response = result?;
        let status = u16::from(response.status());
        let signals = Signals::from_headers(status, response.headers());
        self.pacer.observe(signals);
        // The wait asked for, before the cap: an hour asked for is an hour the budget lacks.
        // Only on answers the SDK's retry policy will wait after (its default statuses, and
        // not on the last attempt); a 2xx carries its data already.
        let retried = attempt < self.max_retries && retried_by_sdk(status);
        let asked = asked_wait(response.headers());
        if retried
            && let Some(wait) = asked
            && let Some((left, stop)) = self.pacer.time_left()
            && wait > left
        {
            // Waiting would outlast the budget: end the scan now, partial and marked.
            stop.request(StopReason::TimeBudget);
            return Err(azure_core::Error::new(
                ErrorKind::Other,
                AdoError::Service {
                    status,
                    type_key: None,
                    message: format!(
                        "the service asked to wait {:.0} s, longer than the {:.0} s left of the time budget",
                        wait.as_secs_f64(),
                        left.as_secs_f64()
                    ),
                },
            ));
        }
        Ok(cap_retry_after(response))
    }
}

/// The answer with any wait it asks for capped at [`MAX_PAUSE`], in the one header the retry
/// policy reads: the SDK's retry obeys `Retry-After` (and `retry-after-ms`,
/// `x-ms-retry-after-ms`) in full, and one answer asking for an hour would stall the scan
/// for an hour.
fn cap_retry_after(response: AsyncRawResponse) -> AsyncRawResponse {
    let headers = response.headers();
    let Some(asked) = asked_wait(headers) else {
        return response;
    };
    let extra = headers.get_optional_str(&RETRY_AFTER_MS).is_some()
        || headers.get_optional_str(&X_MS_RETRY_AFTER_MS).is_some();
    let plain_seconds = headers
        .get_optional_str(&RETRY_AFTER)
        .is_some_and(|v| parse_retry_after_uncapped(v).is_some());
    if asked <= MAX_PAUSE && !extra && plain_seconds {
        return response;
    }
    let (status, headers, body) = response.deconstruct();
    let mut kept = Headers::new();
    for (name, value) in headers.iter() {
        if *name != RETRY_AFTER && *name != RETRY_AFTER_MS && *name != X_MS_RETRY_AFTER_MS {
            kept.insert(name.clone(), value.clone());
        }
    }
    let capped = asked.min(MAX_PAUSE).as_secs_f64().ceil() as u64;
    kept.insert(RETRY_AFTER, capped.to_string());
    AsyncRawResponse::new(status, kept, Box::pin(body))
}

/// `Retry-After` in seconds (the service sends whole or decimal seconds), capped.
fn parse_retry_after(value: &str) -> Option<Duration> {
    parse_retry_after_uncapped(value).map(|d| d.min(MAX_PAUSE))
}

fn parse_retry_after_uncapped(value: &str) -> Option<Duration> {
    let secs: f64 = value.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(1e9)))
}

/// Every wait an answer asks for, before any cap: `Retry-After` in seconds or as an HTTP date
/// (which the SDK's retry policy also obeys), `retry-after-ms`, `x-ms-retry-after-ms`. A
/// `Retry-After` that is neither (unreadable) counts as the longest wait we accept.
fn asked_wait(headers: &Headers) -> Option<Duration> {
    let seconds = headers.get_optional_str(&RETRY_AFTER).map(|v| {
        parse_retry_after_uncapped(v)
            .or_else(|| http_date_wait(v))
            .unwrap_or(MAX_PAUSE)
    });
    let names = [RETRY_AFTER_MS, X_MS_RETRY_AFTER_MS];
    let millis = names
        .iter()
        .filter_map(|h| headers.get_optional_str(h))
        .filter_map(|v| v.trim().parse::<f64>().ok())
        .filter(|ms| ms.is_finite() && *ms >= 0.0)
        .map(|ms| Duration::from_secs_f64(ms.min(1e12) / 1000.0));
    seconds.into_iter().chain(millis).max()
}

/// The wait until an HTTP date (`Fri, 31 Dec 9999 23:59:59 GMT`), from now.
fn http_date_wait(value: &str) -> Option<Duration> {
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let at = time::PrimitiveDateTime::parse(value.trim(), format)
        .ok()?
        .assume_utc();
    let left = at - time::OffsetDateTime::now_utc();
    Some(
        Duration::try_from(left)
            .unwrap_or(Duration::ZERO)
            .min(Duration::from_secs(1_000_000_000)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(headers: &[(&'static str, &str)]) -> AsyncRawResponse {
        let mut h = Headers::new();
        for (name, value) in headers {
            h.insert(HeaderName::from_static(name), (*value).to_owned());
        }
        AsyncRawResponse::from_bytes(azure_core::http::StatusCode::TooManyRequests, h, Vec::new())
    }

    #[tokio::test(start_paused = true)]
    async fn progress_can_say_what_the_scan_waits_for() {
        let pacer = Pacer::default();
        assert_eq!(pacer.waiting_for(), None);
        pacer.note_retry(2, 8, "HTTP 503".into());
        assert_eq!(
            pacer.waiting_for().as_deref(),
            Some("retry 2 of 8 after HTTP 503")
        );
        pacer.hold(Duration::from_secs(5));
        assert_eq!(
            pacer.waiting_for().as_deref(),
            Some("the service asked to slow down: waiting 5 s")
        );
        // Old news is not news: neither the pause nor the retry after they are over.
        tokio::time::advance(Duration::from_secs(20)).await;
        assert_eq!(pacer.waiting_for(), None);
    }

    #[test]
    fn odd_and_hostile_waits_are_capped_without_panicking() {
        // An HTTP date years away, the kind the SDK's retry policy would wait for.
        let far = cap_retry_after(answer(&[("retry-after", "Fri, 31 Dec 9999 23:59:59 GMT")]));
        assert_eq!(far.headers().get_optional_str(&RETRY_AFTER), Some("60"));
        // Unreadable: the longest wait we accept, not the SDK's guess.
        let odd = cap_retry_after(answer(&[("retry-after", "soon")]));
        assert_eq!(odd.headers().get_optional_str(&RETRY_AFTER), Some("60"));
        // Numbers past any Duration.
        let huge = cap_retry_after(answer(&[("x-ms-retry-after-ms", "1e300")]));
        assert_eq!(huge.headers().get_optional_str(&RETRY_AFTER), Some("60"));
        assert!(
            asked_wait(answer(&[("retry-after-ms", "100000000000000000000000")]).headers())
                .is_some()
        );
    }

    #[test]
    fn every_wait_the_retry_policy_reads_is_capped() {
        let capped = cap_retry_after(answer(&[("retry-after", "3600"), ("x-ok", "1")]));
        assert_eq!(capped.headers().get_optional_str(&RETRY_AFTER), Some("60"));
        assert_eq!(
            capped
                .headers()
                .get_optional_str(&HeaderName::from_static("x-ok")),
            Some("1")
        );
        // The millisecond forms the SDK also reads are folded into the one capped header.
        let capped = cap_retry_after(answer(&[("retry-after-ms", "7200000")]));
        assert_eq!(capped.headers().get_optional_str(&RETRY_AFTER), Some("60"));
        assert_eq!(capped.headers().get_optional_str(&RETRY_AFTER_MS), None);
        // A reasonable wait is left alone.
        let kept = cap_retry_after(answer(&[("retry-after", "2")]));
        assert_eq!(kept.headers().get_optional_str(&RETRY_AFTER), Some("2"));
    }

    fn told(status: u16, secs: u64) -> Signals {
        Signals {
            status,
            retry_after: Some(Duration::from_secs(secs)),
            ..Signals::default()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn overlapping_pauses_count_once_and_every_waiter_waits() {
        let pacer = Arc::new(Pacer::default());
        pacer.observe(told(429, 2));
        pacer.observe(told(200, 1)); // inside the first pause
        let start = Instant::now();
        let other = tokio::spawn({
            let p = pacer.clone();
            async move { p.wait_turn().await }
        });
        pacer.wait_turn().await;
        other.await.unwrap();
        assert!(start.elapsed() >= Duration::from_secs(2));
        let stats = pacer.stats();
        assert_eq!(stats.throttled, 2);
        assert_eq!(stats.throttle_wait, Duration::from_secs(2));
    }

    #[test]
    fn a_plain_200_or_500_does_not_pause_or_pace() {
        let pacer = Pacer::default();
        pacer.observe(Signals {
            status: 200,
            ..Signals::default()
        });
        pacer.observe(Signals {
            status: 500,
            ..Signals::default()
        });
        let stats = pacer.stats();
        assert_eq!(
            (stats.throttled, stats.throttle_wait, stats.rate_limit),
            (0, Duration::ZERO, None)
        );
    }

    #[test]
    fn low_remaining_paces_at_the_sustainable_rate_and_plenty_stops_it() {
        let pacer = Pacer::default();
        let usage = |remaining: f64| Signals {
            status: 200,
            limit: Some(200.0),
            remaining: Some(remaining),
            reset_in: Some(10.0),
            ..Signals::default()
        };
        let rate = |p: &Pacer| p.stats().rate_limit.map(|r| (r * 1000.0).round() / 1000.0);
        pacer.observe(usage(150.0));
        assert_eq!(rate(&pacer), None, "plenty left: no pacing");
        pacer.observe(usage(20.0)); // the 10% reserve: 200 per 10 s = 20/s
        assert_eq!(rate(&pacer), Some(20.0));
        pacer.observe(usage(10.0));
        assert_eq!(rate(&pacer), Some(10.0), "half the reserve: half the rate");
        pacer.observe(usage(30.0));
        assert_eq!(rate(&pacer), Some(30.0), "above the reserve: faster");
        pacer.observe(usage(0.0));
        assert_eq!(rate(&pacer), Some(2.0), "nothing left: a trickle (10%)");
        pacer.observe(usage(40.0));
        assert_eq!(rate(&pacer), None);
    }

    #[tokio::test(start_paused = true)]
    async fn paced_requests_are_spaced_and_backoff_recovers() {
        let pacer = Pacer::default();
        pacer.lock().header_rate = Some(10.0);
        let start = Instant::now();
        for _ in 0..5 {
            pacer.wait_turn().await;
        }
        assert_eq!(
            start.elapsed(),
            Duration::from_millis(400),
            "10/s: 5 requests span 0.4 s"
        );

        pacer.lock().header_rate = None;
        pacer.observe(told(200, 0));
        let capped = pacer
            .stats()
            .rate_limit
            .expect("a Retry-After caps the rate");
        assert!(
            (capped - 5.0).abs() < 0.5,
            "halved from the measured ~10/s: {capped}"
        );
        // A second signal within half a second does not halve again.
        pacer.observe(told(200, 0));
        assert_eq!(pacer.stats().rate_limit, Some(capped));
        tokio::time::advance(Duration::from_secs(3)).await;
        pacer.wait_turn().await;
        let recovered = pacer.stats().rate_limit.map_or(f64::INFINITY, |r| r);
        assert!(
            recovered > capped,
            "recovers without signals: {recovered} > {capped}"
        );
    }

    #[test]
    fn retry_after_parses_seconds_and_rejects_garbage() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after("0.25"), Some(Duration::from_millis(250)));
        assert_eq!(parse_retry_after("soon"), None);
        assert_eq!(parse_retry_after("-1"), None);
    }
}
