//! JSON shapes the simulator writes, byte-compatible with the real service's examples
//! (`tests/fixtures/ado/`): GraphUser, SessionToken, the Token Admin page wrapper and the
//! .NET `WrappedException` error body, plus the service's datetime and GUID text forms.

use serde::Serialize;
use time::{OffsetDateTime, UtcOffset};

use super::data::{SimPat, SimSshKey, SimUser};
use super::hash::hash_bytes;

/// The GUID the service prints for "no value" (`clientId`, `accessId`, ...).
pub const ZERO_GUID: &str = "00000000-0000-0000-0000-000000000000";

/// Formats 128 bits as a lower-case GUID (`8-4-4-4-12`), as the service prints them.
pub fn guid_from_u128(v: u128) -> String {
    crate::domain::guid(v)
}

/// Parses a GUID in `8-4-4-4-12` form (any hex case); `None` for anything else.
pub fn parse_guid(text: &str) -> Option<u128> {
    let groups: Vec<&str> = text.split('-').collect();
    let lens: Vec<usize> = groups.iter().map(|g| g.len()).collect();
    if lens != [8, 4, 4, 4, 12]
        || !groups
            .iter()
            .all(|g| g.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return None;
    }
    u128::from_str_radix(&groups.concat(), 16).ok()
}

/// Formats a datetime the way the service does: whole seconds without an offset
/// (`2018-07-19T00:00:00`), otherwise 7 fractional digits, with or without `Z` as `zulu` says
/// (`2020-11-23T04:04:38.5233333Z`). The year-1 "no date" sentinel comes out as
/// `0001-01-01T00:00:00`. Precision below 100 ns is dropped; the generator never makes any.
pub fn format_datetime(dt: OffsetDateTime, zulu: bool) -> String {
    let dt = dt.to_offset(UtcOffset::UTC);
    let base = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        dt.year(),
        u8::from(dt.month()),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    );
    if dt.nanosecond() == 0 {
        return base;
    }
    let ticks = dt.nanosecond() / 100;
    format!("{base}.{ticks:07}{}", if zulu { "Z" } else { "" })
}

#[derive(Serialize)]
struct Href {
    href: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Links {
    #[serde(rename = "self")]
    self_: Href,
    memberships: Href,
    membership_state: Href,
    storage_key: Href,
    avatar: Href,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GraphUser<'a> {
    subject_kind: &'static str,
    // Service identities have no metaType in the example, so leave it out rather than null.
    #[serde(skip_serializing_if = "Option::is_none")]
    meta_type: Option<&'a str>,
    domain: &'a str,
    principal_name: &'a str,
    mail_address: &'a str,
    origin: &'a str,
    origin_id: &'a str,
    display_name: &'a str,
    #[serde(rename = "_links")]
    links: Links,
    url: String,
    descriptor: &'a str,
}

impl<'a> GraphUser<'a> {
    fn new(user: &'a SimUser, base: &str, org: &str) -> Self {
        let d = &user.descriptor;
        let link = |resource: &str| Href {
            href: format!("{base}/{org}/_apis/Graph/{resource}/{d}"),
        };
        GraphUser {
            subject_kind: "user",
            meta_type: user.meta_type.as_deref(),
            domain: &user.domain,
            principal_name: &user.principal_name,
            mail_address: &user.mail_address,
            origin: &user.origin,
            origin_id: &user.origin_id,
            display_name: &user.display_name,
            links: Links {
                self_: link("Users"),
                memberships: link("Memberships"),
                membership_state: link("MembershipStates"),
                storage_key: link("StorageKeys"),
                avatar: Href {
                    href: format!("{base}/{org}/_apis/GraphProfile/MemberAvatars/{d}"),
                },
            },
            url: format!("{base}/{org}/_apis/Graph/Users/{d}"),
            descriptor: d,
        }
    }
}

#[derive(Serialize)]
struct Collection<T> {
    count: usize,
    value: Vec<T>,
}

/// The body of one Graph users page: `{"count":n,"value":[GraphUser...]}`.
/// `base` is the scheme and authority the links point at, `org` the organization as named
/// in the request.
pub fn graph_users_page(users: &[&SimUser], base: &str, org: &str) -> Vec<u8> {
    let value: Vec<GraphUser<'_>> = users.iter().map(|u| GraphUser::new(u, base, org)).collect();
    to_json(&Collection {
        count: value.len(),
        value,
    })
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SessionToken<'a> {
    client_id: &'static str,
    access_id: &'static str,
    authorization_id: &'a str,
    host_authorization_id: &'static str,
    user_id: &'a str,
    valid_from: String,
    valid_to: String,
    display_name: Option<&'a str>,
    scope: &'a str,
    target_accounts: Option<&'a [String]>,
    token: Option<&'a str>,
    alternate_token: Option<&'a str>,
    is_valid: bool,
    is_public: bool,
    public_data: Option<&'a str>,
    source: Option<&'a str>,
}

/// The fields a PAT and an SSH key share.
struct Common<'a> {
    authorization_id: &'a str,
    user_id: &'a str,
    valid_from: OffsetDateTime,
    valid_to: OffsetDateTime,
    display_name: Option<&'a str>,
    scope: &'a str,
    is_valid: bool,
}

impl<'a> SessionToken<'a> {
    /// The entry with what a PAT and an SSH key share filled in, and a hash of its id.
    fn common(c: Common<'a>) -> (Self, u64) {
        // Which datetime spelling and which secret field an entry uses is fixed per entry, so
        // every client run sees the same bytes.
        let h = hash_bytes(0x5e55_1011, c.authorization_id.as_bytes());
        let token = SessionToken {
            client_id: ZERO_GUID,
            access_id: ZERO_GUID,
            authorization_id: c.authorization_id,
            host_authorization_id: ZERO_GUID,
            user_id: c.user_id,
            valid_from: format_datetime(c.valid_from, h & 1 == 0),
            valid_to: format_datetime(c.valid_to, h & 2 == 0),
            display_name: c.display_name,
            scope: c.scope,
            target_accounts: None,
            token: None,
            alternate_token: None,
            is_valid: c.is_valid,
            is_public: false,
            public_data: None,
            source: None,
        };
        (token, h)
    }

    fn pat(pat: &'a SimPat) -> Self {
        let (entry, h) = Self::common(Common {
            authorization_id: &pat.authorization_id,
            user_id: &pat.user_id,
            valid_from: pat.valid_from,
            valid_to: pat.valid_to,
            display_name: pat.display_name.as_deref(),
            scope: &pat.scope,
            is_valid: pat.is_valid,
        });
        let token = pat.token.as_deref();
        SessionToken {
            target_accounts: pat.target_accounts.as_deref(),
            token,
            alternate_token: if h & 4 == 0 { token } else { None },
            ..entry
        }
    }

    /// An SSH key: `isPublic: true`, the public key in `publicData`, no organizations.
    fn ssh_key(key: &'a SimSshKey) -> Self {
        let (entry, _) = Self::common(Common {
            authorization_id: &key.authorization_id,
            user_id: &key.user_id,
            valid_from: key.valid_from,
            valid_to: key.valid_to,
            display_name: key.display_name.as_deref(),
            scope: &key.scope,
            is_valid: key.is_valid,
        });
        SessionToken {
            is_public: true,
            public_data: Some(&key.public_data),
            ..entry
        }
    }
}

/// The entries of one Token Admin page: PATs, or (`isPublic=true`) SSH keys.
#[derive(Debug, Clone, Copy)]
pub enum Entries<'a> {
    Pats(&'a [SimPat]),
    SshKeys(&'a [SimSshKey]),
}

impl<'a> Entries<'a> {
    pub fn count(self) -> usize {
        match self {
            Entries::Pats(p) => p.len(),
            Entries::SshKeys(k) => k.len(),
        }
    }

    /// The entries `range` of these (the caller keeps the range in bounds).
    pub fn slice(self, range: std::ops::Range<usize>) -> Entries<'a> {
        match self {
            Entries::Pats(p) => Entries::Pats(&p[range]),
            Entries::SshKeys(k) => Entries::SshKeys(&k[range]),
        }
    }

    /// The entries as SessionTokens; those `revoked` says were revoked show `isValid: false`,
    /// as the service shows revoked tokens.
    fn session_tokens(self, revoked: &dyn Fn(&str) -> bool) -> Vec<SessionToken<'a>> {
        let mut tokens: Vec<SessionToken<'a>> = match self {
            Entries::Pats(p) => p.iter().map(SessionToken::pat).collect(),
            Entries::SshKeys(k) => k.iter().map(SessionToken::ssh_key).collect(),
        };
        for token in &mut tokens {
            token.is_valid = token.is_valid && !revoked(token.authorization_id);
        }
        tokens
    }
}

/// How the last page of a user's PAT listing says "no more pages". The real service's
/// clients disagree on which they expect, so the simulator rotates all four.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageEnd {
    /// `"continuationToken": null`
    Null,
    /// no `continuationToken` field at all
    Missing,
    /// `"continuationToken": ""`
    Empty,
    /// `"continuationToken": "00000000-0000-0000-0000-000000000000"`
    ZeroGuid,
}

impl PageEnd {
    pub const ALL: [PageEnd; 4] = [
        PageEnd::Null,
        PageEnd::Missing,
        PageEnd::Empty,
        PageEnd::ZeroGuid,
    ];
}

/// What follows a page of PATs: a next-page token, or one of the end markers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Continuation {
    Next(String),
    End(PageEnd),
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PagedSessionTokens<'a> {
    value: Vec<SessionToken<'a>>,
    // Outer None = field missing, Some(None) = null.
    #[serde(skip_serializing_if = "Option::is_none")]
    continuation_token: Option<Option<&'a str>>,
}

/// The body of one Token Admin page: `{"value":[SessionToken...],"continuationToken":...}`.
/// `revoked` tells which authorization ids a revocation has made invalid.
pub fn token_page(
    entries: Entries<'_>,
    continuation: &Continuation,
    revoked: &dyn Fn(&str) -> bool,
) -> Vec<u8> {
    let continuation_token = match continuation {
        Continuation::Next(token) => Some(Some(token.as_str())),
        Continuation::End(PageEnd::Null) => Some(None),
        Continuation::End(PageEnd::Missing) => None,
        Continuation::End(PageEnd::Empty) => Some(Some("")),
        Continuation::End(PageEnd::ZeroGuid) => Some(Some(ZERO_GUID)),
    };
    to_json(&PagedSessionTokens {
        value: entries.session_tokens(revoked),
        continuation_token,
    })
}

/// The .NET exception types the simulator reports, with their assembly-qualified names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExceptionType {
    Unauthorized,
    RequestBlocked,
    VersionNotSpecified,
    InvalidPreviewVersion,
    VersionOutOfRange,
    InvalidApiVersion,
    HostDoesNotExist,
    SubjectNotFound,
    Argument,
    ArgumentOutOfRange,
    Http,
    UnsupportedMediaType,
    Internal,
    AccessCheck,
}

impl ExceptionType {
    fn type_name(self) -> &'static str {
        match self {
            Self::Unauthorized => {
                "Microsoft.TeamFoundation.Framework.Server.UnauthorizedRequestException, Microsoft.TeamFoundation.Framework.Server"
            }
            Self::RequestBlocked => {
                "Microsoft.TeamFoundation.Framework.Server.RequestBlockedException, Microsoft.TeamFoundation.Framework.Server"
            }
            Self::VersionNotSpecified => {
                "Microsoft.VisualStudio.Services.WebApi.VssVersionNotSpecifiedException, Microsoft.VisualStudio.Services.WebApi"
            }
            Self::InvalidPreviewVersion => {
                "Microsoft.VisualStudio.Services.WebApi.VssInvalidPreviewVersionException, Microsoft.VisualStudio.Services.WebApi"
            }
            Self::VersionOutOfRange => {
                "Microsoft.VisualStudio.Services.WebApi.VssVersionOutOfRangeException, Microsoft.VisualStudio.Services.WebApi"
            }
            Self::InvalidApiVersion => {
                "Microsoft.VisualStudio.Services.WebApi.VssInvalidApiVersionException, Microsoft.VisualStudio.Services.WebApi"
            }
            Self::HostDoesNotExist => {
                "Microsoft.TeamFoundation.Framework.Server.HostDoesNotExistException, Microsoft.TeamFoundation.Framework.Server"
            }
            Self::SubjectNotFound => {
                "Microsoft.VisualStudio.Services.Graph.GraphSubjectNotFoundException, Microsoft.VisualStudio.Services.WebApi"
            }
            Self::Argument => "System.ArgumentException, mscorlib",
            Self::ArgumentOutOfRange => "System.ArgumentOutOfRangeException, mscorlib",
            Self::Http => "System.Web.HttpException, System.Web",
            Self::UnsupportedMediaType => {
                "System.Net.Http.UnsupportedMediaTypeException, System.Net.Http.Formatting"
            }
            Self::AccessCheck => {
                "Microsoft.TeamFoundation.Framework.Server.AccessCheckException, Microsoft.TeamFoundation.Framework.Server"
            }
            Self::Internal => {
                "Microsoft.TeamFoundation.Framework.Server.TeamFoundationServiceException, Microsoft.TeamFoundation.Framework.Server"
            }
        }
    }

    /// The short name the service puts in `typeKey`.
    pub fn type_key(self) -> &'static str {
        let name = self.type_name();
        let qualified = name.split(',').next().unwrap_or(name);
        qualified.rsplit('.').next().unwrap_or(qualified)
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WrappedException<'a> {
    #[serde(rename = "$id")]
    id: &'static str,
    inner_exception: Option<()>,
    message: &'a str,
    type_name: &'static str,
    type_key: &'static str,
    error_code: i32,
    event_id: i32,
}

/// A `WrappedException` body:
/// `{"$id":"1","innerException":null,"message":…,"typeName":…,"typeKey":…,"errorCode":0,"eventId":3000}`.
pub fn exception(kind: ExceptionType, message: &str) -> Vec<u8> {
    to_json(&WrappedException {
        id: "1",
        inner_exception: None,
        message,
        type_name: kind.type_name(),
        type_key: kind.type_key(),
        error_code: 0,
        event_id: 3000,
    })
}

fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    // Serialising these plain structs into memory cannot fail (no maps with non-string
    // keys, no I/O); an empty body would show up in any test if it ever did.
    serde_json::to_vec(value).unwrap_or_default()
}

/// The page with every `"displayName":"` value starting with an escaped lone surrogate.
pub fn with_lone_surrogate_names(body: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(body);
    text.replace("\"displayName\":\"", "\"displayName\":\"\\ud800")
        .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn datetimes_use_the_service_spellings() {
        assert_eq!(
            format_datetime(datetime!(2018-07-19 0:00 UTC), true),
            "2018-07-19T00:00:00"
        );
        assert_eq!(
            format_datetime(datetime!(2020-11-23 4:04:38.5233333 UTC), true),
            "2020-11-23T04:04:38.5233333Z"
        );
        assert_eq!(
            format_datetime(datetime!(2020-11-23 4:04:38.0000001 UTC), false),
            "2020-11-23T04:04:38.0000001"
        );
        assert_eq!(
            format_datetime(datetime!(0001-01-01 0:00 UTC), false),
            "0001-01-01T00:00:00"
        );
    }

    #[test]
    fn guids_round_trip() {
        let v = 0x0123_4567_89ab_cdef_0123_4567_89ab_cdef_u128;
        let g = guid_from_u128(v);
        assert_eq!(g, "01234567-89ab-cdef-0123-456789abcdef");
        assert_eq!(parse_guid(&g), Some(v));
        assert_eq!(parse_guid(&g.to_uppercase()), Some(v));
        assert_eq!(parse_guid("0123456789abcdef0123456789abcdef"), None);
        assert_eq!(parse_guid("not-a-guid"), None);
    }

    #[test]
    fn exception_body_has_the_wrapped_exception_shape() {
        let body = exception(ExceptionType::Unauthorized, "TF400813: nope");
        let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(v["$id"], "1");
        assert!(v["innerException"].is_null());
        assert_eq!(v["typeKey"], "UnauthorizedRequestException");
        assert_eq!(v["errorCode"], 0);
        assert_eq!(v["eventId"], 3000);
        assert_eq!(ExceptionType::Argument.type_key(), "ArgumentException");
    }

    #[test]
    fn page_end_markers_serialise_as_the_four_variants() {
        let text = |end| {
            let page = token_page(Entries::Pats(&[]), &Continuation::End(end), &|_| false);
            String::from_utf8(page).expect("utf8")
        };
        assert_eq!(
            text(PageEnd::Null),
            r#"{"value":[],"continuationToken":null}"#
        );
        assert_eq!(text(PageEnd::Missing), r#"{"value":[]}"#);
        assert_eq!(
            text(PageEnd::Empty),
            r#"{"value":[],"continuationToken":""}"#
        );
        assert_eq!(
            text(PageEnd::ZeroGuid),
            format!(r#"{{"value":[],"continuationToken":"{ZERO_GUID}"}}"#)
        );
    }
}
