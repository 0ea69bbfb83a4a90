//! Microsoft Teams: an Adaptive Card (version 1.4, what Teams renders everywhere) in the
//! message envelope a Teams Workflows "post to a channel when a webhook request is received"
//! flow expects.
//!
//! TextBlock and Fact texts are Markdown. Every piece of organization text is escaped with a
//! backslash before each Markdown character and a leading list marker, so a PAT name cannot
//! make a link, an emphasis or a list; the only link is the configured report link, as an
//! `Action.OpenUrl` button.

use super::notice::Notice;
use super::text::{Digest, FIRST_RUN, INCOMPLETE, NO_FINDINGS, OPEN_REPORT};
use serde_json::{Value, json};

/// Teams refuses a message over 28 KB; stay clear of it.
pub const MAX_PAYLOAD_BYTES: usize = 27 * 1024;
pub const CARD_VERSION: &str = "1.4";
pub const CARD_CONTENT_TYPE: &str = "application/vnd.microsoft.card.adaptive";

/// The Teams Workflows payload for `notice`.
pub fn payload(notice: &Notice) -> Value {
    let digest = Digest::of(notice);
    // Cleaning keeps every text short, so this fits; if it ever does not, findings go first.
    let mut shown = digest.findings.len();
    loop {
        let message = message(&digest, shown);
        let size = serde_json::to_vec(&message).map_or(usize::MAX, |b| b.len());
        if size <= MAX_PAYLOAD_BYTES || shown == 0 {
            return message;
        }
        shown -= 1;
    }
}

fn message(d: &Digest, shown: usize) -> Value {
    let mut body = vec![json!({
        "type": "TextBlock",
        "text": escape(&d.title),
        "size": "Large",
        "weight": "Bolder",
        "wrap": true,
    })];
    if let Some(reason) = &d.incomplete {
        body.push(json!({
            "type": "TextBlock",
            "text": format!("**{INCOMPLETE}** {}", escape(reason)),
            "color": "Attention",
            "weight": "Bolder",
            "wrap": true,
        }));
    }
    body.push(json!({
        "type": "TextBlock",
        "text": escape(&d.generated),
        "isSubtle": true,
        "spacing": "None",
        "wrap": true,
    }));
    body.push(facts(&d.headline));

    body.push(heading("Top findings"));
    if d.findings.is_empty() {
        body.push(line(NO_FINDINGS));
    }
    for f in d.findings.iter().take(shown) {
        body.push(line(&format!(
            "**{}**: {}\n\nOwner: {} · PAT: {} · {}",
            escape(&f.severity),
            escape(&f.title),
            escape(&f.owner),
            escape(&f.pat_name),
            escape(&f.expiry),
        )));
    }
    let more = d.more_findings + d.findings.len().saturating_sub(shown);
    if more > 0 {
        body.push(line(&format!("…and {more} more in the report.")));
    }

    body.push(heading("Changes since the last report"));
    match &d.changes {
        Some(changes) => body.push(facts(changes)),
        None => body.push(line(FIRST_RUN)),
    }
    if !d.expiries.is_empty() {
        body.push(heading("Valid PATs expiring soon"));
        body.push(facts(&d.expiries));
    }

    let actions: Vec<Value> = d
        .link
        .iter()
        .map(|url| json!({"type": "Action.OpenUrl", "title": OPEN_REPORT, "url": url}))
        .collect();
    json!({
        "type": "message",
        "attachments": [{
            "contentType": CARD_CONTENT_TYPE,
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": CARD_VERSION,
                "msteams": {"width": "Full"},
                "body": body,
                "actions": actions,
            },
        }],
    })
}

fn heading(text: &str) -> Value {
    json!({"type": "TextBlock", "text": escape(text), "weight": "Bolder", "separator": true, "wrap": true})
}

/// `text` is Markdown already escaped.
fn line(text: &str) -> Value {
    json!({"type": "TextBlock", "text": text, "spacing": "Small", "wrap": true})
}

fn facts<K: AsRef<str>>(pairs: &[(K, String)]) -> Value {
    let facts: Vec<Value> = pairs
        .iter()
        .map(|(k, v)| json!({"title": escape(k.as_ref()), "value": escape(v)}))
        .collect();
    json!({"type": "FactSet", "facts": facts})
}

/// `text` as literal Adaptive Card Markdown: a backslash before every character Markdown (or
/// the card's `{{DATE()}}` functions) could act on, and before a leading list marker.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    if text.starts_with(['-', '+']) {
        out.push('\\');
    }
    let digits = text.chars().take_while(char::is_ascii_digit).count();
    for (i, c) in text.chars().enumerate() {
        let list_number = digits > 0 && i == digits && c == '.';
        if list_number || is_markdown(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn is_markdown(c: char) -> bool {
    matches!(
        c,
        '\\' | '*'
            | '_'
            | '['
            | ']'
            | '('
            | ')'
            | '~'
            | '>'
            | '<'
            | '#'
            | '`'
            | '{'
            | '}'
            | '|'
            | '!'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_in_names_is_escaped() {
        assert_eq!(
            escape("[click](https://evil.example)"),
            r"\[click\]\(https://evil.example\)"
        );
        assert_eq!(
            escape("**bold** _i_ `c` ~s~"),
            r"\*\*bold\*\* \_i\_ \`c\` \~s\~"
        );
        assert_eq!(escape("- item"), r"\- item");
        assert_eq!(escape("+ item"), r"\+ item");
        assert_eq!(escape("12. item"), r"12\. item");
        assert_eq!(escape("1.5 is fine"), r"1\.5 is fine");
        assert_eq!(escape("v1.5"), "v1.5");
        assert_eq!(escape("# head > quote"), r"\# head \> quote");
        assert_eq!(escape(r"a\b"), r"a\\b");
        assert_eq!(escape("{{DATE(x)}}"), r"\{\{DATE\(x\)\}\}");
    }
}
