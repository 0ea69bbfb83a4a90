//! `patreport revoke`: choose tokens from a report (or take a plan file), check them against
//! fresh listings, and revoke them only with `--yes` (and, at a terminal, the count typed
//! back). Every run, dry or not, appends a line to the audit file next to the reports.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use anyhow::Context;
use time::OffsetDateTime;

use super::exit;
use crate::ado::{AdoClient, AdoSettings, DEFAULT_ADO_URL};
use crate::credentials::AuthMode;
use crate::domain::OrgName;
use crate::domain::timestamp::{date_only, stamp};
use crate::findings::{Rule, Severity};
use crate::report::{TokenStatus, read_json};
use crate::revoke::{
    self, AuditRecord, BATCH_LIMIT, Mode, RevokePlan, RevokeResult, Selection, audit_file,
};
use crate::settings::{names, parse};

#[derive(Debug, Clone, clap::Args)]
#[command(
    after_help = "Without --yes nothing is revoked: the tokens are checked against a fresh \
    listing of their owners, what would be revoked is shown, and the plan is written to a file \
    (--plan-out) that a later run can take with --plan. With --yes, at a terminal, the number of \
    tokens must be typed back. Tokens no longer listed, or listed as revoked already, are never \
    sent: a rerun of the same plan finishes what a failed run left.\n\n\
    Every run appends a line to patreport-ORG-revocations.jsonl in --out: who ran it, when, the \
    source report, and each token's outcome.\n\n\
    Exit codes: 0 done (or dry run); 1 fatal error, nothing sent; 2 wrong arguments; 3 some tokens \
    could not be checked or revoked (listed, and in the audit file).\n\n\
    Credentials as for `patreport report`: the PAT needs Token administration (read & manage)."
)]
pub struct RevokeArgs {
    /// The JSON report to choose tokens from.
    #[arg(long, value_name = "REPORT.json", required_unless_present = "plan")]
    pub from: Option<PathBuf>,

    /// A plan file written by an earlier run (instead of --from and filters).
    #[arg(long, value_name = "PLAN.json", conflicts_with = "from")]
    pub plan: Option<PathBuf>,

    /// Tokens with this authorization id (repeatable).
    #[arg(long = "id", value_name = "ID")]
    pub ids: Vec<String>,

    /// Tokens of this owner: principal or display name, any case (repeatable).
    #[arg(long = "owner", value_name = "NAME")]
    pub owners: Vec<String>,

    /// Tokens with this status: active, expiring, expired (repeatable).
    #[arg(long = "status", value_name = "STATUS", value_parser = parse_status)]
    pub statuses: Vec<TokenStatus>,

    /// Only full-access tokens.
    #[arg(long)]
    pub full_access: bool,

    /// Only global tokens.
    #[arg(long)]
    pub global: bool,

    /// Tokens with this finding, by its code, e.g. full_access (repeatable; any of them).
    #[arg(long = "finding", value_name = "CODE", value_parser = parse_rule)]
    pub findings: Vec<Rule>,

    /// Tokens whose most severe finding is at least this: critical, high, medium, low.
    #[arg(long, value_name = "LEVEL", value_parser = parse_severity)]
    pub severity: Option<Severity>,

    /// Valid tokens ending within this many days of the report.
    #[arg(long, value_name = "DAYS")]
    pub expiring_within: Option<u32>,

    /// Every valid token of the report (no filter).
    #[arg(long)]
    pub all: bool,

    /// Revoke. Without it, a dry run: nothing is sent.
    #[arg(long)]
    pub yes: bool,

    /// Where to write the plan (default: in --out).
    #[arg(long, value_name = "FILE")]
    pub plan_out: Option<PathBuf>,

    /// Folder of the plan and the audit file.
    #[arg(long, env = names::OUT, default_value = "reports")]
    pub out: PathBuf,

    /// Azure DevOps base URL (https; plain http only to loopback).
    #[arg(long, env = names::ADO_URL, default_value = DEFAULT_ADO_URL, value_parser = parse::ado_url)]
    pub ado_url: url::Url,

    /// How to authenticate (as for `report`).
    #[arg(long, env = names::AUTH, default_value = "pat", value_parser = super::auth_mode_parser())]
    pub auth: AuthMode,

    /// File holding the PAT (instead of the AZURE_DEVOPS_PAT variable).
    #[arg(long, env = names::PAT_FILE)]
    pub pat_file: Option<PathBuf>,
}

fn parse_status(text: &str) -> Result<TokenStatus, String> {
    match text.to_ascii_lowercase().as_str() {
        "active" => Ok(TokenStatus::Active),
        "expiring" => Ok(TokenStatus::Expiring),
        "expired" => Ok(TokenStatus::Expired),
        "invalid" => Err("invalid tokens are revoked already".into()),
        _ => Err(format!(
            "'{text}' is not a status: active, expiring or expired"
        )),
    }
}

fn parse_rule(text: &str) -> Result<Rule, String> {
    Rule::from_code(text).ok_or_else(|| {
        let codes: Vec<&str> = Rule::ALL.iter().map(|r| r.code()).collect();
        format!("'{text}' is not a finding; one of: {}", codes.join(", "))
    })
}

fn parse_severity(text: &str) -> Result<Severity, String> {
    Severity::DESCENDING
        .into_iter()
        .find(|s| s.as_str().eq_ignore_ascii_case(text))
        .ok_or_else(|| format!("'{text}' is not a severity: critical, high, medium or low"))
}

impl RevokeArgs {
    fn selection(&self) -> Selection {
        Selection {
            ids: self.ids.clone(),
            owners: self.owners.clone(),
            statuses: self.statuses.clone(),
            full_access: self.full_access,
            global: self.global,
            findings: self.findings.clone(),
            min_severity: self.severity,
            expiring_within_days: self.expiring_within,
        }
    }
}

/// A usage problem: the process exits with code 2, as for clap's own.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Usage(String);

pub async fn run(args: &RevokeArgs) -> anyhow::Result<u8> {
    let now = OffsetDateTime::now_utc();
    let (plan, plan_file) = load_plan(args, now)?;
    let org = OrgName::parse(&plan.org).context("the plan's organization")?;
    // The audit file must be writable before anything is checked or sent.
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create the folder {}", args.out.display()))?;
    let audit = audit_file(&args.out, org.as_str());
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&audit)
        .with_context(|| format!("cannot write the audit file {}", audit.display()))?;

    println!(
        "{} tokens of '{}' selected ({}) from {}:",
        plan.tokens.len(),
        plan.org,
        plan.selection,
        plan.source_report
    );
    for t in &plan.tokens {
        println!("  {}", describe(t));
    }
    if plan.tokens.is_empty() {
        println!("Nothing to revoke.");
        return Ok(exit::OK);
    }

    let credential = crate::credentials::resolve(args.auth, args.pat_file.as_deref())?;
    let client = AdoClient::new(AdoSettings::new(args.ado_url.clone(), org), credential)?;
    let actor = revoke::audit::actor(args.auth.name());
    let plan_file = match &plan_file {
        Some(file) => file.clone(),
        None => {
            let file = args.plan_out.clone().unwrap_or_else(|| {
                args.out.join(format!(
                    "patreport-{}-revoke-plan-{}.json",
                    plan.org,
                    stamp(now)
                ))
            });
            let text = serde_json::to_vec_pretty(&plan)?;
            std::fs::write(&file, text)
                .with_context(|| format!("cannot write the plan {}", file.display()))?;
            file
        }
    };
    let plan_name = plan_file.display().to_string();

    let checked = revoke::execute(&client, &plan, Mode::DryRun, BATCH_LIMIT, None).await;
    // Every run leaves a line, even one that ends before sending anything.
    let record = |result: &RevokeResult, mode: Mode| -> anyhow::Result<()> {
        AuditRecord::outcome(
            &plan,
            result,
            mode,
            &actor,
            Some(&plan_name),
            OffsetDateTime::now_utc(),
        )
        .append(&audit)
        .with_context(|| format!("cannot write the audit file {}", audit.display()))
    };
    let code = |result: &RevokeResult| {
        if result.failed() > 0 {
            exit::INCOMPLETE
        } else {
            exit::OK
        }
    };
    if !args.yes {
        record(&checked, Mode::DryRun)?;
        report_outcomes(&checked);
        let would = checked.counts().get("would_revoke").copied().unwrap_or(0);
        println!(
            "Dry run: nothing was revoked. {would} tokens would be. The plan is {plan_name}; \
             to revoke them: patreport revoke --plan {plan_name} --yes"
        );
        return Ok(code(&checked));
    }

    let sending = checked.counts().get("would_revoke").copied().unwrap_or(0);
    if sending == 0 {
        // A --yes run with nothing left to send: recorded as a revocation that sent nothing.
        record(&checked, Mode::Revoke)?;
        report_outcomes(&checked);
        println!("Nothing left to revoke: every token is revoked already or no longer listed.");
        return Ok(code(&checked));
    }
    if std::io::stdin().is_terminal() && !confirmed(sending, &plan.org)? {
        record(&checked, Mode::DryRun)?;
        println!("Not confirmed: nothing was revoked.");
        return Ok(exit::OK);
    }
    AuditRecord::intent(&plan, &actor, Some(&plan_name), OffsetDateTime::now_utc())
        .append(&audit)
        .with_context(|| format!("cannot write the audit file {}", audit.display()))?;
    // Only what the check found valid, and the person confirmed, may be sent.
    let confirmed = checked.would_revoke();
    let result = revoke::execute(&client, &plan, Mode::Revoke, BATCH_LIMIT, Some(&confirmed)).await;
    let written = record(&result, Mode::Revoke);
    report_outcomes(&result);
    if let Err(e) = &written {
        eprintln!("error: the outcome was not recorded: {e:#}");
    }
    let revoked = result.counts().get("revoked").copied().unwrap_or(0);
    println!(
        "Revoked {revoked} tokens in {} requests; the audit file is {}.",
        result.batches,
        audit.display()
    );
    // An outcome missing from the audit file is a failure too: the file must say what happened.
    Ok(match written {
        Ok(()) => code(&result),
        Err(_) => exit::INCOMPLETE,
    })
}

fn load_plan(
    args: &RevokeArgs,
    now: OffsetDateTime,
) -> anyhow::Result<(RevokePlan, Option<PathBuf>)> {
    let selection = args.selection();
    if let Some(file) = &args.plan {
        if !selection.is_empty() || args.all {
            return Err(Usage(
                "--plan takes the plan's tokens: filters cannot be added to it".into(),
            )
            .into());
        }
        let text = std::fs::read(file)
            .with_context(|| format!("cannot read the plan {}", file.display()))?;
        let plan: RevokePlan = serde_json::from_slice(&text)
            .with_context(|| format!("{} is not a revoke plan", file.display()))?;
        if plan.kind != revoke::plan::PLAN_KIND {
            anyhow::bail!(
                "{} is not a revoke plan (kind {:?})",
                file.display(),
                plan.kind
            );
        }
        return Ok((plan, Some(file.clone())));
    }
    let Some(from) = &args.from else {
        return Err(Usage("--from REPORT.json or --plan PLAN.json is required".into()).into());
    };
    selection
        .check(args.all)
        .map_err(|e| Usage(e.to_string()))?;
    let file = std::fs::File::open(from)
        .with_context(|| format!("cannot read the report {}", from.display()))?;
    let report = read_json(std::io::BufReader::new(file))
        .with_context(|| format!("{} is not a patreport JSON report", from.display()))?;
    let source = from.display().to_string();
    Ok((revoke::plan(&report, &source, &selection, now), None))
}

/// One planned token, as the list shows it.
fn describe(t: &revoke::PlannedToken) -> String {
    let findings = t.findings.labels();
    format!(
        "{} ({}): {:?}, valid to {}{}{}",
        crate::report::text::csv_safe(&t.owner_display_name),
        t.owner_principal_name,
        t.pat_name.as_deref().unwrap_or("(no name)"),
        t.valid_to.map(date_only).unwrap_or_else(|| "(none)".into()),
        if findings.is_empty() { "" } else { "; " },
        findings
    )
}

fn report_outcomes(result: &RevokeResult) {
    for (t, outcome) in &result.tokens {
        if outcome.is_failure()
            || matches!(
                outcome,
                revoke::Outcome::AlreadyRevoked | revoke::Outcome::NotListed
            )
        {
            let detail = match outcome {
                revoke::Outcome::NotChecked(d)
                | revoke::Outcome::Failed(d)
                | revoke::Outcome::NotSent(d) => {
                    format!(": {d}")
                }
                _ => String::new(),
            };
            println!("  {} {}{detail}", outcome.name(), t.authorization_id);
        }
    }
    let counts: Vec<String> = result
        .counts()
        .into_iter()
        .map(|(name, n)| format!("{n} {name}"))
        .collect();
    println!("Outcome: {}.", counts.join(", "));
}

/// At a terminal: the person types the number of tokens back.
fn confirmed(count: usize, org: &str) -> anyhow::Result<bool> {
    print!("Revoking cannot be undone. To revoke {count} tokens of '{org}', type {count}: ");
    std::io::stdout().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(answer.trim() == count.to_string())
}
