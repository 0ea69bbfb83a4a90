//! Shared test support: Azurite (the storage emulator, started per test binary), a minimal
//! Storage Queue client, a fault-injecting HTTP proxy, test TLS certificates and the
//! Functions host simulator.
//!
//! Each integration test file compiles this module separately and uses part of it.
#![allow(dead_code)]

pub mod azurite;
pub mod host;
pub mod proxy;
pub mod queue;
pub mod tls;
pub mod webhook;

use std::path::PathBuf;

/// The repository root (where host.json and the function folders are).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A port no server can listen on: a connection to port 0 is refused at once. Servers the
/// tests start bind port 0 and report the port they got, so none races for a port.
pub const REFUSING_PORT: u16 = 0;

/// A scratch directory for logs and certificates, removed when dropped.
pub fn scratch_dir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("temporary directory")
}
