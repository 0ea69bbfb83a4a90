//! The Azure DevOps contract rules the generated client does not apply, as one `azure_core`
//! per-call policy (it sees each call once, after retries):
//!
//! - request paths: the crate joins `{endpoint}/{org}` and the URL's trailing `/` gives `//org`,
//!   which a strict router answers 404 → collapse repeated slashes;
//! - api-version: the crate sends `7.1-preview`; we send what the contract names
//!   (`7.1-preview.1` for Graph and the Audit Log, `7.1` for Token Admin);
//! - `X-TFS-FedAuthRedirect: Suppress` and `Accept: application/json`, so a bad credential
//!   answers 401 rather than a sign-in page;
//! - 203, any 3xx, and any 2xx that is not JSON (but an empty 204) are authentication failures
//!   (the crate would hand the HTML sign-in page to its JSON parser);
//! - a UTF-8 BOM at the start of a body is removed;
//! - error bodies (`WrappedException`: `message`, `typeKey`) become readable errors.

use super::error::{AUTH_HINT, AdoError};
use super::pacing::Pacer;
use crate::scrub::Scrubber;
use azure_core::http::headers::HeaderName;
use azure_core::http::policies::{Policy, PolicyResult};
use azure_core::http::{AsyncRawResponse, Context, Request, Url};
use std::sync::Arc;

const FED_AUTH_REDIRECT: HeaderName = HeaderName::from_static("x-tfs-fedauthredirect");
const FORCE_MSA_PASS_THROUGH: HeaderName = HeaderName::from_static("x-vss-forcemsapassthrough");
const ACCEPT: HeaderName = HeaderName::from_static("accept");
const CONTENT_TYPE: HeaderName = HeaderName::from_static("content-type");
const LOCATION: HeaderName = HeaderName::from_static("location");

/// Longest service message we carry into an error (HTML pages can be large).
const MAX_MESSAGE_CHARS: usize = 400;

#[derive(Debug)]
pub struct ContractPolicy {
    pacer: Arc<Pacer>,
    /// Error texts are scrubbed of the credential before they are cut to length: a cut PAT
    /// no longer matches the secret it came from.
    scrubber: Arc<Scrubber>,
}

impl ContractPolicy {
    pub fn new(pacer: Arc<Pacer>, scrubber: Arc<Scrubber>) -> Self {
        Self { pacer, scrubber }
    }
}

#[async_trait::async_trait]
impl Policy for ContractPolicy {
    async fn send(
        &self,
        ctx: &Context,
        request: &mut Request,
        next: &[Arc<dyn Policy>],
    ) -> PolicyResult {
        normalize_url(request.url_mut());
        let revocation = request
            .url()
            .path()
            .to_ascii_lowercase()
            .ends_with("/_apis/tokenadmin/revocations");
        request.insert_header(FED_AUTH_REDIRECT, "Suppress");
        request.insert_header(FORCE_MSA_PASS_THROUGH, "true");
        request.insert_header(ACCEPT, "application/json");
        self.pacer.note_call();
        let response = next[0].send(ctx, request, &next[1..]).await?;
        check_response(response, &self.scrubber, revocation).await
    }
}

/// Collapse `//` in the path and set the api-version this project uses for each API.
pub fn normalize_url(url: &mut Url) {
    let path = url.path();
    if path.contains("//") {
        let mut collapsed = String::with_capacity(path.len());
        for segment in path.split('/').filter(|s| !s.is_empty()) {
            collapsed.push('/');
            collapsed.push_str(segment);
        }
        if path.ends_with('/') {
            collapsed.push('/');
        }
        url.set_path(&collapsed);
    }
    let lower = url.path().to_ascii_lowercase();
    let version = if lower.contains("/_apis/graph/") {
        "7.1-preview.1"
    } else if lower.contains("/_apis/tokenadmin/") {
        "7.1"
    } else if lower.contains("/_apis/audit/") {
        // Preview in every version; the crate sends `7.1-preview`, the contract names `.1`.
        "7.1-preview.1"
    } else {
        return;
    };
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != "api-version")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let mut query = url.query_pairs_mut();
    query.clear();
    for (k, v) in &pairs {
        query.append_pair(k, v);
    }
    query.append_pair("api-version", version);
}

async fn check_response(
    response: AsyncRawResponse,
    scrubber: &Scrubber,
    revocation: bool,
) -> PolicyResult {
    let status = u16::from(response.status());
    let content_type = response
        .headers()
        .get_optional_str(&CONTENT_TYPE)
        .unwrap_or("")
        .to_ascii_lowercase();

    if status == 203 {
        return Err(core_error(AdoError::Authentication {
            status,
            detail: "Azure DevOps answered 203 with a sign-in page instead of data".into(),
            hint: AUTH_HINT,
        }));
    }
    if (300..400).contains(&status) {
        let signin = response
            .headers()
            .get_optional_str(&LOCATION)
            .is_some_and(|l| l.to_ascii_lowercase().contains("signin"));
        let detail = if signin {
            format!("Azure DevOps redirected ({status}) to its sign-in page")
        } else {
            format!("Azure DevOps answered with a redirect ({status}); redirects are not followed")
        };
        return Err(core_error(AdoError::Authentication {
            status,
            detail,
            hint: AUTH_HINT,
        }));
    }

    let (status_code, headers, body) = response.deconstruct();
    let bytes = body.collect().await?;

    // 204 No Content is how revocations succeed (and only they): no body to be a sign-in page.
    if revocation && status == 204 && bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(AsyncRawResponse::from_bytes(status_code, headers, bytes));
    }
    if (200..300).contains(&status) {
        if !content_type.contains("json") {
            let shown = if content_type.is_empty() {
                "no content type"
            } else {
                content_type.as_str()
            };
            return Err(core_error(AdoError::Authentication {
                status,
                detail: format!(
                    "expected JSON but Azure DevOps sent {shown} (likely a sign-in page)"
                ),
                hint: AUTH_HINT,
            }));
        }
        let bytes = match bytes.strip_prefix(b"\xEF\xBB\xBF") {
            Some(rest) => bytes.slice(bytes.len() - rest.len()..),
            None => bytes,
        };
        return Ok(AsyncRawResponse::from_bytes(status_code, headers, bytes));
    }

    let scrubbed = scrubber.scrub(&String::from_utf8_lossy(&bytes));
    let (type_key, message) = error_body_message(scrubbed.as_bytes(), &content_type);
    let message = message.unwrap_or_else(|| format!("HTTP {status} with no readable error body"));
    if status == 401 {
        return Err(core_error(AdoError::Authentication {
            status,
            detail: message,
            hint: AUTH_HINT,
        }));
    }
    Err(core_error(AdoError::Service {
        status,
        type_key,
        message,
    }))
}

fn core_error(err: AdoError) -> azure_core::Error {
    azure_core::Error::new(azure_core::error::ErrorKind::Other, err)
}

/// Read an Azure DevOps error body: `WrappedException` (`message`, `typeKey`), the "improper"
/// `{"value":{"Message":…}}` form, or plain text. HTML is not shown, only named.
pub fn error_body_message(body: &[u8], content_type: &str) -> (Option<String>, Option<String>) {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    if body.iter().all(u8::is_ascii_whitespace) {
        return (None, None);
    }
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) {
        let type_key = value
            .get("typeKey")
            .and_then(|v| v.as_str())
            .map(str::to_owned);
        let message = value
            .get("message")
            .or_else(|| value.get("value").and_then(|v| v.get("Message")))
            .or_else(|| value.get("Message"))
            .and_then(|v| v.as_str())
            .map(clip);
        return (type_key, message);
    }
    if content_type.contains("html") {
        return (
            None,
            Some(format!(
                "an HTML page of {} bytes instead of an error body",
                body.len()
            )),
        );
    }
    (None, Some(clip(&String::from_utf8_lossy(body))))
}

fn clip(text: &str) -> String {
    let text = text.trim();
    match text.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn double_slash_is_collapsed_and_api_version_set() {
        let mut url = Url::parse(
            "http://127.0.0.1:1//fabrikam/_apis/tokenadmin/personalaccesstokens/aad.x?pageSize=5&api-version=7.1-preview",
        )
        .unwrap();
        normalize_url(&mut url);
        assert_eq!(
            url.path(),
            "/fabrikam/_apis/tokenadmin/personalaccesstokens/aad.x"
        );
        assert_eq!(url.query(), Some("pageSize=5&api-version=7.1"));

        let mut url = Url::parse(
            "https://vssps.dev.azure.com//org/_apis/graph/users?api-version=7.1-preview",
        )
        .unwrap();
        normalize_url(&mut url);
        assert_eq!(
            url.as_str(),
            "https://vssps.dev.azure.com/org/_apis/graph/users?api-version=7.1-preview.1"
        );
    }

    #[test]
    fn wrapped_exception_message_and_type_key_are_read() {
        let body = "\u{feff}{\"$id\":\"1\",\"innerException\":null,\"message\":\"TF400813: The user '' is not authorized to access this resource.\",\"typeName\":\"x\",\"typeKey\":\"UnauthorizedRequestException\",\"errorCode\":0,\"eventId\":3000}";
        let (key, msg) = error_body_message(body.as_bytes(), "application/json");
        assert_eq!(key.as_deref(), Some("UnauthorizedRequestException"));
        assert!(msg.unwrap().starts_with("TF400813"));
    }

    #[test]
    fn improper_error_plain_text_and_html_bodies() {
        let (_, msg) = error_body_message(
            br#"{"count":1,"value":{"Message":"boom"}}"#,
            "application/json",
        );
        assert_eq!(msg.as_deref(), Some("boom"));
        let (_, msg) = error_body_message(b"plain failure", "text/plain");
        assert_eq!(msg.as_deref(), Some("plain failure"));
        let (_, msg) = error_body_message(b"<html>sign in</html>", "text/html");
        assert!(msg.unwrap().contains("HTML page"));
        assert_eq!(error_body_message(b"  ", "text/plain"), (None, None));
    }
}
