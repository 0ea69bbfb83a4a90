//! Slack: an incoming-webhook message of Block Kit blocks, with a plain `text` for
//! notifications and clients that show no blocks.
//!
//! Organization text is escaped (`&`, `<`, `>`), so `<!channel>` or `<https://evil|click>` in
//! a PAT name is shown, not acted on, and every `mrkdwn` text is `verbatim` (no automatic
//! links, channel names or mentions). The only link is the configured report link, as a
//! button. Every text is cut to Slack's limits.

use super::notice::Notice;
use super::text::{Digest, FIRST_RUN, INCOMPLETE, NO_FINDINGS, OPEN_REPORT};
use serde_json::{Value, json};

/// Slack's limits for the parts used here.
pub const MAX_HEADER_CHARS: usize = 150;
pub const MAX_SECTION_CHARS: usize = 3000;
pub const MAX_FIELD_CHARS: usize = 2000;
pub const MAX_FIELDS: usize = 10;
pub const MAX_BLOCKS: usize = 50;
/// Slack cuts a message's `text` beyond this; ours is one line.
pub const MAX_TEXT_CHARS: usize = 3000;

/// The Slack incoming-webhook payload for `notice`.
pub fn payload(notice: &Notice) -> Value {
    let d = Digest::of(notice);
    let mut blocks = vec![json!({
        "type": "header",
        "text": {"type": "plain_text", "text": fit(&escape(&d.title), MAX_HEADER_CHARS), "emoji": false},
    })];
    if let Some(reason) = &d.incomplete {
        blocks.push(section(&format!(
            ":warning: *{INCOMPLETE}* {}",
            escape(reason)
        )));
    }
    let fields: Vec<Value> = d
        .headline
        .iter()
        .take(MAX_FIELDS)
        .map(|(k, v)| mrkdwn(&format!("*{}*\n{}", escape(k), escape(v)), MAX_FIELD_CHARS))
        .collect();
    blocks.push(json!({"type": "section", "fields": fields}));
    blocks.push(json!({"type": "divider"}));

    if d.findings.is_empty() {
        blocks.push(section(&format!("*Top findings*\n{NO_FINDINGS}")));
    } else {
        blocks.push(section("*Top findings*"));
    }
    for f in &d.findings {
        blocks.push(section(&format!(
            "*{}*: {}\nOwner: {} · PAT: {} · {}",
            escape(&f.severity),
            escape(&f.title),
            escape(&f.owner),
            escape(&f.pat_name),
            escape(&f.expiry),
        )));
    }
    if d.more_findings > 0 {
        blocks.push(context(&format!(
            "…and {} more in the report.",
            d.more_findings
        )));
    }

    let changes = match &d.changes {
        Some(changes) => join(changes),
        None => FIRST_RUN.to_owned(),
    };
    blocks.push(section(&format!(
        "*Changes since the last report*\n{changes}"
    )));
    if !d.expiries.is_empty() {
        blocks.push(section(&format!(
            "*Valid PATs expiring soon*\n{}",
            join(&d.expiries)
        )));
    }
    if let Some(url) = &d.link {
        blocks.push(json!({
            "type": "actions",
            "elements": [{
                "type": "button",
                "text": {"type": "plain_text", "text": OPEN_REPORT, "emoji": false},
                "url": url,
            }],
        }));
    }
    blocks.push(context(&escape(&d.generated)));
    // Built well under the limit; the cap is a guard should the layout grow.
    blocks.truncate(MAX_BLOCKS);

    json!({
        "text": fit(&escape(&d.summary(notice)), MAX_TEXT_CHARS),
        "blocks": blocks,
        "unfurl_links": false,
        "unfurl_media": false,
    })
}

fn join<K: AsRef<str>>(pairs: &[(K, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}: {}", escape(k.as_ref()), escape(v)))
        .collect::<Vec<_>>()
        .join(" · ")
}

/// `text` is mrkdwn already escaped.
fn section(text: &str) -> Value {
    json!({"type": "section", "text": mrkdwn(text, MAX_SECTION_CHARS)})
}

fn context(text: &str) -> Value {
    json!({"type": "context", "elements": [mrkdwn(text, MAX_SECTION_CHARS)]})
}

fn mrkdwn(text: &str, max: usize) -> Value {
    json!({"type": "mrkdwn", "text": fit(text, max), "verbatim": true})
}

/// `text` with Slack's three control characters escaped.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// At most `max` characters of escaped text, not ending inside an entity.
fn fit(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    if let Some(amp) = out.rfind('&')
        && !out[amp..].contains(';')
    {
        out.truncate(amp);
    }
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(
            escape("<!channel> & <https://evil|click>"),
            "&lt;!channel&gt; &amp; &lt;https://evil|click&gt;"
        );
    }

    #[test]
    fn cutting_never_leaves_half_an_entity() {
        let text = format!("{}&amp;", "a".repeat(8));
        assert_eq!(fit(&text, 11), "aaaaaaaa…");
        assert_eq!(fit("abc", 3), "abc");
        assert_eq!(fit("abcd", 3), "ab…");
    }
}
