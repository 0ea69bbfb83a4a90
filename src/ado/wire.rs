//! Wire shapes of the Token Admin answers, read leniently.
//!
//! We parse PAT pages into our own types rather than the crate's `SessionToken` so that the
//! `token` and `alternateToken` fields are never read into memory at all: serde skips
//! unknown fields, and these two are deliberately not declared.

use serde::{Deserialize, Deserializer};
use time::OffsetDateTime;

/// `TokenAdminPagedSessionTokens`: one page of a user's PATs.
#[derive(Debug, Deserialize)]
pub struct PatPage {
    #[serde(default, deserialize_with = "null_as_default")]
    pub value: Vec<SessionToken>,
    /// Next page, if any; see `paging::pat_continuation` for the end markers.
    #[serde(rename = "continuationToken", default)]
    pub continuation_token: Option<String>,
}

/// `SessionToken`, minus the secret fields.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionToken {
    #[serde(default)]
    pub authorization_id: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub scope: Option<String>,
    #[serde(default)]
    pub target_accounts: Option<Vec<String>>,
    #[serde(default, deserialize_with = "lenient_datetime")]
    pub valid_from: Option<OffsetDateTime>,
    #[serde(default, deserialize_with = "lenient_datetime")]
    pub valid_to: Option<OffsetDateTime>,
    #[serde(default)]
    pub is_valid: Option<bool>,
}

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn lenient_datetime<'de, D: Deserializer<'de>>(d: D) -> Result<Option<OffsetDateTime>, D::Error> {
    match Option::<String>::deserialize(d)? {
        None => Ok(None),
        Some(text) => parse_datetime(&text).map_err(serde::de::Error::custom),
    }
}

pub use crate::domain::timestamp::parse_service_datetime as parse_datetime;

/// `AuditLogQueryResult`, read leniently: real clients find the fields at the top level, the
/// spec's example wraps them in `value`; every field may be missing or null.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditPage {
    #[serde(default, deserialize_with = "null_as_default")]
    pub decorated_audit_log_entries: Vec<AuditEntry>,
    #[serde(default)]
    pub continuation_token: Option<String>,
    #[serde(default)]
    pub has_more: Option<bool>,
    #[serde(default)]
    pub value: Option<Box<AuditPage>>,
}

/// `DecoratedAuditLogEntry`: only what the refresh and the signals read.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "lenient_datetime")]
    pub timestamp: Option<OffsetDateTime>,
    #[serde(default)]
    pub action_id: Option<String>,
    #[serde(default)]
    pub area: Option<String>,
    #[serde(default)]
    pub actor_user_id: Option<String>,
    #[serde(default, rename = "actorUPN")]
    pub actor_upn: Option<String>,
    #[serde(default)]
    pub actor_display_name: Option<String>,
    #[serde(default)]
    pub authentication_mechanism: Option<String>,
    #[serde(default)]
    pub user_agent: Option<String>,
    #[serde(default)]
    pub ip_address: Option<String>,
    #[serde(default)]
    pub data: Option<serde_json::Map<String, serde_json::Value>>,
}

impl AuditPage {
    /// Our page: events with an id and a time, the count of those without, and the next
    /// token only when `hasMore` (the service sends a token on the last page too).
    pub fn into_page(self) -> Result<super::AuditPage, super::AdoError> {
        let page = match self.value {
            Some(inner) if self.decorated_audit_log_entries.is_empty() => *inner,
            _ => self,
        };
        let mut unreadable = 0;
        let events: Vec<crate::auditlog::AuditEvent> = page
            .decorated_audit_log_entries
            .into_iter()
            .filter_map(|e| {
                let (Some(id), Some(timestamp)) = (e.id.filter(|i| !i.is_empty()), e.timestamp)
                else {
                    unreadable += 1;
                    return None;
                };
                let blank = |v: Option<String>| v.filter(|t| !t.trim().is_empty());
                Some(crate::auditlog::AuditEvent {
                    id,
                    timestamp,
                    action_id: e.action_id.unwrap_or_default(),
                    area: e.area.unwrap_or_default(),
                    actor_user_id: blank(e.actor_user_id),
                    actor_upn: blank(e.actor_upn),
                    actor_display_name: blank(e.actor_display_name),
                    authentication_mechanism: blank(e.authentication_mechanism),
                    user_agent: blank(e.user_agent),
                    ip_address: blank(e.ip_address),
                    data: e.data.unwrap_or_default(),
                })
            })
            .collect();
        // The log is newest first: ending early would silently drop the window's oldest
        // events, so a page that does not say plainly whether more follow is an error.
        let token = page.continuation_token.filter(|t| !t.trim().is_empty());
        let continuation = match (page.has_more, token) {
            (Some(false), _) => None,
            (Some(true), Some(token)) => Some(token),
            (None, None) if events.is_empty() && unreadable == 0 => None,
            (more, _) => {
                return Err(super::AdoError::Paging(format!(
                    "the audit log answered hasMore {} without a usable continuation token",
                    more.map_or("missing".to_owned(), |m| m.to_string())
                )));
            }
        };
        Ok(super::AuditPage {
            events,
            unreadable,
            continuation,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn audit_pages_read_at_the_top_level_or_wrapped_and_end_on_has_more() {
        let top = r#"{"decoratedAuditLogEntries":[{"id":"1;a;b","timestamp":"2019-03-05T14:05:02.1460838Z",
            "actionId":"Token.PatCreateEvent","area":"Token","actorUPN":"a@x","data":{"DisplayName":"t"},
            "ipAddress":null,"userAgent":""}],"continuationToken":"1;a;b","hasMore":false}"#;
        let page = serde_json::from_str::<AuditPage>(top)
            .unwrap()
            .into_page()
            .unwrap();
        assert_eq!(page.events.len(), 1);
        assert_eq!(page.continuation, None, "hasMore false ends the log");
        assert_eq!(page.events[0].actor_upn.as_deref(), Some("a@x"));
        assert_eq!(page.events[0].user_agent, None);
        let wrapped = r#"{"count":1,"value":{"decoratedAuditLogEntries":[{"id":"2","timestamp":"2019-03-05T14:00:35Z"},
            {"timestamp":"2019-03-05T14:00:35Z"}],"continuationToken":"2","hasMore":true}}"#;
        let page = serde_json::from_str::<AuditPage>(wrapped)
            .unwrap()
            .into_page()
            .unwrap();
        assert_eq!(page.events.len(), 1);
        assert_eq!(
            page.unreadable, 1,
            "an entry without an id is counted, not kept"
        );
        assert_eq!(page.continuation.as_deref(), Some("2"));
        for unclear in [
            r#"{"decoratedAuditLogEntries":[{"id":"3","timestamp":"2019-03-05T14:00:35Z"}],"continuationToken":"3"}"#,
            r#"{"decoratedAuditLogEntries":[],"continuationToken":" ","hasMore":true}"#,
        ] {
            let page = serde_json::from_str::<AuditPage>(unclear).unwrap();
            assert!(
                matches!(page.into_page(), Err(crate::ado::AdoError::Paging(_))),
                "{unclear}"
            );
        }
    }

    #[test]
    fn dates_without_offset_are_utc() {
        assert_eq!(
            parse_datetime("2018-07-19T00:00:00").unwrap(),
            Some(datetime!(2018-07-19 0:00 UTC))
        );
    }

    #[test]
    fn seven_fractional_digits_parse() {
        let d = parse_datetime("2020-11-23T04:04:38.5233333Z")
            .unwrap()
            .unwrap();
        assert_eq!(
            d.unix_timestamp(),
            datetime!(2020-11-23 04:04:38 UTC).unix_timestamp()
        );
        assert_eq!(d.millisecond(), 523);
    }

    #[test]
    fn offsets_are_kept() {
        let d = parse_datetime("2026-01-05T10:20:30+02:00")
            .unwrap()
            .unwrap();
        assert_eq!(
            d.unix_timestamp(),
            datetime!(2026-01-05 08:20:30 UTC).unix_timestamp()
        );
    }

    #[test]
    fn year_one_sentinel_is_no_date() {
        assert_eq!(parse_datetime("0001-01-01T00:00:00").unwrap(), None);
        assert_eq!(parse_datetime("0001-01-01T00:00:00Z").unwrap(), None);
    }

    #[test]
    fn garbage_is_an_error_that_names_the_value() {
        let e = parse_datetime("next tuesday").unwrap_err();
        assert!(e.contains("next tuesday"));
    }

    #[test]
    fn secret_fields_are_not_read() {
        let body = r#"{"value":[{"authorizationId":"a","token":"SECRET","alternateToken":"SECRET2",
            "displayName":null,"targetAccounts":null,"validFrom":"0001-01-01T00:00:00","isValid":true}],
            "continuationToken":null}"#;
        let page: PatPage = serde_json::from_str(body).unwrap();
        assert_eq!(page.value.len(), 1);
        assert!(!format!("{page:?}").contains("SECRET"));
        assert_eq!(page.value[0].valid_from, None);
        assert_eq!(page.value[0].display_name, None);
    }
}

/// One page of `GET graph/users` (the continuation token is in a header, not here).
#[derive(Debug, Deserialize)]
pub struct UsersPage {
    #[serde(default, deserialize_with = "null_as_default")]
    pub value: Vec<GraphUser>,
}

/// The `GraphUser` fields the report uses.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GraphUser {
    #[serde(default)]
    pub descriptor: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub principal_name: Option<String>,
    #[serde(default)]
    pub mail_address: Option<String>,
    #[serde(default)]
    pub origin: Option<String>,
}

/// The body with every `\uXXXX` escape of a lone UTF-16 surrogate replaced by `\ufffd`.
///
/// serde refuses a whole page for one name holding an unpaired surrogate (`"\ud800"`), which
/// would hide every token of that user; a page with one odd character in a name is better
/// read with a replacement character in that name. Only escapes are rewritten: raw bytes
/// that are not UTF-8 still fail the page, as they should.
pub fn replace_lone_surrogates(body: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    fn hex4(b: &[u8]) -> Option<u16> {
        let text = std::str::from_utf8(b.get(..4)?).ok()?;
        u16::from_str_radix(text, 16).ok()
    }
    fn escape_at(body: &[u8], i: usize) -> Option<u16> {
        (body.get(i) == Some(&b'\\') && body.get(i + 1) == Some(&b'u'))
            .then(|| hex4(&body[i + 2..]))
            .flatten()
    }
    // Fast path: nothing that could be a surrogate escape.
    if !body
        .windows(3)
        .any(|w| w[0] == b'\\' && w[1] == b'u' && matches!(w[2], b'd' | b'D'))
    {
        return std::borrow::Cow::Borrowed(body);
    }
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        if body[i] != b'\\' {
            out.push(body[i]);
            i += 1;
            continue;
        }
        match escape_at(body, i) {
            Some(high @ 0xD800..=0xDBFF) => {
                if matches!(escape_at(body, i + 6), Some(0xDC00..=0xDFFF)) {
                    out.extend_from_slice(&body[i..i + 12]);
                    i += 12;
                } else {
                    let _ = high;
                    out.extend_from_slice(b"\\ufffd");
                    i += 6;
                }
            }
            Some(0xDC00..=0xDFFF) => {
                out.extend_from_slice(b"\\ufffd");
                i += 6;
            }
            _ => {
                // Any other escape (including `\\`) is copied with the character it escapes.
                out.extend_from_slice(&body[i..(i + 2).min(body.len())]);
                i += 2;
            }
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod surrogate_tests {
    use super::*;

    fn fixed(text: &str) -> String {
        String::from_utf8(replace_lone_surrogates(text.as_bytes()).into_owned()).unwrap()
    }

    #[test]
    fn lone_surrogates_become_replacement_characters() {
        assert_eq!(fixed(r#"{"n":"a\ud800b"}"#), r#"{"n":"a\ufffdb"}"#);
        assert_eq!(fixed(r#"{"n":"\uDC00"}"#), r#"{"n":"\ufffd"}"#);
        // A pair is kept, and so are other escapes, an escaped backslash included.
        assert_eq!(fixed(r#"{"n":"\ud83d\ude00"}"#), r#"{"n":"\ud83d\ude00"}"#);
        assert_eq!(
            fixed(r#"{"n":"\\ud800 \n \u0041"}"#),
            r#"{"n":"\\ud800 \n \u0041"}"#
        );
        let value: serde_json::Value =
            serde_json::from_slice(&replace_lone_surrogates(br#"{"n":"x\ud800"}"#)).unwrap();
        assert_eq!(value["n"], "x\u{fffd}");
    }
}
