//! Stopping a scan from outside: its time budget running out, or an interrupt (Ctrl-C,
//! SIGTERM). New work stops at once; work in flight gets a short grace to finish, then is cut,
//! so no run outlives its budget by more than [`GRACE`].

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::Notify;

/// How long listings in flight may still take once a stop is requested.
pub const GRACE: Duration = Duration::from_secs(10);

/// Why a scan stopped starting new work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    TimeBudget,
    Interrupted,
}

impl StopReason {
    /// What happened, as the start of a sentence: "the time budget ran out".
    pub fn what(self) -> &'static str {
        match self {
            StopReason::TimeBudget => "the time budget ran out",
            StopReason::Interrupted => "the scan was interrupted",
        }
    }
}

/// Asks a running scan to stop starting new work. The first reason given is the one kept.
/// Cheap to clone; every clone is the same signal.
#[derive(Debug, Clone, Default)]
pub struct Stop(Arc<Inner>);

#[derive(Debug, Default)]
struct Inner {
    reason: OnceLock<StopReason>,
    notify: Notify,
}

impl Stop {
    pub fn request(&self, reason: StopReason) {
        if self.0.reason.set(reason).is_ok() {
            self.0.notify.notify_waiters();
        }
    }

    pub fn reason(&self) -> Option<StopReason> {
        self.0.reason.get().copied()
    }

    /// Completes once a stop is requested.
    pub async fn requested(&self) -> StopReason {
        loop {
            let notified = self.0.notify.notified();
            tokio::pin!(notified);
            // Registered before the check, so a request between the two is not missed.
            notified.as_mut().enable();
            if let Some(reason) = self.reason() {
                return reason;
            }
            notified.await;
        }
    }

    /// `work`, unless a stop is requested and [`GRACE`] passes before it finishes: then `None`.
    pub async fn or_cut<T>(&self, work: impl Future<Output = T>) -> Option<T> {
        let cut = async {
            self.requested().await;
            tokio::time::sleep(GRACE).await;
        };
        tokio::select! {
            done = work => Some(done),
            () = cut => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn work_in_flight_gets_a_grace_then_is_cut() {
        let stop = Stop::default();
        let slow = tokio::time::sleep(Duration::from_secs(3600));
        let request = async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            stop.request(StopReason::Interrupted);
        };
        let started = tokio::time::Instant::now();
        let (cut, ()) = tokio::join!(stop.or_cut(slow), request);
        assert_eq!(cut, None);
        assert_eq!(started.elapsed(), Duration::from_secs(5) + GRACE);
        // Work that finishes within the grace is kept.
        let quick = tokio::time::sleep(Duration::from_secs(1));
        assert_eq!(stop.or_cut(quick).await, Some(()));
        assert_eq!(stop.reason(), Some(StopReason::Interrupted));
    }

    #[tokio::test(start_paused = true)]
    async fn the_first_reason_is_kept_and_waiters_wake() {
        let stop = Stop::default();
        let waiter = stop.clone();
        let woken = tokio::spawn(async move { waiter.requested().await });
        tokio::task::yield_now().await;
        stop.request(StopReason::TimeBudget);
        stop.request(StopReason::Interrupted);
        assert_eq!(woken.await.unwrap(), StopReason::TimeBudget);
        assert_eq!(stop.reason(), Some(StopReason::TimeBudget));
    }
}
