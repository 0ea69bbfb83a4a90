//! Wire shapes of the Token Admin answers, read leniently.
//!
//! We parse PAT pages into our own types rather than the crate's `SessionToken` so that the
//! `token` and `alternateToken` fields are never read into memory at all: serde skips
//! unknown fields, and these two are deliberately not declared.

use serde::{Deserialize, Deserializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

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

/// Parse an Azure DevOps datetime.
///
/// The service sends RFC 3339, but also values without an offset (taken as UTC), up to
/// 7 fractional digits, and `0001-01-01T00:00:00` as a "no date" sentinel (→ `None`).
pub fn parse_datetime(text: &str) -> Result<Option<OffsetDateTime>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let parsed = OffsetDateTime::parse(text, &Rfc3339)
        .or_else(|_| OffsetDateTime::parse(&format!("{text}Z"), &Rfc3339))
        .map_err(|e| format!("unreadable date {text:?}: {e}"))?;
    // Year 1 is .NET's DateTime.MinValue: the service's way of saying "no date".
    if parsed.year() <= 1 {
        return Ok(None);
    }
    Ok(Some(parsed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

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
