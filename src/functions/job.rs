//! The job message that travels on the queue from the HTTP and timer functions to the worker,
//! and the run ids that name runs.

use crate::storage::RunSource;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

/// One report to make.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobMessage {
    pub run_id: String,
    pub org: String,
    #[serde(with = "time::serde::rfc3339")]
    pub requested_at: OffsetDateTime,
    pub source: RunSource,
    #[serde(default)]
    pub requested_by: Option<String>,
}

/// Why a queue message is not a job we can run (it will never become one: not retried).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobError {
    #[error("the message is not a job: {0}")]
    Shape(String),
    #[error("the message has an invalid run id '{0}'")]
    RunId(String),
    #[error("the message names an invalid organization '{0}'")]
    Org(String),
}

impl JobMessage {
    /// The message text put on the queue.
    pub fn to_text(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Read and check a job from the queue item's JSON.
    pub fn from_value(value: Value) -> Result<Self, JobError> {
        let job: JobMessage =
            serde_json::from_value(value).map_err(|e| JobError::Shape(e.to_string()))?;
        if !is_run_id(&job.run_id) {
            return Err(JobError::RunId(job.run_id.chars().take(60).collect()));
        }
        if !crate::config::is_org_name(&job.org) {
            return Err(JobError::Org(job.org.chars().take(60).collect()));
        }
        Ok(job)
    }
}

/// A new run id: `yyyymmdd-hhmmss-` and 16 random hex digits. Sortable by time; the random
/// part keeps two runs requested in the same second apart.
pub fn new_run_id(now: OffsetDateTime) -> String {
    let t = now.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}{:02}{:02}-{:02}{:02}{:02}-{:016x}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        fastrand::u64(..)
    )
}

/// Whether `id` has the shape of a run id (so it can safely become a blob name).
pub fn is_run_id(id: &str) -> bool {
    let b = id.as_bytes();
    b.len() == 32
        && b[..8].iter().all(u8::is_ascii_digit)
        && b[8] == b'-'
        && b[9..15].iter().all(u8::is_ascii_digit)
        && b[15] == b'-'
        && b[16..]
            .iter()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn run_ids_are_sortable_and_checked() {
        let id = new_run_id(datetime!(2026-11-24 09:05:03 +02:00));
        assert!(id.starts_with("20261124-070503-"), "{id}");
        assert!(is_run_id(&id));
        assert!(!is_run_id("../../etc/passwd"));
        assert!(!is_run_id("20261124-070503-XYZ0000000000000"));
        assert_ne!(
            new_run_id(datetime!(2026-11-24 09:05:03 UTC)),
            new_run_id(datetime!(2026-11-24 09:05:03 UTC))
        );
    }

    #[test]
    fn jobs_round_trip_and_bad_ones_say_why() {
        let job = JobMessage {
            run_id: new_run_id(datetime!(2026-11-24 09:05:03 UTC)),
            org: "fabrikam".into(),
            requested_at: datetime!(2026-11-24 09:05:03 UTC),
            source: RunSource::Timer,
            requested_by: None,
        };
        let text = job.to_text();
        assert!(text.contains("\"source\":\"timer\""), "{text}");
        assert_eq!(
            JobMessage::from_value(serde_json::from_str(&text).unwrap()).unwrap(),
            job
        );
        let bad = serde_json::json!({"runId": "x", "org": "fabrikam", "requestedAt": "2026-11-24T09:05:03Z", "source": "http"});
        assert!(matches!(
            JobMessage::from_value(bad),
            Err(JobError::RunId(_))
        ));
        assert!(matches!(
            JobMessage::from_value(serde_json::json!({"hello": 1})),
            Err(JobError::Shape(_))
        ));
    }
}
