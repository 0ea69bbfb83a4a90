//! How credentials reach the outside world: one HTTP client for Entra, Key Vault and the managed
//! identity endpoint, and the process runner of the Azure CLI.
//!
//! Production uses [`AuthRuntime::from_env`] (the platform's roots, plus the CAs of
//! `PATREPORT_EXTRA_CA_FILE` when set). Tests pass a client that trusts a test CA and resolves
//! test host names to loopback, and a fake `az`; nothing else differs, so the tests run the
//! same code (azure_identity included) as production.

use super::EntraError;
use crate::settings::names::EXTRA_CA_FILE;
use azure_core::cloud::{CloudConfiguration, CustomConfiguration};
use azure_core::http::{ClientOptions, Transport};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use url::Url;

#[derive(Clone)]
pub struct AuthRuntime {
    http: reqwest::Client,
    cli_executor: Option<Arc<dyn azure_identity::Executor>>,
}

impl fmt::Debug for AuthRuntime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthRuntime")
            .field("custom_cli", &self.cli_executor.is_some())
            .finish_non_exhaustive()
    }
}

impl AuthRuntime {
    /// The production set-up: rustls with the platform's roots, no redirects (a token endpoint
    /// that redirects is misconfigured, and a redirect would carry the form to another host).
    /// `extra_ca_file` (`PATREPORT_EXTRA_CA_FILE`) adds the CAs of a PEM file: for a
    /// TLS-inspecting proxy between the app and Entra, and for the tests' fake Entra served by
    /// another process. The platform's roots stay trusted.
    pub fn new(extra_ca_file: Option<&std::path::Path>) -> Result<Self, EntraError> {
        let roots = match extra_ca_file {
            None => Vec::new(),
            Some(path) => load_roots(path)?,
        };
        Self::with_extra_roots(roots)
    }

    fn with_extra_roots(roots: Vec<reqwest::Certificate>) -> Result<Self, EntraError> {
        let http = reqwest::Client::builder()
            .tls_certs_merge(roots)
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .user_agent(concat!("patreport/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| EntraError::Setup(format!("HTTP client for sign-in: {e}")))?;
        Ok(Self::with_http_client(http))
    }

    /// Use this HTTP client for every call (tests: one that trusts a test CA).
    pub fn with_http_client(http: reqwest::Client) -> Self {
        Self {
            http,
            cli_executor: None,
        }
    }

    /// Run the Azure CLI through `executor` (tests: a fake `az`).
    pub fn with_cli_executor(mut self, executor: Arc<dyn azure_identity::Executor>) -> Self {
        self.cli_executor = Some(executor);
        self
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub(crate) fn cli_executor(&self) -> Option<Arc<dyn azure_identity::Executor>> {
        self.cli_executor.clone()
    }

    /// Options for azure_identity and Key Vault clients: our transport, and the authority host
    /// (azure_identity reads it from `ClientOptions::cloud`, not from the environment, when set).
    pub(crate) fn client_options(&self, authority: &Url) -> ClientOptions {
        let mut custom = CustomConfiguration::default();
        custom.authority_host = authority.as_str().trim_end_matches('/').to_owned();
        ClientOptions {
            transport: Some(Transport::new(Arc::new(self.http.clone()))),
            cloud: Some(Arc::new(CloudConfiguration::Custom(custom))),
            ..Default::default()
        }
    }
}

/// The certificates of a PEM bundle; at least one, or the setting is surely wrong.
fn load_roots(path: &std::path::Path) -> Result<Vec<reqwest::Certificate>, EntraError> {
    let bad = |problem: String| EntraError::Setup(format!("{EXTRA_CA_FILE}: {problem}"));
    let pem =
        std::fs::read(path).map_err(|e| bad(format!("could not read {}: {e}", path.display())))?;
    let roots = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
        bad(format!(
            "{} is not a PEM certificate bundle: {e}",
            path.display()
        ))
    })?;
    if roots.is_empty() {
        return Err(bad(format!(
            "{} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        )));
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_roots_must_be_a_readable_pem_bundle() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let e = load_roots(&missing).unwrap_err().to_string();
        assert!(
            e.contains("PATREPORT_EXTRA_CA_FILE") && e.contains("could not read"),
            "{e}"
        );
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let e = load_roots(&empty).unwrap_err().to_string();
        assert!(e.contains("no PEM certificate"), "{e}");
    }
}
