//! The payload each kind of webhook gets: a Teams card, a Slack message, or the notice itself
//! as JSON for programs.

use super::notice::{MAX_FINDINGS, Notice};
use super::webhook::Flavor;
use serde::Serialize;
use serde_json::Value;

pub use super::slack::payload as slack;
pub use super::teams::payload as teams;

/// The `schema` field of the generic payload; a change to its shape gets a new number.
pub const GENERIC_SCHEMA: &str = "patreport.notice/1";

/// The payload for a webhook of `flavor`.
pub fn payload(flavor: Flavor, notice: &Notice) -> Value {
    match flavor {
        Flavor::Teams => teams(notice),
        Flavor::Slack => slack(notice),
        Flavor::Generic => generic(notice),
    }
}

/// `{"schema": "patreport.notice/1", ...the notice}`, with at most [`MAX_FINDINGS`] findings.
/// Texts are left as they are: a program reading JSON has no markup to be fooled by.
pub fn generic(notice: &Notice) -> Value {
    #[derive(Serialize)]
    struct Generic<'a> {
        schema: &'static str,
        #[serde(flatten)]
        notice: &'a Notice,
    }
    let mut capped;
    let mut notice = notice;
    if notice.top_findings.len() > MAX_FINDINGS {
        capped = notice.clone();
        capped.top_findings.truncate(MAX_FINDINGS);
        notice = &capped;
    }
    // Plain structs with string keys: serializing cannot fail.
    serde_json::to_value(Generic {
        schema: GENERIC_SCHEMA,
        notice,
    })
    .unwrap_or(Value::Null)
}
