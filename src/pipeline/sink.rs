//! Where a report's files go: the [`Sink`] the pipeline writes into, and the local folder of
//! the command line ([`LocalFiles`]). The Functions app's sink uploads to Blob Storage
//! (`storage::BlobSink`).

use crate::domain::OrgName;
use crate::domain::timestamp::stamp;
use crate::report::Format;
use crate::storage::StorageError;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use time::OffsetDateTime;

/// A file opened for one output.
#[derive(Debug)]
pub struct Opened {
    pub format: Format,
    pub path: PathBuf,
    pub file: File,
}

/// Where an output ended up: a path (command line) or a blob name (Functions app).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    pub format: Format,
    pub location: String,
}

/// Why an output could not be written or delivered.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("{problem}: {path}{}", source.as_ref().map(|e| format!(" ({e})")).unwrap_or_default())]
    Local {
        problem: String,
        path: PathBuf,
        source: Option<io::Error>,
    },
    #[error(transparent)]
    Storage(StorageError),
}

impl SinkError {
    fn local(problem: impl Into<String>, path: &Path, source: Option<io::Error>) -> Self {
        SinkError::Local {
            problem: problem.into(),
            path: path.to_owned(),
            source,
        }
    }

    /// Worth another attempt later: only an unreachable or busy storage service.
    pub fn is_transient(&self) -> bool {
        match self {
            SinkError::Local { .. } => false,
            SinkError::Storage(e) => e.is_transient(),
        }
    }
}

/// The destination of a report's outputs.
#[async_trait::async_trait]
pub trait Sink: Send + Sync {
    /// Called before the scan: an output that cannot be written is found now, not after an
    /// hour of scanning.
    async fn check(&self, formats: &[Format]) -> Result<(), SinkError>;

    /// Create one file per format for the report of `org` finished at `finished`.
    fn open(
        &self,
        org: &OrgName,
        finished: OffsetDateTime,
        formats: &[Format],
    ) -> Result<Vec<Opened>, SinkError>;

    /// Hand over the written files.
    async fn deliver(
        &self,
        org: &OrgName,
        finished: OffsetDateTime,
        written: Vec<(Format, PathBuf)>,
    ) -> Result<Vec<Delivered>, SinkError>;

    /// The run failed after [`Self::check`]: undo what the check left behind.
    fn abandon(&self) {}

    /// The newest earlier JSON report of `org`, as a local file, if there is one.
    async fn previous(&self, _org: &OrgName) -> Result<Option<PreviousReport>, SinkError> {
        Ok(None)
    }

    /// The stored state of `org`'s last full picture (see `refresh::State`), as a local file,
    /// if there is one.
    async fn state(&self, _org: &OrgName) -> Result<Option<PathBuf>, SinkError> {
        Ok(None)
    }

    /// A file to write the new state of `org` into; kept by [`Self::keep_state`] once the
    /// report is delivered. `None`: this sink keeps no state.
    fn open_state(&self, _org: &OrgName) -> Result<Option<(PathBuf, File)>, SinkError> {
        Ok(None)
    }

    /// Make the state written to `path` the state of `org`, replacing the earlier one.
    async fn keep_state(&self, _org: &OrgName, _path: PathBuf) -> Result<(), SinkError> {
        Ok(())
    }
}

/// `.patreport/{org}.state.json` under the output folder: the state of the organization's last
/// full picture. In a folder of its own, so that whatever lists or globs the reports (`*.json`)
/// never takes it for one.
pub fn state_path(dir: &Path, org: &OrgName) -> PathBuf {
    dir.join(STATE_DIR)
        .join(format!("{}.state.json", org.key()))
}

/// The folder of the states under the output folder.
pub const STATE_DIR: &str = ".patreport";

/// Remove temporary state files a killed run left behind (a day old: a run still writing one
/// is never that old). They hold the inventory, so they should not linger.
fn forget_stale_states(folder: &Path) {
    const STALE: std::time::Duration = std::time::Duration::from_secs(24 * 3600);
    let Ok(entries) = std::fs::read_dir(folder) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > STALE);
        if old && path.extension().is_some_and(|e| e == "tmp") {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// An earlier report found for a comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviousReport {
    /// Its name as the reader knows it (a file or blob name).
    pub name: String,
    /// Where it can be read now.
    pub path: PathBuf,
}

/// `patreport-{org}-{yyyymmdd-hhmmss}`: the name every output of one report shares.
pub fn file_stem(org: &OrgName, at: OffsetDateTime) -> String {
    format!("patreport-{}-{}", org.as_str(), stamp(at))
}

/// Report files in a local folder. Never overwrites: when a report of the same organization
/// finished in the same second already has files there, the new one gets `-2`, `-3`, ….
#[derive(Debug)]
pub struct LocalFiles {
    dir: PathBuf,
    /// Folders [`Self::prepare`] created, deepest first: removed again if the run fails, so a
    /// failed run leaves nothing behind.
    created: std::sync::Mutex<Vec<PathBuf>>,
    /// Files opened for the current report, until it is delivered.
    opened: std::sync::Mutex<Vec<PathBuf>>,
    delivered: std::sync::atomic::AtomicBool,
}

impl LocalFiles {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            created: std::sync::Mutex::new(Vec::new()),
            opened: std::sync::Mutex::new(Vec::new()),
            delivered: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Whether the report's files are complete and in place.
    pub fn delivered(&self) -> bool {
        self.delivered.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Create the folder if needed and prove it takes files.
    pub fn prepare(&self) -> Result<(), SinkError> {
        let dir = &self.dir;
        match std::fs::metadata(dir) {
            Ok(meta) if !meta.is_dir() => {
                return Err(SinkError::local(
                    "the output folder is a file, not a folder",
                    dir,
                    None,
                ));
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotADirectory => {
                return Err(SinkError::local(
                    "part of the output folder's path is a file, not a folder",
                    dir,
                    None,
                ));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let missing: Vec<PathBuf> = dir
                    .ancestors()
                    .take_while(|a| !a.as_os_str().is_empty() && !a.exists())
                    .map(Path::to_path_buf)
                    .collect();
                std::fs::create_dir_all(dir).map_err(|e| {
                    SinkError::local("could not create the output folder", dir, Some(e))
                })?;
                let mut created = self.created.lock().unwrap_or_else(|p| p.into_inner());
                if created.is_empty() {
                    *created = missing;
                }
            }
            Err(e) => {
                return Err(SinkError::local(
                    "could not use the output folder",
                    dir,
                    Some(e),
                ));
            }
        }
        // Permissions, read-only mounts and pseudo file systems all show here.
        tempfile::Builder::new()
            .prefix(".patreport-probe-")
            .tempfile_in(dir)
            .map(drop)
            .map_err(|e| {
                SinkError::local(
                    "cannot write report files into the output folder",
                    dir,
                    Some(e),
                )
            })
    }
}

/// The newest JSON report of `org` in `dir` by the time in its name (`-2`, `-3`, … after the
/// plain name of the same second); `None` if there is none or the folder cannot be listed.
pub fn newest_report(dir: &Path, org: &OrgName) -> Option<PathBuf> {
    let prefix = format!("patreport-{}-", org.as_str()).to_ascii_lowercase();
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let lower = name.to_ascii_lowercase();
            let rest = lower.strip_prefix(&prefix)?.strip_suffix(".json")?;
            // yyyymmdd-hhmmss, then an optional -n.
            let (stamp, n) = match rest.get(15..) {
                Some("") => (rest.get(..15)?, 1),
                Some(tail) => (
                    rest.get(..15)?,
                    tail.strip_prefix('-')?.parse::<u32>().ok()?,
                ),
                None => return None,
            };
            // Exactly yyyymmdd-hhmmss: another organization whose name extends this one's
            // (`acme-123456`) does not match.
            let shaped = stamp.bytes().enumerate().all(|(i, b)| match i {
                8 => b == b'-',
                _ => b.is_ascii_digit(),
            });
            shaped.then(|| ((stamp.to_owned(), n), entry.path()))
        })
        .max_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, path)| path)
}

#[async_trait::async_trait]
impl Sink for LocalFiles {
    async fn check(&self, _formats: &[Format]) -> Result<(), SinkError> {
        self.prepare()
    }

    async fn state(&self, org: &OrgName) -> Result<Option<PathBuf>, SinkError> {
        let path = state_path(&self.dir, org);
        Ok(path.is_file().then_some(path))
    }

    fn open_state(&self, org: &OrgName) -> Result<Option<(PathBuf, File)>, SinkError> {
        let folder = self.dir.join(STATE_DIR);
        std::fs::create_dir_all(&folder).map_err(|e| {
            SinkError::local("could not create the folder of the state", &folder, Some(e))
        })?;
        forget_stale_states(&folder);
        let path = state_path(&self.dir, org).with_extension(format!("{}.tmp", std::process::id()));
        let file = File::create(&path)
            .map_err(|e| SinkError::local("could not create the state file", &path, Some(e)))?;
        // Taken back with the report's files if the run fails.
        self.opened
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(path.clone());
        Ok(Some((path, file)))
    }

    async fn keep_state(&self, org: &OrgName, path: PathBuf) -> Result<(), SinkError> {
        let target = state_path(&self.dir, org);
        // A rename within the folder replaces the old state at once: never half a state.
        std::fs::rename(&path, &target).map_err(|e| {
            let _ = std::fs::remove_file(&path);
            SinkError::local("could not keep the state file", &target, Some(e))
        })
    }

    async fn previous(&self, org: &OrgName) -> Result<Option<PreviousReport>, SinkError> {
        Ok(newest_report(&self.dir, org).map(|path| PreviousReport {
            name: path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            path,
        }))
    }

    fn open(
        &self,
        org: &OrgName,
        finished: OffsetDateTime,
        formats: &[Format],
    ) -> Result<Vec<Opened>, SinkError> {
        let stem = file_stem(org, finished);
        'names: for n in 1u32.. {
            let name = match n {
                1 => stem.clone(),
                n => format!("{stem}-{n}"),
            };
            let mut opened = Vec::with_capacity(formats.len());
            for &format in formats {
                let path = self.dir.join(format!("{name}.{}", format.extension()));
                match File::options().write(true).create_new(true).open(&path) {
                    Ok(file) => {
                        // Recorded as soon as it exists, so an interrupt can take it back.
                        self.opened
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push(path.clone());
                        opened.push(Opened { format, path, file });
                    }
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists && n < 1000 => {
                        // Taken (by an earlier report, or a run finishing at the same time):
                        // give back what this name claimed and try the next one.
                        for o in opened {
                            let _ = std::fs::remove_file(o.path);
                        }
                        continue 'names;
                    }
                    Err(e) => {
                        for o in opened {
                            let _ = std::fs::remove_file(o.path);
                        }
                        return Err(SinkError::local("could not create", &path, Some(e)));
                    }
                }
            }
            return Ok(opened);
        }
        unreachable!("the loop returns or fails before running out of numbers")
    }

    fn abandon(&self) {
        let opened = std::mem::take(&mut *self.opened.lock().unwrap_or_else(|p| p.into_inner()));
        for path in opened {
            let _ = std::fs::remove_file(path);
        }
        let created = std::mem::take(&mut *self.created.lock().unwrap_or_else(|p| p.into_inner()));
        for dir in created {
            // Only empty folders go: anything else in them is not ours to remove.
            if std::fs::remove_dir(&dir).is_err() {
                break;
            }
        }
    }

    async fn deliver(
        &self,
        _org: &OrgName,
        _finished: OffsetDateTime,
        written: Vec<(Format, PathBuf)>,
    ) -> Result<Vec<Delivered>, SinkError> {
        // The folder holds a report now: it stays, and so do its files.
        self.created
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        self.opened
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        self.delivered
            .store(true, std::sync::atomic::Ordering::SeqCst);
        Ok(written
            .into_iter()
            .map(|(format, path)| Delivered {
                format,
                location: path.display().to_string(),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn a_killed_runs_temporary_state_is_removed_a_day_later_and_a_fresh_one_kept() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join(STATE_DIR);
        std::fs::create_dir_all(&folder).unwrap();
        let (old, fresh) = (folder.join("a.state.1.tmp"), folder.join("a.state.2.tmp"));
        let kept = folder.join("a.state.json");
        for path in [&old, &fresh, &kept] {
            std::fs::write(path, "{}").unwrap();
        }
        let two_days = std::time::SystemTime::now() - std::time::Duration::from_secs(2 * 86_400);
        for path in [&old, &kept] {
            File::options()
                .write(true)
                .open(path)
                .unwrap()
                .set_modified(two_days)
                .unwrap();
        }
        forget_stale_states(&folder);
        assert!(!old.exists());
        assert!(fresh.exists(), "a run may still be writing it");
        assert!(kept.exists(), "the state itself is never removed");
    }

    const AT: OffsetDateTime = datetime!(2026-11-24 09:05:03 +02:00);

    fn org() -> OrgName {
        OrgName::parse("Fabrikam").unwrap()
    }

    #[test]
    fn the_newest_earlier_report_of_the_org_is_found_by_its_name() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(newest_report(dir.path(), &org()), None);
        for name in [
            "patreport-fabrikam-20261101-090000.json",
            "patreport-fabrikam-20261102-090000.json",
            "patreport-fabrikam-20261102-090000-2.json",
            "patreport-fabrikam-20261102-090000-10.json",
            "patreport-fabrikam-20261103-090000.csv",
            "patreport-fabrikamx-20261109-090000.json",
            "patreport-fabrikam-2026110-junk.json",
            "patreport-fabrikam-123456-20261231-090000.json",
        ] {
            std::fs::write(dir.path().join(name), "{}").unwrap();
        }
        let found = newest_report(dir.path(), &org()).unwrap();
        assert!(
            found.ends_with("patreport-fabrikam-20261102-090000-10.json"),
            "{found:?}"
        );
    }

    #[test]
    fn file_stems_are_sortable_utc() {
        assert_eq!(file_stem(&org(), AT), "patreport-Fabrikam-20261124-070503");
    }

    #[test]
    fn a_second_report_in_the_same_second_gets_its_own_names() {
        let dir = tempfile::tempdir().unwrap();
        let sink = LocalFiles::new(dir.path());
        sink.prepare().unwrap();
        let formats = [Format::Xlsx, Format::Json];
        let first = sink.open(&org(), AT, &formats).unwrap();
        // Another report of the same second already claimed only the JSON name.
        std::fs::write(
            dir.path().join("patreport-Fabrikam-20261124-070503-2.json"),
            "{}",
        )
        .unwrap();
        let second = sink.open(&org(), AT, &formats).unwrap();
        let names = |o: &[Opened]| -> Vec<String> {
            o.iter()
                .map(|o| o.path.file_name().unwrap().to_string_lossy().into_owned())
                .collect()
        };
        assert_eq!(
            names(&first),
            [
                "patreport-Fabrikam-20261124-070503.xlsx",
                "patreport-Fabrikam-20261124-070503.json"
            ]
        );
        assert_eq!(
            names(&second),
            [
                "patreport-Fabrikam-20261124-070503-3.xlsx",
                "patreport-Fabrikam-20261124-070503-3.json"
            ]
        );
        // The abandoned -2 workbook was given back; the other report's file is untouched.
        assert!(
            !dir.path()
                .join("patreport-Fabrikam-20261124-070503-2.xlsx")
                .exists()
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("patreport-Fabrikam-20261124-070503-2.json"))
                .unwrap(),
            "{}"
        );
    }

    #[test]
    fn an_unusable_folder_is_found_before_anything_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("afile");
        std::fs::write(&file, "x").unwrap();
        let e = LocalFiles::new(&file).prepare().unwrap_err().to_string();
        assert!(
            e.contains("is a file, not a folder") && e.contains("afile"),
            "{e}"
        );
        let nested = LocalFiles::new(file.join("below"));
        let e = nested.prepare().unwrap_err().to_string();
        assert!(e.contains("path is a file, not a folder"), "{e}");
        let fresh = LocalFiles::new(dir.path().join("new").join("deeper"));
        fresh.prepare().unwrap();
        assert!(dir.path().join("new/deeper").is_dir());
        assert_eq!(
            std::fs::read_dir(dir.path().join("new/deeper"))
                .unwrap()
                .count(),
            0
        );
        // A run that fails takes back the folders its check created, and only those.
        fresh.abandon();
        assert!(!dir.path().join("new").exists());
        assert!(file.exists());
    }
}
