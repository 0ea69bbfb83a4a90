//! Fault configuration and injection: latency, throttling (429), transient and persistent
//! 500s, delayed 200s with `Retry-After`, malformed bodies, the optional sliding-window
//! rate-limit model, and 429s or 500s for chosen revocation requests.
//!
//! The random faults and the window apply to every route, revocations included (a faulted
//! revocation has no effect). Random faults are decided by hashing the request (path and
//! query, and for a revocation its body) with the seed and the number of failed attempts of
//! that same request so far. So they do not depend on how concurrent requests interleave, a
//! run repeats exactly, and after at most `max_transient_attempts` faulted attempts the
//! request succeeds: transient faults really are transient.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::http::StatusCode;

use super::hash::{hash_parts, unit_float};
use super::ratelimit::{Admission, SlidingWindow, WindowLimit};
use super::reply::Reply;
use super::tstu::{Decision, Metered, TstuApi, TstuLimit, TstuMeter};
use super::wire::ExceptionType;

/// Whether a descriptor's fault happens on every request or only on the first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Persistence {
    Always,
    FirstTimeOnly,
}

/// `count` consecutive 429s starting with the `start_at`-th request (0-based, all routes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Storm {
    pub start_at: u64,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FaultConfig {
    /// Seeds the random decisions.
    pub seed: u64,
    /// Added to every request.
    pub latency: Duration,
    /// Share of requests held for `slow_delay` before they are answered.
    pub slow_probability: f64,
    pub slow_delay: Duration,
    /// Share of requests answered 429 (RequestBlockedException, TF400733).
    pub throttle_probability: f64,
    /// `Retry-After` seconds on 429s and delayed 200s.
    pub retry_after_secs: u64,
    /// Share of requests answered with a transient 500.
    pub transient_500_probability: f64,
    /// Share of 200s delayed by `delayed_200_delay` and sent with `Retry-After` and
    /// `X-RateLimit-Delay`.
    pub delayed_200_probability: f64,
    pub delayed_200_delay: Duration,
    /// Random 429/500 hit at most this many attempts of the same request in a row.
    pub max_transient_attempts: u32,
    pub storm: Option<Storm>,
    /// Prefix every JSON body with a UTF-8 BOM.
    pub bom: bool,
    /// Send `X-RateLimit-Resource/Limit/Remaining/Reset` on 200s.
    pub rate_limit_headers: bool,
    /// Descriptors whose Token Admin pages come back as truncated JSON.
    pub malformed_json: BTreeMap<String, Persistence>,
    /// Descriptors whose Token Admin requests always get 500: the client must report the user
    /// as an error, not drop it.
    pub failing_descriptors: BTreeSet<String>,
    /// Descriptors whose SSH key listing (`isPublic=true`) always gets 500 while their PAT
    /// listing works: a user read half is still an error record.
    pub failing_ssh_descriptors: BTreeSet<String>,
    /// The sliding-window rate-limit model that counts requests; `None` turns it off.
    pub window: Option<WindowLimit>,
    /// The documented rate limit: TSTUs per identity over a sliding window; `None` turns it
    /// off.
    pub tstu: Option<TstuLimit>,
    /// Hostile or broken server behaviour the client must survive (all off by default).
    pub hostile: Hostile,
    /// 1-based ordinals of the revocation POSTs (counted once authenticated) answered with a
    /// transient-looking 500 and no effect: a client must retry, and must not assume the
    /// batch was applied.
    pub failing_revocation_requests: BTreeSet<u64>,
    /// 1-based ordinals of the revocation POSTs answered 429 (`Retry-After`, TF400733) and
    /// no effect. An ordinal in both sets gets the 429.
    pub throttled_revocation_requests: BTreeSet<u64>,
}

/// A broken or hostile server: listings that never end, repeated entries, error bodies that
/// echo the credential, names the JSON parser chokes on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hostile {
    /// Descriptors whose Token Admin listings (PATs and SSH keys) never end: every page carries
    /// a new continuation token (and the same entries).
    pub endless_descriptors: BTreeSet<String>,
    /// Every page after the first, of the users and of each user's PATs and SSH keys, starts
    /// again with the last entry of the page before.
    pub repeat_entries: bool,
    /// Descriptors whose Token Admin listings fail with a 400 that quotes the request's
    /// `Authorization` header, as a careless proxy might.
    pub echo_authorization: BTreeSet<String>,
    /// Descriptors whose Token Admin pages name their entries with an escaped lone UTF-16
    /// surrogate (`"\ud800"`), which strict JSON parsers refuse.
    pub lone_surrogate: BTreeSet<String>,
}

impl FaultConfig {
    /// No faults, no delays.
    pub fn none() -> Self {
        FaultConfig {
            seed: 0xFA17,
            latency: Duration::ZERO,
            slow_probability: 0.0,
            slow_delay: Duration::ZERO,
            throttle_probability: 0.0,
            retry_after_secs: 1,
            transient_500_probability: 0.0,
            delayed_200_probability: 0.0,
            delayed_200_delay: Duration::ZERO,
            max_transient_attempts: 2,
            storm: None,
            bom: false,
            rate_limit_headers: false,
            malformed_json: BTreeMap::new(),
            failing_descriptors: BTreeSet::new(),
            failing_ssh_descriptors: BTreeSet::new(),
            window: None,
            tstu: None,
            hostile: Hostile::default(),
            failing_revocation_requests: BTreeSet::new(),
            throttled_revocation_requests: BTreeSet::new(),
        }
    }

    /// What `--demo` shows: a little latency, occasional throttling and 500s, BOMs and
    /// rate-limit headers.
    pub fn demo() -> Self {
        FaultConfig {
            latency: Duration::from_millis(2),
            slow_probability: 0.01,
            slow_delay: Duration::from_millis(150),
            throttle_probability: 0.003,
            retry_after_secs: 1,
            transient_500_probability: 0.005,
            delayed_200_probability: 0.003,
            delayed_200_delay: Duration::from_millis(200),
            bom: true,
            rate_limit_headers: true,
            ..Self::none()
        }
    }
}

impl Default for FaultConfig {
    fn default() -> Self {
        Self::none()
    }
}

/// A fault to inject before the request is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Early {
    Throttle { retry_after_secs: u64 },
    ServerError,
}

/// What to do to a successful answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Late {
    /// Hold the answer this long.
    pub hold: Duration,
    /// Send `Retry-After` and `X-RateLimit-Delay` (a throttled but successful answer).
    pub throttled: Option<u64>,
    /// Window usage for the `X-RateLimit-*` headers: `(used, limit)`.
    pub usage: Option<(usize, usize)>,
    pub reset_in: Duration,
}

/// Mutable fault state shared by all requests.
#[derive(Debug)]
pub(crate) struct Faults {
    config: FaultConfig,
    /// Faulted attempts so far, per request key; removed when the request gets through.
    attempts: Mutex<HashMap<u64, u32>>,
    /// Slow answers so far, per request key: slowness is transient too, so a request is slow
    /// at most `max_transient_attempts` times (a client that timed out and retried gets through).
    slow_attempts: Mutex<HashMap<u64, u32>>,
    malformed_seen: Mutex<HashSet<String>>,
    window: Option<Mutex<SlidingWindow>>,
    tstu: Option<Mutex<TstuMeter>>,
    /// Revocation POSTs that passed authentication so far.
    revocation_posts: AtomicU64,
}

impl Faults {
    pub fn new(config: FaultConfig) -> Self {
        Faults {
            window: config
                .window
                .clone()
                .map(|w| Mutex::new(SlidingWindow::new(w))),
            tstu: config.tstu.clone().map(|t| Mutex::new(TstuMeter::new(t))),
            config,
            attempts: Mutex::new(HashMap::new()),
            slow_attempts: Mutex::new(HashMap::new()),
            malformed_seen: Mutex::new(HashSet::new()),
            revocation_posts: AtomicU64::new(0),
        }
    }

    pub fn config(&self) -> &FaultConfig {
        &self.config
    }

    /// Meters one call of `api` by `identity` (its credential) under the TSTU model, when it
    /// is on.
    pub fn meter(&self, identity: &str, api: TstuApi) -> Option<Metered> {
        let meter = self.tstu.as_ref()?;
        let mut meter = meter.lock().unwrap_or_else(|p| p.into_inner());
        Some(meter.admit(identity, api, tokio::time::Instant::now()))
    }

    /// Faults that replace the answer: the storm, the window's 429, random 429/500.
    /// `seq` is the request's number, `key` its path and query. On `Ok`, `Late` says how to
    /// treat the answer if it is a 200.
    pub fn early(&self, seq: u64, key: &str) -> Result<Late, Early> {
        let c = &self.config;
        let throttle = Early::Throttle {
            retry_after_secs: c.retry_after_secs,
        };
        if c.storm
            .is_some_and(|s| seq >= s.start_at && seq - s.start_at < s.count)
        {
            return Err(throttle);
        }
        let mut late = Late::default();
        if let Some(window) = &self.window {
            let now = Instant::now();
            let mut w = window
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let admission = w.admit(now);
            late.reset_in = w.empties_in(now);
            let soft = w.limit().soft_threshold;
            match admission {
                Admission::Blocked { retry_after } => {
                    return Err(Early::Throttle {
                        retry_after_secs: ceil_secs(retry_after),
                    });
                }
                Admission::Delayed { used, retry_after } => {
                    late.hold = w.limit().delay;
                    late.throttled = Some(ceil_secs(retry_after));
                    late.usage = Some((used, soft));
                }
                Admission::Normal { used } => late.usage = Some((used, soft)),
            }
        }
        let attempt = self.random_fault(key)?;
        // Delays are not failures, so they need no attempt limit.
        let u = unit_float(hash_parts(c.seed ^ 0xD31A_7ED0, key, &[u64::from(attempt)]));
        if u < c.delayed_200_probability {
            late.hold = late.hold.max(c.delayed_200_delay);
            late.throttled = late.throttled.max(Some(c.retry_after_secs));
        } else if c.slow_probability > 0.0 {
            let h = hash_parts(c.seed ^ 0x51_0E, key, &[]);
            let mut slow = self.slow_attempts.lock().unwrap_or_else(|p| p.into_inner());
            let times = slow.get(&h).copied().unwrap_or(0);
            let u = unit_float(hash_parts(c.seed ^ 0x51_0E, key, &[u64::from(times)]));
            if times < c.max_transient_attempts && u < c.slow_probability {
                slow.insert(h, times + 1);
                late.hold = late.hold.max(c.slow_delay);
            } else {
                slow.remove(&h);
            }
        }
        Ok(late)
    }

    /// Decides a random 429/500 for `key`; on success returns the attempt number it was.
    fn random_fault(&self, key: &str) -> Result<u32, Early> {
        let c = &self.config;
        if c.throttle_probability <= 0.0 && c.transient_500_probability <= 0.0 {
            return Ok(0);
        }
        let h = hash_parts(c.seed, key, &[]);
        let mut attempts = self.attempts.lock().unwrap_or_else(|p| p.into_inner());
        let attempt = attempts.get(&h).copied().unwrap_or(0);
        let u = unit_float(hash_parts(c.seed, key, &[u64::from(attempt)]));
        let fault = if attempt >= c.max_transient_attempts {
            None
        } else if u < c.throttle_probability {
            Some(Early::Throttle {
                retry_after_secs: c.retry_after_secs,
            })
        } else if u < c.throttle_probability + c.transient_500_probability {
            Some(Early::ServerError)
        } else {
            None
        };
        match fault {
            Some(f) => {
                attempts.insert(h, attempt + 1);
                Err(f)
            }
            None => {
                // Forget it, so a later scan of the same org meets the same faults again.
                attempts.remove(&h);
                Ok(attempt)
            }
        }
    }

    /// Counts one authenticated revocation POST and decides its configured fault, if any.
    pub fn revocation(&self) -> Result<(), Early> {
        let c = &self.config;
        let ordinal = self.revocation_posts.fetch_add(1, Ordering::Relaxed) + 1;
        if c.throttled_revocation_requests.contains(&ordinal) {
            Err(Early::Throttle {
                retry_after_secs: c.retry_after_secs,
            })
        } else if c.failing_revocation_requests.contains(&ordinal) {
            Err(Early::ServerError)
        } else {
            Ok(())
        }
    }

    /// Whether this descriptor's requests always fail with 500.
    pub fn fails_persistently(&self, descriptor: &str) -> bool {
        self.config.failing_descriptors.contains(descriptor)
    }

    /// Whether this descriptor's SSH key requests always fail with 500.
    pub fn ssh_keys_fail_persistently(&self, descriptor: &str) -> bool {
        self.config.failing_ssh_descriptors.contains(descriptor)
    }

    /// Whether this answer for `descriptor` is to be sent truncated.
    pub fn malformed(&self, descriptor: &str) -> bool {
        match self.config.malformed_json.get(descriptor) {
            None => false,
            Some(Persistence::Always) => true,
            Some(Persistence::FirstTimeOnly) => self
                .malformed_seen
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(descriptor.to_string()),
        }
    }
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// The 429 answer (docs/contracts.md, "Rate limits").
pub(crate) fn throttled(retry_after_secs: u64, reset_epoch: i64) -> Reply {
    Reply::error(
        StatusCode::TOO_MANY_REQUESTS,
        ExceptionType::RequestBlocked,
        "TF400733: The request has been canceled: Request was blocked due to exceeding usage of \
         resource 'Core' in namespace 'User'.",
    )
    .header("retry-after", retry_after_secs.to_string())
    .header("x-ratelimit-resource", "Core")
    .header("x-ratelimit-limit", "200")
    .header("x-ratelimit-remaining", "0")
    .header("x-ratelimit-reset", reset_epoch.to_string())
}

/// Unix time, to the millisecond.
fn epoch_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// `X-RateLimit-Reset`: the whole second by which usage is surely back at zero.
fn reset_epoch(reset_in: Duration) -> String {
    format!("{:.0}", (epoch_now() + reset_in.as_secs_f64()).ceil())
}

/// Whole seconds, at least one: a `Retry-After` of 0 would invite an immediate retry.
fn retry_after_secs(wait: Duration) -> String {
    ceil_secs(wait).max(1).to_string()
}

/// The TSTU model's refusal: 429, or the 403 some clients meet, with the
/// `RequestBlockedException` body either way.
pub(crate) fn blocked(limit: &TstuLimit, metered: &Metered, retry_after: Duration) -> Reply {
    let status = if limit.blocked_as_403 {
        StatusCode::FORBIDDEN
    } else {
        StatusCode::TOO_MANY_REQUESTS
    };
    Reply::error(
        status,
        ExceptionType::RequestBlocked,
        "TF400733: The request has been canceled: Request was blocked due to exceeding usage of \
         resource 'Core' in namespace 'User'.",
    )
    .header("retry-after", retry_after_secs(retry_after))
    .header("x-ratelimit-resource", "Core")
    .header("x-ratelimit-limit", format!("{}", limit.limit))
    .header("x-ratelimit-remaining", "0")
    .header("x-ratelimit-reset", reset_epoch(metered.reset_in))
}

/// The TSTU model's headers on a served answer, and how long to hold it: usage in TSTUs as
/// documented; `Retry-After` and `X-RateLimit-Delay` once delays have begun; a hold unrelated
/// to this identity's use carries `X-RateLimit-Delay` only.
pub(crate) fn tstu_headers(
    reply: Reply,
    limit: &TstuLimit,
    metered: &Metered,
) -> (Reply, Duration) {
    let remaining = match metered.decision {
        Decision::Normal { remaining } => remaining,
        _ => 0.0,
    };
    let mut reply = reply
        .header("x-ratelimit-resource", "Core")
        .header("x-ratelimit-limit", format!("{}", limit.limit))
        .header("x-ratelimit-remaining", format!("{remaining:.3}"))
        .header("x-ratelimit-reset", reset_epoch(metered.reset_in));
    let mut hold = metered.shared_delay.unwrap_or_default();
    if let Decision::Delayed { delay, retry_after } = metered.decision {
        hold += delay;
        reply = reply.header("retry-after", retry_after_secs(retry_after));
    }
    if !hold.is_zero() {
        reply = reply.header("x-ratelimit-delay", format!("{:.3}", hold.as_secs_f64()));
    }
    (reply, hold)
}

/// The 500 answer, transient or persistent.
pub(crate) fn server_error(activity_id: &str) -> Reply {
    Reply::error(
        StatusCode::INTERNAL_SERVER_ERROR,
        ExceptionType::Internal,
        &format!("TF400898: An Internal Error Occurred. Activity Id: {activity_id}."),
    )
}

/// Adds the rate-limit headers of a successful answer. `Reset` is the whole second by which
/// usage is surely back at zero (rounded up, as the TSTU model's: rounded down it came up to a
/// second early, and a client reading the window's length from it saw 4 s for 5).
pub(crate) fn rate_limit_headers(reply: Reply, late: &Late, send_always: bool) -> Reply {
    if !send_always && late.usage.is_none() && late.throttled.is_none() {
        return reply;
    }
    let (used, limit) = late.usage.unwrap_or((0, 200));
    let remaining = if late.throttled.is_some() {
        0
    } else {
        limit.saturating_sub(used)
    };
    let reset = reset_epoch(late.reset_in);
    let mut reply = reply
        .header("x-ratelimit-resource", "Core")
        .header("x-ratelimit-limit", limit.to_string())
        .header("x-ratelimit-remaining", remaining.to_string())
        .header("x-ratelimit-reset", reset);
    if let Some(secs) = late.throttled {
        reply = reply.header("retry-after", secs.to_string()).header(
            "x-ratelimit-delay",
            format!("{:.3}", late.hold.as_secs_f64()),
        );
    }
    reply
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_faults_are_transient_and_repeatable() {
        let faults = Faults::new(FaultConfig {
            throttle_probability: 0.3,
            transient_500_probability: 0.3,
            max_transient_attempts: 3,
            ..FaultConfig::none()
        });
        let mut faulted = 0;
        for i in 0..200 {
            let key = format!("/org/_apis/x/{i}");
            let mut outcomes = Vec::new();
            loop {
                let r = faults.early(i, &key);
                outcomes.push(r.is_ok());
                if r.is_ok() {
                    break;
                }
                assert!(
                    outcomes.len() <= 3,
                    "more than 3 faulted attempts for {key}"
                );
            }
            faulted += outcomes.len() - 1;
            // The same request meets the same faults on a second scan.
            let mut again = Vec::new();
            while again.last() != Some(&true) {
                again.push(faults.early(i, &key).is_ok());
            }
            assert_eq!(outcomes, again);
        }
        assert!(faulted > 50, "{faulted}");
    }

    #[test]
    fn storm_throttles_a_run_of_requests() {
        let faults = Faults::new(FaultConfig {
            storm: Some(Storm {
                start_at: 2,
                count: 3,
            }),
            ..FaultConfig::none()
        });
        let hits: Vec<bool> = (0..7).map(|seq| faults.early(seq, "/k").is_err()).collect();
        assert_eq!(hits, [false, false, true, true, true, false, false]);
    }

    #[test]
    fn malformed_first_time_only_happens_once() {
        let mut config = FaultConfig::none();
        config
            .malformed_json
            .insert("aad.a".into(), Persistence::FirstTimeOnly);
        config
            .malformed_json
            .insert("aad.b".into(), Persistence::Always);
        let faults = Faults::new(config);
        assert!(faults.malformed("aad.a"));
        assert!(!faults.malformed("aad.a"));
        assert!(faults.malformed("aad.b"));
        assert!(faults.malformed("aad.b"));
        assert!(!faults.malformed("aad.c"));
    }

    #[test]
    fn revocation_faults_follow_the_ordinals() {
        let faults = Faults::new(FaultConfig {
            failing_revocation_requests: [2, 3].into(),
            throttled_revocation_requests: [3, 5].into(),
            ..FaultConfig::none()
        });
        let got: Vec<Result<(), Early>> = (0..6).map(|_| faults.revocation()).collect();
        let throttle = Err(Early::Throttle {
            retry_after_secs: 1,
        });
        let error = Err(Early::ServerError);
        assert_eq!(got, [Ok(()), error, throttle, Ok(()), throttle, Ok(())]);
    }

    #[test]
    fn ceil_secs_rounds_up() {
        assert_eq!(ceil_secs(Duration::from_millis(1)), 1);
        assert_eq!(ceil_secs(Duration::from_secs(2)), 2);
        assert_eq!(ceil_secs(Duration::ZERO), 0);
    }
}
