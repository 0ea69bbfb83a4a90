//! Start-up of the custom handler: listen first (the host pings `GET /` every 25 ms and gives
//! up after 30 s), then do the slow set-up (creating the report container) in the background.

use super::router::router;
use super::state::AppState;
use crate::auth::{self, AuthError};
use crate::config::ServiceConfig;
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
    #[error("Azure DevOps credential ({setting}): {0}", setting = crate::config::AUTH)]
    Auth(AuthError),
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
    let credential =
        auth::resolve(config.auth, config.pat_file.as_deref()).map_err(ServeError::Auth)?;
    let state = Arc::new(
        AppState::new(config, credential, StoreOptions::new("")).map_err(ServeError::Storage)?,
    );
    tracing::info!(
        port,
        orgs = %state.config.orgs.join(","),
        container = %state.config.container,
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

    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(ServeError::Server)
}

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
