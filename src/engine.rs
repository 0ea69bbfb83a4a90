//! The scan: page through the users, list every user's PATs with bounded concurrency while
//! later user pages are still arriving, and turn every failure into a record.
//!
//! One entry point serves the CLI, the demo, the Functions worker and the benchmark.

use crate::ado::error::error_chain;
use crate::ado::{AdoClient, AdoError};
use crate::inventory::{Inventory, Pat, RunStats, User, UserFailure, UserTokens};
use futures::StreamExt;
use std::pin::pin;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use time::OffsetDateTime;
use tokio::sync::mpsc;

/// How a scan runs.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    /// PAT listings in flight at once.
    pub concurrency: usize,
    /// Stop starting new work after this long; the report is then partial and says so.
    pub time_budget: Option<Duration>,
    /// Stops the scan from outside (Ctrl-C; tests, at the point they choose). The time budget
    /// requests it too.
    pub stop: Stop,
}

impl Default for ScanOptions {
    fn default() -> Self {
        Self {
            concurrency: DEFAULT_CONCURRENCY,
            time_budget: None,
            stop: Stop::default(),
        }
    }
}

/// Why a scan stopped starting new work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    TimeBudget,
    Interrupted,
}

impl StopReason {
    /// What happened, as the end of a sentence: "the time budget ran out".
    pub fn what(self) -> &'static str {
        match self {
            StopReason::TimeBudget => "the time budget ran out",
            StopReason::Interrupted => "the scan was interrupted",
        }
    }
}

/// Asks a running scan to stop starting new work: listings in flight finish, users not yet
/// reached are recorded as not scanned, and the report says it is partial. The first reason
/// given is the one kept. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Stop(std::sync::Arc<std::sync::OnceLock<StopReason>>);

impl Stop {
    pub fn request(&self, reason: StopReason) {
        let _ = self.0.set(reason);
    }

    pub fn reason(&self) -> Option<StopReason> {
        self.0.get().copied()
    }
}

/// Enough to hide the latency of one request per user without tripping throttling early.
pub const DEFAULT_CONCURRENCY: usize = 16;

/// Where the scan reports its progress (CLI progress bar, worker status, nothing).
pub trait Progress: Send + Sync {
    /// `listed` users have been listed so far.
    fn users_listed(&self, _listed: usize) {}
    /// One user's PATs were listed (`pats` of them), or the listing failed.
    fn user_scanned(&self, _pats: usize, _failed: bool) {}
}

/// Progress that goes nowhere.
pub struct NoProgress;
impl Progress for NoProgress {}

/// Why a scan could not produce a report at all.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error(
        "organization '{org}' was not found at {url} (HTTP 404): check the organization name and the Azure DevOps URL"
    )]
    OrgNotFound { org: String, url: String },
    #[error("could not list the users of '{org}': {source}")]
    Users { org: String, source: AdoError },
    #[error("could not list personal access tokens in '{org}': {source}")]
    TokenAdmin { org: String, source: AdoError },
}

impl ScanError {
    /// Worth another attempt later (the Azure DevOps layer decides for its own errors).
    pub fn is_transient(&self) -> bool {
        match self {
            ScanError::OrgNotFound { .. } => false,
            ScanError::Users { source, .. } | ScanError::TokenAdmin { source, .. } => {
                source.is_transient()
            }
        }
    }
}

enum Outcome {
    Listed(Vec<Pat>),
    Failed(Option<u16>, String),
}

/// Scan one organization.
pub async fn scan(
    client: &AdoClient,
    options: &ScanOptions,
    progress: &dyn Progress,
) -> Result<Inventory, ScanError> {
    let org = client.settings().organization.clone();
    let org_name = org.as_str();
    let started = OffsetDateTime::now_utc();
    let stop = &options.stop;
    let budget = budget_timer(options.time_budget, stop);

    let abort: Mutex<Option<ScanError>> = Mutex::new(None);
    let aborted = AtomicBool::new(false);
    let any_pat_success = AtomicBool::new(false);
    let pat_pages = AtomicU64::new(0);

    let (tx, mut rx) = mpsc::channel::<(usize, User)>(1024);

    // Producer: the users chain is sequential by nature (each page needs the previous token).
    let list_users = async {
        let mut listed = 0usize;
        let mut pages = 0u64;
        let mut orphans = Vec::new();
        let mut stopped_early = None;
        let mut user_pages = pin!(client.users());
        loop {
            if aborted.load(Ordering::Relaxed) {
                break;
            }
            if let Some(reason) = stop.reason() {
                stopped_early = Some(format!(
                    "{} after {pages} pages of users; users on later pages were not listed",
                    reason.what()
                ));
                break;
            }
            let page = match user_pages.next().await {
                None => break,
                Some(Ok(page)) => page,
                Some(Err(e)) if pages == 0 => {
                    let fatal = if e.status() == Some(404) {
                        ScanError::OrgNotFound {
                            org: org_name.to_owned(),
                            url: client.settings().base_url.to_string(),
                        }
                    } else {
                        ScanError::Users {
                            org: org_name.to_owned(),
                            source: e,
                        }
                    };
                    set_abort(&abort, &aborted, fatal);
                    break;
                }
                Some(Err(e)) => {
                    stopped_early = Some(format!(
                        "listing users failed after {pages} pages ({listed} users); later users were not listed: {e}"
                    ));
                    break;
                }
            };
            pages += 1;
            orphans.extend(page.without_descriptor);
            for user in page.users {
                if tx.send((listed, user)).await.is_err() {
                    break;
                }
                listed += 1;
            }
            progress.users_listed(listed);
        }
        drop(tx);
        (pages, orphans, stopped_early)
    };

    // Consumers: bounded concurrent PAT listings, started as soon as users arrive.
    let list_pats = async {
        let users = futures::stream::poll_fn(|cx| rx.poll_recv(cx));
        users
            .map(|(index, user)| {
                let (abort, aborted, any_ok, pat_pages) =
                    (&abort, &aborted, &any_pat_success, &pat_pages);
                async move {
                    if aborted.load(Ordering::Relaxed) {
                        return None;
                    }
                    if let Some(reason) = stop.reason() {
                        let msg = format!(
                            "not scanned: {} before this user was reached",
                            reason.what()
                        );
                        progress.user_scanned(0, true);
                        return Some((index, user, Outcome::Failed(None, msg)));
                    }
                    let outcome = match list_all_pats(client, &user.descriptor).await {
                        Ok((pats, pages)) => {
                            any_ok.store(true, Ordering::Relaxed);
                            pat_pages.fetch_add(pages, Ordering::Relaxed);
                            progress.user_scanned(pats.len(), false);
                            Outcome::Listed(pats)
                        }
                        // A credential refused before any listing succeeded is refused for
                        // everyone: stop with one clear error rather than N identical records.
                        Err(e) if e.is_authentication() && !any_ok.load(Ordering::Relaxed) => {
                            set_abort(
                                abort,
                                aborted,
                                ScanError::TokenAdmin {
                                    org: org_name.to_owned(),
                                    source: e,
                                },
                            );
                            return None;
                        }
                        Err(e) => {
                            progress.user_scanned(0, true);
                            Outcome::Failed(e.status(), error_chain(&e))
                        }
                    };
                    Some((index, user, outcome))
                }
            })
            .buffer_unordered(options.concurrency.max(1))
            .filter_map(|o| async move { o })
            .collect::<Vec<_>>()
            .await
    };

    let work = async { tokio::join!(list_users, list_pats) };
    let ((user_pages, orphans, stopped_early), mut outcomes) = tokio::select! {
        done = work => done,
        never = budget => match never {},
    };

    if let Some(fatal) = abort.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(fatal);
    }

    outcomes.sort_unstable_by_key(|(index, _, _)| *index);
    let mut users = Vec::with_capacity(outcomes.len());
    let mut failures = Vec::new();
    for (_, user, outcome) in outcomes {
        match outcome {
            Outcome::Listed(pats) => users.push(UserTokens { user, pats }),
            Outcome::Failed(status, message) => failures.push(UserFailure {
                user,
                status,
                message,
            }),
        }
    }
    for user in orphans {
        failures.push(UserFailure {
            user,
            status: None,
            message:
                "the service listed this user without a descriptor, so its tokens cannot be listed"
                    .into(),
        });
    }

    let pacing = client.pacing();
    Ok(Inventory {
        org,
        started,
        finished: OffsetDateTime::now_utc(),
        users,
        failures,
        stopped_early,
        stats: RunStats {
            api_calls: pacing.api_calls,
            retries: pacing.retries,
            throttled: pacing.throttled,
            throttle_wait: pacing.throttle_wait,
            user_pages,
            pat_pages: pat_pages.into_inner(),
        },
    })
}

/// Requests the stop once `budget` has passed; never completes.
async fn budget_timer(budget: Option<Duration>, stop: &Stop) -> std::convert::Infallible {
    if let Some(budget) = budget {
        tokio::time::sleep(budget).await;
        stop.request(StopReason::TimeBudget);
    }
    std::future::pending().await
}

/// Every PAT of one user, all pages followed. Returns the PATs and the number of pages read.
async fn list_all_pats(client: &AdoClient, descriptor: &str) -> Result<(Vec<Pat>, u64), AdoError> {
    let mut pats = Vec::new();
    let mut pages = 0;
    let mut stream = pin!(client.pats(descriptor));
    while let Some(page) = stream.next().await {
        pats.extend(page?.pats);
        pages += 1;
    }
    Ok((pats, pages))
}

fn set_abort(slot: &Mutex<Option<ScanError>>, flag: &AtomicBool, error: ScanError) {
    let mut slot = slot.lock().unwrap_or_else(|p| p.into_inner());
    if slot.is_none() {
        *slot = Some(error);
    }
    flag.store(true, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_budget_requests_the_stop_when_it_runs_out() {
        let stop = Stop::default();
        let timer = budget_timer(Some(Duration::from_secs(3600)), &stop);
        tokio::pin!(timer);
        let before = tokio::time::timeout(Duration::from_secs(3599), &mut timer).await;
        assert!(before.is_err() && stop.reason().is_none());
        let _ = tokio::time::timeout(Duration::from_secs(2), &mut timer).await;
        assert_eq!(stop.reason(), Some(StopReason::TimeBudget));
        // The first reason stays.
        stop.request(StopReason::Interrupted);
        assert_eq!(stop.reason(), Some(StopReason::TimeBudget));
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_budget_nothing_stops_the_scan() {
        let stop = Stop::default();
        let timer = budget_timer(None, &stop);
        assert!(
            tokio::time::timeout(Duration::from_secs(86_400 * 365), timer)
                .await
                .is_err()
        );
        assert_eq!(stop.reason(), None);
    }
}
