//! The scan: page through the users, list every user's PATs (and, when asked, SSH keys) with
//! bounded concurrency while later user pages are still arriving, and turn every failure into a
//! record.
//!
//! One entry point serves the CLI, the demo, the Functions worker and the benchmark.

use crate::ado::error::error_chain;
use crate::ado::{AdoClient, AdoError, TokenListing};
use crate::inventory::{Inventory, Pat, RunStats, SshKey, User, UserFailure, UserTokens};
pub use crate::stop::{Stop, StopReason};
use futures::{Stream, StreamExt};
use std::pin::pin;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use time::OffsetDateTime;
use tokio::sync::mpsc;

/// How a scan runs.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    /// Users whose tokens are being listed at once.
    pub concurrency: usize,
    /// Stop starting new work after this long; the report is then partial and says so.
    pub time_budget: Option<Duration>,
    /// Stops the scan from outside (Ctrl-C; tests, at the point they choose). The time budget
    /// requests it too.
    pub stop: Stop,
    /// Also list each user's SSH public keys: one more Token Admin listing per user
    /// (`isPublic=true`), after the PATs, in the same slot of the concurrency bound.
    pub include_ssh_keys: bool,
}

impl Default for ScanOptions {
    fn default() -> Self {
        Self {
            concurrency: DEFAULT_CONCURRENCY,
            time_budget: None,
            stop: Stop::default(),
            include_ssh_keys: false,
        }
    }
}

/// Enough to hide the latency of one request per user without tripping throttling early.
pub const DEFAULT_CONCURRENCY: usize = 16;

/// Where the scan reports its progress (CLI progress bar, worker status, nothing).
pub trait Progress: Send + Sync {
    /// `listed` users have been listed so far.
    fn users_listed(&self, _listed: usize) {}
    /// One user's PATs (and SSH keys, when asked for) were listed (`pats` PATs), or a listing
    /// failed. Once per user.
    fn user_scanned(&self, _pats: usize, _failed: bool) {}
    /// One user's PATs, as soon as all of the user's listings are read (the live view shows
    /// them); never for a user who ends up a failure record.
    fn user_read(&self, _user: &User, _pats: &[Pat]) {}
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
    Listed(Vec<Pat>, Vec<SshKey>),
    Failed(Option<u16>, String),
}

/// Tokens already known for some users, so the scan need not list them again (the
/// incremental refresh: every user is listed by Graph as usual, and only the users it cannot
/// vouch for are read from Token Admin).
pub trait Reuse: Send + Sync {
    /// This user's PATs and SSH keys as known, taken (each user is asked once); `None`: list.
    fn take(&self, _user: &User) -> Option<(Vec<Pat>, Vec<SshKey>)> {
        None
    }
}

/// Reuse nothing: a full scan.
pub struct ListEveryone;
impl Reuse for ListEveryone {}

/// Scan one organization.
pub async fn scan(
    client: &AdoClient,
    options: &ScanOptions,
    progress: &dyn Progress,
) -> Result<Inventory, ScanError> {
    scan_reusing(client, options, progress, &ListEveryone).await
}

/// Scan one organization, listing the tokens only of the users `reuse` has nothing for.
pub async fn scan_reusing(
    client: &AdoClient,
    options: &ScanOptions,
    progress: &dyn Progress,
    reuse: &dyn Reuse,
) -> Result<Inventory, ScanError> {
    let org = client.settings().organization.clone();
    let org_name = org.as_str();
    let started = OffsetDateTime::now_utc();
    let stop = &options.stop;
    if let Some(deadline) = options
        .time_budget
        .and_then(|b| tokio::time::Instant::now().checked_add(b))
    {
        client.bind_budget(deadline, stop.clone());
    }
    let budget = budget_timer(options.time_budget, stop);

    let abort: Mutex<Option<ScanError>> = Mutex::new(None);
    let aborted = AtomicBool::new(false);
    let any_pat_success = AtomicBool::new(false);
    let tally = Tally::default();
    // Users listed but not read because the scan was stopped (not reached, or cut).
    let cut = AtomicU64::new(0);
    // Users whose tokens came from `reuse` rather than a listing.
    let reused = AtomicU64::new(0);

    let (tx, mut rx) = mpsc::channel::<(usize, User)>(1024);

    // Producer: the users chain is sequential by nature (each page needs the previous token).
    let list_users = async {
        let mut listed = 0usize;
        let mut pages = 0u64;
        let mut orphans = Vec::new();
        let mut stopped_early = None;
        // A user the service lists twice is scanned once (and the repeat counted).
        let mut seen = std::collections::HashSet::new();
        let mut duplicate_users = 0u64;
        let mut user_pages = pin!(client.users());
        loop {
            if aborted.load(Ordering::Relaxed) {
                break;
            }
            if let Some(reason) = stop.reason() {
                stopped_early = Some(format!(
                    "{} after {pages} pages of users; any later pages were not listed",
                    reason.what()
                ));
                break;
            }
            let page = match stop.or_cut(user_pages.next()).await {
                None => {
                    let reason = stop.reason().unwrap_or(StopReason::TimeBudget);
                    stopped_early = Some(format!(
                        "{} while page {} of users was being read; users on it and later pages were not listed",
                        reason.what(),
                        pages + 1
                    ));
                    break;
                }
                Some(None) => break,
                Some(Some(Ok(page))) => page,
                Some(Some(Err(e))) if pages == 0 => {
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
                Some(Some(Err(e))) => {
                    stopped_early = Some(format!(
                        "listing users failed after {pages} pages ({listed} users); later users were not listed: {e}"
                    ));
                    break;
                }
            };
            pages += 1;
            orphans.extend(page.without_descriptor);
            for user in page.users {
                if !seen.insert(user.descriptor.clone()) {
                    duplicate_users += 1;
                    continue;
                }
                if tx.send((listed, user)).await.is_err() {
                    break;
                }
                listed += 1;
            }
            progress.users_listed(listed);
        }
        drop(tx);
        (pages, orphans, stopped_early, duplicate_users)
    };

    // Consumers: bounded concurrent token listings, started as soon as users arrive.
    let list_tokens = async {
        let users = futures::stream::poll_fn(|cx| rx.poll_recv(cx));
        users
            .map(|(index, user)| {
                let (abort, aborted, any_ok, tally, cut, reused) =
                    (&abort, &aborted, &any_pat_success, &tally, &cut, &reused);
                async move {
                    if aborted.load(Ordering::Relaxed) {
                        return None;
                    }
                    // Known tokens cost no request: kept even after a stop.
                    if let Some((pats, ssh_keys)) = reuse.take(&user) {
                        reused.fetch_add(1, Ordering::Relaxed);
                        progress.user_read(&user, &pats);
                        progress.user_scanned(pats.len(), false);
                        return Some((index, user, Outcome::Listed(pats, ssh_keys)));
                    }
                    if let Some(reason) = stop.reason() {
                        let msg = format!(
                            "not scanned: {} before this user was reached",
                            reason.what()
                        );
                        cut.fetch_add(1, Ordering::Relaxed);
                        progress.user_scanned(0, true);
                        return Some((index, user, Outcome::Failed(None, msg)));
                    }
                    let listing = list_user(
                        client,
                        &user.descriptor,
                        options.include_ssh_keys,
                        tally,
                        any_ok,
                    );
                    let Some(listed) = stop.or_cut(listing).await else {
                        let reason = stop.reason().unwrap_or(StopReason::TimeBudget);
                        let msg = format!(
                            "not finished: {} while this user's tokens were being listed",
                            reason.what()
                        );
                        cut.fetch_add(1, Ordering::Relaxed);
                        progress.user_scanned(0, true);
                        return Some((index, user, Outcome::Failed(None, msg)));
                    };
                    let outcome = match listed {
                        Ok((pats, ssh_keys)) => {
                            progress.user_read(&user, &pats);
                            progress.user_scanned(pats.len(), false);
                            Outcome::Listed(pats, ssh_keys)
                        }
                        // A credential refused before any PAT listing succeeded is refused for
                        // everyone: stop with one clear error rather than N identical records.
                        // (An SSH key listing only starts once the credential has listed PATs.)
                        Err((TokenListing::Pats, e))
                            if e.is_authentication() && !any_ok.load(Ordering::Relaxed) =>
                        {
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
                        Err((TokenListing::Pats, e)) => {
                            progress.user_scanned(0, true);
                            Outcome::Failed(e.status(), error_chain(&e))
                        }
                        // The PATs were read, but a user is read whole or is a failure record.
                        Err((TokenListing::SshKeys, e)) => {
                            progress.user_scanned(0, true);
                            Outcome::Failed(
                                e.status(),
                                format!(
                                    "listing this user's SSH keys failed (its PATs were read): {}",
                                    error_chain(&e)
                                ),
                            )
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

    let work = async { tokio::join!(list_users, list_tokens) };
    let ((user_pages, orphans, stopped_early, duplicate_users), mut outcomes) = tokio::select! {
        done = work => done,
        never = budget => match never {},
    };

    if let Some(fatal) = abort.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(fatal);
    }
    // A stop that came while the tokens were being listed is a stop too: say so.
    let cut = cut.into_inner();
    let stopped_early = match (stopped_early, stop.reason()) {
        (Some(why), _) => Some(why),
        (None, Some(reason)) if cut > 0 => Some(format!(
            "{}: {cut} of the users listed were not read",
            reason.what()
        )),
        (None, _) => None,
    };

    outcomes.sort_unstable_by_key(|(index, _, _)| *index);
    let mut users = Vec::with_capacity(outcomes.len());
    let mut failures = Vec::new();
    for (_, user, outcome) in outcomes {
        match outcome {
            Outcome::Listed(pats, ssh_keys) => users.push(UserTokens {
                user,
                pats,
                ssh_keys,
            }),
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
            pat_pages: tally.pat_pages.into_inner(),
            duplicate_users,
            duplicate_pats: tally.duplicate_pats.into_inner(),
            ssh_key_pages: tally.ssh_key_pages.into_inner(),
            duplicate_ssh_keys: tally.duplicate_ssh_keys.into_inner(),
            reused_users: reused.into_inner(),
            ..RunStats::default()
        }
        .with_pacing(&pacing),
        signals: Default::default(),
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

/// Pages read and repeated entries dropped, per kind of listing, over the whole scan.
#[derive(Default)]
struct Tally {
    pat_pages: AtomicU64,
    duplicate_pats: AtomicU64,
    ssh_key_pages: AtomicU64,
    duplicate_ssh_keys: AtomicU64,
}

/// One user's tokens: the PATs, then (when asked) the SSH keys, one listing after the other so
/// that a user holds one slot of the concurrency bound either way. Each listing's pages are
/// counted once it completes; an error says which listing it came from.
async fn list_user(
    client: &AdoClient,
    descriptor: &str,
    include_ssh_keys: bool,
    tally: &Tally,
    credential_works: &AtomicBool,
) -> Result<(Vec<Pat>, Vec<SshKey>), (TokenListing, AdoError)> {
    let pat_pages = client.pats(descriptor).map(|p| p.map(|p| p.pats));
    let pats = list_all(pat_pages)
        .await
        .map_err(|e| (TokenListing::Pats, e))?;
    credential_works.store(true, Ordering::Relaxed);
    tally.pat_pages.fetch_add(pats.pages, Ordering::Relaxed);
    tally
        .duplicate_pats
        .fetch_add(pats.duplicates, Ordering::Relaxed);
    if !include_ssh_keys {
        return Ok((pats.entries, Vec::new()));
    }
    let key_pages = client.ssh_keys(descriptor).map(|p| p.map(|p| p.keys));
    let keys = list_all(key_pages)
        .await
        .map_err(|e| (TokenListing::SshKeys, e))?;
    tally.ssh_key_pages.fetch_add(keys.pages, Ordering::Relaxed);
    tally
        .duplicate_ssh_keys
        .fetch_add(keys.duplicates, Ordering::Relaxed);
    Ok((pats.entries, keys.entries))
}

/// An entry of a Token Admin listing, known by its authorization id.
trait Entry {
    fn authorization_id(&self) -> Option<&str>;
}

impl Entry for Pat {
    fn authorization_id(&self) -> Option<&str> {
        self.authorization_id.as_deref()
    }
}

impl Entry for SshKey {
    fn authorization_id(&self) -> Option<&str> {
        self.authorization_id.as_deref()
    }
}

/// One user's listing of one kind.
struct Listing<T> {
    entries: Vec<T>,
    pages: u64,
    /// Entries whose authorization id an earlier page (or entry) already gave.
    duplicates: u64,
}

/// Every entry of one listing, all pages followed, each authorization id once: a service that
/// repeats an entry on two pages must not inflate the report.
async fn list_all<T: Entry>(
    pages: impl Stream<Item = Result<Vec<T>, AdoError>>,
) -> Result<Listing<T>, AdoError> {
    let mut listing = Listing {
        entries: Vec::new(),
        pages: 0,
        duplicates: 0,
    };
    let mut ids = std::collections::HashSet::new();
    let mut pages = pin!(pages);
    while let Some(page) = pages.next().await {
        for entry in page? {
            let fresh = match entry.authorization_id() {
                Some(id) => ids.insert(id.to_owned()),
                None => true,
            };
            if fresh {
                listing.entries.push(entry);
            } else {
                listing.duplicates += 1;
            }
        }
        listing.pages += 1;
    }
    Ok(listing)
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
