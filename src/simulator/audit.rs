//! The organization's Audit Log (docs/contracts.md, "Audit Log"): the events, their ids and
//! wire shape (`DecoratedAuditLogEntry`), and the `Audit Log - Query` page the server answers
//! `GET {org}/_apis/audit/auditlog` with.
//!
//! Events are kept newest first, keyed by their id: the service's id starts with
//! `DateTime.MaxValue.Ticks − timestamp.Ticks`, so ascending ids are descending time, and a
//! continuation token (the id of a page's last, oldest entry) is simply "continue after this
//! key".

use std::collections::BTreeMap;
use std::ops::Bound;

use axum::http::StatusCode;
use serde::Serialize;
use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime, UtcOffset};

use super::data::{SimPat, SimSshKey, SimUser};
use super::hash::{hash_bytes, mix64};
use super::reply::Reply;
use super::wire::{ExceptionType, ZERO_GUID, guid_from_u128, parse_guid};

/// `DateTime.MaxValue.Ticks`: the id's first segment is this minus the event's ticks.
const MAX_TICKS: u64 = 3_155_378_975_999_999_999;
/// .NET ticks (100 ns since 0001-01-01) at the Unix epoch.
const UNIX_EPOCH_TICKS: i128 = 621_355_968_000_000_000;

/// The Azure DevOps service identity that system events (expiry, leak detection) name.
pub const SYSTEM_ACTOR_ID: &str = "00000002-0000-8888-8000-000000000000";
/// The id segment the spec example shows for events made by people (an inferred "host"
/// part; system events carry [`SYSTEM_ACTOR_ID`] there, as in the example).
const USER_SEGMENT: &str = "00000064-0000-8888-8000-000000000000";

/// The identity the simulator's own credentials (`DEMO_PAT`, `DEMO_BEARER`) stand for when
/// they revoke through `POST …/tokenadmin/revocations`, and the admin of
/// [`Mutations::revoke_by_admin`](super::Mutations::revoke_by_admin). It holds no PAT of
/// the org and is not in the Graph listing.
pub const TOKEN_ADMIN_USER_ID: &str = "5a1ead00-0000-4000-8000-00000000ad01";
pub const TOKEN_ADMIN_DISPLAY_NAME: &str = "Token Administrator (simulated)";
pub const TOKEN_ADMIN_UPN: &str = "token.admin@simulated.example.com";
/// The authorization id of `DEMO_PAT` as the audit log names it when the admin calls with it.
pub const DEMO_PAT_AUTHORIZATION_ID: &str = "de300000-0000-4000-8000-0000000000a1";

/// A typical browser user agent (the Auditing UI, the PAT page).
pub const BROWSER_USER_AGENT: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0";
/// What git for Windows sends.
pub const GIT_USER_AGENT: &str = "git/2.43.0";

/// Whether the org's audit log can be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditMode {
    /// Auditing is on and the caller may view the log.
    Enabled,
    /// Auditing is off (the "Log Audit Events" policy, or an org not backed by Entra ID): 403.
    Off,
    /// Auditing is on but the caller lacks "View audit log": 403.
    NoPermission,
}

/// The audit log's settings (`SimConfig::audit`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditConfig {
    pub mode: AuditMode,
    /// Events older than this before the request's time are not returned (the service keeps
    /// 90 days, not configurable).
    pub retention: Duration,
    /// `batchSize` when the request has none (the Auditing UI loads 200).
    pub default_batch_size: usize,
    /// Larger `batchSize` values are accepted but served at most this many per page: the
    /// service accepts large values without promising to honour them.
    pub max_batch_size: usize,
    /// Serve fewer entries than `batchSize` on some pages, mid-listing too, so a client
    /// cannot infer the end from a short page.
    pub uneven_pages: bool,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            mode: AuditMode::Enabled,
            retention: Duration::days(90),
            default_batch_size: 200,
            max_batch_size: 1_000,
            uneven_pages: true,
        }
    }
}

/// `category` of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditCategory {
    Unknown,
    Modify,
    Remove,
    Create,
    Access,
    Execute,
}

impl AuditCategory {
    fn wire(self) -> (&'static str, &'static str) {
        match self {
            Self::Unknown => ("unknown", "Unknown"),
            Self::Modify => ("modify", "Modify"),
            Self::Remove => ("remove", "Remove"),
            Self::Create => ("create", "Create"),
            Self::Access => ("access", "Access"),
            Self::Execute => ("execute", "Execute"),
        }
    }
}

/// Who did it.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditActor {
    pub cuid: String,
    pub user_id: String,
    /// All zeros unless the actor is a service principal.
    pub client_id: String,
    pub upn: Option<String>,
    pub display_name: String,
    pub image_url: Option<String>,
    /// `""` (system), `AAD`, `AAD_Cookie`, `FedAuth`, `PAT_Unscoped authorizationId: <id>`…
    pub authentication_mechanism: String,
    /// `None` for system events, as in the spec example.
    pub ip_address: Option<String>,
    pub user_agent: String,
}

impl AuditActor {
    /// The Azure DevOps service itself, as the spec example shows it.
    pub fn system() -> Self {
        AuditActor {
            cuid: ZERO_GUID.into(),
            user_id: SYSTEM_ACTOR_ID.into(),
            client_id: ZERO_GUID.into(),
            upn: None,
            display_name: "Azure DevOps Service".into(),
            image_url: None,
            authentication_mechanism: String::new(),
            ip_address: None,
            user_agent: String::new(),
        }
    }

    /// A person of the org, acting with `mechanism` from `user_agent`.
    pub fn user(user: &SimUser, mechanism: &str, user_agent: &str) -> Self {
        let h = hash_bytes(0xC01D_A0D1, user.descriptor.as_bytes());
        AuditActor {
            cuid: guid_from_u128(u128::from(h) << 64 | u128::from(mix64(h))),
            user_id: user.user_id(),
            client_id: ZERO_GUID.into(),
            upn: Some(user.principal_name.clone()),
            display_name: user.display_name.clone(),
            image_url: Some(format!(
                "https://dev.azure.com/_apis/GraphProfile/MemberAvatars/{}",
                user.descriptor
            )),
            authentication_mechanism: mechanism.into(),
            ip_address: Some(format!("203.0.113.{}", 1 + h % 250)),
            user_agent: user_agent.into(),
        }
    }

    /// The simulator's token administrator ([`TOKEN_ADMIN_USER_ID`]).
    pub fn token_admin(mechanism: &str, user_agent: &str) -> Self {
        AuditActor {
            cuid: "5a1ead00-0000-4000-8000-00000000cd01".into(),
            user_id: TOKEN_ADMIN_USER_ID.into(),
            client_id: ZERO_GUID.into(),
            upn: Some(TOKEN_ADMIN_UPN.into()),
            display_name: TOKEN_ADMIN_DISPLAY_NAME.into(),
            image_url: None,
            authentication_mechanism: mechanism.into(),
            ip_address: Some("198.51.100.7".into()),
            user_agent: user_agent.into(),
        }
    }

    fn is_system(&self) -> bool {
        self.user_id == SYSTEM_ACTOR_ID
    }
}

/// The `authenticationMechanism` of a request made with the PAT `authorization_id`.
pub fn pat_mechanism(authorization_id: &str) -> String {
    format!("PAT_Unscoped authorizationId: {authorization_id}")
}

/// One entry of the log.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEvent {
    /// `"{MaxTicks − ticks};{guid};{guid}"`; sorts newest first.
    pub id: String,
    pub correlation_id: String,
    pub activity_id: String,
    pub actor: AuditActor,
    /// UTC, to 100 ns.
    pub timestamp: OffsetDateTime,
    pub action_id: String,
    pub area: String,
    pub category: AuditCategory,
    /// `(projectId, projectName)` for project-scoped events.
    pub project: Option<(String, String)>,
    pub data: Map<String, Value>,
    pub details: String,
}

/// What an event is, before the log gives it its ids.
#[derive(Debug, Clone)]
pub struct EventDraft {
    pub at: OffsetDateTime,
    pub actor: AuditActor,
    pub action_id: String,
    pub area: String,
    pub category: AuditCategory,
    pub project: Option<(String, String)>,
    pub data: Map<String, Value>,
    pub details: String,
    /// Events of one action share it (e.g. a leak's discovery and its revocation).
    pub correlation_id: Option<String>,
}

/// The six `Token.Pat*` actions (docs/contracts.md, "Audit Log").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatAction {
    Create,
    Update,
    Revoke,
    Expired,
    SystemRevoke,
    PublicDiscovery,
}

impl PatAction {
    pub fn action_id(self) -> &'static str {
        match self {
            Self::Create => "Token.PatCreateEvent",
            Self::Update => "Token.PatUpdateEvent",
            Self::Revoke => "Token.PatRevokeEvent",
            Self::Expired => "Token.PatExpiredEvent",
            Self::SystemRevoke => "Token.PatSystemRevokeEvent",
            Self::PublicDiscovery => "Token.PatPublicDiscoveryEvent",
        }
    }

    fn category(self) -> AuditCategory {
        match self {
            Self::Create => AuditCategory::Create,
            Self::Update | Self::Expired => AuditCategory::Modify,
            Self::Revoke | Self::SystemRevoke => AuditCategory::Remove,
            Self::PublicDiscovery => AuditCategory::Access,
        }
    }
}

/// A `Token.Pat*` event about `pat` of `owner`, done by `actor`. `data` holds what the docs
/// and public clients show, and deliberately no authorization id and no owner id.
pub fn pat_event(
    action: PatAction,
    pat: &SimPat,
    owner: &SimUser,
    actor: AuditActor,
    at: OffsetDateTime,
) -> EventDraft {
    let name = pat.display_name.clone().unwrap_or_default();
    let mut data = Map::new();
    data.insert("DisplayName".into(), Value::String(name.clone()));
    let details = match action {
        PatAction::SystemRevoke | PatAction::PublicDiscovery => {
            data.insert(
                "OwnerName".into(),
                Value::String(owner.display_name.clone()),
            );
            let what = if action == PatAction::SystemRevoke {
                "was revoked by the system"
            } else {
                "was discovered in a public repository"
            };
            format!(
                "Personal Access Token \"{name}\" associated with user \"{}\" {what}.",
                owner.display_name
            )
        }
        _ => {
            let scopes: Vec<Value> = pat
                .scope
                .split_whitespace()
                .map(|s| Value::String(s.into()))
                .collect();
            data.insert("Scopes".into(), Value::Array(scopes));
            data.insert("ValidFrom".into(), Value::String(data_time(pat.valid_from)));
            data.insert("ValidTo".into(), Value::String(data_time(pat.valid_to)));
            let (operation, verb) = match action {
                PatAction::Create => ("Create", "was created"),
                PatAction::Update => ("Update", "was updated"),
                PatAction::Revoke => ("Revoke", "was revoked"),
                _ => ("Expire", "expired"),
            };
            data.insert("OperationType".into(), Value::String(operation.into()));
            data.insert(
                "TokenType".into(),
                Value::String("PersonalAccessToken".into()),
            );
            format!("Personal Access Token \"{name}\" {verb}.")
        }
    };
    EventDraft {
        at,
        actor,
        action_id: action.action_id().into(),
        area: "Token".into(),
        category: action.category(),
        project: None,
        data,
        details,
        correlation_id: None,
    }
}

/// `Token.SshRevokeEvent` for an SSH key a revocation reached.
pub fn ssh_revoke_event(key: &SimSshKey, actor: AuditActor, at: OffsetDateTime) -> EventDraft {
    let name = key.display_name.clone().unwrap_or_default();
    let mut data = Map::new();
    data.insert("DisplayName".into(), Value::String(name.clone()));
    data.insert("ValidFrom".into(), Value::String(data_time(key.valid_from)));
    data.insert("ValidTo".into(), Value::String(data_time(key.valid_to)));
    data.insert("OperationType".into(), Value::String("Revoke".into()));
    data.insert("TokenType".into(), Value::String("SshPublicKey".into()));
    EventDraft {
        at,
        actor,
        action_id: "Token.SshRevokeEvent".into(),
        area: "Token".into(),
        category: AuditCategory::Remove,
        project: None,
        data,
        details: format!("SSH Key \"{name}\" was revoked."),
        correlation_id: None,
    }
}

/// .NET ticks of `at` (UTC), clamped to `DateTime`'s range.
pub fn ticks(at: OffsetDateTime) -> u64 {
    let t = at.unix_timestamp_nanos() / 100 + UNIX_EPOCH_TICKS;
    u64::try_from(t.clamp(0, i128::from(MAX_TICKS))).unwrap_or(0)
}

/// `at` cut to the 100 ns the service keeps.
fn to_ticks_precision(at: OffsetDateTime) -> OffsetDateTime {
    let at = at.to_offset(UtcOffset::UTC);
    at.replace_nanosecond(at.nanosecond() / 100 * 100)
        .unwrap_or(at)
}

/// `2019-03-05T14:05:02.1460838+00:00`, the entry `timestamp` form of the spec example.
fn wire_time(at: OffsetDateTime) -> String {
    let at = at.to_offset(UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:07}+00:00",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.nanosecond() / 100
    )
}

/// `2026-03-01T12:00:00.0000000Z`, for dates inside `data`.
fn data_time(at: OffsetDateTime) -> String {
    let text = wire_time(at);
    format!("{}Z", text.trim_end_matches("+00:00"))
}

/// The org's audit log, newest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditLog {
    entries: BTreeMap<String, AuditEvent>,
    /// Events issued so far: the ids' GUID parts come from it, so the same history always
    /// gets the same ids.
    issued: u64,
    seed: u64,
}

impl AuditLog {
    /// An empty log whose ids derive from `seed`.
    pub fn new(seed: u64) -> Self {
        AuditLog {
            seed,
            ..Self::default()
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every event, newest first (the service's order).
    pub fn newest_first(&self) -> impl DoubleEndedIterator<Item = &AuditEvent> {
        self.entries.values()
    }

    /// How many ids the log has handed out: grows with every event and correlation id, also
    /// when events move to another log, so it tells one mutation from the next.
    pub fn issued(&self) -> u64 {
        self.issued
    }

    /// A new, empty log that continues this one's id sequence under another stream (the
    /// server's own log, beside the org's).
    pub(crate) fn sibling(&self, stream: u64) -> AuditLog {
        AuditLog::new(mix64(self.seed ^ stream))
    }

    /// The event with this id.
    pub fn get(&self, id: &str) -> Option<&AuditEvent> {
        self.entries.get(id)
    }

    /// Records a drafted event and returns its id.
    pub fn record(&mut self, draft: EventDraft) -> String {
        self.issued += 1;
        let mut guid = || {
            let hi = mix64(self.seed ^ mix64(self.issued));
            let lo = mix64(hi ^ 0xA0D1_7106);
            self.issued += 1;
            guid_from_u128(((u128::from(hi) << 64 | u128::from(lo)) & !(0xF << 76)) | (0x4 << 76))
        };
        let at = to_ticks_precision(draft.at);
        let segment = if draft.actor.is_system() {
            SYSTEM_ACTOR_ID
        } else {
            USER_SEGMENT
        };
        let key = MAX_TICKS - ticks(at);
        let id = format!("{key:019};{segment};{}", guid());
        let correlation_id = draft.correlation_id.unwrap_or_else(&mut guid);
        let activity_id = guid();
        let event = AuditEvent {
            id: id.clone(),
            correlation_id,
            activity_id,
            actor: draft.actor,
            timestamp: at,
            action_id: draft.action_id,
            area: draft.area,
            category: draft.category,
            project: draft.project,
            data: draft.data,
            details: draft.details,
        };
        self.entries.insert(id.clone(), event);
        id
    }

    /// Moves `other`'s events into this log.
    pub fn append(&mut self, other: &mut AuditLog) {
        self.entries.append(&mut other.entries);
    }

    /// Drops events older than `cutoff` (the service deletes them after the retention).
    pub fn drop_older_than(&mut self, cutoff: OffsetDateTime) {
        self.entries.retain(|_, e| e.timestamp >= cutoff);
    }

    /// A fresh correlation id for events that belong together.
    pub fn correlation(&mut self) -> String {
        self.issued += 1;
        let hi = mix64(self.seed ^ 0xC022 ^ mix64(self.issued));
        guid_from_u128(
            ((u128::from(hi) << 64 | u128::from(mix64(hi))) & !(0xF << 76)) | (0x4 << 76),
        )
    }
}

/// A query's parameters, checked.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AuditQuery {
    start: Option<OffsetDateTime>,
    end: Option<OffsetDateTime>,
    batch_size: usize,
    after: Option<String>,
}

/// A refused query: the exception type and message of its 400.
pub(crate) type Refusal = (ExceptionType, String);

fn bad(kind: ExceptionType, message: &str) -> Refusal {
    (kind, message.to_string())
}

/// Whether `token` has the shape of an entry id (`{19 digits};{guid};{guid}`).
fn well_formed_id(token: &str) -> bool {
    let parts: Vec<&str> = token.split(';').collect();
    matches!(parts.as_slice(), [key, a, b]
        if key.len() == 19 && key.bytes().all(|b| b.is_ascii_digit())
            && parse_guid(a).is_some() && parse_guid(b).is_some())
}

impl AuditQuery {
    /// Reads `startTime`, `endTime`, `batchSize`, `continuationToken` (and accepts
    /// `skipAggregation`); `get` looks a parameter up by name.
    pub fn parse<'a>(
        get: impl Fn(&str) -> Option<&'a str>,
        config: &AuditConfig,
    ) -> Result<AuditQuery, Refusal> {
        let time = |name: &str| -> Result<Option<OffsetDateTime>, Refusal> {
            match get(name).filter(|v| !v.is_empty()) {
                None => Ok(None),
                Some(text) => OffsetDateTime::parse(text, &Rfc3339)
                    .map(Some)
                    .map_err(|_| {
                        bad(
                            ExceptionType::Argument,
                            &format!(
                                "The value '{text}' is not a valid DateTime. Send an ISO 8601 \
                                 date-time such as 2026-03-01T12:00:00Z.\r\nParameter name: {name}"
                            ),
                        )
                    }),
            }
        };
        let start = time("startTime")?;
        let end = time("endTime")?;
        if let (Some(s), Some(e)) = (start, end)
            && s > e
        {
            return Err(bad(
                ExceptionType::Argument,
                "startTime must not be later than endTime.\r\nParameter name: startTime",
            ));
        }
        let batch_size = match get("batchSize").map(str::parse::<i64>) {
            None => config.default_batch_size,
            Some(Ok(n)) if n >= 1 => {
                usize::try_from(n).map_or(config.max_batch_size, |n| n.min(config.max_batch_size))
            }
            Some(Ok(_)) => {
                return Err(bad(
                    ExceptionType::ArgumentOutOfRange,
                    "Specified argument was out of the range of valid values: batchSize must be \
                     positive.\r\nParameter name: batchSize",
                ));
            }
            Some(Err(_)) => {
                return Err(bad(
                    ExceptionType::Argument,
                    "The value of batchSize is not a valid integer.\r\nParameter name: batchSize",
                ));
            }
        };
        if let Some(v) = get("skipAggregation")
            && !v.eq_ignore_ascii_case("true")
            && !v.eq_ignore_ascii_case("false")
        {
            return Err(bad(
                ExceptionType::Argument,
                "The value of skipAggregation is not a valid boolean.\r\nParameter name: skipAggregation",
            ));
        }
        let after = match get("continuationToken").filter(|t| !t.is_empty()) {
            None => None,
            Some(token) if well_formed_id(token) => Some(token.to_string()),
            Some(_) => {
                return Err(bad(
                    ExceptionType::Argument,
                    "The continuation token is not valid. Send the continuationToken of the \
                     previous page back unchanged.\r\nParameter name: continuationToken",
                ));
            }
        };
        Ok(AuditQuery {
            start,
            end,
            batch_size: batch_size.max(1),
            after,
        })
    }
}

/// The organization an answer is about: `scopeId`, `scopeDisplayName`.
pub(crate) struct Scope<'a> {
    pub id: String,
    pub name: &'a str,
}

impl Scope<'_> {
    pub fn of(org: &str) -> Scope<'_> {
        let h = hash_bytes(0x005C_0E1D, org.to_ascii_lowercase().as_bytes());
        Scope {
            id: guid_from_u128(
                ((u128::from(h) << 64 | u128::from(mix64(h))) & !(0xF << 76)) | (0x4 << 76),
            ),
            name: org,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Entry<'a> {
    id: &'a str,
    correlation_id: &'a str,
    activity_id: &'a str,
    #[serde(rename = "actorCUID")]
    actor_cuid: &'a str,
    actor_user_id: &'a str,
    actor_client_id: &'a str,
    #[serde(rename = "actorUPN")]
    actor_upn: Option<&'a str>,
    authentication_mechanism: &'a str,
    timestamp: String,
    scope_type: &'static str,
    scope_display_name: String,
    scope_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    project_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    project_name: Option<&'a str>,
    ip_address: Option<&'a str>,
    user_agent: &'a str,
    action_id: &'a str,
    data: &'a Map<String, Value>,
    details: &'a str,
    area: &'a str,
    category: &'static str,
    category_display_name: &'static str,
    actor_display_name: &'a str,
    actor_image_url: Option<&'a str>,
}

impl<'a> Entry<'a> {
    fn new(e: &'a AuditEvent, scope: &'a Scope<'a>) -> Self {
        let (category, category_display_name) = e.category.wire();
        Entry {
            id: &e.id,
            correlation_id: &e.correlation_id,
            activity_id: &e.activity_id,
            actor_cuid: &e.actor.cuid,
            actor_user_id: &e.actor.user_id,
            actor_client_id: &e.actor.client_id,
            actor_upn: e.actor.upn.as_deref(),
            authentication_mechanism: &e.actor.authentication_mechanism,
            timestamp: wire_time(e.timestamp),
            scope_type: "organization",
            scope_display_name: format!("{} (Organization)", scope.name),
            scope_id: &scope.id,
            project_id: e.project.as_ref().map(|p| p.0.as_str()),
            project_name: e.project.as_ref().map(|p| p.1.as_str()),
            ip_address: e.actor.ip_address.as_deref(),
            user_agent: &e.actor.user_agent,
            action_id: &e.action_id,
            data: &e.data,
            details: &e.details,
            area: &e.area,
            category,
            category_display_name,
            actor_display_name: &e.actor.display_name,
            actor_image_url: e.actor.image_url.as_deref(),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct QueryResult<'a> {
    decorated_audit_log_entries: Vec<Entry<'a>>,
    continuation_token: Option<&'a str>,
    has_more: bool,
}

/// How many entries the page after `after` holds: `batch`, or on some pages fewer (at
/// least one), chosen from the position so a repeated request gets the same page.
fn page_size(key: u64, after: Option<&str>, batch: usize, uneven: bool) -> usize {
    if !uneven || batch < 2 {
        return batch;
    }
    let h = hash_bytes(key, after.unwrap_or("").as_bytes());
    if h.is_multiple_of(3) {
        1 + (mix64(h) % batch as u64) as usize
    } else {
        batch
    }
}

/// The body of one `Audit Log - Query` page: entries with `start <= timestamp < end`, not
/// older than the retention before `now`, newest first, after the continuation token.
/// Returns the body and how many entries it holds.
pub(crate) fn query_page(
    log: &AuditLog,
    query: &AuditQuery,
    now: OffsetDateTime,
    config: &AuditConfig,
    scope: &Scope<'_>,
    key: u64,
) -> (Vec<u8>, usize) {
    let floor = now - config.retention;
    let start = query.start.map_or(floor, |s| s.max(floor));
    let end = query.end.unwrap_or(now + Duration::days(36_500));
    let lower = match &query.after {
        Some(token) => Bound::Excluded(token.clone()),
        None => Bound::Unbounded,
    };
    let mut matching = log
        .entries
        .range((lower, Bound::Unbounded))
        .map(|(_, e)| e)
        .skip_while(|e| e.timestamp >= end)
        .take_while(|e| e.timestamp >= start);
    let size = page_size(
        key,
        query.after.as_deref(),
        query.batch_size,
        config.uneven_pages,
    );
    let page: Vec<&AuditEvent> = matching.by_ref().take(size).collect();
    let has_more = matching.next().is_some();
    // The last entry's id, also on the last page (as the spec example shows); an empty answer
    // has no entry to name.
    let continuation = page.last().map(|e| e.id.as_str());
    let body = serde_json::to_vec(&QueryResult {
        decorated_audit_log_entries: page.iter().map(|e| Entry::new(e, scope)).collect(),
        continuation_token: continuation,
        has_more,
    })
    .unwrap_or_default();
    (body, page.len())
}

/// The 403 for an org whose log cannot be read.
pub(crate) fn forbidden(mode: AuditMode) -> Reply {
    let message = match mode {
        AuditMode::NoPermission => {
            "Access denied. The caller needs the 'View audit log' permission of the \
             organization (Project Collection Administrators have it) and a credential with the \
             vso.auditlog scope."
        }
        _ => {
            "Auditing is not enabled for this organization. Turn on 'Log Audit Events' in \
             Organization settings > Policies; auditing is available only for organizations \
             backed by Microsoft Entra ID."
        }
    };
    Reply::error(StatusCode::FORBIDDEN, ExceptionType::AccessCheck, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn ids_count_ticks_down_from_the_maximum_as_in_the_spec_example() {
        let at = datetime!(2019-03-05 14:05:02.1460838 UTC);
        assert_eq!(MAX_TICKS - ticks(at), 2_518_505_060_978_539_161);
        let at = datetime!(2019-03-05 14:00:35.5034419 UTC);
        assert_eq!(MAX_TICKS - ticks(at), 2_518_505_063_644_965_580);
        assert_eq!(wire_time(at), "2019-03-05T14:00:35.5034419+00:00");
        assert_eq!(data_time(at), "2019-03-05T14:00:35.5034419Z");
    }

    #[test]
    fn ids_are_well_formed_and_sort_newest_first() {
        let mut log = AuditLog::new(1);
        let draft = |at| EventDraft {
            at,
            actor: AuditActor::system(),
            action_id: "X.Y".into(),
            area: "X".into(),
            category: AuditCategory::Unknown,
            project: None,
            data: Map::new(),
            details: String::new(),
            correlation_id: None,
        };
        let old = log.record(draft(datetime!(2026-01-01 00:00 UTC)));
        let new = log.record(draft(datetime!(2026-02-01 00:00 UTC)));
        assert!(well_formed_id(&old) && well_formed_id(&new));
        let order: Vec<&str> = log.newest_first().map(|e| e.id.as_str()).collect();
        assert_eq!(order, [new.as_str(), old.as_str()]);
        assert!(!well_formed_id("123;x;y"));
    }
}
