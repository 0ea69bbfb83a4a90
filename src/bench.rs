//! What `patreport bench` measures against: the floor no client can beat, the sequential walk
//! of the sample this product replaces, and the process's memory.

use crate::ado::{AdoClient, AdoError};
use futures::StreamExt;
use std::pin::pin;
use std::time::Duration;

/// The least time any client needs for a scan at this latency and concurrency.
///
/// The users listing is a chain (each page needs the previous page's token), and at least one
/// PAT listing must follow its last page. The PAT listings can overlap that chain, but none can
/// start before the first users page, and at most `concurrency` are in flight.
pub fn floor(
    user_pages: u64,
    pat_requests: u64,
    latency: Duration,
    concurrency: usize,
) -> Duration {
    let concurrency = concurrency.max(1) as u64;
    let chain = latency * u32::try_from(user_pages + 1).unwrap_or(u32::MAX);
    let rounds = pat_requests.div_ceil(concurrency) + 1;
    let work = latency * u32::try_from(rounds).unwrap_or(u32::MAX);
    chain.max(work)
}

/// The least time any client that is never delayed needs when each identity may consume
/// `limit` TSTU in any sliding `window`, for `calls` requests costing `total_cost` TSTU in all,
/// at this latency and concurrency.
///
/// An empty window admits `limit` at once; after that no window can hold more than `limit`.
/// So the windows `[0, W)`, `[W, 2W)`, ... hold `limit` each at most, and with
/// `k = ⌈total / limit⌉ - 1` the last `total - k × limit` TSTU cannot start before `k × W`;
/// those calls then take their own latency time (`⌈calls' / concurrency⌉ × latency`). The
/// bound is reached by spending each window's `limit` as soon as it frees. A client that lets
/// itself be delayed can finish a little sooner when the total is just past a multiple of
/// `limit`, at the cost of delays of up to 30 s per request.
pub fn budget_floor(
    total_cost: f64,
    limit: f64,
    window: Duration,
    calls: u64,
    latency: Duration,
    concurrency: usize,
) -> Duration {
    if total_cost <= limit || limit <= 0.0 || calls == 0 {
        return Duration::ZERO;
    }
    let k = (total_cost / limit).ceil() - 1.0;
    let last_calls = (calls as f64 * (total_cost - k * limit) / total_cost).ceil() as u64;
    let rounds = last_calls.div_ceil(concurrency.max(1) as u64);
    window.mul_f64(k) + latency * u32::try_from(rounds).unwrap_or(u32::MAX)
}

/// The sample's algorithm, made complete: one request at a time, every users page, then every
/// page of each user's PATs in turn. Returns (users, PATs, requests).
pub async fn sequential_scan(client: &AdoClient) -> Result<(u64, u64, u64), AdoError> {
    let (mut users, mut pats, mut requests) = (0u64, 0u64, 0u64);
    let mut user_pages = pin!(client.users());
    while let Some(page) = user_pages.next().await {
        let page = page?;
        requests += 1;
        for user in &page.users {
            users += 1;
            let mut pat_pages = pin!(client.pats(&user.descriptor));
            while let Some(pat_page) = pat_pages.next().await {
                requests += 1;
                pats += pat_page?.pats.len() as u64;
            }
        }
    }
    Ok((users, pats, requests))
}

/// The process's resident memory, both figures from one read of `/proc/self/status` (two
/// reads would let other threads allocate in between, and the peak could trail the current).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Memory {
    /// Peak resident set size so far (`VmHWM`), in bytes.
    pub peak: u64,
    /// Current resident set size (`VmRSS`), in bytes.
    pub current: u64,
}

impl Memory {
    /// This process's figures (Linux only).
    pub fn now() -> Option<Self> {
        Self::parse(&std::fs::read_to_string("/proc/self/status").ok()?)
    }

    /// The figures of a `/proc/{pid}/status` text.
    pub fn parse(status: &str) -> Option<Self> {
        let kb = |key: &str| -> Option<u64> {
            let line = status.lines().find(|l| l.starts_with(key))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        };
        Some(Self {
            peak: kb("VmHWM:")? * 1024,
            current: kb("VmRSS:")? * 1024,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_floor_is_the_longer_of_the_chain_and_the_parallel_work() {
        let ms = Duration::from_millis;
        // 20 user pages, 10,000 PAT requests, 16 at a time: the work dominates.
        assert_eq!(floor(20, 10_000, ms(20), 16), ms(20) * 626);
        // Few PATs: the chain of user pages dominates.
        assert_eq!(floor(50, 10, ms(20), 16), ms(20) * 51);
        assert_eq!(floor(1, 0, ms(10), 0), ms(20));
    }

    #[test]
    fn the_budget_floor_spends_each_window_as_it_frees() {
        let ms = Duration::from_millis;
        let minute = Duration::from_secs(60);
        // Within the first window's budget: no budget floor at all.
        assert_eq!(
            budget_floor(150.0, 200.0, minute, 10_000, ms(20), 16),
            ms(0)
        );
        // 500 TSTU: two full windows, then the last 100 TSTU (2,000 of 10,000 calls: 125
        // rounds of 16) after two minutes.
        assert_eq!(
            budget_floor(500.0, 200.0, minute, 10_000, ms(20), 16),
            minute * 2 + ms(20) * 125
        );
        // Exactly two windows' worth: the second 200 starts after one window.
        assert_eq!(
            budget_floor(400.0, 200.0, minute, 1_600, ms(20), 16),
            minute + ms(20) * 50
        );
    }

    #[test]
    fn memory_figures_come_from_one_snapshot() {
        let status = "Name:\tpatreport\nVmPeak:\t  900 kB\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\n";
        assert_eq!(
            Memory::parse(status),
            Some(Memory {
                peak: 2048 * 1024,
                current: 1024 * 1024
            })
        );
        assert_eq!(Memory::parse("VmRSS:\t 1 kB\n"), None);
        if cfg!(target_os = "linux") {
            let m = Memory::now().expect("/proc/self/status");
            assert!(m.peak >= m.current && m.current > 0, "{m:?}");
        }
    }
}
