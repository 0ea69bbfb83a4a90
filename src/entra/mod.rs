//! Microsoft Entra ID as both sides of patreport meet it: the v2.0 endpoints we call ourselves
//! (on-behalf-of, refresh token, device code; the signing keys callers' tokens are checked
//! against), the reading of Entra's error answers, and the one HTTP client for every sign-in
//! ([`AuthRuntime`]).
//!
//! azure_identity 1.x has no on-behalf-of, refresh-token or device-code flow, so those are small
//! form posts to `{authority}/{tenant}/oauth2/v2.0/token` (and `/devicecode`). An error answer
//! is JSON with `error`, `error_description` and `error_codes`; the AADSTS code says what went
//! wrong, and [`EntraRefusal`] turns the common ones into a sentence that says what to do.
//! Entra never echoes a token or secret in these answers, and we never include the request.

pub mod runtime;

pub use runtime::AuthRuntime;

use crate::secret::Secret;
use serde::Deserialize;
use std::fmt;
use std::time::Duration;
use url::Url;

/// The public cloud's authority host.
pub const DEFAULT_AUTHORITY_HOST: &str = "https://login.microsoftonline.com";
/// The Azure DevOps resource (application) id (docs/contracts.md, "Authentication").
pub const ADO_RESOURCE: &str = "499b84ac-1321-427f-aa17-267ca6975798";
/// The scope every Azure DevOps token is asked for.
pub const ADO_SCOPE: &str = "499b84ac-1321-427f-aa17-267ca6975798/.default";
/// The scope of Key Vault data-plane tokens.
pub const VAULT_SCOPE: &str = "https://vault.azure.net/.default";
/// The audience of a managed identity token used as a federated credential (client assertion).
pub const TOKEN_EXCHANGE_SCOPE: &str = "api://AzureADTokenExchange/.default";
/// `client_assertion_type` for a JWT client assertion.
pub const JWT_BEARER_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Parse and check an authority host such as `https://login.microsoftonline.us`.
///
/// Only https: the token endpoint receives client secrets and refresh tokens.
pub fn parse_authority_host(text: &str) -> Result<Url, String> {
    let url = Url::parse(text.trim()).map_err(|e| format!("'{text}' is not a URL ({e})"))?;
    if url.scheme() != "https" {
        return Err(format!("'{text}' must be an https URL"));
    }
    if url.host_str().is_none() || url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "'{text}' must be a bare host like https://login.microsoftonline.com"
        ));
    }
    // Keep a trailing slash so `join` appends rather than replaces.
    let mut url = url;
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

/// The public cloud's authority host, parsed.
pub fn default_authority() -> Url {
    // A constant that parses; the fallback is never taken.
    parse_authority_host(DEFAULT_AUTHORITY_HOST)
        .unwrap_or_else(|_| Url::parse("https://login.microsoftonline.com/").expect("constant"))
}

/// Whether `tenant` is safe to put in a URL path (a GUID or a domain name).
pub fn valid_tenant(tenant: &str) -> bool {
    !tenant.is_empty()
        && tenant.len() <= 256
        && tenant
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
}

/// One tenant at one authority, reached with one HTTP client.
#[derive(Clone)]
pub struct Entra {
    authority: Url,
    tenant: String,
    http: reqwest::Client,
}

impl fmt::Debug for Entra {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entra")
            .field("authority", &self.authority.as_str())
            .field("tenant", &self.tenant)
            .finish_non_exhaustive()
    }
}

impl Entra {
    /// `authority` comes from [`parse_authority_host`]; `tenant` is checked with [`valid_tenant`].
    pub fn new(authority: Url, tenant: &str, http: reqwest::Client) -> Result<Self, String> {
        if !valid_tenant(tenant) {
            return Err(format!(
                "'{tenant}' is not a tenant id (a GUID or a domain such as contoso.onmicrosoft.com)"
            ));
        }
        Ok(Self {
            authority,
            tenant: tenant.to_owned(),
            http,
        })
    }

    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    pub fn authority(&self) -> &Url {
        &self.authority
    }

    fn endpoint(&self, path: &str) -> Url {
        let mut url = self.authority.clone();
        url.set_path(&format!("{}{}/{path}", self.authority.path(), self.tenant));
        url
    }

    /// `{authority}/{tenant}/oauth2/v2.0/token`
    pub fn token_url(&self) -> Url {
        self.endpoint("oauth2/v2.0/token")
    }

    /// `{authority}/{tenant}/oauth2/v2.0/devicecode`
    pub fn device_code_url(&self) -> Url {
        self.endpoint("oauth2/v2.0/devicecode")
    }

    /// `{authority}/{tenant}/discovery/v2.0/keys`: the signing keys of the tenant's tokens.
    pub fn jwks_url(&self) -> Url {
        self.endpoint("discovery/v2.0/keys")
    }

    /// The `iss` of v2.0 access tokens: `{authority}/{tenant}/v2.0`.
    pub fn issuer_v2(&self) -> String {
        format!(
            "{}/{}/v2.0",
            self.authority.as_str().trim_end_matches('/'),
            self.tenant
        )
    }

    /// POST a form to the token endpoint. `flow` names the grant in error messages.
    pub async fn token(
        &self,
        flow: &'static str,
        form: &[(&str, &str)],
    ) -> Result<TokenResponse, EntraError> {
        let url = self.token_url();
        let body = self.post(flow, &url, form).await?;
        let raw: RawToken = serde_json::from_slice(&body).map_err(|e| EntraError::Malformed {
            flow,
            detail: format!("the token answer is not the expected JSON ({e})"),
        })?;
        raw.into_response(flow)
    }

    /// Start a device-code sign-in.
    pub async fn device_code(
        &self,
        client_id: &str,
        scope: &str,
    ) -> Result<DeviceCodeResponse, EntraError> {
        const FLOW: &str = "device-code sign-in";
        let url = self.device_code_url();
        let body = self
            .post(FLOW, &url, &[("client_id", client_id), ("scope", scope)])
            .await?;
        let raw: RawDeviceCode =
            serde_json::from_slice(&body).map_err(|e| EntraError::Malformed {
                flow: FLOW,
                detail: format!("the device code answer is not the expected JSON ({e})"),
            })?;
        Ok(DeviceCodeResponse {
            device_code: Secret::new(raw.device_code),
            user_code: raw.user_code,
            verification_uri: raw.verification_uri,
            expires_in: Duration::from_secs(raw.expires_in.as_u64().unwrap_or(900)),
            interval: Duration::from_secs(raw.interval.and_then(|i| i.as_u64()).unwrap_or(5)),
            message: raw.message,
        })
    }

    async fn post(
        &self,
        flow: &'static str,
        url: &Url,
        form: &[(&str, &str)],
    ) -> Result<Vec<u8>, EntraError> {
        let response = self
            .http
            .post(url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .form(form)
            .send()
            .await
            .map_err(|e| EntraError::Transport {
                flow,
                host: url.host_str().unwrap_or_default().to_owned(),
                // reqwest's Display names the URL (no secrets: they travel in the body).
                detail: crate::ado::error::error_chain(&e),
            })?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| EntraError::Transport {
            flow,
            host: url.host_str().unwrap_or_default().to_owned(),
            detail: crate::ado::error::error_chain(&e),
        })?;
        if status.is_success() {
            return Ok(body.to_vec());
        }
        Err(match serde_json::from_slice::<RawError>(&body) {
            Ok(raw) if !raw.error.is_empty() => {
                EntraError::Refused(Box::new(EntraRefusal::from_raw(flow, status.as_u16(), raw)))
            }
            // A proxy's HTML page or an outage: the status says enough; the body is not shown
            // (it is not ours to trust, and it could be large).
            _ => EntraError::Status {
                flow,
                status: status.as_u16(),
            },
        })
    }
}

/// A successful token answer.
pub struct TokenResponse {
    pub access_token: Secret,
    pub expires_in: Duration,
    pub refresh_token: Option<Secret>,
    pub id_token: Option<Secret>,
    pub scope: Option<String>,
}

impl fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenResponse")
            .field("expires_in", &self.expires_in)
            .field("refresh_token", &self.refresh_token.is_some())
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

impl TokenResponse {
    /// The access token for azure_core, expiring `expires_in` from now.
    pub fn access_token(&self) -> azure_core::credentials::AccessToken {
        let expires_in =
            time::Duration::try_from(self.expires_in).unwrap_or(time::Duration::minutes(5));
        azure_core::credentials::AccessToken::new(
            self.access_token.expose().to_owned(),
            time::OffsetDateTime::now_utc() + expires_in,
        )
    }
}

#[derive(Deserialize)]
struct RawToken {
    access_token: String,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    id_token: Option<String>,
    #[serde(default)]
    scope: Option<String>,
}

impl RawToken {
    fn into_response(self, flow: &'static str) -> Result<TokenResponse, EntraError> {
        if self.access_token.is_empty() {
            return Err(EntraError::Malformed {
                flow,
                detail: "the token answer has an empty access_token".into(),
            });
        }
        // v2.0 sends a number; v1.0 and some proxies send a string.
        let expires_in = match &self.expires_in {
            Some(serde_json::Value::Number(n)) => n.as_u64(),
            Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
            _ => None,
        }
        .unwrap_or(3600);
        Ok(TokenResponse {
            access_token: Secret::new(self.access_token),
            expires_in: Duration::from_secs(expires_in),
            refresh_token: self
                .refresh_token
                .filter(|t| !t.is_empty())
                .map(Secret::new),
            id_token: self.id_token.filter(|t| !t.is_empty()).map(Secret::new),
            scope: self.scope,
        })
    }
}

/// The start of a device-code sign-in.
pub struct DeviceCodeResponse {
    pub device_code: Secret,
    pub user_code: String,
    pub verification_uri: String,
    pub expires_in: Duration,
    pub interval: Duration,
    /// Entra's own instruction ("To sign in, use a web browser to open the page … and enter the code …").
    pub message: Option<String>,
}

impl fmt::Debug for DeviceCodeResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceCodeResponse")
            .field("user_code", &self.user_code)
            .field("verification_uri", &self.verification_uri)
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct RawDeviceCode {
    device_code: String,
    user_code: String,
    verification_uri: String,
    #[serde(default = "default_expires")]
    expires_in: serde_json::Number,
    #[serde(default)]
    interval: Option<serde_json::Number>,
    #[serde(default)]
    message: Option<String>,
}

fn default_expires() -> serde_json::Number {
    serde_json::Number::from(900u32)
}

#[derive(Deserialize)]
struct RawError {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
    #[serde(default)]
    error_codes: Vec<u64>,
    #[serde(default)]
    trace_id: Option<String>,
    #[serde(default)]
    correlation_id: Option<String>,
    #[serde(default)]
    suberror: Option<String>,
}

/// A failed call to Entra.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EntraError {
    #[error("{flow}: could not reach Microsoft Entra ID at {host}: {detail}")]
    Transport {
        flow: &'static str,
        host: String,
        detail: String,
    },
    #[error("{flow}: Microsoft Entra ID answered HTTP {status} without an OAuth error")]
    Status { flow: &'static str, status: u16 },
    #[error("{flow}: {detail}")]
    Malformed { flow: &'static str, detail: String },
    #[error("{0}")]
    Refused(Box<EntraRefusal>),
    /// The HTTP client for sign-in could not be set up (its extra CAs, TLS).
    #[error("{0}")]
    Setup(String),
}

impl EntraError {
    /// The OAuth error and AADSTS codes, when Entra refused.
    pub fn refusal(&self) -> Option<&EntraRefusal> {
        match self {
            EntraError::Refused(r) => Some(r.as_ref()),
            _ => None,
        }
    }
}

/// Entra's refusal of a token request, with advice for the common AADSTS codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntraRefusal {
    pub flow: &'static str,
    pub status: u16,
    /// The OAuth `error` (`invalid_grant`, `authorization_pending`, …).
    pub error: String,
    pub codes: Vec<u64>,
    /// The first line of `error_description` ("AADSTS700082: The refresh token has expired …").
    pub description: String,
    pub suberror: Option<String>,
    pub trace_id: Option<String>,
    pub correlation_id: Option<String>,
}

impl EntraRefusal {
    fn from_raw(flow: &'static str, status: u16, raw: RawError) -> Self {
        // The description repeats trace and correlation ids and a timestamp on further lines.
        let description = raw
            .error_description
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .to_owned();
        let mut codes = raw.error_codes;
        if codes.is_empty()
            && let Some(code) = aadsts_code(&description)
        {
            codes.push(code);
        }
        Self {
            flow,
            status,
            error: raw.error,
            codes,
            description,
            suberror: raw.suberror,
            trace_id: raw.trace_id,
            correlation_id: raw.correlation_id,
        }
    }

    pub fn has_code(&self, code: u64) -> bool {
        self.codes.contains(&code)
    }

    /// The stored sign-in can no longer be used: the user must sign in again.
    pub fn needs_new_sign_in(&self) -> bool {
        self.error == "invalid_grant"
            || self.error == "interaction_required"
            || self.codes.iter().any(|c| SIGN_IN_AGAIN.contains(c))
    }

    /// What to do about it, when we know.
    pub fn advice(&self) -> Option<&'static str> {
        self.codes
            .iter()
            .find_map(|c| advice_for(*c))
            .or(match self.error.as_str() {
                "consent_required" => Some(CONSENT_ADVICE),
                "invalid_client" => Some(
                    "the application could not prove its identity: check the client id, the client \
                     secret (AZURE_CLIENT_SECRET / PATREPORT_API_CLIENT_SECRET), the certificate \
                     (PATREPORT_API_CLIENT_CERTIFICATE) or the federated credential",
                ),
                _ => None,
            })
    }
}

impl fmt::Display for EntraRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} was refused by Microsoft Entra ID ({}",
            self.flow, self.error
        )?;
        if !self.description.is_empty() {
            write!(f, ": {}", self.description)?;
        }
        f.write_str(")")?;
        if let Some(advice) = self.advice() {
            write!(f, ". {advice}")?;
        }
        if let Some(id) = &self.correlation_id {
            write!(f, " [correlation id {id}")?;
            if let Some(trace) = &self.trace_id {
                write!(f, ", trace id {trace}")?;
            }
            f.write_str("]")?;
        }
        Ok(())
    }
}

/// The claims of a JWT, WITHOUT checking its signature: only for display (who signed in), never
/// for a decision.
pub fn unverified_claims(token: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    use base64::Engine as _;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The user's sign-in name in a token's claims (`preferred_username`, `upn`, `unique_name`).
pub fn user_name_of(token: &str) -> Option<String> {
    let claims = unverified_claims(token)?;
    ["preferred_username", "upn", "unique_name", "email", "name"]
        .iter()
        .find_map(|k| claims.get(*k).and_then(|v| v.as_str()).map(str::to_owned))
}

/// `AADSTS65001: …` → 65001.
fn aadsts_code(text: &str) -> Option<u64> {
    let start = text.find("AADSTS")? + "AADSTS".len();
    let digits: String = text[start..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().ok()
}

/// Codes after which only a new interactive sign-in helps.
const SIGN_IN_AGAIN: &[u64] = &[
    50076, 50078, 50079, 50173, 53003, 700082, 700084, 70043, 70008, 50132, 50133, 54005, 9002313,
];

const CONSENT_ADVICE: &str = "Consent is missing: in the app registration's API permissions add \
     Azure DevOps → Delegated → user_impersonation and press \"Grant admin consent\" (or let the \
     user consent once by signing in interactively)";

/// Advice for an AADSTS code found anywhere in an error message (also for azure_identity's).
pub fn advice_in_message(message: &str) -> Option<&'static str> {
    let mut rest = message;
    while let Some(pos) = rest.find("AADSTS") {
        if let Some(code) = aadsts_code(&rest[pos..])
            && let Some(advice) = advice_for(code)
        {
            return Some(advice);
        }
        rest = &rest[pos + "AADSTS".len()..];
    }
    None
}

fn advice_for(code: u64) -> Option<&'static str> {
    Some(match code {
        65001 => CONSENT_ADVICE,
        65002 => {
            "Consent between these first-party applications must be preauthorized by Microsoft: use your own app registration"
        }
        700082 | 70043 | 700084 | 50173 | 70008 | 50132 | 50133 | 54005 => {
            "The stored sign-in has expired or was revoked: run `patreport login` again"
        }
        50076 | 50079 | 50078 | 53003 => {
            "A Conditional Access policy (for example multi-factor authentication) requires an interactive sign-in: run `patreport login` again, or use an identity the policy does not cover"
        }
        7000215 => {
            "The client secret is wrong: check AZURE_CLIENT_SECRET / PATREPORT_API_CLIENT_SECRET (use the secret's Value, not its ID)"
        }
        7000222 => {
            "The client secret has expired: create a new one under Certificates & secrets and update the setting"
        }
        700016 => {
            "No application with this client id exists in the tenant: check the client id and AZURE_TENANT_ID"
        }
        90002 | 900023 | 90072 => {
            "The tenant was not found: check AZURE_TENANT_ID (and AZURE_AUTHORITY_HOST for a sovereign cloud)"
        }
        70021 => {
            "No federated credential of the app registration matches the presented token: add one for this managed identity or workload (issuer, subject and audience api://AzureADTokenExchange)"
        }
        700024 => {
            "The client assertion (federated token) is expired or not valid: check the workload identity token file or the managed identity"
        }
        700027 => {
            "The client assertion is not valid: a certificate assertion must be signed with a certificate uploaded to the app registration (Certificates & secrets → Certificates; check PATREPORT_API_CLIENT_CERTIFICATE), a federated token must come from the workload identity token file or the managed identity"
        }
        500133 => "The caller's token has expired: the caller must get a new token",
        50013 => {
            "The caller's token is not a valid assertion for this app: it must be an access token whose audience is PATREPORT_API_CLIENT_ID"
        }
        50027 => "The presented JWT is malformed or not valid",
        70011 => "The scope is not valid for this flow",
        500011 => {
            "The Azure DevOps resource principal is not in this tenant: sign in to Azure DevOps once with an account of this tenant, or connect the organization to the tenant"
        }
        50020 => "The user belongs to another tenant and is not a guest of this one",
        50126 => "Wrong user name or password",
        7000218 => {
            "A client secret or assertion is required: the app registration is a confidential client (or enable \"Allow public client flows\" for the login app)"
        }
        700025 => "The login app is a public client: it must not send a client secret",
        70002 => {
            "The app registration does not allow this flow: for `patreport login` enable \"Allow public client flows\""
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(body: &str) -> EntraRefusal {
        let raw: RawError = serde_json::from_str(body).unwrap();
        EntraRefusal::from_raw("refresh-token redemption", 400, raw)
    }

    #[test]
    fn authority_hosts_are_https_and_bare() {
        let url = parse_authority_host("https://login.microsoftonline.us").unwrap();
        assert_eq!(url.as_str(), "https://login.microsoftonline.us/");
        assert!(parse_authority_host("http://login.microsoftonline.com").is_err());
        assert!(parse_authority_host("https://x?y=1").is_err());
        assert!(parse_authority_host("nope").is_err());
    }

    #[test]
    fn endpoints_follow_the_v2_layout() {
        let e = Entra::new(
            parse_authority_host("https://login.example:8443").unwrap(),
            "contoso.onmicrosoft.com",
            reqwest::Client::new(),
        )
        .unwrap();
        assert_eq!(
            e.token_url().as_str(),
            "https://login.example:8443/contoso.onmicrosoft.com/oauth2/v2.0/token"
        );
        assert_eq!(
            e.jwks_url().as_str(),
            "https://login.example:8443/contoso.onmicrosoft.com/discovery/v2.0/keys"
        );
        assert_eq!(
            e.issuer_v2(),
            "https://login.example:8443/contoso.onmicrosoft.com/v2.0"
        );
        assert!(Entra::new(e.authority().clone(), "../x", reqwest::Client::new()).is_err());
    }

    #[test]
    fn an_expired_refresh_token_says_to_sign_in_again() {
        let r = refusal(
            r#"{"error":"invalid_grant","error_description":"AADSTS700082: The refresh token has expired due to inactivity.\r\nTrace ID: t\r\nCorrelation ID: c\r\nTimestamp: 2025-01-01","error_codes":[700082],"trace_id":"t","correlation_id":"c"}"#,
        );
        assert!(r.needs_new_sign_in());
        let text = r.to_string();
        assert!(text.contains("AADSTS700082"), "{text}");
        assert!(text.contains("patreport login"), "{text}");
        assert!(!text.contains("Timestamp"), "{text}");
        assert!(text.contains("correlation id c"), "{text}");
    }

    #[test]
    fn consent_required_names_the_permission() {
        let r = refusal(
            r#"{"error":"invalid_grant","error_description":"AADSTS65001: The user or administrator has not consented to use the application with ID 'x'.","suberror":"consent_required"}"#,
        );
        assert_eq!(r.codes, vec![65001], "code parsed from the description");
        let text = r.to_string();
        assert!(text.contains("user_impersonation"), "{text}");
        assert!(text.contains("Grant admin consent"), "{text}");
    }

    #[test]
    fn advice_is_found_in_foreign_messages() {
        let m = "ClientSecretCredential authentication failed. AADSTS7000215: Invalid client secret provided.";
        assert!(
            advice_in_message(m)
                .unwrap()
                .contains("AZURE_CLIENT_SECRET")
        );
        assert!(advice_in_message("AADSTS and nothing").is_none());
    }
}
