//! Paging of the listings, offered as page streams ([`AdoClient::users`], [`AdoClient::pats`],
//! [`AdoClient::ssh_keys`]) in the manner of `azure_core`'s pagers: the caller reads pages; the
//! tokens, the end markers and the loop guard stay in here.
//!
//! Graph users carry the continuation token in the `X-MS-ContinuationToken` response
//! header; Token Admin carries it in the body's `continuationToken`. Page sizes are the
//! server's choice and pages may be empty while still carrying a token, so only the token
//! says whether more data follows.

use super::error::AdoError;
use super::{AdoClient, AuditPage, PatsPage, SshKeysPage, TokenListing, UsersPage};
use futures::Stream;

/// The next users page token: the header's value; absent or blank means "last page".
pub fn users_continuation(header: Option<&str>) -> Option<String> {
    header
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
}

/// The next PAT page token. `null`, a missing field, `""` and the all-zero GUID all mean
/// "no more pages" (the C# sample loops while the token is neither null nor `Guid.Empty`).
pub fn pat_continuation(token: Option<String>) -> Option<String> {
    let token = token?;
    let trimmed = token.trim();
    let all_zero = trimmed.chars().all(|c| c == '0' || c == '-');
    if trimmed.is_empty() || all_zero {
        None
    } else {
        Some(trimmed.to_owned())
    }
}

/// Stops a listing whose server hands back a token it already gave (it would never end).
#[derive(Debug, Default)]
pub struct LoopGuard {
    seen: std::collections::HashSet<String>,
}

impl LoopGuard {
    pub fn check(&mut self, token: &str, what: &str) -> Result<(), AdoError> {
        if self.seen.insert(token.to_owned()) {
            Ok(())
        } else {
            Err(AdoError::Paging(format!(
                "{what}: the service returned a continuation token it had already returned; stopping to avoid an endless loop"
            )))
        }
    }
}

/// A page that says where the next one is.
trait Page {
    fn continuation(&self) -> Option<&str>;
}

impl Page for UsersPage {
    fn continuation(&self) -> Option<&str> {
        self.continuation.as_deref()
    }
}

impl Page for PatsPage {
    fn continuation(&self) -> Option<&str> {
        self.continuation.as_deref()
    }
}

impl Page for AuditPage {
    fn continuation(&self) -> Option<&str> {
        self.continuation.as_deref()
    }
}

impl Page for SshKeysPage {
    fn continuation(&self) -> Option<&str> {
        self.continuation.as_deref()
    }
}

/// Where a listing stands between two pages.
enum Next {
    First,
    After(String),
    /// The last page was yielded; this error (a broken paging contract) comes next.
    Fail(AdoError),
    Done,
}

/// The pages that `fetch(token)` returns, following each page's continuation token until
/// the last page, a failure (yielded, then the stream ends), a repeated token, or `limit`
/// pages: a listing whose tokens never repeat and never end must still end.
fn pages<'a, P, F, Fut>(
    what: &'static str,
    limit: u32,
    fetch: F,
) -> impl Stream<Item = Result<P, AdoError>> + 'a
where
    P: Page + 'a,
    F: Fn(Option<String>) -> Fut + 'a,
    Fut: Future<Output = Result<P, AdoError>> + 'a,
{
    futures::stream::unfold(
        (Next::First, LoopGuard::default(), fetch, 0u32),
        move |(next, mut guard, fetch, read)| async move {
            let token = match next {
                Next::Done => return None,
                Next::Fail(e) => return Some((Err(e), (Next::Done, guard, fetch, read))),
                Next::First => None,
                Next::After(token) => Some(token),
            };
            match fetch(token).await {
                Err(e) => Some((Err(e), (Next::Done, guard, fetch, read))),
                Ok(page) => {
                    let read = read + 1;
                    let next = match page.continuation() {
                        None => Next::Done,
                        Some(_) if read >= limit => Next::Fail(AdoError::Paging(format!(
                            "{what}: still not finished after {read} pages (the page limit); \
                             stopping, as a listing that never ends would"
                        ))),
                        Some(token) => match guard.check(token, what) {
                            Ok(()) => Next::After(token.to_owned()),
                            Err(e) => Next::Fail(e),
                        },
                    };
                    Some((Ok(page), (next, guard, fetch, read)))
                }
            }
        },
    )
}

impl AdoClient {
    /// Every page of the organization's users (`GET {org}/_apis/graph/users`), in order.
    pub fn users(&self) -> impl Stream<Item = Result<UsersPage, AdoError>> + Send + '_ {
        pages(
            "user listing",
            self.settings.page_limit,
            move |token| async move { self.users_page(token.as_deref()).await },
        )
    }

    /// Every page of one user's PATs
    /// (`GET {org}/_apis/tokenadmin/personalaccesstokens/{descriptor}`), in order.
    pub fn pats<'a>(
        &'a self,
        descriptor: &'a str,
    ) -> impl Stream<Item = Result<PatsPage, AdoError>> + Send + 'a {
        pages(
            TokenListing::Pats.listing(),
            self.settings.page_limit,
            move |token| async move { self.pats_page(descriptor, token.as_deref()).await },
        )
    }

    /// Every page of the Audit Log between `start` and `end`, newest first, under the same
    /// page limit and loop guard: each page repeats the window and passes the token the last
    /// one gave, until `hasMore` is false.
    pub fn audit_log(
        &self,
        start: time::OffsetDateTime,
        end: time::OffsetDateTime,
    ) -> impl Stream<Item = Result<AuditPage, AdoError>> + Send + '_ {
        pages(
            "audit log",
            self.settings.page_limit,
            move |token| async move { self.audit_page(start, end, token.as_deref()).await },
        )
    }

    /// Every page of one user's SSH public keys (the same listing with `isPublic=true`), in
    /// order, under the same page limit and loop guard.
    pub fn ssh_keys<'a>(
        &'a self,
        descriptor: &'a str,
    ) -> impl Stream<Item = Result<SshKeysPage, AdoError>> + Send + 'a {
        pages(
            TokenListing::SshKeys.listing(),
            self.settings.page_limit,
            move |token| async move { self.ssh_keys_page(descriptor, token.as_deref()).await },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;
    use std::sync::Mutex;

    #[test]
    fn every_pat_end_marker_ends_the_listing() {
        assert_eq!(pat_continuation(None), None);
        assert_eq!(pat_continuation(Some(String::new())), None);
        assert_eq!(
            pat_continuation(Some("00000000-0000-0000-0000-000000000000".into())),
            None
        );
        assert_eq!(
            pat_continuation(Some("5f0b2a1c-0000-4000-8000-000000000001".into())).as_deref(),
            Some("5f0b2a1c-0000-4000-8000-000000000001")
        );
    }

    #[test]
    fn users_token_absent_or_blank_is_the_last_page() {
        assert_eq!(users_continuation(None), None);
        assert_eq!(users_continuation(Some("  ")), None);
        assert_eq!(users_continuation(Some("abc")).as_deref(), Some("abc"));
    }

    #[test]
    fn a_repeated_token_is_refused() {
        let mut g = LoopGuard::default();
        g.check("a", "x").unwrap();
        g.check("b", "x").unwrap();
        assert!(matches!(g.check("a", "x"), Err(AdoError::Paging(_))));
    }

    fn page(next: Option<&str>) -> PatsPage {
        PatsPage {
            pats: Vec::new(),
            continuation: next.map(str::to_owned),
        }
    }

    /// A server that answers the tokens in `script` in turn and records what it was asked.
    async fn run(
        script: Vec<Result<PatsPage, AdoError>>,
    ) -> (Vec<Result<(), String>>, Vec<Option<String>>) {
        run_limited(script, 1000).await
    }

    async fn run_limited(
        script: Vec<Result<PatsPage, AdoError>>,
        limit: u32,
    ) -> (Vec<Result<(), String>>, Vec<Option<String>>) {
        let script = Mutex::new(script.into_iter());
        let asked = Mutex::new(Vec::new());
        let stream = pages("PAT listing", limit, |token| {
            asked.lock().unwrap().push(token);
            let next = script
                .lock()
                .unwrap()
                .next()
                .expect("asked past the script");
            async move { next }
        });
        let got = stream
            .map(|r| r.map(|_| ()).map_err(|e| e.to_string()))
            .collect::<Vec<_>>()
            .await;
        (got, asked.into_inner().unwrap())
    }

    #[tokio::test]
    async fn pages_follow_their_tokens_to_the_end() {
        let (got, asked) = run(vec![
            Ok(page(Some("a"))),
            Ok(page(Some("b"))),
            Ok(page(None)),
        ])
        .await;
        assert_eq!(got, vec![Ok(()), Ok(()), Ok(())]);
        assert_eq!(asked, vec![None, Some("a".into()), Some("b".into())]);
    }

    #[tokio::test]
    async fn a_listing_that_never_ends_stops_at_the_page_limit() {
        let endless: Vec<_> = (0..10).map(|i| Ok(page(Some(&format!("t{i}"))))).collect();
        let (got, asked) = run_limited(endless, 4).await;
        assert_eq!(got.len(), 5, "{got:?}");
        assert!(got[..4].iter().all(Result::is_ok));
        assert!(
            got[4].as_ref().unwrap_err().contains("page limit"),
            "{got:?}"
        );
        assert_eq!(asked.len(), 4, "no page past the limit is asked for");
    }

    #[tokio::test]
    async fn a_failed_page_ends_the_stream_after_its_error() {
        let (got, asked) = run(vec![
            Ok(page(Some("a"))),
            Err(AdoError::Transport("refused".into())),
        ])
        .await;
        assert_eq!(got.len(), 2);
        assert!(got[1].as_ref().unwrap_err().contains("refused"));
        assert_eq!(asked.len(), 2);
    }

    #[tokio::test]
    async fn a_repeated_token_yields_the_page_then_a_paging_error() {
        let (got, asked) = run(vec![Ok(page(Some("a"))), Ok(page(Some("a")))]).await;
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(got[0].is_ok() && got[1].is_ok());
        assert!(
            got[2].as_ref().unwrap_err().contains("already returned"),
            "{got:?}"
        );
        assert_eq!(asked.len(), 2, "the repeated token is never sent");
    }
}
