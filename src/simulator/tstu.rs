//! The Azure DevOps rate limit as the service documents it (docs/contracts.md, "Rate limits"):
//! each identity is metered in TSTUs over a sliding window (five minutes by default). Up to
//! `limit` TSTU in the window answers are served undelayed and carry `X-RateLimit-Limit`,
//! `-Remaining` and `-Reset` in TSTUs; past it answers are held, longer the further usage is
//! over (milliseconds at first, at most `max_delay`), and carry `Retry-After` and
//! `X-RateLimit-Delay`; `block_over` TSTU past the limit requests are refused with 429 (or, as
//! some clients meet it, 403) and a `RequestBlockedException` body, and cost nothing.
//!
//! The cost of one call is not published and varies: here it depends on the API and carries
//! deterministic noise. Now and then an answer is held for reasons unrelated to this client's
//! use (the service protecting shared resources): `X-RateLimit-Delay` without `Retry-After`.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;
use tokio::time::Instant;

use super::hash::{mix64, unit_float};

/// The APIs the model prices apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TstuApi {
    /// A page of Graph users.
    Graph,
    /// A Token Admin listing page (PATs or SSH keys).
    TokenAdmin,
    /// A Token Admin revocation POST.
    Revocations,
    /// A page of the audit log.
    Audit,
}

/// Mean cost of one call of each API, in TSTU.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TstuCosts {
    pub graph: f64,
    pub token_admin: f64,
    pub revocations: f64,
    pub audit: f64,
}

impl TstuCosts {
    /// Costs in proportion to a Token Admin listing's `listing` TSTU: a Graph page (hundreds
    /// of users) and an audit page cost ten times as much, a revocation five times.
    pub fn scaled(listing: f64) -> Self {
        TstuCosts {
            graph: listing * 10.0,
            token_admin: listing,
            revocations: listing * 5.0,
            audit: listing * 10.0,
        }
    }

    pub fn of(&self, api: TstuApi) -> f64 {
        match api {
            TstuApi::Graph => self.graph,
            TstuApi::TokenAdmin => self.token_admin,
            TstuApi::Revocations => self.revocations,
            TstuApi::Audit => self.audit,
        }
    }
}

/// The model's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct TstuLimit {
    pub window: Duration,
    /// TSTU per window before answers are delayed (`X-RateLimit-Limit`).
    pub limit: f64,
    /// TSTU past `limit` at which requests are refused rather than delayed.
    pub block_over: f64,
    /// The longest delay of one answer.
    pub max_delay: Duration,
    pub costs: TstuCosts,
    /// Each call costs its API's mean times a factor drawn from `1 ± noise`.
    pub noise: f64,
    /// Refuse with 403 (the body still says the request was blocked) instead of 429.
    pub blocked_as_403: bool,
    /// Share of answers held for `shared_delay` whatever this identity's usage.
    pub shared_delay_probability: f64,
    pub shared_delay: Duration,
    pub seed: u64,
}

impl TstuLimit {
    /// The documented limit (200 TSTU per five minutes, delays up to 30 s) at the given cost
    /// of a Token Admin listing.
    pub fn documented(listing_cost: f64) -> Self {
        TstuLimit {
            window: Duration::from_secs(300),
            limit: 200.0,
            block_over: 100.0,
            max_delay: Duration::from_secs(30),
            costs: TstuCosts::scaled(listing_cost),
            noise: 0.5,
            blocked_as_403: false,
            shared_delay_probability: 0.0,
            shared_delay: Duration::from_millis(50),
            seed: 0x757E,
        }
    }
}

/// What the model says about one request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decision {
    /// Served undelayed; `remaining` TSTU are left before delays start.
    Normal { remaining: f64 },
    /// Served after `delay`; the client should wait `retry_after` before the next request.
    Delayed {
        delay: Duration,
        retry_after: Duration,
    },
    /// Refused, not charged.
    Blocked { retry_after: Duration },
}

/// A decision with what the headers need.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Metered {
    pub decision: Decision,
    /// Time until this identity's usage would be back at zero (`X-RateLimit-Reset`).
    pub reset_in: Duration,
    /// What this call was charged (0 when blocked).
    pub charged: f64,
    /// A hold unrelated to this identity's use.
    pub shared_delay: Option<Duration>,
}

#[derive(Debug, Default)]
struct Ledger {
    /// Charges in the window, oldest first.
    log: VecDeque<(Instant, f64)>,
    usage: f64,
}

impl Ledger {
    fn expire(&mut self, now: Instant, window: Duration) {
        while let Some((at, cost)) = self.log.front().copied() {
            if now.saturating_duration_since(at) < window {
                break;
            }
            self.log.pop_front();
            self.usage -= cost;
        }
        if self.log.is_empty() {
            // No rounding residue once the window is empty.
            self.usage = 0.0;
        }
    }

    /// Time until usage is back at or below `level`, if nothing more is charged.
    fn falls_to(&self, level: f64, now: Instant, window: Duration) -> Duration {
        let mut usage = self.usage;
        for (at, cost) in &self.log {
            if usage <= level {
                break;
            }
            usage -= cost;
            if usage <= level {
                return (*at + window).saturating_duration_since(now);
            }
        }
        Duration::ZERO
    }

    fn empties_in(&self, now: Instant, window: Duration) -> Duration {
        self.log.back().map_or(Duration::ZERO, |(at, _)| {
            (*at + window).saturating_duration_since(now)
        })
    }
}

/// The usage of every identity.
#[derive(Debug)]
pub struct TstuMeter {
    limit: TstuLimit,
    identities: HashMap<String, Ledger>,
    calls: u64,
}

impl TstuMeter {
    pub fn new(limit: TstuLimit) -> Self {
        TstuMeter {
            limit,
            identities: HashMap::new(),
            calls: 0,
        }
    }

    /// Decides on one call of `api` by `identity` arriving at `now`, and charges it unless it
    /// is refused.
    pub fn admit(&mut self, identity: &str, api: TstuApi, now: Instant) -> Metered {
        let l = &self.limit;
        self.calls += 1;
        let draw = |salt: u64| unit_float(mix64(l.seed ^ mix64(self.calls ^ salt)));
        let factor = 1.0 + l.noise.clamp(0.0, 1.0) * (2.0 * draw(0xC057) - 1.0);
        let cost = (l.costs.of(api) * factor).max(0.0);
        let shared_delay = (draw(0x5A4E) < l.shared_delay_probability).then_some(l.shared_delay);
        let ledger = self.identities.entry(identity.to_owned()).or_default();
        ledger.expire(now, l.window);
        let over = ledger.usage - l.limit;
        if over >= l.block_over {
            return Metered {
                decision: Decision::Blocked {
                    retry_after: ledger.falls_to(l.limit, now, l.window),
                },
                reset_in: ledger.empties_in(now, l.window),
                charged: 0.0,
                shared_delay,
            };
        }
        ledger.log.push_back((now, cost));
        ledger.usage += cost;
        let over = ledger.usage - l.limit;
        let decision = if over > 0.0 {
            // Grows with the overuse: a millisecond just past the limit, the most at blocking.
            let share = (over / l.block_over).clamp(0.0, 1.0);
            let delay = l
                .max_delay
                .mul_f64(share * share)
                .max(Duration::from_millis(1));
            // Retry-After counts from the answer, which leaves after the delay.
            Decision::Delayed {
                delay,
                retry_after: ledger
                    .falls_to(l.limit, now, l.window)
                    .saturating_sub(delay),
            }
        } else {
            Decision::Normal {
                remaining: (l.limit - ledger.usage).max(0.0),
            }
        };
        Metered {
            decision,
            reset_in: ledger.empties_in(now, l.window),
            charged: cost,
            shared_delay,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meter() -> TstuMeter {
        TstuMeter::new(TstuLimit {
            window: Duration::from_secs(10),
            limit: 10.0,
            block_over: 5.0,
            costs: TstuCosts::scaled(1.0),
            noise: 0.0,
            ..TstuLimit::documented(1.0)
        })
    }

    #[test]
    fn usage_is_metered_per_identity_then_delayed_then_blocked_until_it_frees() {
        let mut m = meter();
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        for i in 0..10 {
            let got = m.admit("a", TstuApi::TokenAdmin, at(i / 2));
            assert_eq!(
                got.decision,
                Decision::Normal {
                    remaining: 9.0 - i as f64
                }
            );
        }
        // Another identity has its own window.
        let other = m.admit("b", TstuApi::Graph, at(5));
        assert_eq!(other.decision, Decision::Normal { remaining: 0.0 });
        // Past the limit: delayed, more as usage grows; Retry-After until back at the limit.
        let Decision::Delayed { delay, retry_after } =
            m.admit("a", TstuApi::TokenAdmin, at(5)).decision
        else {
            panic!("expected a delay");
        };
        // 1 TSTU over of the 5 that block: (1/5)² of the longest delay.
        assert_eq!(delay, Duration::from_millis(1200));
        assert_eq!(
            retry_after,
            Duration::from_secs(5) - delay,
            "the first call leaves at 10 s"
        );
        let mut delays = vec![delay];
        for _ in 0..4 {
            if let Decision::Delayed { delay, .. } =
                m.admit("a", TstuApi::TokenAdmin, at(5)).decision
            {
                delays.push(delay);
            }
        }
        assert!(delays.windows(2).all(|w| w[0] < w[1]), "{delays:?}");
        assert_eq!(delays.last(), Some(&Duration::from_secs(30)));
        // 15 TSTU used, 5 over: refused and not charged, the Graph page too.
        let blocked = m.admit("a", TstuApi::Graph, at(6));
        assert!(matches!(blocked.decision, Decision::Blocked { .. }));
        assert_eq!(blocked.charged, 0.0);
        assert_eq!(blocked.reset_in, Duration::from_secs(9));
        // Once the window has moved on, all is served again.
        assert!(matches!(
            m.admit("a", TstuApi::TokenAdmin, at(30)).decision,
            Decision::Normal { .. }
        ));
    }

    #[test]
    fn some_answers_are_held_whatever_the_usage() {
        let mut m = TstuMeter::new(TstuLimit {
            shared_delay_probability: 0.5,
            ..TstuLimit::documented(0.01)
        });
        let now = Instant::now();
        let held = (0..1000)
            .map(|_| m.admit("a", TstuApi::TokenAdmin, now))
            .filter(|got| {
                assert!(matches!(got.decision, Decision::Normal { .. }));
                got.shared_delay == Some(Duration::from_millis(50))
            })
            .count();
        assert!((400..600).contains(&held), "{held}");
    }

    #[test]
    fn costs_differ_by_api_and_vary_around_their_mean() {
        let mut m = TstuMeter::new(TstuLimit {
            limit: 1e9,
            ..TstuLimit::documented(0.02)
        });
        let now = Instant::now();
        let mean = |m: &mut TstuMeter, api| {
            let costs: Vec<f64> = (0..2000).map(|_| m.admit("a", api, now).charged).collect();
            assert!(costs.iter().any(|c| (c - costs[0]).abs() > 1e-9), "noise");
            costs.iter().sum::<f64>() / costs.len() as f64
        };
        let listing = mean(&mut m, TstuApi::TokenAdmin);
        let graph = mean(&mut m, TstuApi::Graph);
        assert!((listing - 0.02).abs() < 0.002, "{listing}");
        assert!((graph - 0.2).abs() < 0.02, "{graph}");
    }
}
