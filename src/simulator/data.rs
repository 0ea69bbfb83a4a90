//! The generated organization: users, service identities, their PATs and SSH keys.
//!
//! Generation is deterministic for a given [`OrgSpec`] and `now`, and everything time-based
//! is placed relative to `now`, so a report over the same org always shows the same mix of
//! expired, expiring and long-lived tokens.

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use time::{Duration, OffsetDateTime, UtcOffset};

use super::audit::{AuditActor, AuditLog, BROWSER_USER_AGENT, PatAction, pat_event};
use super::hash::mix64;
use super::names::{
    FIRST_NAMES, HOSTILE_PAT_NAMES, HOSTILE_USER_NAMES, LAST_NAMES, PAT_NAMES, PROJECTS, SCOPES,
    SSH_KEY_NAMES,
};
use super::wire::guid_from_u128;

/// The marker every fake secret value contains, so tests can search any output for it.
pub const SECRET_MARKER: &str = "SIMULATED-SECRET";

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct OrgSpec {
    /// Human users (`aad.` and `msa.` subjects).
    pub users: usize,
    pub seed: u64,
    /// `svc.`/`acs.` service identities mixed into the Graph listing (they have no PATs).
    pub service_identities: usize,
    /// Share of human users with at least one PAT.
    pub share_with_pats: f64,
    /// Share of human users that are Microsoft accounts (`msa.`) rather than Entra (`aad.`).
    pub msa_share: f64,
    /// Share of Entra users that are guests (`metaType: guest`).
    pub guest_share: f64,
    /// PATs of the one "heavy" user, placed mid-list; more than two default pages (20) so
    /// clients must follow body continuation tokens. 0 leaves the heavy user out, and with it
    /// the guaranteed edge cases (null name, "no date" sentinel, secret value, hostile names).
    pub heavy_user_pats: usize,
    /// Share of PATs for which the service fills `token`/`alternateToken` with a fake secret.
    pub secret_share: f64,
    /// Share of human users with 1 to 3 SSH keys. Keys are drawn from a random stream of
    /// their own, so they leave the users and PATs of a seed as they were.
    pub share_with_ssh_keys: f64,
    /// SSH keys of the heavy user: more than one default page, and the guaranteed edge cases
    /// (null name, "no date" sentinel, expired, revoked, long-lived, hostile names).
    pub heavy_user_ssh_keys: usize,
}

impl OrgSpec {
    /// The organization behind `patreport report --demo`.
    pub fn demo() -> Self {
        Self::with_users(1_250)
    }

    /// Default proportions with `n` human users.
    pub fn with_users(n: usize) -> Self {
        OrgSpec {
            users: n,
            seed: 0x5EED_2026,
            service_identities: 8,
            share_with_pats: 0.62,
            msa_share: 0.12,
            guest_share: 0.08,
            heavy_user_pats: 45,
            secret_share: 0.02,
            share_with_ssh_keys: 0.15,
            heavy_user_ssh_keys: 25,
        }
    }
}

/// Graph subject kinds, by descriptor prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SubjectKind {
    /// Microsoft Entra user (`aad.`)
    Aad,
    /// Microsoft account (`msa.`)
    Msa,
    /// Service identity such as a build service (`svc.`)
    Svc,
    /// Internal service account (`acs.`)
    Acs,
}

impl SubjectKind {
    pub const ALL: [SubjectKind; 4] = [Self::Aad, Self::Msa, Self::Svc, Self::Acs];

    /// The descriptor prefix, also the `subjectTypes` filter value.
    pub fn prefix(self) -> &'static str {
        match self {
            Self::Aad => "aad",
            Self::Msa => "msa",
            Self::Svc => "svc",
            Self::Acs => "acs",
        }
    }

    /// Parses a prefix, ignoring ASCII case.
    pub fn from_prefix(prefix: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|k| k.prefix().eq_ignore_ascii_case(prefix))
    }

    /// Human users are the ones a PAT inventory is about.
    pub fn is_human(self) -> bool {
        matches!(self, Self::Aad | Self::Msa)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SimUser {
    pub descriptor: String,
    pub kind: SubjectKind,
    pub display_name: String,
    pub principal_name: String,
    pub mail_address: String,
    /// `aad`, `msa` or `vsts`.
    pub origin: String,
    pub origin_id: String,
    /// Tenant id for Entra users, "Windows Live ID" for MSA, "Build" etc. for services.
    pub domain: String,
    /// "member" or "guest"; absent for service identities, as in the example.
    pub meta_type: Option<String>,
    pub pats: Vec<SimPat>,
    /// What the same listing returns with `isPublic=true`.
    pub ssh_keys: Vec<SimSshKey>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SimPat {
    pub authorization_id: String,
    /// The PAT name; the service sends `null` for some.
    pub display_name: Option<String>,
    pub scope: String,
    /// `None` = all organizations (global).
    pub target_accounts: Option<Vec<String>>,
    pub valid_from: OffsetDateTime,
    pub valid_to: OffsetDateTime,
    pub is_valid: bool,
    /// The owner's user id; deliberately not the GUID inside the descriptor (see
    /// docs/contracts.md, "Token Admin PAT listing").
    pub user_id: String,
    /// A fake secret the server puts in `token`/`alternateToken`, containing
    /// [`SECRET_MARKER`], so tests can prove a client never keeps or prints it.
    pub token: Option<String>,
}

/// An SSH public key: a SessionToken with `isPublic: true` and the key in `publicData`.
#[derive(Debug, Clone, PartialEq)]
pub struct SimSshKey {
    pub authorization_id: String,
    /// The key name; the service sends `null` for some.
    pub display_name: Option<String>,
    /// Which scope the service reports for a key is not documented; the generator says
    /// `app_token`, as for a full-access PAT.
    pub scope: String,
    pub valid_from: OffsetDateTime,
    pub valid_to: OffsetDateTime,
    pub is_valid: bool,
    pub user_id: String,
    /// The public key, as `ssh-ed25519 AAAA… comment`: public, but no client needs to keep it.
    pub public_data: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SimOrg {
    pub name: String,
    /// In Graph listing order: humans with service identities interleaved.
    pub users: Vec<SimUser>,
    /// The org's audit log: empty when generated, written by [`evolve`](Self::evolve) and
    /// [`Mutations`](super::Mutations). A running [`SimServer`](super::SimServer) keeps its own (see
    /// `SimServer::audit_log`).
    pub audit: AuditLog,
}

impl SimUser {
    /// The user's id as Token Admin (`SessionToken.userId`) and the audit log
    /// (`actorUserId`) show it: the id on the user's PATs, or for a user without any a
    /// stable id derived from the descriptor.
    pub fn user_id(&self) -> String {
        self.pats.first().map_or_else(
            || {
                let h = mix64(super::hash::hash_bytes(
                    USER_ID_STREAM,
                    self.descriptor.as_bytes(),
                ));
                let v = (u128::from(h) << 64) | u128::from(mix64(h));
                guid_from_u128((v & !(0xF << 76) | (0x4 << 76)) & !(0x3 << 62) | (0x2 << 62))
            },
            |p| p.user_id.clone(),
        )
    }
}

impl SimOrg {
    /// Generates an organization; the same `(spec, now)` always gives the same org.
    pub fn generate(name: &str, spec: &OrgSpec, now: OffsetDateTime) -> SimOrg {
        Generator::new(name, spec, now).run()
    }

    /// The organization as time goes by: each step, one minute after `start` and the step
    /// before it, one valid
    /// PAT is revoked (it drops out of the listing, as the service drops revoked ones), one is
    /// renamed and one is created, each for a person drawn from `(seed, step)`. The same steps
    /// always make the same changes, so a second demo report minutes later has changes to show.
    pub fn evolve(&mut self, seed: u64, steps: std::ops::Range<u64>, start: OffsetDateTime) {
        let people: Vec<usize> = (0..self.users.len())
            .filter(|&i| self.users[i].kind.is_human())
            .collect();
        if people.is_empty() {
            return;
        }
        for step in steps {
            let now = start + Duration::minutes(i64::try_from(step).unwrap_or(i64::MAX / 120));
            let mut rng = fastrand::Rng::with_seed(mix64(seed ^ EVOLVE_STREAM ^ mix64(step)));
            let mut person = || people[rng.usize(..people.len())];
            let valid = |u: &SimUser| -> Vec<usize> {
                (0..u.pats.len())
                    .filter(|&i| u.pats[i].is_valid && u.pats[i].valid_to > now)
                    .collect()
            };
            // People holding a valid PAT (drawn until one is found; most orgs have many).
            let mut holder = |users: &[SimUser]| {
                (0..64)
                    .map(|_| person())
                    .find(|&i| !valid(&users[i]).is_empty())
            };
            // Each change writes the audit event the owner's action would (owner as actor,
            // in the browser), so the demo org has an audit log to read.
            let by_owner = |u: &SimUser| AuditActor::user(u, "AAD_Cookie", BROWSER_USER_AGENT);
            if let Some(revoked) = holder(&self.users) {
                let pats = valid(&self.users[revoked]);
                let owner = &self.users[revoked];
                let at = pats[step as usize % pats.len()];
                self.audit.record(pat_event(
                    PatAction::Revoke,
                    &owner.pats[at],
                    owner,
                    by_owner(owner),
                    now,
                ));
                self.users[revoked].pats.remove(at);
            }
            if let Some(renamed) = holder(&self.users) {
                let first = valid(&self.users[renamed])[0];
                self.users[renamed].pats[first].display_name =
                    Some(format!("renamed at step {step}"));
                let owner = &self.users[renamed];
                self.audit.record(pat_event(
                    PatAction::Update,
                    &owner.pats[first],
                    owner,
                    by_owner(owner),
                    now,
                ));
            }
            let creator = holder(&self.users).unwrap_or_else(&mut person);
            let mut rng = fastrand::Rng::with_seed(mix64(seed ^ EVOLVE_STREAM ^ mix64(!step)));
            if let Some(model) = self.users[creator].pats.first().cloned() {
                let from = now;
                self.users[creator].pats.push(SimPat {
                    authorization_id: guid(&mut rng),
                    display_name: Some(format!("created at step {step}")),
                    valid_from: from,
                    valid_to: from + Duration::DAY * rng.i32(7..=90),
                    is_valid: true,
                    token: Some(secret(&mut rng)),
                    ..model
                });
                let owner = &self.users[creator];
                if let Some(pat) = owner.pats.last() {
                    self.audit.record(pat_event(
                        PatAction::Create,
                        pat,
                        owner,
                        by_owner(owner),
                        now,
                    ));
                }
            }
        }
    }

    /// Users of kind `aad` or `msa`.
    pub fn human_users(&self) -> impl Iterator<Item = &SimUser> {
        self.users.iter().filter(|u| u.kind.is_human())
    }

    /// PATs of human users.
    pub fn pat_count(&self) -> usize {
        self.human_users().map(|u| u.pats.len()).sum()
    }

    /// SSH keys of human users.
    pub fn ssh_key_count(&self) -> usize {
        self.human_users().map(|u| u.ssh_keys.len()).sum()
    }

    pub fn user(&self, descriptor: &str) -> Option<&SimUser> {
        self.users.iter().find(|u| u.descriptor == descriptor)
    }
}

/// The year-1 "no date" sentinel the service uses (`0001-01-01T00:00:00`).
pub fn no_date_sentinel() -> OffsetDateTime {
    OffsetDateTime::UNIX_EPOCH
        .replace_year(1)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Builds a descriptor: `<kind>.<base64url-without-padding(id)>`, as in the examples.
fn descriptor(kind: SubjectKind, id: &str) -> String {
    format!("{}.{}", kind.prefix(), URL_SAFE_NO_PAD.encode(id))
}

/// Lower-case ASCII for e-mail local parts; drops what it cannot map.
fn ascii_slug(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        let mapped = match c {
            'a'..='z' | '0'..='9' => Some(c),
            'A'..='Z' => Some(c.to_ascii_lowercase()),
            'á' | 'à' | 'ä' | 'å' | 'Å' => Some('a'),
            'é' | 'è' | 'ë' => Some('e'),
            'í' | 'ï' => Some('i'),
            'ó' | 'ö' | 'ø' | 'ô' => Some('o'),
            'ú' | 'ü' | 'Ü' => Some('u'),
            'ç' => Some('c'),
            'ñ' => Some('n'),
            'ł' | 'Ł' => Some('l'),
            _ => None,
        };
        out.extend(mapped);
    }
    if out.is_empty() { "user".into() } else { out }
}

struct Generator<'a> {
    name: &'a str,
    spec: &'a OrgSpec,
    /// `now` in UTC, whole seconds: every generated time is then exact at 100 ns, which the
    /// wire format keeps, so what clients parse equals what the generator made.
    now: OffsetDateTime,
    rng: fastrand::Rng,
    /// SSH keys only: drawing them from `rng` would shift every user and PAT after the first
    /// key, and with them the figures tests and benchmarks know a seed by.
    ssh_rng: fastrand::Rng,
    tenant_id: String,
    account_id: String,
    other_account_id: String,
    principals: HashMap<String, u32>,
}

impl<'a> Generator<'a> {
    fn new(name: &'a str, spec: &'a OrgSpec, now: OffsetDateTime) -> Self {
        let now = now.to_offset(UtcOffset::UTC);
        let now = now.replace_nanosecond(0).unwrap_or(now);
        let mut rng = fastrand::Rng::with_seed(spec.seed);
        let tenant_id = guid(&mut rng);
        let account_id = guid(&mut rng);
        let other_account_id = guid(&mut rng);
        Generator {
            name,
            spec,
            now,
            rng,
            ssh_rng: fastrand::Rng::with_seed(mix64(spec.seed ^ SSH_STREAM)),
            tenant_id,
            account_id,
            other_account_id,
            principals: HashMap::new(),
        }
    }

    fn run(mut self) -> SimOrg {
        let n = self.spec.users;
        let heavy = (self.spec.heavy_user_pats > 0 && n > 0).then_some(n / 2);
        // Hostile names go to evenly spread users, so some land past the first Graph page.
        let hostile_at = |i: usize| {
            (0..HOSTILE_USER_NAMES.len())
                .find(|k| n > 0 && (2 * k + 1) * n / (2 * HOSTILE_USER_NAMES.len()) == i)
        };
        let mut users: Vec<SimUser> = Vec::with_capacity(n + self.spec.service_identities);
        for i in 0..n {
            let mut user = self.human(hostile_at(i).map(|k| HOSTILE_USER_NAMES[k]));
            if Some(i) == heavy {
                self.make_heavy(&mut user);
            }
            users.push(user);
        }
        // Service identities: the first at the top (as in the example), the rest spread out.
        let s = self.spec.service_identities;
        for j in (0..s).rev() {
            let identity = self.service_identity(j);
            let at = if j == 0 { 0 } else { j * n / s };
            users.insert(at.min(users.len()), identity);
        }
        SimOrg {
            name: self.name.to_string(),
            users,
            audit: AuditLog::new(mix64(self.spec.seed ^ AUDIT_STREAM)),
        }
    }

    fn human(&mut self, hostile_name: Option<&str>) -> SimUser {
        let kind = if self.rng.f64() < self.spec.msa_share {
            SubjectKind::Msa
        } else {
            SubjectKind::Aad
        };
        let first = FIRST_NAMES[self.rng.usize(..FIRST_NAMES.len())];
        let last = LAST_NAMES[self.rng.usize(..LAST_NAMES.len())];
        let display_name = hostile_name.map_or_else(|| format!("{first} {last}"), str::to_string);
        let guest = kind == SubjectKind::Aad && self.rng.f64() < self.spec.guest_share;
        let local = self.unique_local_part(&format!("{}.{}", ascii_slug(first), ascii_slug(last)));
        let org_domain = format!("{}.example.com", ascii_slug(self.name));
        let principal_name = match (kind, guest) {
            (SubjectKind::Msa, _) => format!("{local}@outlook.example.com"),
            (_, true) => format!("{local}@partner.example.org"),
            _ => format!("{local}@{org_domain}"),
        };
        let id = guid(&mut self.rng);
        let origin_id = guid(&mut self.rng);
        let user_id = guid(&mut self.rng);
        let mut pat_total = if self.rng.f64() < self.spec.share_with_pats {
            self.pats_per_user()
        } else {
            0
        };
        if hostile_name.is_some() {
            // Make sure the hostile names also reach the PAT rows of a report.
            pat_total = pat_total.max(1);
        }
        let pats = (0..pat_total).map(|_| self.pat(&user_id)).collect();
        let ssh_total = if self.ssh_rng.f64() < self.spec.share_with_ssh_keys {
            self.ssh_rng.usize(1..=3)
        } else {
            0
        };
        let ssh_keys = (0..ssh_total).map(|_| self.ssh_key(&user_id)).collect();
        SimUser {
            descriptor: descriptor(kind, &id),
            kind,
            display_name,
            mail_address: principal_name.clone(),
            principal_name,
            origin: kind.prefix().to_string(),
            origin_id,
            domain: if kind == SubjectKind::Msa {
                "Windows Live ID".into()
            } else {
                self.tenant_id.clone()
            },
            meta_type: Some(if guest { "guest" } else { "member" }.into()),
            pats,
            ssh_keys,
        }
    }

    /// Gives the heavy user its PATs and the edge cases every org must contain.
    fn make_heavy(&mut self, user: &mut SimUser) {
        let user_id = user
            .pats
            .first()
            .map(|p| p.user_id.clone())
            .unwrap_or_else(|| guid(&mut self.rng));
        while user.pats.len() < self.spec.heavy_user_pats {
            let pat = self.pat(&user_id);
            user.pats.push(pat);
        }
        user.pats.truncate(self.spec.heavy_user_pats);
        let mut pats = user.pats.iter_mut();
        if let Some(p) = pats.next() {
            p.display_name = None;
        }
        if let Some(p) = pats.next() {
            p.valid_from = no_date_sentinel();
        }
        if let Some(p) = pats.next() {
            p.token = Some(secret(&mut self.rng));
        }
        for (p, name) in pats.zip(HOSTILE_PAT_NAMES) {
            p.display_name = Some((*name).to_string());
        }
        self.make_heavy_ssh_keys(user, &user_id);
    }

    fn make_heavy_ssh_keys(&mut self, user: &mut SimUser, user_id: &str) {
        while user.ssh_keys.len() < self.spec.heavy_user_ssh_keys {
            let key = self.ssh_key(user_id);
            user.ssh_keys.push(key);
        }
        user.ssh_keys.truncate(self.spec.heavy_user_ssh_keys);
        let now = self.now;
        let mut keys = user.ssh_keys.iter_mut();
        if let Some(k) = keys.next() {
            k.display_name = None;
        }
        if let Some(k) = keys.next() {
            k.valid_from = no_date_sentinel();
        }
        if let Some(k) = keys.next() {
            k.valid_to = now - Duration::DAY * 3;
            k.valid_from = k.valid_to - Duration::DAY * 365;
        }
        if let Some(k) = keys.next() {
            k.is_valid = false;
        }
        if let Some(k) = keys.next() {
            k.valid_from = now - Duration::DAY * 30;
            k.valid_to = now + Duration::DAY * (5 * 365);
        }
        for (k, name) in keys.zip(HOSTILE_PAT_NAMES) {
            k.display_name = Some((*name).to_string());
        }
    }

    fn unique_local_part(&mut self, base: &str) -> String {
        let seen = self.principals.entry(base.to_string()).or_insert(0);
        *seen += 1;
        if *seen == 1 {
            base.to_string()
        } else {
            format!("{base}{seen}")
        }
    }

    /// PATs of a user who has some: mostly a few, a long tail of many.
    fn pats_per_user(&mut self) -> usize {
        match self.rng.u32(..100) {
            0..25 => 1,
            25..43 => 2,
            43..57 => 3,
            57..68 => 4,
            68..77 => 5,
            77..84 => 6,
            84..95 => self.rng.usize(7..=10),
            _ => self.rng.usize(11..=19),
        }
    }

    fn pat(&mut self, user_id: &str) -> SimPat {
        let rng = &mut self.rng;
        let display_name = match rng.u32(..1000) {
            0..30 => None,
            30..36 => Some(HOSTILE_PAT_NAMES[rng.usize(..HOSTILE_PAT_NAMES.len())].to_string()),
            _ => {
                let base = PAT_NAMES[rng.usize(..PAT_NAMES.len())];
                Some(if rng.bool() {
                    base.to_string()
                } else {
                    format!("{base} {}", rng.u32(1..40))
                })
            }
        };
        let scope = weighted_scope(rng).to_string();
        let target_accounts = match rng.u32(..100) {
            0..35 => None,
            35..90 => Some(vec![self.account_id.clone()]),
            _ => Some(vec![self.account_id.clone(), self.other_account_id.clone()]),
        };
        let (valid_from, valid_to) = validity(rng, self.now);
        let valid_from = if rng.u32(..1000) < 3 {
            no_date_sentinel()
        } else {
            valid_from
        };
        let token = (rng.f64() < self.spec.secret_share).then(|| secret(rng));
        SimPat {
            authorization_id: guid(rng),
            display_name,
            scope,
            target_accounts,
            valid_from,
            valid_to,
            is_valid: rng.u32(..100) >= 6,
            user_id: user_id.to_string(),
            token,
        }
    }

    /// One SSH key, from the SSH stream only. Validity has the PATs' mix (expired, expiring,
    /// longer than a year) plus some keys made to last years.
    fn ssh_key(&mut self, user_id: &str) -> SimSshKey {
        let rng = &mut self.ssh_rng;
        let display_name = match rng.u32(..100) {
            0..5 => None,
            5..12 => Some(HOSTILE_PAT_NAMES[rng.usize(..HOSTILE_PAT_NAMES.len())].to_string()),
            _ => Some(SSH_KEY_NAMES[rng.usize(..SSH_KEY_NAMES.len())].to_string()),
        };
        let (valid_from, mut valid_to) = validity(rng, self.now);
        if rng.u32(..100) < 10 {
            valid_to = self.now + Duration::DAY * rng.i32(2 * 365..=10 * 365);
        }
        let authorization_id = guid(rng);
        let public_data = format!(
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI{} {}",
            URL_SAFE_NO_PAD.encode(rng.u128(..).to_be_bytes()),
            display_name.as_deref().unwrap_or("key")
        );
        SimSshKey {
            authorization_id,
            display_name,
            scope: "app_token".into(),
            valid_from,
            valid_to,
            is_valid: rng.u32(..100) >= 8,
            user_id: user_id.to_string(),
            public_data,
        }
    }

    fn service_identity(&mut self, j: usize) -> SimUser {
        let org = self.name;
        let (kind, display_name, domain, meta_type) = match j {
            0 => (
                SubjectKind::Acs,
                "TeamFoundationService (TEAM FOUNDATION)".to_string(),
                "LOCAL AUTHORITY",
                Some("member"),
            ),
            1 => (
                SubjectKind::Svc,
                format!("Project Collection Build Service ({org})"),
                "Build",
                None,
            ),
            j if j % 4 == 3 => (
                SubjectKind::Svc,
                format!("Agent Pool Service ({j})"),
                "AgentPool",
                None,
            ),
            j => (
                SubjectKind::Svc,
                format!("{} Build Service ({org})", PROJECTS[j % PROJECTS.len()]),
                "Build",
                None,
            ),
        };
        let scope_id = guid(&mut self.rng);
        let principal = guid(&mut self.rng);
        let raw_id = match kind {
            SubjectKind::Svc => format!("{scope_id}:{domain}:{principal}"),
            _ => scope_id,
        };
        let principal_name = if kind == SubjectKind::Acs {
            display_name.clone()
        } else {
            principal
        };
        SimUser {
            descriptor: descriptor(kind, &raw_id),
            kind,
            display_name,
            principal_name,
            mail_address: String::new(),
            origin: "vsts".into(),
            origin_id: guid(&mut self.rng),
            domain: domain.into(),
            meta_type: meta_type.map(str::to_string),
            pats: Vec::new(),
            ssh_keys: Vec::new(),
        }
    }
}

/// Tells the stream of [`SimOrg::evolve`] from the org's.
const EVOLVE_STREAM: u64 = 0xE7_01E0_5EED_0002;

/// Tells the audit log's ids from the org's other draws.
const AUDIT_STREAM: u64 = 0xA0D1_7000_5EED_0003;

/// Tells derived user ids from the org's other draws.
const USER_ID_STREAM: u64 = 0x05E2_1D00_5EED_0004;

/// Tells the SSH key stream's seed from the org's.
const SSH_STREAM: u64 = 0x55E4_4B3E_5EED_0001;

fn guid(rng: &mut fastrand::Rng) -> String {
    // Version-4 layout, like the GUIDs the service hands out.
    let v = (rng.u128(..) & !(0xF << 76) | (0x4 << 76)) & !(0x3 << 62) | (0x2 << 62);
    guid_from_u128(v)
}

fn secret(rng: &mut fastrand::Rng) -> String {
    format!("{SECRET_MARKER}-{:032x}", rng.u128(..))
}

fn weighted_scope(rng: &mut fastrand::Rng) -> &'static str {
    let total: u32 = SCOPES.iter().map(|(_, w)| w).sum();
    let mut pick = rng.u32(..total);
    for (scope, weight) in SCOPES {
        if pick < *weight {
            return scope;
        }
        pick -= weight;
    }
    "app_token"
}

/// A `(valid_from, valid_to)` pair relative to `now`, drawn from the mix a real org shows:
/// expired, expiring within a week / month / quarter, ordinary, and longer than a year.
fn validity(rng: &mut fastrand::Rng, now: OffsetDateTime) -> (OffsetDateTime, OffsetDateTime) {
    let day = Duration::DAY;
    let ahead = match rng.u32(..100) {
        0..18 => -day * rng.i32(1..=400),
        18..26 => Duration::hours(rng.i64(1..7 * 24)),
        26..38 => day * rng.i32(7..30),
        38..58 => day * rng.i32(30..90),
        58..85 => day * rng.i32(90..=365),
        _ => day * rng.i32(366..=730),
    };
    let mut valid_to = now + ahead + Duration::seconds(rng.i64(0..86_400));
    let whole_days = rng.u32(..100) < 40;
    if whole_days {
        // Tokens made in the web UI expire at midnight; the example shows exactly that.
        valid_to = valid_to.replace_time(time::Time::MIDNIGHT);
    } else {
        valid_to += Duration::nanoseconds(i64::from(rng.u32(1..10_000_000)) * 100);
    }
    let lifetime = if ahead > day * 365 {
        ahead + day * rng.i32(1..200)
    } else {
        day * [7, 30, 60, 90, 180, 365][rng.usize(..6)]
    };
    let mut valid_from = valid_to - lifetime;
    if valid_from > now {
        valid_from = now - Duration::seconds(rng.i64(60..30 * 86_400));
    }
    if !whole_days {
        valid_from = valid_from
            .replace_nanosecond(rng.u32(0..10_000_000) * 100)
            .unwrap_or(valid_from);
    }
    (valid_from, valid_to)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-03-01 12:00:00 UTC);

    #[test]
    fn evolving_revokes_renames_and_creates_the_same_way_every_time() {
        let now = time::macros::datetime!(2026-11-29 00:00 UTC);
        let org = SimOrg::generate("fabrikam", &OrgSpec::with_users(200), now);
        let ids = |o: &SimOrg| -> std::collections::BTreeSet<String> {
            o.users
                .iter()
                .flat_map(|u| &u.pats)
                .map(|p| p.authorization_id.clone())
                .collect()
        };
        let mut later = org.clone();
        later.evolve(7, 0..10, now);
        let mut again = org.clone();
        again.evolve(7, 0..4, now);
        again.evolve(7, 4..10, now);
        assert_eq!(later, again, "steps add up");
        let (before, after) = (ids(&org), ids(&later));
        assert_eq!(
            before.difference(&after).count(),
            10,
            "one revoked per step"
        );
        assert_eq!(
            after.difference(&before).count(),
            10,
            "one created per step"
        );
        let renamed = later
            .users
            .iter()
            .flat_map(|u| &u.pats)
            .filter(|p| {
                p.display_name
                    .as_deref()
                    .is_some_and(|n| n.starts_with("renamed"))
            })
            .count();
        assert!(renamed > 0);
    }

    #[test]
    fn generation_is_deterministic() {
        let a = SimOrg::generate("Fabrikam", &OrgSpec::demo(), NOW);
        let b = SimOrg::generate("Fabrikam", &OrgSpec::demo(), NOW);
        assert_eq!(a, b);
        let other = OrgSpec {
            seed: 7,
            ..OrgSpec::demo()
        };
        assert_ne!(a, SimOrg::generate("Fabrikam", &other, NOW));
    }

    #[test]
    fn demo_org_has_the_promised_shape() {
        let org = SimOrg::generate("Fabrikam", &OrgSpec::demo(), NOW);
        let humans: Vec<&SimUser> = org.human_users().collect();
        assert!(humans.len() >= 1_200);
        assert_eq!(org.users.len(), humans.len() + 8);
        let per_user = org.pat_count() as f64 / humans.len() as f64;
        assert!((2.0..3.0).contains(&per_user), "{per_user} PATs per user");
        let without = humans.iter().filter(|u| u.pats.is_empty()).count();
        assert!(without > humans.len() / 4, "{without} users without PATs");
        assert!(humans.iter().any(|u| u.pats.len() == 45));
        assert!(humans.iter().any(|u| u.kind == SubjectKind::Msa));
        assert!(
            org.users
                .iter()
                .any(|u| u.kind == SubjectKind::Svc && u.origin == "vsts")
        );
        assert!(org.users.iter().any(|u| u.kind == SubjectKind::Acs));
    }

    #[test]
    fn demo_org_contains_the_edge_cases() {
        let org = SimOrg::generate("Fabrikam", &OrgSpec::demo(), NOW);
        let pats: Vec<&SimPat> = org.human_users().flat_map(|u| &u.pats).collect();
        let names: Vec<&str> = org.users.iter().map(|u| u.display_name.as_str()).collect();
        for hostile in HOSTILE_USER_NAMES {
            assert!(names.contains(hostile), "user name {hostile}");
        }
        for hostile in HOSTILE_PAT_NAMES {
            assert!(
                pats.iter()
                    .any(|p| p.display_name.as_deref() == Some(*hostile))
            );
        }
        assert!(pats.iter().any(|p| p.display_name.is_none()));
        assert!(pats.iter().any(|p| p.valid_from == no_date_sentinel()));
        assert!(pats.iter().any(|p| !p.is_valid));
        assert!(pats.iter().any(|p| p.target_accounts.is_none()));
        assert!(
            pats.iter()
                .any(|p| p.target_accounts.as_ref().is_some_and(|t| t.len() == 2))
        );
        assert!(pats.iter().any(|p| p.scope == "app_token"));
        assert!(pats.iter().any(|p| p.scope.contains(' ')));
        assert!(pats.iter().any(|p| {
            p.token
                .as_deref()
                .is_some_and(|t| t.contains(SECRET_MARKER))
        }));
        let days = |p: &&SimPat| (p.valid_to - NOW).whole_days();
        assert!(pats.iter().any(|p| p.valid_to < NOW));
        assert!(pats.iter().any(|p| p.valid_to > NOW && days(p) < 7));
        assert!(pats.iter().any(|p| (7..30).contains(&days(p))));
        assert!(pats.iter().any(|p| (30..90).contains(&days(p))));
        assert!(pats.iter().any(|p| days(p) > 365));
        assert!(pats.iter().any(|p| p.valid_to.nanosecond() != 0));
        assert!(pats.iter().any(|p| p.valid_to.nanosecond() == 0));
        assert!(pats.iter().all(|p| p.valid_from <= NOW));
    }

    #[test]
    fn some_users_hold_ssh_keys_with_the_awkward_cases() {
        let org = SimOrg::generate("Fabrikam", &OrgSpec::demo(), NOW);
        let humans: Vec<&SimUser> = org.human_users().collect();
        let holders: Vec<&&SimUser> = humans.iter().filter(|u| !u.ssh_keys.is_empty()).collect();
        let share = holders.len() as f64 / humans.len() as f64;
        assert!(
            (0.12..0.18).contains(&share),
            "{share} of users hold SSH keys"
        );
        assert!(
            holders
                .iter()
                .filter(|u| u.ssh_keys.len() != 25)
                .all(|u| (1..=3).contains(&u.ssh_keys.len()))
        );
        assert!(
            org.users
                .iter()
                .all(|u| u.kind.is_human() || u.ssh_keys.is_empty())
        );
        let keys: Vec<&SimSshKey> = humans.iter().flat_map(|u| &u.ssh_keys).collect();
        let ids: std::collections::HashSet<&str> =
            keys.iter().map(|k| k.authorization_id.as_str()).collect();
        assert_eq!(ids.len(), keys.len(), "authorization ids are unique");
        let pat_ids: std::collections::HashSet<&str> = humans
            .iter()
            .flat_map(|u| &u.pats)
            .map(|p| p.authorization_id.as_str())
            .collect();
        assert!(ids.is_disjoint(&pat_ids));
        assert!(keys.iter().any(|k| k.display_name.is_none()));
        for hostile in HOSTILE_PAT_NAMES {
            assert!(
                keys.iter()
                    .any(|k| k.display_name.as_deref() == Some(*hostile)),
                "{hostile}"
            );
        }
        assert!(keys.iter().any(|k| k.valid_from == no_date_sentinel()));
        assert!(keys.iter().any(|k| k.valid_to < NOW));
        assert!(
            keys.iter()
                .any(|k| (k.valid_to - NOW).whole_days() > 2 * 365)
        );
        assert!(keys.iter().any(|k| !k.is_valid));
        assert!(
            keys.iter()
                .all(|k| k.public_data.starts_with("ssh-ed25519 "))
        );
        assert_eq!(org.ssh_key_count(), keys.len());
    }

    #[test]
    fn ssh_keys_leave_the_users_and_pats_of_a_seed_as_they_were() {
        let with = SimOrg::generate("Fabrikam", &OrgSpec::demo(), NOW);
        let none = OrgSpec {
            share_with_ssh_keys: 0.0,
            heavy_user_ssh_keys: 0,
            ..OrgSpec::demo()
        };
        let mut without = SimOrg::generate("Fabrikam", &none, NOW);
        assert_eq!(without.ssh_key_count(), 0);
        for (a, b) in without.users.iter_mut().zip(&with.users) {
            a.ssh_keys.clone_from(&b.ssh_keys);
        }
        assert_eq!(without, with);
    }

    #[test]
    fn descriptors_are_unique_and_decode_to_ids() {
        let org = SimOrg::generate("Fabrikam", &OrgSpec::with_users(500), NOW);
        let mut seen = std::collections::HashSet::new();
        for u in &org.users {
            assert!(
                seen.insert(u.descriptor.as_str()),
                "duplicate {}",
                u.descriptor
            );
            let (prefix, rest) = u.descriptor.split_once('.').expect("kind prefix");
            assert_eq!(SubjectKind::from_prefix(prefix), Some(u.kind));
            let raw = URL_SAFE_NO_PAD.decode(rest).expect("base64url");
            let text = String::from_utf8(raw).expect("utf8");
            assert!(text.len() >= 36, "{text}");
        }
        let principals: std::collections::HashSet<&str> = org
            .human_users()
            .map(|u| u.principal_name.as_str())
            .collect();
        assert_eq!(principals.len(), org.human_users().count());
    }

    #[test]
    fn small_orgs_still_work() {
        for n in [0, 1, 2, 5] {
            let org = SimOrg::generate("Tiny", &OrgSpec::with_users(n), NOW);
            assert_eq!(org.human_users().count(), n);
        }
    }

    #[test]
    fn ten_thousand_users_generate_with_their_tokens() {
        // How fast is the benchmark's business (`patreport bench` generates 40,000).
        let org = SimOrg::generate("Big", &OrgSpec::with_users(10_000), NOW);
        assert_eq!(org.human_users().count(), 10_000);
        assert!(org.pat_count() > 20_000);
    }
}
