//! Times as patreport writes them: always UTC.
//!
//! * [`stamp`]: `yyyymmdd-hhmmss`, for file names, blob names and run ids (sortable);
//! * [`rfc3339`]: `2026-11-24T07:05:03Z`, for every time in JSON, CSV, run documents and
//!   HTTP answers. Whole seconds: the service's own dates carry up to seven fractional
//!   digits that mean nothing to a reader, and one precision everywhere keeps outputs
//!   comparable;
//! * [`serde`] and [`serde::option`]: the same form for serde fields; reading accepts any
//!   RFC 3339 time, so documents written by earlier versions still read.

use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

/// `yyyymmdd-hhmmss` in UTC.
pub fn stamp(at: OffsetDateTime) -> String {
    let at = to_utc(at);
    format!(
        "{:04}{:02}{:02}-{:02}{:02}{:02}",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

/// RFC 3339 in UTC, whole seconds. A time RFC 3339 cannot express (a year beyond 9999,
/// which a hostile or broken server can send) is written in the `time` crate's display form
/// rather than failing or vanishing.
pub fn rfc3339(at: OffsetDateTime) -> String {
    let whole = whole_seconds(to_utc(at));
    whole.format(&Rfc3339).unwrap_or_else(|_| whole.to_string())
}

/// `YYYY-MM-DD` in UTC (the first ten characters of [`rfc3339`]).
pub fn date_only(at: OffsetDateTime) -> String {
    let at = to_utc(at);
    format!(
        "{:04}-{:02}-{:02}",
        at.year(),
        u8::from(at.month()),
        at.day()
    )
}

/// `at` without its fraction of a second: the precision every output has, so a report read
/// back equals the report written.
pub fn whole_seconds(at: OffsetDateTime) -> OffsetDateTime {
    at.replace_nanosecond(0).unwrap_or(at)
}

/// Parse an Azure DevOps datetime.
///
/// The service sends RFC 3339, but also values without an offset (taken as UTC), up to
/// 7 fractional digits, and `0001-01-01T00:00:00` as a "no date" sentinel (→ `None`).
pub fn parse_service_datetime(text: &str) -> Result<Option<OffsetDateTime>, String> {
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

/// Parse an RFC 3339 time.
pub fn parse_rfc3339(text: &str) -> Result<OffsetDateTime, time::error::Parse> {
    OffsetDateTime::parse(text.trim(), &Rfc3339)
}

fn to_utc(at: OffsetDateTime) -> OffsetDateTime {
    at.checked_to_offset(UtcOffset::UTC).unwrap_or(at)
}

/// `#[serde(with = "crate::domain::timestamp::serde")]`.
pub mod serde {
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};
    use time::OffsetDateTime;

    pub fn serialize<S: Serializer>(at: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::rfc3339(*at))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<OffsetDateTime, D::Error> {
        let text = String::deserialize(d)?;
        super::parse_rfc3339(&text).map_err(D::Error::custom)
    }

    /// `#[serde(default, with = "crate::domain::timestamp::serde::option")]`.
    pub mod option {
        use serde::{Deserialize, Deserializer, Serializer, de::Error as _};
        use time::OffsetDateTime;

        pub fn serialize<S: Serializer>(
            at: &Option<OffsetDateTime>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match at {
                Some(at) => s.serialize_some(&super::super::rfc3339(*at)),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<OffsetDateTime>, D::Error> {
            match Option::<String>::deserialize(d)? {
                None => Ok(None),
                Some(text) => super::super::parse_rfc3339(&text)
                    .map(Some)
                    .map_err(D::Error::custom),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn times_are_written_in_utc_with_whole_seconds() {
        let t = datetime!(2026-01-05 10:20:30.1234567 +02:00);
        assert_eq!(rfc3339(t), "2026-01-05T08:20:30Z");
        assert_eq!(stamp(t), "20260105-082030");
    }

    #[test]
    fn a_time_rfc3339_cannot_express_is_still_written() {
        let far = datetime!(2026-01-05 10:20:30 UTC)
            .replace_year(9999)
            .unwrap()
            .checked_add(time::Duration::days(400));
        if let Some(far) = far {
            assert!(!rfc3339(far).is_empty());
        }
    }

    #[test]
    fn serde_reads_any_rfc3339_and_writes_one_form() {
        #[derive(::serde::Serialize, ::serde::Deserialize, PartialEq, Debug)]
        struct T {
            #[serde(with = "super::serde")]
            at: OffsetDateTime,
            #[serde(default, with = "super::serde::option")]
            maybe: Option<OffsetDateTime>,
        }
        let t: T = serde_json::from_str(r#"{"at":"2026-01-05T10:20:30.5+02:00"}"#).unwrap();
        assert_eq!(t.maybe, None);
        let text = serde_json::to_string(&t).unwrap();
        assert_eq!(text, r#"{"at":"2026-01-05T08:20:30Z","maybe":null}"#);
    }
}
