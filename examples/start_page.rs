//! Prints the Functions app's start page (`GET /api/PatReport/ui`) for the organizations
//! given as arguments, exactly as the app serves it; with `--policy`, the
//! Content-Security-Policy header the app sends with it. The browser tests open it in Chromium
//! (tests/browser/start-page.spec.js) with the app's API answered by the test.

fn main() -> std::process::ExitCode {
    if std::env::args().nth(1).as_deref() == Some("--policy") {
        print!("{}", patreport::functions::ui::policy());
        return std::process::ExitCode::SUCCESS;
    }
    let mut orgs = Vec::new();
    for arg in std::env::args().skip(1) {
        match patreport::domain::OrgName::parse(&arg) {
            Ok(org) => orgs.push(org),
            Err(e) => {
                eprintln!("error: {e}");
                return std::process::ExitCode::from(2);
            }
        }
    }
    print!("{}", patreport::functions::ui::page(&orgs));
    std::process::ExitCode::SUCCESS
}
