//! The tenant's token signing keys (`{authority}/{tenant}/discovery/v2.0/keys`), cached.
//!
//! Entra rolls its signing keys; a token signed with a key we have not seen makes us fetch the
//! set again (at most once per `refetch_after_unknown`, so a stream of forged `kid`s cannot make
//! us hammer Entra). The whole set is also refreshed once it is `max_age` old.
//!
//! While the endpoint is down, callers must still get an answer quickly: one fetch at a time
//! (callers that arrive meanwhile wait for it rather than start their own), a short timeout
//! ([`FETCH_TIMEOUT`]), the last good keys kept, and a failure remembered for
//! `retry_failed_after`, during which callers are answered at once from what is known.

use jsonwebtoken::DecodingKey;
use serde::Deserialize;
use std::collections::HashMap;
use std::fmt;
use std::time::Duration;
use tokio::time::Instant;
use url::Url;

/// How long one fetch of the keys may take.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

pub struct Jwks {
    url: Url,
    http: reqwest::Client,
    state: tokio::sync::Mutex<State>,
    /// The shortest time between two fetches caused by an unknown key id.
    pub refetch_after_unknown: Duration,
    /// Keys older than this are fetched again.
    pub max_age: Duration,
    /// After a failed fetch, no other is tried for this long.
    pub retry_failed_after: Duration,
}

#[derive(Default)]
struct State {
    keys: HashMap<String, DecodingKey>,
    fetched: Option<Instant>,
    /// The last failed fetch: when, and why.
    failed: Option<(Instant, String)>,
}

impl fmt::Debug for Jwks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Jwks")
            .field("url", &self.url.as_str())
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct KeySet {
    #[serde(default)]
    keys: Vec<RawKey>,
}

#[derive(Deserialize)]
struct RawKey {
    #[serde(default)]
    kty: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default, rename = "use")]
    usage: Option<String>,
    #[serde(default)]
    n: Option<String>,
    #[serde(default)]
    e: Option<String>,
}

impl Jwks {
    pub fn new(url: Url, http: reqwest::Client) -> Self {
        Self {
            url,
            http,
            state: tokio::sync::Mutex::new(State::default()),
            refetch_after_unknown: Duration::from_secs(60),
            max_age: Duration::from_secs(24 * 3600),
            retry_failed_after: Duration::from_secs(30),
        }
    }

    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The key with id `kid`: `Ok(None)` when the tenant has no such key, `Err` when the keys
    /// could not be fetched.
    pub async fn key(&self, kid: &str) -> Result<Option<DecodingKey>, String> {
        // Held across the fetch: one fetch at a time, and its outcome is what waiters see.
        let mut state = self.state.lock().await;
        let age = state.fetched.map(|t| t.elapsed());
        let stale = age.is_none_or(|a| a >= self.max_age);
        let known = state.keys.contains_key(kid);
        let may_refetch = age.is_none_or(|a| a >= self.refetch_after_unknown);
        let recent_failure = state
            .failed
            .as_ref()
            .filter(|(at, _)| at.elapsed() < self.retry_failed_after)
            .map(|(_, why)| why.clone());
        if stale || (!known && may_refetch) {
            let fetched = match recent_failure {
                Some(why) => Err(why),
                None => self.fetch().await,
            };
            match fetched {
                Ok(keys) => {
                    state.keys = keys;
                    state.fetched = Some(Instant::now());
                    state.failed = None;
                }
                Err(e) => {
                    if state.failed.is_none() {
                        tracing::warn!("could not fetch the token signing keys: {e}");
                    }
                    if state.failed.as_ref().is_none_or(|(_, why)| *why != e) {
                        state.failed = Some((Instant::now(), e.clone()));
                    }
                    // Old keys are better than none while Entra is unreachable.
                    if state.keys.is_empty() {
                        return Err(e);
                    }
                }
            }
        }
        Ok(state.keys.get(kid).cloned())
    }

    async fn fetch(&self) -> Result<HashMap<String, DecodingKey>, String> {
        let response = self
            .http
            .get(self.url.clone())
            .timeout(FETCH_TIMEOUT)
            .send()
            .await
            .map_err(|e| {
                format!(
                    "could not fetch the token signing keys from {}: {}",
                    self.url,
                    crate::ado::error::error_chain(&e)
                )
            })?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!(
                "the token signing keys at {} answered HTTP {status}",
                self.url
            ));
        }
        let body = tokio::time::timeout(FETCH_TIMEOUT, response.bytes())
            .await
            .map_err(|_| {
                format!(
                    "the token signing keys at {} did not arrive in time",
                    self.url
                )
            })?
            .map_err(|e| format!("could not read the token signing keys at {}: {e}", self.url))?;
        let set: KeySet = serde_json::from_slice(&body).map_err(|e| {
            format!(
                "the token signing keys at {} are not a JWKS ({e})",
                self.url
            )
        })?;
        let mut keys = HashMap::new();
        for key in set.keys {
            if key.kty != "RSA" || key.usage.as_deref().is_some_and(|u| u != "sig") {
                continue;
            }
            let (Some(kid), Some(n), Some(e)) = (key.kid, key.n, key.e) else {
                continue;
            };
            match DecodingKey::from_rsa_components(&n, &e) {
                Ok(decoding) => {
                    keys.insert(kid, decoding);
                }
                Err(err) => tracing::warn!("skipping signing key {kid}: {err}"),
            }
        }
        if keys.is_empty() {
            return Err(format!("no RSA signing keys at {}", self.url));
        }
        Ok(keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A keys endpoint that accepts connections and never answers.
    async fn hanging_endpoint() -> (Url, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = Url::parse(&format!("http://{}/keys", listener.local_addr().unwrap())).unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                held.push(socket);
            }
        });
        (url, accepted)
    }

    #[tokio::test(start_paused = true)]
    async fn an_outage_answers_every_waiting_caller_within_seconds() {
        let (url, accepted) = hanging_endpoint().await;
        let jwks = Jwks::new(url, reqwest::Client::new());
        let started = Instant::now();
        let call = || async {
            let answer = jwks.key("kid").await;
            (answer, started.elapsed())
        };
        let (a, b, c) = tokio::join!(call(), call(), call());
        for (answer, elapsed) in [a, b, c] {
            assert!(answer.is_err(), "no keys, no answer but an error");
            assert!(
                elapsed <= Duration::from_secs(10),
                "answered after {elapsed:?}"
            );
        }
        // One fetch for all three; the failure is remembered for the next caller too.
        assert!(accepted.load(Ordering::SeqCst) <= 1);
        let (answer, _) = call().await;
        assert!(answer.is_err());
        assert!(
            accepted.load(Ordering::SeqCst) <= 1,
            "no new fetch right after a failure"
        );
    }
}
