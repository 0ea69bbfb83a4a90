//! Errors of the storage layer. Messages are built from the error's kind and status only:
//! the SDK's own texts can quote request URLs, and a URL here may carry a SAS signature.

use super::sas::redact_sas;
use azure_core::error::ErrorKind;

/// What went wrong with the report storage.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StorageError {
    /// No answer: connection refused, DNS, TLS, timeout (after the client's retries).
    #[error("report storage is unreachable while trying to {action}: {detail}")]
    Unreachable { action: String, detail: String },
    /// The storage service refused the credential or the permission (401/403).
    #[error(
        "report storage refused to {action} (HTTP {status}{code}): check the storage credential and its role assignments"
    )]
    Denied {
        action: String,
        status: u16,
        code: String,
    },
    /// Any other error answer.
    #[error("report storage could not {action} (HTTP {status}{code})")]
    Service {
        action: String,
        status: u16,
        code: String,
    },
    /// A token for the storage account could not be obtained.
    #[error("could not get a token for the report storage while trying to {action}: {detail}")]
    Credential { action: String, detail: String },
    /// A stored document could not be read back (e.g. a run status blob that is not JSON).
    #[error("could not read {what}: {detail}")]
    Corrupt { what: String, detail: String },
    /// Bad configuration found while setting up a client.
    #[error("invalid storage setting: {0}")]
    Config(String),
}

impl StorageError {
    /// Map an SDK error for `action` (e.g. "upload fabrikam/latest.json").
    pub fn from_sdk(err: &azure_core::Error, action: impl Into<String>) -> Self {
        let action = action.into();
        match err.kind() {
            ErrorKind::HttpResponse {
                status, error_code, ..
            } => {
                let status = u16::from(*status);
                let code = error_code
                    .as_deref()
                    .map(|c| format!(", {c}"))
                    .unwrap_or_default();
                if status == 401 || status == 403 {
                    StorageError::Denied {
                        action,
                        status,
                        code,
                    }
                } else {
                    StorageError::Service {
                        action,
                        status,
                        code,
                    }
                }
            }
            ErrorKind::Credential => StorageError::Credential {
                action,
                detail: short(err),
            },
            ErrorKind::Connection | ErrorKind::Io => StorageError::Unreachable {
                action,
                detail: short(err),
            },
            ErrorKind::DataConversion => StorageError::Corrupt {
                what: action,
                detail: short(err),
            },
            _ => StorageError::Unreachable {
                action,
                detail: short(err),
            },
        }
    }

    /// The HTTP status of the storage answer, if there was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            StorageError::Denied { status, .. } | StorageError::Service { status, .. } => {
                Some(*status)
            }
            _ => None,
        }
    }

    /// Worth trying again later: no answer, throttling, or a server-side error.
    pub fn is_transient(&self) -> bool {
        match self {
            StorageError::Unreachable { .. } | StorageError::Credential { .. } => true,
            StorageError::Service { status, .. } => {
                *status == 408 || *status == 429 || *status >= 500
            }
            StorageError::Denied { .. }
            | StorageError::Corrupt { .. }
            | StorageError::Config(_) => false,
        }
    }
}

/// The root cause of the error (the top level is often only "retry policy expired"), with any
/// SAS signature removed, on one line, its length capped.
fn short(err: &azure_core::Error) -> String {
    let mut root: &dyn std::error::Error = err;
    while let Some(next) = root.source() {
        root = next;
    }
    let mut text = redact_sas(&root.to_string());
    if !std::ptr::addr_eq(
        root as *const dyn std::error::Error,
        err as *const azure_core::Error,
    ) && err.to_string().contains("retr")
    {
        text.push_str(" (after retries)");
    }
    let line = text.lines().next().unwrap_or("").trim();
    let mut line: String = line.chars().take(300).collect();
    if line.is_empty() {
        line = "no details".to_owned();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_errors_keep_status_and_code_only() {
        let err = azure_core::Error::with_message(
            ErrorKind::HttpResponse {
                status: azure_core::http::StatusCode::Forbidden,
                error_code: Some("AuthorizationPermissionMismatch".into()),
                raw_response: None,
            },
            "GET http://x/c/b?sig=SECRET failed",
        );
        let e = StorageError::from_sdk(&err, "read c/b");
        assert_eq!(e.status(), Some(403));
        assert!(!e.is_transient());
        let text = e.to_string();
        assert!(
            text.contains("AuthorizationPermissionMismatch") && !text.contains("SECRET"),
            "{text}"
        );
    }

    #[test]
    fn transport_errors_are_transient_and_redacted() {
        let err = azure_core::Error::with_message(
            ErrorKind::Io,
            "error sending request for url (http://x/c?sv=1&sig=SECRET)",
        );
        let e = StorageError::from_sdk(&err, "create container c");
        assert!(e.is_transient());
        assert!(!e.to_string().contains("SECRET"), "{e}");
    }
}
