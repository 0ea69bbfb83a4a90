//! Posting a notice to its webhooks. Delivery is best effort and bounded: each webhook gets a
//! few attempts within one deadline, slow or failing ones are given up on, and nothing here
//! returns an error, so a notification can never fail or hold up the report it announces.
//! What happened is an [`Outcome`] per webhook, for the run status and the log.

use super::format::payload;
use super::notice::Notice;
use super::text::clean;
use super::webhook::{Flavor, Webhook};
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::time::Duration;

/// How hard to try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per webhook, the first included (at least one is made).
    pub attempts: u32,
    /// Time for all attempts and pauses of a delivery, from its start.
    pub deadline: Duration,
    /// The pause after the first failure; it doubles after each further one.
    pub first_backoff: Duration,
    pub max_backoff: Duration,
    /// The longest `Retry-After` obeyed; a longer one is waited for only this long.
    pub max_retry_after: Duration,
    /// The longest one attempt may take.
    pub attempt_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 4,
            deadline: Duration::from_secs(60),
            first_backoff: Duration::from_secs(2),
            max_backoff: Duration::from_secs(20),
            max_retry_after: Duration::from_secs(30),
            attempt_timeout: Duration::from_secs(20),
        }
    }
}

impl RetryPolicy {
    /// The pause after failed attempt `attempt` (counted from 1) when the answer named none.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(31));
        self.first_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }

    /// The pause before the next attempt: a `Retry-After` the answer sent (capped), or the
    /// back-off.
    pub fn pause(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        retry_after.map_or_else(
            || self.backoff(attempt),
            |asked| asked.min(self.max_retry_after),
        )
    }
}

/// What became of one webhook. `target` and `error` never contain the URL's path or query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// `slack webhook at hooks.slack.com`.
    pub target: String,
    pub flavor: Flavor,
    pub delivered: bool,
    pub attempts: u32,
    /// The HTTP status of the last answer, if any came.
    pub last_status: Option<u16>,
    /// Why it was not delivered.
    pub error: Option<String>,
}

/// The HTTP client notifications use: rustls, and no redirects (a webhook that redirects is
/// refused rather than followed to wherever it points, with the notice).
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(std::time::Duration::from_secs(10))
        .build()
        // Building fails only if the TLS backend cannot start; a plain client still works.
        .unwrap_or_default()
}

/// Post `notice` to every webhook at once, each in its flavor's payload, retrying 408, 429,
/// 5xx and failed connections within `policy`. One outcome per webhook, in order.
pub async fn deliver(
    client: &reqwest::Client,
    hooks: &[Webhook],
    notice: &Notice,
    policy: &RetryPolicy,
) -> Vec<Outcome> {
    deliver_with(client, hooks, notice, policy, &TokioClock::start()).await
}

/// Time as the retry loop sees it. Production uses tokio's; the tests against a real socket
/// use one that records pauses instead of taking them.
pub(super) trait Clock: Sync {
    /// Time since the delivery started.
    fn elapsed(&self) -> Duration;
    fn sleep(&self, pause: Duration) -> impl Future<Output = ()> + Send;
    /// `work`'s result, or `None` when it takes longer than `limit`.
    fn within<F>(&self, limit: Duration, work: F) -> impl Future<Output = Option<F::Output>> + Send
    where
        F: Future + Send,
        F::Output: Send;
}

pub(super) struct TokioClock(tokio::time::Instant);

impl TokioClock {
    pub(super) fn start() -> Self {
        Self(tokio::time::Instant::now())
    }
}

impl Clock for TokioClock {
    fn elapsed(&self) -> Duration {
        self.0.elapsed()
    }

    fn sleep(&self, pause: Duration) -> impl Future<Output = ()> + Send {
        tokio::time::sleep(pause)
    }

    async fn within<F>(&self, limit: Duration, work: F) -> Option<F::Output>
    where
        F: Future + Send,
        F::Output: Send,
    {
        tokio::time::timeout(limit, work).await.ok()
    }
}

pub(super) async fn deliver_with<C: Clock>(
    client: &reqwest::Client,
    hooks: &[Webhook],
    notice: &Notice,
    policy: &RetryPolicy,
    clock: &C,
) -> Vec<Outcome> {
    let each = hooks
        .iter()
        .map(|hook| deliver_one(client, hook, notice, policy, clock));
    futures::future::join_all(each).await
}

/// The most of an answer's body read (for the error text; webhooks answer briefly).
const MAX_BODY_BYTES: usize = 4096;
/// The most of an answer's body or a transport error quoted.
const MAX_DETAIL_CHARS: usize = 200;

struct Answer {
    status: u16,
    retry_after: Option<Duration>,
    body: String,
}

async fn deliver_one<C: Clock>(
    client: &reqwest::Client,
    hook: &Webhook,
    notice: &Notice,
    policy: &RetryPolicy,
    clock: &C,
) -> Outcome {
    let body = serde_json::to_vec(&payload(hook.flavor(), notice)).unwrap_or_default();
    let mut outcome = Outcome {
        target: hook.to_string(),
        flavor: hook.flavor(),
        delivered: false,
        attempts: 0,
        last_status: None,
        error: None,
    };
    let attempts = policy.attempts.max(1);
    let mut problem = String::new();
    loop {
        let left = policy.deadline.saturating_sub(clock.elapsed());
        if left.is_zero() {
            problem = format!(
                "{problem}; the {}s deadline passed",
                policy.deadline.as_secs()
            );
            break;
        }
        let limit = policy.attempt_timeout.min(left);
        outcome.attempts += 1;
        let retry_after = match clock.within(limit, post(client, hook, body.clone())).await {
            Some(Ok(answer)) => {
                outcome.last_status = Some(answer.status);
                if (200..300).contains(&answer.status) {
                    outcome.delivered = true;
                    break;
                }
                problem = status_problem(hook, &answer);
                if !retryable(answer.status) {
                    outcome.error = Some(format!("refused: {problem}"));
                    log(&outcome);
                    return outcome;
                }
                answer.retry_after
            }
            Some(Err(err)) => {
                problem = hook.redact(&describe(&err));
                None
            }
            None => {
                problem = format!("no answer within {} s", limit.as_secs_f32());
                None
            }
        };
        if outcome.attempts >= attempts {
            break;
        }
        let pause = policy.pause(outcome.attempts, retry_after);
        if clock.elapsed() + pause >= policy.deadline {
            problem = format!(
                "{problem}; no time left for another attempt within the {}s deadline",
                policy.deadline.as_secs()
            );
            break;
        }
        tracing::debug!(
            webhook = %hook,
            attempt = outcome.attempts,
            pause_ms = pause.as_millis() as u64,
            problem = %problem,
            "notification not delivered yet; retrying"
        );
        clock.sleep(pause).await;
    }
    if !outcome.delivered {
        let tries = if outcome.attempts == 1 {
            "attempt"
        } else {
            "attempts"
        };
        outcome.error = Some(format!(
            "gave up after {} {tries}: {}",
            outcome.attempts,
            problem.trim_start_matches("; ")
        ));
    }
    log(&outcome);
    outcome
}

fn log(outcome: &Outcome) {
    match &outcome.error {
        None => tracing::info!(
            webhook = %outcome.target,
            attempts = outcome.attempts,
            "notification delivered"
        ),
        Some(error) => tracing::warn!(
            webhook = %outcome.target,
            attempts = outcome.attempts,
            status = ?outcome.last_status,
            error = %error,
            "notification not delivered"
        ),
    }
}

/// Worth another attempt: the server timed out, asked us to slow down, or failed.
fn retryable(status: u16) -> bool {
    matches!(status, 408 | 429 | 500..=599)
}

async fn post(
    client: &reqwest::Client,
    hook: &Webhook,
    body: Vec<u8>,
) -> Result<Answer, reqwest::Error> {
    let mut response = client
        .post(hook.url().clone())
        .header(CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await?;
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_retry_after);
    // The body only explains a refusal; a broken one is no reason to fail the attempt.
    let mut bytes = Vec::new();
    while bytes.len() < MAX_BODY_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            _ => break,
        }
    }
    bytes.truncate(MAX_BODY_BYTES);
    Ok(Answer {
        status,
        retry_after,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    })
}

/// `HTTP 400: invalid_payload`, the body cleaned, cut and redacted.
fn status_problem(hook: &Webhook, answer: &Answer) -> String {
    let detail = hook.redact(&clean(&answer.body, MAX_DETAIL_CHARS));
    if detail.is_empty() {
        format!("HTTP {}", answer.status)
    } else {
        format!("HTTP {}: {detail}", answer.status)
    }
}

/// A transport error without its URL: what failed, and the causes below it.
fn describe(err: &reqwest::Error) -> String {
    let what = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "could not connect"
    } else {
        "the request failed"
    };
    let mut text = what.to_owned();
    // reqwest's own message quotes the URL; its causes (hyper, the socket) do not, and are
    // redacted anyway.
    let mut cause = std::error::Error::source(err);
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    clean(&text, MAX_DETAIL_CHARS)
}

/// `Retry-After` in seconds (whole or decimal). An HTTP date is not read: the back-off applies.
fn parse_retry_after(value: &str) -> Option<Duration> {
    let secs: f64 = value.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(86_400.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap_and_retry_after_is_capped() {
        let p = RetryPolicy::default();
        let secs = |d: Duration| d.as_secs();
        assert_eq!(
            (1..=6).map(|a| secs(p.backoff(a))).collect::<Vec<_>>(),
            [2, 4, 8, 16, 20, 20]
        );
        assert_eq!(p.backoff(u32::MAX), p.max_backoff);
        assert_eq!(
            p.pause(1, Some(Duration::from_secs(7))),
            Duration::from_secs(7)
        );
        assert_eq!(
            p.pause(1, Some(Duration::from_secs(3600))),
            p.max_retry_after
        );
        assert_eq!(p.pause(3, None), Duration::from_secs(8));
    }

    #[test]
    fn retry_after_reads_seconds_only() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after(" 0.5 "), Some(Duration::from_millis(500)));
        assert_eq!(
            parse_retry_after("1e300"),
            Some(Duration::from_secs(86_400))
        );
        for bad in ["soon", "-1", "NaN", "inf", "Fri, 31 Dec 9999 23:59:59 GMT"] {
            assert_eq!(parse_retry_after(bad), None, "{bad}");
        }
    }

    #[test]
    fn only_timeouts_throttling_and_server_errors_are_retried() {
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(retryable(s), "{s}");
        }
        for s in [400, 401, 403, 404, 410, 413, 301] {
            assert!(!retryable(s), "{s}");
        }
    }
}
