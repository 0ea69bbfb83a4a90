//! A local webhook receiver for the notification tests: records every body it takes, by path.
//! `/busy` answers 429 (`Retry-After: 1`) the first time, `/refuse` always answers 400.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};

type Seen = Arc<Mutex<Vec<(String, serde_json::Value)>>>;

pub struct Receiver {
    /// `http://127.0.0.1:{port}`.
    pub url: String,
    seen: Seen,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let seen: Seen = Default::default();
        let busy = Arc::new(AtomicBool::new(true));
        let app = axum::Router::new()
            .fallback(move |State(seen): State<Seen>, uri: Uri, body: Bytes| {
                let busy = busy.clone();
                async move { take(&seen, &busy, uri.path(), &body) }
            })
            .with_state(seen.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { url, seen }
    }

    /// The bodies taken, in order, with their paths.
    pub fn seen(&self) -> Vec<(String, serde_json::Value)> {
        self.seen.lock().unwrap().clone()
    }

    /// The one body taken at `path`.
    pub fn body(&self, path: &str) -> serde_json::Value {
        let seen = self.seen();
        let mut at = seen.iter().filter(|(p, _)| p == path);
        let body = at
            .next()
            .unwrap_or_else(|| panic!("nothing posted to {path}: {seen:?}"));
        assert!(at.next().is_none(), "{path} was told twice");
        body.1.clone()
    }
}

fn take(seen: &Seen, busy: &AtomicBool, path: &str, body: &[u8]) -> Response {
    if path == "/refuse" {
        return StatusCode::BAD_REQUEST.into_response();
    }
    if path == "/busy" && busy.swap(false, Ordering::SeqCst) {
        return (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "1")]).into_response();
    }
    let value = serde_json::from_slice(body).unwrap_or(serde_json::Value::Null);
    seen.lock().unwrap().push((path.to_owned(), value));
    StatusCode::OK.into_response()
}
