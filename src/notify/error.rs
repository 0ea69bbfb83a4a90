//! Errors of setting up a webhook. A webhook URL is a secret (its path or query carries the
//! signature that lets anyone post), so no message quotes it: at most the flavor and host.

/// Why a webhook setting cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotifyError {
    #[error("the notification webhook setting is empty")]
    Empty,
    /// The parser's reason names the problem, never the input.
    #[error("the notification webhook is not a URL ({0})")]
    NotAUrl(url::ParseError),
    #[error(
        "the notification webhook must be an https URL, optionally after teams:, slack: or json:"
    )]
    NotHttp,
    #[error("the notification webhook has no host")]
    NoHost,
    #[error(
        "the {flavor} webhook at {host} must use https (plain http only to this machine, for tests)"
    )]
    Insecure { flavor: &'static str, host: String },
    #[error(
        "the {flavor} webhook at {host} carries a user name or password; webhooks sign their URL instead"
    )]
    UserInfo { flavor: &'static str, host: String },
}
