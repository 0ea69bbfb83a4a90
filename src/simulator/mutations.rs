//! Changes to an organization that tests drive, each written to the org's audit log as the
//! service would record it (docs/contracts.md, "Audit Log"): PAT lifecycle, leaks, PAT use,
//! users joining and leaving, unrelated noise; plus a seeded random mix of them that
//! includes the cases a client cannot resolve by name alone.
//!
//! Use on a [`SimOrg`] directly ([`SimOrg::mutate`]) or on a running server
//! ([`SimServer::mutate`](super::SimServer::mutate)).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};
use time::{Duration, OffsetDateTime};

use super::audit::{
    AuditActor, AuditCategory, BROWSER_USER_AGENT, EventDraft, GIT_USER_AGENT, PatAction,
    pat_event, pat_mechanism,
};
use super::data::{SimOrg, SimPat, SimUser, SubjectKind};
use super::hash::{hash_bytes, mix64};
use super::names::PROJECTS;
use super::wire::guid_from_u128;

/// A mutation that could not be applied; the org and its log are unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MutationError {
    /// No user with this descriptor.
    UnknownUser(String),
    /// No PAT with this authorization id.
    UnknownPat(String),
    /// The PAT is already revoked (`isValid: false`), so it can neither change nor be used.
    NotValid(String),
    /// Service identities hold no PATs.
    NotHuman(String),
}

impl std::fmt::Display for MutationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::UnknownUser(d) => write!(f, "no user {d} in the organization"),
            Self::UnknownPat(id) => write!(f, "no PAT {id} in the organization"),
            Self::NotValid(id) => write!(f, "PAT {id} is already revoked"),
            Self::NotHuman(d) => write!(f, "{d} is a service identity and holds no PATs"),
        }
    }
}

impl std::error::Error for MutationError {}

/// A PAT to create.
#[derive(Debug, Clone, PartialEq)]
pub struct NewPat {
    pub display_name: Option<String>,
    /// Space-separated, as Token Admin shows it (`vso.code vso.build`, `app_token`).
    pub scope: String,
    pub valid_to: OffsetDateTime,
    /// `None`: all accessible organizations.
    pub target_accounts: Option<Vec<String>>,
}

impl NewPat {
    /// A PAT named `name` with code read scope, valid until `valid_to`.
    pub fn named(name: &str, valid_to: OffsetDateTime) -> Self {
        NewPat {
            display_name: Some(name.to_string()),
            scope: "vso.code".into(),
            valid_to,
            target_accounts: None,
        }
    }
}

/// What an update changes; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PatChange {
    pub display_name: Option<String>,
    pub scope: Option<String>,
    pub valid_to: Option<OffsetDateTime>,
}

/// Non-Token actions done with a PAT (what "last audited use" reads).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatUse {
    GitRepositoryCreated,
    GitPoliciesBypassed,
    SecurityPermissionChanged,
    PolicyModified,
    ProjectAreaPathCreated,
}

impl PatUse {
    pub const ALL: [PatUse; 5] = [
        Self::GitRepositoryCreated,
        Self::GitPoliciesBypassed,
        Self::SecurityPermissionChanged,
        Self::PolicyModified,
        Self::ProjectAreaPathCreated,
    ];
}

/// What one mutation did, as the random driver reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    UserAdded {
        descriptor: String,
    },
    UserRemoved {
        descriptor: String,
    },
    PatCreated {
        descriptor: String,
        authorization_id: String,
    },
    PatUpdated {
        authorization_id: String,
    },
    PatRevoked {
        authorization_id: String,
        by_admin: bool,
    },
    PatExpired {
        authorization_id: String,
    },
    /// Public discovery, then the system's revocation.
    PatSystemRevoked {
        authorization_id: String,
    },
    /// Public discovery only: the PAT stays valid.
    PatDiscovered {
        authorization_id: String,
    },
    PatUsed {
        authorization_id: String,
        user_agent: String,
    },
    /// An event of another area by a person signed in without a PAT.
    Noise,
}

/// Changes to one org; each method changes the org and records its audit events at `at`.
pub struct Mutations<'a> {
    org: &'a mut SimOrg,
}

impl SimOrg {
    /// Applies `f`'s mutations to this org and its audit log.
    pub fn mutate<R>(&mut self, f: impl FnOnce(&mut Mutations<'_>) -> R) -> R {
        f(&mut Mutations { org: self })
    }
}

impl SimOrg {
    /// Writes the audit events the generated PATs' history implies within `retention` before
    /// `now`: creation (by the owner, at `validFrom`), the owner's revocation of those no
    /// longer valid (between creation and `now`), and expiry (by the system, at `validTo`) of
    /// valid ones that expired. Generated orgs start with an empty log; this gives a demo org
    /// a log that matches its listings. Returns how many events it wrote.
    pub fn record_history(&mut self, now: OffsetDateTime, retention: Duration) -> usize {
        let since = now - retention;
        let mut drafts = Vec::new();
        for user in self.users.iter().filter(|u| u.kind.is_human()) {
            for pat in &user.pats {
                let owner = || {
                    if hash_bytes(0x0A_AD, pat.authorization_id.as_bytes()).is_multiple_of(3) {
                        AuditActor::user(user, "AAD", "azure-devops-node-api/14.1.0 (Node.js 20)")
                    } else {
                        AuditActor::user(user, "AAD_Cookie", BROWSER_USER_AGENT)
                    }
                };
                if pat.valid_from >= since && pat.valid_from <= now {
                    drafts.push(pat_event(
                        PatAction::Create,
                        pat,
                        user,
                        owner(),
                        pat.valid_from,
                    ));
                }
                let start = pat.valid_from.max(since);
                if !pat.is_valid && start < now {
                    let span = (now - start).whole_seconds().max(1);
                    let h = hash_bytes(0x2E0C, pat.authorization_id.as_bytes());
                    let offset = i64::try_from(h % span.unsigned_abs()).unwrap_or(0);
                    let at = start + Duration::seconds(offset);
                    drafts.push(pat_event(PatAction::Revoke, pat, user, owner(), at));
                } else if pat.is_valid && pat.valid_to >= since && pat.valid_to <= now {
                    let system = AuditActor::system();
                    drafts.push(pat_event(
                        PatAction::Expired,
                        pat,
                        user,
                        system,
                        pat.valid_to,
                    ));
                }
            }
        }
        let written = drafts.len();
        for draft in drafts {
            self.audit.record(draft);
        }
        written
    }
}

/// A version-4 GUID from a hash.
fn guid_of(h: u64) -> String {
    let v = (u128::from(h) << 64) | u128::from(mix64(h ^ 0x6A1D));
    guid_from_u128((v & !(0xF << 76) | (0x4 << 76)) & !(0x3 << 62) | (0x2 << 62))
}

impl Mutations<'_> {
    /// The org as changed so far.
    pub fn org(&self) -> &SimOrg {
        self.org
    }

    fn find_user(&self, descriptor: &str) -> Result<usize, MutationError> {
        let at = self
            .org
            .users
            .iter()
            .position(|u| u.descriptor == descriptor)
            .ok_or_else(|| MutationError::UnknownUser(descriptor.to_string()))?;
        if self.org.users[at].kind.is_human() {
            Ok(at)
        } else {
            Err(MutationError::NotHuman(descriptor.to_string()))
        }
    }

    fn find_pat(&self, authorization_id: &str) -> Result<(usize, usize), MutationError> {
        self.org
            .users
            .iter()
            .enumerate()
            .find_map(|(u, user)| {
                user.pats
                    .iter()
                    .position(|p| p.authorization_id.eq_ignore_ascii_case(authorization_id))
                    .map(|p| (u, p))
            })
            .ok_or_else(|| MutationError::UnknownPat(authorization_id.to_string()))
    }

    fn valid_pat(&self, authorization_id: &str) -> Result<(usize, usize), MutationError> {
        let (u, p) = self.find_pat(authorization_id)?;
        if self.org.users[u].pats[p].is_valid {
            Ok((u, p))
        } else {
            Err(MutationError::NotValid(authorization_id.to_string()))
        }
    }

    /// The owner acting in the web UI or, for some PATs, with an Entra token from a tool:
    /// both mechanisms occur for PAT management.
    fn owner_actor(user: &SimUser, authorization_id: &str) -> AuditActor {
        if hash_bytes(0x0A_AD, authorization_id.as_bytes()).is_multiple_of(3) {
            AuditActor::user(user, "AAD", "azure-devops-node-api/14.1.0 (Node.js 20)")
        } else {
            AuditActor::user(user, "AAD_Cookie", BROWSER_USER_AGENT)
        }
    }

    fn record_pat(
        &mut self,
        action: PatAction,
        u: usize,
        p: usize,
        actor: AuditActor,
        at: OffsetDateTime,
    ) {
        let user = &self.org.users[u];
        let draft = pat_event(action, &user.pats[p], user, actor, at);
        self.org.audit.record(draft);
    }

    /// `owner` creates a PAT in the web UI: `Token.PatCreateEvent` with the owner as actor.
    /// Returns the new PAT's authorization id.
    pub fn create_pat(
        &mut self,
        owner: &str,
        new: NewPat,
        at: OffsetDateTime,
    ) -> Result<String, MutationError> {
        let u = self.find_user(owner)?;
        let user = &self.org.users[u];
        let h = mix64(hash_bytes(
            self.org.audit.issued() ^ 0x9A7,
            format!("{owner}|{}", ticks_text(at)).as_bytes(),
        ));
        let authorization_id = guid_of(h ^ user.pats.len() as u64);
        let pat = SimPat {
            authorization_id: authorization_id.clone(),
            display_name: new.display_name,
            scope: new.scope,
            target_accounts: new.target_accounts,
            valid_from: at,
            valid_to: new.valid_to,
            is_valid: true,
            user_id: user.user_id(),
            token: None,
        };
        let actor = Self::owner_actor(user, &authorization_id);
        self.org.users[u].pats.push(pat);
        let p = self.org.users[u].pats.len() - 1;
        self.record_pat(PatAction::Create, u, p, actor, at);
        Ok(authorization_id)
    }

    /// The owner edits (renames, rescopes, extends) a PAT: `Token.PatUpdateEvent`.
    pub fn update_pat(
        &mut self,
        authorization_id: &str,
        change: PatChange,
        at: OffsetDateTime,
    ) -> Result<(), MutationError> {
        let (u, p) = self.valid_pat(authorization_id)?;
        let pat = &mut self.org.users[u].pats[p];
        if let Some(name) = change.display_name {
            pat.display_name = Some(name);
        }
        if let Some(scope) = change.scope {
            pat.scope = scope;
        }
        if let Some(valid_to) = change.valid_to {
            pat.valid_to = valid_to;
        }
        let actor = Self::owner_actor(&self.org.users[u], authorization_id);
        self.record_pat(PatAction::Update, u, p, actor, at);
        Ok(())
    }

    /// The owner revokes a PAT: it stays in the listing with `isValid: false` (as a
    /// revocation through Token Admin shows it); `Token.PatRevokeEvent` by the owner.
    pub fn revoke_by_owner(
        &mut self,
        authorization_id: &str,
        at: OffsetDateTime,
    ) -> Result<(), MutationError> {
        self.revoke(authorization_id, None, at)
    }

    /// The simulator's token administrator revokes a PAT in the web UI: as
    /// [`revoke_by_owner`](Self::revoke_by_owner), with the admin as actor.
    pub fn revoke_by_admin(
        &mut self,
        authorization_id: &str,
        at: OffsetDateTime,
    ) -> Result<(), MutationError> {
        let admin = AuditActor::token_admin("AAD_Cookie", BROWSER_USER_AGENT);
        self.revoke(authorization_id, Some(admin), at)
    }

    /// Marks the PAT revoked and records `Token.PatRevokeEvent` by `actor` (`None`: its owner).
    fn revoke(
        &mut self,
        authorization_id: &str,
        actor: Option<AuditActor>,
        at: OffsetDateTime,
    ) -> Result<(), MutationError> {
        let (u, p) = self.valid_pat(authorization_id)?;
        self.org.users[u].pats[p].is_valid = false;
        let actor =
            actor.unwrap_or_else(|| Self::owner_actor(&self.org.users[u], authorization_id));
        self.record_pat(PatAction::Revoke, u, p, actor, at);
        Ok(())
    }

    /// The PAT's `validTo` passes at `at` (brought forward to `at` if later):
    /// `Token.PatExpiredEvent` by the system. The listing keeps it, valid, with its past
    /// `validTo`.
    pub fn expire(
        &mut self,
        authorization_id: &str,
        at: OffsetDateTime,
    ) -> Result<(), MutationError> {
        let (u, p) = self.valid_pat(authorization_id)?;
        let pat = &mut self.org.users[u].pats[p];
        if pat.valid_to > at {
            pat.valid_to = at;
        }
        self.record_pat(PatAction::Expired, u, p, AuditActor::system(), at);
        Ok(())
    }

    /// The PAT turns up in a public repository and the "revoke leaked PATs" policy revokes
    /// it: `Token.PatPublicDiscoveryEvent` one second before `at`, then
    /// `Token.PatSystemRevokeEvent` at `at`, both by the system and sharing a correlation id.
    /// The listing shows it with `isValid: false`.
    pub fn system_revoke(
        &mut self,
        authorization_id: &str,
        at: OffsetDateTime,
    ) -> Result<(), MutationError> {
        let (u, p) = self.valid_pat(authorization_id)?;
        let correlation = self.org.audit.correlation();
        let user = &self.org.users[u];
        let mut found = pat_event(
            PatAction::PublicDiscovery,
            &user.pats[p],
            user,
            AuditActor::system(),
            at - Duration::SECOND,
        );
        found.correlation_id = Some(correlation.clone());
        self.org.audit.record(found);
        self.org.users[u].pats[p].is_valid = false;
        let user = &self.org.users[u];
        let mut revoked = pat_event(
            PatAction::SystemRevoke,
            &user.pats[p],
            user,
            AuditActor::system(),
            at,
        );
        revoked.correlation_id = Some(correlation);
        self.org.audit.record(revoked);
        Ok(())
    }

    /// The PAT is found in a public repository with the auto-revoke policy off:
    /// `Token.PatPublicDiscoveryEvent` only, and the PAT stays valid.
    pub fn public_discovery(
        &mut self,
        authorization_id: &str,
        at: OffsetDateTime,
    ) -> Result<(), MutationError> {
        let (u, p) = self.valid_pat(authorization_id)?;
        self.record_pat(PatAction::PublicDiscovery, u, p, AuditActor::system(), at);
        Ok(())
    }

    /// The owner does `action` with the PAT from `user_agent` (e.g. [`GIT_USER_AGENT`] or a
    /// browser's): an event of that area whose `authenticationMechanism` is
    /// `PAT_Unscoped authorizationId: <id>`.
    pub fn pat_use(
        &mut self,
        authorization_id: &str,
        action: PatUse,
        user_agent: &str,
        at: OffsetDateTime,
    ) -> Result<(), MutationError> {
        let (u, p) = self.valid_pat(authorization_id)?;
        let user = &self.org.users[u];
        let id = user.pats[p].authorization_id.clone();
        let actor = AuditActor::user(user, &pat_mechanism(&id), user_agent);
        let h = hash_bytes(0x05E, format!("{id}|{}", ticks_text(at)).as_bytes());
        let project = PROJECTS[(h % PROJECTS.len() as u64) as usize];
        let draft = use_event(action, project, h, actor, at);
        self.org.audit.record(draft);
        Ok(())
    }

    /// A new Entra member joins the org (Graph lists them; they hold no PATs yet). Display
    /// names need not be unique. Returns the descriptor. Records `Licensing.Assigned`.
    pub fn add_user(&mut self, display_name: &str, at: OffsetDateTime) -> String {
        let n = self.org.users.len() as u64;
        let h = mix64(
            hash_bytes(
                0xADD,
                format!("{display_name}|{n}|{}", ticks_text(at)).as_bytes(),
            ) ^ self.org.audit.issued(),
        );
        let id = guid_of(h);
        let domain = self
            .org
            .users
            .iter()
            .find(|u| u.kind == SubjectKind::Aad)
            .map_or_else(|| guid_of(mix64(h)), |u| u.domain.clone());
        let slug: String = display_name
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect::<String>()
            .to_ascii_lowercase();
        let slug = if slug.is_empty() { "user".into() } else { slug };
        let org_domain = format!("{}.example.com", self.org.name.to_ascii_lowercase());
        let principal_name = format!("{slug}.{:x}@{org_domain}", h & 0xFFFF);
        let descriptor = format!("aad.{}", URL_SAFE_NO_PAD.encode(&id));
        let user = SimUser {
            descriptor: descriptor.clone(),
            kind: SubjectKind::Aad,
            display_name: display_name.to_string(),
            mail_address: principal_name.clone(),
            principal_name,
            origin: "aad".into(),
            origin_id: guid_of(mix64(h ^ 1)),
            domain,
            meta_type: Some("member".into()),
            pats: Vec::new(),
            ssh_keys: Vec::new(),
        };
        let draft = licensing_event(&user, true, at);
        self.org.users.push(user);
        self.org.audit.record(draft);
        descriptor
    }

    /// The user leaves: gone from Graph, and Token Admin no longer knows the descriptor
    /// (404). Records `Licensing.Removed` by the token administrator.
    pub fn remove_user(
        &mut self,
        descriptor: &str,
        at: OffsetDateTime,
    ) -> Result<(), MutationError> {
        let u = self
            .org
            .users
            .iter()
            .position(|u| u.descriptor == descriptor)
            .ok_or_else(|| MutationError::UnknownUser(descriptor.to_string()))?;
        let user = self.org.users.remove(u);
        self.org.audit.record(licensing_event(&user, false, at));
        Ok(())
    }

    /// One unrelated event (another area, a person signed in with Entra or FedAuth, or the
    /// system), for a client to filter out.
    pub fn noise(&mut self, at: OffsetDateTime) {
        // Drawn from the log's id counter: each call picks anew, the same history the same.
        let k = usize::try_from(mix64(self.org.audit.issued() ^ 0x0015E) % 1_000_003).unwrap_or(0);
        let person = self
            .org
            .users
            .iter()
            .filter(|u| u.kind.is_human())
            .nth(k % 7)
            .cloned();
        let project = PROJECTS[k % PROJECTS.len()];
        let h = mix64(k as u64 ^ 0x0015E);
        let draft = match (k % 4, person) {
            (0, Some(user)) => {
                let mut data = Map::new();
                data.insert("ProjectName".into(), project.into());
                data.insert("PipelineName".into(), format!("{project}-CI").into());
                EventDraft {
                    at,
                    actor: AuditActor::user(&user, "FedAuth", BROWSER_USER_AGENT),
                    action_id: "Pipelines.PipelineModified".into(),
                    area: "Pipelines".into(),
                    category: AuditCategory::Modify,
                    project: Some((guid_of(hash_bytes(1, project.as_bytes())), project.into())),
                    details: format!(
                        "Pipeline \"{project}-CI\" in project {project} was modified."
                    ),
                    data,
                    correlation_id: None,
                }
            }
            (1, Some(user)) => {
                let mut data = Map::new();
                data.insert(
                    "GroupName".into(),
                    format!("[{project}]\\Contributors").into(),
                );
                data.insert("MemberDisplayName".into(), user.display_name.clone().into());
                EventDraft {
                    at,
                    actor: AuditActor::user(&user, "AAD_Cookie", BROWSER_USER_AGENT),
                    action_id: "Group.UpdateGroupMembership.Add".into(),
                    area: "Group".into(),
                    category: AuditCategory::Modify,
                    project: None,
                    details: format!(
                        "{} was added as a member of group [{project}]\\Contributors.",
                        user.display_name
                    ),
                    data,
                    correlation_id: None,
                }
            }
            (2, Some(user)) => {
                let mut data = Map::new();
                data.insert("ExtensionName".into(), "Code Search".into());
                data.insert("PublisherName".into(), "Microsoft".into());
                EventDraft {
                    at,
                    actor: AuditActor::user(&user, "AAD", BROWSER_USER_AGENT),
                    action_id: "Extension.Installed".into(),
                    area: "Extension".into(),
                    category: AuditCategory::Create,
                    project: None,
                    details:
                        "Extension \"Code Search\" from publisher \"Microsoft\" was installed."
                            .into(),
                    data,
                    correlation_id: None,
                }
            }
            _ => {
                let mut data = Map::new();
                data.insert("ProjectId".into(), guid_of(h).into());
                data.insert(
                    "ProjectName".into(),
                    format!("{project}-{}", h % 100).into(),
                );
                data.insert("ProcessTemplate".into(), "Agile".into());
                data.insert("ProjectVisibility".into(), "Private".into());
                EventDraft {
                    at,
                    actor: AuditActor::system(),
                    action_id: "Project.CreateCompleted".into(),
                    area: "Project".into(),
                    category: AuditCategory::Create,
                    project: None,
                    details: format!("{project}-{} project was created successfully", h % 100),
                    data,
                    correlation_id: None,
                }
            }
        };
        self.org.audit.record(draft);
    }

    /// Records an event as drafted, with no change to the org (for events no other mutation
    /// writes, such as unusual `data`). Returns its id.
    pub fn record(&mut self, draft: EventDraft) -> String {
        self.org.audit.record(draft)
    }

    /// `count` mutations drawn from `rng_seed`, stamped one second apart and ending at `at`.
    /// With `count >= 3` and a person holding a valid named PAT, the first three are the
    /// ambiguous cases: a new user with the same display name as that person, given a PAT of
    /// the same name as one of theirs; then another person's PAT renamed to that name.
    pub fn random(&mut self, rng_seed: u64, count: usize, at: OffsetDateTime) -> Vec<Change> {
        let mut rng = fastrand::Rng::with_seed(mix64(rng_seed ^ 0x4A4D_0B5E));
        let mut changes = Vec::with_capacity(count);
        let stamp = |i: usize| at - Duration::seconds(i64::try_from(count - 1 - i).unwrap_or(0));
        let mut i = 0;
        if count >= 3
            && let Some((twin_of, name)) = self.named_valid_pat(&mut rng)
        {
            let display_name = self.org.users[twin_of].display_name.clone();
            let twin = self.add_user(&display_name, stamp(0));
            changes.push(Change::UserAdded {
                descriptor: twin.clone(),
            });
            let new = NewPat::named(&name, at + Duration::days(30));
            if let Ok(id) = self.create_pat(&twin, new, stamp(1)) {
                changes.push(Change::PatCreated {
                    descriptor: twin.clone(),
                    authorization_id: id,
                });
            }
            let original = self.org.users[twin_of].descriptor.clone();
            let other = self.valid_pats().into_iter().find(|(u, p)| {
                let user = &self.org.users[*u];
                user.descriptor != original
                    && user.descriptor != twin
                    && user.pats[*p].display_name.as_deref() != Some(name.as_str())
            });
            if let Some((u, p)) = other {
                let id = self.org.users[u].pats[p].authorization_id.clone();
                let change = PatChange {
                    display_name: Some(name.clone()),
                    ..PatChange::default()
                };
                if self.update_pat(&id, change, stamp(2)).is_ok() {
                    changes.push(Change::PatUpdated {
                        authorization_id: id,
                    });
                }
            }
            i = 3;
        }
        while i < count {
            let when = stamp(i);
            let change = self.random_one(&mut rng, when);
            changes.push(change);
            i += 1;
        }
        changes
    }

    /// (user, pat) of every valid PAT of a person, in org order.
    fn valid_pats(&self) -> Vec<(usize, usize)> {
        self.org
            .users
            .iter()
            .enumerate()
            .filter(|(_, u)| u.kind.is_human())
            .flat_map(|(u, user)| {
                user.pats
                    .iter()
                    .enumerate()
                    .filter(|(_, p)| p.is_valid)
                    .map(move |(p, _)| (u, p))
            })
            .collect()
    }

    fn named_valid_pat(&self, rng: &mut fastrand::Rng) -> Option<(usize, String)> {
        let named: Vec<(usize, String)> = self
            .valid_pats()
            .into_iter()
            .filter_map(|(u, p)| {
                self.org.users[u].pats[p]
                    .display_name
                    .clone()
                    .filter(|n| !n.is_empty())
                    .map(|n| (u, n))
            })
            .collect();
        (!named.is_empty()).then(|| named[rng.usize(..named.len())].clone())
    }

    fn random_one(&mut self, rng: &mut fastrand::Rng, at: OffsetDateTime) -> Change {
        let people: Vec<usize> = (0..self.org.users.len())
            .filter(|&u| self.org.users[u].kind.is_human())
            .collect();
        let valid = self.valid_pats();
        let pick_pat = |rng: &mut fastrand::Rng| {
            (!valid.is_empty()).then(|| {
                let (u, p) = valid[rng.usize(..valid.len())];
                self.org.users[u].pats[p].authorization_id.clone()
            })
        };
        let roll = rng.u32(..100);
        let pat = pick_pat(rng);
        let outcome = match (roll, pat) {
            (0..20, _) if !people.is_empty() => {
                let owner = self.org.users[people[rng.usize(..people.len())]]
                    .descriptor
                    .clone();
                let name = format!(
                    "{} {}",
                    ["deploy", "nuget feed", "ci agent", "laptop git", "release"][rng.usize(..5)],
                    rng.u32(1..100)
                );
                let new = NewPat {
                    scope: [
                        "vso.code",
                        "vso.code_write vso.build",
                        "app_token",
                        "vso.packaging",
                    ][rng.usize(..4)]
                    .into(),
                    ..NewPat::named(&name, at + Duration::days(rng.i64(7..=365)))
                };
                self.create_pat(&owner, new, at)
                    .map(|authorization_id| Change::PatCreated {
                        descriptor: owner,
                        authorization_id,
                    })
            }
            (20..35, Some(id)) => {
                let change = match rng.u32(..3) {
                    0 => PatChange {
                        display_name: Some(format!("renamed {}", rng.u32(1..1000))),
                        ..PatChange::default()
                    },
                    1 => PatChange {
                        scope: Some("vso.code_write".into()),
                        ..PatChange::default()
                    },
                    _ => PatChange {
                        valid_to: Some(at + Duration::days(rng.i64(30..=365))),
                        ..PatChange::default()
                    },
                };
                self.update_pat(&id, change, at)
                    .map(|()| Change::PatUpdated {
                        authorization_id: id,
                    })
            }
            (35..45, Some(id)) => self.revoke_by_owner(&id, at).map(|()| Change::PatRevoked {
                authorization_id: id,
                by_admin: false,
            }),
            (45..53, Some(id)) => self.revoke_by_admin(&id, at).map(|()| Change::PatRevoked {
                authorization_id: id,
                by_admin: true,
            }),
            (53..60, Some(id)) => self.expire(&id, at).map(|()| Change::PatExpired {
                authorization_id: id,
            }),
            (60..65, Some(id)) => self
                .system_revoke(&id, at)
                .map(|()| Change::PatSystemRevoked {
                    authorization_id: id,
                }),
            (65..70, Some(id)) => self
                .public_discovery(&id, at)
                .map(|()| Change::PatDiscovered {
                    authorization_id: id,
                }),
            (70..85, Some(id)) => {
                let agent = if rng.bool() {
                    GIT_USER_AGENT
                } else {
                    BROWSER_USER_AGENT
                };
                let action = PatUse::ALL[rng.usize(..PatUse::ALL.len())];
                self.pat_use(&id, action, agent, at)
                    .map(|()| Change::PatUsed {
                        authorization_id: id,
                        user_agent: agent.to_string(),
                    })
            }
            (85..90, _) => {
                let name = self
                    .org
                    .users
                    .get(people.first().copied().unwrap_or(0))
                    .filter(|_| rng.bool())
                    .map_or_else(
                        || format!("New Joiner {}", rng.u32(1..1000)),
                        |u| u.display_name.clone(),
                    );
                Ok(Change::UserAdded {
                    descriptor: self.add_user(&name, at),
                })
            }
            (90..93, _) if people.len() > 1 => {
                let descriptor = self.org.users[people[rng.usize(..people.len())]]
                    .descriptor
                    .clone();
                self.remove_user(&descriptor, at)
                    .map(|()| Change::UserRemoved { descriptor })
            }
            _ => Err(MutationError::UnknownPat(String::new())),
        };
        outcome.unwrap_or_else(|_| {
            self.noise(at);
            Change::Noise
        })
    }
}

/// `at` as text, for hashing.
fn ticks_text(at: OffsetDateTime) -> String {
    at.unix_timestamp_nanos().to_string()
}

/// The event of a PAT use; `h` varies the names.
fn use_event(
    action: PatUse,
    project: &str,
    h: u64,
    actor: AuditActor,
    at: OffsetDateTime,
) -> EventDraft {
    let project_id = guid_of(hash_bytes(1, project.as_bytes()));
    let repo = format!("{}-{}", project.to_ascii_lowercase(), h % 50);
    let mut data = Map::new();
    data.insert("ProjectName".into(), Value::String(project.into()));
    let (action_id, area, category, details) = match action {
        PatUse::GitRepositoryCreated => {
            data.insert("RepoName".into(), Value::String(repo.clone()));
            (
                "Git.RepositoryCreated",
                "Git",
                AuditCategory::Create,
                format!("Created repository {repo} in project {project}."),
            )
        }
        PatUse::GitPoliciesBypassed => {
            data.insert("RepoName".into(), Value::String(repo.clone()));
            data.insert("RefName".into(), Value::String("refs/heads/main".into()));
            (
                "Git.RefUpdatePoliciesBypassed",
                "Git",
                AuditCategory::Modify,
                format!(
                    "Policies on refs/heads/main were bypassed in Git repository {repo} in project {project}."
                ),
            )
        }
        PatUse::SecurityPermissionChanged => {
            data.insert(
                "NamespaceName".into(),
                Value::String("Git Repositories".into()),
            );
            (
                "Security.ModifyPermission",
                "Security",
                AuditCategory::Modify,
                format!(
                    "Permission \"Force push\" was set to Allow for [{project}]\\Contributors."
                ),
            )
        }
        PatUse::PolicyModified => {
            data.insert(
                "PolicyTypeDisplayName".into(),
                Value::String("Minimum number of reviewers".into()),
            );
            (
                "Policy.PolicyConfigModified",
                "Policy",
                AuditCategory::Modify,
                format!("Minimum number of reviewers policy was modified in project {project}."),
            )
        }
        PatUse::ProjectAreaPathCreated => {
            data.insert(
                "Path".into(),
                Value::String(format!("{project}\\Area {}", h % 10)),
            );
            (
                "Project.AreaPath.Create",
                "Project",
                AuditCategory::Create,
                format!("Area path \"{project}\\Area {}\" was created.", h % 10),
            )
        }
    };
    EventDraft {
        at,
        actor,
        action_id: action_id.into(),
        area: area.into(),
        category,
        project: Some((project_id, project.into())),
        data,
        details,
        correlation_id: None,
    }
}

/// `Licensing.Assigned` / `Licensing.Removed` for a user joining or leaving, by the admin.
fn licensing_event(user: &SimUser, joined: bool, at: OffsetDateTime) -> EventDraft {
    let mut data = Map::new();
    data.insert(
        "UserDisplayName".into(),
        Value::String(user.display_name.clone()),
    );
    data.insert("AccessLevel".into(), Value::String("Basic".into()));
    let (action_id, category, details) = if joined {
        (
            "Licensing.Assigned",
            AuditCategory::Create,
            format!(
                "Basic access level was assigned to \"{}\".",
                user.display_name
            ),
        )
    } else {
        (
            "Licensing.Removed",
            AuditCategory::Remove,
            format!(
                "\"{}\" was removed from the organization.",
                user.display_name
            ),
        )
    };
    EventDraft {
        at,
        actor: AuditActor::token_admin("AAD_Cookie", BROWSER_USER_AGENT),
        action_id: action_id.into(),
        area: "Licensing".into(),
        category,
        project: None,
        data,
        details,
        correlation_id: None,
    }
}
