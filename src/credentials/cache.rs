//! A token cache in front of every credential.
//!
//! The Azure DevOps client asks its credential for a token on every request, so a scan of a big
//! organization asks thousands of times. The cache answers from memory until the token is close
//! to expiry, then fetches a new one (one fetch at a time; concurrent callers wait and reuse it).
//! "Close" is five minutes before expiry, or half the token's lifetime when that is shorter, so
//! short-lived tokens are also renewed before they run out in the middle of a long run.
//! azure_identity's own caches use a fixed five minutes and its `AzureCliCredential` has none,
//! which is why every mode goes through this wrapper.

use crate::entra;
use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

/// The longest we renew ahead of expiry.
const MAX_MARGIN: Duration = Duration::minutes(5);
/// A cached token still valid this long is used when a renewal fails (Entra blips).
const FALLBACK_MIN_LEFT: Duration = Duration::seconds(30);

struct Entry {
    token: AccessToken,
    renew_at: OffsetDateTime,
}

/// Tokens by scope set.
#[derive(Default)]
pub struct TokenCache {
    entries: tokio::sync::Mutex<HashMap<String, Entry>>,
}

impl fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenCache(..)")
    }
}

/// When to renew a token that expires at `expires_on`, received at `now`.
pub fn renew_at(now: OffsetDateTime, expires_on: OffsetDateTime) -> OffsetDateTime {
    let lifetime = expires_on - now;
    let margin = if lifetime <= Duration::ZERO {
        Duration::ZERO
    } else {
        std::cmp::min(lifetime / 2_i32, MAX_MARGIN)
    };
    expires_on - margin
}

impl TokenCache {
    pub fn new() -> Self {
        Self::default()
    }

    /// The cached token for `scopes`, or a new one from `fetch`.
    pub async fn get_or_fetch<F, Fut>(
        &self,
        scopes: &[&str],
        fetch: F,
    ) -> azure_core::Result<AccessToken>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = azure_core::Result<AccessToken>>,
    {
        let key = scopes.join(" ");
        // Held across the fetch on purpose: callers that arrive meanwhile wait for this fetch
        // instead of starting their own.
        let mut entries = self.entries.lock().await;
        let now = OffsetDateTime::now_utc();
        if let Some(entry) = entries.get(&key)
            && now < entry.renew_at
        {
            return Ok(entry.token.clone());
        }
        match fetch().await {
            Ok(token) => {
                let now = OffsetDateTime::now_utc();
                entries.insert(
                    key,
                    Entry {
                        renew_at: renew_at(now, token.expires_on),
                        token: token.clone(),
                    },
                );
                Ok(token)
            }
            Err(e) => match entries.get(&key) {
                Some(entry) if entry.token.expires_on - now > FALLBACK_MIN_LEFT => {
                    tracing::warn!(
                        "renewing a token failed, the current one is still valid for {}s: {e}",
                        (entry.token.expires_on - now).whole_seconds()
                    );
                    Ok(entry.token.clone())
                }
                _ => Err(e),
            },
        }
    }

    /// Store a token fetched outside [`Self::get_or_fetch`] (a first exchange done eagerly).
    pub async fn insert(&self, scopes: &[&str], token: AccessToken) {
        let now = OffsetDateTime::now_utc();
        self.entries.lock().await.insert(
            scopes.join(" "),
            Entry {
                renew_at: renew_at(now, token.expires_on),
                token,
            },
        );
    }
}

/// Any credential behind a [`TokenCache`]; failures get Entra advice added when the message
/// carries an AADSTS code.
pub struct CachedCredential {
    inner: Arc<dyn TokenCredential>,
    cache: TokenCache,
    label: &'static str,
}

impl CachedCredential {
    pub fn new(label: &'static str, inner: Arc<dyn TokenCredential>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            cache: TokenCache::new(),
            label,
        })
    }
}

impl fmt::Debug for CachedCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedCredential")
            .field("mode", &self.label)
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl TokenCredential for CachedCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        let inner = self.inner.clone();
        self.cache
            .get_or_fetch(
                scopes,
                || async move { inner.get_token(scopes, options).await },
            )
            .await
            .map_err(|e| {
                let message = crate::ado::error::error_chain(&e);
                let advice = entra::advice_in_message(&message)
                    .map(|a| format!(". {a}"))
                    .unwrap_or_default();
                azure_core::Error::with_message(
                    azure_core::error::ErrorKind::Credential,
                    format!("{} credential: {message}{advice}", self.label),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn renewal_margin_is_five_minutes_or_half_the_lifetime() {
        let now = OffsetDateTime::now_utc();
        let hour = now + Duration::hours(1);
        assert_eq!(renew_at(now, hour), hour - Duration::minutes(5));
        let short = now + Duration::seconds(4);
        assert_eq!(renew_at(now, short), now + Duration::seconds(2));
        let past = now - Duration::seconds(1);
        assert_eq!(renew_at(now, past), past);
    }

    #[tokio::test]
    async fn cached_until_renewal_then_fetched_once() {
        let cache = TokenCache::new();
        let calls = AtomicUsize::new(0);
        let fetch = |life: i64| {
            calls.fetch_add(1, Ordering::SeqCst);
            async move {
                Ok(AccessToken::new(
                    "t".to_string(),
                    OffsetDateTime::now_utc() + Duration::seconds(life),
                ))
            }
        };
        cache.get_or_fetch(&["s"], || fetch(3600)).await.unwrap();
        cache.get_or_fetch(&["s"], || fetch(3600)).await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        cache.get_or_fetch(&["other"], || fetch(0)).await.unwrap();
        cache.get_or_fetch(&["other"], || fetch(0)).await.unwrap();
        assert_eq!(
            calls.load(Ordering::SeqCst),
            3,
            "an expired token is renewed"
        );
    }

    #[tokio::test]
    async fn a_failed_renewal_keeps_a_still_valid_token() {
        let cache = TokenCache::new();
        cache
            .get_or_fetch(&["s"], || async {
                Ok(AccessToken::new(
                    "t".to_string(),
                    OffsetDateTime::now_utc() + Duration::seconds(100),
                ))
            })
            .await
            .unwrap();
        // Force renewal by asking after the renewal point: simulate with a cleared renew_at.
        cache.entries.lock().await.get_mut("s").unwrap().renew_at = OffsetDateTime::now_utc();
        let token = cache
            .get_or_fetch(&["s"], || async {
                Err(azure_core::Error::with_message(
                    azure_core::error::ErrorKind::Credential,
                    "down",
                ))
            })
            .await
            .unwrap();
        assert_eq!(token.token.secret(), "t");
    }
}
