//! An HTTP proxy in front of a storage endpoint that can make chosen requests fail, to test
//! what the service does when storage breaks half-way (status writes work, uploads do not).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use std::sync::{Arc, Mutex};

type Rule = Box<dyn Fn(&Method, &str) -> Option<StatusCode> + Send + Sync>;

#[derive(Clone)]
struct Shared {
    upstream: String,
    http: reqwest::Client,
    rule: Arc<Mutex<Option<Rule>>>,
    failed: Arc<Mutex<Vec<String>>>,
}

pub struct FaultProxy {
    pub port: u16,
    shared: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// Forward everything to `upstream` (scheme://host:port).
    pub async fn start(upstream: &str) -> FaultProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let shared = Shared {
            upstream: upstream.trim_end_matches('/').to_owned(),
            http: reqwest::Client::new(),
            rule: Arc::new(Mutex::new(None)),
            failed: Arc::new(Mutex::new(Vec::new())),
        };
        let app = axum::Router::new()
            .fallback(forward)
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FaultProxy { port, shared, task }
    }

    /// Answer requests for which `rule` gives a status with that status instead of forwarding.
    pub fn fail_when(
        &self,
        rule: impl Fn(&Method, &str) -> Option<StatusCode> + Send + Sync + 'static,
    ) {
        *self.shared.rule.lock().unwrap() = Some(Box::new(rule));
    }

    /// The requests answered with a fault so far (`METHOD path`).
    pub fn failed(&self) -> Vec<String> {
        self.shared.failed.lock().unwrap().clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn forward(
    State(shared): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let fault = shared
        .rule
        .lock()
        .unwrap()
        .as_ref()
        .and_then(|rule| rule(&method, &path));
    if let Some(status) = fault {
        shared
            .failed
            .lock()
            .unwrap()
            .push(format!("{method} {path}"));
        let body = "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>ServerBusy</Code><Message>injected by the test proxy</Message></Error>";
        return (
            status,
            [
                ("x-ms-error-code", "ServerBusy"),
                ("content-type", "application/xml"),
            ],
            body,
        )
            .into_response();
    }
    let url = format!(
        "{}{}",
        shared.upstream,
        uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")
    );
    let mut request = shared.http.request(method, url).body(body);
    for (name, value) in &headers {
        if name != "host" && name != "content-length" {
            request = request.header(name, value);
        }
    }
    match request.send().await {
        Ok(upstream) => {
            let status = upstream.status();
            let mut out = HeaderMap::new();
            for (name, value) in upstream.headers() {
                if name != "transfer-encoding" && name != "connection" && name != "content-length" {
                    out.append(name, value.clone());
                }
            }
            let bytes = upstream.bytes().await.unwrap_or_default();
            (status, out, bytes).into_response()
        }
        Err(_) => StatusCode::BAD_GATEWAY.into_response(),
    }
}
