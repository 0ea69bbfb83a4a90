//! Start-up of the custom handler: listen first (the host pings `GET /` every 25 ms and gives
//! up after 30 s), then build what needs no network (credential, caller policy, on-behalf-of
//! exchange) and do the slow set-up (creating the report container) in the background.

use super::in_process;
use super::router::router;
use super::state::AppState;
use crate::credentials::AuthError;
use crate::settings::names::{AUTH, HTTP_RUNS};
use crate::settings::{Choice, ServiceSettings};
use crate::storage::StorageError;
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
    #[error("Azure DevOps credential ({AUTH}): {0}")]
    Auth(AuthError),
    #[error("{HTTP_RUNS}=on-behalf-of: {0}")]
    OnBehalfOf(AuthError),
    #[error("report storage: {0}")]
    Storage(StorageError),
    #[error("the HTTP server stopped: {0}")]
    Server(std::io::Error),
}

/// Serve until `shutdown` completes. `port` 0 takes any free port; the port listened on is
/// logged (and is what the host simulator reads).
pub async fn serve(
    settings: ServiceSettings,
    port: u16,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
        .await
        .map_err(|error| ServeError::Bind { port, error })?;
    let port = listener
        .local_addr()
        .map_err(|error| ServeError::Bind { port, error })?
        .port();
    for warning in &settings.warnings {
        tracing::warn!("{warning}");
    }
    let state = Arc::new(AppState::for_settings(settings)?);
    for problem in state.callers.problems() {
        tracing::warn!("caller authorization: {problem}");
    }
    let orgs: Vec<&str> = state.settings.orgs.iter().map(|o| o.as_str()).collect();
    tracing::info!(
        port,
        orgs = %orgs.join(","),
        container = %state.settings.container,
        auth = state.settings.auth.name(),
        http_runs = state.settings.http_runs.name(),
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
