//! The custom-handler protocol as the Functions host speaks it (docs/contracts.md, "Invocation
//! payload" to "Timer payload", checked against the host source): the invocation payload the
//! host POSTs to `/{FunctionName}`, the answer it expects back, and the shapes of the trigger
//! values we use.
//!
//! Parsing is lenient on purpose. The host serialises values in ways that differ between
//! versions and from the documentation: `Query` is an object in some versions and a string
//! holding JSON in others; a queue message arrives as a JSON *string* of the message text
//! (`JsonConvert.SerializeObject(string)`), i.e. quoted once more; metadata numbers such as
//! `DequeueCount` may arrive as strings; timer timestamps may be `0001-01-01…` or unparsable.

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;

/// What the host POSTs for a function that is not forwarded raw. Its `Debug` shows the binding
/// names only: `Data.req.Headers` holds the caller's token.
#[derive(Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct InvokeRequest {
    #[serde(default)]
    pub data: Map<String, Value>,
    #[serde(default)]
    pub metadata: Map<String, Value>,
}

impl fmt::Debug for InvokeRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InvokeRequest")
            .field("data", &self.data.keys().collect::<Vec<_>>())
            .field("method_name", &self.method_name())
            .finish_non_exhaustive()
    }
}

impl InvokeRequest {
    /// `Metadata.sys.MethodName`, for logs.
    pub fn method_name(&self) -> Option<&str> {
        self.metadata.get("sys")?.get("MethodName")?.as_str()
    }
}

/// What the handler answers: always 2xx, `application/json`, an object with all three keys
/// (a `null` body would leave the host waiting until the function timeout).
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct InvokeResponse {
    pub outputs: Map<String, Value>,
    pub logs: Vec<String>,
    pub return_value: Value,
}

impl InvokeResponse {
    pub fn log(&mut self, line: impl Into<String>) {
        self.logs.push(line.into());
    }
    pub fn output(&mut self, binding: &str, value: Value) {
        self.outputs.insert(binding.to_owned(), value);
    }
}

impl IntoResponse for InvokeResponse {
    fn into_response(self) -> Response {
        json_response(StatusCode::OK, &self)
    }
}

/// A JSON body with `Content-Type: application/json`.
pub fn json_response<T: Serialize>(status: StatusCode, body: &T) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    let mut response = (status, bytes).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Why an invocation payload could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("the invocation has no Data.{0}")]
    MissingBinding(String),
    #[error("Data.{binding} is not an HTTP request object")]
    NotARequest { binding: String },
    #[error("the queue message is not a JSON object: {0}")]
    NotJson(String),
}

/// `Data.req` of a non-forwarded HTTP trigger (`HttpRequestExtensions.GetRequestAsJObject`).
/// Its `Debug` redacts the headers that carry credentials.
#[derive(Clone, Default)]
pub struct HttpRequestData {
    pub url: Option<String>,
    pub method: String,
    /// Query parameters (the host passes `code` along too).
    pub query: BTreeMap<String, String>,
    /// Header names in lowercase.
    pub headers: BTreeMap<String, Vec<String>>,
    /// Route parameters.
    pub params: BTreeMap<String, String>,
    /// The body as text (absent when the request had none).
    pub body: Option<String>,
}

/// Headers whose values are credentials (lowercase).
const SECRET_HEADERS: [&str; 4] = [
    "authorization",
    "x-ms-token-aad-access-token",
    "x-ms-token-aad-id-token",
    "x-functions-key",
];

impl fmt::Debug for HttpRequestData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: BTreeMap<&str, Vec<&str>> = self
            .headers
            .iter()
            .map(|(k, v)| {
                let values = if SECRET_HEADERS.contains(&k.as_str()) {
                    vec!["<redacted>"]
                } else {
                    v.iter().map(String::as_str).collect()
                };
                (k.as_str(), values)
            })
            .collect();
        let query: Vec<&str> = self.query.keys().map(String::as_str).collect();
        f.debug_struct("HttpRequestData")
            .field("method", &self.method)
            .field("query_keys", &query)
            .field("headers", &headers)
            .field("body_len", &self.body.as_ref().map(String::len))
            .finish_non_exhaustive()
    }
}

impl HttpRequestData {
    pub fn from_invocation(request: &InvokeRequest, binding: &str) -> Result<Self, ProtocolError> {
        let value = request
            .data
            .get(binding)
            .ok_or_else(|| ProtocolError::MissingBinding(binding.to_owned()))?;
        let value = unwrap_json_strings(value.clone());
        let object = value
            .as_object()
            .ok_or_else(|| ProtocolError::NotARequest {
                binding: binding.to_owned(),
            })?;
        let get = |key: &str| {
            object
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v)
        };
        let headers = match get("Headers").map(|v| unwrap_json_strings(v.clone())) {
            Some(Value::Object(map)) => map
                .into_iter()
                .map(|(k, v)| {
                    let values = match v {
                        Value::Array(items) => items.into_iter().map(value_text).collect(),
                        other => vec![value_text(other)],
                    };
                    (k.to_ascii_lowercase(), values)
                })
                .collect(),
            _ => BTreeMap::new(),
        };
        Ok(Self {
            url: get("Url").and_then(Value::as_str).map(str::to_owned),
            method: get("Method")
                .and_then(Value::as_str)
                .unwrap_or("GET")
                .to_ascii_uppercase(),
            query: string_map(get("Query")),
            headers,
            params: string_map(get("Params")),
            body: match get("Body") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(s.clone()),
                // Defensive: a host that parsed a JSON body hands over the value itself.
                Some(other) => Some(other.to_string()),
            },
        })
    }

    /// The headers as a `HeaderMap` (for the caller check); names or values that are not valid
    /// HTTP are left out.
    pub fn header_map(&self) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, values) in &self.headers {
            let Ok(name) = HeaderName::from_bytes(name.as_bytes()) else {
                continue;
            };
            for value in values {
                if let Ok(value) = HeaderValue::from_str(value) {
                    map.append(name.clone(), value);
                }
            }
        }
        map
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())?
            .first()
            .map(String::as_str)
    }

    /// A query parameter, matched case-insensitively (ASP.NET query keys are).
    pub fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// `Outputs.<res>` for an `http` output binding. Newer hosts require all four properties
/// (`HttpOutputBindingResponse`: "Output body should have 'StatusCode', 'Status', 'Body', and
/// 'Headers'"). `Body` must be the JSON value itself: a string would be sent JSON-quoted once
/// more, because the host writes it through its JSON formatter.
pub fn http_output(status: StatusCode, headers: &[(String, String)], body: &Value) -> Value {
    let mut h = Map::new();
    for (k, v) in headers {
        h.insert(k.clone(), Value::String(v.clone()));
    }
    serde_json::json!({
        "StatusCode": status.as_u16().to_string(),
        "Status": status.as_u16().to_string(),
        "Headers": h,
        "Body": body,
    })
}

/// `Data.<timer>`: what the timer trigger says about this firing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TimerInfo {
    pub is_past_due: bool,
    /// `ScheduleStatus.Last`, as sent (null when `useMonitor` is off; `0001-01-01…` on the
    /// first run; occasionally garbage — never parsed strictly).
    pub last: Option<String>,
    pub next: Option<String>,
}

impl TimerInfo {
    pub fn from_invocation(request: &InvokeRequest, binding: &str) -> Self {
        let Some(value) = request
            .data
            .get(binding)
            .map(|v| unwrap_json_strings(v.clone()))
        else {
            return Self::default();
        };
        let field = |v: &Value, key: &str| -> Option<Value> {
            v.as_object()?
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v.clone())
        };
        let status = field(&value, "ScheduleStatus").filter(|v| v.is_object());
        let text = |key: &str| {
            status
                .as_ref()
                .and_then(|s| field(s, key))
                .filter(|v| !v.is_null())
                .map(value_text)
        };
        Self {
            is_past_due: field(&value, "IsPastDue")
                .is_some_and(|v| v.as_bool().unwrap_or(false) || v.as_str() == Some("true")),
            last: text("Last"),
            next: text("Next"),
        }
    }

    /// True when `Last` is missing or the `DateTime.MinValue` the host sends before the first run.
    pub fn is_first_run(&self) -> bool {
        self.last
            .as_deref()
            .is_none_or(|l| l.starts_with("0001-01-01"))
    }
}

/// Queue trigger metadata we use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueMetadata {
    pub dequeue_count: u32,
    pub id: Option<String>,
}

impl QueueMetadata {
    pub fn from_invocation(request: &InvokeRequest) -> Self {
        let get = |key: &str| {
            request
                .metadata
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v.clone())
        };
        Self {
            dequeue_count: get("DequeueCount")
                .and_then(|v| lenient_u32(&v))
                .unwrap_or(1)
                .max(1),
            id: get("Id").map(|v| value_text(unwrap_json_strings(v))),
        }
    }
}

/// The queue message of `Data.<binding>` as a JSON value, however many times the host
/// wrapped it in a JSON string.
pub fn queue_item(request: &InvokeRequest, binding: &str) -> Result<Value, ProtocolError> {
    let value = request
        .data
        .get(binding)
        .ok_or_else(|| ProtocolError::MissingBinding(binding.to_owned()))?;
    match unwrap_json_strings(value.clone()) {
        Value::Object(map) => Ok(Value::Object(map)),
        Value::String(text) => Err(ProtocolError::NotJson(preview(&text))),
        other => Err(ProtocolError::NotJson(preview(&other.to_string()))),
    }
}

/// While `value` is a string that parses as JSON, parse it (at most three levels).
pub fn unwrap_json_strings(mut value: Value) -> Value {
    for _ in 0..3 {
        match &value {
            Value::String(text) => match serde_json::from_str::<Value>(text.trim()) {
                Ok(inner) => value = inner,
                Err(_) => break,
            },
            _ => break,
        }
    }
    value
}

fn lenient_u32(value: &Value) -> Option<u32> {
    match unwrap_json_strings(value.clone()) {
        Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A value as plain text: strings without quotes, anything else as JSON.
fn value_text(value: Value) -> String {
    match value {
        Value::String(s) => s,
        other => other.to_string(),
    }
}

fn string_map(value: Option<&Value>) -> BTreeMap<String, String> {
    match value.map(|v| unwrap_json_strings(v.clone())) {
        Some(Value::Object(map)) => map.into_iter().map(|(k, v)| (k, value_text(v))).collect(),
        _ => BTreeMap::new(),
    }
}

/// The start of a text, for error messages.
fn preview(text: &str) -> String {
    let mut p: String = text.chars().take(80).collect();
    if text.chars().count() > 80 {
        p.push('…');
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn invocation(value: Value) -> InvokeRequest {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn http_request_parses_both_query_forms_and_header_arrays() {
        // Newer hosts: Query is a string holding JSON; Identities too.
        let a = invocation(json!({
            "Data": { "req": {
                "Url": "https://app.azurewebsites.net/api/PatReport?org=fabrikam&code=k",
                "Method": "POST",
                "Query": "{\"org\":\"fabrikam\",\"code\":\"k\"}",
                "Headers": { "Content-Type": ["application/json"], "X-MS-CLIENT-PRINCIPAL-NAME": ["ada@contoso.com"] },
                "Params": {},
                "Identities": "[]",
                "Body": "{\"org\":\"fabrikam\"}"
            }},
            "Metadata": { "sys": { "MethodName": "PatReport" } }
        }));
        let r = HttpRequestData::from_invocation(&a, "req").unwrap();
        assert_eq!(r.method, "POST");
        assert_eq!(r.query("ORG"), Some("fabrikam"));
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(
            r.header("x-ms-client-principal-name"),
            Some("ada@contoso.com")
        );
        assert_eq!(r.body.as_deref(), Some("{\"org\":\"fabrikam\"}"));
        assert_eq!(a.method_name(), Some("PatReport"));
        assert_eq!(
            r.header_map()["x-ms-client-principal-name"],
            "ada@contoso.com"
        );
        // The documentation's form: Query as an object, no body.
        let b = invocation(
            json!({ "Data": { "req": { "Method": "post", "Query": { "org": "x" }, "Headers": {} } } }),
        );
        let r = HttpRequestData::from_invocation(&b, "req").unwrap();
        assert_eq!(
            (r.method.as_str(), r.query("org"), r.body.as_deref()),
            ("POST", Some("x"), None)
        );
        assert_eq!(
            HttpRequestData::from_invocation(&b, "request").unwrap_err(),
            ProtocolError::MissingBinding("request".into())
        );
    }

    #[test]
    fn debug_output_never_shows_credentials() {
        let a = invocation(json!({
            "Data": { "req": {
                "Url": "https://app.azurewebsites.net/api/PatReport?code=function-key-value",
                "Method": "POST",
                "Query": { "code": "function-key-value" },
                "Headers": { "Authorization": ["Bearer eyJ.caller.token"], "X-Functions-Key": ["k2"] },
            }}
        }));
        let r = HttpRequestData::from_invocation(&a, "req").unwrap();
        assert_eq!(
            r.header_map()["authorization"],
            "Bearer eyJ.caller.token",
            "the caller check gets the token"
        );
        for text in [format!("{a:?}"), format!("{r:?}")] {
            for secret in ["eyJ.caller.token", "function-key-value", "k2"] {
                assert!(!text.contains(secret), "{secret} in {text}");
            }
        }
    }

    #[test]
    fn timer_info_tolerates_null_status_and_min_value_dates() {
        let t = TimerInfo::from_invocation(
            &invocation(
                json!({ "Data": { "timer": { "Schedule": { "AdjustForDST": true }, "ScheduleStatus": null, "IsPastDue": true } } }),
            ),
            "timer",
        );
        assert!(t.is_past_due && t.last.is_none() && t.is_first_run());
        let t = TimerInfo::from_invocation(
            &invocation(json!({ "Data": { "timer": { "ScheduleStatus": {
                "Last": "0001-01-01T00:00:00+00:00", "Next": "2026-11-30T06:00:00+00:00", "LastUpdated": "garbage" },
                "IsPastDue": false } } })),
            "timer",
        );
        assert!(!t.is_past_due && t.is_first_run());
        assert_eq!(t.next.as_deref(), Some("2026-11-30T06:00:00+00:00"));
        assert_eq!(
            TimerInfo::from_invocation(&InvokeRequest::default(), "timer"),
            TimerInfo::default()
        );
    }

    #[test]
    fn queue_items_are_unwrapped_however_the_host_quoted_them() {
        let text = r#"{"runId":"r1","org":"fabrikam"}"#;
        let once = serde_json::to_string(text).unwrap(); // what JsonConvert.SerializeObject(string) gives
        for data in [
            json!(text),
            json!(once),
            json!({"runId":"r1","org":"fabrikam"}),
        ] {
            let v = queue_item(&invocation(json!({ "Data": { "job": data } })), "job").unwrap();
            assert_eq!(v["runId"], "r1");
        }
        let e = queue_item(
            &invocation(json!({ "Data": { "job": "not json at all" } })),
            "job",
        )
        .unwrap_err();
        assert!(e.to_string().contains("not json at all"));
    }

    #[test]
    fn queue_metadata_reads_numbers_and_quoted_strings() {
        let m = QueueMetadata::from_invocation(&invocation(
            json!({ "Metadata": { "DequeueCount": "2", "Id": "\"abc\"" } }),
        ));
        assert_eq!(
            m,
            QueueMetadata {
                dequeue_count: 2,
                id: Some("abc".into())
            }
        );
        let m = QueueMetadata::from_invocation(&invocation(
            json!({ "Metadata": { "DequeueCount": 3 } }),
        ));
        assert_eq!(m.dequeue_count, 3);
        assert_eq!(
            QueueMetadata::from_invocation(&InvokeRequest::default()).dequeue_count,
            1
        );
    }

    #[test]
    fn http_output_has_all_four_required_properties() {
        let out = http_output(
            StatusCode::ACCEPTED,
            &[("Location".into(), "/x".into())],
            &json!({"a": 1}),
        );
        assert_eq!(out["StatusCode"], "202");
        assert_eq!(out["Status"], "202");
        assert_eq!(out["Headers"]["Location"], "/x");
        assert_eq!(out["Body"]["a"], 1);
    }
}
