//! `patreport report`: scan, build the report, write the files, say where they are.

use super::progress::CliProgress;
use super::{Format, ReportArgs, exit};
use crate::ado::{AdoClient, AdoCredential, AdoSettings};
use crate::engine::{self, ScanOptions};
use crate::report::{self, Report, ReportOptions, XlsxPlan};
use crate::secret::Secret;
use crate::simulator::{AuthConfig, OrgSpec, SimConfig, SimOrg, SimServer};
use anyhow::Context;
use std::path::{Path, PathBuf};
use time::OffsetDateTime;

/// Run the command; returns the process exit code.
pub async fn run(args: &ReportArgs) -> anyhow::Result<u8> {
    // The demo server lives until the scan is done.
    let (settings, credential, _demo) = if args.demo {
        let (server, credential) = start_demo(args).await?;
        let url = url::Url::parse(&server.base_url()).context("demo server address")?;
        (settings_from(args, url, "demo"), credential, Some(server))
    } else {
        let org = args.org.clone().context("--org is required (or --demo)")?;
        let credential = crate::auth::resolve(args.auth, args.pat_file.as_deref())?;
        (
            settings_from(args, args.ado_url.clone(), &org),
            credential,
            None,
        )
    };

    let client = AdoClient::new(settings, credential)?;
    let progress = CliProgress::new(client.clone(), args.quiet);
    let options = ScanOptions {
        concurrency: args.concurrency,
        time_budget: args.time_budget,
    };
    let scanned = engine::scan(&client, &options, &progress).await;
    progress.finish();
    let inventory = scanned?;

    let options = ReportOptions {
        expiring_days: args.expiring_days,
        include_invalid: args.include_invalid,
    };
    // Lay the workbook out while memory is at its lowest (see `XlsxPlan`).
    let plan = match args.format.contains(&Format::Xlsx) {
        true => Some(XlsxPlan::new(report::row_count(&inventory, options))?),
        false => None,
    };
    let report = report::build(
        inventory,
        OffsetDateTime::now_utc(),
        options,
        env!("CARGO_PKG_VERSION"),
    );
    let formats = args.format.clone();
    let out = args.out.clone();
    let files = tokio::task::spawn_blocking(move || {
        write_outputs(&report, &out, &formats, plan).map(|f| (f, report))
    })
    .await
    .context("the report writer stopped unexpectedly")??;
    let (files, report) = files;
    println!("{}", closing_summary(&report, &files));
    Ok(if report.run.complete {
        exit::OK
    } else {
        exit::INCOMPLETE
    })
}

fn settings_from(args: &ReportArgs, base_url: url::Url, org: &str) -> AdoSettings {
    AdoSettings {
        subject_types: args.subject_types.clone(),
        pat_page_size: args.pat_page_size,
        request_timeout: args.request_timeout,
        max_retries: args.max_retries,
        ..AdoSettings::new(base_url, org)
    }
}

/// Start the simulated organization in this process; the client reaches it over loopback HTTP.
async fn start_demo(args: &ReportArgs) -> anyhow::Result<(SimServer, AdoCredential)> {
    let spec = OrgSpec {
        users: args.demo_users,
        seed: args.demo_seed,
        ..OrgSpec::demo()
    };
    let org = SimOrg::generate("demo", &spec, OffsetDateTime::now_utc());
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

/// Write the report in each format; returns the paths written. `plan` is the workbook laid out
/// ahead of the report, if the caller made one.
pub fn write_outputs(
    report: &Report,
    dir: &Path,
    formats: &[Format],
    mut plan: Option<XlsxPlan>,
) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating the output directory {}", dir.display()))?;
    let stem = file_stem(&report.run.org, report.run.finished);
    let mut written = Vec::new();
    for format in formats {
        let path = dir.join(format!("{stem}.{}", format.extension()));
        match format {
            Format::Xlsx => match plan.take() {
                Some(plan) => plan.save(report, &path)?,
                None => report::write_xlsx(report, &path)?,
            },
            Format::Csv => {
                let file = std::fs::File::create(&path)
                    .with_context(|| format!("creating {}", path.display()))?;
                report::write_csv(report, std::io::BufWriter::new(file))?;
            }
            Format::Json => {
                let file = std::fs::File::create(&path)
                    .with_context(|| format!("creating {}", path.display()))?;
                report::write_json(report, std::io::BufWriter::new(file))?;
            }
        }
        written.push(path);
    }
    Ok(written)
}

/// `patreport-{org}-{yyyymmdd-hhmmss}`, with the organization name made safe for file names.
pub fn file_stem(org: &str, at: OffsetDateTime) -> String {
    let org: String = org
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "patreport-{org}-{:04}{:02}{:02}-{:02}{:02}{:02}",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

/// The paragraph printed at the end of a run.
pub fn closing_summary(report: &Report, files: &[PathBuf]) -> String {
    let s = &report.summary;
    let r = &report.run;
    let mut text = format!(
        "Scanned {} users of '{}' in {:.1}s: {} PATs held by {} users ({} active, {} expiring within {} days, {} expired); \
         {} full access, {} global (global PATs stop working on 1 December 2026). \
         {} API calls, {} retries, throttled {} times.",
        s.users_scanned,
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
        r.api_calls,
        r.retries,
        r.throttled,
    );
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
            r.stopped_early
                .as_deref()
                .map(|w| format!(" and the scan stopped early ({w})"))
                .unwrap_or_default()
        ));
    }
    for f in files {
        text.push_str(&format!("\n  wrote {}", f.display()));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn file_stem_is_safe_and_sortable() {
        assert_eq!(
            file_stem("fab/ri kam", datetime!(2026-11-24 09:05:03 +02:00)),
            "patreport-fab_ri_kam-20261124-070503"
        );
    }
}
