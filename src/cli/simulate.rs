//! `patreport simulate`: the demo organization as a standalone server, to explore the API by hand.

use crate::simulator::{AuthConfig, OrgSpec, SimConfig, SimOrg, SimServer};
use anyhow::Context;
use time::OffsetDateTime;

#[derive(Debug, Clone, clap::Args)]
pub struct SimulateArgs {
    /// Number of people in the organization.
    #[arg(long, default_value_t = 1500)]
    pub users: usize,
    /// Seed of the simulated data.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// The PAT the server accepts (any user name in HTTP Basic).
    #[arg(long, default_value = "demo-pat")]
    pub accept_pat: String,
    /// Inject the demo faults (429s, 5xx, throttling headers).
    #[arg(long)]
    pub faults: bool,
}

pub async fn run(args: &SimulateArgs) -> anyhow::Result<u8> {
    let spec = OrgSpec {
        users: args.users,
        seed: args.seed,
        ..OrgSpec::demo()
    };
    let org = SimOrg::generate("demo", &spec, OffsetDateTime::now_utc());
    let mut config = if args.faults {
        SimConfig::demo()
    } else {
        SimConfig::strict()
    };
    config.auth = AuthConfig::accepting(&[&args.accept_pat], &[]);
    let server = SimServer::start(org, config)
        .await
        .context("starting the simulator")?;
    println!("Simulated organization 'demo' at {}", server.base_url());
    println!(
        "  curl -u :{} '{}/demo/_apis/graph/users?subjectTypes=aad,msa&api-version=7.1-preview.1'",
        args.accept_pat,
        server.base_url()
    );
    println!("Press Ctrl-C to stop.");
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    server.shutdown().await;
    Ok(super::exit::OK)
}
