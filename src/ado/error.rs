//! Errors of the Azure DevOps layer, each with enough context to act on.

/// What went wrong talking to Azure DevOps.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AdoError {
    /// The credential was refused, including the answers that look like success
    /// (203 sign-in page, a redirect to `_signin`, HTML where JSON was expected).
    #[error("authentication failed: {detail}. {hint}")]
    Authentication {
        status: u16,
        detail: String,
        hint: &'static str,
    },
    /// Azure DevOps answered with an error status; `message` and `type_key` come from its
    /// error body when it sent one.
    #[error("Azure DevOps answered HTTP {status}{}: {message}", type_key.as_deref().map(|k| format!(" ({k})")).unwrap_or_default())]
    Service {
        status: u16,
        type_key: Option<String>,
        message: String,
    },
    /// A 2xx body that could not be read as the documented shape.
    #[error("could not read the answer of {what}: {detail}")]
    Decode { what: &'static str, detail: String },
    /// No answer: connection refused, DNS, TLS, timeout (after retries).
    #[error("could not reach Azure DevOps: {0}")]
    Transport(String),
    /// The host cannot be reached at all before a scan starts (name does not resolve,
    /// connection refused): said at once rather than after minutes of retries.
    #[error("could not reach Azure DevOps: {0}")]
    Unreachable(String),
    /// A token could not be obtained from the configured credential.
    #[error("could not get an access token: {0}")]
    Credential(String),
    /// The service broke the paging contract (for example a continuation token that repeats).
    #[error("paging error: {0}")]
    Paging(String),
    /// Bad client configuration (for example an unparsable base URL).
    #[error("invalid Azure DevOps client setting: {0}")]
    Config(String),
}

/// Advice shown with every authentication failure: the usual causes, in order.
pub const AUTH_HINT: &str = "Check that the credential has not expired, that a PAT has the scopes \
    'Graph (read)' and 'Token administration' (vso.graph, vso.tokenadministration) for this organization, \
    and that its owner (or the identity) is a Project Collection Administrator";

impl AdoError {
    /// The HTTP status of the answer behind this error, if there was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            AdoError::Authentication { status, .. } | AdoError::Service { status, .. } => {
                Some(*status)
            }
            _ => None,
        }
    }

    /// Worth trying again later: no answer, throttling, a server-side error, or a token
    /// endpoint that hiccuped. A refused credential, a malformed answer, a broken paging
    /// contract or a bad setting stay as they are until someone changes something.
    pub fn is_transient(&self) -> bool {
        match self {
            AdoError::Transport(_) | AdoError::Unreachable(_) => true,
            // A managed identity endpoint can hiccup; a PAT never produces this.
            AdoError::Credential(_) => true,
            AdoError::Service { status, .. } => {
                *status == 408 || *status == 429 || *status >= 500 || self.is_throttling()
            }
            AdoError::Authentication { .. }
            | AdoError::Decode { .. }
            | AdoError::Paging(_)
            | AdoError::Config(_) => false,
        }
    }

    /// The service refused for usage, not permission: a 429, or any answer (a 403 too) whose
    /// body says the request was blocked (`TF400733`, `RequestBlockedException`).
    pub fn is_throttling(&self) -> bool {
        match self {
            AdoError::Service {
                status,
                type_key,
                message,
            } => {
                *status == 429
                    || type_key.as_deref() == Some("RequestBlockedException")
                    || message.contains("TF400733")
            }
            _ => false,
        }
    }

    pub fn is_authentication(&self) -> bool {
        matches!(
            self,
            AdoError::Authentication { .. } | AdoError::Credential(_)
        )
    }

    /// The same error with every text in it scrubbed of credentials (`scrub`): messages of
    /// the service can echo what it was sent.
    pub fn scrubbed(self, scrubber: &crate::scrub::Scrubber) -> Self {
        let s = |text: String| scrubber.scrub(&text);
        match self {
            AdoError::Authentication {
                status,
                detail,
                hint,
            } => AdoError::Authentication {
                status,
                detail: s(detail),
                hint,
            },
            AdoError::Service {
                status,
                type_key,
                message,
            } => AdoError::Service {
                status,
                type_key: type_key.map(s),
                message: s(message),
            },
            AdoError::Decode { what, detail } => AdoError::Decode {
                what,
                detail: s(detail),
            },
            AdoError::Transport(t) => AdoError::Transport(s(t)),
            AdoError::Unreachable(t) => AdoError::Unreachable(s(t)),
            AdoError::Credential(t) => AdoError::Credential(s(t)),
            AdoError::Paging(t) => AdoError::Paging(s(t)),
            AdoError::Config(t) => AdoError::Config(s(t)),
        }
    }

    /// Map an `azure_core` error coming out of a pipeline to this layer's error.
    ///
    /// Our own policies put an `AdoError` inside the `azure_core::Error`; everything else
    /// is classified by its kind.
    pub fn from_core(err: azure_core::Error, what: &'static str) -> Self {
        use azure_core::error::ErrorKind;
        if let Some(inner) = find_ado_error(&err) {
            return inner.clone();
        }
        match err.kind() {
            ErrorKind::HttpResponse {
                status, error_code, ..
            } => AdoError::Service {
                status: u16::from(*status),
                type_key: error_code.clone(),
                message: err.to_string(),
            },
            ErrorKind::DataConversion => AdoError::Decode {
                what,
                detail: err.to_string(),
            },
            ErrorKind::Credential => AdoError::Credential(error_chain(&err)),
            ErrorKind::Io | ErrorKind::Connection => AdoError::Transport(error_chain(&err)),
            _ if error_chain(&err).contains("get bearer token") => {
                AdoError::Credential(error_chain(&err))
            }
            _ => AdoError::Transport(error_chain(&err)),
        }
    }
}

/// Find an `AdoError` anywhere in the source chain of an error.
fn find_ado_error<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a AdoError> {
    let mut current: Option<&'a (dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = current {
        if let Some(ado) = e.downcast_ref::<AdoError>() {
            return Some(ado);
        }
        current = e.source();
    }
    None
}

/// The messages of an error and its sources, joined: the top message alone is often
/// only "failed to execute request".
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![err.to_string()];
    let mut current = err.source();
    while let Some(e) = current {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        current = e.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_failures_that_can_pass_are_transient() {
        let service = |status| AdoError::Service {
            status,
            type_key: None,
            message: String::new(),
        };
        assert!(AdoError::Transport("refused".into()).is_transient());
        assert!(service(503).is_transient() && service(429).is_transient());
        assert!(service(408).is_transient());
        assert!(!service(400).is_transient() && !service(404).is_transient());
        assert!(
            !AdoError::Authentication {
                status: 401,
                detail: String::new(),
                hint: ""
            }
            .is_transient()
        );
        assert!(!AdoError::Paging("loop".into()).is_transient());
    }

    #[test]
    fn a_403_that_says_the_request_was_blocked_is_throttling() {
        let blocked = AdoError::Service {
            status: 403,
            type_key: Some("RequestBlockedException".into()),
            message: "TF400733: The request has been canceled".into(),
        };
        assert!(blocked.is_throttling() && blocked.is_transient());
        let denied = AdoError::Service {
            status: 403,
            type_key: Some("UnauthorizedRequestException".into()),
            message: "TF400813: not authorized".into(),
        };
        assert!(!denied.is_throttling() && !denied.is_transient());
    }
}
