//! One response under construction, and how it becomes an HTTP response: the service's
//! `Content-Type` (with the negotiated `api-version`), the optional UTF-8 BOM, and the
//! per-request ids every answer carries.

use axum::body::Body;
use axum::http::header::{CONTENT_TYPE, HeaderName};
use axum::http::{HeaderMap, HeaderValue, Response, StatusCode};

use super::wire::{ExceptionType, exception};

const BOM: &[u8] = b"\xEF\xBB\xBF";

#[derive(Debug)]
pub(crate) enum Payload {
    Json(Vec<u8>),
    Html(String),
    /// No body and no `Content-Type` (204).
    Empty,
}

#[derive(Debug)]
pub(crate) struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub payload: Payload,
    /// Cut a JSON body short (the "malformed JSON" fault).
    pub truncate: bool,
}

impl Reply {
    pub fn json(status: StatusCode, body: Vec<u8>) -> Self {
        Reply {
            status,
            headers: HeaderMap::new(),
            payload: Payload::Json(body),
            truncate: false,
        }
    }

    /// A `WrappedException` answer.
    pub fn error(status: StatusCode, kind: ExceptionType, message: &str) -> Self {
        Self::json(status, exception(kind, message))
    }

    /// An answer without a body, such as the 204 of a revocation.
    pub fn empty(status: StatusCode) -> Self {
        Reply {
            status,
            headers: HeaderMap::new(),
            payload: Payload::Empty,
            truncate: false,
        }
    }

    pub fn html(status: StatusCode, body: String) -> Self {
        Reply {
            status,
            headers: HeaderMap::new(),
            payload: Payload::Html(body),
            truncate: false,
        }
    }

    /// Adds a header; values the simulator builds are always valid header text, and one
    /// that somehow is not is dropped rather than failing the request.
    pub fn header(mut self, name: &'static str, value: impl AsRef<str>) -> Self {
        if let Ok(v) = HeaderValue::from_str(value.as_ref()) {
            self.headers.append(HeaderName::from_static(name), v);
        }
        self
    }

    /// The final response. `bom` prefixes JSON bodies with a UTF-8 BOM; `api_version`, when
    /// negotiated, is echoed in the `Content-Type` as the service does.
    pub fn into_response(self, bom: bool, api_version: Option<&str>) -> Response<Body> {
        let (content_type, bytes) = match self.payload {
            Payload::Empty => (None, Vec::new()),
            Payload::Json(mut body) => {
                if self.truncate {
                    body.truncate(body.len() / 2);
                }
                if bom {
                    body.splice(0..0, BOM.iter().copied());
                }
                let ct = match api_version {
                    Some(v) => format!("application/json; charset=utf-8; api-version={v}"),
                    None => "application/json; charset=utf-8".to_string(),
                };
                (Some(ct), body)
            }
            Payload::Html(text) => (
                Some("text/html; charset=utf-8".to_string()),
                text.into_bytes(),
            ),
        };
        let mut response = Response::new(Body::from(bytes));
        *response.status_mut() = self.status;
        *response.headers_mut() = self.headers;
        if let Some(Ok(v)) = content_type.map(|ct| HeaderValue::from_str(&ct)) {
            response.headers_mut().insert(CONTENT_TYPE, v);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncated_json_is_shorter_and_invalid() {
        let mut r = Reply::json(StatusCode::OK, br#"{"value":[1,2,3]}"#.to_vec());
        r.truncate = true;
        let response = r.into_response(true, Some("7.1"));
        let ct = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        assert_eq!(ct, Some("application/json; charset=utf-8; api-version=7.1"));
    }

    #[test]
    fn empty_reply_has_no_body_and_no_bom() {
        let response = Reply::empty(StatusCode::NO_CONTENT).into_response(true, Some("7.1"));
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        assert!(response.headers().get(CONTENT_TYPE).is_none());
    }
}
