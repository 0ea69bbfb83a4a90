//! An optional sliding-window rate-limit model, for benchmarking a client's pacing.
//!
//! The real service meters TSTUs per user over a sliding five-minute window: first it adds
//! `Retry-After` to successful answers and delays them, then it blocks with 429
//! (docs/contracts.md, "Rate limits").
//! This model counts requests instead of TSTUs: past `soft_threshold` requests in the window
//! answers are delayed and carry `Retry-After`; at `budget` requests are refused with 429
//! until the oldest request leaves the window. Refused requests are not counted, so a client
//! that waits as told gets through.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The window's size and thresholds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowLimit {
    pub window: Duration,
    /// Requests admitted per window; further requests get 429.
    pub budget: usize,
    /// Requests per window before answers get delayed and carry `Retry-After`.
    pub soft_threshold: usize,
    /// How long a request past the soft threshold is held before it is answered.
    pub delay: Duration,
}

/// What the window says about one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Under the soft threshold; `used` requests are in the window, this one included.
    Normal { used: usize },
    /// Admitted but past the soft threshold: delay it and tell the client to wait.
    Delayed { used: usize, retry_after: Duration },
    /// Over budget: answer 429 and tell the client when a slot frees.
    Blocked { retry_after: Duration },
}

#[derive(Debug)]
pub struct SlidingWindow {
    limit: WindowLimit,
    admitted: VecDeque<Instant>,
}

impl SlidingWindow {
    pub fn new(limit: WindowLimit) -> Self {
        SlidingWindow {
            limit,
            admitted: VecDeque::new(),
        }
    }

    pub fn limit(&self) -> &WindowLimit {
        &self.limit
    }

    /// Decides on a request arriving at `now` and records it if admitted.
    pub fn admit(&mut self, now: Instant) -> Admission {
        let window = self.limit.window;
        while self
            .admitted
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= window)
        {
            self.admitted.pop_front();
        }
        // Time until the request at `index` (oldest first) leaves the window.
        let frees_in = |admitted: &VecDeque<Instant>, index: usize| {
            admitted.get(index).map_or(Duration::ZERO, |t| {
                (*t + window).saturating_duration_since(now)
            })
        };
        if self.admitted.len() >= self.limit.budget {
            let index = self.admitted.len() - self.limit.budget;
            return Admission::Blocked {
                retry_after: frees_in(&self.admitted, index),
            };
        }
        self.admitted.push_back(now);
        let used = self.admitted.len();
        if used > self.limit.soft_threshold {
            // Wait until the window is back at the soft threshold.
            let retry_after = frees_in(&self.admitted, used - self.limit.soft_threshold - 1);
            Admission::Delayed { used, retry_after }
        } else {
            Admission::Normal { used }
        }
    }

    /// Time until the window would be empty, for `X-RateLimit-Reset`.
    pub fn empties_in(&self, now: Instant) -> Duration {
        self.admitted.back().map_or(Duration::ZERO, |t| {
            (*t + self.limit.window).saturating_duration_since(now)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window() -> SlidingWindow {
        SlidingWindow::new(WindowLimit {
            window: Duration::from_secs(10),
            budget: 5,
            soft_threshold: 3,
            delay: Duration::from_millis(1),
        })
    }

    #[test]
    fn window_delays_past_the_soft_threshold_then_blocks_until_it_frees() {
        let mut w = window();
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        assert_eq!(w.admit(at(0)), Admission::Normal { used: 1 });
        assert_eq!(w.admit(at(1)), Admission::Normal { used: 2 });
        assert_eq!(w.admit(at(2)), Admission::Normal { used: 3 });
        // 4th: past the soft threshold; back at 3 once the first leaves (t=10).
        assert_eq!(
            w.admit(at(3)),
            Admission::Delayed {
                used: 4,
                retry_after: Duration::from_secs(7)
            }
        );
        assert!(matches!(w.admit(at(4)), Admission::Delayed { used: 5, .. }));
        // Over budget: blocked until the first request leaves the window.
        assert_eq!(
            w.admit(at(5)),
            Admission::Blocked {
                retry_after: Duration::from_secs(5)
            }
        );
        // Blocked requests do not count: still blocked, for less time.
        assert_eq!(
            w.admit(at(8)),
            Admission::Blocked {
                retry_after: Duration::from_secs(2)
            }
        );
        // Once the first request left, one slot is free again.
        assert!(matches!(
            w.admit(at(10)),
            Admission::Delayed { used: 5, .. }
        ));
        // Much later, the window is empty.
        assert_eq!(w.admit(at(100)), Admission::Normal { used: 1 });
        assert_eq!(w.empties_in(at(100)), Duration::from_secs(10));
    }
}
