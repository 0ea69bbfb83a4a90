//! Azurite, the storage emulator (npm `azurite`, pinned in package.json; `npm ci` installs it,
//! scripts/test.sh does that). Each test binary starts its own instances on free ports with
//! `--inMemoryPersistence --disableTelemetry --skipApiVersionCheck --loose`.
//!
//! Azurite runs under `sh`, which kills it when our end of its stdin closes: the test process
//! holds that end, so Azurite never outlives the tests, whatever way they end.

use super::{free_port, repo_root, scratch_dir, wait_for_port};
use patreport::storage::connection::{DEV_ACCOUNT, DEV_ACCOUNT_KEY};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

pub struct Azurite {
    pub blob_port: u16,
    pub queue_port: u16,
    pub https: bool,
    child: Child,
    _stdin: Option<ChildStdin>,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Azurite {
    /// Blob and queue services over plain HTTP (the account-key path).
    pub fn start() -> Azurite {
        let (blob, queue, table) = (free_port(), free_port(), free_port());
        let args = vec![
            "--blobHost".into(),
            "127.0.0.1".into(),
            "--blobPort".into(),
            blob.to_string(),
            "--queueHost".into(),
            "127.0.0.1".into(),
            "--queuePort".into(),
            queue.to_string(),
            "--tableHost".into(),
            "127.0.0.1".into(),
            "--tablePort".into(),
            table.to_string(),
        ];
        Self::launch("azurite.js", args, blob, Some(queue), false)
    }

    /// The blob service over HTTPS with `--oauth basic`: bearer tokens and user delegation
    /// keys (signatures of the tokens are not checked by Azurite).
    pub fn start_https_oauth(cert: &Path, key: &Path) -> Azurite {
        let blob = free_port();
        let args = vec![
            "--blobHost".into(),
            "127.0.0.1".into(),
            "--blobPort".into(),
            blob.to_string(),
            "--oauth".into(),
            "basic".into(),
            "--cert".into(),
            cert.display().to_string(),
            "--key".into(),
            key.display().to_string(),
        ];
        Self::launch("blob/main.js", args, blob, None, true)
    }

    fn launch(
        script: &str,
        mut args: Vec<String>,
        blob: u16,
        queue: Option<u16>,
        https: bool,
    ) -> Azurite {
        let entry = repo_root()
            .join("node_modules/azurite/dist/src")
            .join(script);
        assert!(
            entry.exists(),
            "Azurite is not installed ({} is missing): run `npm ci` in the repository root (scripts/test.sh does)",
            entry.display()
        );
        let dir = scratch_dir("patreport-azurite-");
        let log = dir.path().join("azurite.log");
        args.extend(
            [
                "--inMemoryPersistence",
                "--disableTelemetry",
                "--skipApiVersionCheck",
                "--loose",
            ]
            .map(String::from),
        );
        let log_file = std::fs::File::create(&log).expect("azurite log file");
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(r#"node "$@" & pid=$!; cat >/dev/null; kill $pid 2>/dev/null; wait $pid"#)
            .arg("azurite")
            .arg(&entry)
            .args(&args)
            .current_dir(dir.path())
            .stdin(Stdio::piped())
            .stdout(log_file.try_clone().expect("log handle"))
            .stderr(log_file)
            .spawn()
            .expect("start Azurite (is node on PATH?)");
        let stdin = child.stdin.take();
        let mut azurite = Azurite {
            blob_port: blob,
            queue_port: queue.unwrap_or(0),
            https,
            child,
            _stdin: stdin,
            log,
            _dir: dir,
        };
        let ports: Vec<u16> = std::iter::once(blob).chain(queue).collect();
        for port in ports {
            if !azurite.wait_for(port) {
                let _ = azurite.child.kill();
                panic!(
                    "Azurite did not listen on {port}; its log:\n{}",
                    azurite.log_text()
                );
            }
        }
        azurite
    }

    /// Wait for a port, giving up early if Azurite exits.
    fn wait_for(&mut self, port: u16) -> bool {
        for _ in 0..600 {
            if wait_for_port(port, Duration::from_millis(100)) {
                return true;
            }
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return false;
            }
        }
        false
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn scheme(&self) -> &'static str {
        if self.https { "https" } else { "http" }
    }

    pub fn blob_endpoint(&self) -> String {
        format!(
            "{}://127.0.0.1:{}/{DEV_ACCOUNT}",
            self.scheme(),
            self.blob_port
        )
    }

    pub fn queue_endpoint(&self) -> String {
        format!("http://127.0.0.1:{}/{DEV_ACCOUNT}", self.queue_port)
    }

    /// An explicit connection string with the well-known development key.
    pub fn connection_string(&self) -> String {
        format!(
            "DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_ACCOUNT_KEY};BlobEndpoint={};QueueEndpoint={};",
            self.blob_endpoint(),
            self.queue_endpoint()
        )
    }

    /// The same, with the blob endpoint replaced (e.g. by a proxy in front of Azurite).
    pub fn connection_string_with_blob(&self, blob_endpoint: &str) -> String {
        format!(
            "DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_ACCOUNT_KEY};BlobEndpoint={blob_endpoint};QueueEndpoint={};",
            self.queue_endpoint()
        )
    }
}

impl Drop for Azurite {
    fn drop(&mut self) {
        // Closing its stdin makes the shell stop Azurite and exit; kill only as a last resort
        // (killing the shell first would leave Azurite running).
        self._stdin = None;
        for _ in 0..100 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One plain-HTTP Azurite shared by all tests of a test binary (started on first use).
pub fn shared() -> &'static Azurite {
    static AZURITE: OnceLock<Azurite> = OnceLock::new();
    AZURITE.get_or_init(Azurite::start)
}
