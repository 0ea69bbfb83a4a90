//! What the service keeps in the report container besides the reports: one status document
//! per run (`_runs/{runId}.json`) and a pointer to each organization's newest report
//! (`{org}/latest.json`), plus the layout of the report files themselves.
//!
//! Organization names are letters, digits and hyphens (checked in `config`), so `_runs/`
//! can never collide with an organization's folder.

use super::blobs::{BlobHeaders, BlobStore};
use super::error::StorageError;
use super::links::{SignedLink, attachment};
use crate::report::{Report, Summary};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

pub const RUNS_PREFIX: &str = "_runs";
pub const XLSX_CONTENT_TYPE: &str =
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
pub const CSV_CONTENT_TYPE: &str = "text/csv; charset=utf-8";
pub const JSON_CONTENT_TYPE: &str = "application/json";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    Queued,
    Running,
    Succeeded,
    Failed,
}

impl RunState {
    pub fn is_final(self) -> bool {
        matches!(self, RunState::Succeeded | RunState::Failed)
    }
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Queued => "queued",
            RunState::Running => "running",
            RunState::Succeeded => "succeeded",
            RunState::Failed => "failed",
        }
    }
}

/// Who asked for a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunSource {
    Http,
    Timer,
}

/// Where a run's scan runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Execution {
    /// A queued job, run by the worker function (retried by the queue if the worker dies).
    #[default]
    Queue,
    /// In the process that answered the HTTP request (on-behalf-of runs: the caller's token
    /// must not leave that process). Not retried: lost if the instance goes away.
    InProcess,
}

impl Execution {
    pub fn as_str(self) -> &'static str {
        match self {
            Execution::Queue => "queue",
            Execution::InProcess => "in-process",
        }
    }
}

/// Counts while the scan runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunProgress {
    pub users_listed: usize,
    pub users_scanned: usize,
    pub users_failed: usize,
    pub pats_found: usize,
}

/// The headline figures of a finished report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunSummary {
    /// False when some users could not be read or the scan stopped early.
    pub complete: bool,
    pub users_scanned: usize,
    pub users_failed: usize,
    pub users_with_pats: usize,
    pub pats: usize,
    pub active: usize,
    pub expiring: usize,
    pub expired: usize,
    pub invalid: usize,
    pub full_access: usize,
    pub global: usize,
}

impl RunSummary {
    pub fn of(report: &Report) -> Self {
        let Summary {
            users_scanned,
            users_failed,
            users_with_pats,
            pats,
            by_status,
            full_access,
            global,
            ..
        } = report.summary.clone();
        Self {
            complete: report.run.complete,
            users_scanned,
            users_failed,
            users_with_pats,
            pats,
            active: by_status.active,
            expiring: by_status.expiring,
            expired: by_status.expired,
            invalid: by_status.invalid,
            full_access,
            global,
        }
    }
}

/// The blob names of one report's files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportFiles {
    pub xlsx: String,
    pub csv: String,
    pub json: String,
}

impl ReportFiles {
    /// `{org}/{yyyy}/{mm}/{dd}/patreport-{org}-{yyyymmdd-hhmmss}{suffix}.{ext}` (UTC).
    pub fn for_report(org: &str, at: OffsetDateTime, suffix: &str) -> Self {
        let org = org.to_ascii_lowercase();
        let at = at.to_offset(time::UtcOffset::UTC);
        let (y, m, d) = (at.year(), u8::from(at.month()), at.day());
        let stem = format!(
            "{org}/{y:04}/{m:02}/{d:02}/patreport-{org}-{y:04}{m:02}{d:02}-{:02}{:02}{:02}{suffix}",
            at.hour(),
            at.minute(),
            at.second()
        );
        Self {
            xlsx: format!("{stem}.xlsx"),
            csv: format!("{stem}.csv"),
            json: format!("{stem}.json"),
        }
    }
}

/// The file name part of a blob name.
pub fn file_name(blob: &str) -> &str {
    blob.rsplit('/').next().unwrap_or(blob)
}

/// The status document of one run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunStatus {
    pub run_id: String,
    pub org: String,
    pub state: RunState,
    pub source: RunSource,
    /// The authenticated caller (`Caller::describe`) of an HTTP run; none for the timer.
    pub requested_by: Option<String>,
    #[serde(default)]
    pub execution: Execution,
    /// The credential mode the scan uses (`managed-identity`, `on-behalf-of`, ...), once it runs.
    #[serde(default)]
    pub auth: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub requested_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// The last sign of life of the process running the scan, written at least every 30
    /// seconds while it works. A running run whose heartbeat is old has lost that process.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub heartbeat_at: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub started_at: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
    /// Delivery attempt of the job (the queue's dequeue count); 0 while queued.
    #[serde(default)]
    pub attempt: u32,
    #[serde(default)]
    pub progress: Option<RunProgress>,
    #[serde(default)]
    pub summary: Option<RunSummary>,
    #[serde(default)]
    pub files: Option<ReportFiles>,
    /// Why the run failed (final), or why the last attempt failed (while it is retried).
    #[serde(default)]
    pub error: Option<String>,
}

impl RunStatus {
    pub fn queued(
        run_id: &str,
        org: &str,
        source: RunSource,
        requested_by: Option<String>,
        at: OffsetDateTime,
    ) -> Self {
        Self {
            run_id: run_id.to_owned(),
            org: org.to_owned(),
            state: RunState::Queued,
            source,
            requested_by,
            execution: Execution::Queue,
            auth: None,
            requested_at: at,
            updated_at: at,
            heartbeat_at: None,
            started_at: None,
            finished_at: None,
            attempt: 0,
            progress: None,
            summary: None,
            files: None,
            error: None,
        }
    }
}

/// `{org}/latest.json`: the newest successful report of an organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LatestPointer {
    pub run_id: String,
    pub org: String,
    #[serde(with = "time::serde::rfc3339")]
    pub generated_at: OffsetDateTime,
    pub files: ReportFiles,
    pub summary: RunSummary,
}

/// The three renderings of one report.
pub struct ReportBytes {
    pub xlsx: Vec<u8>,
    pub csv: Vec<u8>,
    pub json: Vec<u8>,
}

/// Run documents and report files in the report container.
pub struct RunStore {
    blobs: BlobStore,
}

impl RunStore {
    pub fn new(blobs: BlobStore) -> Self {
        Self { blobs }
    }

    pub fn blobs(&self) -> &BlobStore {
        &self.blobs
    }

    fn status_blob(run_id: &str) -> String {
        format!("{RUNS_PREFIX}/{run_id}.json")
    }

    fn latest_blob(org: &str) -> String {
        format!("{}/latest.json", org.to_ascii_lowercase())
    }

    pub async fn save_status(&self, status: &RunStatus) -> Result<(), StorageError> {
        self.put_json(&Self::status_blob(&status.run_id), status)
            .await
    }

    pub async fn load_status(&self, run_id: &str) -> Result<Option<RunStatus>, StorageError> {
        self.get_json(&Self::status_blob(run_id)).await
    }

    pub async fn save_latest(&self, latest: &LatestPointer) -> Result<(), StorageError> {
        self.put_json(&Self::latest_blob(&latest.org), latest).await
    }

    pub async fn load_latest(&self, org: &str) -> Result<Option<LatestPointer>, StorageError> {
        self.get_json(&Self::latest_blob(org)).await
    }

    /// Upload the three files under the names `files` gives, each with its content type and
    /// an attachment file name.
    pub async fn upload_report(
        &self,
        files: &ReportFiles,
        bytes: ReportBytes,
    ) -> Result<(), StorageError> {
        let ReportBytes { xlsx, csv, json } = bytes;
        for (blob, content_type, data) in [
            (&files.xlsx, XLSX_CONTENT_TYPE, xlsx),
            (&files.csv, CSV_CONTENT_TYPE, csv),
            (&files.json, JSON_CONTENT_TYPE, json),
        ] {
            let headers = BlobHeaders {
                content_type: content_type.to_owned(),
                content_disposition: Some(attachment(file_name(blob))),
                cache_control: None,
            };
            self.blobs.put(blob, data, &headers).await?;
        }
        Ok(())
    }

    /// A fresh read-only link to one of the report files.
    pub async fn link(
        &self,
        blob: &str,
        lifetime: time::Duration,
    ) -> Result<SignedLink, StorageError> {
        self.blobs.read_link(blob, file_name(blob), lifetime).await
    }

    async fn put_json<T: Serialize>(&self, blob: &str, value: &T) -> Result<(), StorageError> {
        let bytes = serde_json::to_vec_pretty(value).map_err(|e| StorageError::Corrupt {
            what: blob.to_owned(),
            detail: e.to_string(),
        })?;
        let headers = BlobHeaders {
            content_type: JSON_CONTENT_TYPE.to_owned(),
            content_disposition: None,
            cache_control: Some("no-cache".to_owned()),
        };
        self.blobs.put(blob, bytes, &headers).await
    }

    async fn get_json<T: for<'de> Deserialize<'de>>(
        &self,
        blob: &str,
    ) -> Result<Option<T>, StorageError> {
        match self.blobs.get(blob).await? {
            None => Ok(None),
            Some(bytes) => {
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|e| StorageError::Corrupt {
                        what: blob.to_owned(),
                        detail: e.to_string(),
                    })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn report_files_follow_the_dated_layout() {
        let f = ReportFiles::for_report("Fabrikam", datetime!(2026-11-24 09:05:03 +02:00), "");
        assert_eq!(
            f.xlsx,
            "fabrikam/2026/11/24/patreport-fabrikam-20261124-070503.xlsx"
        );
        assert_eq!(
            f.csv,
            "fabrikam/2026/11/24/patreport-fabrikam-20261124-070503.csv"
        );
        assert_eq!(
            file_name(&f.json),
            "patreport-fabrikam-20261124-070503.json"
        );
    }

    #[test]
    fn status_documents_round_trip_in_camel_case() {
        let mut s = RunStatus::queued(
            "r1",
            "fabrikam",
            RunSource::Http,
            None,
            datetime!(2026-11-24 09:05:03 UTC),
        );
        s.progress = Some(RunProgress {
            users_listed: 3,
            ..Default::default()
        });
        let text = serde_json::to_string(&s).unwrap();
        assert!(
            text.contains("\"runId\":\"r1\"")
                && text.contains("\"state\":\"queued\"")
                && text.contains("usersListed"),
            "{text}"
        );
        assert_eq!(serde_json::from_str::<RunStatus>(&text).unwrap(), s);
        s.execution = Execution::InProcess;
        s.heartbeat_at = Some(datetime!(2026-11-24 09:06:00 UTC));
        let text = serde_json::to_string(&s).unwrap();
        assert!(
            text.contains("\"execution\":\"in-process\"")
                && text.contains("\"heartbeatAt\":\"2026-11-24T09:06:00Z\""),
            "{text}"
        );
        assert_eq!(serde_json::from_str::<RunStatus>(&text).unwrap(), s);
    }

    #[test]
    fn status_documents_of_earlier_versions_still_read() {
        let old = r#"{"runId":"r1","org":"fabrikam","state":"running","source":"http","requestedBy":null,
            "requestedAt":"2026-11-24T09:05:03Z","updatedAt":"2026-11-24T09:05:03Z"}"#;
        let s: RunStatus = serde_json::from_str(old).unwrap();
        assert_eq!(
            (s.execution, s.heartbeat_at, s.auth),
            (Execution::Queue, None, None)
        );
    }
}
