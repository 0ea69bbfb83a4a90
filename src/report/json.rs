//! The JSON report: the whole [`Report`], pretty-printed and safe to embed in HTML.

use std::io::{self, Write};

use serde::Serialize;
use serde_json::ser::{Formatter, PrettyFormatter};

use super::error::ReportError;
use super::model::Report;

/// Writes the whole report as pretty JSON. Inside strings, `<`, `>` and `&` are written
/// as `\u003c`, `\u003e` and `\u0026` (and U+2028/U+2029 escaped too), so the output can
/// sit inside an HTML `<script>` element without a name such as `</script>` ending it.
pub fn write_json<W: Write>(report: &Report, mut w: W) -> Result<(), ReportError> {
    let mut ser = serde_json::Serializer::with_formatter(&mut w, HtmlSafe(PrettyFormatter::new()));
    report.serialize(&mut ser)?;
    w.write_all(b"\n")
        .and_then(|()| w.flush())
        .map_err(serde_json::Error::io)?;
    Ok(())
}

/// Read a JSON report written by this or an earlier version (`schema_version` absent means
/// 1: `summary.users_scanned`, and `run.stopped_early` as the reason or null).
pub fn read_json<R: io::Read>(r: R) -> Result<Report, ReportError> {
    use serde::de::Error as _;
    let mut value: serde_json::Value = serde_json::from_reader(r)?;
    let not_a_report = || serde_json::Error::custom("not a patreport JSON report");
    let report = value.as_object_mut().ok_or_else(not_a_report)?;
    let version = report
        .get("schema_version")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(1);
    if version < 2 {
        let summary = report
            .get_mut("summary")
            .and_then(serde_json::Value::as_object_mut)
            .ok_or_else(not_a_report)?;
        let count = |s: &serde_json::Map<String, serde_json::Value>, k: &str| {
            s.get(k).and_then(serde_json::Value::as_u64).unwrap_or(0)
        };
        let listed = count(summary, "users_scanned");
        let failed = count(summary, "users_failed");
        summary.insert("users_listed".into(), listed.into());
        summary.insert("users_read".into(), listed.saturating_sub(failed).into());
        let run = report
            .get_mut("run")
            .and_then(serde_json::Value::as_object_mut)
            .ok_or_else(not_a_report)?;
        let reason = run
            .remove("stopped_early")
            .unwrap_or(serde_json::Value::Null);
        run.insert("stopped_early".into(), (!reason.is_null()).into());
        run.insert("stop_reason".into(), reason);
        report.insert("schema_version".into(), 2.into());
    }
    Ok(serde_json::from_value(value)?)
}

/// The pretty formatter, with HTML-significant characters in strings escaped. These
/// characters can only occur inside strings in JSON, and every string's unescaped
/// text passes through `write_string_fragment`, keys included. The HTML view embeds its
/// data through it too.
pub(super) struct HtmlSafe(pub(super) PrettyFormatter<'static>);

impl Formatter for HtmlSafe {
    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (i, ch) in fragment.char_indices() {
            let escaped: &[u8] = match ch {
                '<' => b"\\u003c",
                '>' => b"\\u003e",
                '&' => b"\\u0026",
                '\u{2028}' => b"\\u2028",
                '\u{2029}' => b"\\u2029",
                _ => continue,
            };
            writer.write_all(&fragment.as_bytes()[start..i])?;
            writer.write_all(escaped)?;
            start = i + ch.len_utf8();
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }

    // Layout: delegated to the pretty formatter.

    fn begin_array<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.begin_array(writer)
    }

    fn end_array<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.end_array(writer)
    }

    fn begin_array_value<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.0.begin_array_value(writer, first)
    }

    fn end_array_value<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.end_array_value(writer)
    }

    fn begin_object<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.begin_object(writer)
    }

    fn end_object<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.end_object(writer)
    }

    fn begin_object_key<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.0.begin_object_key(writer, first)
    }

    fn end_object_key<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.end_object_key(writer)
    }

    fn begin_object_value<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.begin_object_value(writer)
    }

    fn end_object_value<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.end_object_value(writer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures::{empty_report, hostile_report};

    fn json(report: &Report) -> String {
        let mut bytes = Vec::new();
        write_json(report, &mut bytes).unwrap();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn html_significant_characters_are_escaped_inside_strings() {
        let text = json(&hostile_report());
        assert!(!text.contains('<') && !text.contains('>') && !text.contains('&'));
        assert!(text.contains(r#""pat_name": "\u003cscript\u003ealert(1)\u003c/script\u003e""#));
        assert!(text.contains(r#"\u003crequests\u003e"#));
    }

    #[test]
    fn the_json_reads_back_as_the_same_report() {
        let report = hostile_report();
        let text = json(&report);
        assert!(text.contains("\n  \"run\": {"), "pretty-printed");
        let back: Report = serde_json::from_str(&text).unwrap();
        assert_eq!(back, report);
    }

    #[test]
    fn line_separators_are_escaped_for_script_embedding() {
        let mut report = empty_report();
        report.run.stop_reason = Some("a\u{2028}b\u{2029}&".into());
        let text = json(&report);
        assert!(text.contains(r#""stop_reason": "a\u2028b\u2029\u0026""#));
    }

    #[test]
    fn a_report_of_the_first_schema_still_reads() {
        let report = hostile_report();
        let mut value: serde_json::Value = serde_json::from_str(&json(&report)).unwrap();
        // As version 1 wrote it.
        value.as_object_mut().unwrap().remove("schema_version");
        let summary = value["summary"].as_object_mut().unwrap();
        summary.remove("users_listed");
        summary.remove("users_read");
        summary.insert("users_scanned".into(), 3.into());
        let run = value["run"].as_object_mut().unwrap();
        run.remove("stop_reason");
        run.insert("stopped_early".into(), "budget".into());
        let back = read_json(value.to_string().as_bytes()).unwrap();
        assert_eq!(back.schema_version, 2);
        assert_eq!((back.summary.users_listed, back.summary.users_read), (3, 2));
        assert!(back.run.stopped_early);
        assert_eq!(back.run.stop_reason.as_deref(), Some("budget"));
        assert_eq!(back.rows, report.rows);
        // And this version's own output reads back as written.
        assert_eq!(read_json(json(&report).as_bytes()).unwrap(), report);
        // Anything else is an error, never a panic.
        for odd in [
            "[]",
            r#"{"summary":[]}"#,
            r#"{"run":"x","summary":{}}"#,
            "3",
        ] {
            assert!(read_json(odd.as_bytes()).is_err(), "{odd}");
        }
    }

    #[test]
    fn an_empty_report_writes_valid_json() {
        let value: serde_json::Value = serde_json::from_str(&json(&empty_report())).unwrap();
        assert_eq!(value["rows"], serde_json::json!([]));
        assert_eq!(value["summary"]["pats"], 0);
        assert_eq!(value["run"]["complete"], true);
    }
}
