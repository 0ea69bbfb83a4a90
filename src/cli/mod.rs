//! The command line: arguments (clap) and the commands they run.

pub mod bench;
pub mod login;
pub mod progress;
pub mod report;
pub mod revoke;
pub mod serve;
pub mod simulate;
pub mod web;

use crate::ado::{DEFAULT_ADO_URL, DEFAULT_PAGE_LIMIT};
use crate::credentials::AuthMode;
use crate::engine::DEFAULT_CONCURRENCY;
use crate::findings::Policy;
use crate::notify::Webhook;
use crate::report::Format;
use crate::settings::names;
use crate::settings::{Choice, ScanSettings, parse};
use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Parser, Subcommand};
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
    /// Interrupted twice: stopped at once, nothing written (128 + SIGINT, as shells report it).
    pub const INTERRUPTED: u8 = 130;
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
    /// Revoke tokens chosen from a report: a dry run unless --yes; every run is audited.
    Revoke(Box<revoke::RevokeArgs>),
    /// Run as the Azure Functions custom handler (started by the Functions host; see docs/functions.md).
    Serve(serve::ServeArgs),
    /// One path of the benchmark's memory case, in a process of its own (used by `bench`).
    #[command(hide = true)]
    BenchProbe(bench::ProbeArgs),
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
        env = names::ORGS,
        required_unless_present = "demo",
        conflicts_with = "demo"
    )]
    pub org: Option<String>,

    /// Scan the built-in demo organization (a simulated Azure DevOps on loopback); no account needed.
    #[arg(long)]
    pub demo: bool,

    /// Directory for the report files (created if missing).
    #[arg(long, env = names::OUT, default_value = "reports")]
    pub out: PathBuf,

    /// Formats to write, comma-separated: xlsx, csv, json, html.
    #[arg(
        long,
        value_delimiter = ',',
        value_parser = parse_format,
        default_value = "xlsx,csv,json,html"
    )]
    pub format: Vec<Format>,

    /// A valid PAT expiring within this many days has status "expiring".
    #[arg(long, env = names::EXPIRING_DAYS, default_value_t = 30, value_parser = clap::value_parser!(u32).range(0..=3650))]
    pub expiring_days: u32,

    /// Also list revoked / invalid PATs as rows (they are always counted in the summary).
    #[arg(long, env = names::INCLUDE_INVALID)]
    pub include_invalid: bool,

    /// The policy the findings are judged against: a TOML or JSON file (or inline JSON); the
    /// built-in policy otherwise (see docs/findings.md).
    #[arg(long, env = names::POLICY, value_name = "FILE", value_parser = parse_policy)]
    pub policy: Option<Policy>,

    /// Tell a webhook about the report: Microsoft Teams (Workflows), Slack, or any JSON
    /// receiver; `teams:`, `slack:` or `json:` before the URL picks the format. Repeatable.
    /// The URL is a secret: never printed. Delivery is retried and never fails the report.
    #[arg(long, value_name = "URL", env = names::NOTIFY, value_delimiter = ',', hide_env_values = true, value_parser = parse_webhook)]
    pub notify: Vec<Webhook>,

    /// Compare with this earlier JSON report (by default: the newest earlier JSON report of
    /// the organization in the output folder).
    #[arg(long, value_name = "FILE", conflicts_with = "no_compare")]
    pub compare: Option<PathBuf>,

    /// Do not compare with an earlier report (no Changes sheet or section).
    #[arg(long)]
    pub no_compare: bool,
    /// Also list every user's SSH public keys (one more Token Admin listing per user).
    #[arg(long, env = names::INCLUDE_SSH_KEYS)]
    pub include_ssh_keys: bool,

    /// Refresh from the audit log: read again only the owners whose tokens changed since the
    /// last state in the output folder (a full scan when there is none, or when in doubt; the
    /// report says which ran and why).
    #[arg(long, env = names::INCREMENTAL)]
    pub incremental: bool,

    /// With --incremental, a full scan at least this often, as a check (e.g. 7d).
    #[arg(long, env = names::FULL_SCAN_EVERY, default_value = "7d", value_parser = parse::duration)]
    pub full_scan_every: Duration,

    /// Audit Log base URL (https; plain http only to loopback).
    #[arg(long, env = names::AUDIT_URL, default_value = crate::ado::DEFAULT_AUDIT_URL, value_parser = parse::ado_url)]
    pub audit_url: Url,

    /// PAT listings in flight at once.
    #[arg(long, env = names::CONCURRENCY, default_value_t = DEFAULT_CONCURRENCY, value_parser = clap::value_parser!(u16).range(1..=256).map(usize::from))]
    pub concurrency: usize,

    /// Azure DevOps base URL for the Graph and Token Admin APIs (https; plain http only to loopback).
    #[arg(long, env = names::ADO_URL, default_value = DEFAULT_ADO_URL, value_parser = parse::ado_url)]
    pub ado_url: Url,

    /// How to authenticate.
    #[arg(long, env = names::AUTH, default_value = "pat", value_parser = auth_mode_parser())]
    pub auth: AuthMode,

    /// File holding the PAT (instead of the AZURE_DEVOPS_PAT variable).
    #[arg(long, env = names::PAT_FILE)]
    pub pat_file: Option<PathBuf>,

    /// Graph subject types to list; the default lists people (Entra ID and Microsoft accounts)
    /// and skips service identities.
    #[arg(long, env = names::SUBJECT_TYPES, value_delimiter = ',', default_value = "aad,msa")]
    pub subject_types: Vec<String>,

    /// Page size asked of the Token Admin API.
    #[arg(long, env = names::PAT_PAGE_SIZE, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub pat_page_size: u32,

    /// Time allowed for one HTTP request, with a unit (e.g. 60s).
    #[arg(long, env = names::REQUEST_TIMEOUT, default_value = "60s", value_parser = parse::duration)]
    pub request_timeout: Duration,

    /// Retries of one request on 429, 5xx, connection errors and timeouts.
    #[arg(long, env = names::MAX_RETRIES, default_value_t = 8, value_parser = clap::value_parser!(u32).range(0..=100))]
    pub max_retries: u32,

    /// Pages one listing (the users, or one user's PATs) may take before it is taken for one
    /// that never ends: the user is then reported as not read, or the scan as stopped early.
    #[arg(long, env = names::PAGE_LIMIT, default_value_t = DEFAULT_PAGE_LIMIT, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub page_limit: u32,

    /// Stop starting new work after this long (with a unit, e.g. 25m) and write a partial,
    /// clearly marked report.
    #[arg(long, env = names::TIME_BUDGET, value_parser = parse::duration)]
    pub time_budget: Option<Duration>,

    /// No progress display.
    #[arg(long, short)]
    pub quiet: bool,

    /// Show the table filling in, in a browser, while the scan runs, then the finished report,
    /// until Ctrl-C: served on 127.0.0.1 only (see --web-port).
    #[arg(long)]
    pub web: bool,

    /// The port of --web on 127.0.0.1 (0: any free port; the address is printed).
    #[arg(long, default_value_t = 5000, requires = "web")]
    pub web_port: u16,

    /// Demo: number of people in the simulated organization.
    #[arg(long, default_value_t = 1500, requires = "demo")]
    pub demo_users: usize,

    /// Demo: seed of the simulated data.
    #[arg(long, default_value_t = 7, requires = "demo")]
    pub demo_seed: u64,

    /// Demo: no injected faults (429s, 5xx, throttling headers).
    #[arg(long, requires = "demo")]
    pub demo_no_faults: bool,

    /// Demo: added latency per request, with a unit (e.g. 20ms).
    #[arg(long, default_value = "0s", value_parser = parse::duration, requires = "demo")]
    pub demo_latency: Duration,
}

impl ReportArgs {
    /// The scan settings these flags (and their environment variables) give, reaching Azure
    /// DevOps at `ado_url`.
    pub fn scan_settings(&self, ado_url: Url) -> ScanSettings {
        ScanSettings {
            ado_url,
            subject_types: self.subject_types.clone(),
            pat_page_size: self.pat_page_size,
            request_timeout: self.request_timeout,
            max_retries: self.max_retries,
            page_limit: self.page_limit,
            concurrency: self.concurrency,
            time_budget: self.time_budget,
            expiring_days: self.expiring_days,
            include_invalid: self.include_invalid,
            policy: self.policy.clone().unwrap_or_default(),
            include_ssh_keys: self.include_ssh_keys,
            audit_url: self.audit_url.clone(),
            refresh: crate::refresh::RefreshOptions {
                incremental: self.incremental,
                full_scan_every: self.full_scan_every,
            },
        }
    }
}

/// Checked when the command line is parsed; the error never repeats the URL.
fn parse_webhook(text: &str) -> Result<Webhook, String> {
    Webhook::parse(text).map_err(|e| e.to_string())
}

/// Read when the command line is parsed, so a bad policy is reported before any scan.
fn parse_policy(text: &str) -> Result<Policy, String> {
    Policy::from_setting(text).map_err(|e| e.to_string())
}

fn parse_format(text: &str) -> Result<Format, String> {
    text.parse()
}

/// The credential modes a command line can use (on-behalf-of needs an HTTP caller).
pub(crate) fn auth_mode_parser() -> impl TypedValueParser<Value = AuthMode> {
    let names: Vec<&'static str> = AuthMode::ALL
        .iter()
        .filter(|m| **m != AuthMode::OnBehalfOf)
        .map(|m| m.name())
        .collect();
    PossibleValuesParser::new(names).try_map(|name| AuthMode::parse(&name))
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
    fn durations_need_a_unit_and_urls_https() {
        let parse = |args: &[&str]| {
            Cli::try_parse_from([&["patreport", "report", "--org", "x"], args].concat())
        };
        assert!(parse(&["--time-budget", "25m"]).is_ok());
        let e = parse(&["--time-budget", "25"]).unwrap_err().to_string();
        assert!(e.contains("no unit"), "{e}");
        let e = parse(&["--ado-url", "http://ado.example.com"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("https"), "{e}");
        assert!(parse(&["--ado-url", "http://127.0.0.1:9"]).is_ok());
    }

    #[test]
    fn report_offers_only_the_modes_a_command_line_can_use() {
        let e = Cli::try_parse_from([
            "patreport",
            "report",
            "--org",
            "x",
            "--auth",
            "on-behalf-of",
        ])
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("managed-identity") && e.contains("refresh-token"),
            "{e}"
        );
        assert!(!e.contains("[possible values: pat, managed-identity, client-secret, workload-identity, azure-cli, developer-tools, on-behalf-of"), "{e}");
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
        assert!(!args.include_ssh_keys);
    }

    #[test]
    fn include_ssh_keys_reaches_the_scan() {
        let cli =
            Cli::try_parse_from(["patreport", "report", "--demo", "--include-ssh-keys"]).unwrap();
        let Command::Report(args) = cli.command else {
            panic!("expected report")
        };
        let url = Url::parse("http://127.0.0.1:9").unwrap();
        let org = crate::domain::OrgName::parse("demo").unwrap();
        let plan = args.scan_settings(url).plan(org, vec![Format::Json]);
        assert!(plan.scan.include_ssh_keys);
    }
}
