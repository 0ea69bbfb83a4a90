//! Authentication as the service does it (docs/contracts.md, "Authentication" and "Sign-in
//! pages instead of 401"): a PAT as the Basic password (any user part) or a Bearer token;
//! failures answered the way a real client meets them (401 JSON, a 302 to the sign-in page,
//! or a 203 sign-in page), and the separate "not a token administrator" refusal.

use std::fmt;
use std::sync::Arc;

use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::reply::Reply;
use super::wire::ExceptionType;

/// The PAT the demo and the tests use against the simulator. Not a secret anywhere.
pub const DEMO_PAT: &str = "simulatedpatreportdemopat0000000000000000000000000000";
/// A Bearer token the default configuration accepts.
pub const DEMO_BEARER: &str = "simulated-entra-access-token";

/// Decides whether a Bearer token is good.
pub type BearerValidator = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// How a refused request is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailureMode {
    /// What the service does: 401 JSON when the request sends
    /// `X-TFS-FedAuthRedirect: Suppress`, otherwise a 302 to `/_signin`.
    Realistic,
    /// Always 401 with `WWW-Authenticate` and the TF400813 JSON body.
    Unauthorized401,
    /// Always `203 Non-Authoritative Information` with an HTML sign-in page.
    SignInPage203,
    /// Always a 302 to `/_signin` with an HTML "Object moved" body.
    Redirect302,
}

#[derive(Clone)]
pub struct AuthConfig {
    /// PATs accepted as the Basic password.
    pub pats: Vec<String>,
    /// Accepts or refuses Bearer tokens.
    pub bearer: BearerValidator,
    pub failure_mode: AuthFailureMode,
    /// Refuse every request, good credentials or not (a revoked PAT, an expired token).
    pub reject_all: bool,
    /// `false`: the caller is valid but not a token administrator; Graph works, Token Admin
    /// answers 401.
    pub token_admin: bool,
}

impl AuthConfig {
    /// Accepts exactly these PATs (Basic) and Bearer tokens.
    pub fn accepting(pats: &[&str], bearer_tokens: &[&str]) -> Self {
        let bearer: Vec<String> = bearer_tokens.iter().map(|t| t.to_string()).collect();
        AuthConfig {
            pats: pats.iter().map(|p| p.to_string()).collect(),
            bearer: Arc::new(move |t| bearer.iter().any(|b| b == t)),
            failure_mode: AuthFailureMode::Realistic,
            reject_all: false,
            token_admin: true,
        }
    }

    /// Refuses every request and answers in `mode`.
    pub fn always_refuse(mode: AuthFailureMode) -> Self {
        AuthConfig {
            failure_mode: mode,
            reject_all: true,
            ..Self::default()
        }
    }

    /// Uses `validator` for Bearer tokens instead of the list.
    pub fn with_bearer_validator(
        mut self,
        validator: impl Fn(&str) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.bearer = Arc::new(validator);
        self
    }
}

impl Default for AuthConfig {
    /// Accepts [`DEMO_PAT`] and [`DEMO_BEARER`].
    fn default() -> Self {
        Self::accepting(&[DEMO_PAT], &[DEMO_BEARER])
    }
}

impl fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthConfig")
            .field("pats", &format_args!("<{} accepted>", self.pats.len()))
            .field("failure_mode", &self.failure_mode)
            .field("reject_all", &self.reject_all)
            .field("token_admin", &self.token_admin)
            .finish_non_exhaustive()
    }
}

/// Whether the request's credentials are accepted.
pub(crate) fn authenticate(config: &AuthConfig, headers: &HeaderMap) -> bool {
    if config.reject_all {
        return false;
    }
    let Some(value) = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let Some((scheme, credentials)) = value.trim().split_once(' ') else {
        return false;
    };
    let credentials = credentials.trim();
    if scheme.eq_ignore_ascii_case("basic") {
        let Ok(decoded) = STANDARD.decode(credentials) else {
            return false;
        };
        let Ok(text) = String::from_utf8(decoded) else {
            return false;
        };
        // "Use any value for the user name and the token as the password."
        text.split_once(':')
            .is_some_and(|(_, password)| config.pats.iter().any(|p| p == password))
    } else if scheme.eq_ignore_ascii_case("bearer") {
        !credentials.is_empty() && (config.bearer)(credentials)
    } else {
        false
    }
}

/// The answer to a refused request. `original` is the request path and query, for the
/// sign-in page's `reply_to`.
pub(crate) fn refusal(config: &AuthConfig, headers: &HeaderMap, original: &str) -> Reply {
    let suppress = headers
        .get("x-tfs-fedauthredirect")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("suppress"));
    match config.failure_mode {
        AuthFailureMode::Realistic if suppress => unauthorized(),
        AuthFailureMode::Realistic | AuthFailureMode::Redirect302 => redirect(original),
        AuthFailureMode::Unauthorized401 => unauthorized(),
        AuthFailureMode::SignInPage203 => sign_in_page(StatusCode::NON_AUTHORITATIVE_INFORMATION),
    }
}

/// The answer to a valid caller who may not administer tokens. No `WWW-Authenticate`: the
/// credentials are fine, other credentials would not help.
pub(crate) fn not_token_admin() -> Reply {
    Reply::error(
        StatusCode::UNAUTHORIZED,
        ExceptionType::Unauthorized,
        "Access Denied: the caller needs the 'Manage tokens' (token administration) permission \
         of the organization, granted to Project Collection Administrators, and a credential \
         with the vso.tokenadministration scope to list other users' personal access tokens.",
    )
}

fn unauthorized() -> Reply {
    Reply::error(
        StatusCode::UNAUTHORIZED,
        ExceptionType::Unauthorized,
        "TF400813: The user '' is not authorized to access this resource.",
    )
    .header(
        "www-authenticate",
        "Bearer authorization_uri=https://login.microsoftonline.com/common",
    )
    .header(
        "www-authenticate",
        "Basic realm=\"https://tfsprodsim1.visualstudio.com/\"",
    )
    .header("www-authenticate", "TFS-Federated")
    .header(
        "x-tfs-fedauthrealm",
        "https://tfsprodsim1.visualstudio.com/",
    )
}

/// `/_signin?realm=…&reply_to=…`: where the service sends browser-like clients.
pub(crate) fn sign_in_location(original: &str) -> String {
    let reply_to: String = url::form_urlencoded::byte_serialize(original.as_bytes()).collect();
    format!("/_signin?realm=vssps.dev.azure.com&reply_to={reply_to}&redirect=1")
}

fn redirect(original: &str) -> Reply {
    let location = sign_in_location(original);
    let body = format!(
        "<html><head><title>Object moved</title></head><body>\r\n<h2>Object moved to \
         <a href=\"{}\">here</a>.</h2>\r\n</body></html>\r\n",
        location.replace('&', "&amp;")
    );
    Reply::html(StatusCode::FOUND, body).header("location", location)
}

/// The HTML sign-in page (203 for failed API calls, 200 at `/_signin`).
pub(crate) fn sign_in_page(status: StatusCode) -> Reply {
    Reply::html(
        status,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>Azure DevOps Services | Sign In</title></head><body>\
         <h1>Sign in to your account</h1><p>Sign in with your Microsoft account or your work \
         or school account to continue to Azure DevOps.</p>\
         <form method=\"post\" action=\"/_signin\"><button>Sign in</button></form></body></html>"
            .to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with_auth(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_str(value).expect("header"));
        h
    }

    fn basic(user_and_password: &str) -> HeaderMap {
        with_auth(&format!("Basic {}", STANDARD.encode(user_and_password)))
    }

    #[test]
    fn basic_accepts_any_user_part_with_a_known_pat() {
        let c = AuthConfig::default();
        assert!(authenticate(&c, &basic(&format!(":{DEMO_PAT}"))));
        assert!(authenticate(&c, &basic(&format!("PAT:{DEMO_PAT}"))));
        assert!(!authenticate(&c, &basic("PAT:wrong")));
        assert!(!authenticate(&c, &basic(DEMO_PAT)), "no colon");
        assert!(!authenticate(&c, &with_auth("Basic !!!not-base64")));
        assert!(!authenticate(&c, &HeaderMap::new()));
    }

    #[test]
    fn bearer_uses_the_validator() {
        let c = AuthConfig::default();
        assert!(authenticate(
            &c,
            &with_auth(&format!("Bearer {DEMO_BEARER}"))
        ));
        assert!(!authenticate(&c, &with_auth("Bearer other")));
        let c = c.with_bearer_validator(|t| t.starts_with("eyJ"));
        assert!(authenticate(&c, &with_auth("bearer eyJabc")));
    }

    #[test]
    fn reject_all_refuses_good_credentials() {
        let c = AuthConfig::always_refuse(AuthFailureMode::SignInPage203);
        assert!(!authenticate(&c, &basic(&format!(":{DEMO_PAT}"))));
        let r = refusal(&c, &HeaderMap::new(), "/x");
        assert_eq!(r.status, StatusCode::NON_AUTHORITATIVE_INFORMATION);
        assert!(matches!(
            r.payload,
            crate::simulator::reply::Payload::Html(_)
        ));
    }

    #[test]
    fn debug_does_not_print_pats() {
        let text = format!("{:?}", AuthConfig::default());
        assert!(!text.contains(DEMO_PAT));
    }
}
