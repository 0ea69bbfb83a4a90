//! Token Admin revocations (docs/contracts.md, "Revocations"): the checks on a revocation
//! request's body, and the organization's revoked authorizations that later listings read.
//!
//! The served org's PATs and keys stay as they are; revocations live beside them, behind one lock,
//! and the listings lay them over the org's entries. A request's ids are applied under the
//! write lock all at once, and a listing page is built under the read lock, so no page shows
//! half a revocation request.

use std::collections::HashSet;
use std::sync::{RwLock, RwLockReadGuard};

use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;

use super::reply::Reply;
use super::wire::{ExceptionType, parse_guid};

/// The organization's revocation state.
#[derive(Debug, Default)]
pub(crate) struct Revocations {
    state: RwLock<State>,
}

#[derive(Debug, Default)]
pub(crate) struct State {
    /// Authorization ids of this org's PATs and SSH keys that a revocation has reached.
    revoked: HashSet<u128>,
    /// The ids of each applied request, as sent, in order.
    log: Vec<Vec<String>>,
}

impl State {
    /// Whether a revocation has made this entry invalid.
    pub fn is_revoked(&self, authorization_id: &str) -> bool {
        !self.revoked.is_empty()
            && parse_guid(authorization_id).is_some_and(|id| self.revoked.contains(&id))
    }
}

impl Revocations {
    /// Applies one accepted request (`ids` checked by [`parse_body`]). `validity` tells, for
    /// an id, whether the org has such a token (a PAT, or for an `isPublic=true` request an
    /// SSH key: each reaches its own kind only) and whether it is valid in the org as it is
    /// now (the org changes under [`Mutations`](super::Mutations)). Ids of no such token
    /// have no effect; the contract does not say what the service does with them, and a 204
    /// is the answer least likely to hide a client bug that a 400 would have shown. Returns
    /// the tokens that went from valid to invalid, in request order.
    pub fn apply(&self, ids: Vec<String>, validity: &dyn Fn(u128) -> Option<bool>) -> Vec<u128> {
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        let mut newly_invalid = Vec::new();
        for id in ids.iter().filter_map(|id| parse_guid(id)) {
            if let Some(valid) = validity(id)
                && state.revoked.insert(id)
                && valid
            {
                newly_invalid.push(id);
            }
        }
        state.log.push(ids);
        newly_invalid
    }

    /// The state for building a listing page; hold it while the page is built.
    pub fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The ids of each applied request, in order.
    pub fn log(&self) -> Vec<Vec<String>> {
        self.read().log.clone()
    }
}

/// A 415 unless the body is declared JSON. ASP.NET Web API answers so when no formatter takes
/// the media type; a missing `Content-Type` counts as `application/octet-stream`.
pub(crate) fn unsupported_media_type(headers: &HeaderMap) -> Option<Reply> {
    let declared = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream");
    let media_type = declared.split(';').next().unwrap_or_default().trim();
    if media_type.eq_ignore_ascii_case("application/json")
        || media_type.eq_ignore_ascii_case("text/json")
    {
        return None;
    }
    Some(Reply::error(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ExceptionType::UnsupportedMediaType,
        &format!(
            "The request entity's media type '{media_type}' is not supported for this resource."
        ),
    ))
}

/// Checks a revocation body, `[{"authorizationId": "<guid>"}, …]`, and returns the ids as
/// sent, or the message of the 400. Field names match ignoring case and unknown fields are
/// ignored, as the service's JSON reader does; the ids must be GUIDs in the `8-4-4-4-12`
/// form, and the all-zero GUID counts as missing (.NET reads a missing Guid as it).
pub(crate) fn parse_body(body: &[u8], limit: usize) -> Result<Vec<String>, String> {
    const SHAPE: &str = "The request body must be a JSON array of revocations, such as \
                         [{\"authorizationId\":\"532c7fe6-74f8-408b-8051-4abb73dca491\"}].\r\n\
                         Parameter name: revocations";
    let Ok(Value::Array(entries)) = serde_json::from_slice::<Value>(body) else {
        return Err(SHAPE.to_string());
    };
    if entries.is_empty() {
        return Err(
            "The list of revocations is empty: send at least one authorizationId.\r\n\
                    Parameter name: revocations"
                .to_string(),
        );
    }
    if entries.len() > limit {
        return Err(format!(
            "Too many revocations in one request: {} were sent, at most {limit} are allowed. \
             Send them in smaller batches.\r\nParameter name: revocations",
            entries.len()
        ));
    }
    entries
        .iter()
        .enumerate()
        .map(|(i, entry)| {
            let Value::Object(fields) = entry else {
                return Err(SHAPE.to_string());
            };
            let id = fields
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case("authorizationId"))
                .and_then(|(_, value)| value.as_str());
            match id {
                Some(id) if parse_guid(id).is_some_and(|v| v != 0) => Ok(id.to_string()),
                _ => Err(format!(
                    "Revocation {i} has no valid authorizationId: it must be a non-empty GUID.\r\n\
                     Parameter name: authorizationId"
                )),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "532c7fe6-74f8-408b-8051-4abb73dca491";

    #[test]
    fn bodies_are_checked() {
        let ok = |body: &str| parse_body(body.as_bytes(), 2);
        assert_eq!(
            ok(&format!(r#"[{{"authorizationId":"{ID}"}}]"#)),
            Ok(vec![ID.into()])
        );
        assert_eq!(
            ok(&format!(r#"[{{"AuthorizationID":"{ID}","extra":1}}]"#)),
            Ok(vec![ID.into()])
        );
        for bad in [
            "",
            "{}",
            "null",
            "[]",
            "[1]",
            r#"[{"id":"532c7fe6-74f8-408b-8051-4abb73dca491"}]"#,
            r#"[{"authorizationId":""}]"#,
            r#"[{"authorizationId":null}]"#,
            r#"[{"authorizationId":"not-a-guid"}]"#,
            r#"[{"authorizationId":"00000000-0000-0000-0000-000000000000"}]"#,
            r#"[{"authorizationId":"532c7fe674f8408b80514abb73dca491"}]"#,
            r#"[{"authorizationId":"a"},{"authorizationId":"b"},{"authorizationId":"c"}]"#,
        ] {
            let message = ok(bad).expect_err(bad);
            assert!(message.contains("Parameter name: "), "{message}");
        }
        let many = format!(
            r#"[{0},{0},{0}]"#,
            format_args!(r#"{{"authorizationId":"{ID}"}}"#)
        );
        assert!(
            ok(&many)
                .expect_err("3 > 2")
                .starts_with("Too many revocations")
        );
    }

    #[test]
    fn only_json_bodies_are_read() {
        let mut headers = HeaderMap::new();
        assert!(unsupported_media_type(&headers).is_some());
        headers.insert(CONTENT_TYPE, "text/plain".parse().expect("value"));
        let reply = unsupported_media_type(&headers).expect("415");
        assert_eq!(reply.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        headers.insert(
            CONTENT_TYPE,
            "Application/JSON; charset=utf-8".parse().expect("value"),
        );
        assert!(unsupported_media_type(&headers).is_none());
    }
}
