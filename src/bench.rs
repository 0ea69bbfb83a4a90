//! What `patreport bench` measures against: the floor no client can beat, the sequential walk
//! of the sample this product replaces, and the process's memory.

use crate::ado::paging::LoopGuard;
use crate::ado::{AdoClient, AdoError};
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

/// The sample's algorithm, made complete: one request at a time, every users page, then every
/// page of each user's PATs in turn. Returns (users, PATs, requests).
pub async fn sequential_scan(client: &AdoClient) -> Result<(u64, u64, u64), AdoError> {
    let (mut users, mut pats, mut requests) = (0u64, 0u64, 0u64);
    let mut token: Option<String> = None;
    let mut guard = LoopGuard::default();
    loop {
        let page = client.users_page(token.as_deref()).await?;
        requests += 1;
        for user in &page.users {
            users += 1;
            let mut pat_token: Option<String> = None;
            let mut pat_guard = LoopGuard::default();
            loop {
                let pat_page = client
                    .pats_page(&user.descriptor, pat_token.as_deref())
                    .await?;
                requests += 1;
                pats += pat_page.pats.len() as u64;
                match pat_page.continuation {
                    Some(next) => {
                        pat_guard.check(&next, "PAT listing")?;
                        pat_token = Some(next);
                    }
                    None => break,
                }
            }
        }
        match page.continuation {
            Some(next) => {
                guard.check(&next, "user listing")?;
                token = Some(next);
            }
            None => return Ok((users, pats, requests)),
        }
    }
}

/// Peak resident set size of this process so far (Linux `VmHWM`), in bytes.
pub fn peak_rss_bytes() -> Option<u64> {
    proc_status_kb("VmHWM:").map(|kb| kb * 1024)
}

/// Current resident set size (Linux `VmRSS`), in bytes.
pub fn rss_bytes() -> Option<u64> {
    proc_status_kb("VmRSS:").map(|kb| kb * 1024)
}

fn proc_status_kb(key: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
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
    fn memory_figures_are_readable_on_linux() {
        let peak = peak_rss_bytes().expect("VmHWM");
        let now = rss_bytes().expect("VmRSS");
        assert!(peak >= now && now > 0);
    }
}
