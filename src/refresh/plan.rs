//! From audit events to the owners to read again: plain functions over the events and the
//! stored picture. Token events name a PAT only by its display name (and system events its
//! owner's display name), so an event resolves to candidates, and every candidate is read
//! again; an event that resolves to nobody means the picture cannot be trusted, and the caller
//! falls back to a full scan.

use crate::auditlog::{AuditEvent, Meaning, Signals, TokenAction};
use crate::inventory::{User, UserTokens};
use std::collections::{HashMap, HashSet};

/// Whom to read again, and how to check afterwards that every event found someone.
#[derive(Debug, Default)]
pub struct Targets {
    /// Stored owners holding a token an event names.
    pub descriptors: HashSet<String>,
    /// Actors, by principal name (lowercase): read again whoever they are now.
    pub principal_names: HashSet<String>,
    /// Owners named by system events, by display name.
    pub display_names: HashSet<String>,
    /// Token events in the window.
    pub token_events: usize,
    checks: Vec<Check>,
}

/// What must hold after the scan for one event to count as resolved.
#[derive(Debug)]
struct Check {
    what: String,
    /// The event matched a stored holder (or a token created in the same window).
    stored: bool,
    principal_name: Option<String>,
    display_name: Option<String>,
}

/// What the events allow.
#[derive(Debug)]
pub enum Decision {
    Refresh(Targets),
    /// A full scan is needed; the text says why.
    Full(String),
}

/// A stored token as the events can name it.
#[derive(Debug, Clone, Copy)]
struct Holder<'a> {
    owner: &'a str,
    owner_name: &'a str,
    /// Validity bounds in whole seconds (events and listings differ in precision).
    from: Option<i64>,
    to: Option<i64>,
}

/// Stored tokens by display name.
fn holders(stored: &[UserTokens]) -> HashMap<&str, Vec<Holder<'_>>> {
    let mut by_name: HashMap<&str, Vec<Holder<'_>>> = HashMap::new();
    let secs = |t: Option<time::OffsetDateTime>| t.map(|t| t.unix_timestamp());
    for u in stored {
        let tokens = u
            .pats
            .iter()
            .map(|p| (p.display_name.as_deref(), p.valid_from, p.valid_to))
            .chain(
                u.ssh_keys
                    .iter()
                    .map(|k| (k.display_name.as_deref(), k.valid_from, k.valid_to)),
            );
        for (name, from, to) in tokens {
            let Some(name) = name else { continue };
            by_name.entry(name.trim()).or_default().push(Holder {
                owner: u.user.descriptor.as_str(),
                owner_name: u.user.display_name.as_str(),
                from: secs(from),
                to: secs(to),
            });
        }
    }
    by_name
}

/// The holders an event names: by token name (and owner name, when it gives one), narrowed by
/// its validity dates when they single tokens out. Names repeat across an organization
/// ("build", "terraform"); the dates of one token rarely do. An expiry may have moved the end
/// date, so the start date alone is tried next; when nothing fits, every holder of the name.
fn named<'a>(event: &AuditEvent, by_name: &HashMap<&str, Vec<Holder<'a>>>) -> Vec<&'a str> {
    let Some(found) = event.data_text("DisplayName").and_then(|n| by_name.get(n)) else {
        return Vec::new();
    };
    let owner_name = event.data_text("OwnerName");
    let of_owner: Vec<Holder<'a>> = found
        .iter()
        .filter(|h| owner_name.is_none_or(|o| o == h.owner_name.trim()))
        .copied()
        .collect();
    let secs = |key: &str| {
        event
            .data_text(key)
            .and_then(|t| {
                crate::domain::timestamp::parse_service_datetime(t)
                    .ok()
                    .flatten()
            })
            .map(|t| t.unix_timestamp())
    };
    let (from, to) = (secs("ValidFrom"), secs("ValidTo"));
    let narrowed = |keep: &dyn Fn(&Holder<'_>) -> bool| -> Vec<&'a str> {
        of_owner
            .iter()
            .filter(|h| keep(h))
            .map(|h| h.owner)
            .collect()
    };
    // Within a second: the service and the log may round a time differently.
    let near =
        |a: Option<i64>, b: Option<i64>| matches!((a, b), (Some(a), Some(b)) if a.abs_diff(b) <= 1);
    let tries: [&dyn Fn(&Holder<'_>) -> bool; 3] = [
        &|h| near(h.from, from) && near(h.to, to),
        &|h| near(h.from, from),
        &|h| near(h.to, to),
    ];
    tries
        .iter()
        .map(|keep| narrowed(keep))
        .find(|owners| !owners.is_empty())
        .unwrap_or_else(|| of_owner.iter().map(|h| h.owner).collect())
}

fn describe(event: &AuditEvent) -> String {
    format!(
        "{} of \"{}\" at {}",
        event.action_id,
        event.data_text("DisplayName").unwrap_or("?"),
        crate::domain::timestamp::rfc3339(event.timestamp)
    )
}

/// Decide from the `Token` events of the window (any order) and the stored picture.
pub fn decide(events: &[AuditEvent], stored: &[UserTokens], ssh_keys: bool) -> Decision {
    let by_name = holders(stored);
    let mut targets = Targets::default();
    // Names created or changed within the window: an expiry or a revocation of such a token
    // is covered by reading its creator again.
    let made_here: HashSet<&str> = events
        .iter()
        .filter(|e| matches!(e.meaning(), Meaning::Token(a) if a.by_owner()))
        .filter_map(|e| e.data_text("DisplayName"))
        .collect();
    for event in events {
        let action = match event.meaning() {
            Meaning::Other => continue,
            Meaning::Unknown => {
                return Decision::Full(format!(
                    "the audit log has a token action patreport does not know ({}), so it cannot tell what changed",
                    event.action_id
                ));
            }
            // Keys not listed are not in the report: their events change nothing in it.
            Meaning::Token(action) if action.is_ssh() && !ssh_keys => continue,
            Meaning::Token(action) => action,
        };
        targets.token_events += 1;
        let name = event.data_text("DisplayName");
        let owner_name = event.data_text("OwnerName");
        let upn = event.actor_upn.as_deref().map(str::to_ascii_lowercase);
        // Made by its owner: the actor is who to read again, not everyone holding the name.
        let candidates = match action.by_owner() {
            true => Vec::new(),
            false => named(event, &by_name),
        };
        let mut check = Check {
            what: describe(event),
            stored: !candidates.is_empty() || name.is_some_and(|n| made_here.contains(n)),
            principal_name: None,
            display_name: None,
        };
        targets
            .descriptors
            .extend(candidates.iter().map(|d| (*d).to_owned()));
        match action {
            a if a.by_owner() => {
                // Made by its owner: the actor is who to read again.
                let Some(upn) = upn else {
                    return Decision::Full(format!("{} names no actor to read again", check.what));
                };
                targets.principal_names.insert(upn.clone());
                check.principal_name = Some(upn);
                check.stored = false;
            }
            TokenAction::PatRevoke | TokenAction::SshRevoke => {
                // The owner or an administrator: read the actor too, in case it is the owner.
                // The event is resolved only by a holder of the name, though: an
                // administrator being listed says nothing about whose token it was.
                if let Some(upn) = upn {
                    targets.principal_names.insert(upn);
                }
            }
            TokenAction::PatSystemRevoke | TokenAction::PatPublicDiscovery => {
                if let Some(owner) = owner_name {
                    targets.display_names.insert(owner.to_owned());
                    check.display_name = Some(owner.to_owned());
                }
            }
            _ => {}
        }
        targets.checks.push(check);
    }
    Decision::Refresh(targets)
}

impl Targets {
    /// Whether `user` (as Graph lists them now) must be read again.
    pub fn wants(&self, user: &User) -> bool {
        self.descriptors.contains(&user.descriptor)
            || (!self.principal_names.is_empty()
                && self
                    .principal_names
                    .contains(&user.principal_name.to_ascii_lowercase()))
            || self.display_names.contains(user.display_name.trim())
    }

    /// After the scan: the first event that found nobody among the users listed now.
    pub fn unresolved<'a>(&self, listed: impl Iterator<Item = &'a User> + Clone) -> Option<String> {
        let upns: HashSet<String> = listed
            .clone()
            .map(|u| u.principal_name.to_ascii_lowercase())
            .collect();
        let names: HashSet<&str> = listed.map(|u| u.display_name.trim()).collect();
        self.checks
            .iter()
            .find(|c| {
                !(c.stored
                    || c.principal_name.as_ref().is_some_and(|p| upns.contains(p))
                    || c.display_name.as_deref().is_some_and(|n| names.contains(n)))
            })
            .map(|c| c.what.clone())
    }
}

/// Mark the tokens that leak events (found in public, revoked by the system) name: matched by
/// token name and owner name, every candidate when several fit.
pub fn record_leaks(signals: &mut Signals, events: &[AuditEvent], users: &[UserTokens]) {
    for event in events {
        let action = match event.meaning() {
            Meaning::Token(
                a @ (TokenAction::PatPublicDiscovery | TokenAction::PatSystemRevoke),
            ) => a,
            _ => continue,
        };
        let Some(name) = event.data_text("DisplayName") else {
            continue;
        };
        let owner = event.data_text("OwnerName");
        let ids: Vec<String> = users
            .iter()
            .filter(|u| owner.is_none_or(|o| o == u.user.display_name.trim()))
            .flat_map(|u| &u.pats)
            .filter(|p| p.display_name.as_deref().map(str::trim) == Some(name))
            // A token made after the event cannot be the one it found (a new token under the
            // old name, after the leaked one was revoked).
            .filter(|p| p.valid_from.is_none_or(|from| from <= event.timestamp))
            .filter_map(|p| p.authorization_id.as_deref())
            .map(str::to_ascii_lowercase)
            .collect();
        let ambiguous = ids.len() > 1;
        for id in ids {
            let entry = signals.entry(id).or_default();
            entry.matched_by_name |= ambiguous;
            let at = Some(event.timestamp);
            match action {
                TokenAction::PatPublicDiscovery => entry.discovered = entry.discovered.max(at),
                _ => entry.system_revoked = entry.system_revoked.max(at),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::Pat;
    use serde_json::json;
    use time::macros::datetime;

    fn user(descriptor: &str, name: &str, upn: &str, pats: &[(&str, &str)]) -> UserTokens {
        UserTokens {
            user: User {
                descriptor: descriptor.into(),
                display_name: name.into(),
                principal_name: upn.into(),
                ..User::default()
            },
            pats: pats
                .iter()
                .map(|(id, n)| Pat {
                    authorization_id: Some((*id).into()),
                    display_name: Some((*n).into()),
                    is_valid: true,
                    ..Pat::default()
                })
                .collect(),
            ssh_keys: vec![],
        }
    }

    fn event(action: &str, upn: Option<&str>, data: serde_json::Value) -> AuditEvent {
        AuditEvent {
            id: action.into(),
            timestamp: datetime!(2026-11-29 10:00 UTC),
            action_id: action.into(),
            area: "Token".into(),
            actor_user_id: None,
            actor_upn: upn.map(Into::into),
            actor_display_name: None,
            authentication_mechanism: None,
            user_agent: None,
            ip_address: None,
            data: data.as_object().cloned().unwrap_or_default(),
        }
    }

    fn stored() -> Vec<UserTokens> {
        vec![
            user("aad.a", "Ann", "ann@x", &[("1", "build")]),
            user("aad.b", "Bob", "bob@x", &[("2", "build"), ("3", "deploy")]),
            user("aad.c", "Ann", "ann2@x", &[("4", "other")]),
        ]
    }

    fn refresh(events: &[AuditEvent]) -> Targets {
        match decide(events, &stored(), false) {
            Decision::Refresh(t) => t,
            Decision::Full(why) => panic!("full scan: {why}"),
        }
    }

    #[test]
    fn a_creation_reads_its_actor_again() {
        let t = refresh(&[event(
            "Token.PatCreateEvent",
            Some("Ann@X"),
            json!({"DisplayName":"new"}),
        )]);
        assert!(t.principal_names.contains("ann@x"));
        assert!(t.descriptors.is_empty());
    }

    #[test]
    fn an_ambiguous_revocation_reads_every_holder_of_the_name() {
        let t = refresh(&[event(
            "Token.PatRevokeEvent",
            Some("admin@x"),
            json!({"DisplayName":"build"}),
        )]);
        assert_eq!(
            t.descriptors,
            HashSet::from(["aad.a".to_owned(), "aad.b".to_owned()])
        );
        let listed = stored();
        assert_eq!(t.unresolved(listed.iter().map(|u| &u.user)), None);
    }

    #[test]
    fn a_system_event_reads_every_owner_of_that_name() {
        let t = refresh(&[event(
            "Token.PatPublicDiscoveryEvent",
            None,
            json!({"DisplayName":"other","OwnerName":"Ann"}),
        )]);
        assert_eq!(t.descriptors, HashSet::from(["aad.c".to_owned()]));
        let listed = stored();
        assert!(t.wants(&listed[0].user), "both users named Ann are read");
        assert!(t.wants(&listed[2].user));
        assert!(!t.wants(&listed[1].user));
    }

    #[test]
    fn an_event_that_finds_nobody_is_unresolved_and_unknown_actions_need_a_full_scan() {
        let t = refresh(&[event(
            "Token.PatExpiredEvent",
            None,
            json!({"DisplayName":"never seen"}),
        )]);
        let listed = stored();
        assert!(
            t.unresolved(listed.iter().map(|u| &u.user))
                .unwrap()
                .contains("never seen")
        );
        let gone = refresh(&[event(
            "Token.PatCreateEvent",
            Some("left@x"),
            json!({"DisplayName":"n"}),
        )]);
        assert!(gone.unresolved(listed.iter().map(|u| &u.user)).is_some());
        assert!(matches!(
            decide(
                &[event("Token.PatAccessInvalidEvent", None, json!({}))],
                &stored(),
                false
            ),
            Decision::Full(_)
        ));
        assert!(matches!(
            decide(
                &[event(
                    "Token.PatCreateEvent",
                    None,
                    json!({"DisplayName":"n"})
                )],
                &stored(),
                false
            ),
            Decision::Full(_)
        ));
    }

    #[test]
    fn a_revocation_by_a_listed_administrator_of_a_name_nobody_holds_is_unresolved() {
        // Ann (listed) revokes a token whose name matches no stored token: that Ann is listed
        // says nothing about whose token it was.
        let t = refresh(&[event(
            "Token.PatRevokeEvent",
            Some("ann@x"),
            json!({"DisplayName":"nobody's"}),
        )]);
        assert!(
            t.principal_names.contains("ann@x"),
            "the actor is still read"
        );
        let listed = stored();
        assert!(t.unresolved(listed.iter().map(|u| &u.user)).is_some());
    }

    #[test]
    fn leaks_mark_the_token_by_name_and_owner() {
        let mut signals = Signals::new();
        let e = event(
            "Token.PatPublicDiscoveryEvent",
            None,
            json!({"DisplayName":"build","OwnerName":"Bob"}),
        );
        record_leaks(&mut signals, &[e], &stored());
        assert_eq!(signals.len(), 1);
        assert!(signals["2"].discovered.is_some());
        assert!(!signals["2"].matched_by_name);
    }
}
