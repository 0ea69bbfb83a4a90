//! The `patreport` binary: parse the command line, run, map the outcome to an exit code.

use clap::Parser;
use patreport::cli::{self, Cli, Command, exit};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // `serve` runs under the Functions host, which collects stdout: its logs are the service's
    // record, so they go there and default to `info`.
    let serving = matches!(cli.command, Command::Serve(_));
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("PATREPORT_LOG").unwrap_or_else(|_| {
            tracing_subscriber::EnvFilter::new(if serving {
                cli::serve::DEFAULT_LOG_FILTER
            } else {
                "warn"
            })
        });
    let logs = tracing_subscriber::fmt().with_env_filter(filter);
    if serving {
        logs.with_writer(std::io::stdout).with_ansi(false).init();
    } else {
        logs.with_writer(std::io::stderr).init();
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: could not start the async runtime: {e}");
            return ExitCode::from(exit::FATAL);
        }
    };
    let result = runtime.block_on(async {
        match &cli.command {
            Command::Report(args) => cli::report::run(args).await,
            Command::Revoke(args) => cli::revoke::run(args).await,
            Command::Simulate(args) => cli::simulate::run(args).await,
            Command::Login(args) => cli::login::run(args).await,
            Command::Bench(args) => cli::bench::run(args).await,
            Command::Serve(args) => cli::serve::run(args).await,
            Command::BenchProbe(args) => cli::bench::probe_run(args).await,
        }
    });
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) if e.downcast_ref::<cli::revoke::Usage>().is_some() => {
            eprintln!("error: {e}");
            ExitCode::from(exit::USAGE)
        }
        Err(e) => {
            // One line: the message, then only the causes that add to it (most errors already
            // carry their cause's text). No panic, no backtrace.
            let mut line = e.to_string();
            for cause in e.chain().skip(1) {
                let cause = cause.to_string();
                if !line.contains(&cause) {
                    line.push_str(": ");
                    line.push_str(&cause);
                }
            }
            eprintln!("error: {}", line.replace('\n', " "));
            ExitCode::from(exit::FATAL)
        }
    }
}
