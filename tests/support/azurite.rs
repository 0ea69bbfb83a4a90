//! Azurite, the storage emulator (npm `azurite`, pinned in package.json; `npm ci` installs it,
//! scripts/test.sh does that). Each test binary starts its own instances with
//! `--inMemoryPersistence --disableTelemetry --skipApiVersionCheck --loose` on port 0: the
//! system picks free ports and Azurite's log says which ("… successfully listening at
//! http://127.0.0.1:PORT"), so no two processes can race for a port.
//!
//! Azurite runs under `sh`, which kills it when our end of its stdin closes: the test process
//! holds that end, so Azurite never outlives the tests, whatever way they end.

use super::{repo_root, scratch_dir};
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
        let args = [
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            "0",
            "--queueHost",
            "127.0.0.1",
            "--queuePort",
            "0",
            "--tableHost",
            "127.0.0.1",
            "--tablePort",
            "0",
        ]
        .map(String::from)
        .to_vec();
        Self::launch("azurite.js", args, &["Blob", "Queue", "Table"], false)
    }

    /// The blob service over HTTPS with `--oauth basic`: bearer tokens and user delegation
    /// keys (signatures of the tokens are not checked by Azurite).
    pub fn start_https_oauth(cert: &Path, key: &Path) -> Azurite {
        let args = vec![
            "--blobHost".into(),
            "127.0.0.1".into(),
            "--blobPort".into(),
            "0".into(),
            "--oauth".into(),
            "basic".into(),
            "--cert".into(),
            cert.display().to_string(),
            "--key".into(),
            key.display().to_string(),
        ];
        Self::launch("blob/main.js", args, &["Blob"], true)
    }

    fn launch(script: &str, mut args: Vec<String>, services: &[&str], https: bool) -> Azurite {
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
            blob_port: 0,
            queue_port: 0,
            https,
            child,
            _stdin: stdin,
            log,
            _dir: dir,
        };
        let ports = azurite.listening_ports(services);
        azurite.blob_port = ports.first().copied().unwrap_or(0);
        azurite.queue_port = ports.get(1).copied().unwrap_or(0);
        azurite
    }

    /// The port of each service, from the log lines Azurite writes once it listens. Waits for
    /// them (Azurite starts in about a second), giving up early if it exits.
    fn listening_ports(&mut self, services: &[&str]) -> Vec<u16> {
        for _ in 0..1200 {
            let log = self.log_text();
            let ports: Vec<Option<u16>> = services
                .iter()
                .map(|service| {
                    // azurite.js: "… service is successfully listening at URL";
                    // blob/main.js: "… service successfully listens on URL".
                    let service = format!("Azurite {service} service ");
                    let line = log.lines().find(|l| {
                        l.contains(&service)
                            && (l.contains("successfully listening at")
                                || l.contains("successfully listens on"))
                    })?;
                    line.rsplit(':')
                        .next()?
                        .trim()
                        .trim_end_matches('/')
                        .parse()
                        .ok()
                })
                .collect();
            if ports.iter().all(Option::is_some) {
                return ports.into_iter().flatten().collect();
            }
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        panic!(
            "Azurite did not say it listens for {services:?}; its log:\n{}",
            self.log_text()
        );
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
