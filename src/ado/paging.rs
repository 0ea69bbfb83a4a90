//! Paging rules of the two listings.
//!
//! Graph users carry the continuation token in the `X-MS-ContinuationToken` response
//! header; Token Admin carries it in the body's `continuationToken`. Page sizes are the
//! server's choice and pages may be empty while still carrying a token, so only the token
//! says whether more data follows.

use super::AdoClient;
use super::error::AdoError;
use crate::inventory::Pat;

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

/// Every PAT of one user, all pages followed. Returns the PATs and the number of pages read.
pub async fn list_all_pats(
    client: &AdoClient,
    descriptor: &str,
) -> Result<(Vec<Pat>, u64), AdoError> {
    let mut pats = Vec::new();
    let mut token: Option<String> = None;
    let mut guard = LoopGuard::default();
    let mut pages = 0;
    loop {
        let page = client.pats_page(descriptor, token.as_deref()).await?;
        pages += 1;
        pats.extend(page.pats);
        match page.continuation {
            Some(next) => {
                guard.check(&next, "PAT listing")?;
                token = Some(next);
            }
            None => return Ok((pats, pages)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
