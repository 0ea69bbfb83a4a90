//! Carrying out a plan: every token checked against a fresh listing of its owner, then the
//! ones still valid revoked in batches. What happened to each id is the result, whatever
//! failed on the way.

use std::collections::{BTreeMap, HashMap, HashSet};

use futures::TryStreamExt;

use super::plan::{PlannedToken, RevokePlan};
use crate::ado::{AdoClient, AdoError, TokenListing};

/// The most ids one revocation request carries (the service refuses "too many" at once; the
/// PowerShell sample Microsoft points admins to sends 990).
pub const BATCH_LIMIT: usize = 990;

/// Whether ids are sent, or only checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Check every token against a fresh listing and say what would be revoked. Sends nothing.
    DryRun,
    Revoke,
}

/// What became of one planned token.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "outcome", content = "detail", rename_all = "snake_case")]
pub enum Outcome {
    /// Dry run: valid in the fresh listing; would be sent.
    WouldRevoke,
    /// Sent in a batch the service accepted (204).
    Revoked,
    /// The fresh listing shows it revoked already (a rerun of the same plan).
    AlreadyRevoked,
    /// Not in its owner's fresh listing (deleted, expired out of it, or owner gone): not sent.
    NotListed,
    /// Its owner's listing could not be read, so it was not checked and not sent.
    NotChecked(String),
    /// Its batch was refused or failed: it may still be valid.
    Failed(String),
    /// Not sent: an earlier batch failed in a way that stops the run (credential refused).
    NotSent(String),
}

impl Outcome {
    pub fn name(&self) -> &'static str {
        match self {
            Outcome::WouldRevoke => "would_revoke",
            Outcome::Revoked => "revoked",
            Outcome::AlreadyRevoked => "already_revoked",
            Outcome::NotListed => "not_listed",
            Outcome::NotChecked(_) => "not_checked",
            Outcome::Failed(_) => "failed",
            Outcome::NotSent(_) => "not_sent",
        }
    }

    /// Whether the token may still be valid because of something that went wrong.
    pub fn is_failure(&self) -> bool {
        matches!(
            self,
            Outcome::NotChecked(_) | Outcome::Failed(_) | Outcome::NotSent(_)
        )
    }
}

/// Every planned token with what became of it, in the plan's order.
#[derive(Debug, Clone, PartialEq)]
pub struct RevokeResult {
    pub tokens: Vec<(PlannedToken, Outcome)>,
    /// Revocation requests sent.
    pub batches: usize,
}

impl RevokeResult {
    /// How many tokens had each outcome, by outcome name.
    pub fn counts(&self) -> BTreeMap<&'static str, usize> {
        let mut counts = BTreeMap::new();
        for (_, outcome) in &self.tokens {
            *counts.entry(outcome.name()).or_default() += 1;
        }
        counts
    }

    /// The ids a dry run found valid and would send: what a person confirms.
    pub fn would_revoke(&self) -> HashSet<String> {
        self.tokens
            .iter()
            .filter(|(_, o)| *o == Outcome::WouldRevoke)
            .map(|(t, _)| t.authorization_id.clone())
            .collect()
    }

    pub fn failed(&self) -> usize {
        self.tokens.iter().filter(|(_, o)| o.is_failure()).count()
    }
}

/// What a fresh listing says of one planned id.
enum Fresh {
    Valid,
    Invalid,
    Absent,
    Unread(String),
}

/// Check `plan` against fresh listings, then (in [`Mode::Revoke`]) revoke what is still valid
/// in batches of at most `batch_limit` ids. Never sends an id the fresh listing does not show
/// valid, nor one outside `confirmed` when it is given (the ids a person saw as "would
/// revoke" and confirmed), and never sends one twice.
pub async fn execute(
    client: &AdoClient,
    plan: &RevokePlan,
    mode: Mode,
    batch_limit: usize,
    confirmed: Option<&HashSet<String>>,
) -> RevokeResult {
    let fresh = fresh_state(client, &plan.tokens).await;
    // A plan file may repeat an id: it is checked and sent once, and every repeat gets the
    // outcome of its first occurrence.
    let mut first: HashMap<&str, usize> = HashMap::new();
    let mut repeat_of: Vec<Option<usize>> = Vec::with_capacity(plan.tokens.len());
    for (i, t) in plan.tokens.iter().enumerate() {
        match first.get(t.authorization_id.as_str()) {
            Some(&j) => repeat_of.push(Some(j)),
            None => {
                first.insert(&t.authorization_id, i);
                repeat_of.push(None);
            }
        }
    }
    let mut outcomes: Vec<Option<Outcome>> = plan
        .tokens
        .iter()
        .zip(&repeat_of)
        .map(|(t, repeat)| {
            if repeat.is_some() {
                return Some(Outcome::NotListed); // replaced by its first occurrence's below
            }
            let key = (t.owner_descriptor.as_str(), t.authorization_id.as_str());
            match &fresh[&key] {
                Fresh::Valid if confirmed.is_some_and(|c| !c.contains(&t.authorization_id)) => {
                    Some(Outcome::NotSent(
                        "not among the tokens the confirmed check would revoke".into(),
                    ))
                }
                Fresh::Valid => None,
                Fresh::Invalid => Some(Outcome::AlreadyRevoked),
                Fresh::Absent => Some(Outcome::NotListed),
                Fresh::Unread(why) => Some(Outcome::NotChecked(why.clone())),
            }
        })
        .collect();
    let to_send: Vec<usize> = (0..outcomes.len())
        .filter(|&i| outcomes[i].is_none())
        .collect();
    let mut batches = 0;
    match mode {
        Mode::DryRun => {
            for &i in &to_send {
                outcomes[i] = Some(Outcome::WouldRevoke);
            }
        }
        Mode::Revoke => {
            let mut stopped: Option<String> = None;
            for batch in to_send.chunks(batch_limit.max(1)) {
                if let Some(why) = &stopped {
                    for &i in batch {
                        outcomes[i] = Some(Outcome::NotSent(why.clone()));
                    }
                    continue;
                }
                let ids: Vec<String> = batch
                    .iter()
                    .map(|&i| plan.tokens[i].authorization_id.clone())
                    .collect();
                batches += 1;
                let sent = client.revoke(TokenListing::Pats, &ids).await;
                let outcome = match &sent {
                    Ok(()) => Outcome::Revoked,
                    Err(e) => Outcome::Failed(e.to_string()),
                };
                // A refused credential fails every batch the same way: stop sending.
                if let Err(e) = &sent
                    && refuses_the_caller(e)
                {
                    stopped = Some(format!("an earlier batch was refused: {e}"));
                }
                for &i in batch {
                    outcomes[i] = Some(outcome.clone());
                }
            }
        }
    }
    for (i, repeat) in repeat_of.iter().enumerate() {
        if let Some(j) = repeat {
            outcomes[i] = outcomes[*j].clone();
        }
    }
    RevokeResult {
        tokens: plan
            .tokens
            .iter()
            .cloned()
            .zip(
                outcomes
                    .into_iter()
                    .map(|o| o.unwrap_or(Outcome::NotListed)),
            )
            .collect(),
        batches,
    }
}

/// An error that every later request of this client would meet too.
fn refuses_the_caller(e: &AdoError) -> bool {
    matches!(e, AdoError::Authentication { .. } | AdoError::Credential(_))
        || e.status() == Some(403)
}

/// Each planned (owner, id) as that owner's fresh listing shows it.
async fn fresh_state<'p>(
    client: &AdoClient,
    tokens: &'p [PlannedToken],
) -> HashMap<(&'p str, &'p str), Fresh> {
    let mut by_owner: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for t in tokens {
        by_owner
            .entry(t.owner_descriptor.as_str())
            .or_default()
            .push(t.authorization_id.as_str());
    }
    let mut state = HashMap::new();
    for (descriptor, ids) in by_owner {
        let listed: Result<HashMap<String, bool>, AdoError> = async {
            let mut listed = HashMap::new();
            let mut pages = std::pin::pin!(client.pats(descriptor));
            while let Some(page) = pages.try_next().await? {
                for pat in page.pats {
                    if let Some(id) = pat.authorization_id {
                        listed.insert(id, pat.is_valid);
                    }
                }
            }
            Ok(listed)
        }
        .await;
        for id in ids {
            let fresh = match &listed {
                Ok(listed) => match listed.get(id) {
                    Some(true) => Fresh::Valid,
                    Some(false) => Fresh::Invalid,
                    None => Fresh::Absent,
                },
                Err(e) => Fresh::Unread(format!("its owner's tokens could not be listed: {e}")),
            };
            state.insert((descriptor, id), fresh);
        }
    }
    state
}
