//! The tenant's token signing keys (`{authority}/{tenant}/discovery/v2.0/keys`), cached.
//!
//! Entra rolls its signing keys; a token signed with a key we have not seen makes us fetch the
//! set again (at most once per `refetch_after_unknown`, so a stream of forged `kid`s cannot make
//! us hammer Entra). The whole set is also refreshed once it is `max_age` old.

use jsonwebtoken::DecodingKey;
use serde::Deserialize;
use std::collections::HashMap;
use std::fmt;
use std::time::Duration;
use tokio::time::Instant;
use url::Url;

pub struct Jwks {
    url: Url,
    http: reqwest::Client,
    state: tokio::sync::Mutex<State>,
    /// The shortest time between two fetches caused by an unknown key id.
    pub refetch_after_unknown: Duration,
    /// Keys older than this are fetched again.
    pub max_age: Duration,
}

#[derive(Default)]
struct State {
    keys: HashMap<String, DecodingKey>,
    fetched: Option<Instant>,
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
        }
    }

    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The key with id `kid`: `Ok(None)` when the tenant has no such key, `Err` when the keys
    /// could not be fetched.
    pub async fn key(&self, kid: &str) -> Result<Option<DecodingKey>, String> {
        let mut state = self.state.lock().await;
        let age = state.fetched.map(|t| t.elapsed());
        let stale = age.is_none_or(|a| a >= self.max_age);
        let known = state.keys.contains_key(kid);
        let may_refetch = age.is_none_or(|a| a >= self.refetch_after_unknown);
        if stale || (!known && may_refetch) {
            match self.fetch().await {
                Ok(keys) => {
                    state.keys = keys;
                    state.fetched = Some(Instant::now());
                }
                // Old keys are better than none while Entra is unreachable.
                Err(e) if !state.keys.is_empty() => {
                    tracing::warn!("could not refresh the token signing keys: {e}");
                }
                Err(e) => return Err(e),
            }
        }
        Ok(state.keys.get(kid).cloned())
    }

    async fn fetch(&self) -> Result<HashMap<String, DecodingKey>, String> {
        let response = self.http.get(self.url.clone()).send().await.map_err(|e| {
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
        let set: KeySet = response.json().await.map_err(|e| {
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
