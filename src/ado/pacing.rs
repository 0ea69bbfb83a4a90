//! Client-wide pacing (the governor). Azure DevOps meters each identity in TSTUs over a
//! sliding window (200 TSTU per five minutes): it announces usage before any delay
//! (`X-RateLimit-Limit/Remaining/Reset`, in TSTUs), then delays answers with `Retry-After` and
//! `X-RateLimit-Delay`, then refuses with 429 (or 403) and `TF400733`. The cost of one call is
//! not published and varies, so the governor learns it. Every worker shares one governor, so a
//! signal seen by one request slows all of them:
//!
//! - **the window, mirrored**: each answer's `Remaining` says how much of the limit is used;
//!   what it rose by since the highest usage seen (less what has left the window since) is what
//!   the calls answered in between consumed. That is logged with the answer's time, so the
//!   client knows when its own consumption leaves the window (`Reset` tells the window's
//!   length), and is averaged per API (Graph, Token Admin, revocations, audit log) into the
//!   estimated cost of one call;
//! - **the gate**: once `Remaining` falls below [`GATE_ON`] of the limit (and until it is back
//!   above [`GATE_OFF`], hysteresis), a call goes only when the mirrored usage, plus what calls
//!   in flight are expected to cost, plus its own expected cost, stays under the limit less a
//!   small reserve ([`RESERVE`]); otherwise it waits until enough of the window's oldest
//!   consumption leaves. So consumption stays at what the window sustains, no call waits
//!   longer than its measured cost requires, and the scan runs at full speed (the latency
//!   floor) while the budget is far away;
//! - **Retry-After** (on a 429, a blocked 403 or a delayed 200) pauses every request for that
//!   long and halves the request rate (at most once per half second, so one burst of in-flight
//!   answers counts once); with no new signal the rate recovers by 10% a second;
//! - `X-RateLimit-Delay` alone (the service protecting shared resources) is recorded, not
//!   obeyed: the answer was slow, nothing asks the client to slow down.
//!
//! It also counts calls, retries, throttling, the estimated costs, the TSTU consumed, the time
//! delayed and the lowest `Remaining` seen, for the Run sheet.

use super::error::AdoError;
use crate::stop::{Stop, StopReason};
use azure_core::error::ErrorKind;
use azure_core::http::headers::{HeaderName, Headers};
use azure_core::http::policies::{Policy, PolicyResult, RetryPolicyCount};
use azure_core::http::{AsyncRawResponse, Context, Request, StatusCode};
use std::collections::{BTreeMap, VecDeque};
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
const RATE_DELAY: HeaderName = HeaderName::from_static("x-ratelimit-delay");

/// Longest single pause we accept from a `Retry-After`, on every retry path (the governor's
/// pause and the SDK's retry policy alike): the service documents delays of up to 30 s; a
/// larger value is more likely a bug than an instruction.
const MAX_PAUSE: Duration = Duration::from_secs(60);
/// The gate closes when less than this share of the limit remains...
pub const GATE_ON: f64 = 0.3;
/// ... and opens again once this share remains (hysteresis: it does not flap at one level).
pub const GATE_OFF: f64 = 0.6;
/// Share of the limit the gate keeps free, for costs above their estimate (they vary). Small:
/// a reserve is throughput given up for safety.
pub const RESERVE: f64 = 0.03;
/// Weight of a new observation in a cost estimate (an average over about 50 calls).
const COST_WEIGHT: f64 = 0.02;
/// A single answer's rise above this many times the estimate counts as this many.
const JUMP: f64 = 32.0;
/// Longest window believed from `X-RateLimit-Reset` (the documented one is five minutes).
const MAX_WINDOW: Duration = Duration::from_secs(3600);
/// One multiplicative decrease per this interval.
const DECREASE_EVERY: Duration = Duration::from_millis(500);
/// Recovery step: +10% of the rate per second without a signal.
const RECOVER_EVERY: Duration = Duration::from_secs(1);
const RECOVER_FACTOR: f64 = 1.1;
/// Send times kept to measure the current request rate.
const RATE_SAMPLES: usize = 128;
/// The slowest the governor will ever go, in requests per second.
const MIN_RATE: f64 = 0.5;
/// Waiting requests look at the rate again at least this often.
const RECHECK: Duration = Duration::from_millis(50);

/// Which API a request calls: costs differ by API, so each is learned apart.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ApiKind {
    Graph,
    TokenAdmin,
    Revocations,
    Audit,
    #[default]
    Other,
}

impl ApiKind {
    /// The kind of a request, from its URL path.
    pub fn of_path(path: &str) -> Self {
        let path = path.to_ascii_lowercase();
        if path.contains("/_apis/tokenadmin/revocations") {
            ApiKind::Revocations
        } else if path.contains("/_apis/tokenadmin/") {
            ApiKind::TokenAdmin
        } else if path.contains("/_apis/graph/") {
            ApiKind::Graph
        } else if path.contains("/_apis/audit/") {
            ApiKind::Audit
        } else {
            ApiKind::Other
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            ApiKind::Graph => "graph",
            ApiKind::TokenAdmin => "tokenadmin",
            ApiKind::Revocations => "revocations",
            ApiKind::Audit => "audit",
            ApiKind::Other => "other",
        }
    }
}

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
    /// Rate after a Retry-After or 429, recovering over time; `None`: no cap.
    backoff_rate: Option<f64>,
    last_decrease: Option<Instant>,
    last_recovery: Option<Instant>,
    recent_sends: VecDeque<Instant>,
    window: Window,
}

/// The service's window as this client sees it.
#[derive(Debug, Default)]
struct Window {
    /// `X-RateLimit-Limit`, TSTU.
    limit: Option<f64>,
    /// The window's length: the longest `X-RateLimit-Reset` minus now seen, in whole seconds
    /// (right after a call, usage returns to zero one window later).
    length: Option<Duration>,
    /// Usage: the highest the service reported, less what has left the window since.
    usage: f64,
    /// What answered calls consumed, and when; `usage` is their sum.
    log: VecDeque<(Instant, f64)>,
    /// Expected cost of the calls in flight.
    in_flight: f64,
    gating: bool,
    costs: BTreeMap<ApiKind, Cost>,
    /// TSTU consumed by this client, as measured.
    consumed: f64,
    lowest_remaining: Option<f64>,
    /// Time the service reported holding answers (`X-RateLimit-Delay`).
    delayed: Duration,
    /// Usage was not visible since the last figure (no answer yet, or `Remaining` 0): the next
    /// rise may hold anyone's consumption, so it is not learned from.
    blind: bool,
}

/// An estimated cost per call.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Cost {
    mean: f64,
    samples: u64,
}

/// A snapshot of the counters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PacingStats {
    pub api_calls: u64,
    pub retries: u64,
    pub throttled: u64,
    pub throttle_wait: Duration,
    /// The request rate the governor currently allows after a `Retry-After` (`None`: no cap).
    pub rate_limit: Option<f64>,
    /// The rate limit as the service reported it (`X-RateLimit-Limit`, TSTU); `None` when no
    /// answer carried it.
    pub tstu_limit: Option<f64>,
    /// TSTU this client consumed, as measured from `X-RateLimit-Remaining`.
    pub tstu_consumed: f64,
    /// Estimated TSTU per call, per API (`graph`, `tokenadmin`, ...).
    pub tstu_per_call: BTreeMap<String, f64>,
    /// The lowest `X-RateLimit-Remaining` seen.
    pub lowest_remaining: Option<f64>,
    /// Time the service reported holding answers (`X-RateLimit-Delay`, summed).
    pub delayed: Duration,
    /// Whether the gate is closed (pacing to the window) right now.
    pub gating: bool,
}

impl PacingStats {
    /// TSTU per call over all calls answered with usage figures.
    pub fn mean_tstu_per_call(&self) -> Option<f64> {
        let calls = self.api_calls.saturating_sub(self.throttled);
        (self.tstu_limit.is_some() && calls > 0).then(|| self.tstu_consumed / calls as f64)
    }
}

/// What one answer says about throttling.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Signals {
    pub status: u16,
    pub kind: ApiKind,
    pub retry_after: Option<Duration>,
    pub limit: Option<f64>,
    pub remaining: Option<f64>,
    /// Seconds until usage would be back to zero (`X-RateLimit-Reset` minus now).
    pub reset_in: Option<f64>,
    /// How long the service held this answer (`X-RateLimit-Delay`).
    pub delay: Option<Duration>,
}

impl Signals {
    pub fn from_headers(status: u16, headers: &Headers) -> Self {
        let num = |name: &HeaderName| {
            headers
                .get_optional_str(name)
                .and_then(|v| v.trim().parse::<f64>().ok())
                .filter(|v| v.is_finite())
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        Signals {
            status,
            kind: ApiKind::Other,
            retry_after: headers
                .get_optional_str(&RETRY_AFTER)
                .and_then(parse_retry_after),
            limit: num(&RATE_LIMIT).filter(|l| *l > 0.0),
            remaining: num(&RATE_REMAINING).filter(|r| *r >= 0.0),
            reset_in: num(&RATE_RESET).map(|reset| reset - now),
            delay: num(&RATE_DELAY)
                .filter(|d| *d > 0.0)
                .map(|d| Duration::from_secs_f64(d.min(MAX_PAUSE.as_secs_f64()))),
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
        let w = &state.window;
        PacingStats {
            api_calls: attempts,
            retries: attempts.saturating_sub(calls),
            throttled: self.throttled.load(Ordering::Relaxed),
            throttle_wait: state.paused,
            rate_limit: state.rate(),
            tstu_limit: w.limit,
            tstu_consumed: w.consumed,
            tstu_per_call: w
                .costs
                .iter()
                .filter(|(_, c)| c.samples > 0)
                .map(|(k, c)| (k.label().to_owned(), c.mean))
                .collect(),
            lowest_remaining: w.lowest_remaining,
            delayed: w.delayed,
            gating: w.gating,
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

    /// Wait for this request's turn: after any pause, at the backoff rate, and when the window
    /// has room for its expected cost. The state is read afresh at least every `RECHECK`, so a
    /// change (either way) applies to waiting requests too. Returns the cost reserved for the
    /// call, to hand back to [`observe_call`](Self::observe_call) or
    /// [`release`](Self::release).
    pub async fn wait_turn(&self, kind: ApiKind) -> f64 {
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
                let admitted = match paused.or(spaced) {
                    Some(t) => Err(t),
                    None => state.window.admit(now, kind),
                };
                match admitted {
                    Err(t) => t.min(now + RECHECK),
                    Ok(reserved) => {
                        state.last_send = Some(now);
                        state.recent_sends.push_back(now);
                        if state.recent_sends.len() > RATE_SAMPLES {
                            state.recent_sends.pop_front();
                        }
                        return reserved;
                    }
                }
            };
            tokio::time::sleep_until(wake).await;
        }
    }

    /// A call that got no answer gives back what it reserved.
    pub fn release(&self, reserved: f64) {
        let w = &mut self.lock().window;
        w.in_flight = (w.in_flight - reserved).max(0.0);
    }

    /// Take in what an answer says (a call that reserved nothing).
    pub fn observe(&self, signals: Signals) {
        self.observe_call(signals, 0.0);
    }

    /// Take in what the answer to a call that reserved `reserved` says.
    pub fn observe_call(&self, signals: Signals, reserved: f64) {
        let told_to_wait = signals.status == 429
            || (signals.retry_after.is_some() && (200..300).contains(&signals.status));
        let mut state = self.lock();
        let now = Instant::now();
        state.window.observe(now, &signals, reserved);
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
            // With the window mirrored, the gate already holds consumption to what the window
            // sustains; halving the rate on top would only slow the recovery. Without usage
            // figures, the rate is all there is to lower.
            if !state.window.mirrored() {
                state.decrease(now);
            }
        } else if let (Some(limit), Some(remaining)) = (signals.limit, signals.remaining)
            && remaining / limit >= GATE_OFF
        {
            // The service itself reports plenty of room: that outranks an older backoff.
            state.backoff_rate = None;
        }
    }
}

impl Window {
    /// Forget what has left the window: it no longer counts as usage.
    fn expire(&mut self, now: Instant) {
        let Some(length) = self.length else {
            return;
        };
        while let Some((at, cost)) = self.log.front().copied() {
            if now.saturating_duration_since(at) < length {
                break;
            }
            self.log.pop_front();
            self.usage -= cost;
        }
        if self.log.is_empty() || self.usage < 0.0 {
            self.usage = self.log.iter().map(|(_, c)| c).sum();
        }
    }

    /// Whether the service's usage figures are known well enough to pace by them.
    fn mirrored(&self) -> bool {
        self.limit.is_some() && self.length.is_some()
    }

    /// The expected cost of one call of `kind`: its own estimate, else the mean of the others.
    fn cost_of(&self, kind: ApiKind) -> f64 {
        if let Some(c) = self.costs.get(&kind).filter(|c| c.samples > 0) {
            return c.mean;
        }
        let known: Vec<f64> = self
            .costs
            .values()
            .filter(|c| c.samples > 0)
            .map(|c| c.mean)
            .collect();
        if known.is_empty() {
            0.0
        } else {
            known.iter().sum::<f64>() / known.len() as f64
        }
    }

    /// Whether a call of `kind` may go now; `Ok` with the cost it reserves, or `Err` with when
    /// to look again.
    fn admit(&mut self, now: Instant, kind: ApiKind) -> Result<f64, Instant> {
        self.expire(now);
        let cost = self.cost_of(kind);
        // Without the window's length nothing would ever leave the mirror: no gate then.
        let room = match (self.gating, self.limit, self.length) {
            (true, Some(limit), Some(_)) => limit * (1.0 - RESERVE) - self.usage - self.in_flight,
            _ => f64::INFINITY,
        };
        // With nothing in flight and nothing in the window, one call always goes: an estimate
        // above the whole limit must not stall the scan forever.
        if cost <= room || (self.in_flight <= 0.0 && self.log.is_empty()) {
            self.in_flight += cost;
            return Ok(cost);
        }
        // Room comes back when the oldest consumption leaves the window (or an answer moves
        // the figures).
        let frees = match (self.log.front(), self.length) {
            (Some((at, _)), Some(length)) => *at + length,
            _ => now + RECHECK,
        };
        Err(frees.max(now + Duration::from_millis(1)))
    }

    fn observe(&mut self, now: Instant, s: &Signals, reserved: f64) {
        self.in_flight = (self.in_flight - reserved).max(0.0);
        if let Some(delay) = s.delay {
            self.delayed += delay;
        }
        let Some(limit) = s.limit else {
            return;
        };
        self.limit = Some(limit);
        if let Some(reset_in) = s.reset_in.filter(|r| *r >= 1.0) {
            // Whole seconds: `Reset` is a whole second, so a fraction says nothing.
            let seen = Duration::from_secs(reset_in.floor() as u64).min(MAX_WINDOW);
            self.length = Some(self.length.map_or(seen, |l| l.max(seen)));
        }
        self.expire(now);
        let Some(remaining) = s.remaining else {
            return;
        };
        self.lowest_remaining = Some(
            self.lowest_remaining
                .map_or(remaining, |l| l.min(remaining)),
        );
        let share = remaining / limit;
        if share < GATE_ON {
            self.gating = true;
        } else if share >= GATE_OFF {
            self.gating = false;
        }
        let served = (200..300).contains(&s.status);
        // `Remaining` 0 hides how far past the limit usage is.
        self.blind |= remaining <= 0.0;
        if remaining > 0.0 {
            let first = self.blind || (self.log.is_empty() && self.consumed == 0.0);
            self.blind = false;
            // Answers overtake one another, so only a rise above the highest usage seen is
            // new consumption; the first answer's usage may include earlier runs'.
            let consumed = (limit - remaining - self.usage).max(0.0);
            if consumed > 0.0 {
                self.log.push_back((now, consumed));
                self.usage += consumed;
            }
            if !first {
                self.consumed += consumed;
                self.learn(s.kind, consumed);
            } else {
                // Not learned from, but this client's own call is in it.
                self.consumed += reserved.min(consumed);
            }
        } else if served {
            // Usage is past the limit and `Remaining` no longer moves; charge what the
            // call is expected to cost.
            let cost = self.cost_of(s.kind);
            self.log.push_back((now, cost));
            self.usage += cost;
            self.consumed += cost;
        }
    }

    fn learn(&mut self, kind: ApiKind, consumed: f64) {
        let c = self.costs.entry(kind).or_default();
        // One jump (another client of the same identity) must not become the estimate; but
        // answers overtake one another, so one may show the rise of a dozen calls or more.
        let consumed = if c.samples >= 10 {
            consumed.min(JUMP * c.mean)
        } else {
            consumed
        };
        c.samples += 1;
        // A plain mean while samples are few, then a moving average that follows changes.
        let weight = (1.0 / c.samples as f64).max(COST_WEIGHT);
        c.mean += weight * (consumed - c.mean);
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
        self.backoff_rate
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

/// The statuses the SDK's retry policy retries (its defaults, which the client keeps). A 403
/// that says the request was blocked reaches it as a 429 (see [`blocked_as_throttling`]).
fn retried_by_sdk(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
}

/// Why an attempt is retried, in a few words.
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

/// Whether an error body says the request was blocked for exceeding usage (`TF400733`,
/// `RequestBlockedException`): throttling, whatever the status.
pub fn says_request_blocked(body: &[u8]) -> bool {
    let text = String::from_utf8_lossy(body);
    text.contains("TF400733") || text.contains("RequestBlockedException")
}

/// A 403 whose body says the request was blocked is throttling, not a permission problem:
/// it becomes the 429 it means (with a `Retry-After`, 1 s when the service gave none), so the
/// retry policy, the governor and the error all treat it as throttling. Other answers pass.
async fn blocked_as_throttling(response: AsyncRawResponse) -> PolicyResult {
    if u16::from(response.status()) != 403 {
        return Ok(response);
    }
    let (status, mut headers, body) = response.deconstruct();
    let bytes = body.collect().await?;
    if !says_request_blocked(&bytes) {
        return Ok(AsyncRawResponse::from_bytes(status, headers, bytes));
    }
    if headers.get_optional_str(&RETRY_AFTER).is_none() {
        headers.insert(RETRY_AFTER, "1");
    }
    Ok(AsyncRawResponse::from_bytes(
        StatusCode::TooManyRequests,
        headers,
        bytes,
    ))
}

#[async_trait::async_trait]
impl Policy for PacingPolicy {
    async fn send(
        &self,
        ctx: &Context,
        request: &mut Request,
        next: &[Arc<dyn Policy>],
    ) -> PolicyResult {
        let kind = ApiKind::of_path(request.url().path());
        let reserved = self.pacer.wait_turn(kind).await;
        self.pacer.attempts.fetch_add(1, Ordering::Relaxed);
        let attempt = ctx.value::<RetryPolicyCount>().map_or(0, |c| **c);
        let result = match next[0].send(ctx, request, &next[1..]).await {
            Ok(response) => blocked_as_throttling(response).await,
            Err(e) => Err(e),
        };
        if attempt < self.max_retries
            && let Some(why) = retry_reason(&result)
        {
            self.pacer.note_retry(attempt + 1, self.max_retries, why);
        }
        let response = match result {
            Ok(response) => response,
            Err(e) => {
                self.pacer.release(reserved);
                return Err(e);
            }
        };
        let status = u16::from(response.status());
        let signals = Signals {
            kind,
            ..Signals::from_headers(status, response.headers())
        };
        self.pacer.observe_call(signals, reserved);
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
            async move { p.wait_turn(ApiKind::Other).await }
        });
        pacer.wait_turn(ApiKind::Other).await;
        other.await.unwrap();
        assert!(start.elapsed() >= Duration::from_secs(2));
        let stats = pacer.stats();
        assert_eq!(stats.throttled, 2);
        assert_eq!(stats.throttle_wait, Duration::from_secs(2));
    }

    #[test]
    fn a_delay_without_retry_after_is_counted_not_obeyed() {
        let pacer = Pacer::default();
        pacer.observe(Signals {
            status: 200,
            delay: Some(Duration::from_millis(50)),
            ..Signals::default()
        });
        let stats = pacer.stats();
        assert_eq!(stats.delayed, Duration::from_millis(50));
        assert_eq!(
            (stats.throttled, stats.throttle_wait, stats.rate_limit),
            (0, Duration::ZERO, None)
        );
    }

    #[test]
    fn a_403_is_throttling_only_when_its_body_says_the_request_was_blocked() {
        assert!(says_request_blocked(
            br#"{"message":"TF400733: The request has been canceled","typeKey":"RequestBlockedException"}"#
        ));
        assert!(!says_request_blocked(
            br#"{"message":"TF400813: not authorized","typeKey":"UnauthorizedRequestException"}"#
        ));
    }

    #[tokio::test]
    async fn a_blocked_403_becomes_a_429_with_a_retry_after_and_others_pass() {
        let answer = |body: &str| {
            AsyncRawResponse::from_bytes(
                StatusCode::Forbidden,
                Headers::new(),
                body.as_bytes().to_vec(),
            )
        };
        let blocked = blocked_as_throttling(answer("TF400733: blocked"))
            .await
            .unwrap();
        assert_eq!(blocked.status(), StatusCode::TooManyRequests);
        assert_eq!(blocked.headers().get_optional_str(&RETRY_AFTER), Some("1"));
        let denied = blocked_as_throttling(answer("TF400813: not authorized"))
            .await
            .unwrap();
        assert_eq!(denied.status(), StatusCode::Forbidden);
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

    #[tokio::test(start_paused = true)]
    async fn paced_requests_are_spaced_and_backoff_recovers() {
        let pacer = Pacer::default();
        pacer.lock().backoff_rate = Some(10.0);
        pacer.lock().last_recovery = Some(Instant::now() + Duration::from_secs(60));
        let start = Instant::now();
        for _ in 0..5 {
            pacer.wait_turn(ApiKind::Other).await;
        }
        assert_eq!(
            start.elapsed(),
            Duration::from_millis(400),
            "10/s: 5 requests span 0.4 s"
        );

        pacer.lock().backoff_rate = None;
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
        pacer.wait_turn(ApiKind::Other).await;
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

/// The governor against the documented limit, on paused time: workers call through the pacer
/// into the simulator's TSTU meter, as the client does through HTTP.
#[cfg(test)]
mod window_tests {
    use super::*;
    use crate::simulator::{Decision, TstuApi, TstuCosts, TstuLimit, TstuMeter};
    use std::sync::atomic::AtomicUsize;

    const LATENCY: Duration = Duration::from_millis(20);
    const WORKERS: usize = 16;

    fn model(cost: f64, limit: f64) -> TstuLimit {
        TstuLimit {
            window: Duration::from_secs(60),
            limit,
            block_over: limit / 2.0,
            costs: TstuCosts::scaled(cost),
            ..TstuLimit::documented(cost)
        }
    }

    #[derive(Debug, Default)]
    struct Run {
        elapsed: Duration,
        charged: f64,
        delayed: usize,
        blocked: usize,
        served: usize,
    }

    /// `calls` Token Admin listings by `WORKERS` workers, each retried until served (as the
    /// retry policy does), against `meter`.
    async fn drive(pacer: &Arc<Pacer>, meter: &Arc<Mutex<TstuMeter>>, calls: usize) -> Run {
        let next = Arc::new(AtomicUsize::new(0));
        let run = Arc::new(Mutex::new(Run::default()));
        let start = Instant::now();
        let workers: Vec<_> = (0..WORKERS)
            .map(|_| {
                let (pacer, meter, next, run) =
                    (pacer.clone(), meter.clone(), next.clone(), run.clone());
                tokio::spawn(async move {
                    while next.fetch_add(1, Ordering::Relaxed) < calls {
                        loop {
                            let reserved = pacer.wait_turn(ApiKind::TokenAdmin).await;
                            tokio::time::sleep(LATENCY / 2).await;
                            let m = meter.lock().unwrap().admit(
                                "me",
                                TstuApi::TokenAdmin,
                                Instant::now(),
                            );
                            let (status, remaining, retry_after, hold) = match m.decision {
                                Decision::Normal { remaining } => (200, remaining, None, None),
                                Decision::Delayed { delay, retry_after } => {
                                    (200, 0.0, Some(retry_after), Some(delay))
                                }
                                Decision::Blocked { retry_after } => {
                                    (429, 0.0, Some(retry_after), None)
                                }
                            };
                            tokio::time::sleep(LATENCY / 2 + hold.unwrap_or_default()).await;
                            {
                                let mut r = run.lock().unwrap();
                                r.charged += m.charged;
                                r.delayed += usize::from(hold.is_some());
                                r.blocked += usize::from(status == 429);
                            }
                            pacer.observe_call(
                                Signals {
                                    status,
                                    kind: ApiKind::TokenAdmin,
                                    // Whole seconds, rounded up, as the header is.
                                    retry_after: retry_after.map(|r| {
                                        Duration::from_secs(r.as_secs_f64().ceil() as u64)
                                    }),
                                    limit: Some(200.0),
                                    remaining: Some(remaining),
                                    reset_in: Some(m.reset_in.as_secs_f64().ceil() + 0.3),
                                    delay: hold,
                                },
                                reserved,
                            );
                            if status == 200 {
                                run.lock().unwrap().served += 1;
                                break;
                            }
                            // The retry policy's own wait is the governor's pause here.
                        }
                    }
                })
            })
            .collect();
        for w in workers {
            w.await.unwrap();
        }
        let mut r = std::mem::take(&mut *run.lock().unwrap());
        r.elapsed = start.elapsed();
        r
    }

    /// The least time for `calls` calls: the latency floor, or the budget floor (the bench's).
    fn floor(calls: usize, charged: f64, limit: f64, window: Duration) -> Duration {
        let latency = LATENCY * u32::try_from(calls.div_ceil(WORKERS)).unwrap_or(u32::MAX);
        let budget =
            crate::bench::budget_floor(charged, limit, window, calls as u64, LATENCY, WORKERS);
        latency.max(budget)
    }

    #[tokio::test(start_paused = true)]
    async fn the_governor_keeps_to_the_window_at_any_cost_per_call() {
        for cost in [0.1, 0.02, 0.005] {
            // Two and a half windows' worth of calls: the budget, not latency, sets the pace.
            let calls = (500.0 / cost) as usize;
            let limit = model(cost, 200.0);
            let meter = Arc::new(Mutex::new(TstuMeter::new(limit.clone())));
            let pacer = Arc::new(Pacer::default());
            let run = drive(&pacer, &meter, calls).await;
            let floor = floor(calls, run.charged, 200.0, limit.window);
            let ratio = run.elapsed.as_secs_f64() / floor.as_secs_f64();
            assert_eq!(run.served, calls, "cost {cost}: every call served");
            assert_eq!(
                (run.delayed, run.blocked),
                (0, 0),
                "cost {cost}: never delayed"
            );
            assert!(
                ratio <= 1.05,
                "cost {cost}: {run:?} against {floor:?}: {ratio}"
            );
            let stats = pacer.stats();
            let learned = stats.tstu_per_call["tokenadmin"];
            assert!(
                (learned / cost - 1.0).abs() < 0.15,
                "cost {cost}: learned {learned}"
            );
            assert!(
                (stats.tstu_consumed / run.charged - 1.0).abs() < 0.02,
                "{stats:?}"
            );
            assert!(stats.lowest_remaining.is_some_and(|r| r < 200.0 * GATE_ON));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn far_from_the_budget_the_scan_runs_at_the_latency_floor() {
        let calls = 2000;
        let meter = Arc::new(Mutex::new(TstuMeter::new(model(0.02, 200.0))));
        let pacer = Arc::new(Pacer::default());
        let run = drive(&pacer, &meter, calls).await;
        // 125 rounds of 16 calls at 20 ms, nothing slower.
        assert_eq!(run.elapsed, LATENCY * 125);
        assert!(!pacer.stats().gating);
    }

    #[tokio::test(start_paused = true)]
    async fn after_a_storm_the_scan_recovers_and_loses_no_call() {
        let limit = model(0.1, 200.0);
        let meter = Arc::new(Mutex::new(TstuMeter::new(limit.clone())));
        // Another client of the same identity used the whole budget and then some.
        for _ in 0..3_100 {
            meter
                .lock()
                .unwrap()
                .admit("me", TstuApi::TokenAdmin, Instant::now());
        }
        let pacer = Arc::new(Pacer::default());
        let calls = 3000;
        let run = drive(&pacer, &meter, calls).await;
        assert_eq!(run.served, calls);
        assert!(run.blocked > 0 && pacer.stats().throttled > 0, "{run:?}");
        // The other client's usage leaves after one window; then this scan's 300 TSTU need
        // one more window and a few seconds. Backing off must not cost much more than that.
        assert!(
            run.elapsed <= limit.window.mul_f64(2.0 * 1.05),
            "{run:?}: recovered too slowly"
        );
    }
}
