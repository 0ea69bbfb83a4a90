//! The command line: arguments (clap) and the commands they run.

pub mod bench;
pub mod login;
pub mod progress;
pub mod report;
pub mod serve;
pub mod simulate;

use crate::ado::DEFAULT_ADO_URL;
use crate::auth::AuthMode;
use crate::engine::DEFAULT_CONCURRENCY;
use clap::builder::TypedValueParser;
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;
use url::Url;

/// Exit codes (also in the README).
pub mod exit {
    /// The report is complete.
    pub const OK: u8 = 0;
    /// Nothing was written: a fatal error (bad credential, unknown organization, bad setting).
    pub const FATAL: u8 = 1;
    /// Wrong arguments (clap's own code).
    pub const USAGE: u8 = 2;
    /// The report was written but is incomplete: some users could not be read, or the scan stopped early.
    pub const INCOMPLETE: u8 = 3;
}

#[derive(Debug, Parser)]
#[command(
    name = "patreport",
    version,
    about = "Audit every personal access token (PAT) in an Azure DevOps organization",
    long_about = "Lists every user of an Azure DevOps organization and every personal access token \
        each one holds (owner, scope, reachable organizations, validity), and writes an Excel \
        workbook plus CSV and JSON.\n\nTry it without any Azure account:  patreport report --demo"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Scan an organization (or the built-in demo organization) and write the report.
    Report(Box<ReportArgs>),
    /// Serve the simulated Azure DevOps organization on loopback, to try the API by hand.
    Simulate(simulate::SimulateArgs),
    /// Sign in once (device code) and store the refresh token in Key Vault for --auth refresh-token.
    Login(login::LoginArgs),
    /// Measure scan speed, throttling behaviour, memory and workbook time against the simulator.
    Bench(bench::BenchArgs),
    /// Run as the Azure Functions custom handler (started by the Functions host; see docs/functions.md).
    Serve(serve::ServeArgs),
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ValueEnum)]
pub enum Format {
    Xlsx,
    Csv,
    Json,
}

impl Format {
    pub fn extension(self) -> &'static str {
        match self {
            Format::Xlsx => "xlsx",
            Format::Csv => "csv",
            Format::Json => "json",
        }
    }
}

#[derive(Debug, Clone, clap::Args)]
#[command(
    after_help = "Exit codes: 0 complete report; 1 fatal error, nothing written; \
    2 wrong arguments; 3 report written but incomplete (see its Errors sheet).\n\n\
    Credentials: with --auth pat (the default) the PAT is read from AZURE_DEVOPS_PAT or \
    --pat-file, never from the command line. It needs the scopes Graph (read) and Token \
    administration, and its owner must be a Project Collection Administrator. The other \
    modes (managed-identity, client-secret, workload-identity, azure-cli, developer-tools, \
    refresh-token) read their settings from the environment (AZURE_TENANT_ID, AZURE_CLIENT_ID, \
    ...): see docs/auth.md."
)]
pub struct ReportArgs {
    /// Organization name, as in https://dev.azure.com/ORG.
    #[arg(
        long,
        env = "PATREPORT_ORG",
        required_unless_present = "demo",
        conflicts_with = "demo"
    )]
    pub org: Option<String>,

    /// Scan the built-in demo organization (a simulated Azure DevOps on loopback); no account needed.
    #[arg(long)]
    pub demo: bool,

    /// Directory for the report files (created if missing).
    #[arg(long, env = "PATREPORT_OUT", default_value = "reports")]
    pub out: PathBuf,

    /// Formats to write, comma-separated.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "xlsx,csv,json"
    )]
    pub format: Vec<Format>,

    /// A valid PAT expiring within this many days has status "expiring".
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(0..=3650))]
    pub expiring_days: u32,

    /// Also list revoked / invalid PATs as rows (they are always counted in the summary).
    #[arg(long)]
    pub include_invalid: bool,

    /// PAT listings in flight at once.
    #[arg(long, default_value_t = DEFAULT_CONCURRENCY, value_parser = clap::value_parser!(u16).range(1..=256).map(usize::from))]
    pub concurrency: usize,

    /// Azure DevOps base URL for the Graph and Token Admin APIs.
    #[arg(long, env = "PATREPORT_ADO_URL", default_value = DEFAULT_ADO_URL)]
    pub ado_url: Url,

    /// How to authenticate.
    #[arg(long, env = "PATREPORT_AUTH", value_enum, default_value = "pat")]
    pub auth: AuthMode,

    /// File holding the PAT (instead of the AZURE_DEVOPS_PAT variable).
    #[arg(long, env = "AZURE_DEVOPS_PAT_FILE")]
    pub pat_file: Option<PathBuf>,

    /// Graph subject types to list; the default lists people (Entra ID and Microsoft accounts)
    /// and skips service identities.
    #[arg(long, value_delimiter = ',', default_value = "aad,msa")]
    pub subject_types: Vec<String>,

    /// Page size asked of the Token Admin API.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub pat_page_size: u32,

    /// Time allowed for one HTTP request, e.g. 60s.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub request_timeout: Duration,

    /// Retries of one request on 429, 5xx, connection errors and timeouts.
    #[arg(long, default_value_t = 8)]
    pub max_retries: u32,

    /// Stop starting new work after this long (e.g. 25m) and write a partial, clearly marked report.
    #[arg(long, value_parser = parse_duration)]
    pub time_budget: Option<Duration>,

    /// No progress display.
    #[arg(long, short)]
    pub quiet: bool,

    /// Demo: number of people in the simulated organization.
    #[arg(long, default_value_t = 1500, requires = "demo")]
    pub demo_users: usize,

    /// Demo: seed of the simulated data.
    #[arg(long, default_value_t = 7, requires = "demo")]
    pub demo_seed: u64,

    /// Demo: no injected faults (429s, 5xx, throttling headers).
    #[arg(long, requires = "demo")]
    pub demo_no_faults: bool,

    /// Demo: added latency per request, e.g. 20ms.
    #[arg(long, default_value = "0s", value_parser = parse_duration, requires = "demo")]
    pub demo_latency: Duration,
}

/// Parse `250ms`, `90s`, `25m`, `2h` (a bare number is seconds).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("'{text}' is not a duration like 90s, 25m or 2h"))?;
    let secs = match unit.trim() {
        "ms" => value / 1000.0,
        "" | "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        other => {
            return Err(format!(
                "unknown unit '{other}' in '{text}': use ms, s, m or h"
            ));
        }
    };
    Duration::try_from_secs_f64(secs).map_err(|e| format!("'{text}': {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("25m").unwrap(), Duration::from_secs(1500));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5d").unwrap_err().contains("unknown unit"));
    }

    #[test]
    fn org_or_demo_is_required_and_not_both() {
        assert!(Cli::try_parse_from(["patreport", "report"]).is_err());
        assert!(Cli::try_parse_from(["patreport", "report", "--demo", "--org", "x"]).is_err());
        let cli = Cli::try_parse_from([
            "patreport",
            "report",
            "--org",
            "fabrikam",
            "--format",
            "csv,json",
        ])
        .unwrap();
        let Command::Report(args) = cli.command else {
            panic!("expected report")
        };
        assert_eq!(args.format, vec![Format::Csv, Format::Json]);
        assert_eq!(args.subject_types, vec!["aad", "msa"]);
    }
}
