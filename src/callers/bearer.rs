//! Callers who bring their own Entra access token (`Authorization: Bearer …`): the token is
//! checked here against the tenant's signing keys, issuer, audience and lifetime.

use super::{Caller, CallerPolicy, CallerSource, Denied};
use crate::secret::Secret;
use http::{HeaderMap, header};
use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;

/// App Service Authentication's token store header with the caller's access token.
pub const AAD_ACCESS_TOKEN_HEADER: &str = "x-ms-token-aad-access-token";

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

/// The caller of a request with a bearer token, and whether its token had too many groups to
/// list them.
pub(super) async fn check(
    policy: &CallerPolicy,
    headers: &HeaderMap,
) -> Result<(Caller, bool), Denied> {
    let token = bearer_token(headers).ok_or_else(|| {
        Denied::Unauthenticated(
            "no access token: send Authorization: Bearer <Entra access token for the patreport API>"
                .into(),
        )
    })?;
    let jwks = policy
        .jwks
        .as_ref()
        .ok_or_else(|| Denied::NotConfigured("the token signing keys are not configured".into()))?;
    let invalid = |why: &str| Denied::Unauthenticated(format!("invalid access token: {why}"));
    let header = jsonwebtoken::decode_header(token.expose()).map_err(|_| invalid("not a JWT"))?;
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
    validation.set_audience(&policy.settings.audiences);
    validation.set_issuer(&policy.issuers);
    validation.set_required_spec_claims(&["exp", "iss", "aud"]);
    validation.validate_nbf = true;
    validation.leeway = policy.settings.leeway.as_secs();
    let data =
        jsonwebtoken::decode::<TokenClaims>(token.expose(), &key, &validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            let why = match e.kind() {
                K::ExpiredSignature => "expired".to_owned(),
                K::ImmatureSignature => "not valid yet (nbf)".to_owned(),
                K::InvalidAudience => format!(
                    "meant for another audience (expected {})",
                    policy.settings.audiences.join(" or ")
                ),
                K::InvalidIssuer => format!(
                    "issued by another tenant or authority (expected {})",
                    policy.issuers.join(" or ")
                ),
                K::InvalidSignature => "bad signature".to_owned(),
                K::MissingRequiredClaim(c) => format!("no '{c}' claim"),
                _ => "malformed".to_owned(),
            };
            invalid(&why)
        })?;
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
