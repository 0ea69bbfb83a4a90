//! The payloads and their delivery, end to end: a local webhook receiver (axum on loopback)
//! records what arrives and answers as scripted.
//!
//! Time: the tests that talk to the receiver run the retry loop on a clock that records each
//! pause instead of taking it, so back-off is checked exactly and nothing waits. They do not
//! pause tokio's clock: with a real socket, a paused clock jumps ahead whenever the runtime
//! waits for the kernel, and a server's or pool's idle timer could then close a connection
//! mid-test. The one test that needs tokio's timers (a server that never answers) has no
//! such timers and runs on paused time.

use super::deliver::{Clock, deliver_with};
use super::notice::{ChangeCounts, ExpiryStep, Headline, Notice, NoticeFinding};
use super::*;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use time::macros::datetime;

const SECRET_PATH: &str = "secret-signature-XYZ";
const SECRET_QUERY: &str = "SECRETSIG";

// ---------------------------------------------------------------------------------------
// Fixtures

fn notice() -> Notice {
    Notice {
        org: "fabrikam".into(),
        generated: datetime!(2026-05-04 07:05:03 UTC),
        complete: true,
        incomplete_reason: None,
        link: Some("https://reports.example/view/fabrikam?sv=1&sig=abc".into()),
        headline: Headline {
            users_with_pats: 12,
            pats: 40,
            full_access: 5,
            global: 2,
            expired: 3,
            critical: 1,
            high: 4,
            medium: 6,
            low: 7,
        },
        top_findings: vec![
            NoticeFinding {
                severity: "critical".into(),
                title: "Full access to every organization".into(),
                owner: "ana@fabrikam.example".into(),
                pat_name: Some("deploy".into()),
                valid_to: Some(datetime!(2026-03-01 01:30 +05:00)),
            },
            NoticeFinding {
                severity: "high".into(),
                title: "Valid for more than a year".into(),
                owner: "bo@fabrikam.example".into(),
                pat_name: None,
                valid_to: None,
            },
        ],
        changes: Some(ChangeCounts {
            new_pats: 2,
            gone_pats: 1,
            changed_pats: 0,
            new_holders: 1,
            holders_gone: 0,
            not_compared: 0,
        }),
        expiries: [1, 7, 14, 30, 60]
            .into_iter()
            .zip([0, 1, 2, 3, 5])
            .map(|(within_days, pats)| ExpiryStep { within_days, pats })
            .collect(),
    }
}

const HOSTILE: [&str; 12] = [
    "<!channel>",
    "[click](https://evil.example)",
    "=cmd|' /C calc'!A0",
    "<https://evil.example|click>",
    "a\r\n- b\u{7}\u{0}\u{1b}[31m\u{202E}c\u{2028}d",
    "*bold* _it_ `code` ~strike~ **b**",
    "&amp; &lt;!here&gt;",
    "1. list",
    "# heading",
    "- item",
    "{{DATE(2017-02-14T06:08:00Z, SHORT)}}",
    "![img](https://evil.example/x.png)",
];

/// Every organization text hostile, very long or both, and more findings than are shown.
fn hostile_notice() -> Notice {
    let long = "x".repeat(10_000);
    let wide = "💣".repeat(10_000);
    let mut n = notice();
    n.org = format!("{} {long}", HOSTILE[0]);
    n.complete = false;
    n.incomplete_reason = Some(format!("{} {}", HOSTILE[1], HOSTILE[4]));
    n.top_findings = (0..15)
        .map(|i| NoticeFinding {
            severity: if i == 3 {
                long.clone()
            } else {
                "critical".into()
            },
            title: format!(
                "{} {}",
                HOSTILE[i % 12],
                if i % 2 == 0 { &long } else { &wide }
            ),
            owner: format!(
                "{}{}",
                HOSTILE[(i + 1) % 12],
                if i % 3 == 0 { &wide } else { "" }
            ),
            pat_name: Some(format!(
                "{}{}",
                HOSTILE[(i + 2) % 12],
                if i % 2 == 1 { &long } else { "" }
            )),
            valid_to: Some(datetime!(2027-01-01 00:00 UTC)),
        })
        .collect();
    n
}

/// Every string in `value`, with the key it is under.
fn strings<'a>(value: &'a Value, key: &'a str, out: &mut Vec<(&'a str, &'a str)>) {
    match value {
        Value::String(s) => out.push((key, s)),
        Value::Array(items) => items.iter().for_each(|v| strings(v, key, out)),
        Value::Object(map) => map.iter().for_each(|(k, v)| strings(v, k, out)),
        _ => {}
    }
}

fn all_strings(value: &Value) -> Vec<(&str, &str)> {
    let mut out = Vec::new();
    strings(value, "", &mut out);
    out
}

/// No control characters but the line breaks the renderers put in, no invisible ones.
fn assert_printable(value: &Value) {
    for (key, s) in all_strings(value) {
        let bad = s
            .chars()
            .find(|c| (c.is_control() && *c != '\n') || matches!(c, '\u{202E}' | '\u{2028}'));
        assert_eq!(bad, None, "{key}: {s:?}");
    }
}

// ---------------------------------------------------------------------------------------
// Payloads

fn card(payload: &Value) -> &Value {
    &payload["attachments"][0]["content"]
}

/// Adaptive Card Markdown with its escapes taken out: what is left is what Markdown acts on.
fn unescaped_markdown(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            chars.next();
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn teams_card_has_the_workflows_shape_and_the_wording() {
    let p = format::teams(&notice());
    assert_eq!(p["type"], "message");
    let attachments = p["attachments"].as_array().unwrap();
    assert_eq!(attachments.len(), 1);
    assert_eq!(attachments[0]["contentType"], teams::CARD_CONTENT_TYPE);
    assert!(attachments[0]["contentUrl"].is_null());
    let c = card(&p);
    assert_eq!(c["type"], "AdaptiveCard");
    assert_eq!(c["version"], "1.4");
    assert_eq!(
        c["$schema"],
        "http://adaptivecards.io/schemas/adaptive-card.json"
    );
    for element in c["body"].as_array().unwrap() {
        let kind = element["type"].as_str().unwrap();
        assert!(matches!(kind, "TextBlock" | "FactSet"), "{kind}");
        if kind == "TextBlock" {
            assert!(element["text"].is_string());
        }
    }
    assert_eq!(
        c["actions"],
        serde_json::json!([{
            "type": "Action.OpenUrl",
            "title": "Open the report",
            "url": "https://reports.example/view/fabrikam?sv=1&sig=abc"
        }])
    );
    let text = c["body"].to_string();
    for expected in [
        "PAT report: fabrikam",
        "Generated 2026-05-04 07:05 UTC",
        "Users with PATs",
        "Top findings",
        "**Critical**: Full access to every organization",
        "PAT: deploy · expires 2026-02-28",
        "PAT: \\\\(unnamed\\\\) · no expiry date",
        "Changes since the last report",
        "New PATs",
        "Within 1 day",
        "Within 60 days",
    ] {
        assert!(text.contains(expected), "{expected} in {text}");
    }
    assert!(!text.contains("Incomplete"));
}

#[test]
fn slack_message_has_text_and_valid_blocks_and_the_wording() {
    let p = format::slack(&notice());
    assert!(
        p["text"]
            .as_str()
            .unwrap()
            .starts_with("PAT report: fabrikam: 40 PATs")
    );
    let blocks = p["blocks"].as_array().unwrap();
    assert_slack_limits(&p);
    assert_eq!(blocks[0]["type"], "header");
    assert_eq!(blocks[1]["fields"].as_array().unwrap().len(), 9);
    assert_eq!(blocks.last().unwrap()["type"], "context");
    let button = blocks
        .iter()
        .find(|b| b["type"] == "actions")
        .map(|b| &b["elements"][0]);
    assert_eq!(
        button.map(|b| &b["url"]),
        Some(&Value::from(
            "https://reports.example/view/fabrikam?sv=1&sig=abc"
        ))
    );
    let text = p["blocks"].to_string();
    for expected in [
        "*Critical*: Full access to every organization",
        "PAT: deploy · expires 2026-02-28",
        "*Changes since the last report*\\nNew PATs: 2 · PATs gone: 1",
        "Within 7 days: 1",
        "Generated 2026-05-04 07:05 UTC",
    ] {
        assert!(text.contains(expected), "{expected} in {text}");
    }
}

/// Slack's documented limits for every block used, and valid block types only.
fn assert_slack_limits(p: &Value) {
    let blocks = p["blocks"].as_array().unwrap();
    assert!(blocks.len() <= slack::MAX_BLOCKS);
    assert!(p["text"].as_str().unwrap().chars().count() <= slack::MAX_TEXT_CHARS);
    let chars = |v: &Value| v.as_str().unwrap().chars().count();
    for b in blocks {
        match b["type"].as_str().unwrap() {
            "header" => {
                assert_eq!(b["text"]["type"], "plain_text");
                assert!(chars(&b["text"]["text"]) <= slack::MAX_HEADER_CHARS);
            }
            "section" => {
                if let Some(fields) = b["fields"].as_array() {
                    assert!(fields.len() <= slack::MAX_FIELDS);
                    for f in fields {
                        assert!(chars(&f["text"]) <= slack::MAX_FIELD_CHARS);
                    }
                } else {
                    assert!(chars(&b["text"]["text"]) <= slack::MAX_SECTION_CHARS);
                }
            }
            "context" => {
                let elements = b["elements"].as_array().unwrap();
                assert!(!elements.is_empty() && elements.len() <= 10);
            }
            "actions" => assert_eq!(b["elements"][0]["type"], "button"),
            "divider" => {}
            other => panic!("unexpected block type {other}"),
        }
    }
    // Every mrkdwn text is verbatim: no automatic links or mentions.
    let mut objects = Vec::new();
    collect_objects(&p["blocks"], &mut objects);
    for o in objects.iter().filter(|o| o["type"] == "mrkdwn") {
        assert_eq!(o["verbatim"], true, "{o}");
    }
}

fn collect_objects<'a>(value: &'a Value, out: &mut Vec<&'a Value>) {
    match value {
        Value::Array(items) => items.iter().for_each(|v| collect_objects(v, out)),
        Value::Object(map) => {
            out.push(value);
            map.values().for_each(|v| collect_objects(v, out));
        }
        _ => {}
    }
}

#[test]
fn generic_json_is_the_notice_with_a_schema() {
    let n = notice();
    let p = format::generic(&n);
    assert_eq!(p["schema"], "patreport.notice/1");
    assert_eq!(p["generated"], "2026-05-04T07:05:03Z");
    let back: Notice = serde_json::from_value(p).unwrap();
    assert_eq!(back, n);
    // At most ten findings, texts untouched.
    let hostile = hostile_notice();
    let p = format::generic(&hostile);
    let back: Notice = serde_json::from_value(p).unwrap();
    assert_eq!(back.top_findings.len(), 10);
    assert_eq!(back.top_findings[..], hostile.top_findings[..10]);
}

#[test]
fn hostile_names_are_inert_and_short_in_teams() {
    let hostile = hostile_notice();
    let p = format::teams(&hostile);
    let size = serde_json::to_vec(&p).unwrap().len();
    assert!(size <= teams::MAX_PAYLOAD_BYTES, "{size} bytes");
    assert_printable(&p);
    let c = card(&p);
    // The one link is the configured one.
    let urls: Vec<_> = all_strings(&p)
        .into_iter()
        .filter(|(_, s)| s.contains("://"))
        .collect();
    assert_eq!(
        urls,
        [
            (
                "$schema",
                "http://adaptivecards.io/schemas/adaptive-card.json"
            ),
            ("url", "https://reports.example/view/fabrikam?sv=1&sig=abc"),
        ]
    );
    for (key, text) in all_strings(&c["body"]) {
        if !matches!(key, "text" | "title" | "value") {
            continue;
        }
        assert!(
            text.chars().count() <= 1000,
            "{key}: {} chars",
            text.chars().count()
        );
        let live = unescaped_markdown(text).replace("**", "");
        for c in [
            '[', ']', '(', ')', '<', '>', '`', '~', '_', '#', '*', '{', '}', '|', '!',
        ] {
            assert!(!live.contains(c), "unescaped {c:?} in {text:?}");
        }
        for marker in ["- ", "+ "] {
            assert!(!text.starts_with(marker), "{text:?}");
        }
        let digits = text.chars().take_while(char::is_ascii_digit).count();
        assert!(digits == 0 || !text[digits..].starts_with('.'), "{text:?}");
    }
    let body = c["body"].to_string();
    assert!(body.contains("**Incomplete report:**"), "{body}");
    assert!(body.contains("…and 5 more in the report."), "{body}");
    assert!(
        body.contains("\\\\=cmd|") || body.contains("=cmd\\\\|"),
        "{body}"
    );
    // The incomplete notice comes right after the title.
    assert_eq!(c["body"][1]["color"], "Attention");
}

#[test]
fn hostile_names_are_inert_and_short_in_slack() {
    let hostile = hostile_notice();
    let p = format::slack(&hostile);
    assert_slack_limits(&p);
    assert_printable(&p);
    let blocks = p["blocks"].as_array().unwrap();
    for (key, text) in all_strings(&p) {
        if key == "url" {
            assert_eq!(text, "https://reports.example/view/fabrikam?sv=1&sig=abc");
            continue;
        }
        assert!(!text.contains(['<', '>']), "{key}: {text:?}");
        assert!(!text.contains("://"), "{key}: {text:?}");
        assert!(
            text.chars().count() <= 1000,
            "{key}: {} chars",
            text.chars().count()
        );
    }
    let all = p.to_string();
    assert!(all.contains("&lt;!channel&gt;"));
    assert!(all.contains("&amp;amp; &amp;lt;!here&amp;gt;"));
    assert!(
        p["text"]
            .as_str()
            .unwrap()
            .starts_with("INCOMPLETE PAT report: &lt;!channel&gt;")
    );
    assert!(
        blocks[1]["text"]["text"]
            .as_str()
            .unwrap()
            .starts_with(":warning: *Incomplete report:* [click]")
    );
    // Ten findings, each its own section, and a note of the rest.
    assert!(all.contains("…and 5 more in the report."));
}

#[test]
fn a_notice_in_a_log_hides_the_link_signature() {
    let shown = format!("{:?}", notice());
    assert!(
        !shown.contains("sig=abc") && shown.contains("reports.example"),
        "{shown}"
    );
}

#[test]
fn only_a_safe_link_becomes_a_button() {
    for link in [
        Some("javascript:alert(1)"),
        Some("http://evil.example/report"),
        Some("https://user:pw@evil.example/report"),
        Some("not a link"),
        None,
    ] {
        let mut n = notice();
        n.link = link.map(str::to_owned);
        let t = format::teams(&n);
        assert_eq!(card(&t)["actions"], serde_json::json!([]), "{link:?}");
        let s = format::slack(&n);
        assert!(
            !s["blocks"]
                .as_array()
                .unwrap()
                .iter()
                .any(|b| b["type"] == "actions")
        );
        for text in [t.to_string(), s.to_string()] {
            assert!(
                !text.contains("evil.example") && !text.contains("javascript"),
                "{text}"
            );
        }
    }
}

#[test]
fn a_first_run_and_an_empty_report_say_so() {
    let mut n = notice();
    n.changes = None;
    n.top_findings.clear();
    n.expiries.clear();
    let t = card(&format::teams(&n))["body"].to_string();
    let s = format::slack(&n)["blocks"].to_string();
    for text in [t, s] {
        assert!(
            text.contains("No comparison with an earlier report."),
            "{text}"
        );
        assert!(text.contains("No findings."), "{text}");
        assert!(!text.contains("expiring soon"), "{text}");
    }
}

// ---------------------------------------------------------------------------------------
// Delivery

/// A clock for the retry loop that records pauses instead of taking them.
#[derive(Default)]
struct RecordingClock {
    pauses: Mutex<Vec<Duration>>,
}

impl RecordingClock {
    fn pauses(&self) -> Vec<u64> {
        self.pauses
            .lock()
            .unwrap()
            .iter()
            .map(Duration::as_secs)
            .collect()
    }
}

impl Clock for RecordingClock {
    fn elapsed(&self) -> Duration {
        self.pauses.lock().unwrap().iter().sum()
    }

    fn sleep(&self, pause: Duration) -> impl Future<Output = ()> + Send {
        self.pauses.lock().unwrap().push(pause);
        std::future::ready(())
    }

    async fn within<F>(&self, _limit: Duration, work: F) -> Option<F::Output>
    where
        F: Future + Send,
        F::Output: Send,
    {
        Some(work.await)
    }
}

/// One scripted answer.
#[derive(Clone, Copy)]
struct Reply {
    status: u16,
    retry_after: Option<&'static str>,
    /// Quote the request's path and query back, as careless servers do.
    echo: bool,
}

const OK: Reply = Reply {
    status: 200,
    retry_after: None,
    echo: false,
};

fn reply(status: u16) -> Reply {
    Reply { status, ..OK }
}

struct Seen {
    path_and_query: String,
    content_type: String,
    body: Value,
}

#[derive(Default)]
struct Receiver {
    script: Mutex<VecDeque<Reply>>,
    then: Mutex<Option<Reply>>,
    seen: Mutex<Vec<Seen>>,
}

impl Receiver {
    fn seen(&self) -> std::sync::MutexGuard<'_, Vec<Seen>> {
        self.seen.lock().unwrap()
    }
}

async fn answer(
    State(receiver): State<Arc<Receiver>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path_and_query = uri
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    receiver.seen.lock().unwrap().push(Seen {
        path_and_query: path_and_query.clone(),
        content_type: headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned(),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    });
    let next = receiver.script.lock().unwrap().pop_front();
    let reply = next.or(*receiver.then.lock().unwrap()).unwrap_or(OK);
    let status = StatusCode::from_u16(reply.status).unwrap();
    let text = if reply.echo {
        format!("invalid_payload for {path_and_query} at http://host{path_and_query}")
    } else {
        "ok".to_owned()
    };
    let mut response = (status, text).into_response();
    if let Some(secs) = reply.retry_after {
        response
            .headers_mut()
            .insert("retry-after", secs.parse().unwrap());
    }
    response
}

/// A receiver answering `script` in turn, then `then` for ever; and a webhook for it.
async fn receiver(flavor: &str, script: &[Reply], then: Reply) -> (Arc<Receiver>, Webhook) {
    let state = Arc::new(Receiver::default());
    state.script.lock().unwrap().extend(script.iter().copied());
    *state.then.lock().unwrap() = Some(then);
    let app = axum::Router::new()
        .fallback(answer)
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let hook = Webhook::parse(&format!(
        "{flavor}:http://{addr}/{SECRET_PATH}?sig={SECRET_QUERY}"
    ))
    .unwrap();
    (state, hook)
}

async fn deliver_one(hook: &Webhook, notice: &Notice, clock: &RecordingClock) -> Outcome {
    let client = reqwest::Client::new();
    let policy = RetryPolicy::default();
    let mut outcomes =
        deliver_with(&client, std::slice::from_ref(hook), notice, &policy, clock).await;
    assert_eq!(outcomes.len(), 1);
    let outcome = outcomes.remove(0);
    assert_no_secret(&outcome);
    outcome
}

/// Neither the outcome (as the log, `Debug` and the run status show it) nor the webhook
/// shows the URL's path or query.
fn assert_no_secret(outcome: &Outcome) {
    let shown = format!(
        "{outcome:?} {} {}",
        serde_json::to_string(outcome).unwrap(),
        outcome.error.as_deref().unwrap_or("")
    );
    assert!(
        !shown.contains(SECRET_PATH) && !shown.contains(SECRET_QUERY),
        "{shown}"
    );
    assert!(
        outcome.target.ends_with("webhook at 127.0.0.1"),
        "{}",
        outcome.target
    );
}

#[tokio::test]
async fn each_flavor_arrives_in_its_shape() {
    let n = notice();
    let (teams_rx, teams_hook) = receiver("teams", &[], OK).await;
    let (slack_rx, slack_hook) = receiver("slack", &[], OK).await;
    let (json_rx, json_hook) = receiver("json", &[], OK).await;
    let clock = RecordingClock::default();
    let hooks = [teams_hook, slack_hook, json_hook];
    let outcomes = deliver_with(
        &reqwest::Client::new(),
        &hooks,
        &n,
        &RetryPolicy::default(),
        &clock,
    )
    .await;
    let flavors: Vec<_> = outcomes
        .iter()
        .map(|o| (o.flavor, o.delivered, o.attempts))
        .collect();
    assert_eq!(
        flavors,
        [
            (Flavor::Teams, true, 1),
            (Flavor::Slack, true, 1),
            (Flavor::Generic, true, 1)
        ]
    );
    for o in &outcomes {
        assert_no_secret(o);
        assert_eq!((o.last_status, o.error.as_deref()), (Some(200), None));
    }
    for rx in [&teams_rx, &slack_rx, &json_rx] {
        let seen = rx.seen();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].content_type, "application/json");
        assert_eq!(
            seen[0].path_and_query,
            format!("/{SECRET_PATH}?sig={SECRET_QUERY}")
        );
    }
    assert_eq!(teams_rx.seen()[0].body, format::teams(&n));
    assert_eq!(card(&teams_rx.seen()[0].body)["version"], "1.4");
    assert_eq!(slack_rx.seen()[0].body, format::slack(&n));
    assert_slack_limits(&slack_rx.seen()[0].body);
    let back: Notice = serde_json::from_value(json_rx.seen()[0].body.clone()).unwrap();
    assert_eq!(back, n);
    assert!(clock.pauses().is_empty());
}

#[tokio::test]
async fn throttling_waits_as_long_as_retry_after_asks() {
    let throttled = Reply {
        retry_after: Some("3"),
        ..reply(429)
    };
    let (rx, hook) = receiver("slack", &[throttled], OK).await;
    let clock = RecordingClock::default();
    let outcome = deliver_one(&hook, &hostile_notice(), &clock).await;
    assert!(outcome.delivered, "{outcome:?}");
    assert_eq!((outcome.attempts, outcome.last_status), (2, Some(200)));
    assert_eq!(clock.pauses(), [3]);
    assert_eq!(rx.seen().len(), 2);
}

#[tokio::test]
async fn server_errors_are_retried_with_growing_pauses() {
    let (rx, hook) = receiver("teams", &[reply(500), reply(503)], OK).await;
    let clock = RecordingClock::default();
    let outcome = deliver_one(&hook, &notice(), &clock).await;
    assert!(outcome.delivered);
    assert_eq!((outcome.attempts, outcome.error), (3, None));
    assert_eq!(clock.pauses(), [2, 4]);
    assert_eq!(rx.seen().len(), 3);
}

#[tokio::test]
async fn a_server_that_keeps_failing_is_given_up_on() {
    let failing = Reply {
        echo: true,
        ..reply(500)
    };
    let (rx, hook) = receiver("json", &[], failing).await;
    let clock = RecordingClock::default();
    let outcome = deliver_one(&hook, &notice(), &clock).await;
    assert!(!outcome.delivered);
    assert_eq!((outcome.attempts, outcome.last_status), (4, Some(500)));
    let error = outcome.error.unwrap_or_default();
    assert!(
        error.starts_with("gave up after 4 attempts: HTTP 500: invalid_payload for [REDACTED]"),
        "{error}"
    );
    assert_eq!(clock.pauses(), [2, 4, 8]);
    assert_eq!(rx.seen().len(), 4);
}

#[tokio::test]
async fn a_refusal_is_not_retried() {
    let refused = Reply {
        echo: true,
        ..reply(400)
    };
    let (rx, hook) = receiver("slack", &[refused], OK).await;
    let clock = RecordingClock::default();
    let outcome = deliver_one(&hook, &notice(), &clock).await;
    assert!(!outcome.delivered);
    assert_eq!((outcome.attempts, outcome.last_status), (1, Some(400)));
    let error = outcome.error.unwrap_or_default();
    assert!(
        error.starts_with("refused: HTTP 400: invalid_payload for [REDACTED]"),
        "{error}"
    );
    assert!(clock.pauses().is_empty());
    assert_eq!(rx.seen().len(), 1);
}

#[tokio::test]
async fn a_long_retry_after_is_capped_and_the_deadline_holds() {
    let throttled = Reply {
        retry_after: Some("3600"),
        ..reply(429)
    };
    let (rx, hook) = receiver("teams", &[], throttled).await;
    let clock = RecordingClock::default();
    let outcome = deliver_one(&hook, &notice(), &clock).await;
    assert!(!outcome.delivered);
    // 30 s (the cap), then another 30 s would reach the 60 s deadline.
    assert_eq!(clock.pauses(), [30]);
    assert_eq!(outcome.attempts, 2);
    let error = outcome.error.unwrap_or_default();
    assert!(
        error.contains("HTTP 429") && error.contains("60s deadline"),
        "{error}"
    );
    assert_eq!(rx.seen().len(), 2);
}

#[tokio::test]
async fn a_dropped_connection_is_retried_and_reported_without_the_url() {
    // Accepts, reads nothing, hangs up.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            drop(socket);
        }
    });
    let hook = Webhook::parse(&format!("http://{addr}/{SECRET_PATH}?sig={SECRET_QUERY}")).unwrap();
    assert_eq!(hook.flavor(), Flavor::Generic);
    let clock = RecordingClock::default();
    let outcome = deliver_one(&hook, &notice(), &clock).await;
    assert!(!outcome.delivered);
    assert_eq!((outcome.attempts, outcome.last_status), (4, None));
    assert_eq!(clock.pauses(), [2, 4, 8]);
    assert!(
        outcome
            .error
            .unwrap_or_default()
            .starts_with("gave up after 4 attempts: ")
    );
}

#[tokio::test(start_paused = true)]
async fn a_server_that_never_answers_cannot_hold_the_report_past_the_deadline() {
    // Accepts and holds every connection without a word.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let hook = Webhook::parse(&format!(
        "teams:http://{addr}/{SECRET_PATH}?sig={SECRET_QUERY}"
    ))
    .unwrap();
    let started = tokio::time::Instant::now();
    let policy = RetryPolicy::default();
    let outcomes = deliver(&reqwest::Client::new(), &[hook], &notice(), &policy).await;
    // Attempts at 0-20 s, 22-42 s, 46-60 s (cut to the deadline); no time for a fourth.
    assert_eq!(started.elapsed(), policy.deadline);
    let outcome = &outcomes[0];
    assert_no_secret(outcome);
    assert!(!outcome.delivered);
    assert_eq!((outcome.attempts, outcome.last_status), (3, None));
    let error = outcome.error.clone().unwrap_or_default();
    assert!(
        error.starts_with("gave up after 3 attempts: no answer within 14 s"),
        "{error}"
    );
}

#[test]
fn delivery_can_be_spawned() {
    fn is_send<T: Send>(_: &T) {}
    let (client, n, policy) = (reqwest::Client::new(), notice(), RetryPolicy::default());
    is_send(&deliver(&client, &[], &n, &policy));
}
