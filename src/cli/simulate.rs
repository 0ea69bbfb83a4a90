//! `patreport simulate`: the simulated organization as a standalone server, to explore the API
//! by hand, and the out-of-process server of `patreport bench`.

use crate::settings::parse::duration as parse_duration;
use crate::simulator::{AuthConfig, OrgSpec, SimConfig, SimOrg, SimServer, TstuLimit, WindowLimit};
use anyhow::Context;
use std::io::Write;
use std::time::Duration;
use time::OffsetDateTime;

#[derive(Debug, Clone, clap::Args)]
pub struct SimulateArgs {
    /// Number of people in the organization.
    #[arg(long, default_value_t = 1500)]
    pub users: usize,
    /// Seed of the simulated data.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Loopback port (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// The PAT the server accepts (any user name in HTTP Basic).
    #[arg(long, default_value = "demo-pat")]
    pub accept_pat: String,
    /// Inject the demo faults (429s, 5xx, throttling headers).
    #[arg(long)]
    pub faults: bool,
    /// Fixed latency added to every answer, e.g. 20ms.
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    pub latency: Duration,
    /// Rate-limit model: the sliding window, e.g. 5s (off when absent).
    #[arg(long, value_parser = parse_duration)]
    pub window: Option<Duration>,
    /// Rate-limit model: requests per window before answers are delayed with Retry-After.
    #[arg(long, default_value_t = 1000, requires = "window")]
    pub window_soft: usize,
    /// Rate-limit model: requests per window before 429.
    #[arg(long, default_value_t = 1500, requires = "window")]
    pub window_budget: usize,
    /// Rate-limit model: how long a delayed answer is held.
    #[arg(long, default_value = "100ms", value_parser = parse_duration, requires = "window")]
    pub window_delay: Duration,
    /// The documented rate limit: TSTUs of one Token Admin listing (a Graph or audit page costs
    /// 10x, a revocation 5x); off when absent.
    #[arg(long)]
    pub tstu_cost: Option<f64>,
    /// TSTU model: the sliding window.
    #[arg(long, default_value = "5m", value_parser = parse_duration, requires = "tstu_cost")]
    pub tstu_window: Duration,
    /// TSTU model: TSTU per window before delays.
    #[arg(long, default_value_t = 200.0, requires = "tstu_cost")]
    pub tstu_limit: f64,
    /// TSTU model: each call costs its mean times 1 ± this.
    #[arg(long, default_value_t = 0.5, requires = "tstu_cost")]
    pub tstu_noise: f64,
    /// TSTU model: refuse with 403 (body: RequestBlockedException) instead of 429.
    #[arg(long, requires = "tstu_cost")]
    pub tstu_403: bool,
    /// TSTU model: share of answers held 50 ms for reasons unrelated to this client's use.
    #[arg(long, default_value_t = 0.0, requires = "tstu_cost")]
    pub tstu_shared_delays: f64,
}

pub async fn run(args: &SimulateArgs) -> anyhow::Result<u8> {
    let spec = OrgSpec {
        users: args.users,
        seed: args.seed,
        ..OrgSpec::demo()
    };
    let org = SimOrg::generate("demo", &spec, OffsetDateTime::now_utc());
    let (people, pats) = (org.human_users().count(), org.pat_count());
    let mut config = if args.faults {
        SimConfig::demo()
    } else {
        SimConfig::strict()
    };
    config.auth = AuthConfig::accepting(&[&args.accept_pat], &[]);
    config.faults.latency = args.latency;
    config.faults.window = args.window.map(|window| WindowLimit {
        window,
        budget: args.window_budget,
        soft_threshold: args.window_soft,
        delay: args.window_delay,
    });
    config.faults.tstu = args.tstu_cost.map(|cost| TstuLimit {
        window: args.tstu_window,
        limit: args.tstu_limit,
        noise: args.tstu_noise,
        blocked_as_403: args.tstu_403,
        shared_delay_probability: args.tstu_shared_delays,
        ..TstuLimit::documented(cost)
    });
    let server = SimServer::start_on(org, config, args.port)
        .await
        .context("starting the simulator")?;
    // The first line is read by `patreport bench`: keep the URL its last word. One write, and
    // a closed stdout is no reason to stop serving.
    let banner = format!(
        "Simulated organization 'demo' ({people} people, {pats} PATs) listening on {url}\n  \
         try: curl -u :{pat} '{url}/demo/_apis/graph/users?subjectTypes=aad,msa&api-version=7.1-preview.1'\n\
         Press Ctrl-C to stop.\n",
        url = server.base_url(),
        pat = args.accept_pat,
    );
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(banner.as_bytes()).and_then(|()| out.flush());
    drop(out);
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    server.shutdown().await;
    Ok(super::exit::OK)
}
