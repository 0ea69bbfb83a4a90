//! The Functions app's [`Sink`]: the pipeline writes each output to a temporary file, and
//! delivering uploads it in blocks, so no output is ever held in memory whole.
//!
//! Blob names: `{org}/{yyyy}/{mm}/{dd}/patreport-{org}-{yyyymmdd-hhmmss}{suffix}.{ext}`
//! (UTC, organization in lowercase). When another run's report of the same organization
//! finished in the same second, the suffix is `-` and the end of this run's id.

use super::blobs::BlobHeaders;
use super::links::attachment;
use super::runs::{RunStore, file_name};
use crate::domain::timestamp::stamp;
use crate::domain::{OrgName, RunId};
use crate::lifecycle::ReportFiles;
use crate::pipeline::sink::file_stem;
use crate::pipeline::{Delivered, Opened, PreviousReport, Sink, SinkError};
use crate::report::Format;
use std::path::PathBuf;
use std::sync::Mutex;
use time::OffsetDateTime;

/// The blob names of one report's files.
pub fn report_blob_names(
    org: &OrgName,
    at: OffsetDateTime,
    suffix: &str,
    formats: &[Format],
) -> ReportFiles {
    let org = org.key();
    let at = at.to_offset(time::UtcOffset::UTC);
    let (y, m, d) = (at.year(), u8::from(at.month()), at.day());
    let stem = format!(
        "{org}/{y:04}/{m:02}/{d:02}/patreport-{org}-{}{suffix}",
        stamp(at)
    );
    formats
        .iter()
        .map(|f| (*f, format!("{stem}.{}", f.extension())))
        .collect()
}

/// `{org}/state.json`: the state of the organization's last full picture (see
/// `refresh::State`), replaced by each complete run.
pub fn state_blob(org: &OrgName) -> String {
    format!("{}/state.json", org.key())
}

/// Uploads a run's outputs to the report container.
pub struct BlobSink<'a> {
    runs: &'a RunStore,
    run_id: RunId,
    /// Where the outputs are written before their upload; removed with the sink.
    scratch: Mutex<Option<tempfile::TempDir>>,
    /// The new state's temporary file, until it is uploaded (removed if the run fails).
    state_file: Mutex<Option<PathBuf>>,
}

impl<'a> BlobSink<'a> {
    pub fn new(runs: &'a RunStore, run_id: RunId) -> Self {
        Self {
            runs,
            run_id,
            scratch: Mutex::new(None),
            state_file: Mutex::new(None),
        }
    }
}

impl BlobSink<'_> {
    /// The run's scratch folder (the system's temporary folder before the check made one).
    fn scratch_dir(&self) -> PathBuf {
        self.scratch
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|d| d.path().to_owned())
            .unwrap_or_else(std::env::temp_dir)
    }
}

fn scratch_error(e: std::io::Error, path: PathBuf) -> SinkError {
    SinkError::Local {
        problem: "could not write the report to a temporary file before its upload".into(),
        path,
        source: Some(e),
    }
}

#[async_trait::async_trait]
impl Sink for BlobSink<'_> {
    async fn check(&self, _formats: &[Format]) -> Result<(), SinkError> {
        let dir = tempfile::Builder::new()
            .prefix("patreport-run-")
            .tempdir()
            .map_err(|e| scratch_error(e, std::env::temp_dir()))?;
        *self.scratch.lock().unwrap_or_else(|p| p.into_inner()) = Some(dir);
        Ok(())
    }

    fn open(
        &self,
        org: &OrgName,
        finished: OffsetDateTime,
        formats: &[Format],
    ) -> Result<Vec<Opened>, SinkError> {
        let scratch = self.scratch.lock().unwrap_or_else(|p| p.into_inner());
        let dir = scratch
            .as_ref()
            .map(|d| d.path().to_owned())
            .unwrap_or_else(std::env::temp_dir);
        let stem = file_stem(org, finished);
        formats
            .iter()
            .map(|&format| {
                let path = dir.join(format!("{stem}.{}", format.extension()));
                std::fs::File::create(&path)
                    .map(|file| Opened {
                        format,
                        path: path.clone(),
                        file,
                    })
                    .map_err(|e| scratch_error(e, path))
            })
            .collect()
    }

    /// The JSON report `latest.json` points to, downloaded into the scratch folder.
    async fn previous(&self, org: &OrgName) -> Result<Option<PreviousReport>, SinkError> {
        let Some(latest) = self
            .runs
            .load_latest(org)
            .await
            .map_err(SinkError::Storage)?
        else {
            return Ok(None);
        };
        let Some(blob) = latest.files.get(&Format::Json) else {
            return Ok(None);
        };
        let dir = self
            .scratch
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|d| d.path().to_owned())
            .unwrap_or_else(std::env::temp_dir);
        let path = dir.join("previous-report.json");
        let found = self
            .runs
            .blobs()
            .get_to_file(blob, &path)
            .await
            .map_err(SinkError::Storage)?;
        if !found {
            return Ok(None);
        }
        Ok(Some(PreviousReport {
            name: blob.clone(),
            path,
        }))
    }

    async fn state(&self, org: &OrgName) -> Result<Option<PathBuf>, SinkError> {
        let path = self.scratch_dir().join("previous-state.json");
        let found = self
            .runs
            .blobs()
            .get_to_file(&state_blob(org), &path)
            .await
            .map_err(SinkError::Storage)?;
        Ok(found.then_some(path))
    }

    fn open_state(&self, _org: &OrgName) -> Result<Option<(PathBuf, std::fs::File)>, SinkError> {
        // Outside the scratch folder: that goes once the outputs are delivered, and the state
        // is uploaded after them.
        let (file, path) = tempfile::Builder::new()
            .prefix("patreport-state-")
            .suffix(".json")
            .tempfile()
            .and_then(|t| t.keep().map_err(|e| e.error))
            .map_err(|e| scratch_error(e, std::env::temp_dir()))?;
        *self.state_file.lock().unwrap_or_else(|p| p.into_inner()) = Some(path.clone());
        Ok(Some((path, file)))
    }

    async fn keep_state(&self, org: &OrgName, path: PathBuf) -> Result<(), SinkError> {
        let headers = BlobHeaders {
            content_type: "application/json".into(),
            content_disposition: None,
            cache_control: None,
        };
        let put = self
            .runs
            .blobs()
            .put_file(&state_blob(org), &path, &headers, false)
            .await
            .map_err(SinkError::Storage);
        let _ = std::fs::remove_file(&path);
        self.state_file
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        put
    }

    fn abandon(&self) {
        if let Some(path) = self
            .state_file
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            let _ = std::fs::remove_file(path);
        }
        self.scratch
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
    }

    async fn deliver(
        &self,
        org: &OrgName,
        finished: OffsetDateTime,
        written: Vec<(Format, PathBuf)>,
    ) -> Result<Vec<Delivered>, SinkError> {
        let formats: Vec<Format> = written.iter().map(|(f, _)| *f).collect();
        let mut names = report_blob_names(org, finished, "", &formats);
        let mut delivered = Vec::with_capacity(written.len());
        let mut suffixed = false;
        for (format, path) in written {
            let headers = |blob: &str| BlobHeaders {
                content_type: format.content_type().to_owned(),
                content_disposition: Some(attachment(file_name(blob))),
                cache_control: None,
            };
            let blob = names[&format].clone();
            // Two reports of one organization finished within the same second must not
            // overwrite each other: a file is written under the plain name only if that name
            // is free (an atomic check in the service); once one is taken, this run's files
            // get the end of its run id appended.
            let put = self
                .runs
                .blobs()
                .put_file(&blob, &path, &headers(&blob), !suffixed)
                .await;
            let blob = match put {
                Err(e) if !suffixed && matches!(e.status(), Some(409 | 412)) => {
                    suffixed = true;
                    let suffix = format!("-{}", self.run_id.short());
                    names = report_blob_names(org, finished, &suffix, &formats);
                    let blob = names[&format].clone();
                    self.runs
                        .blobs()
                        .put_file(&blob, &path, &headers(&blob), false)
                        .await
                        .map_err(SinkError::Storage)?;
                    blob
                }
                Err(e) => return Err(SinkError::Storage(e)),
                Ok(()) => blob,
            };
            delivered.push(Delivered {
                format,
                location: blob,
            });
        }
        // The temporary files are no longer needed.
        self.scratch
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        Ok(delivered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn report_files_follow_the_dated_layout() {
        let org = OrgName::parse("Fabrikam").unwrap();
        let f = report_blob_names(
            &org,
            datetime!(2026-11-24 09:05:03 +02:00),
            "",
            &Format::ALL,
        );
        assert_eq!(
            f[&Format::Xlsx],
            "fabrikam/2026/11/24/patreport-fabrikam-20261124-070503.xlsx"
        );
        assert_eq!(
            f[&Format::Csv],
            "fabrikam/2026/11/24/patreport-fabrikam-20261124-070503.csv"
        );
        assert_eq!(
            file_name(&f[&Format::Json]),
            "patreport-fabrikam-20261124-070503.json"
        );
    }
}
