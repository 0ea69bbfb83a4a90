//! What the service keeps in the report container besides the reports: one status document
//! per run (`_runs/{runId}.json`) and a pointer to each organization's newest report
//! (`{org}/latest.json`). This module only stores and loads them; how a run moves from state
//! to state is `lifecycle`'s business.
//!
//! Organization names are letters, digits and hyphens (`domain::OrgName`), so `_runs/` can
//! never collide with an organization's folder.

use super::blobs::{BlobHeaders, BlobStore};
use super::error::StorageError;
use super::links::SignedLink;
use crate::domain::{OrgName, RunId};
use crate::lifecycle::{LatestPointer, RunStatus};
use serde::{Deserialize, Serialize};

pub const RUNS_PREFIX: &str = "_runs";
const JSON_CONTENT_TYPE: &str = "application/json";

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

    fn status_blob(run_id: &RunId) -> String {
        format!("{RUNS_PREFIX}/{run_id}.json")
    }

    fn latest_blob(org: &OrgName) -> String {
        format!("{}/latest.json", org.key())
    }

    pub async fn save_status(&self, status: &RunStatus) -> Result<(), StorageError> {
        self.put_json(&Self::status_blob(&status.run_id), status)
            .await
    }

    pub async fn load_status(&self, run_id: &RunId) -> Result<Option<RunStatus>, StorageError> {
        self.get_json(&Self::status_blob(run_id)).await
    }

    /// The newest `count` runs, newest first (run ids sort by the time they were asked for).
    pub async fn recent(&self, count: usize) -> Result<Vec<RunStatus>, StorageError> {
        let mut ids: Vec<RunId> = self
            .blobs
            .list(&format!("{RUNS_PREFIX}/"))
            .await?
            .iter()
            .filter_map(|name| {
                let id = name.strip_prefix(RUNS_PREFIX)?.strip_prefix('/')?;
                RunId::parse(id.strip_suffix(".json")?).ok()
            })
            .collect();
        ids.sort_unstable_by(|a, b| b.cmp(a));
        let mut runs = Vec::with_capacity(count.min(ids.len()));
        for id in ids.into_iter().take(count) {
            match self.load_status(&id).await {
                Ok(Some(status)) => runs.push(status),
                Ok(None) => {}
                // One unreadable status document does not hide the others.
                Err(e @ StorageError::Corrupt { .. }) => {
                    tracing::warn!(run_id = %id, error = %e, "a run status could not be read");
                }
                Err(e) => return Err(e),
            }
        }
        Ok(runs)
    }

    pub async fn save_latest(&self, latest: &LatestPointer) -> Result<(), StorageError> {
        self.put_json(&Self::latest_blob(&latest.org), latest).await
    }

    pub async fn load_latest(&self, org: &OrgName) -> Result<Option<LatestPointer>, StorageError> {
        self.get_json(&Self::latest_blob(org)).await
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

/// The file name part of a blob name.
pub fn file_name(blob: &str) -> &str {
    blob.rsplit('/').next().unwrap_or(blob)
}
