//! `patreport serve`: run as the Azure Functions custom handler (see `functions`).
//!
//! The Functions host starts it with `FUNCTIONS_CUSTOMHANDLER_PORT` set (host.json passes the
//! `serve` argument); `--port` is for running it by hand. Settings come from the environment
//! (`config`); logs go to stdout, where the host collects them.

use super::exit;
use crate::functions::server::{serve, shutdown_signal};
use crate::settings::{ServiceSettings, names};

/// Our own events at `info`; the SDK's per-request chatter only when something is wrong.
pub const DEFAULT_LOG_FILTER: &str =
    "info,azure_core=warn,azure_identity=warn,azure_storage_blob=warn,typespec_client_core=warn";

#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Port on 127.0.0.1 to listen on (default: FUNCTIONS_CUSTOMHANDLER_PORT, set by the
    /// Functions host; 0 for any free port, which is logged).
    #[arg(long)]
    pub port: Option<u16>,
}

pub async fn run(args: &ServeArgs) -> anyhow::Result<u8> {
    let settings = match ServiceSettings::from_env() {
        Ok(settings) => settings,
        Err(e) => {
            tracing::error!("{e}");
            anyhow::bail!("{e}");
        }
    };
    let Some(port) = args.port.or(settings.port) else {
        let message = format!(
            "{} is not set (the Functions host sets it); pass --port to run by hand",
            names::PORT
        );
        tracing::error!("{message}");
        anyhow::bail!(message);
    };
    if let Err(e) = serve(settings, port, shutdown_signal()).await {
        tracing::error!("{e}");
        return Err(e.into());
    }
    Ok(exit::OK)
}
