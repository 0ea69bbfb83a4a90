//! Incoming caller authorization: who may ask the HTTP functions for a report.
//!
//! The report names every token holder of the organization, so besides the function key the
//! caller must be an allowed principal:
//!
//! * `PATREPORT_CALLER_AUTH=bearer` (default): the request carries an Entra access token for the
//!   patreport API app (`Authorization: Bearer …`). We validate it ourselves ([`bearer`]): RS256
//!   signature against the tenant's published keys ([`jwks`]), issuer (the tenant's v2.0 and
//!   v1.0 issuers), audience (`PATREPORT_API_CLIENT_ID` and `api://<it>`, or
//!   `PATREPORT_CALLER_AUDIENCES`), expiry and not-before (60 s clock skew).
//! * `PATREPORT_CALLER_AUTH=app-service`: App Service Authentication ("Easy Auth") validated the
//!   caller and passes the identity in `X-MS-CLIENT-PRINCIPAL` ([`principal`]). That header is
//!   trusted only when the platform says authentication is on (`WEBSITE_AUTH_ENABLED=true`):
//!   without Easy Auth in front anyone could send it.
//!
//! Then the caller needs one of `PATREPORT_ALLOWED_ROLES` (app role values, the `roles` claim) or
//! `PATREPORT_ALLOWED_GROUPS` (group object ids, the `groups` claim). With neither set every
//! request is refused, saying so: secure by default.
//!
//! The outcome is a typed decision ([`Caller`] or [`Denied`]); the Functions layer alone turns
//! it into an HTTP answer. No message here ever contains the token.

pub mod bearer;
pub mod jwks;
pub mod principal;

pub use bearer::bearer_token;

use crate::entra::{self, AuthRuntime};
use crate::secret::Secret;
use crate::settings::names as setting;
use crate::settings::{Choice, Reader, parse};
use http::HeaderMap;
use jwks::Jwks;
use std::fmt;
use std::time::Duration;
use url::Url;

/// Where the caller's identity comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CallerSource {
    /// Validate the `Authorization: Bearer` JWT ourselves.
    #[default]
    Bearer,
    /// Trust App Service Authentication's `X-MS-CLIENT-PRINCIPAL`.
    AppService,
}

impl Choice for CallerSource {
    const ALL: &'static [Self] = &[CallerSource::Bearer, CallerSource::AppService];
    fn name(self) -> &'static str {
        match self {
            CallerSource::Bearer => "bearer",
            CallerSource::AppService => "app-service",
        }
    }
}

/// The settings of the caller check.
#[derive(Debug, Clone)]
pub struct CallerSettings {
    pub source: CallerSource,
    /// App role values, e.g. `PatReport.Read`.
    pub allowed_roles: Vec<String>,
    /// Group object ids.
    pub allowed_groups: Vec<String>,
    /// App role values that may revoke tokens over HTTP (`PATREPORT_REVOKE_ROLES`); empty: the
    /// revoke endpoint does not exist.
    pub revoke_roles: Vec<String>,
    pub tenant_id: Option<String>,
    /// Accepted `aud` values.
    pub audiences: Vec<String>,
    /// Accepted `iss` values; empty: the tenant's v2.0 and v1.0 issuers.
    pub issuers: Vec<String>,
    pub authority_host: Url,
    /// `WEBSITE_AUTH_ENABLED`: App Service Authentication is in front of the app.
    pub app_service_auth_enabled: bool,
    /// Clock skew allowed for `exp` and `nbf`.
    pub leeway: Duration,
    /// See [`Jwks::refetch_after_unknown`].
    pub jwks_refetch_after_unknown: Duration,
    /// Settings that could not be read; while any exists every request is refused with them
    /// as the reason (the timer and the worker need no caller, so the service still starts).
    pub problems: Vec<String>,
}

impl CallerSettings {
    /// Everything unset: a policy built from it refuses every request.
    pub fn new(source: CallerSource) -> Self {
        Self {
            source,
            allowed_roles: Vec::new(),
            allowed_groups: Vec::new(),
            revoke_roles: Vec::new(),
            tenant_id: None,
            audiences: Vec::new(),
            issuers: Vec::new(),
            authority_host: entra::default_authority(),
            app_service_auth_enabled: false,
            leeway: Duration::from_secs(60),
            jwks_refetch_after_unknown: Duration::from_secs(60),
            problems: Vec::new(),
        }
    }

    /// Read through `r`. Bad values do not stop the service: they are kept as
    /// [`Self::problems`], and every HTTP request is refused with them as the reason.
    pub fn read(r: &mut Reader<'_>) -> Self {
        let mut problems = Vec::new();
        let source = match r.get(setting::CALLER_AUTH) {
            None => CallerSource::Bearer,
            Some(text) => CallerSource::parse(&text).unwrap_or_else(|p| {
                problems.push(format!("{}: {p}", setting::CALLER_AUTH));
                CallerSource::Bearer
            }),
        };
        let mut settings = Self::new(source);
        settings.allowed_roles = r.list(setting::ALLOWED_ROLES);
        settings.revoke_roles = r.list(setting::REVOKE_ROLES);
        if let Some(shared) = settings
            .revoke_roles
            .iter()
            .find(|role| settings.allowed_roles.contains(role))
        {
            r.warn(format!(
                "{}: {shared} is also a reader role ({}), so every reader may revoke tokens",
                setting::REVOKE_ROLES,
                setting::ALLOWED_ROLES
            ));
        }
        settings.allowed_groups = r.list(setting::ALLOWED_GROUPS);
        settings.tenant_id = r.get(setting::TENANT_ID);
        settings.audiences = r.list(setting::CALLER_AUDIENCES);
        if settings.audiences.is_empty()
            && let Some(api) = r.get(setting::API_CLIENT_ID)
        {
            settings.audiences = vec![format!("api://{api}"), api];
        }
        settings.issuers = r.list(setting::CALLER_ISSUERS);
        if let Some(host) = r.get(setting::AUTHORITY_HOST) {
            match entra::parse_authority_host(&host) {
                Ok(url) => settings.authority_host = url,
                Err(p) => problems.push(format!("{}: {p}", setting::AUTHORITY_HOST)),
            }
        }
        settings.app_service_auth_enabled = r
            .get(setting::WEBSITE_AUTH_ENABLED)
            .is_some_and(|v| parse::flag(&v) == Ok(true));
        settings.problems = problems;
        settings
    }
}

/// The decision for one request.
pub struct CallerPolicy {
    settings: CallerSettings,
    issuers: Vec<String>,
    jwks: Option<Jwks>,
    /// Set-up problems; while any exists every request is refused with them as the reason.
    problems: Vec<String>,
}

impl fmt::Debug for CallerPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallerPolicy")
            .field("settings", &self.settings)
            .field("problems", &self.problems)
            .finish_non_exhaustive()
    }
}

/// An authorized caller.
#[derive(Clone)]
pub struct Caller {
    /// Entra object id (`oid`), else the subject.
    pub id: String,
    pub name: Option<String>,
    pub username: Option<String>,
    pub tenant_id: Option<String>,
    pub roles: Vec<String>,
    pub groups: Vec<String>,
    pub source: CallerSource,
    /// The caller's access token, for on-behalf-of.
    token: Option<Secret>,
}

impl fmt::Debug for Caller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Caller")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("username", &self.username)
            .field("roles", &self.roles)
            .field("groups", &self.groups.len())
            .field("source", &self.source)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl Caller {
    /// The caller's access token (from `Authorization: Bearer` or `X-MS-TOKEN-AAD-ACCESS-TOKEN`).
    pub fn access_token(&self) -> Option<&Secret> {
        self.token.as_ref()
    }

    /// "Name <user@contoso.com> (object id)" for logs and run records.
    pub fn describe(&self) -> String {
        let mut out = self.name.clone().unwrap_or_default();
        if let Some(u) = &self.username {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(&format!("<{u}>"));
        }
        if out.is_empty() {
            self.id.clone()
        } else {
            format!("{out} ({})", self.id)
        }
    }
}

/// A refused request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// No token, or one we do not accept.
    #[error("{0}")]
    Unauthenticated(String),
    /// A valid caller without an allowed role or group.
    #[error("{0}")]
    Forbidden(String),
    /// The service has no allowed callers (or cannot check them): everything is refused.
    #[error("{0}")]
    NotConfigured(String),
    /// The check could not be made (signing keys unreachable, Entra down).
    #[error("{0}")]
    Unavailable(String),
}

impl Denied {
    pub fn reason(&self) -> &str {
        match self {
            Denied::Unauthenticated(r)
            | Denied::Forbidden(r)
            | Denied::NotConfigured(r)
            | Denied::Unavailable(r) => r,
        }
    }
}

impl CallerPolicy {
    pub fn new(settings: CallerSettings, runtime: &AuthRuntime) -> Self {
        let mut problems = settings.problems.clone();
        let config = &settings;
        if config.allowed_roles.is_empty() && config.allowed_groups.is_empty() {
            problems.push(format!(
                "no callers are allowed yet: set {} (app role values) and/or {} (group object \
                 ids); until then every report request is refused",
                setting::ALLOWED_ROLES,
                setting::ALLOWED_GROUPS
            ));
        }
        let mut jwks = None;
        let mut issuers = config.issuers.clone();
        match config.source {
            CallerSource::Bearer => {
                if config.audiences.is_empty() {
                    problems.push(format!(
                        "{} (or {}) is needed to check that callers' tokens are meant for patreport",
                        setting::API_CLIENT_ID,
                        setting::CALLER_AUDIENCES
                    ));
                }
                match config.tenant_id.as_deref().map(|t| {
                    entra::Entra::new(config.authority_host.clone(), t, runtime.http().clone())
                }) {
                    None => problems.push(format!(
                        "{} is needed to validate callers' tokens",
                        setting::TENANT_ID
                    )),
                    Some(Err(p)) => problems.push(format!("{}: {p}", setting::TENANT_ID)),
                    Some(Ok(tenant)) => {
                        if issuers.is_empty() {
                            issuers = vec![
                                tenant.issuer_v2(),
                                // v1.0 access tokens (accessTokenAcceptedVersion null or 1).
                                format!("https://sts.windows.net/{}/", tenant.tenant()),
                            ];
                        }
                        let mut keys = Jwks::new(tenant.jwks_url(), runtime.http().clone());
                        keys.refetch_after_unknown = config.jwks_refetch_after_unknown;
                        jwks = Some(keys);
                    }
                }
            }
            CallerSource::AppService => {
                if !config.app_service_auth_enabled {
                    problems.push(format!(
                        "{}=app-service, but App Service Authentication is not enabled ({} is not \
                         true): X-MS-CLIENT-PRINCIPAL could be sent by anyone, so it is not trusted",
                        setting::CALLER_AUTH,
                        setting::WEBSITE_AUTH_ENABLED
                    ));
                }
            }
        }
        Self {
            settings,
            issuers,
            jwks,
            problems,
        }
    }

    /// Set-up problems (empty when requests can be authorized).
    pub fn problems(&self) -> &[String] {
        &self.problems
    }

    pub fn settings(&self) -> &CallerSettings {
        &self.settings
    }

    /// Decide whether the request's caller may have a report.
    pub async fn authorize(&self, headers: &HeaderMap) -> Result<Caller, Denied> {
        if !self.problems.is_empty() {
            return Err(Denied::NotConfigured(format!(
                "report requests are refused: {}",
                self.problems.join("; ")
            )));
        }
        let (caller, overage) = match self.settings.source {
            CallerSource::Bearer => bearer::check(self, headers).await?,
            CallerSource::AppService => principal::check(self, headers)?,
        };
        self.allowed(caller, overage)
    }

    fn allowed(&self, caller: Caller, groups_overage: bool) -> Result<Caller, Denied> {
        // App role values compare exactly, as Entra and ASP.NET do (`PatReport.Read` is not
        // `patreport.read`); group object ids are GUIDs, equal whatever their case.
        let role_ok = caller
            .roles
            .iter()
            .any(|r| self.settings.allowed_roles.iter().any(|a| a == r));
        let group_ok = caller.groups.iter().any(|g| {
            self.settings
                .allowed_groups
                .iter()
                .any(|a| a.eq_ignore_ascii_case(g))
        });
        if role_ok || group_ok {
            return Ok(caller);
        }
        let mut wanted = Vec::new();
        if !self.settings.allowed_roles.is_empty() {
            wanted.push(format!(
                "one of the app roles {}",
                self.settings.allowed_roles.join(", ")
            ));
        }
        if !self.settings.allowed_groups.is_empty() {
            wanted.push(format!(
                "membership of one of the groups {}",
                self.settings.allowed_groups.join(", ")
            ));
        }
        let mut reason = format!(
            "{} may not ask for reports: this needs {}",
            caller.describe(),
            wanted.join(" or ")
        );
        if groups_overage && !self.settings.allowed_groups.is_empty() {
            reason.push_str(
                " (the token lists too many groups to carry them, so group membership cannot be \
                 checked: assign an app role instead)",
            );
        }
        Err(Denied::Forbidden(reason))
    }
}

#[cfg(test)]
mod tests {
    use super::bearer::AAD_ACCESS_TOKEN_HEADER;
    use super::principal::CLIENT_PRINCIPAL_HEADER;
    use super::*;
    use base64::Engine as _;
    use http::{HeaderValue, header};
    use std::collections::HashMap;

    fn policy(pairs: &[(&str, &str)]) -> CallerPolicy {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let lookup = move |n: &str| map.get(n).cloned();
        let mut r = Reader::new(&lookup);
        let settings = CallerSettings::read(&mut r);
        CallerPolicy::new(settings, &AuthRuntime::new(None).expect("runtime"))
    }

    fn principal(json: serde_json::Value) -> HeaderMap {
        let mut h = HeaderMap::new();
        let encoded = base64::engine::general_purpose::STANDARD.encode(json.to_string());
        h.insert(
            CLIENT_PRINCIPAL_HEADER,
            HeaderValue::from_str(&encoded).unwrap(),
        );
        h
    }

    #[tokio::test]
    async fn nothing_configured_refuses_everything_and_says_why() {
        let p = policy(&[]);
        let e = p.authorize(&HeaderMap::new()).await.unwrap_err();
        assert!(matches!(e, Denied::NotConfigured(_)), "{e:?}");
        assert!(e.reason().contains("PATREPORT_ALLOWED_ROLES"), "{e}");
        assert!(e.reason().contains("AZURE_TENANT_ID"), "{e}");
    }

    #[tokio::test]
    async fn a_bad_caller_setting_refuses_every_request_and_names_it() {
        let p = policy(&[
            ("PATREPORT_CALLER_AUTH", "kerberos"),
            ("PATREPORT_ALLOWED_ROLES", "PatReport.Read"),
        ]);
        let e = p.authorize(&HeaderMap::new()).await.unwrap_err();
        assert!(
            e.reason().contains("PATREPORT_CALLER_AUTH")
                && e.reason().contains("bearer, app-service"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn client_principal_is_trusted_only_behind_app_service_auth() {
        let headers = principal(serde_json::json!({
            "auth_typ": "aad",
            "claims": [
                {"typ": "http://schemas.microsoft.com/identity/claims/objectidentifier", "val": "oid-1"},
                {"typ": "roles", "val": "PatReport.Read"},
                {"typ": "name", "val": "Ada"}
            ],
            "name_typ": "name",
            "role_typ": "roles"
        }));
        let p = policy(&[
            ("PATREPORT_CALLER_AUTH", "app-service"),
            ("PATREPORT_ALLOWED_ROLES", "PatReport.Read"),
        ]);
        let e = p.authorize(&headers).await.unwrap_err();
        assert!(e.reason().contains("WEBSITE_AUTH_ENABLED"), "{e}");

        let p = policy(&[
            ("PATREPORT_CALLER_AUTH", "app-service"),
            ("PATREPORT_ALLOWED_ROLES", "PatReport.Read"),
            ("WEBSITE_AUTH_ENABLED", "True"),
        ]);
        let caller = p.authorize(&headers).await.unwrap();
        assert_eq!(caller.id, "oid-1");
        assert_eq!(caller.name.as_deref(), Some("Ada"));

        let e = p.authorize(&HeaderMap::new()).await.unwrap_err();
        assert!(matches!(e, Denied::Unauthenticated(_)), "{e:?}");

        let other = principal(serde_json::json!({
            "auth_typ": "aad",
            "claims": [{"typ": "oid", "val": "oid-2"}, {"typ": "roles", "val": "Other"}]
        }));
        let e = p.authorize(&other).await.unwrap_err();
        assert!(matches!(e, Denied::Forbidden(_)), "{e:?}");
        assert!(e.reason().contains("PatReport.Read"), "{e}");
    }

    #[tokio::test]
    async fn roles_compare_exactly_as_entra_does() {
        let p = policy(&[
            ("PATREPORT_CALLER_AUTH", "app-service"),
            ("PATREPORT_ALLOWED_ROLES", "PatReport.Read"),
            (
                "PATREPORT_ALLOWED_GROUPS",
                "0F3A1C2E-0000-4000-8000-000000000001",
            ),
            ("WEBSITE_AUTH_ENABLED", "true"),
        ]);
        let with = |claims: serde_json::Value| {
            principal(serde_json::json!({"auth_typ": "aad", "claims": claims}))
        };
        let lower = with(
            serde_json::json!([{"typ": "oid", "val": "o"}, {"typ": "roles", "val": "patreport.read"}]),
        );
        let e = p.authorize(&lower).await.unwrap_err();
        assert!(matches!(e, Denied::Forbidden(_)), "{e:?}");
        let exact = with(
            serde_json::json!([{"typ": "oid", "val": "o"}, {"typ": "roles", "val": "PatReport.Read"}]),
        );
        assert!(p.authorize(&exact).await.is_ok());
        // Group object ids are GUIDs: the same id in another case is the same group.
        let group = with(
            serde_json::json!([{"typ": "oid", "val": "o"}, {"typ": "groups", "val": "0f3a1c2e-0000-4000-8000-000000000001"}]),
        );
        assert!(p.authorize(&group).await.is_ok());
    }

    #[test]
    fn bearer_comes_from_authorization_then_the_token_store() {
        let mut h = HeaderMap::new();
        h.insert(
            AAD_ACCESS_TOKEN_HEADER,
            HeaderValue::from_static("store-token"),
        );
        assert_eq!(bearer_token(&h).unwrap().expose(), "store-token");
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer header-token"),
        );
        assert_eq!(bearer_token(&h).unwrap().expose(), "header-token");
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer_token(&h).unwrap().expose(), "store-token");
    }
}
