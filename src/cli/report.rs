//! `patreport report`: build the plan from the arguments, run the report pipeline into the
//! output folder, say what was written.

use super::ReportArgs;
use super::exit;
use super::progress::CliProgress;
use crate::ado::AdoCredential;
use crate::cli::web::{Live, LiveObserver};
use crate::domain::OrgName;
use crate::pipeline::{self, Compare, LocalFiles, Observer, Produced, Sink};
use crate::report::Format;
use crate::secret::Secret;
use crate::settings::names;
use crate::simulator::{AuthConfig, OrgSpec, SimConfig, SimOrg, SimServer};
use crate::stop::{Stop, StopReason};
use anyhow::Context;
use std::sync::Arc;
use time::OffsetDateTime;

/// Run the command; returns the process exit code.
pub async fn run(args: &ReportArgs) -> anyhow::Result<u8> {
    let sink = LocalFiles::new(&args.out);
    // The demo server lives until the scan is done.
    let (plan, credential, _demo) = if args.demo {
        let (server, credential) = start_demo(args).await?;
        let url = url::Url::parse(&server.base_url()).context("demo server address")?;
        let org = OrgName::parse("demo").context("the demo organization's name")?;
        let mut settings = args.scan_settings(url.clone());
        // The simulator serves the Audit Log too.
        settings.audit_url = url;
        let plan = settings.plan(org, args.format.clone());
        (plan, credential, Some(server))
    } else {
        let org = cli_org(args.org.as_deref().unwrap_or_default())?;
        let credential = crate::credentials::resolve(args.auth, args.pat_file.as_deref())?;
        let plan = args
            .scan_settings(args.ado_url.clone())
            .plan(org, args.format.clone());
        (plan, credential, None)
    };

    let mut plan = plan;
    plan.compare = match (&args.compare, args.no_compare) {
        (_, true) => Compare::Off,
        (Some(file), false) => Compare::File(file.clone()),
        (None, false) => Compare::Previous,
    };
    let stop = Stop::default();
    plan.scan.stop = stop.clone();
    // The live page ends on the finished report, which it needs as HTML.
    if args.web && !plan.formats.contains(&Format::Html) {
        plan.formats.push(Format::Html);
        plan.formats.sort_unstable();
    }
    let live = args
        .web
        .then(|| Live::new(plan.report.expiring_days, plan.report.include_invalid));
    let server = match &live {
        Some(live) => Some(serve_live(live.clone(), plan.org().as_str(), args.web_port).await?),
        None => None,
    };
    let sink = Arc::new(sink);
    // Listening before the first request, so an early Ctrl-C is ours to handle too.
    let interrupts = tokio::spawn(on_interrupts(
        Interrupts::listen(),
        stop.clone(),
        sink.clone(),
    ));
    let progress = CliProgress::new(args.quiet);
    let watching = live.as_ref().map(|live| LiveObserver {
        live: live.clone(),
        inner: &progress,
    });
    let observer: &dyn Observer = match &watching {
        Some(watching) => watching,
        None => &progress,
    };
    let produced = tokio::select! {
        produced = pipeline::run(&plan, credential, observer, sink.as_ref()) => produced,
        never = progress.ticker() => match never {},
    };
    interrupts.abort();
    progress.finish();
    let produced = produced?;
    println!("{}", closing_summary(&produced));
    if !args.notify.is_empty() {
        notify(&args.notify, &produced).await;
    }
    let code = if produced.run.complete {
        exit::OK
    } else {
        exit::INCOMPLETE
    };
    if let (Some(live), Some(url)) = (&live, &server) {
        let page = produced.outputs.iter().find(|o| o.format == Format::Html);
        if let Some(page) = page {
            live.finished(page.location.clone().into());
        }
        // Interrupted: the person wanted to stop, not to keep a server running.
        if stop.reason().is_none() {
            eprintln!("The report is at {url} until Ctrl-C.");
            Interrupts::listen().next().await;
        }
    }
    Ok(code)
}

/// Tell the webhooks; what became of each is said on stderr, and never changes the exit code.
async fn notify(hooks: &[crate::notify::Webhook], produced: &Produced) {
    use crate::notify::{RetryPolicy, deliver, http_client};
    let outcomes = deliver(
        &http_client(),
        hooks,
        &produced.notice,
        &RetryPolicy::default(),
    )
    .await;
    for o in outcomes {
        match (o.delivered, &o.error) {
            (true, _) => eprintln!("notified the {} ({} attempts)", o.target, o.attempts),
            (false, error) => eprintln!(
                "warning: could not notify the {} after {} attempts: {}",
                o.target,
                o.attempts,
                error.as_deref().unwrap_or("no reason recorded")
            ),
        }
    }
}

/// Serve the live page on 127.0.0.1:`port`; returns its address.
async fn serve_live(live: Arc<Live>, org: &str, port: u16) -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, port))
        .await
        .with_context(|| {
            format!("could not listen on 127.0.0.1:{port} for --web (try --web-port)")
        })?;
    let address = listener.local_addr().context("the live page's address")?;
    let url = format!("http://{address}/");
    let app = crate::cli::web::router(live, org);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    eprintln!("live report: {url}");
    Ok(url)
}

/// Ctrl-C or SIGTERM: the first stops the scan as a time budget does (listings in flight get a
/// short grace; the report is written, marked interrupted); a second ends the process at once,
/// taking back what the run had started to write.
async fn on_interrupts(mut interrupts: Interrupts, stop: Stop, sink: Arc<LocalFiles>) {
    interrupts.next().await;
    stop.request(StopReason::Interrupted);
    eprintln!(
        "\ninterrupted: no new listings start; those in flight get up to {} s, then the partial \
         report is written (marked interrupted). Press Ctrl-C again to quit at once without a report.",
        crate::stop::GRACE.as_secs()
    );
    interrupts.next().await;
    let written = sink.delivered();
    if !written {
        sink.abandon();
    }
    eprintln!(
        "error: interrupted twice: stopped at once; {}",
        if written {
            "the report had already been written"
        } else {
            "nothing was written"
        }
    );
    std::process::exit(i32::from(exit::INTERRUPTED));
}

/// Ctrl-C (SIGINT) and SIGTERM, listened to from the moment this is made.
struct Interrupts {
    #[cfg(unix)]
    signals: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl Interrupts {
    fn listen() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Self {
                signals: signal(SignalKind::interrupt())
                    .ok()
                    .zip(signal(SignalKind::terminate()).ok()),
            }
        }
        #[cfg(not(unix))]
        {
            Self {}
        }
    }

    async fn next(&mut self) {
        #[cfg(unix)]
        match &mut self.signals {
            Some((int, term)) => {
                tokio::select! {
                    _ = int.recv() => {},
                    _ = term.recv() => {},
                }
            }
            None => std::future::pending::<()>().await,
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// The one organization a command line reports on. `PATREPORT_ORGS` is shared with the
/// service, where it may list several.
fn cli_org(text: &str) -> anyhow::Result<OrgName> {
    let orgs: Vec<&str> = text
        .split(',')
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .collect();
    match orgs.as_slice() {
        [one] => Ok(OrgName::parse(one)?),
        [] => anyhow::bail!("--org is required (or --demo)"),
        many => anyhow::bail!(
            "{} organizations were given ({}, perhaps from {}); the command line reports on one at a time: pass --org",
            many.len(),
            many.join(", "),
            names::ORGS
        ),
    }
}

/// Start the simulated organization in this process; the client reaches it over loopback HTTP.
async fn start_demo(args: &ReportArgs) -> anyhow::Result<(SimServer, AdoCredential)> {
    let spec = OrgSpec {
        users: args.demo_users,
        seed: args.demo_seed,
        ..OrgSpec::demo()
    };
    // The organization as of the start of the day (UTC), then one small change per minute
    // since: reports minutes apart differ by a few tokens, as a real organization's do.
    let now = OffsetDateTime::now_utc();
    let midnight = now.replace_time(time::Time::MIDNIGHT);
    let mut org = SimOrg::generate("demo", &spec, midnight);
    // An audit log to match: the generated tokens' last 90 days, then each minute's changes.
    org.record_history(midnight, time::Duration::days(90));
    let minutes = (now - midnight).whole_minutes().max(0) as u64;
    org.evolve(args.demo_seed, 0..minutes, midnight);
    // A throwaway PAT known only to this process and the simulator.
    let pat = format!("demo-{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
    let mut config = if args.demo_no_faults {
        SimConfig::strict()
    } else {
        SimConfig::demo()
    };
    config.auth = AuthConfig::accepting(&[&pat], &[]);
    config.faults.latency = args.demo_latency;
    let server = SimServer::start(org, config)
        .await
        .context("starting the demo organization")?;
    eprintln!(
        "demo: simulated Azure DevOps organization 'demo' with {} people at {}",
        args.demo_users,
        server.base_url()
    );
    Ok((server, AdoCredential::Pat(Secret::new(pat))))
}

/// The paragraph printed at the end of a run.
pub fn closing_summary(produced: &Produced) -> String {
    let s = &produced.summary;
    let r = &produced.run;
    let mut text = format!(
        "Read the tokens of {} of the {} users listed in '{}' in {:.1}s: {} PATs held by {} users ({} active, {} expiring within {} days, {} expired); \
         {} full access, {} global ({}). \
         {} API calls, {} retries, throttled {} times.",
        s.users_read,
        s.users_listed,
        r.org,
        r.duration_seconds,
        s.pats,
        s.users_with_pats,
        s.by_status.active,
        s.by_status.expiring,
        r.expiring_days,
        s.by_status.expired,
        s.full_access,
        s.global,
        if crate::findings::global_retired(r.generated) {
            "global PATs stopped working on 1 December 2026"
        } else {
            "global PATs stop working on 1 December 2026"
        },
        r.api_calls,
        r.retries,
        r.throttled,
    );
    if let (Some(limit), Some(lowest)) = (r.tstu_limit, r.lowest_remaining) {
        text.push_str(&format!(
            " Rate limit: {:.1} TSTU consumed (about {} per call), at least {lowest:.1} of {limit:.0} TSTU left at the closest{}.",
            r.tstu_consumed,
            r.tstu_per_call
                .map_or("unknown".to_owned(), |c| format!("{c:.4}")),
            if r.rate_limit_delay_seconds > 0.0 {
                format!(", answers delayed {:.1}s", r.rate_limit_delay_seconds)
            } else {
                String::new()
            }
        ));
    }
    let revoked_unlisted = s.pats
        < s.by_status.active + s.by_status.expiring + s.by_status.expired + s.by_status.invalid;
    if revoked_unlisted {
        text.push_str(&format!(
            " {} revoked PATs are counted but not listed (--include-invalid lists them).",
            s.by_status.invalid
        ));
    }
    if !r.complete {
        text.push_str(&format!(
            "\nINCOMPLETE: {} users could not be read{}; see the Errors sheet.",
            s.users_failed,
            match (r.stopped_early, r.stop_reason.as_deref()) {
                (true, Some(why)) => format!(" and the scan stopped early ({why})"),
                (true, None) => " and the scan stopped early".to_owned(),
                (false, _) => String::new(),
            }
        ));
    }
    if let Some(refresh) = r
        .refresh
        .as_ref()
        .filter(|f| f.is_incremental() || f.reason.is_some())
    {
        text.push_str(&format!("\nRefresh: {}.", refresh.describe()));
    }
    let f = &s.findings;
    text.push_str(&format!(
        "\nTo act on: {} tokens with findings ({} critical, {} high, {} medium, {} low){}.",
        f.tokens,
        f.critical,
        f.high,
        f.medium,
        f.low,
        match produced.outputs.iter().any(|o| o.format == Format::Xlsx) {
            true => "; the workbook's Findings sheet ranks them",
            false => "",
        }
    ));
    if let Some(changes) = &produced.changes {
        match (&changes.previous, &changes.note) {
            (Some(previous), note) => {
                let c = &changes.counts;
                text.push_str(&format!(
                    "\nSince {}: {} new, {} gone, {} changed PATs; {} new holders, {} holders gone.",
                    previous.source,
                    c.new_pats,
                    c.gone_pats,
                    c.changed_pats,
                    c.new_holders,
                    c.holders_gone
                ));
                if let Some(note) = note {
                    text.push_str(&format!(" {note}"));
                }
            }
            (None, Some(note)) => text.push_str(&format!("\n{note}")),
            (None, None) => {}
        }
    }
    for output in &produced.outputs {
        text.push_str(&format!("\n  wrote {}", output.location));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_takes_one_organization() {
        assert_eq!(cli_org(" fabrikam ").unwrap().as_str(), "fabrikam");
        let e = cli_org("fabrikam,contoso").unwrap_err().to_string();
        assert!(e.contains("2 organizations") && e.contains("--org"), "{e}");
        assert!(
            cli_org("fab/rikam")
                .unwrap_err()
                .to_string()
                .contains("not an organization name")
        );
    }
}
