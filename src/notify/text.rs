//! Text for people: the wording both chat renderings share, and the cleaning every piece of
//! organization text gets before a renderer escapes it for its own markup.
//!
//! Cleaning makes a name one short line: control and invisible direction characters become
//! spaces or go (a newline would start a Markdown list or quote, a right-to-left override
//! would reverse what follows), long names are cut with an ellipsis (a 10,000-character name
//! must not push a card past the service's size limit), and `://` is broken with an invisible
//! word joiner so a chat client does not turn a URL in a PAT name into a link.

use super::notice::{MAX_FINDINGS, Notice};
use std::net::IpAddr;
use url::Url;

/// Longest organization name, owner or PAT name shown.
pub const MAX_NAME_CHARS: usize = 80;
/// Longest finding title shown.
pub const MAX_TITLE_CHARS: usize = 120;
/// Longest reason for an incomplete report shown.
pub const MAX_REASON_CHARS: usize = 300;
/// Longest link made into a button (Slack's limit for a button URL is 3000).
pub const MAX_LINK_CHARS: usize = 3000;

const WORD_JOINER: char = '\u{2060}';

/// `text` as one line of at most `max` characters, without control or invisible formatting
/// characters, with URLs defused. Escaping for a markup is the renderer's job.
pub fn clean(text: &str, max: usize) -> String {
    let mut line = String::with_capacity(text.len().min(max * 4));
    let mut last_space = true; // no leading spaces
    for c in text.chars() {
        let c = if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') {
            ' '
        } else if is_invisible(c) {
            continue;
        } else {
            c
        };
        if c.is_whitespace() {
            if !last_space {
                line.push(' ');
            }
            last_space = true;
        } else {
            line.push(c);
            last_space = false;
        }
    }
    let line = cut(line.trim_end(), max);
    line.replace("://", &format!(":{WORD_JOINER}//"))
}

/// Like [`clean`], with `missing` for an empty text.
pub fn clean_or(text: Option<&str>, max: usize, missing: &str) -> String {
    let cleaned = clean(text.unwrap_or(""), max);
    if cleaned.is_empty() {
        missing.to_owned()
    } else {
        cleaned
    }
}

/// Zero-width and direction-changing characters: invisible, and able to make a name read
/// differently from what it is.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{061C}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
    )
}

/// At most `max` characters; a cut text ends with `…`.
pub fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// `YYYY-MM-DD` in UTC.
pub fn date(at: time::OffsetDateTime) -> String {
    let at = at.checked_to_offset(time::UtcOffset::UTC).unwrap_or(at);
    format!(
        "{:04}-{:02}-{:02}",
        at.year(),
        u8::from(at.month()),
        at.day()
    )
}

/// `YYYY-MM-DD hh:mm UTC`.
pub fn date_time(at: time::OffsetDateTime) -> String {
    let at = at.checked_to_offset(time::UtcOffset::UTC).unwrap_or(at);
    format!("{} {:02}:{:02} UTC", date(at), at.hour(), at.minute())
}

/// Whether `url` may be posted to or shown as a link: `https`, or `http` to this machine.
pub fn is_allowed_url(url: &Url) -> bool {
    match url.scheme() {
        "https" => url.host().is_some(),
        "http" => is_loopback(url),
        _ => false,
    }
}

/// Loopback: `localhost`, `127.0.0.0/8`, `::1`.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

/// The report link as it may become a button: only an allowed URL without user name or
/// password, normalized by the URL parser (no spaces, quotes or angle brackets left).
pub fn safe_link(link: Option<&str>) -> Option<String> {
    let url = Url::parse(link?.trim()).ok()?;
    let ok = is_allowed_url(&url)
        && url.username().is_empty()
        && url.password().is_none()
        && url.as_str().len() <= MAX_LINK_CHARS;
    ok.then(|| url.to_string())
}

/// The wording of a notification, cleaned but not escaped: the chat renderings differ only in
/// markup.
#[derive(Debug, Clone, PartialEq)]
pub struct Digest {
    /// "PAT report: {org}".
    pub title: String,
    /// "Generated YYYY-MM-DD hh:mm UTC".
    pub generated: String,
    /// The reason a partial report is partial; `None` for a complete one.
    pub incomplete: Option<String>,
    pub headline: Vec<(&'static str, String)>,
    pub findings: Vec<FindingLine>,
    /// Findings in the notice beyond those shown.
    pub more_findings: usize,
    /// `None`: nothing was compared.
    pub changes: Option<Vec<(&'static str, String)>>,
    pub expiries: Vec<(String, String)>,
    pub link: Option<String>,
}

/// One finding, cleaned.
#[derive(Debug, Clone, PartialEq)]
pub struct FindingLine {
    /// "Critical", "High", "Medium", "Low", or the cleaned text of anything else.
    pub severity: String,
    pub title: String,
    pub owner: String,
    pub pat_name: String,
    /// "expires YYYY-MM-DD" or "no expiry date".
    pub expiry: String,
}

pub const FIRST_RUN: &str = "No comparison with an earlier report.";
pub const INCOMPLETE: &str = "Incomplete report:";
pub const NO_FINDINGS: &str = "No findings.";
pub const OPEN_REPORT: &str = "Open the report";

impl Digest {
    pub fn of(notice: &Notice) -> Self {
        let h = &notice.headline;
        let n = |v: usize| v.to_string();
        let headline = vec![
            ("Users with PATs", n(h.users_with_pats)),
            ("PATs", n(h.pats)),
            ("Full access", n(h.full_access)),
            ("All organizations (global)", n(h.global)),
            ("Expired", n(h.expired)),
            ("Critical", n(h.critical)),
            ("High", n(h.high)),
            ("Medium", n(h.medium)),
            ("Low", n(h.low)),
        ];
        let findings = notice
            .top_findings
            .iter()
            .take(MAX_FINDINGS)
            .map(|f| FindingLine {
                severity: severity(&f.severity),
                title: clean_or(Some(&f.title), MAX_TITLE_CHARS, "(untitled)"),
                owner: clean_or(Some(&f.owner), MAX_NAME_CHARS, "(unknown owner)"),
                pat_name: clean_or(f.pat_name.as_deref(), MAX_NAME_CHARS, "(unnamed)"),
                expiry: f.valid_to.map_or_else(
                    || "no expiry date".to_owned(),
                    |t| format!("expires {}", date(t)),
                ),
            })
            .collect();
        let changes = notice.changes.map(|c| {
            vec![
                ("New PATs", n(c.new_pats)),
                ("PATs gone", n(c.gone_pats)),
                ("PATs changed", n(c.changed_pats)),
                ("New holders", n(c.new_holders)),
                ("Holders gone", n(c.holders_gone)),
            ]
        });
        let expiries = notice
            .expiries
            .iter()
            .take(MAX_EXPIRY_STEPS)
            .map(|s| {
                let days = if s.within_days == 1 { "day" } else { "days" };
                (format!("Within {} {days}", s.within_days), n(s.pats))
            })
            .collect();
        let incomplete = (!notice.complete).then(|| {
            clean_or(
                notice.incomplete_reason.as_deref(),
                MAX_REASON_CHARS,
                "the scan did not finish",
            )
        });
        Digest {
            title: format!(
                "PAT report: {}",
                clean_or(Some(&notice.org), MAX_NAME_CHARS, "(unnamed organization)")
            ),
            generated: format!("Generated {}", date_time(notice.generated)),
            incomplete,
            headline,
            findings,
            more_findings: notice.top_findings.len().saturating_sub(MAX_FINDINGS),
            changes,
            expiries,
            link: safe_link(notice.link.as_deref()),
        }
    }

    /// The one-line summary (Slack's notification text).
    pub fn summary(&self, notice: &Notice) -> String {
        let h = &notice.headline;
        let mut line = String::new();
        if self.incomplete.is_some() {
            line.push_str("INCOMPLETE ");
        }
        line.push_str(&format!(
            "{}: {} PATs held by {} users; {} critical, {} high findings",
            self.title, h.pats, h.users_with_pats, h.critical, h.high
        ));
        line
    }
}

/// Expiry steps shown (a notice carries a handful; more would only crowd the message).
const MAX_EXPIRY_STEPS: usize = 10;

fn severity(text: &str) -> String {
    match text.trim().to_ascii_lowercase().as_str() {
        "critical" => "Critical".into(),
        "high" => "High".into(),
        "medium" => "Medium".into(),
        "low" => "Low".into(),
        _ => clean_or(Some(text), 12, "Unrated"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_one_short_inert_line() {
        assert_eq!(clean("  a\r\n- b\t\u{7}c  ", 80), "a - b c");
        assert_eq!(clean("ab\u{202E}cd\u{200B}e", 80), "abcde");
        let long = "x".repeat(10_000);
        let cut = clean(&long, 80);
        assert_eq!(cut.chars().count(), 80);
        assert!(cut.ends_with('…'));
        assert!(!clean("see https://evil.example", 80).contains("://"));
    }

    #[test]
    fn only_https_or_loopback_http_links_are_kept() {
        assert!(safe_link(Some("https://example.com/r?sig=x")).is_some());
        assert!(safe_link(Some("http://127.0.0.1:8080/r")).is_some());
        assert!(safe_link(Some("http://[::1]/r")).is_some());
        assert!(safe_link(Some("http://localhost/r")).is_some());
        for bad in [
            "http://example.com/",
            "javascript:alert(1)",
            "data:text/html,x",
            "https://user:pw@example.com/",
            "not a url",
            "",
        ] {
            assert_eq!(safe_link(Some(bad)), None, "{bad}");
        }
        let long = format!("https://example.com/{}", "a".repeat(MAX_LINK_CHARS));
        assert_eq!(safe_link(Some(&long)), None);
        // Normalized: a quote or bracket cannot survive into the markup.
        let odd = safe_link(Some("https://example.com/a\"b<c>")).unwrap_or_default();
        assert!(!odd.contains(['"', '<', '>']), "{odd}");
    }

    #[test]
    fn dates_are_utc_days() {
        let t = time::macros::datetime!(2026-03-01 01:30 +05:00);
        assert_eq!(date(t), "2026-02-28");
        assert_eq!(date_time(t), "2026-02-28 20:30 UTC");
    }
}
