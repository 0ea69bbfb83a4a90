//! Who may ask the HTTP functions for a report.
//!
//! The report names every token holder of the organization, so besides the function key the
//! caller must be an allowed principal:
//!
//! * `PATREPORT_CALLER_AUTH=bearer` (default): the request carries an Entra access token for the
//!   patreport API app (`Authorization: Bearer …`). We validate it ourselves: RS256 signature
//!   against the tenant's published keys ([`Jwks`]), issuer (the tenant's v2.0 and v1.0
//!   issuers), audience (`PATREPORT_API_CLIENT_ID` and `api://<it>`, or
//!   `PATREPORT_CALLER_AUDIENCES`), expiry and not-before (60 s clock skew).
//! * `PATREPORT_CALLER_AUTH=app-service`: App Service Authentication ("Easy Auth") validated the
//!   caller and passes the identity in `X-MS-CLIENT-PRINCIPAL` (base64 JSON with `claims`).
//!   That header is trusted only when the platform says authentication is on
//!   (`WEBSITE_AUTH_ENABLED=true`): without Easy Auth in front anyone could send it.
//!
//! Then the caller needs one of `PATREPORT_ALLOWED_ROLES` (app role values, the `roles` claim) or
//! `PATREPORT_ALLOWED_GROUPS` (group object ids, the `groups` claim). With neither set every
//! request is refused, saying so: secure by default.
//!
//! Answers: [`Denied`] maps to 401 (no or invalid token), 403 (valid but not allowed, or nothing
//! configured) or 503 (signing keys unreachable), with a JSON reason that never contains the
//! token.

use super::entra::{self, parse_authority_host};
use super::jwks::Jwks;
use super::{AuthRuntime, setting};
use crate::secret::Secret;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;
use std::fmt;
use std::time::Duration;
use url::Url;

/// App Service Authentication's header with the signed-in principal.
pub const CLIENT_PRINCIPAL_HEADER: &str = "x-ms-client-principal";
/// App Service Authentication's token store header with the caller's access token.
pub const AAD_ACCESS_TOKEN_HEADER: &str = "x-ms-token-aad-access-token";

/// Where the caller's identity comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum CallerSource {
    /// Validate the `Authorization: Bearer` JWT ourselves.
    #[default]
    Bearer,
    /// Trust App Service Authentication's `X-MS-CLIENT-PRINCIPAL`.
    AppService,
}

/// The settings of the caller check.
#[derive(Debug, Clone)]
pub struct CallerPolicyConfig {
    pub source: CallerSource,
    /// App role values, e.g. `PatReport.Read`.
    pub allowed_roles: Vec<String>,
    /// Group object ids.
    pub allowed_groups: Vec<String>,
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
}

impl CallerPolicyConfig {
    /// Everything unset: a policy built from it refuses every request.
    pub fn new(source: CallerSource) -> Self {
        Self {
            source,
            allowed_roles: Vec::new(),
            allowed_groups: Vec::new(),
            tenant_id: None,
            audiences: Vec::new(),
            issuers: Vec::new(),
            authority_host: super::default_authority(),
            app_service_auth_enabled: false,
            leeway: Duration::from_secs(60),
            jwks_refetch_after_unknown: Duration::from_secs(60),
        }
    }
}

/// The decision for one request.
pub struct CallerPolicy {
    config: CallerPolicyConfig,
    issuers: Vec<String>,
    jwks: Option<Jwks>,
    /// Set-up problems; while any exists every request is refused with them as the reason.
    problems: Vec<String>,
}

impl fmt::Debug for CallerPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallerPolicy")
            .field("config", &self.config)
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
    /// 401: no token, or one we do not accept.
    #[error("{0}")]
    Unauthenticated(String),
    /// 403: a valid caller without an allowed role or group.
    #[error("{0}")]
    Forbidden(String),
    /// 403: the service has no allowed callers (or cannot check them): everything is refused.
    #[error("{0}")]
    NotConfigured(String),
    /// 503: the check could not be made (signing keys unreachable, Entra down).
    #[error("{0}")]
    Unavailable(String),
}

impl Denied {
    pub fn status(&self) -> StatusCode {
        match self {
            Denied::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            Denied::Forbidden(_) | Denied::NotConfigured(_) => StatusCode::FORBIDDEN,
            Denied::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// A short machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Denied::Unauthenticated(_) => "unauthorized",
            Denied::Forbidden(_) => "forbidden",
            Denied::NotConfigured(_) => "not_configured",
            Denied::Unavailable(_) => "unavailable",
        }
    }

    pub fn reason(&self) -> &str {
        match self {
            Denied::Unauthenticated(r)
            | Denied::Forbidden(r)
            | Denied::NotConfigured(r)
            | Denied::Unavailable(r) => r,
        }
    }

    /// `{"error": "<code>", "reason": "<why>"}`
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({ "error": self.code(), "reason": self.reason() })
    }

    /// The `WWW-Authenticate` value of a 401 (RFC 6750).
    pub fn www_authenticate(&self) -> Option<HeaderValue> {
        match self {
            Denied::Unauthenticated(_) => Some(HeaderValue::from_static(
                "Bearer realm=\"patreport\", error=\"invalid_token\"",
            )),
            _ => None,
        }
    }
}

impl IntoResponse for Denied {
    fn into_response(self) -> Response {
        let mut response = (self.status(), axum::Json(self.body())).into_response();
        if let Some(value) = self.www_authenticate() {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, value);
        }
        response
    }
}

/// The caller's access token: `Authorization: Bearer …`, else App Service Authentication's
/// `X-MS-TOKEN-AAD-ACCESS-TOKEN`.
pub fn bearer_token(headers: &HeaderMap) -> Option<Secret> {
    let from_authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| token.trim())
                .filter(|t| !t.is_empty())
        });
    let token = from_authorization.or_else(|| {
        headers
            .get(AAD_ACCESS_TOKEN_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|t| !t.is_empty())
    })?;
    Some(Secret::new(token))
}

fn list(text: Option<String>) -> Vec<String> {
    text.map(|t| {
        t.split([',', ';', ' '])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    })
    .unwrap_or_default()
}

impl CallerPolicy {
    /// From the process environment. Never fails: problems make every request refused (and
    /// are listed by [`Self::problems`] for the start-up log).
    pub fn from_env(runtime: &AuthRuntime) -> Self {
        Self::from_lookup(|name| std::env::var(name).ok(), runtime)
    }

    /// From settings read through `lookup` (tests pass a map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>, runtime: &AuthRuntime) -> Self {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let mut problems = Vec::new();
        let source = match get(setting::CALLER_AUTH) {
            None => CallerSource::Bearer,
            Some(text) => super::parse_value_enum(&text).unwrap_or_else(|p| {
                problems.push(format!("{}: {p}", setting::CALLER_AUTH));
                CallerSource::Bearer
            }),
        };
        let mut config = CallerPolicyConfig::new(source);
        config.allowed_roles = list(get(setting::ALLOWED_ROLES));
        config.allowed_groups = list(get(setting::ALLOWED_GROUPS));
        config.tenant_id = get(setting::TENANT_ID);
        config.audiences = list(get(setting::CALLER_AUDIENCES));
        if config.audiences.is_empty()
            && let Some(api) = get(setting::API_CLIENT_ID)
        {
            config.audiences = vec![format!("api://{api}"), api];
        }
        config.issuers = list(get(setting::CALLER_ISSUERS));
        if let Some(host) = get(setting::AUTHORITY_HOST) {
            match parse_authority_host(&host) {
                Ok(url) => config.authority_host = url,
                Err(p) => problems.push(format!("{}: {p}", setting::AUTHORITY_HOST)),
            }
        }
        config.app_service_auth_enabled = get(setting::WEBSITE_AUTH_ENABLED)
            .is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1");
        let mut policy = Self::new(config, runtime);
        problems.append(&mut policy.problems);
        policy.problems = problems;
        policy
    }

    pub fn new(config: CallerPolicyConfig, runtime: &AuthRuntime) -> Self {
        let mut problems = Vec::new();
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
            config,
            issuers,
            jwks,
            problems,
        }
    }

    /// Set-up problems (empty when requests can be authorized).
    pub fn problems(&self) -> &[String] {
        &self.problems
    }

    pub fn config(&self) -> &CallerPolicyConfig {
        &self.config
    }

    /// Decide whether the request's caller may have a report.
    pub async fn authorize(&self, headers: &HeaderMap) -> Result<Caller, Denied> {
        if !self.problems.is_empty() {
            return Err(Denied::NotConfigured(format!(
                "report requests are refused: {}",
                self.problems.join("; ")
            )));
        }
        let (caller, overage) = match self.config.source {
            CallerSource::Bearer => self.check_bearer(headers).await?,
            CallerSource::AppService => self.check_client_principal(headers)?,
        };
        self.allowed(caller, overage)
    }

    fn allowed(&self, caller: Caller, groups_overage: bool) -> Result<Caller, Denied> {
        let role_ok = caller.roles.iter().any(|r| {
            self.config
                .allowed_roles
                .iter()
                .any(|a| a.eq_ignore_ascii_case(r))
        });
        let group_ok = caller.groups.iter().any(|g| {
            self.config
                .allowed_groups
                .iter()
                .any(|a| a.eq_ignore_ascii_case(g))
        });
        if role_ok || group_ok {
            return Ok(caller);
        }
        let mut wanted = Vec::new();
        if !self.config.allowed_roles.is_empty() {
            wanted.push(format!(
                "one of the app roles {}",
                self.config.allowed_roles.join(", ")
            ));
        }
        if !self.config.allowed_groups.is_empty() {
            wanted.push(format!(
                "membership of one of the groups {}",
                self.config.allowed_groups.join(", ")
            ));
        }
        let mut reason = format!(
            "{} may not ask for reports: this needs {}",
            caller.describe(),
            wanted.join(" or ")
        );
        if groups_overage && !self.config.allowed_groups.is_empty() {
            reason.push_str(
                " (the token lists too many groups to carry them, so group membership cannot be \
                 checked: assign an app role instead)",
            );
        }
        Err(Denied::Forbidden(reason))
    }

    async fn check_bearer(&self, headers: &HeaderMap) -> Result<(Caller, bool), Denied> {
        let token = bearer_token(headers).ok_or_else(|| {
            Denied::Unauthenticated(
                "no access token: send Authorization: Bearer <Entra access token for the patreport API>"
                    .into(),
            )
        })?;
        let jwks = self.jwks.as_ref().ok_or_else(|| {
            Denied::NotConfigured("the token signing keys are not configured".into())
        })?;
        let invalid = |why: &str| Denied::Unauthenticated(format!("invalid access token: {why}"));
        let header =
            jsonwebtoken::decode_header(token.expose()).map_err(|_| invalid("not a JWT"))?;
        if header.alg != Algorithm::RS256 {
            return Err(invalid("not signed with RS256"));
        }
        let kid = header.kid.ok_or_else(|| invalid("no key id (kid)"))?;
        let key = jwks
            .key(&kid)
            .await
            .map_err(Denied::Unavailable)?
            .ok_or_else(|| invalid("signed with a key the tenant does not publish"))?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_audience(&self.config.audiences);
        validation.set_issuer(&self.issuers);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.validate_nbf = true;
        validation.leeway = self.config.leeway.as_secs();
        let data = jsonwebtoken::decode::<TokenClaims>(token.expose(), &key, &validation).map_err(
            |e| {
                use jsonwebtoken::errors::ErrorKind as K;
                let why = match e.kind() {
                    K::ExpiredSignature => "expired".to_owned(),
                    K::ImmatureSignature => "not valid yet (nbf)".to_owned(),
                    K::InvalidAudience => format!(
                        "meant for another audience (expected {})",
                        self.config.audiences.join(" or ")
                    ),
                    K::InvalidIssuer => format!(
                        "issued by another tenant or authority (expected {})",
                        self.issuers.join(" or ")
                    ),
                    K::InvalidSignature => "bad signature".to_owned(),
                    K::MissingRequiredClaim(c) => format!("no '{c}' claim"),
                    _ => "malformed".to_owned(),
                };
                invalid(&why)
            },
        )?;
        let claims = data.claims;
        let overage = claims
            .claim_names
            .as_ref()
            .is_some_and(|n| n.get("groups").is_some());
        let id = claims
            .oid
            .or(claims.sub)
            .ok_or_else(|| invalid("no 'oid' or 'sub' claim"))?;
        Ok((
            Caller {
                id,
                name: claims.name,
                username: claims.preferred_username.or(claims.upn),
                tenant_id: claims.tid,
                roles: claims.roles,
                groups: claims.groups,
                source: CallerSource::Bearer,
                token: Some(token),
            },
            overage,
        ))
    }

    fn check_client_principal(&self, headers: &HeaderMap) -> Result<(Caller, bool), Denied> {
        let missing = || {
            Denied::Unauthenticated(
                "App Service Authentication did not identify the caller (no X-MS-CLIENT-PRINCIPAL): \
                 sign in, and set unauthenticated requests to be rejected"
                    .into(),
            )
        };
        let raw = headers
            .get(CLIENT_PRINCIPAL_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .ok_or_else(missing)?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(raw)
            .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(raw))
            .map_err(|_| Denied::Unauthenticated("X-MS-CLIENT-PRINCIPAL is not base64".into()))?;
        let principal: ClientPrincipal = serde_json::from_slice(&bytes).map_err(|_| {
            Denied::Unauthenticated("X-MS-CLIENT-PRINCIPAL is not the expected JSON".into())
        })?;
        if let Some(idp) = principal.auth_typ.as_deref()
            && !idp.eq_ignore_ascii_case("aad")
        {
            return Err(Denied::Unauthenticated(format!(
                "the caller signed in with '{idp}'; only Microsoft Entra ID (aad) is accepted"
            )));
        }
        let role_typ = principal.role_typ.as_deref().unwrap_or("roles");
        let name_typ = principal.name_typ.as_deref().unwrap_or("name");
        let find = |types: &[&str]| {
            principal
                .claims
                .iter()
                .find(|c| types.iter().any(|t| c.typ.eq_ignore_ascii_case(t)))
                .map(|c| c.val.clone())
        };
        let all = |types: &[&str]| -> Vec<String> {
            principal
                .claims
                .iter()
                .filter(|c| types.iter().any(|t| c.typ.eq_ignore_ascii_case(t)))
                .map(|c| c.val.clone())
                .collect()
        };
        let tenant = find(&[
            "http://schemas.microsoft.com/identity/claims/tenantid",
            "tid",
        ]);
        if let (Some(expected), Some(actual)) = (&self.config.tenant_id, &tenant)
            && !expected.eq_ignore_ascii_case(actual)
        {
            return Err(Denied::Forbidden(format!(
                "the caller belongs to tenant {actual}, not {expected}"
            )));
        }
        let id = find(&[
            "http://schemas.microsoft.com/identity/claims/objectidentifier",
            "oid",
            "sub",
            "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/nameidentifier",
        ])
        .ok_or_else(|| Denied::Unauthenticated("X-MS-CLIENT-PRINCIPAL has no object id".into()))?;
        let overage = find(&["_claim_names"]).is_some_and(|v| v.contains("groups"));
        Ok((
            Caller {
                id,
                name: find(&[name_typ, "name"]),
                username: find(&[
                    "preferred_username",
                    "upn",
                    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn",
                ]),
                tenant_id: tenant,
                roles: all(&[
                    role_typ,
                    "roles",
                    "http://schemas.microsoft.com/ws/2008/06/identity/claims/role",
                ]),
                groups: all(&["groups"]),
                source: CallerSource::AppService,
                token: bearer_token(headers),
            },
            overage,
        ))
    }
}

#[derive(Deserialize)]
struct TokenClaims {
    #[serde(default)]
    oid: Option<String>,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    tid: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    preferred_username: Option<String>,
    #[serde(default)]
    upn: Option<String>,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default, rename = "_claim_names")]
    claim_names: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Deserialize)]
struct ClientPrincipal {
    #[serde(default)]
    auth_typ: Option<String>,
    #[serde(default)]
    claims: Vec<PrincipalClaim>,
    #[serde(default)]
    name_typ: Option<String>,
    #[serde(default)]
    role_typ: Option<String>,
}

#[derive(Deserialize)]
struct PrincipalClaim {
    typ: String,
    val: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn policy(pairs: &[(&str, &str)]) -> CallerPolicy {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        CallerPolicy::from_lookup(
            move |n| map.get(n).cloned(),
            &AuthRuntime::new().expect("runtime"),
        )
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
        assert_eq!(e.status(), StatusCode::FORBIDDEN);
        assert!(e.reason().contains("PATREPORT_ALLOWED_ROLES"), "{e}");
        assert!(e.reason().contains("AZURE_TENANT_ID"), "{e}");
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
        assert_eq!(e.status(), StatusCode::UNAUTHORIZED);

        let other = principal(serde_json::json!({
            "auth_typ": "aad",
            "claims": [{"typ": "oid", "val": "oid-2"}, {"typ": "roles", "val": "Other"}]
        }));
        let e = p.authorize(&other).await.unwrap_err();
        assert_eq!(e.status(), StatusCode::FORBIDDEN);
        assert!(e.reason().contains("PatReport.Read"), "{e}");
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

    #[test]
    fn denied_maps_to_status_and_json() {
        let d = Denied::Unauthenticated("no token".into());
        assert_eq!(d.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(d.body()["error"], "unauthorized");
        assert!(d.www_authenticate().is_some());
        let r = Denied::Forbidden("x".into()).into_response();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
    }
}
