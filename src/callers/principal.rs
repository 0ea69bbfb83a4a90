//! Callers identified by App Service Authentication ("Easy Auth"), which validated them and
//! passes the identity in `X-MS-CLIENT-PRINCIPAL` (base64 JSON with `claims`).

use super::{Caller, CallerPolicy, CallerSource, Denied, bearer_token};
use base64::Engine as _;
use http::HeaderMap;
use serde::Deserialize;

/// App Service Authentication's header with the signed-in principal.
pub const CLIENT_PRINCIPAL_HEADER: &str = "x-ms-client-principal";

/// The caller named by `X-MS-CLIENT-PRINCIPAL`, and whether its groups overflowed.
pub(super) fn check(policy: &CallerPolicy, headers: &HeaderMap) -> Result<(Caller, bool), Denied> {
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
    if let (Some(expected), Some(actual)) = (&policy.settings.tenant_id, &tenant)
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
