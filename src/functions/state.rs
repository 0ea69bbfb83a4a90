//! What every request handler shares: the settings, the Azure DevOps credential, who may ask
//! (the caller policy), the on-behalf-of exchange when HTTP runs use it, the runs in progress
//! in this process, and the report storage, whose container is created lazily (and retried)
//! so that start-up never waits on the network.

use super::in_process::InProcessRuns;
use super::server::ServeError;
use crate::ado::AdoCredential;
use crate::callers::CallerPolicy;
use crate::credentials::{self, AuthRuntime, OnBehalfOf};
use crate::settings::{HttpRuns, ServiceSettings, StorageSetting};
use crate::storage::{BlobStore, RunStore, StorageAccess, StorageError, StoreOptions};
use azure_identity::{ManagedIdentityCredential, ManagedIdentityCredentialOptions, UserAssignedId};
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::Mutex;

pub struct AppState {
    pub settings: ServiceSettings,
    /// The app's own credential (`PATREPORT_AUTH`): timer and queued runs.
    pub credential: AdoCredential,
    /// Who may call the HTTP functions.
    pub callers: CallerPolicy,
    /// Set when `PATREPORT_HTTP_RUNS=on-behalf-of`.
    pub on_behalf_of: Option<OnBehalfOf>,
    pub in_process: InProcessRuns,
    runs: RunStore,
    container_ready: AtomicBool,
    setup: Mutex<()>,
}

impl AppState {
    /// Everything the settings describe: the app's credential, who may call, the on-behalf-of
    /// exchange when HTTP runs use it, the report storage. No network I/O.
    pub fn for_settings(settings: ServiceSettings) -> Result<Self, ServeError> {
        // One HTTP client for every sign-in (Entra, managed identity, Key Vault, signing keys).
        let runtime = AuthRuntime::new(settings.credentials.extra_ca_file.as_deref())
            .map_err(|e| ServeError::Auth(e.into()))?;
        let credential =
            credentials::resolve_with(&settings.credentials, &runtime).map_err(ServeError::Auth)?;
        // Problems do not stop the service (the timer and the worker need no caller); every
        // HTTP request is refused with them as the reason until they are fixed.
        let callers = CallerPolicy::new(settings.callers.clone(), &runtime);
        let on_behalf_of = match settings.http_runs {
            HttpRuns::Queue => None,
            HttpRuns::OnBehalfOf => Some(
                OnBehalfOf::from_settings(&settings.credentials, &runtime)
                    .map_err(ServeError::OnBehalfOf)?,
            ),
        };
        Self::new(
            settings,
            credential,
            callers,
            on_behalf_of,
            StoreOptions::new(""),
        )
        .map_err(ServeError::Storage)
    }

    /// No network I/O here: the host is waiting for our port.
    pub fn new(
        settings: ServiceSettings,
        credential: AdoCredential,
        callers: CallerPolicy,
        on_behalf_of: Option<OnBehalfOf>,
        mut options: StoreOptions,
    ) -> Result<Self, StorageError> {
        let access = storage_access(&settings.storage)?;
        options.container = settings.container.clone();
        let runs = RunStore::new(BlobStore::new(&access, options)?);
        Ok(Self {
            settings,
            credential,
            callers,
            on_behalf_of,
            in_process: InProcessRuns::new(super::in_process::MAX_IN_PROCESS_RUNS),
            runs,
            container_ready: AtomicBool::new(false),
            setup: Mutex::new(()),
        })
    }

    /// The run store, once its container exists (created on first use if missing).
    pub async fn runs(&self) -> Result<&RunStore, StorageError> {
        if !self.container_ready.load(Ordering::Acquire) {
            let _guard = self.setup.lock().await;
            if !self.container_ready.load(Ordering::Acquire) {
                let created = self.runs.blobs().ensure_container().await?;
                if created {
                    tracing::info!(
                        container = self.runs.blobs().container(),
                        "created the report container"
                    );
                }
                self.container_ready.store(true, Ordering::Release);
            }
        }
        Ok(&self.runs)
    }
}

/// The storage access the settings describe.
pub fn storage_access(setting: &StorageSetting) -> Result<StorageAccess, StorageError> {
    match setting {
        StorageSetting::ConnectionString(account) => Ok(StorageAccess::Key(account.clone())),
        StorageSetting::AccountUrl { url, client_id } => {
            let options = ManagedIdentityCredentialOptions {
                user_assigned_id: client_id.clone().map(UserAssignedId::ClientId),
                ..Default::default()
            };
            let credential = ManagedIdentityCredential::new(Some(options))
                .map_err(|e| StorageError::Config(format!("managed identity: {e}")))?;
            Ok(StorageAccess::Identity {
                account_url: url.clone(),
                credential,
            })
        }
    }
}
