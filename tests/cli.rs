//! The `patreport` binary as a user runs it: files, exit codes, one-line errors, and no secret
//! or active content in anything it writes.

use calamine::{Data, Reader, Xlsx, open_workbook};
use patreport::simulator::{AuthConfig, OrgSpec, SECRET_MARKER, SimConfig, SimOrg, SimServer};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use time::OffsetDateTime;

const PAT: &str = "cli-test-pat-0123456789";

fn patreport(args: &[&str], pat: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_patreport"));
    cmd.args(args)
        .env_remove("AZURE_DEVOPS_PAT")
        .env_remove("AZURE_DEVOPS_PAT_FILE")
        .env_remove("PATREPORT_ORG");
    if let Some(pat) = pat {
        cmd.env("AZURE_DEVOPS_PAT", pat);
    }
    cmd.output().expect("run patreport")
}

fn files_with(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == ext))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn all_cells(path: &Path) -> Vec<(String, Vec<Vec<Data>>)> {
    let mut book: Xlsx<_> = open_workbook(path).expect("xlsx opens");
    let names = book.sheet_names().to_vec();
    names
        .into_iter()
        .map(|name| {
            let range = book.worksheet_range(&name).expect("sheet");
            (name, range.rows().map(<[Data]>::to_vec).collect())
        })
        .collect()
}

async fn sim(org: SimOrg, mut config: SimConfig) -> SimServer {
    config.auth = AuthConfig::accepting(&[PAT], &[]);
    SimServer::start(org, config).await.unwrap()
}

fn scan_args<'a>(server_url: &'a str, out: &'a str) -> Vec<&'a str> {
    vec![
        "report",
        "--org",
        "fabrikam",
        "--ado-url",
        server_url,
        "--out",
        out,
        "--quiet",
    ]
}

#[test]
fn the_demo_writes_a_workbook_csv_and_json_that_agree() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let o = patreport(
        &["report", "--demo", "--demo-users", "400", "--out", out],
        None,
    );
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(0),
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let xlsx = files_with(dir.path(), "xlsx");
    let csv = files_with(dir.path(), "csv");
    let json = files_with(dir.path(), "json");
    assert_eq!((xlsx.len(), csv.len(), json.len()), (1, 1, 1));
    assert!(
        stdout.contains(&xlsx[0].display().to_string()),
        "the summary names the files: {stdout}"
    );

    let sheets = all_cells(&xlsx[0]);
    let names: Vec<&str> = sheets.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["Tokens", "Summary", "Errors", "Run"]);
    let token_rows = sheets[0].1.len() - 1;
    let csv_rows = csv::Reader::from_path(&csv[0]).unwrap().records().count();
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json[0]).unwrap()).unwrap();
    assert!(token_rows > 400, "{token_rows} rows");
    assert_eq!(csv_rows, token_rows);
    assert_eq!(report["rows"].as_array().unwrap().len(), token_rows);
    assert_eq!(report["run"]["complete"], true);
    // Valid from / Valid to are real dates, not strings.
    let first = &sheets[0].1[1];
    assert!(
        matches!(first[13], Data::DateTime(_)),
        "Valid to is a date cell: {:?}",
        first[13]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_the_outputs_and_hostile_names_stay_inert() {
    let org = SimOrg::generate(
        "fabrikam",
        &OrgSpec::with_users(150),
        OffsetDateTime::now_utc(),
    );
    assert!(
        org.users
            .iter()
            .flat_map(|u| &u.pats)
            .any(|p| p.token.is_some()),
        "the simulator sends token values"
    );
    let server = sim(org, SimConfig::strict()).await;
    let dir = tempfile::tempdir().unwrap();
    let (url, out) = (server.base_url(), dir.path().to_str().unwrap().to_owned());
    let o = tokio::task::spawn_blocking(move || patreport(&scan_args(&url, &out), Some(PAT)))
        .await
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    for text in [
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    ] {
        assert!(!text.contains(PAT) && !text.contains(SECRET_MARKER));
    }

    let csv_text = std::fs::read_to_string(&files_with(dir.path(), "csv")[0]).unwrap();
    let json_text = std::fs::read_to_string(&files_with(dir.path(), "json")[0]).unwrap();
    for text in [&csv_text, &json_text] {
        assert!(!text.contains(SECRET_MARKER) && !text.contains(PAT));
    }
    assert!(!json_text.contains("<script>"), "JSON escapes markup");
    assert!(json_text.contains("\\u003cscript\\u003e"));
    let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
    let mut hostile = 0;
    for record in reader.records() {
        for cell in record.unwrap().iter() {
            let first = cell.chars().next();
            // Numbers such as "-3" days are fine; text must never start a formula.
            if matches!(first, Some('=' | '+' | '@'))
                || (first == Some('-') && cell.parse::<f64>().is_err())
            {
                panic!("CSV cell would be a formula: {cell:?}");
            }
            hostile += usize::from(cell.starts_with("'=HYPERLINK"));
        }
    }
    assert!(hostile > 0, "the hostile PAT name is in the CSV, quoted");

    let sheets = all_cells(&files_with(dir.path(), "xlsx")[0]);
    let mut saw_hyperlink_text = false;
    for (_, rows) in &sheets {
        for cell in rows.iter().flatten() {
            let text = cell.to_string();
            assert!(!text.contains(SECRET_MARKER) && !text.contains(PAT));
            saw_hyperlink_text |= text.starts_with("=HYPERLINK");
        }
    }
    assert!(
        saw_hyperlink_text,
        "the hostile name is kept as literal text in the workbook"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_users_give_exit_code_3_and_an_errors_sheet() {
    let org = SimOrg::generate(
        "fabrikam",
        &OrgSpec::with_users(60),
        OffsetDateTime::now_utc(),
    );
    let broken = org.human_users().nth(3).unwrap().clone();
    let mut config = SimConfig::strict();
    config.faults.failing_descriptors = [broken.descriptor.clone()].into();
    let server = sim(org, config).await;
    let dir = tempfile::tempdir().unwrap();
    let (url, out) = (server.base_url(), dir.path().to_str().unwrap().to_owned());
    let o = tokio::task::spawn_blocking(move || {
        let mut args = scan_args(&url, &out);
        args.extend(["--max-retries", "1"]);
        patreport(&args, Some(PAT))
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(3), "{stdout}");
    assert!(
        stdout.contains("INCOMPLETE") && stdout.contains("1 users could not be read"),
        "{stdout}"
    );
    let sheets = all_cells(&files_with(dir.path(), "xlsx")[0]);
    let errors = &sheets.iter().find(|(n, _)| n == "Errors").unwrap().1;
    assert_eq!(errors.len(), 2, "header + one user: {errors:?}");
    assert!(errors[1].iter().any(|c| c.to_string() == broken.descriptor));
    assert!(
        errors[1]
            .iter()
            .any(|c| matches!(c, Data::Float(f) if *f == 500.0)
                || matches!(c, Data::Int(500))
                || *c == Data::String("500".into()))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_pat_is_one_line_exit_1_and_no_files() {
    let server = sim(
        SimOrg::generate(
            "fabrikam",
            &OrgSpec::with_users(5),
            OffsetDateTime::now_utc(),
        ),
        SimConfig::strict(),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let (url, out) = (
        server.base_url(),
        dir.path().join("out").to_str().unwrap().to_owned(),
    );
    let o =
        tokio::task::spawn_blocking(move || patreport(&scan_args(&url, &out), Some("wrong-pat")))
            .await
            .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    let first = stderr
        .lines()
        .find(|l| l.starts_with("error:"))
        .expect("an error line");
    assert!(
        first.contains("authentication failed")
            && first.contains("Project Collection Administrator"),
        "{first}"
    );
    assert!(
        !stderr.contains("panicked")
            && !stderr.contains("backtrace")
            && !stderr.contains("wrong-pat")
    );
    assert!(!dir.path().join("out").exists(), "nothing written");
}

#[test]
fn a_missing_pat_names_the_setting() {
    let o = patreport(
        &["report", "--org", "fabrikam", "--out", "/nonexistent/never"],
        None,
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr.contains("AZURE_DEVOPS_PAT") && stderr.contains("--pat-file"),
        "{stderr}"
    );
}

#[test]
fn help_explains_the_command_and_exit_codes() {
    let o = patreport(&["report", "--help"], None);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success());
    for needle in [
        "--org",
        "--demo",
        "--format",
        "--expiring-days",
        "--include-invalid",
        "--concurrency",
        "Exit codes",
        "AZURE_DEVOPS_PAT",
    ] {
        assert!(text.contains(needle), "help mentions {needle}");
    }
}
