//! Where notifications go: a webhook URL and the kind of payload it takes.
//!
//! A setting is a URL, optionally after `teams:`, `slack:` or `json:`; without one the kind
//! is told from the host. The URL is a secret: whoever has it can post to the channel, so
//! `Debug`, `Display` and every error show only the flavor and host.

use super::error::NotifyError;
use super::text::{is_allowed_url, is_loopback};
use serde::{Deserialize, Serialize};
use std::fmt;
use url::Url;

/// The payload a webhook takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Flavor {
    /// A Teams Workflows webhook: an Adaptive Card in a message envelope.
    Teams,
    /// A Slack incoming webhook: Block Kit blocks.
    Slack,
    /// Anything else: the notice as JSON.
    Generic,
}

impl Flavor {
    pub fn name(self) -> &'static str {
        match self {
            Flavor::Teams => "teams",
            Flavor::Slack => "slack",
            Flavor::Generic => "generic",
        }
    }

    /// The flavor a URL's host implies: Slack's webhook host, the hosts Teams Workflows and
    /// Power Automate hand out, or generic.
    pub fn from_host(host: &str) -> Flavor {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let under = |domain: &str| host.ends_with(&format!(".{domain}"));
        if host == "hooks.slack.com" {
            Flavor::Slack
        } else if under("logic.azure.com")
            || under("powerplatform.com")
            || under("webhook.office.com")
            || under("powerautomate.com")
        {
            Flavor::Teams
        } else {
            Flavor::Generic
        }
    }
}

impl fmt::Display for Flavor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One webhook to notify. Shows itself as `slack webhook at hooks.slack.com`.
#[derive(Clone, PartialEq, Eq)]
pub struct Webhook {
    flavor: Flavor,
    url: Url,
}

impl Webhook {
    /// Read a setting: `[teams:|slack:|json:]https://…`. Plain `http` only to loopback.
    pub fn parse(setting: &str) -> Result<Webhook, NotifyError> {
        let setting = setting.trim();
        if setting.is_empty() {
            return Err(NotifyError::Empty);
        }
        let (explicit, rest) = split_flavor(setting);
        let url = Url::parse(rest.trim()).map_err(NotifyError::NotAUrl)?;
        if !matches!(url.scheme(), "https" | "http") {
            return Err(NotifyError::NotHttp);
        }
        let host = url.host_str().ok_or(NotifyError::NoHost)?.to_owned();
        let flavor = explicit.unwrap_or_else(|| Flavor::from_host(&host));
        if !is_allowed_url(&url) {
            return Err(NotifyError::Insecure {
                flavor: flavor.name(),
                host,
            });
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(NotifyError::UserInfo {
                flavor: flavor.name(),
                host,
            });
        }
        Ok(Webhook { flavor, url })
    }

    pub fn flavor(&self) -> Flavor {
        self.flavor
    }

    /// The host, the one part of the URL that may be shown.
    pub fn host(&self) -> &str {
        self.url.host_str().unwrap_or("")
    }

    /// The URL to post to. Only the delivery reads it.
    pub(super) fn url(&self) -> &Url {
        &self.url
    }

    /// Whether the URL is plain http to this machine (tests).
    pub fn is_loopback(&self) -> bool {
        is_loopback(&self.url)
    }

    /// `text` with every part of the URL that may not be shown replaced: the whole URL, its
    /// path and query (also as a server might echo them, percent-decoded), and credential
    /// shapes. For error texts that come from a server or the HTTP stack.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_owned();
        let path = self.url.path();
        let mut secrets: Vec<String> = vec![self.url.as_str().to_owned()];
        if let Some(query) = self.url.query() {
            secrets.push(query.to_owned());
        }
        if path.len() > 1 {
            secrets.push(path.to_owned());
            let decoded = percent_decoded(path);
            if decoded != path {
                secrets.push(decoded);
            }
        }
        // Parts long enough to be signatures or ids, in case a server quotes one alone.
        for part in path
            .split('/')
            .chain(self.url.query().into_iter().flat_map(|q| q.split('&')))
        {
            if part.len() >= 8 {
                secrets.push(part.to_owned());
            }
        }
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        for secret in &secrets {
            if !secret.is_empty() && out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), "[REDACTED]");
            }
        }
        crate::scrub::scrub_shapes(&out)
    }
}

/// `%XX` sequences decoded (what a server logging the request path would show).
fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl fmt::Display for Webhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} webhook at {}", self.flavor, self.host())
    }
}

impl fmt::Debug for Webhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Webhook({self})")
    }
}

/// `teams:`, `slack:`, `json:` (or `generic:`) before the URL, in any case.
fn split_flavor(setting: &str) -> (Option<Flavor>, &str) {
    let prefixes = [
        ("teams:", Flavor::Teams),
        ("slack:", Flavor::Slack),
        ("json:", Flavor::Generic),
        ("generic:", Flavor::Generic),
    ];
    for (prefix, flavor) in prefixes {
        if let Some(head) = setting.get(..prefix.len())
            && head.eq_ignore_ascii_case(prefix)
        {
            return (Some(flavor), &setting[prefix.len()..]);
        }
    }
    (None, setting)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "secret-signature-XYZ";

    #[test]
    fn the_flavor_comes_from_the_prefix_or_the_host() {
        let cases = [
            ("https://hooks.slack.com/services/T/B/x", Flavor::Slack),
            (
                "https://prod-01.westeurope.logic.azure.com/workflows/x",
                Flavor::Teams,
            ),
            (
                "https://default1a.ab.environment.api.powerplatform.com/x",
                Flavor::Teams,
            ),
            (
                "https://contoso.webhook.office.com/webhookb2/x",
                Flavor::Teams,
            ),
            ("https://eu.api.powerautomate.com/x", Flavor::Teams),
            ("https://example.com/hook", Flavor::Generic),
            // Look-alikes are not the service.
            ("https://hooks.slack.com.evil.example/x", Flavor::Generic),
            ("https://evillogic.azure.com/x", Flavor::Generic),
            ("https://logic.azure.com.evil.example/x", Flavor::Generic),
            ("slack:https://example.com/x", Flavor::Slack),
            ("TEAMS:https://example.com/x", Flavor::Teams),
            ("json:https://hooks.slack.com/x", Flavor::Generic),
            (" teams: https://example.com/x ", Flavor::Teams),
        ];
        for (setting, flavor) in cases {
            let hook = Webhook::parse(setting).unwrap_or_else(|e| panic!("{setting}: {e}"));
            assert_eq!(hook.flavor(), flavor, "{setting}");
        }
    }

    #[test]
    fn https_is_required_except_to_loopback() {
        for ok in [
            "http://127.0.0.1:9/x",
            "http://[::1]:9/x",
            "http://localhost:9/x",
            "https://example.com/x",
        ] {
            assert!(Webhook::parse(ok).is_ok(), "{ok}");
        }
        let insecure = Webhook::parse(&format!("slack:http://example.com/{SECRET}?sig=abc"));
        assert_eq!(
            insecure,
            Err(NotifyError::Insecure {
                flavor: "slack",
                host: "example.com".into()
            })
        );
        for bad in [
            "",
            "  ",
            "not a url",
            "ftp://example.com/x",
            "teams:",
            "mailto:a@b.c",
        ] {
            assert!(Webhook::parse(bad).is_err(), "{bad}");
        }
        assert!(matches!(
            Webhook::parse(&format!("https://u:{SECRET}@example.com/")),
            Err(NotifyError::UserInfo { .. })
        ));
    }

    #[test]
    fn the_url_never_shows() {
        let setting = format!("https://hooks.slack.com/services/{SECRET}?token=tok-{SECRET}");
        let hook = Webhook::parse(&setting).unwrap();
        for shown in [format!("{hook}"), format!("{hook:?}")] {
            assert!(
                !shown.contains(SECRET) && !shown.contains("services"),
                "{shown}"
            );
        }
        assert_eq!(hook.to_string(), "slack webhook at hooks.slack.com");
        // Errors of bad settings do not quote them either.
        for bad in [
            format!("http://example.com/{SECRET}"),
            format!("https://u:{SECRET}@example.com/{SECRET}"),
            format!("ftp://example.com/{SECRET}"),
            format!("https://example.com:99999/{SECRET}"),
            SECRET.to_string(),
        ] {
            let err = Webhook::parse(&bad).unwrap_err();
            assert!(!format!("{err} {err:?}").contains(SECRET), "{err}");
        }
        let echoed = format!(
            "error for url ({setting}): bad path /services/{SECRET} and {SECRET} and token=tok-{SECRET}"
        );
        let clean = hook.redact(&echoed);
        assert!(!clean.contains(SECRET), "{clean}");
    }
}
