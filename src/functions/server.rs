//! Start-up of the custom handler: listen first (the host pings `GET /` every 25 ms and gives
//! up after 30 s), then build what needs no network (credential, caller policy, on-behalf-of
//! exchange) and do the slow set-up (creating the report container) in the background.

use super::in_process;
use super::router::router;
use super::state::AppState;
use crate::auth::{self, AuthError, AuthRuntime, AuthSettings, CallerPolicy, OnBehalfOf};
use crate::config::{self, HttpRuns, ServiceConfig};
use crate::storage::{StorageError, StoreOptions};
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use tokio::net::TcpListener;

/// Why the handler could not start or stopped. The inner errors are part of the message (and
/// not `source`s), so the command line prints each cause once.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("could not listen on 127.0.0.1:{port}: {error}")]
    Bind { port: u16, error: std::io::Error },
    #[error("Azure DevOps credential ({setting}): {0}", setting = config::AUTH)]
    Auth(AuthError),
    #[error("{setting}=on-behalf-of: {0}", setting = config::HTTP_RUNS)]
    OnBehalfOf(AuthError),
    #[error("report storage: {0}")]
    Storage(StorageError),
    #[error("the HTTP server stopped: {0}")]
    Server(std::io::Error),
}

/// Serve until `shutdown` completes.
pub async fn serve(
    config: ServiceConfig,
    port: u16,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
        .await
        .map_err(|error| ServeError::Bind { port, error })?;
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    // One HTTP client for every sign-in (Entra, managed identity, Key Vault, signing keys).
    let runtime = AuthRuntime::from_env().map_err(ServeError::Auth)?;
    let settings = AuthSettings::from_env(config.auth, config.pat_file.as_deref())
        .map_err(ServeError::Auth)?;
    let credential = auth::resolve_with(&settings, &runtime).map_err(ServeError::Auth)?;
    // Problems do not stop the service (the timer and the worker need no caller); every
    // HTTP request is refused with them as the reason until they are fixed.
    let callers = CallerPolicy::from_env(&runtime);
    for problem in callers.problems() {
        tracing::warn!("caller authorization: {problem}");
    }
    let on_behalf_of = match config.http_runs {
        HttpRuns::Queue => None,
        HttpRuns::OnBehalfOf => {
            Some(OnBehalfOf::from_env(&runtime).map_err(ServeError::OnBehalfOf)?)
        }
    };
    let state = Arc::new(
        AppState::new(
            config,
            credential,
            callers,
            on_behalf_of,
            StoreOptions::new(""),
        )
        .map_err(ServeError::Storage)?,
    );
    tracing::info!(
        port,
        orgs = %state.config.orgs.join(","),
        container = %state.config.container,
        auth = state.config.auth.name(),
        http_runs = state.config.http_runs.name(),
        callers_ready = state.callers.problems().is_empty(),
        "patreport custom handler listening on 127.0.0.1"
    );

    let warm = state.clone();
    tokio::spawn(async move {
        match warm.runs().await {
            Ok(_) => tracing::info!("report storage is ready"),
            Err(e) => {
                tracing::warn!(error = %e, "report storage is not reachable yet; will retry on the next request")
            }
        }
    });

    let served = axum::serve(listener, router(state.clone()))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(ServeError::Server);
    // The host gives a stopping worker a few seconds at most.
    if tokio::time::timeout(SHUTDOWN_GRACE, in_process::abandon_all(&state))
        .await
        .is_err()
    {
        tracing::warn!("shutting down: in-process runs could not all be marked failed in time");
    }
    served
}

/// How long shutting down may take to record the in-process runs it ends.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
