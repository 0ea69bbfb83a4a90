//! The `patreport` binary as a user runs it: files, exit codes, one-line errors, and no secret
//! or active content in anything it writes.

use calamine::{Data, Reader, Xlsx, open_workbook};

mod support;
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
        .env_remove("PATREPORT_ORGS")
        .env_remove("PATREPORT_TIME_BUDGET");
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

/// The organization most tests scan, generated now.
fn fabrikam(users: usize) -> SimOrg {
    SimOrg::generate(
        "fabrikam",
        &OrgSpec::with_users(users),
        OffsetDateTime::now_utc(),
    )
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
    assert_eq!(
        names,
        [
            "Summary", "Findings", "Tokens", "Owners", "Changes", "Errors", "Run"
        ]
    );
    let tokens = &sheets[2].1;
    let token_rows = tokens.len() - 1;
    let csv_rows = csv::Reader::from_path(&csv[0]).unwrap().records().count();
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json[0]).unwrap()).unwrap();
    assert!(token_rows > 400, "{token_rows} rows");
    assert_eq!(csv_rows, token_rows);
    assert_eq!(report["rows"].as_array().unwrap().len(), token_rows);
    assert_eq!(report["run"]["complete"], true);
    // Valid from / Valid to are real dates, not strings.
    let first = &tokens[1];
    let valid_to = tokens[0]
        .iter()
        .position(|c| *c == "Valid to (UTC)")
        .expect("a Valid to (UTC) column");
    assert!(
        matches!(first[valid_to], Data::DateTime(_)),
        "Valid to is a date cell: {:?}",
        first[valid_to]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_the_outputs_and_hostile_names_stay_inert() {
    let org = fabrikam(150);
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
    let org = fabrikam(60);
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
    // Listed and read are two figures, in every output.
    let listed = 60;
    assert!(
        stdout.contains(&format!(
            "Read the tokens of {} of the {listed} users listed",
            listed - 1
        )),
        "{stdout}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&files_with(dir.path(), "json")[0]).unwrap())
            .unwrap();
    assert_eq!(json["schema_version"], 3);
    assert_eq!(json["summary"]["users_listed"], listed);
    assert_eq!(json["summary"]["users_read"], listed - 1);
    assert_eq!(json["run"]["stopped_early"], false);
    let page = std::fs::read_to_string(&files_with(dir.path(), "html")[0]).unwrap();
    assert!(
        page.contains(r#""users_listed":60"#) && page.contains(r#""users_read":59"#),
        "the page carries both figures"
    );
    let sheets = all_cells(&files_with(dir.path(), "xlsx")[0]);
    let summary = &sheets.iter().find(|(n, _)| n == "Summary").unwrap().1;
    let figure = |label: &str| {
        summary
            .iter()
            .find(|row| row.first() == Some(&Data::String(label.into())))
            .and_then(|row| row.get(1).cloned())
    };
    assert_eq!(figure("Users listed"), Some(Data::Float(listed as f64)));
    assert_eq!(figure("Users read"), Some(Data::Float((listed - 1) as f64)));
    assert_eq!(figure("Users not read"), Some(Data::Float(1.0)));
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
    let server = sim(fabrikam(5), SimConfig::strict()).await;
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

// ---------------------------------------------------------------------------------------------
// Interrupts lose nothing: Ctrl-C writes the partial report, marked; a second one quits at once.

/// `patreport report` started in the background, its stderr read line by line.
struct Running {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Running {
    fn start(args: &[&str]) -> Running {
        let mut child = Command::new(env!("CARGO_BIN_EXE_patreport"))
            .args(args)
            .env_remove("PATREPORT_ORGS")
            .env_remove("PATREPORT_TIME_BUDGET")
            .env("AZURE_DEVOPS_PAT", PAT)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start patreport");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Running {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    fn signal(&self, name: &str) {
        let sent = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success());
    }

    /// Wait (a minute at most: a guard, not a timing) for a stderr line containing `text`.
    fn wait_for_line(&mut self, text: &str) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while std::time::Instant::now() < deadline {
            match self
                .lines
                .recv_timeout(std::time::Duration::from_millis(100))
            {
                Ok(line) => {
                    let found = line.contains(text);
                    self.seen.push(line);
                    if found {
                        return;
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        panic!("no stderr line with {text:?}: {:?}", self.seen);
    }

    fn finish(mut self) -> (std::process::ExitStatus, String, String) {
        let mut stdout = String::new();
        use std::io::Read;
        if let Some(mut out) = self.child.stdout.take() {
            let _ = out.read_to_string(&mut stdout);
        }
        let status = self.child.wait().expect("wait for patreport");
        self.seen.extend(self.lines.try_iter());
        (status, stdout, self.seen.join("\n"))
    }
}

/// The simulated organization `fabrikam` of `users` people, whose Token Admin answers wait at
/// a gate the test holds (closed at first).
async fn gated_sim(users: usize) -> (SimServer, patreport::simulator::Gate) {
    let org = SimOrg::generate(
        "fabrikam",
        &OrgSpec::with_users(users),
        OffsetDateTime::now_utc(),
    );
    let gate = patreport::simulator::Gate::closed();
    let mut config = SimConfig::strict();
    config.gate = Some(gate.clone());
    (sim(org, config).await, gate)
}

/// Wait (a minute at most) until the simulated organization has answered `n` PAT requests.
async fn served(server: &SimServer, n: u64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while server.stats().pat_requests < n {
        assert!(
            std::time::Instant::now() < deadline,
            "the scan never got going"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_writes_the_partial_report_of_what_was_read_marked_interrupted() {
    let (server, gate) = gated_sim(120).await;
    let truth = server.org().clone();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap().to_owned();
    let url = server.base_url();
    let mut args = scan_args(&url, &out);
    args.retain(|a| *a != "--quiet");
    let mut run = Running::start(&args);
    // Some listings answered, then Ctrl-C while others wait at the gate.
    gate.let_through(15);
    served(&server, 15).await;
    run.signal("INT");
    run.wait_for_line("interrupted:");
    // The listings in flight may finish now; no new one starts.
    gate.open();
    let (status, stdout, stderr) = tokio::task::spawn_blocking(move || run.finish())
        .await
        .unwrap();
    assert_eq!(status.code(), Some(3), "{stdout}\n{stderr}");
    assert!(stdout.contains("INCOMPLETE"), "{stdout}");
    let json = &files_with(dir.path(), "json")[0];
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    assert_eq!(report["run"]["complete"], false);
    assert_eq!(report["run"]["stopped_early"], true);
    let reason = report["run"]["stop_reason"].as_str().unwrap_or_default();
    assert!(reason.contains("interrupt"), "{reason}");
    let errors = report["errors"].as_array().unwrap();
    assert!(!errors.is_empty(), "users were left unread");
    assert!(
        errors
            .iter()
            .all(|e| e["message"].as_str().unwrap().contains("interrupted")),
        "{errors:?}"
    );
    // Row by row: every user read has exactly its tokens, and users read + not read = all.
    let unread: std::collections::BTreeSet<&str> = errors
        .iter()
        .map(|e| e["user_descriptor"].as_str().unwrap())
        .collect();
    let mut rows: std::collections::BTreeMap<&str, std::collections::BTreeSet<&str>> =
        Default::default();
    for row in report["rows"].as_array().unwrap() {
        rows.entry(row["owner_descriptor"].as_str().unwrap())
            .or_default()
            .insert(row["authorization_id"].as_str().unwrap());
    }
    let mut read = 0;
    for user in truth.human_users() {
        if unread.contains(user.descriptor.as_str()) {
            assert!(!rows.contains_key(user.descriptor.as_str()));
            continue;
        }
        read += 1;
        let expected: std::collections::BTreeSet<&str> = user
            .pats
            .iter()
            .filter(|p| p.is_valid)
            .map(|p| p.authorization_id.as_str())
            .collect();
        let got = rows
            .get(user.descriptor.as_str())
            .cloned()
            .unwrap_or_default();
        assert_eq!(got, expected, "{}", user.descriptor);
    }
    assert!(read >= 1 && read + unread.len() == truth.human_users().count());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_ctrl_c_quits_at_once_and_writes_nothing() {
    let (server, gate) = gated_sim(20).await;
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    let out = out_dir.to_str().unwrap().to_owned();
    let url = server.base_url();
    let mut args = scan_args(&url, &out);
    args.retain(|a| *a != "--quiet");
    let mut run = Running::start(&args);
    // The scan is under way (its users listed) and every listing waits at the closed gate.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while server.stats().graph_user_requests == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the scan never started"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    run.signal("INT");
    run.wait_for_line("interrupted:");
    run.signal("INT");
    let (status, _stdout, stderr) = tokio::task::spawn_blocking(move || run.finish())
        .await
        .unwrap();
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("nothing was written"), "{stderr}");
    assert!(!out_dir.exists(), "the folder the run created is gone too");
    gate.open();
}

#[test]
fn a_host_that_cannot_be_reached_is_one_line_at_once_not_minutes_of_retries() {
    for (url, says) in [
        ("https://patreport-test.invalid", "does not resolve"),
        ("http://127.0.0.1:0", "refused the connection"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let o = patreport(&scan_args(url, out.to_str().unwrap()), Some(PAT));
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{url}: {stderr}");
        let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
        assert_eq!(errors.len(), 1, "{stderr}");
        assert!(errors[0].contains(says), "{url}: {stderr}");
        assert!(!out.exists(), "nothing written");
    }
}

#[test]
fn an_output_folder_that_cannot_take_files_is_found_before_the_scan() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("afile");
    std::fs::write(&file, "x").unwrap();
    // No server at all: the folder is checked before the first request.
    let url = "http://127.0.0.1:0";
    for (out, says) in [
        (file.clone(), "is a file, not a folder"),
        (file.join("below"), "path is a file"),
        // Writable for nobody, root included.
        (PathBuf::from("/sys"), "cannot write report files"),
        (
            PathBuf::from("/sys/patreport-test"),
            "could not create the output folder",
        ),
    ] {
        let o = patreport(&scan_args(url, out.to_str().unwrap()), Some(PAT));
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{}: {stderr}", out.display());
        assert!(stderr.contains(says), "{}: {stderr}", out.display());
        assert!(
            !stderr.contains("reach"),
            "checked before any request: {stderr}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_scan_still_says_what_it_is_doing() {
    let (server, gate) = gated_sim(20).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap().to_owned();
    let url = server.base_url();
    let mut args = scan_args(&url, &out);
    args.retain(|a| *a != "--quiet");
    let mut run = Running::start(&args);
    // Nothing moves (every listing waits at the gate), yet a line comes, stamped and counted.
    run.wait_for_line("progress [");
    let line = run.seen.last().cloned().unwrap_or_default();
    assert!(line.contains("0/20 users read"), "{line}");
    gate.open();
    let (status, stdout, stderr) = tokio::task::spawn_blocking(move || run.finish())
        .await
        .unwrap();
    assert_eq!(status.code(), Some(0), "{stdout}\n{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_page_shows_rows_while_the_scan_runs_then_the_report() {
    let (server, gate) = gated_sim(30).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap().to_owned();
    let url = server.base_url();
    let mut args = scan_args(&url, &out);
    args.extend(["--web", "--web-port", "0"]);
    let mut run = Running::start(&args);
    run.wait_for_line("live report: http://127.0.0.1:");
    let page_url = run
        .seen
        .last()
        .and_then(|l| l.split_whitespace().last())
        .unwrap()
        .to_owned();
    let http = reqwest::Client::new();
    let live = |from: usize| {
        let (http, page_url) = (http.clone(), page_url.clone());
        async move {
            http.get(format!("{page_url}live.json?from={from}"))
                .send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        }
    };
    // Five listings answered; the others wait at the gate: rows show, the scan is not done.
    gate.let_through(5);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let state = loop {
        let state = live(0).await;
        if !state["rows"].as_array().unwrap().is_empty() {
            break state;
        }
        assert!(std::time::Instant::now() < deadline, "no rows: {state}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(state["done"], false, "rows arrive before the scan ends");
    assert!(state["read"].as_u64().unwrap() >= 1 && state["read"].as_u64().unwrap() <= 5);
    assert!(
        !state.to_string().contains(PAT),
        "no credential reaches the page"
    );
    let page = http.get(&page_url).send().await.unwrap();
    let policy = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(policy.starts_with("default-src 'none'") && policy.contains("connect-src 'self'"));
    assert!(
        page.text().await.unwrap().contains("id=\"rows\""),
        "the live table"
    );
    // The scan finishes; the page becomes the report.
    gate.open();
    loop {
        if live(0).await["done"] == true {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the scan never finished"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let report = http
        .get(&page_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(report.contains("report-data"), "the finished report's page");
    run.wait_for_line("until Ctrl-C");
    run.signal("INT");
    let (status, _stdout, stderr) = tokio::task::spawn_blocking(move || run.finish())
        .await
        .unwrap();
    assert_eq!(status.code(), Some(0), "{stderr}");
}

/// The JSON report a run says it wrote (two runs in one second get `-2` names, which sort
/// before the first's, so the folder's order is not the runs' order).
fn written(output: &Output, ext: &str) -> PathBuf {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("wrote ") && l.ends_with(&format!(".{ext}")))
        .unwrap_or_else(|| panic!("no .{ext} written: {stdout}"));
    PathBuf::from(line.trim_start().trim_start_matches("wrote "))
}

fn json_report(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(written(output, "json")).unwrap()).unwrap()
}

/// Runs `patreport report` against `server` into `out` with `extra` arguments.
async fn report_into(server: &SimServer, out: &Path, extra: &[&str]) -> Output {
    let (url, out) = (server.base_url(), out.to_str().unwrap().to_owned());
    let extra: Vec<String> = extra.iter().map(|s| (*s).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let mut args = scan_args(&url, &out);
        args.extend(extra.iter().map(String::as_str));
        patreport(&args, Some(PAT))
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_lists_what_changed_since_the_first() {
    let now = OffsetDateTime::now_utc();
    let org = SimOrg::generate("fabrikam", &OrgSpec::with_users(80), now);
    let dir = tempfile::tempdir().unwrap();

    let server = sim(org.clone(), SimConfig::strict()).await;
    let first = report_into(&server, dir.path(), &[]).await;
    assert_eq!(
        first.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    server.shutdown().await;
    let report = json_report(&first);
    assert_eq!(report["changes"]["previous"], serde_json::Value::Null);
    assert!(
        report["changes"]["note"]
            .as_str()
            .unwrap()
            .contains("first"),
        "{}",
        report["changes"]
    );
    assert!(String::from_utf8_lossy(&first.stdout).contains("No earlier report"));

    // Between the runs: one valid PAT revoked (it drops out of the listing), one renamed, one
    // created.
    let mut later = org.clone();
    let holder = later
        .users
        .iter()
        .position(|u| {
            u.kind.is_human()
                && u.pats
                    .iter()
                    .filter(|p| p.is_valid && p.valid_to > now)
                    .count()
                    >= 2
        })
        .expect("a user with two valid PATs");
    let user = &mut later.users[holder];
    let valid: Vec<usize> = (0..user.pats.len())
        .filter(|&i| user.pats[i].is_valid && user.pats[i].valid_to > now)
        .collect();
    let gone = user.pats.remove(valid[1]).authorization_id;
    let renamed = &mut user.pats[valid[0]];
    renamed.display_name = Some("renamed between runs".into());
    let renamed_id = renamed.authorization_id.clone();
    let mut fresh = renamed.clone();
    fresh.authorization_id = "11111111-2222-4333-8444-555555555555".into();
    user.pats.push(fresh);

    let server = sim(later, SimConfig::strict()).await;
    let second = report_into(&server, dir.path(), &[]).await;
    assert_eq!(
        second.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    server.shutdown().await;
    let report = json_report(&second);
    let changes = &report["changes"];
    assert!(
        changes["previous"]["source"]
            .as_str()
            .unwrap()
            .ends_with(".json")
    );
    let counts = &changes["counts"];
    assert_eq!(
        (
            &counts["new_pats"],
            &counts["gone_pats"],
            &counts["changed_pats"]
        ),
        (&1.into(), &1.into(), &1.into()),
        "{changes}"
    );
    assert_eq!(
        changes["new_pats"][0]["authorization_id"],
        "11111111-2222-4333-8444-555555555555"
    );
    assert_eq!(changes["gone_pats"][0]["authorization_id"], gone.as_str());
    assert_eq!(changes["gone_pats"][0]["reason"], "revoked");
    assert_eq!(
        changes["changed_pats"][0]["authorization_id"],
        renamed_id.as_str()
    );
    assert_eq!(changes["changed_pats"][0]["fields"][0]["field"], "pat_name");
    let stdout = String::from_utf8_lossy(&second.stdout);
    assert!(stdout.contains("1 new, 1 gone, 1 changed PATs"), "{stdout}");
    let sheets = all_cells(&written(&second, "xlsx"));
    let (_, changes_sheet) = sheets
        .iter()
        .find(|(n, _)| n == "Changes")
        .expect("a Changes sheet");
    let kinds: Vec<String> = changes_sheet
        .iter()
        .filter_map(|r| r.first())
        .map(|c| c.to_string())
        .collect();
    for kind in ["new", "gone", "changed"] {
        assert!(kinds.iter().any(|k| k == kind), "{kind} in {kinds:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_to_compare_with_that_cannot_be_read_is_found_before_the_scan() {
    let org = fabrikam(20);
    let server = sim(org, SimConfig::strict()).await;
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.json");
    let o = report_into(
        &server,
        dir.path(),
        &["--compare", missing.to_str().unwrap()],
    )
    .await;
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_ne!(o.status.code(), Some(0));
    assert!(
        stderr.contains("cannot read the report to compare with") && stderr.contains("nope.json"),
        "{stderr}"
    );
    assert_eq!(server.stats().pat_requests, 0, "no scan ran");
    assert!(files_with(dir.path(), "json").is_empty());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_file_changes_the_findings() {
    let org = fabrikam(60);
    let server = sim(org, SimConfig::strict()).await;
    let strict_dir = tempfile::tempdir().unwrap();
    let relaxed_dir = tempfile::tempdir().unwrap();
    let strict = report_into(&server, strict_dir.path(), &["--no-compare"]).await;
    assert_eq!(strict.status.code(), Some(0));
    let policy = relaxed_dir.path().join("policy.toml");
    std::fs::write(
        &policy,
        "forbid_full_access = false\nforbid_global = false\nmax_lifetime_days = 100000\n",
    )
    .unwrap();
    let relaxed = report_into(
        &server,
        relaxed_dir.path(),
        &["--no-compare", "--policy", policy.to_str().unwrap()],
    )
    .await;
    assert_eq!(
        relaxed.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&relaxed.stderr)
    );
    let rules = |report: &serde_json::Value| -> Vec<String> {
        report["summary"]["findings"]["by_rule"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["rule"].as_str().unwrap().to_owned())
            .collect()
    };
    let (strict, relaxed) = (json_report(&strict), json_report(&relaxed));
    for rule in ["full_access", "global", "lifetime_over_max"] {
        assert!(
            rules(&strict).iter().any(|r| r == rule),
            "{rule} under the default policy"
        );
        assert!(
            !rules(&relaxed).iter().any(|r| r == rule),
            "{rule} under the relaxed one"
        );
    }
    assert_eq!(
        relaxed["policy"]["max_lifetime_days"], 100000,
        "the policy is recorded"
    );
    assert!(
        strict
            .get("changes")
            .is_some_and(serde_json::Value::is_null)
    );

    // A policy with a mistake stops the command before the scan, naming the file.
    std::fs::write(&policy, "max_lifetime_dayz = 1\n").unwrap();
    let before = server.stats().pat_requests;
    let o = report_into(
        &server,
        relaxed_dir.path(),
        &["--policy", policy.to_str().unwrap()],
    )
    .await;
    assert_eq!(o.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("policy.toml") && stderr.contains("max_lifetime_dayz"),
        "{stderr}"
    );
    assert_eq!(server.stats().pat_requests, before);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_reach_teams_slack_and_json_receivers_and_never_print_the_url() {
    let org = fabrikam(40);
    let server = sim(org, SimConfig::strict()).await;
    let receiver = support::webhook::Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let hooks = [
        format!("teams:{}/teams-secret-sig", receiver.url),
        format!("slack:{}/slack-secret-sig", receiver.url),
        format!("json:{}/busy", receiver.url),
    ];
    let mut args = vec!["--no-compare"];
    for hook in &hooks {
        args.extend(["--notify", hook.as_str()]);
    }
    let o = report_into(&server, dir.path(), &args).await;
    let (stdout, stderr) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    assert!(
        !stdout.contains("secret-sig") && !stderr.contains("secret-sig"),
        "{stderr}"
    );
    assert_eq!(stderr.matches("notified the").count(), 3, "{stderr}");
    let body = |path: &str| receiver.body(path);
    let teams = body("/teams-secret-sig");
    assert_eq!(teams["type"], "message");
    assert_eq!(
        teams["attachments"][0]["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    assert_eq!(teams["attachments"][0]["content"]["type"], "AdaptiveCard");
    let slack = body("/slack-secret-sig");
    assert!(slack["text"].as_str().unwrap().contains("fabrikam"));
    assert!(slack["blocks"].as_array().is_some_and(|b| !b.is_empty()));
    // Answered 429 once, then taken: the JSON receiver holds the report's own figures.
    let generic = body("/busy");
    let report = json_report(&o);
    assert_eq!(generic["schema"], "patreport.notice/1");
    assert_eq!(generic["headline"]["pats"], report["summary"]["pats"]);
    assert_eq!(
        generic["headline"]["critical"],
        report["summary"]["findings"]["critical"]
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoke_is_a_dry_run_until_yes_and_every_run_is_audited() {
    let org = fabrikam(60);
    let server = sim(org, SimConfig::strict()).await;
    let dir = tempfile::tempdir().unwrap();
    let report = report_into(&server, dir.path(), &["--no-compare", "--format", "json"]).await;
    assert_eq!(report.status.code(), Some(0));
    let json = written(&report, "json");
    let revoke = |extra: &[&str]| {
        let mut args = vec![
            "revoke",
            "--ado-url",
            Box::leak(server.base_url().into_boxed_str()),
            "--out",
            Box::leak(dir.path().to_str().unwrap().to_owned().into_boxed_str()),
        ];
        args.extend_from_slice(extra);
        let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
        async move {
            tokio::task::spawn_blocking(move || {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                patreport(&args, Some(PAT))
            })
            .await
            .unwrap()
        }
    };

    // No filter: refused, nothing checked.
    let o = revoke(&["--from", json.to_str().unwrap()]).await;
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("no filter given"));

    // Dry run: a plan, an audit line, nothing revoked.
    let o = revoke(&[
        "--from",
        json.to_str().unwrap(),
        "--full-access",
        "--global",
    ])
    .await;
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(stdout.contains("Dry run: nothing was revoked."), "{stdout}");
    assert!(server.revocations().is_empty());
    let plan_file = files_with(dir.path(), "json")
        .into_iter()
        .find(|p| p.to_string_lossy().contains("revoke-plan"))
        .expect("a plan file");
    let plan: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&plan_file).unwrap()).unwrap();
    let planned = plan["tokens"].as_array().unwrap().len();
    assert!(planned > 0, "the demo org has full-access global tokens");

    // --yes (no terminal here, so no typed confirmation): revoked, audited.
    let o = revoke(&["--plan", plan_file.to_str().unwrap(), "--yes"]).await;
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        stdout.contains(&format!("Revoked {planned} tokens")),
        "{stdout}"
    );
    let sent: usize = server.revocations().iter().map(Vec::len).sum();
    assert_eq!(sent, planned);

    // The same plan again: nothing left to send.
    let o = revoke(&["--plan", plan_file.to_str().unwrap(), "--yes"]).await;
    assert!(String::from_utf8_lossy(&o.stdout).contains("Nothing left to revoke"));
    assert_eq!(
        server.revocations().iter().map(Vec::len).sum::<usize>(),
        planned
    );

    let audit =
        std::fs::read_to_string(dir.path().join("patreport-fabrikam-revocations.jsonl")).unwrap();
    let modes: Vec<String> = audit
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["mode"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(modes, ["dry-run", "intent", "revoke", "revoke"], "{audit}");
    assert!(!audit.contains(PAT), "no credential in the audit file");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incremental_second_run_reads_only_changed_owners_and_shows_a_leak_everywhere() {
    let org = fabrikam(60);
    let dir = tempfile::tempdir().unwrap();
    let server = sim(org, SimConfig::strict()).await;
    let url = server.base_url();
    let audit = ["--incremental", "--audit-url", url.as_str()];

    let first = report_into(&server, dir.path(), &audit).await;
    assert_eq!(
        first.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert!(stdout.contains("no earlier state"), "{stdout}");
    let state_file = dir.path().join(".patreport").join("fabrikam.state.json");
    let state = std::fs::read_to_string(&state_file).unwrap();
    assert!(!state.contains(patreport::simulator::SECRET_MARKER));

    // A token found in a public repository, still valid.
    let leaked = json_report(&first)["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["status"] == "active" && r["pat_name"].is_string())
        .unwrap()["authorization_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let at = OffsetDateTime::now_utc() - time::Duration::milliseconds(5);
    server.mutate(|m| m.public_discovery(&leaked, at).unwrap());
    let listings = server.stats().pat_requests;
    let second = report_into(&server, dir.path(), &audit).await;
    assert_eq!(
        second.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    let read = server.stats().pat_requests - listings;
    let stdout = String::from_utf8_lossy(&second.stdout);
    assert!(stdout.contains("Refresh: incremental"), "{stdout}");
    assert!(
        read <= 3,
        "only the leaked token's owner(s) are read again, not {read}"
    );

    let report = json_report(&second);
    assert_eq!(report["run"]["refresh"]["mode"], "incremental");
    let row = report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["authorization_id"] == leaked.as_str())
        .unwrap();
    assert_eq!(row["severity"], "critical");
    assert!(
        row["findings"].to_string().contains("leaked_publicly"),
        "{row}"
    );
    assert!(row["publicly_discovered"].is_string(), "{row}");
    let csv = std::fs::read_to_string(written(&second, "csv")).unwrap();
    assert!(csv.contains("Found in a public repository"));
    let cells = all_cells(&written(&second, "xlsx"));
    let run = &cells.iter().find(|(n, _)| n == "Run").unwrap().1;
    assert!(
        run.iter()
            .any(|r| r.first() == Some(&Data::String("Refresh".into()))
                && r.get(1) == Some(&Data::String("incremental".into()))),
        "{run:?}"
    );
    let findings = &cells.iter().find(|(n, _)| n == "Findings").unwrap().1;
    assert!(
        findings.iter().any(|r| r.iter().any(
            |c| matches!(c, Data::String(t) if t.starts_with("Found in a public repository"))
        )),
        "{findings:?}"
    );
    let html = std::fs::read_to_string(written(&second, "html")).unwrap();
    assert!(html.contains("leaked_publicly"));
    server.shutdown().await;
}
