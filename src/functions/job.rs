//! The job message that travels on the queue from the HTTP and timer functions to the worker.

use crate::domain::{OrgName, RunId};
use crate::lifecycle::RunSource;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

/// One report to make. Its run id and organization are checked when it is read, so a job
/// that reaches the worker names a blob path and an organization safely.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobMessage {
    pub run_id: RunId,
    pub org: OrgName,
    #[serde(with = "crate::domain::timestamp::serde")]
    pub requested_at: OffsetDateTime,
    pub source: RunSource,
    #[serde(default)]
    pub requested_by: Option<String>,
}

/// Why a queue message is not a job we can run (it will never become one: not retried).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the message is not a job: {0}")]
pub struct JobError(String);

impl JobMessage {
    /// The message text put on the queue.
    pub fn to_text(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Read and check a job from the queue item's JSON.
    pub fn from_value(value: Value) -> Result<Self, JobError> {
        serde_json::from_value(value).map_err(|e| JobError(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn jobs_round_trip_and_bad_ones_say_why() {
        let job = JobMessage {
            run_id: RunId::new(datetime!(2026-11-24 09:05:03 UTC)),
            org: OrgName::parse("fabrikam").unwrap(),
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
        let e = JobMessage::from_value(bad).unwrap_err().to_string();
        assert!(e.contains("'x' is not a run id"), "{e}");
        let bad = serde_json::json!({"runId": job.run_id, "org": "../etc", "requestedAt": "2026-11-24T09:05:03Z", "source": "http"});
        let e = JobMessage::from_value(bad).unwrap_err().to_string();
        assert!(e.contains("not an organization name"), "{e}");
        assert!(JobMessage::from_value(serde_json::json!({"hello": 1})).is_err());
    }
}
