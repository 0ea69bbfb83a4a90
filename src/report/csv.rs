//! The CSV report: the Tokens rows only, one line per PAT.

use std::fmt::Write as _;
use std::io::Write;

use super::columns::{COLUMNS, HEADERS, Value, vocabulary};
use super::error::ReportError;
use super::model::Report;
use super::text::csv_safe;
use crate::domain::timestamp::rfc3339;

/// Writes the Tokens rows with the same header as the workbook's Tokens sheet.
///
/// Dates are RFC 3339 in UTC, flags, statuses and "All organizations" in the words of
/// [`vocabulary`] (the workbook's), missing values empty, target accounts joined with "; ",
/// findings by their labels, most severe first. Every text column goes through [`csv_safe`] so a spreadsheet opening the
/// file never evaluates a name as a formula; numbers (days may be negative) do not.
pub fn write_csv<W: Write>(report: &Report, w: W) -> Result<(), ReportError> {
    let mut out = ::csv::Writer::from_writer(w);
    out.write_record(HEADERS)?;

    // Reused across cells to keep per-row allocation down.
    let mut buf = String::new();
    for row in &report.rows {
        for column in &COLUMNS {
            match (column.value)(row) {
                Value::Text(text) => out.write_field(csv_safe(text).as_bytes())?,
                Value::Name(name) => {
                    out.write_field(csv_safe(name.unwrap_or_default()).as_bytes())?
                }
                Value::Status(status) => out.write_field(vocabulary::status(status))?,
                Value::Flag(flag) => out.write_field(vocabulary::flag(flag))?,
                Value::Targets([]) => out.write_field(vocabulary::ALL_ORGANIZATIONS)?,
                Value::Targets(targets) => {
                    join_into(&mut buf, targets);
                    out.write_field(csv_safe(&buf).as_bytes())?;
                }
                Value::Severity(severity) => {
                    out.write_field(severity.map_or("", |s| s.as_str()))?
                }
                Value::Findings(findings) => {
                    findings.write_labels(&mut buf);
                    out.write_field(&buf)?;
                }
                Value::Date(date) => out.write_field(date.map(rfc3339).unwrap_or_default())?,
                Value::Days(days) => {
                    buf.clear();
                    if let Some(n) = days {
                        // Writing to a String cannot fail.
                        let _ = write!(buf, "{n}");
                    }
                    out.write_field(&buf)?;
                }
            }
        }
        out.write_record(None::<&[u8]>)?;
    }
    out.flush().map_err(|e| ReportError::Csv(e.into()))?;
    Ok(())
}

/// Joins target accounts with "; " into a reused buffer (also used by the workbook).
pub(super) fn join_into(buffer: &mut String, parts: &[String]) {
    buffer.clear();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            buffer.push_str("; ");
        }
        buffer.push_str(part);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures::{HOSTILE, empty_report, hostile_report};

    fn records(report: &Report) -> Vec<::csv::StringRecord> {
        let mut bytes = Vec::new();
        write_csv(report, &mut bytes).unwrap();
        ::csv::Reader::from_reader(bytes.as_slice())
            .records()
            .map(Result::unwrap)
            .collect()
    }

    #[test]
    fn the_header_matches_the_tokens_sheet() {
        let mut bytes = Vec::new();
        write_csv(&hostile_report(), &mut bytes).unwrap();
        let mut reader = ::csv::Reader::from_reader(bytes.as_slice());
        assert_eq!(reader.headers().unwrap(), HEADERS.as_slice());
    }

    /// The position of the column with JSON key `key`.
    fn at(key: &str) -> usize {
        usize::from(crate::report::columns::position(key))
    }

    #[test]
    fn injection_strings_are_prefixed_with_a_quote() {
        let rows = records(&hostile_report());
        let name = at("pat_name");
        for (record, hostile) in rows.iter().zip(HOSTILE) {
            assert_eq!(&record[name], csv_safe(hostile), "{hostile:?}");
            assert_eq!(&record[at("owner_display_name")], "'=1+1");
        }
        assert_eq!(&rows[0][name], "'=HYPERLINK(\"http://x\",\"y\")");
        assert_eq!(&rows[6][name], "<script>alert(1)</script>");
    }

    #[test]
    fn values_are_rfc3339_utc_the_workbooks_words_and_plain_numbers() {
        let rows = records(&hostile_report());
        let first = &rows[0];
        assert_eq!(&first[at("status")], "active");
        assert_eq!(
            (&first[at("full_access")], &first[at("global")]),
            ("no", "no")
        );
        assert_eq!(&first[at("target_accounts")], "org-guid");
        assert_eq!(&first[at("valid_from")], "2026-01-01T00:00:00Z");
        assert_eq!(&first[at("valid_to")], "2026-06-18T12:00:00Z");
        assert_eq!(&first[at("days_to_expiry")], "100");
        assert_eq!(&first[at("authorization_id")], "id0");
        assert_eq!(&first[at("severity")], "medium");
        assert_eq!(&first[at("findings")], "Lifetime above policy");

        let last = &rows[7];
        assert_eq!(&last[at("pat_name")], "");
        assert_eq!(&last[at("status")], "expired");
        assert_eq!(
            (&last[at("full_access")], &last[at("global")]),
            ("yes", "yes")
        );
        assert_eq!(&last[at("target_accounts")], "All organizations");
        assert_eq!(&last[at("findings")], "Expired, still listed");
        // A negative number is a number, not a formula: no quote.
        assert_eq!(&last[at("days_to_expiry")], "-2");
    }

    #[test]
    fn an_empty_report_is_just_the_header() {
        let mut bytes = Vec::new();
        write_csv(&empty_report(), &mut bytes).unwrap();
        let text = String::from_utf8(bytes).unwrap();
        assert_eq!(text.lines().count(), 1);
        assert!(text.starts_with("Owner,PAT name,Status,Valid to (UTC),"));
    }
}
