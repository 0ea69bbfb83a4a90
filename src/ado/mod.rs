//! The Azure DevOps client: Microsoft's generated `azure_devops_rust_api` for request building
//! and authentication, with our `azure_core` policies for what it misses (see `policy`) and for
//! pacing (see `pacing`). Bodies are read into our own wire types (see `wire`).

pub mod error;
pub mod pacing;
pub mod paging;
pub mod policy;
pub mod wire;

pub use error::AdoError;

use crate::domain::OrgName;
use crate::inventory::{Pat, SshKey, User};
use crate::scrub::Scrubber;
use crate::secret::Secret;
use azure_core::credentials::TokenCredential;
use azure_core::http::policies::Policy;
use azure_core::http::{ExponentialRetryOptions, RetryOptions, Transport, Url};
use azure_devops_rust_api::{audit, graph, token_admin};
pub use pacing::{ApiKind, PacingStats};
use pacing::{Pacer, PacingPolicy};
use policy::ContractPolicy;
use std::sync::Arc;
use std::time::Duration;

/// The public Azure DevOps endpoint for Graph and Token Admin.
pub const DEFAULT_ADO_URL: &str = "https://vssps.dev.azure.com";
/// The public endpoint of the Audit Log (another host than Graph and Token Admin).
pub const DEFAULT_AUDIT_URL: &str = "https://auditservice.dev.azure.com";

/// How the client authenticates.
#[derive(Clone)]
pub enum AdoCredential {
    /// A personal access token, sent as HTTP Basic with an empty user name.
    Pat(Secret),
    /// Any Entra credential; its token is sent as a bearer.
    Token(Arc<dyn TokenCredential>),
}

impl std::fmt::Debug for AdoCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AdoCredential::Pat(_) => f.write_str("AdoCredential::Pat(<redacted>)"),
            AdoCredential::Token(_) => f.write_str("AdoCredential::Token(..)"),
        }
    }
}

/// Settings of the client.
#[derive(Debug, Clone)]
pub struct AdoSettings {
    /// Base URL, e.g. `https://vssps.dev.azure.com` or a loopback simulator.
    pub base_url: Url,
    /// Base URL of the Audit Log, e.g. `https://auditservice.dev.azure.com`; a simulator serves
    /// it on its own base URL.
    pub audit_url: Url,
    pub organization: OrgName,
    /// Graph `subjectTypes` filter; `aad,msa` lists people and skips service identities.
    pub subject_types: Vec<String>,
    /// `pageSize` for Token Admin listings.
    pub pat_page_size: u32,
    /// Time allowed for one HTTP request, answer included.
    pub request_timeout: Duration,
    /// Retries of one request (429, 5xx, connection errors, timeouts).
    pub max_retries: u32,
    /// Pages one listing may take (the users, or one user's PATs) before it is taken for one
    /// that never ends.
    pub page_limit: u32,
}

/// Generous: 10,000 pages are five million users, or 200,000 PATs of one user.
pub const DEFAULT_PAGE_LIMIT: u32 = 10_000;

impl AdoSettings {
    pub fn new(base_url: Url, organization: OrgName) -> Self {
        // A constant that parses; a failure here would be a typo in this file.
        let audit_url = Url::parse(DEFAULT_AUDIT_URL).unwrap_or_else(|_| base_url.clone());
        Self {
            base_url,
            audit_url,
            organization,
            subject_types: vec!["aad".into(), "msa".into()],
            // What Microsoft's sample and the spec example use; the server's cap is undocumented
            // and a pageSize above it is a 400.
            pat_page_size: 20,
            request_timeout: Duration::from_secs(60),
            max_retries: 8,
            page_limit: DEFAULT_PAGE_LIMIT,
        }
    }
}

/// One page of users.
#[derive(Debug)]
pub struct UsersPage {
    pub users: Vec<User>,
    /// Users the service listed without a descriptor: they cannot be scanned.
    pub without_descriptor: Vec<User>,
    pub continuation: Option<String>,
}

/// One page of a user's PATs.
#[derive(Debug)]
pub struct PatsPage {
    pub pats: Vec<Pat>,
    pub continuation: Option<String>,
}

/// One page of the Audit Log.
#[derive(Debug)]
pub struct AuditPage {
    pub events: Vec<crate::auditlog::AuditEvent>,
    /// Entries the service sent without an id or a time: they cannot be deduplicated or placed
    /// in the window, so the caller treats the log as unreadable.
    pub unreadable: usize,
    /// The next page's token; `None` when `hasMore` is false (whatever the token says).
    pub continuation: Option<String>,
}

/// Entries asked for per Audit Log page: moderate, because the maximum is undocumented (the
/// service's own page shows 200); the paging never relies on getting this many.
pub const AUDIT_BATCH_SIZE: i32 = 500;

/// One page of a user's SSH public keys.
#[derive(Debug)]
pub struct SshKeysPage {
    pub keys: Vec<SshKey>,
    pub continuation: Option<String>,
}

/// A client for one organization.
#[derive(Clone)]
pub struct AdoClient {
    graph: graph::Client,
    token_admin: token_admin::Client,
    audit: audit::Client,
    settings: Arc<AdoSettings>,
    pacer: Arc<Pacer>,
    /// Removes the credential in use from every error text this client returns.
    scrubber: Arc<Scrubber>,
}

impl AdoClient {
    pub fn new(settings: AdoSettings, credential: AdoCredential) -> Result<Self, AdoError> {
        let http = reqwest::Client::builder()
            // The contract: a redirect is a sign-in page, never something to follow.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            .timeout(settings.request_timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .tcp_nodelay(true)
            .user_agent(concat!("patreport/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| AdoError::Config(format!("HTTP client: {e}")))?;
        let transport = Transport::new(Arc::new(http));
        let pacer = Arc::new(Pacer::default());
        let scrubber = Arc::new(match &credential {
            AdoCredential::Pat(pat) => Scrubber::for_pat(pat),
            AdoCredential::Token(_) => Scrubber::default(),
        });
        let per_call: Vec<Arc<dyn Policy>> = vec![Arc::new(ContractPolicy::new(
            pacer.clone(),
            scrubber.clone(),
        ))];
        let per_try: Vec<Arc<dyn Policy>> = vec![Arc::new(PacingPolicy::new(
            pacer.clone(),
            settings.max_retries,
        ))];
        let retry = RetryOptions::exponential(ExponentialRetryOptions {
            initial_delay: azure_core::time::Duration::milliseconds(250),
            max_retries: settings.max_retries,
            max_total_elapsed: azure_core::time::Duration::seconds(180),
            max_delay: azure_core::time::Duration::seconds(30),
        });
        let credential = match credential {
            AdoCredential::Pat(pat) => azure_devops_rust_api::Credential::from_pat(pat.expose()),
            AdoCredential::Token(token) => {
                azure_devops_rust_api::Credential::TokenCredential(token)
            }
        };
        let graph = graph::ClientBuilder::new(credential.clone())
            .endpoint(settings.base_url.clone())
            .transport(transport.clone())
            .retry(retry.clone())
            .per_call_policies(per_call.clone())
            .per_try_policies(per_try.clone())
            .build();
        let token_admin = token_admin::ClientBuilder::new(credential.clone())
            .endpoint(settings.base_url.clone())
            .transport(transport.clone())
            .retry(retry.clone())
            .per_call_policies(per_call.clone())
            .per_try_policies(per_try.clone())
            .build();
        let audit = audit::ClientBuilder::new(credential)
            .endpoint(settings.audit_url.clone())
            .transport(transport)
            .retry(retry)
            .per_call_policies(per_call)
            .per_try_policies(per_try)
            .build();
        Ok(Self {
            graph,
            token_admin,
            audit,
            settings: Arc::new(settings),
            pacer,
            scrubber,
        })
    }

    pub fn settings(&self) -> &AdoSettings {
        &self.settings
    }

    pub fn pacing(&self) -> PacingStats {
        self.pacer.stats()
    }

    /// What the scan waits for right now (a pause the service asked for, a retry), if anything.
    pub fn waiting_for(&self) -> Option<String> {
        self.pacer.waiting_for()
    }

    /// Bind this client's requests to a time budget ending at `deadline` (see
    /// [`Pacer::bound_by`]).
    pub fn bind_budget(&self, deadline: tokio::time::Instant, stop: crate::stop::Stop) {
        self.pacer.bound_by(deadline, stop);
    }

    /// Whether the service's host can be reached at all: its name resolves and it accepts a
    /// connection, each within seconds. Done once before a scan, so that a mistyped URL or a
    /// host that is down is one clear error now, not minutes of retries. Skipped behind a
    /// proxy (the proxy resolves and connects, not us).
    pub async fn reach(&self) -> Result<(), AdoError> {
        reach(&self.settings.base_url).await
    }

    /// [`Self::reach`] for the Audit Log's host: an audit host that cannot be reached is a
    /// reason for a full scan found in seconds, not after minutes of retries.
    pub async fn reach_audit(&self) -> Result<(), AdoError> {
        reach(&self.settings.audit_url).await
    }

    /// One page of `GET {org}/_apis/graph/users`.
    pub async fn users_page(&self, continuation: Option<&str>) -> Result<UsersPage, AdoError> {
        retry_undecodable(|| self.users_page_once(continuation))
            .await
            .map_err(|e| e.scrubbed(&self.scrubber))
    }

    async fn users_page_once(&self, continuation: Option<&str>) -> Result<UsersPage, AdoError> {
        let mut request = self
            .graph
            .users_client()
            .list(self.settings.organization.as_str());
        if !self.settings.subject_types.is_empty() {
            request = request.subject_types(self.settings.subject_types.join(","));
        }
        if let Some(token) = continuation {
            request = request.continuation_token(token);
        }
        let response = request
            .send()
            .await
            .map_err(|e| AdoError::from_core(e, "Graph users"))?;
        let continuation =
            paging::users_continuation(response.headers().x_ms_continuation_token().ok());
        let raw = response.into_raw_response();
        let page: wire::UsersPage =
            serde_json::from_slice(&wire::replace_lone_surrogates(raw.body())).map_err(|e| {
                AdoError::Decode {
                    what: "Graph users",
                    detail: e.to_string(),
                }
            })?;
        let (mut users, mut without_descriptor) =
            (Vec::with_capacity(page.value.len()), Vec::new());
        for u in page.value {
            let descriptor = u.descriptor.filter(|d| !d.trim().is_empty());
            let user = User {
                descriptor: descriptor.clone().unwrap_or_default(),
                display_name: u.display_name.unwrap_or_default(),
                principal_name: u.principal_name.unwrap_or_default(),
                mail_address: u.mail_address.unwrap_or_default(),
                origin: u.origin.unwrap_or_default(),
            };
            if descriptor.is_some() {
                users.push(user);
            } else {
                without_descriptor.push(user);
            }
        }
        Ok(UsersPage {
            users,
            without_descriptor,
            continuation,
        })
    }

    /// One page of `GET {org}/_apis/tokenadmin/personalaccesstokens/{descriptor}` (PATs only).
    pub async fn pats_page(
        &self,
        descriptor: &str,
        continuation: Option<&str>,
    ) -> Result<PatsPage, AdoError> {
        let (tokens, continuation) = self
            .session_tokens_page(TokenListing::Pats, descriptor, continuation)
            .await?;
        let pats = tokens
            .into_iter()
            .map(|t| Pat {
                authorization_id: t.authorization_id,
                display_name: t.display_name,
                scope: t.scope,
                target_accounts: t.target_accounts,
                valid_from: t.valid_from,
                valid_to: t.valid_to,
                // The service always sends isValid; a missing one is not evidence of revocation.
                is_valid: t.is_valid.unwrap_or(true),
            })
            .collect();
        Ok(PatsPage { pats, continuation })
    }

    /// One page of `GET {org}/_apis/audit/auditlog` for `[start, end)`: the entries (newest
    /// first, as the service sends them), and the token of the next page when `hasMore` says
    /// there is one. The body is read leniently (top level or wrapped in `value`).
    pub async fn audit_page(
        &self,
        start: time::OffsetDateTime,
        end: time::OffsetDateTime,
        continuation: Option<&str>,
    ) -> Result<AuditPage, AdoError> {
        retry_undecodable(|| self.audit_page_once(start, end, continuation))
            .await
            .map_err(|e| e.scrubbed(&self.scrubber))
    }

    async fn audit_page_once(
        &self,
        start: time::OffsetDateTime,
        end: time::OffsetDateTime,
        continuation: Option<&str>,
    ) -> Result<AuditPage, AdoError> {
        const WHAT: &str = "Audit Log query";
        let mut request = self
            .audit
            .audit_log_client()
            .query(self.settings.organization.as_str())
            .start_time(start)
            .end_time(end)
            .batch_size(AUDIT_BATCH_SIZE);
        if let Some(token) = continuation {
            request = request.continuation_token(token);
        }
        let response = request
            .send()
            .await
            .map_err(|e| AdoError::from_core(e, WHAT))?;
        let raw = response.into_raw_response();
        let page: wire::AuditPage =
            serde_json::from_slice(&wire::replace_lone_surrogates(raw.body())).map_err(|e| {
                AdoError::Decode {
                    what: WHAT,
                    detail: e.to_string(),
                }
            })?;
        page.into_page()
    }

    /// Revoke these authorizations (PATs, or SSH keys with [`TokenListing::SshKeys`]): one
    /// `POST {org}/_apis/tokenadmin/revocations`, through the same pacing, retries and error
    /// rules as the listings (revoking twice is harmless, so a retry is safe). Only a 204 is
    /// success; a 203 or a redirect is an authentication failure (see `policy`).
    pub async fn revoke(&self, listing: TokenListing, ids: &[String]) -> Result<(), AdoError> {
        let body: Vec<token_admin::models::TokenAdminRevocation> = ids
            .iter()
            .map(|id| token_admin::models::TokenAdminRevocation {
                authorization_id: Some(id.clone()),
            })
            .collect();
        let response = self
            .token_admin
            .revocations_client()
            .revoke_authorizations(self.settings.organization.as_str(), body)
            .is_public(listing == TokenListing::SshKeys)
            .send()
            .await
            .map_err(|e| {
                AdoError::from_core(e, "Token Admin revocations").scrubbed(&self.scrubber)
            })?;
        let status = u16::from(response.into_raw_response().status());
        match status {
            204 => Ok(()),
            status => Err(AdoError::Service {
                status,
                type_key: None,
                message: format!("revocations answered {status}, not 204 No Content"),
            }),
        }
    }

    /// One page of the same listing with `isPublic=true`: the user's SSH public keys.
    pub async fn ssh_keys_page(
        &self,
        descriptor: &str,
        continuation: Option<&str>,
    ) -> Result<SshKeysPage, AdoError> {
        let (tokens, continuation) = self
            .session_tokens_page(TokenListing::SshKeys, descriptor, continuation)
            .await?;
        let keys = tokens
            .into_iter()
            .map(|t| SshKey {
                authorization_id: t.authorization_id,
                display_name: t.display_name,
                scope: t.scope,
                valid_from: t.valid_from,
                valid_to: t.valid_to,
                // As for PATs: a missing isValid is not evidence of revocation.
                is_valid: t.is_valid.unwrap_or(true),
            })
            .collect();
        Ok(SshKeysPage { keys, continuation })
    }

    /// One page of either Token Admin listing, retried, decoded and scrubbed the same way:
    /// the entries and the next page's token.
    async fn session_tokens_page(
        &self,
        listing: TokenListing,
        descriptor: &str,
        continuation: Option<&str>,
    ) -> Result<(Vec<wire::SessionToken>, Option<String>), AdoError> {
        retry_undecodable(|| self.session_tokens_page_once(listing, descriptor, continuation))
            .await
            .map_err(|e| e.scrubbed(&self.scrubber))
    }

    async fn session_tokens_page_once(
        &self,
        listing: TokenListing,
        descriptor: &str,
        continuation: Option<&str>,
    ) -> Result<(Vec<wire::SessionToken>, Option<String>), AdoError> {
        let page_size = i32::try_from(self.settings.pat_page_size).unwrap_or(i32::MAX);
        let mut request = self
            .token_admin
            .personal_access_tokens_client()
            .list(self.settings.organization.as_str(), descriptor)
            .page_size(page_size)
            .is_public(listing.is_public());
        if let Some(token) = continuation {
            request = request.continuation_token(token);
        }
        let what = listing.what();
        let response = request
            .send()
            .await
            .map_err(|e| AdoError::from_core(e, what))?;
        let raw = response.into_raw_response();
        let page: wire::PatPage =
            serde_json::from_slice(&wire::replace_lone_surrogates(raw.body())).map_err(|e| {
                AdoError::Decode {
                    what,
                    detail: e.to_string(),
                }
            })?;
        Ok((
            page.value,
            paging::pat_continuation(page.continuation_token),
        ))
    }
}

/// The two listings of the Token Admin endpoint, told apart by its `isPublic` parameter
/// ("false for PAT tokens and true for SSH tokens").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenListing {
    Pats,
    SshKeys,
}

impl TokenListing {
    fn is_public(self) -> bool {
        self == TokenListing::SshKeys
    }

    /// The request, as error texts name it.
    fn what(self) -> &'static str {
        match self {
            TokenListing::Pats => "Token Admin PAT list",
            TokenListing::SshKeys => "Token Admin SSH key list",
        }
    }

    /// The listing, as paging errors and failure records name it.
    pub fn listing(self) -> &'static str {
        match self {
            TokenListing::Pats => "PAT listing",
            TokenListing::SshKeys => "SSH key listing",
        }
    }
}

/// Extra attempts for a 2xx whose body cannot be read (a truncated answer is usually
/// transient, and these GETs are safe to repeat). The pipeline's retry policy only sees statuses.
const DECODE_RETRIES: u32 = 2;

async fn retry_undecodable<T, F, Fut>(mut call: F) -> Result<T, AdoError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, AdoError>>,
{
    let mut attempt = 0;
    loop {
        match call().await {
            Err(AdoError::Decode { .. }) if attempt < DECODE_RETRIES => attempt += 1,
            other => return other,
        }
    }
}

/// Whether `url`'s host resolves and accepts a connection, each within seconds (skipped behind a
/// proxy).
async fn reach(url: &Url) -> Result<(), AdoError> {
    const WITHIN: Duration = Duration::from_secs(10);
    let proxied = ["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|p| !p.is_empty()));
    let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else {
        return Err(AdoError::Config(format!("{url} names no host")));
    };
    if proxied {
        return Ok(());
    }
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let addresses: Vec<std::net::SocketAddr> = match tokio::time::timeout(
        WITHIN,
        tokio::net::lookup_host((host, port)),
    )
    .await
    {
        Ok(Ok(found)) => found.collect(),
        Ok(Err(e)) => {
            return Err(AdoError::Unreachable(format!(
                "the host name {host} does not resolve ({e}): check the Azure DevOps URL and the network"
            )));
        }
        Err(_) => {
            return Err(AdoError::Unreachable(format!(
                "the host name {host} did not resolve within {} s: check the network and DNS",
                WITHIN.as_secs()
            )));
        }
    };
    let mut last = None;
    for address in addresses {
        match tokio::time::timeout(WITHIN, tokio::net::TcpStream::connect(address)).await {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(e)) => last = Some(format!("{address} refused the connection ({e})")),
            Err(_) => {
                last = Some(format!(
                    "{address} did not accept a connection within {} s",
                    WITHIN.as_secs()
                ))
            }
        }
    }
    Err(AdoError::Unreachable(format!(
        "cannot reach {host}:{port}: {}",
        last.unwrap_or_else(|| "it has no address".into())
    )))
}
