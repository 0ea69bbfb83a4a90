//! `api-version` negotiation. The real service refuses a request without one, and refuses a
//! released number for a resource that is still in preview; the simulator does the same so
//! a client that forgets either fails here rather than in production.

use super::wire::ExceptionType;

/// The API areas the simulator serves. Token Admin covers both of its resources the
/// simulator has, the PAT listing and revocations: one spec file per version holds both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    GraphUsers,
    TokenAdmin,
    /// The Audit Log query: preview in every version (docs/contracts.md, "Audit Log").
    Audit,
}

impl Api {
    /// `(major, minor, released)`: the versions the resource exists in, per docs/contracts.md,
    /// "api-version".
    /// Preview versions accept only resource revision 1.
    fn versions(self) -> &'static [(u32, u32, bool)] {
        match self {
            // Graph users List is preview in every version.
            Api::GraphUsers => &[
                (4, 1, false),
                (5, 0, false),
                (5, 1, false),
                (5, 2, false),
                (6, 0, false),
                (6, 1, false),
                (7, 0, false),
                (7, 1, false),
                (7, 2, false),
            ],
            Api::Audit => &[
                (5, 1, false),
                (5, 2, false),
                (6, 0, false),
                (6, 1, false),
                (7, 0, false),
                (7, 1, false),
                (7, 2, false),
            ],
            Api::TokenAdmin => &[
                (5, 0, false),
                (5, 1, false),
                (5, 2, false),
                (6, 0, false),
                (6, 1, false),
                (7, 0, true),
                (7, 1, true),
                (7, 2, false),
            ],
        }
    }
}

/// A refused version: the exception type and message for the 400 body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionError {
    pub kind: ExceptionType,
    pub message: String,
}

#[derive(Debug, PartialEq, Eq)]
struct Parsed {
    major: u32,
    minor: u32,
    /// `None`: released; `Some(None)`: `-preview`; `Some(Some(n))`: `-preview.n`.
    preview: Option<Option<u32>>,
}

fn parse(text: &str) -> Option<Parsed> {
    let (number, preview) = match text.split_once('-') {
        Some((number, flag)) => {
            let lower = flag.to_ascii_lowercase();
            let rest = lower.strip_prefix("preview")?;
            let revision = match rest {
                "" => None,
                r => Some(r.strip_prefix('.')?.parse().ok()?),
            };
            (number, Some(revision))
        }
        None => (text, None),
    };
    let (major, minor) = number.split_once('.')?;
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(major) || !all_digits(minor) {
        return None;
    }
    Some(Parsed {
        major: major.parse().ok()?,
        minor: minor.parse().ok()?,
        preview,
    })
}

/// Finds `api-version` in an `Accept` header such as `application/json;api-version=7.1`.
fn from_accept(accept: &str) -> Option<&str> {
    accept
        .split([',', ';'])
        .filter_map(|part| part.split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("api-version"))
        .map(|(_, v)| v.trim().trim_matches('"'))
        .filter(|v| !v.is_empty())
}

/// Picks the version from the query (preferred) or the `Accept` header and checks it
/// against what `api` supports. Returns the version text as sent, for the response
/// `Content-Type`. `method` only words the "no api-version" message.
pub fn negotiate(
    api: Api,
    method: &str,
    query: Option<&str>,
    accept: Option<&str>,
) -> Result<String, VersionError> {
    let text = query
        .map(str::trim)
        .filter(|q| !q.is_empty())
        .or_else(|| accept.and_then(from_accept))
        .ok_or_else(|| VersionError {
            kind: ExceptionType::VersionNotSpecified,
            message: format!(
                "No api-version was supplied for the \"{method}\" request. The version must be \
                 supplied either as part of the Accept header (e.g. \"application/json; \
                 api-version=1.0\") or as a query parameter (e.g. '?api-version=1.0')."
            ),
        })?;
    let parsed = parse(text).ok_or_else(|| VersionError {
        kind: ExceptionType::InvalidApiVersion,
        message: format!(
            "The api-version '{text}' is not valid. Use a version such as '7.1' or '7.1-preview.1'."
        ),
    })?;
    let supported = api
        .versions()
        .iter()
        .find(|(major, minor, _)| *major == parsed.major && *minor == parsed.minor);
    let out_of_range = || {
        let list: Vec<String> = api
            .versions()
            .iter()
            .map(|(ma, mi, released)| {
                if *released {
                    format!("{ma}.{mi}")
                } else {
                    format!("{ma}.{mi}-preview.1")
                }
            })
            .collect();
        VersionError {
            kind: ExceptionType::VersionOutOfRange,
            message: format!(
                "The requested REST API version of {text} is out of range for this resource. \
                 Supported versions: {}.",
                list.join(", ")
            ),
        }
    };
    let Some((major, minor, released)) = supported else {
        return Err(out_of_range());
    };
    match parsed.preview {
        None if !released => Err(VersionError {
            kind: ExceptionType::InvalidPreviewVersion,
            message: format!(
                "The requested version \"{major}.{minor}\" of the resource is under preview. The \
                 -preview flag must be supplied in the api-version for such requests. For \
                 example: \"{major}.{minor}-preview\""
            ),
        }),
        Some(Some(revision)) if revision != 1 => Err(out_of_range()),
        _ => Ok(text.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(api: Api, v: &str) -> bool {
        negotiate(api, "GET", Some(v), None).is_ok()
    }

    #[test]
    fn graph_accepts_the_preview_versions_clients_send() {
        for v in [
            "7.1-preview.1",
            "7.1-preview",
            "7.0-preview.1",
            "6.0-preview.1",
            "4.1-preview.1",
            "7.2-PREVIEW.1",
        ] {
            assert!(ok(Api::GraphUsers, v), "{v}");
        }
    }

    #[test]
    fn graph_refuses_released_and_unknown_versions() {
        let e = negotiate(Api::GraphUsers, "GET", Some("7.1"), None).expect_err("released");
        assert_eq!(e.kind, ExceptionType::InvalidPreviewVersion);
        assert!(e.message.contains("-preview"));
        assert_eq!(
            negotiate(Api::GraphUsers, "GET", Some("9.0-preview.1"), None).map_err(|e| e.kind),
            Err(ExceptionType::VersionOutOfRange)
        );
        assert_eq!(
            negotiate(Api::GraphUsers, "GET", Some("7.1-preview.2"), None).map_err(|e| e.kind),
            Err(ExceptionType::VersionOutOfRange)
        );
        assert_eq!(
            negotiate(Api::GraphUsers, "GET", Some("latest"), None).map_err(|e| e.kind),
            Err(ExceptionType::InvalidApiVersion)
        );
    }

    #[test]
    fn token_admin_accepts_released_and_preview_forms() {
        for v in [
            "7.1",
            "7.1-preview",
            "7.1-preview.1",
            "7.0",
            "5.0-preview.1",
            "6.1-preview.1",
            "7.2-preview.1",
        ] {
            assert!(ok(Api::TokenAdmin, v), "{v}");
        }
        assert!(!ok(Api::TokenAdmin, "5.0"));
        assert!(!ok(Api::TokenAdmin, "7.2"));
    }

    #[test]
    fn audit_is_preview_only() {
        assert!(ok(Api::Audit, "7.1-preview.1"));
        assert!(ok(Api::Audit, "5.1-preview.1"));
        let e = negotiate(Api::Audit, "GET", Some("7.1"), None).expect_err("released");
        assert_eq!(e.kind, ExceptionType::InvalidPreviewVersion);
        assert!(!ok(Api::Audit, "5.0-preview.1"));
        assert!(!ok(Api::Audit, "7.1-preview.2"));
    }

    #[test]
    fn version_may_come_from_the_accept_header() {
        let v = negotiate(
            Api::TokenAdmin,
            "GET",
            None,
            Some("application/json; api-version=7.1-preview.1"),
        );
        assert_eq!(v, Ok("7.1-preview.1".to_string()));
        let missing = negotiate(Api::TokenAdmin, "POST", Some(""), Some("application/json"));
        let missing = missing.expect_err("no version");
        assert_eq!(missing.kind, ExceptionType::VersionNotSpecified);
        assert!(missing.message.contains("\"POST\" request"));
    }
}
