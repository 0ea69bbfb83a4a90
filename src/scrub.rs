//! Scrubbing credentials out of text that came from a service or an error, before it reaches
//! a log, a run status or a report (which are shared through links). A server or proxy that
//! echoes the request's `Authorization` header into its error body must not put the PAT into
//! the Errors sheet.
//!
//! Two layers: the exact secrets in use (the PAT, and its `Basic` form, plain and base64), and
//! the shapes of credentials whatever they are (`Basic …`, `Bearer …`, JSON Web Tokens, SAS
//! `sig=` values).

use crate::secret::Secret;
use base64::Engine as _;

const REDACTED: &str = "[REDACTED]";

/// Removes credentials from text.
#[derive(Clone, Default)]
pub struct Scrubber {
    /// Exact values to remove, longest first.
    secrets: Vec<String>,
}

impl std::fmt::Debug for Scrubber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Scrubber({} secrets)", self.secrets.len())
    }
}

impl Scrubber {
    /// One that knows `pat`, as sent (`Basic base64(":" + pat)`) and as itself.
    pub fn for_pat(pat: &Secret) -> Self {
        let pat = pat.expose();
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut secrets = vec![
            pat.to_owned(),
            b64.encode(format!(":{pat}")),
            b64.encode(pat),
        ];
        secrets.retain(|s| s.len() >= 4);
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Self { secrets }
    }

    /// `text` without the known secrets and without anything shaped like a credential.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), REDACTED);
            }
        }
        scrub_shapes(&out)
    }
}

/// Anything shaped like a credential: the value after `Basic ` or `Bearer `, a JSON Web Token
/// (`eyJ….….…`), a SAS signature.
pub fn scrub_shapes(text: &str) -> String {
    let text = after_scheme(text, "basic ");
    let text = after_scheme(&text, "bearer ");
    let text = jwts(&text);
    crate::storage::sas::redact_sas(&text)
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=' | '-' | '_' | '.' | '~')
}

/// Replace the token that follows `scheme` (any case).
fn after_scheme(text: &str, scheme: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut from = 0;
    while let Some(i) = lower[from..].find(scheme) {
        let start = from + i + scheme.len();
        let len: usize = text[start..]
            .chars()
            .take_while(|c| is_token_char(*c))
            .map(char::len_utf8)
            .sum();
        out.push_str(&text[from..start]);
        if len >= 8 {
            out.push_str(REDACTED);
        } else {
            out.push_str(&text[start..start + len]);
        }
        from = start + len;
    }
    out.push_str(&text[from..]);
    out
}

/// Replace JSON Web Tokens: `eyJ` and three dot-separated base64url parts.
fn jwts(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut from = 0;
    while let Some(i) = text[from..].find("eyJ") {
        let start = from + i;
        let len: usize = text[start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            .map(char::len_utf8)
            .sum();
        let candidate = &text[start..start + len];
        out.push_str(&text[from..start]);
        if candidate.matches('.').count() >= 2 && len >= 20 {
            out.push_str(REDACTED);
        } else {
            out.push_str(candidate);
        }
        from = start + len.max(3);
    }
    out.push_str(&text[from..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pat_and_its_basic_form_are_removed() {
        let pat = Secret::new("abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmn");
        let scrubber = Scrubber::for_pat(&pat);
        let basic = base64::engine::general_purpose::STANDARD.encode(format!(":{}", pat.expose()));
        let echoed = format!(
            "400: bad request; you sent Authorization: Basic {basic} and token={} and x{basic}y",
            pat.expose()
        );
        let clean = scrubber.scrub(&echoed);
        assert!(
            !clean.contains(pat.expose()) && !clean.contains(&basic),
            "{clean}"
        );
        assert!(clean.starts_with("400: bad request; you sent Authorization: Basic [REDACTED]"));
    }

    #[test]
    fn credential_shapes_are_removed_whatever_they_are() {
        let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl";
        let text = format!(
            "bearer {jwt}; BEARER abcdefghijkl; token {jwt}; https://a/b?sv=1&sig=SECRETSIG&x=1; Basic QWxhZGRpbjpvcGVu"
        );
        let clean = scrub_shapes(&text);
        for leaked in [jwt, "abcdefghijkl", "SECRETSIG", "QWxhZGRpbjpvcGVu"] {
            assert!(!clean.contains(leaked), "{leaked} in {clean}");
        }
        // Ordinary words after the scheme names stay.
        assert_eq!(scrub_shapes("Basic auth failed"), "Basic auth failed");
        assert_eq!(scrub_shapes("no token here: eyJ"), "no token here: eyJ");
    }
}
