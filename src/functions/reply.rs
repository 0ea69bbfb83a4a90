//! Answers of the HTTP endpoints, in one form for both ways the host calls us: a forwarded
//! request gets a plain HTTP response; a JSON invocation gets the same status, headers and
//! body as `Outputs.res`. Every answer is a JSON object and is never cached (it may hold a
//! download link).

use super::protocol::{http_output, json_response};
use crate::callers::Denied;
use crate::credentials::obo::Refused;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

#[derive(Debug, Clone, PartialEq)]
pub struct ApiReply {
    pub status: StatusCode,
    pub headers: Vec<(String, String)>,
    pub body: Value,
}

impl ApiReply {
    pub fn new(status: StatusCode, body: Value) -> Self {
        Self {
            status,
            headers: vec![("Cache-Control".into(), "no-store".into())],
            body,
        }
    }

    /// `{"error": code, "message": message}`.
    pub fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self::new(status, json!({ "error": code, "message": message.into() }))
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::error(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::error(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn method_not_allowed(method: &str, allowed: &str) -> Self {
        Self::error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("{method} is not supported here; use {allowed}"),
        )
        .with_header("Allow", allowed)
    }

    /// Storage could not be reached: worth retrying in a little while.
    pub fn storage_unavailable(message: impl Into<String>) -> Self {
        Self::error(
            StatusCode::SERVICE_UNAVAILABLE,
            "storage_unavailable",
            message,
        )
        .with_header("Retry-After", "30")
    }

    /// A refused caller: 401 (with `WWW-Authenticate`) when the caller must authenticate, 403
    /// when it may not ask (or nobody may yet), 503 (with `Retry-After`) when the check itself
    /// could not be made. This is the one place a caller decision becomes HTTP. The body has
    /// the `message` of every error of this API and a `reason`; neither ever holds the token.
    pub fn denied(denied: &Denied) -> Self {
        let (status, code) = match denied {
            Denied::Unauthenticated(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Denied::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            Denied::NotConfigured(_) => (StatusCode::FORBIDDEN, "not_configured"),
            Denied::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        };
        Self::refusal(status, code, denied.reason())
    }

    /// An on-behalf-of exchange that failed, answered as the caller check would be.
    pub fn exchange_refused(refused: &Refused) -> Self {
        let reason = refused.to_string();
        match refused {
            Refused::CallerToken(_) => {
                Self::refusal(StatusCode::UNAUTHORIZED, "unauthorized", &reason)
            }
            Refused::NotPermitted(_) => Self::refusal(StatusCode::FORBIDDEN, "forbidden", &reason),
            Refused::Unavailable(_) => {
                Self::refusal(StatusCode::SERVICE_UNAVAILABLE, "unavailable", &reason)
            }
        }
    }

    fn refusal(status: StatusCode, code: &str, reason: &str) -> Self {
        let mut reply = Self::new(
            status,
            json!({ "error": code, "message": reason, "reason": reason }),
        );
        if status == StatusCode::UNAUTHORIZED {
            // RFC 6750.
            reply = reply.with_header(
                "WWW-Authenticate",
                "Bearer realm=\"patreport\", error=\"invalid_token\"",
            );
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            reply = reply.with_header("Retry-After", "30");
        }
        reply
    }

    /// Too many runs at once on this instance.
    pub fn busy(message: impl Into<String>) -> Self {
        Self::error(StatusCode::TOO_MANY_REQUESTS, "busy", message).with_header("Retry-After", "60")
    }

    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    /// As a plain HTTP response (forwarded functions).
    pub fn into_response(self) -> Response {
        let mut response = json_response(self.status, &self.body);
        for (name, value) in &self.headers {
            if let (Ok(name), Ok(value)) = (
                HeaderName::try_from(name.as_str()),
                HeaderValue::try_from(value.as_str()),
            ) {
                response.headers_mut().append(name, value);
            }
        }
        response
    }

    /// As `Outputs.<res>` (JSON invocations).
    pub fn into_output(self) -> Value {
        let mut headers = self.headers;
        headers.push(("Content-Type".into(), "application/json".into()));
        http_output(self.status, &headers, &self.body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_forms_carry_status_headers_and_body() {
        let reply = ApiReply::storage_unavailable("down");
        let out = reply.clone().into_output();
        assert_eq!(out["StatusCode"], "503");
        assert_eq!(out["Headers"]["Retry-After"], "30");
        assert_eq!(out["Headers"]["Content-Type"], "application/json");
        assert_eq!(out["Body"]["error"], "storage_unavailable");
        let response = reply.into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()["content-type"], "application/json");
        assert_eq!(response.headers()["cache-control"], "no-store");
    }

    #[test]
    fn refusals_say_why_and_how_to_authenticate() {
        let reply = ApiReply::denied(&Denied::Unauthenticated("no access token".into()));
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        assert_eq!(reply.body["error"], "unauthorized");
        assert_eq!(reply.body["message"], "no access token");
        let out = reply.into_output();
        assert!(
            out["Headers"]["WWW-Authenticate"]
                .as_str()
                .unwrap()
                .starts_with("Bearer ")
        );
        let reply = ApiReply::denied(&Denied::Forbidden("needs PatReport.Read".into()));
        assert_eq!(reply.status, StatusCode::FORBIDDEN);
        assert_eq!(reply.body["error"], "forbidden");
        let reply = ApiReply::denied(&Denied::NotConfigured("set roles".into()));
        assert_eq!(
            (reply.status, reply.body["error"].as_str()),
            (StatusCode::FORBIDDEN, Some("not_configured"))
        );
        assert!(!reply.headers.iter().any(|(k, _)| k == "WWW-Authenticate"));
        let reply = ApiReply::exchange_refused(&Refused::CallerToken("expired".into()));
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        let reply = ApiReply::denied(&Denied::Unavailable("keys unreachable".into()));
        assert!(
            reply
                .headers
                .iter()
                .any(|(k, v)| k == "Retry-After" && v == "30")
        );
    }
}
