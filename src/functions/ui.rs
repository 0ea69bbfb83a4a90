//! The start page for people (`GET /api/PatReport/ui`): start a report of a configured
//! organization, watch it run (users listed and read, PATs found, throttling waits), open the
//! report's page when it is done, and see the recent runs. Self-contained like the report
//! page: its own inline script and style under a hash-based policy, and requests to this app
//! only. In a browser the caller is known through App Service Authentication; with function
//! keys, the page passes on the key it was opened with.

use crate::domain::OrgName;
use crate::report::html::sha256_source;

const SCRIPT: &str = include_str!("ui/ui.js");
const STYLE: &str = include_str!("ui/ui.css");

/// The page's Content-Security-Policy (also sent as a header).
pub fn policy() -> String {
    format!(
        "default-src 'none'; script-src '{}'; style-src '{}'; connect-src 'self'; base-uri 'none'; \
         form-action 'none'; frame-ancestors 'none'; require-trusted-types-for 'script'; trusted-types 'none'",
        sha256_source(SCRIPT),
        sha256_source(STYLE)
    )
}

/// The page, for the configured organizations.
pub fn page(orgs: &[OrgName]) -> String {
    // Organization names are letters, digits and hyphens: nothing in them can end the element.
    let data = serde_json::json!({ "orgs": orgs.iter().map(OrgName::as_str).collect::<Vec<_>>() });
    // The <meta> form cannot carry frame-ancestors; the header does.
    let meta = policy().replace(" frame-ancestors 'none';", "");
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"{meta}\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>PAT reports</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
         <h1>PAT reports</h1>\n\
         <div class=\"start\"><label for=\"org\">Organization</label> <select id=\"org\"></select>\
         <button id=\"start\" type=\"button\">Start a report</button></div>\n\
         <div id=\"current\" role=\"status\"></div>\n\
         <h2>Recent runs</h2>\n<table><thead><tr><th>Asked for (UTC)</th><th>Organization</th>\
         <th>By</th><th>State</th><th>Report</th></tr></thead><tbody id=\"runs\"></tbody></table>\n\
         <script type=\"application/json\" id=\"ui-data\">{data}</script>\n\
         <script>{SCRIPT}</script>\n</body>\n</html>\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_allows_exactly_the_page_s_own_script_and_style() {
        let orgs = [OrgName::parse("fabrikam").unwrap()];
        let page = page(&orgs);
        let script_at = page.find(&format!("<script>{SCRIPT}</script>")).is_some();
        assert!(script_at && page.contains(&format!("<style>{STYLE}</style>")));
        let p = policy();
        assert!(p.contains(&sha256_source(SCRIPT)) && p.contains(&sha256_source(STYLE)));
        assert!(!p.contains("unsafe") && p.starts_with("default-src 'none'"));
        assert!(page.contains(r#"{"orgs":["fabrikam"]}"#));
        assert!(!SCRIPT.contains("innerHTML") && !SCRIPT.contains("outerHTML"));
    }
}
