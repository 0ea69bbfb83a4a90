//! The incremental refresh: from the state of the last full picture and the audit log since,
//! read again only the owners whose tokens changed, and produce the inventory a full scan
//! would. Whenever correctness is in doubt it falls back to a full scan and says why; a full
//! scan on a cadence checks what the refreshes predicted.
//!
//! Every user is still listed by Graph (a few dozen pages, cheap next to one Token Admin call
//! per user): new users are read, departed ones drop out, and names are current.

pub mod plan;
pub mod state;

pub use crate::inventory::RefreshInfo;
pub use plan::{Decision, Targets};
pub use state::{STATE_VERSION, State, StateError, StateRef};

use crate::ado::{AdoClient, AdoError};
use crate::auditlog::{self, AuditEvent, Meaning, Signals};
use crate::engine::{self, Progress, Reuse, ScanError, ScanOptions};
use crate::inventory::{Inventory, Pat, SshKey, User, UserTokens};
use futures::StreamExt;
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;
use time::OffsetDateTime;

/// How reports are refreshed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshOptions {
    /// Refresh from the audit log when a usable state exists (`--incremental`).
    pub incremental: bool,
    /// A full scan at least this often, as a check on the refreshes.
    pub full_scan_every: Duration,
}

impl Default for RefreshOptions {
    fn default() -> Self {
        Self {
            incremental: false,
            full_scan_every: DEFAULT_FULL_SCAN_EVERY,
        }
    }
}

/// A weekly full scan checks the refreshes.
pub const DEFAULT_FULL_SCAN_EVERY: Duration = Duration::from_secs(7 * 24 * 3600);
/// The audit log is read from this long before the state's time: events may be recorded a
/// little after they happen (how long is not documented).
pub const OVERLAP: time::Duration = time::Duration::minutes(15);
/// Audit events are kept this long (not configurable on the service).
pub const RETENTION: time::Duration = time::Duration::days(90);

/// The state found for the organization: none, unusable (why), or read.
pub type Found = Option<Result<State, String>>;

/// The audit log of a window, folded as it is read: the token events (deduplicated by id) and
/// every PAT use.
struct Read {
    token_events: Vec<AuditEvent>,
    events: u64,
    uses: Signals,
}

async fn read_audit(
    client: &AdoClient,
    from: OffsetDateTime,
    to: OffsetDateTime,
    stop: &crate::stop::Stop,
) -> Result<Read, String> {
    match stop.or_cut(read_window(client, from, to)).await {
        Some(read) => read,
        None => Err("the run was stopped while the audit log was being read".into()),
    }
}

async fn read_window(
    client: &AdoClient,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> Result<Read, String> {
    client
        .reach_audit()
        .await
        .map_err(|e| format!("the audit log cannot be reached: {e}"))?;
    let mut seen = HashSet::new();
    let mut read = Read {
        token_events: Vec::new(),
        events: 0,
        uses: Signals::new(),
    };
    let mut pages = std::pin::pin!(client.audit_log(from, to));
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| audit_problem(&e))?;
        if page.unreadable > 0 {
            return Err(format!(
                "the audit log sent {} entries without an id or a time",
                page.unreadable
            ));
        }
        for event in page.events {
            read.events += 1;
            // A repeated use changes nothing (the latest is kept); only token events, which
            // are few, are deduplicated, so a busy organization's log costs no memory.
            auditlog::record_uses(&mut read.uses, [&event]);
            if event.meaning() != Meaning::Other && seen.insert(event.id.clone()) {
                read.token_events.push(event);
            }
        }
    }
    Ok(read)
}

fn audit_problem(e: &AdoError) -> String {
    match e.status() {
        Some(status @ (401 | 403 | 404)) => format!(
            "the audit log is not available (HTTP {status}: auditing is off for the organization, \
             or this identity lacks 'View audit log')"
        ),
        _ if e.is_authentication() => format!(
            "the audit log is not available ({e}: auditing is off for the organization, or this \
             identity lacks 'View audit log')"
        ),
        _ => format!("the audit log could not be read: {e}"),
    }
}

/// A user's PATs and SSH keys.
type Held = (Vec<Pat>, Vec<SshKey>);

/// Reuse the stored tokens of everyone the targets do not name.
struct Reusing<'a> {
    stored: Mutex<HashMap<String, Held>>,
    targets: &'a Targets,
}

impl Reuse for Reusing<'_> {
    fn take(&self, user: &User) -> Option<Held> {
        if self.targets.wants(user) {
            return None;
        }
        self.stored
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&user.descriptor)
    }
}

/// Make the inventory: incrementally when asked and possible, else by a full scan.
/// `now` is when the picture will hold (the audit log is read up to it).
pub async fn inventory(
    client: &AdoClient,
    scan: &ScanOptions,
    options: &RefreshOptions,
    found: Found,
    progress: &dyn Progress,
    now: OffsetDateTime,
) -> Result<(Inventory, RefreshInfo), ScanError> {
    let mut info = RefreshInfo {
        mode: "full".into(),
        as_of: Some(now),
        ..RefreshInfo::default()
    };
    let started = tokio::time::Instant::now();
    if !options.incremental {
        return full_scan(client, scan, progress, info, None, Signals::new(), now).await;
    }
    let state = match found {
        None => Err("there is no earlier state of this organization".to_owned()),
        Some(Err(why)) => Err(format!("the earlier state cannot be used: {why}")),
        Some(Ok(state)) => usable(state, scan, now),
    };
    // The window: since the state (with an overlap), or the last day on a first run so that
    // leaks and uses still show.
    let from = match &state {
        // From where the log was last read, if that is earlier (a run that could not read it).
        Ok(s) => s.audit_until.unwrap_or(s.as_of).min(s.as_of) - OVERLAP,
        Err(_) => now - time::Duration::days(1),
    }
    .max(now - RETENTION);
    let audit = read_audit(client, from, now, &scan.stop).await;
    match (&audit, &state) {
        (Ok(_), _) => {
            info.audit_from = Some(from);
            info.audit_to = Some(now);
            info.audit_until = Some(now);
        }
        // Not read: the next run reads from where the last one got to.
        (Err(_), Ok(s)) => info.audit_until = Some(s.audit_until.unwrap_or(s.as_of)),
        (Err(_), Err(_)) => {}
    }
    let (state, read) = match (state, audit) {
        (Ok(state), Ok(read)) => (state, read),
        (Err(why), audit) => {
            info.reason = Some(why);
            return full_scan(
                client,
                scan,
                progress,
                info,
                audit.ok(),
                Signals::new(),
                now,
            )
            .await;
        }
        (Ok(state), Err(why)) => {
            info.reason = Some(why);
            return full_scan(client, scan, progress, info, None, state.signals, now).await;
        }
    };
    info.audit_events = read.events;
    info.token_events = read.token_events.len() as u64;
    info.seen_events = seen_since(&read, now);
    let already: HashSet<&str> = state.seen_events.iter().map(String::as_str).collect();
    let fresh: Vec<AuditEvent> = read
        .token_events
        .iter()
        .filter(|e| !already.contains(e.id.as_str()))
        .cloned()
        .collect();
    let targets = match plan::decide(&fresh, &state.users, scan.include_ssh_keys) {
        Decision::Full(why) => {
            info.reason = Some(why);
            return full_scan(client, scan, progress, info, Some(read), state.signals, now).await;
        }
        Decision::Refresh(targets) => targets,
    };
    if now - state.last_full_scan
        >= time::Duration::try_from(options.full_scan_every).unwrap_or(time::Duration::MAX)
    {
        info.reason = Some(format!(
            "a full scan is due (one at least every {})",
            days(options.full_scan_every)
        ));
        return checked_full_scan(client, scan, progress, info, read, state, &targets, now).await;
    }
    let stored: HashMap<String, Held> = state
        .users
        .into_iter()
        .map(|u| (u.user.descriptor, (u.pats, u.ssh_keys)))
        .collect();
    let reusing = Reusing {
        stored: Mutex::new(stored),
        targets: &targets,
    };
    let mut inventory = engine::scan_reusing(client, scan, progress, &reusing).await?;
    // A stopped or incomplete refresh is a partial report like a stopped full scan's: its
    // users not reached are records, and a second scan would outlive the budget.
    let finished = scan.stop.reason().is_none() && inventory.is_complete();
    if finished
        && let Some(event) = targets.unresolved(
            inventory
                .users
                .iter()
                .map(|u| &u.user)
                .chain(inventory.failures.iter().map(|f| &f.user)),
        )
    {
        info.reason = Some(format!(
            "an audit event could not be matched to a user listed now ({event})"
        ));
        // The full scan gets what is left of the time budget, not a new one.
        let mut rest = scan.clone();
        rest.time_budget = scan
            .time_budget
            .map(|budget| budget.saturating_sub(started.elapsed()));
        return full_scan(
            client,
            &rest,
            progress,
            info,
            Some(read),
            state.signals,
            now,
        )
        .await;
    }
    if !finished {
        info.reason = Some("the refresh did not finish; the report is partial".into());
    }
    info.mode = "incremental".into();
    info.owners_reused = inventory.stats.reused_users;
    info.owners_read = (inventory.users.len() as u64).saturating_sub(info.owners_reused);
    info.last_full_scan = Some(state.last_full_scan);
    inventory.signals = signals(state.signals, Some(&read), &inventory.users);
    Ok((inventory, info))
}

fn days(d: Duration) -> String {
    let hours = d.as_secs() / 3600;
    match hours % 24 {
        0 => format!("{} days", hours / 24),
        _ => format!("{hours} hours"),
    }
}

/// The state, if a refresh can start from it.
fn usable(state: State, scan: &ScanOptions, now: OffsetDateTime) -> Result<State, String> {
    if state.ssh_keys != scan.include_ssh_keys {
        return Err(format!(
            "the earlier state was made {} SSH keys",
            if state.ssh_keys { "with" } else { "without" }
        ));
    }
    if now - state.as_of + OVERLAP > RETENTION {
        return Err(format!(
            "the earlier state ({}) is older than the audit log keeps events (90 days)",
            crate::domain::timestamp::rfc3339(state.as_of)
        ));
    }
    if state.as_of > now || state.last_full_scan > state.as_of {
        return Err(
            "the earlier state is dated in the future (or its last full scan after it)".into(),
        );
    }
    Ok(state)
}

/// The ids of the token events the next window's overlap will read again.
fn seen_since(read: &Read, now: OffsetDateTime) -> Vec<String> {
    read.token_events
        .iter()
        .filter(|e| e.timestamp >= now - OVERLAP)
        .map(|e| e.id.clone())
        .collect()
}

/// The signals: the state's, plus this window's uses and leaks (when the log was read), for
/// the tokens listed now.
fn signals(mut kept: Signals, read: Option<&Read>, users: &[UserTokens]) -> Signals {
    if let Some(read) = read {
        auditlog::merge_uses(&mut kept, &read.uses);
        plan::record_leaks(&mut kept, &read.token_events, users);
    }
    let listed: HashSet<String> = users
        .iter()
        .flat_map(|u| &u.pats)
        .filter_map(|p| p.authorization_id.as_deref())
        .map(str::to_ascii_lowercase)
        .collect();
    auditlog::retain_known(&mut kept, &listed);
    kept
}

/// A full scan: every user's tokens listed; the signals kept so far (`kept`) plus what the
/// audit log gave, if it was read.
async fn full_scan(
    client: &AdoClient,
    scan: &ScanOptions,
    progress: &dyn Progress,
    mut info: RefreshInfo,
    read: Option<Read>,
    kept: Signals,
    now: OffsetDateTime,
) -> Result<(Inventory, RefreshInfo), ScanError> {
    let mut inventory = engine::scan(client, scan, progress).await?;
    info.owners_read = inventory.users.len() as u64;
    info.last_full_scan = Some(now);
    if let Some(read) = &read {
        info.audit_events = read.events;
        info.token_events = read.token_events.len() as u64;
        info.seen_events = seen_since(read, now);
    }
    inventory.signals = signals(kept, read.as_ref(), &inventory.users);
    Ok((inventory, info))
}

/// The cadence's full scan, compared with what a refresh would have kept: every owner the
/// audit log did not point at must hold exactly the tokens the state says.
#[allow(clippy::too_many_arguments)]
async fn checked_full_scan(
    client: &AdoClient,
    scan: &ScanOptions,
    progress: &dyn Progress,
    info: RefreshInfo,
    read: Read,
    state: State,
    targets: &Targets,
    now: OffsetDateTime,
) -> Result<(Inventory, RefreshInfo), ScanError> {
    let (inventory, mut info) =
        full_scan(client, scan, progress, info, Some(read), state.signals, now).await?;
    let stored: HashMap<&str, &UserTokens> = state
        .users
        .iter()
        .map(|u| (u.user.descriptor.as_str(), u))
        .collect();
    let mut differ = Vec::new();
    for now_held in &inventory.users {
        if targets.wants(&now_held.user) {
            continue;
        }
        let Some(before) = stored.get(now_held.user.descriptor.as_str()) else {
            continue; // new since the state: a refresh reads new users anyway
        };
        if !same_tokens(before, now_held) {
            differ.push(now_held.user.principal_name.clone());
        }
    }
    info.check = Some(match differ.len() {
        0 => "the refreshes since the last full scan matched it".into(),
        n => format!(
            "{n} owners hold other tokens than the refreshes had recorded ({}{})",
            differ
                .iter()
                .take(5)
                .cloned()
                .collect::<Vec<_>>()
                .join(", "),
            if n > 5 { ", ..." } else { "" }
        ),
    });
    Ok((inventory, info))
}

/// The same tokens with the same fields, in any order.
pub fn same_tokens(a: &UserTokens, b: &UserTokens) -> bool {
    let key = |p: &Pat| p.authorization_id.clone().unwrap_or_default();
    let mut x: Vec<&Pat> = a.pats.iter().collect();
    let mut y: Vec<&Pat> = b.pats.iter().collect();
    x.sort_by_key(|p| key(p));
    y.sort_by_key(|p| key(p));
    let keys = |k: &[SshKey]| {
        let mut k: Vec<SshKey> = k.to_vec();
        k.sort_by(|a, b| a.authorization_id.cmp(&b.authorization_id));
        k
    };
    x == y && keys(&a.ssh_keys) == keys(&b.ssh_keys)
}
