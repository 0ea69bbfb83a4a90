//! The HTML view: one self-contained page that opens offline by double-click and shows the
//! summary cards, the sortable, filterable token table, the errors and the run details.
//!
//! The page is a template (`html/view.html`) with its one style sheet (`html/view.css`) and
//! its one script (`html/view.js`) inlined, under a Content-Security-Policy that allows
//! exactly those two by hash and nothing else: no request can leave the page, and no
//! markup in the data can run. The report's data sits in a non-executing
//! `<script type="application/json">` element, escaped so that no text from the organization
//! can end it; the script renders it with `textContent` only.
//!
//! The data is columnar and compact, for 100,000 rows: one array per Tokens column (the same
//! [`COLUMNS`] as the workbook, CSV and JSON, so the page's CSV download has the CSV writer's
//! headers), and a text column whose values repeat (owners, statuses, scopes, PAT names) is a
//! dictionary of its distinct values plus one index per row. See [`write_html`].

use std::collections::HashMap;
use std::io::Write;
use std::sync::OnceLock;

use base64::Engine as _;
use serde::Serialize;
use serde::ser::{SerializeMap, SerializeSeq};
use serde_json::ser::{Formatter, PrettyFormatter};
use sha2::{Digest, Sha256};
use time::{OffsetDateTime, UtcOffset};

use super::columns::{COLUMNS, Column, Value};
use super::error::ReportError;
use super::json::HtmlSafe;
use super::model::{ErrorRow, Report, RunInfo, Summary, TokenRow};
use crate::domain::timestamp::rfc3339;
use crate::findings::{Findings, Rule};

const TEMPLATE: &str = include_str!("html/view.html");
const STYLE: &str = include_str!("html/view.css");
const SCRIPT: &str = include_str!("html/view.js");

/// The layout of the embedded data; `view.js` refuses any other.
const DATA_FORMAT: &str = "patreport-view/1";

/// The page's Content-Security-Policy, as its `<meta>` element states it; the Functions app
/// sends the same policy as a header (where `frame-ancestors 'none'` may be added: a
/// `<meta>` policy cannot carry that directive).
///
/// Nothing may load (`default-src 'none'`: no script, style, font, image or connection from
/// anywhere), only the page's own inline script and style run (by hash: no
/// `unsafe-inline`, no `unsafe-eval`), no `<base>` or form can redirect anything, and Trusted
/// Types make every HTML-parsing sink (`innerHTML`, `document.write`, ...) throw, so a
/// rendering mistake fails loudly instead of running a name as markup.
pub fn content_security_policy() -> String {
    static POLICY: OnceLock<String> = OnceLock::new();
    POLICY
        .get_or_init(|| {
            format!(
                "default-src 'none'; script-src '{}'; style-src '{}'; base-uri 'none'; \
                 form-action 'none'; require-trusted-types-for 'script'; trusted-types 'none'",
                sha256_source(SCRIPT),
                sha256_source(STYLE)
            )
        })
        .clone()
}

/// A CSP hash source (`sha256-<base64>`) for an inline element's exact text.
pub(crate) fn sha256_source(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    format!(
        "sha256-{}",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// Writes the report as one self-contained HTML page.
///
/// The embedded data (`<script type="application/json" id="report-data">`) is an object:
///
/// * `format`: `"patreport-view/1"`; `run`, `summary`, `errors`: as in the JSON report;
///   `rows`: the number of rows;
/// * `columns`: one entry per Tokens column, in order: `key` and `header` (as in the JSON
///   and the CSV), `kind` (`text`, `name`, `status`, `flag`, `targets`, `date`, `days`; null
///   when there are no rows) and `values`. With an `index` array, row *i*'s value is
///   `values[index[i]]` (a dictionary of distinct values); an `index` that is a string names
///   the earlier column whose index array this column shares (the owner's columns); without
///   an `index`, row *i*'s value is `values[i]`.
///   A flag is 0 or 1; a date is whole seconds since 1970 (UTC), or `[seconds, "text"]` for a
///   year outside 0000–9999, whose text RFC 3339 cannot hold; a missing value is null.
///
/// The JSON is compact, and its strings are escaped as in the JSON report (`<`, `>`, `&`,
/// U+2028, U+2029), so no name can end the element or open a comment in it. Rows are streamed
/// to `w` column by column; the page is never held in memory whole.
pub fn write_html<W: Write>(report: &Report, mut w: W) -> Result<(), ReportError> {
    let io = ReportError::Html;
    let mut rest = TEMPLATE;
    while let Some(start) = rest.find("{{") {
        let Some(len) = rest[start..].find("}}") else {
            break;
        };
        w.write_all(&rest.as_bytes()[..start]).map_err(io)?;
        let name = &rest[start + 2..start + len];
        match name {
            "csp" => w.write_all(content_security_policy().as_bytes()),
            "title" => w.write_all(escape_text(&title(report)).as_bytes()),
            "style" => w.write_all(STYLE.as_bytes()),
            "script" => w.write_all(SCRIPT.as_bytes()),
            "data" => {
                write_data(report, &mut w)?;
                Ok(())
            }
            // Not a placeholder (the tests hold the template to the five above).
            _ => w.write_all(&rest.as_bytes()[start..start + len + 2]),
        }
        .map_err(io)?;
        rest = &rest[start + len + 2..];
    }
    w.write_all(rest.as_bytes()).map_err(io)?;
    w.flush().map_err(io)?;
    Ok(())
}

fn title(report: &Report) -> String {
    format!("PAT report: {}", report.run.org)
}

/// Text for an HTML text or attribute context (the organization name is validated to
/// letters, digits and hyphens already; this keeps the page safe whatever it becomes).
fn escape_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(ch),
        }
    }
    out
}

fn write_data<W: Write>(report: &Report, w: &mut W) -> Result<(), serde_json::Error> {
    let data = ViewData {
        format: DATA_FORMAT,
        run: &report.run,
        summary: &report.summary,
        errors: &report.errors,
        rows: report.rows.len(),
        columns: Columns(&report.rows),
        rules: Rule::ALL
            .iter()
            .map(|rule| RuleText {
                code: rule.code(),
                label: rule.label(),
                severity: rule.severity().as_str(),
                action: rule.action(),
            })
            .collect(),
    };
    let mut ser = serde_json::Serializer::with_formatter(w, Compact::default());
    data.serialize(&mut ser)
}

/// Compact JSON with the JSON report's escaping of strings ([`HtmlSafe`]): no name can end
/// the element or open a comment in it. Every other method is serde_json's compact default.
struct Compact(HtmlSafe);

impl Default for Compact {
    fn default() -> Self {
        Compact(HtmlSafe(PrettyFormatter::new()))
    }
}

impl Formatter for Compact {
    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        self.0.write_string_fragment(writer, fragment)
    }
}

/// How the page names a finding: the rows carry its code, as the JSON report does.
#[derive(Serialize)]
struct RuleText {
    code: &'static str,
    label: &'static str,
    severity: &'static str,
    action: &'static str,
}

#[derive(Serialize)]
struct ViewData<'a> {
    format: &'static str,
    run: &'a RunInfo,
    summary: &'a Summary,
    errors: &'a [ErrorRow],
    rows: usize,
    columns: Columns<'a>,
    /// Every rule, for the page to name the findings' codes.
    rules: Vec<RuleText>,
}

struct Columns<'a>(&'a [TokenRow]);

impl Serialize for Columns<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let rows = self.0;
        let mut seq = s.serialize_seq(Some(COLUMNS.len()))?;
        // Index arrays already written, by column: the owner's principal name, mail and
        // descriptor have one value per owner, so their indexes are the same array.
        let mut written: Vec<(&'static str, Vec<u32>)> = Vec::new();
        for column in &COLUMNS {
            let value = column.value;
            let kind = rows.first().map(|row| Cell::of(value(row)).0);
            let cells = rows.iter().map(|row| Cell::of(value(row)).1);
            let dictionary = kind
                .filter(|k| k.repeats())
                .and_then(|_| dictionary(cells.clone(), rows.len()));
            let (values, index) = match &dictionary {
                Some((values, index)) => {
                    let same = written.iter().find(|(_, other)| other == index);
                    let index = match same {
                        Some((key, _)) => Index::SameAs(key),
                        None => Index::Own(index),
                    };
                    (Values::Distinct(values), Some(index))
                }
                None => (Values::Rows(Seq(cells)), None),
            };
            seq.serialize_element(&ColumnData {
                column,
                kind,
                values,
                index,
            })?;
            if let Some((_, index)) = dictionary
                && !written.iter().any(|(_, other)| *other == index)
            {
                written.push((column.key, index));
            }
        }
        seq.end()
    }
}

/// One column of the embedded data.
struct ColumnData<'b, 'a, I> {
    column: &'static Column,
    kind: Option<Kind>,
    values: Values<'b, 'a, I>,
    index: Option<Index<'b>>,
}

/// A column's values: one per row, or its distinct values (with an [`Index`]).
enum Values<'b, 'a, I> {
    Rows(Seq<I>),
    Distinct(&'b [Cell<'a>]),
}

/// Where each row's value is among the distinct values: an array of its own, or the same
/// array as an earlier column's (named by its key).
enum Index<'b> {
    Own(&'b [u32]),
    SameAs(&'static str),
}

impl<'a, I: Iterator<Item = Cell<'a>> + Clone> Serialize for ColumnData<'_, 'a, I> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("key", self.column.key)?;
        map.serialize_entry("header", self.column.header)?;
        map.serialize_entry("kind", &self.kind.map(Kind::name))?;
        match &self.values {
            Values::Rows(rows) => map.serialize_entry("values", rows)?,
            Values::Distinct(values) => map.serialize_entry("values", values)?,
        }
        match self.index {
            Some(Index::Own(index)) => map.serialize_entry("index", index)?,
            Some(Index::SameAs(key)) => map.serialize_entry("index", key)?,
            None => {}
        }
        map.end()
    }
}

/// The distinct values in first-seen order and each row's index into them; `None` when
/// more than half the rows are distinct (an index would then cost more than it saves).
fn dictionary<'a>(
    cells: impl Iterator<Item = Cell<'a>>,
    rows: usize,
) -> Option<(Vec<Cell<'a>>, Vec<u32>)> {
    let mut ids: HashMap<Cell<'a>, u32> = HashMap::new();
    let mut values = Vec::new();
    let mut index = Vec::with_capacity(rows);
    for cell in cells {
        let id = *ids.entry(cell).or_insert_with(|| {
            values.push(cell);
            (values.len() - 1) as u32
        });
        if values.len() * 2 > rows {
            return None;
        }
        index.push(id);
    }
    Some((values, index))
}

/// A sequence serialized straight from an iterator, so a column is never collected.
struct Seq<I>(I);

impl<'a, I: Iterator<Item = Cell<'a>> + Clone> Serialize for Seq<I> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(None)?;
        for cell in self.0.clone() {
            seq.serialize_element(&cell)?;
        }
        seq.end()
    }
}

/// The kinds of value a column holds, as the page reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Name,
    Status,
    Flag,
    Targets,
    Date,
    Days,
    /// A severity name, or null.
    Severity,
    /// A list of finding labels.
    Findings,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Text => "text",
            Kind::Name => "name",
            Kind::Status => "status",
            Kind::Flag => "flag",
            Kind::Targets => "targets",
            Kind::Date => "date",
            Kind::Days => "days",
            Kind::Severity => "severity",
            Kind::Findings => "findings",
        }
    }

    /// Kinds whose values often repeat across rows (owners, statuses, scopes, names).
    fn repeats(self) -> bool {
        matches!(
            self,
            Kind::Text
                | Kind::Name
                | Kind::Status
                | Kind::Targets
                | Kind::Severity
                | Kind::Findings
        )
    }
}

/// One value as embedded in the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Cell<'a> {
    /// Text, a status name, or a PAT name (`None`: the service sent none).
    Text(Option<&'a str>),
    Targets(&'a [String]),
    Flag(bool),
    Date(Option<OffsetDateTime>),
    Days(Option<i64>),
    Findings(Findings),
}

impl<'a> Cell<'a> {
    fn of(value: Value<'a>) -> (Kind, Cell<'a>) {
        match value {
            Value::Text(text) => (Kind::Text, Cell::Text(Some(text))),
            Value::Name(name) => (Kind::Name, Cell::Text(name)),
            Value::Status(status) => (Kind::Status, Cell::Text(Some(status.as_str()))),
            Value::Flag(flag) => (Kind::Flag, Cell::Flag(flag)),
            Value::Targets(targets) => (Kind::Targets, Cell::Targets(targets)),
            Value::Date(date) => (Kind::Date, Cell::Date(date)),
            Value::Days(days) => (Kind::Days, Cell::Days(days)),
            Value::Severity(severity) => (Kind::Severity, Cell::Text(severity.map(|s| s.as_str()))),
            Value::Findings(findings) => (Kind::Findings, Cell::Findings(findings)),
        }
    }
}

impl Serialize for Cell<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match *self {
            Cell::Text(text) => text.serialize(s),
            Cell::Targets(targets) => targets.serialize(s),
            Cell::Flag(flag) => s.serialize_u8(u8::from(flag)),
            Cell::Findings(findings) => s.collect_seq(findings.iter().map(Rule::code)),
            Cell::Date(None) | Cell::Days(None) => s.serialize_none(),
            Cell::Days(Some(days)) => s.serialize_i64(days),
            Cell::Date(Some(at)) => {
                let seconds = at.unix_timestamp();
                // The page writes a date in years 0000–9999 as RFC 3339 itself, exactly as the
                // CSV writer does; any other is sent with the text the CSV writer uses.
                let plain = at
                    .checked_to_offset(UtcOffset::UTC)
                    .is_some_and(|utc| (0..=9999).contains(&utc.year()));
                if plain {
                    s.serialize_i64(seconds)
                } else {
                    (seconds, rfc3339(at)).serialize(s)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures::{empty_report, hostile_report};
    use crate::report::model::TokenStatus;
    use time::macros::datetime;

    fn page(report: &Report) -> String {
        let mut bytes = Vec::new();
        write_html(report, &mut bytes).unwrap();
        String::from_utf8(bytes).unwrap()
    }

    const DATA_OPEN: &str = r#"<script type="application/json" id="report-data">"#;

    /// The text of the data element, as an HTML parser finds it: up to the first `</script`.
    fn data_text(page: &str) -> &str {
        let start = page.find(DATA_OPEN).expect("the data element") + DATA_OPEN.len();
        let len = page[start..]
            .to_ascii_lowercase()
            .find("</script")
            .expect("the data element ends");
        &page[start..start + len]
    }

    /// The page without its data: what the template and its assets contribute.
    fn without_data(page: &str) -> String {
        page.replacen(data_text(page), "", 1)
    }

    /// The text between `open` and the next `close`, which must occur once each.
    fn only<'a>(page: &'a str, open: &str, close: &str) -> &'a str {
        assert_eq!(page.matches(open).count(), 1, "{open} once");
        let start = page.find(open).unwrap() + open.len();
        let len = page[start..].find(close).unwrap();
        &page[start..start + len]
    }

    /// Decodes the embedded data back into the JSON report's rows (`serde_json` values).
    fn decoded_rows(data: &serde_json::Value) -> Vec<serde_json::Map<String, serde_json::Value>> {
        let rows = data["rows"].as_u64().unwrap() as usize;
        let mut out = vec![serde_json::Map::new(); rows];
        let columns = data["columns"].as_array().unwrap();
        for column in columns {
            let key = column["key"].as_str().unwrap();
            let values = column["values"].as_array().unwrap();
            // An index that is a string is that earlier column's index.
            let index = column.get("index").map(|index| match index.as_str() {
                Some(same) => &columns.iter().find(|c| c["key"] == same).unwrap()["index"],
                None => index,
            });
            for (i, row) in out.iter_mut().enumerate() {
                let value = match index {
                    Some(index) => &values[index[i].as_u64().unwrap() as usize],
                    None => &values[i],
                };
                let value = match (column["kind"].as_str().unwrap(), value) {
                    ("flag", v) => serde_json::Value::Bool(v.as_u64().unwrap() == 1),
                    ("date", serde_json::Value::Number(n)) => {
                        let at = OffsetDateTime::from_unix_timestamp(n.as_i64().unwrap()).unwrap();
                        serde_json::Value::String(rfc3339(at))
                    }
                    ("date", serde_json::Value::Array(pair)) => pair[1].clone(),
                    (_, v) => v.clone(),
                };
                row.insert(key.to_string(), value);
            }
        }
        out
    }

    fn expected_rows(report: &Report) -> Vec<serde_json::Map<String, serde_json::Value>> {
        report
            .rows
            .iter()
            .map(|row| match serde_json::to_value(row).unwrap() {
                serde_json::Value::Object(map) => map,
                other => panic!("{other}"),
            })
            .collect()
    }

    fn data(page: &str) -> serde_json::Value {
        serde_json::from_str(data_text(page)).expect("the data element holds JSON")
    }

    /// The column named `key` in the page's data.
    fn column(data: &serde_json::Value, key: &str) -> serde_json::Value {
        data["columns"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["key"] == key)
            .unwrap()
            .clone()
    }

    /// Names meant to end the data element, open a comment that swallows the page, or break
    /// a JavaScript string.
    const ESCAPES: [&str; 8] = [
        "</script>",
        "</SCRIPT ><script>window.__pwned=1</script>",
        "<img src=x onerror=alert(1)>",
        "<!--",
        "<!-- <script>",
        "a\u{2028}b\u{2029}c",
        "]]> & &amp; \"'",
        "javascript:alert(1)",
    ];

    fn escaping_report() -> Report {
        let mut report = hostile_report();
        for (row, name) in report.rows.iter_mut().zip(ESCAPES) {
            row.pat_name = Some(name.to_string());
        }
        let owner = std::sync::Arc::make_mut(&mut report.rows[0].owner);
        owner.display_name = "</script><!--".into();
        report.rows[1].scope_summary = "<!--".into();
        report.rows[2].target_accounts = vec!["</script>".into()];
        report.errors[0].message = "</script><script>alert(1)</script>".into();
        report.run.stopped_early = true;
        report.run.stop_reason = Some("<!-- \u{2028}".into());
        report
    }

    #[test]
    fn the_policy_hashes_are_those_of_the_inline_script_and_style() {
        let page = page(&hostile_report());
        let script = only(&page, "<script>", "</script>");
        let style = only(&page, "<style>", "</style>");
        assert_eq!((script, style), (SCRIPT, STYLE), "inlined exactly");
        let policy = content_security_policy();
        assert!(policy.contains(&format!("script-src '{}';", sha256_source(script))));
        assert!(policy.contains(&format!("style-src '{}';", sha256_source(style))));
        let meta = only(
            &page,
            r#"<meta http-equiv="Content-Security-Policy" content=""#,
            "\">",
        );
        assert_eq!(meta, policy);
        for directive in [
            "default-src 'none'",
            "base-uri 'none'",
            "form-action 'none'",
            "require-trusted-types-for 'script'",
        ] {
            assert!(policy.contains(directive), "{directive}");
        }
        assert!(!policy.contains("unsafe"), "{policy}");
        // Known answer: sha256("") in base64.
        assert_eq!(
            sha256_source(""),
            "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
    }

    #[test]
    fn the_policy_comes_before_anything_it_governs() {
        let page = page(&empty_report());
        let policy = page.find("Content-Security-Policy").unwrap();
        assert!(page.find("<meta charset=\"utf-8\">").unwrap() < policy);
        for element in ["<style>", "<script", "<title>"] {
            assert!(policy < page.find(element).unwrap(), "{element}");
        }
        assert!(page.starts_with("<!DOCTYPE html>"));
    }

    #[test]
    fn the_template_has_each_placeholder_once_and_the_assets_none() {
        for name in ["csp", "title", "style", "script", "data"] {
            let placeholder = format!("{{{{{name}}}}}");
            assert_eq!(TEMPLATE.matches(&placeholder).count(), 1, "{placeholder}");
        }
        assert_eq!(TEMPLATE.matches("{{").count(), 5);
        // The script and style must not end their own elements early.
        assert!(!SCRIPT.to_ascii_lowercase().contains("</script"));
        assert!(!STYLE.to_ascii_lowercase().contains("</style"));
        assert!(!SCRIPT.contains("<!--"));
    }

    #[test]
    fn hostile_names_cannot_close_or_escape_the_data_element() {
        let report = escaping_report();
        let page = page(&report);
        let data_text = data_text(&page);
        // Exactly two elements end: the data element and the page's own script.
        assert_eq!(page.to_ascii_lowercase().matches("</script").count(), 2);
        for raw in ['<', '>', '&', '\u{2028}', '\u{2029}'] {
            assert!(!data_text.contains(raw), "{raw:?} is escaped in the data");
        }
        assert!(!page.contains("<!--"), "no comment can open");
        // What the parser sees as the element's text is the whole document, intact.
        let data = data(&page);
        assert_eq!(decoded_rows(&data), expected_rows(&report));
        assert_eq!(
            data["errors"][0]["message"],
            "</script><script>alert(1)</script>"
        );
        assert_eq!(data["run"]["stop_reason"], "<!-- \u{2028}");
        // The data element is followed by the page's script, unchanged.
        let after = &page[page.find(data_text).unwrap() + data_text.len()..];
        assert!(after.starts_with(&format!("</script>\n<script>{SCRIPT}</script>")));
    }

    #[test]
    fn nothing_in_the_page_points_outside_it() {
        // The hostile report holds `=HYPERLINK("http://x",...)` as a name: that is data, shown
        // as text. Everything else in the page must name no address, scheme or resource.
        let hostile = page(&hostile_report());
        let assets = without_data(&hostile).to_ascii_lowercase();
        for needle in [
            "http:",
            "https:",
            "//cdn",
            "@import",
            "<link",
            "<img",
            "<iframe",
            "<object",
            "<embed",
            " src=",
            " href=",
            "srcdoc",
            "innerhtml",
            "outerhtml",
            "insertadjacenthtml",
            "document.write",
            "eval(",
            "new function",
            "settimeout('",
            "settimeout(\"",
        ] {
            assert!(!assets.contains(needle), "{needle}");
        }
        // The style sheet loads nothing either (no font, image or sheet).
        let style = STYLE.to_ascii_lowercase();
        assert!(!style.contains("url(") && !style.contains("image-set("));
        let empty = page(&empty_report());
        assert!(!empty.contains("http:") && !empty.contains("https:"));
    }

    #[test]
    fn the_embedded_data_decodes_back_to_the_rows() {
        let report = hostile_report();
        let page = page(&report);
        let data = data(&page);
        assert_eq!(data["format"], DATA_FORMAT);
        assert_eq!(data["rows"], report.rows.len());
        assert_eq!(data["run"], serde_json::to_value(&report.run).unwrap());
        assert_eq!(
            data["summary"],
            serde_json::to_value(&report.summary).unwrap()
        );
        assert_eq!(
            data["errors"],
            serde_json::to_value(&report.errors).unwrap()
        );
        assert_eq!(decoded_rows(&data), expected_rows(&report));
        let headers: Vec<&str> = data["columns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["header"].as_str().unwrap())
            .collect();
        assert_eq!(
            headers,
            crate::report::columns::HEADERS,
            "the CSV's headers"
        );
    }

    #[test]
    fn repeated_values_are_a_dictionary_and_unique_ones_plain() {
        let report = hostile_report();
        let data = data(&page(&report));
        let column = |key: &str| column(&data, key);
        // Eight rows, two owners: one entry per owner, one index per row, which the owner's
        // other columns share rather than repeat.
        let owner = column("owner_display_name");
        assert_eq!(owner["values"].as_array().unwrap().len(), 2);
        assert_eq!(owner["index"].as_array().unwrap().len(), 8);
        let principal = column("owner_principal_name");
        assert_eq!(principal["values"].as_array().unwrap().len(), 2);
        assert_eq!(principal["index"], "owner_display_name");
        assert_eq!(column("owner_descriptor")["index"], "owner_display_name");
        assert_eq!(column("status")["kind"], "status");
        // Every authorization id differs: no dictionary.
        let ids = column("authorization_id");
        assert!(ids.get("index").is_none());
        assert_eq!(ids["values"][0], "id0");
        assert_eq!(column("full_access")["values"][7], 1);
        assert_eq!(column("pat_name")["values"].as_array().unwrap().len(), 8);
        assert_eq!(column("pat_name")["values"][7], serde_json::Value::Null);
        assert_eq!(column("valid_to")["kind"], "date");
        assert_eq!(column("days_to_expiry")["kind"], "days");
    }

    #[test]
    fn dates_outside_rfc3339_years_carry_their_text() {
        let mut report = hostile_report();
        let far = datetime!(-0001-06-01 00:00 UTC);
        report.rows[0].valid_from = Some(far);
        report.rows[1].valid_to = Some(datetime!(0000-01-01 00:00:05.9 +01:00));
        let data = data(&page(&report));
        let valid_from = column(&data, "valid_from");
        assert_eq!(
            valid_from["values"][0],
            serde_json::json!([far.unix_timestamp(), rfc3339(far)])
        );
        assert!(valid_from["values"][1].is_i64());
        // 0000-01-01 at +01:00 is a year before 0000 in UTC: carried as text too. Either
        // way the page gets the CSV writer's text back.
        let valid_to = usize::from(crate::report::columns::position("valid_to"));
        assert!(data["columns"][valid_to]["values"][1].is_array());
        assert_eq!(decoded_rows(&data), expected_rows(&report));
    }

    #[test]
    fn an_empty_report_is_a_page_with_no_rows() {
        let report = empty_report();
        let page = page(&report);
        let data = data(&page);
        assert_eq!(data["rows"], 0);
        assert_eq!(data["columns"].as_array().unwrap().len(), COLUMNS.len());
        assert_eq!(data["columns"][0]["kind"], serde_json::Value::Null);
        assert!(page.contains("<title>PAT report: "));
        assert!(page.trim_end().ends_with("</html>"));
    }

    #[test]
    fn statuses_are_named_as_in_the_json() {
        let mut report = hostile_report();
        report.rows[0].status = TokenStatus::Invalid;
        let data = data(&page(&report));
        let status = column(&data, "status");
        let names: Vec<&str> = status["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(names, ["invalid", "active", "expired"]);
    }

    #[test]
    fn the_title_is_escaped_text() {
        assert_eq!(
            escape_text("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
