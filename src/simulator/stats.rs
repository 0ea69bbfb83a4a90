//! Request counters, kept in atomics so counting costs next to nothing under load.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct SimStatsSnapshot {
    /// Every request, whatever its answer.
    pub requests_total: u64,
    pub graph_user_requests: u64,
    /// Token Admin requests for PATs (`isPublic` absent or not `true`).
    pub pat_requests: u64,
    /// Token Admin requests for SSH keys (`isPublic=true`).
    pub ssh_key_requests: u64,
    /// Token Admin revocation POSTs to this organization, whatever their answer.
    pub revocation_requests: u64,
    /// Tokens (PATs or SSH keys) that revocations turned from valid to invalid; unknown and
    /// already invalid ids are not counted.
    pub tokens_revoked: u64,
    pub sign_in_requests: u64,
    /// Requests to no known route, or for an unknown organization.
    pub not_found: u64,
    pub method_not_allowed: u64,
    /// 400 answers (api-version, parameters, continuation tokens, revocation bodies), and
    /// 415 for a revocation body that is not JSON.
    pub bad_requests: u64,
    /// Requests refused for their credentials (401, 302 or 203 answers).
    pub auth_failures: u64,
    /// Token Admin requests refused because the caller is not a token administrator.
    pub not_token_admin: u64,
    pub throttled_429: u64,
    pub server_errors_500: u64,
    /// Successful answers (200, or a revocation's 204) that were delayed and carried
    /// `Retry-After`.
    pub delayed_200: u64,
    pub malformed_bodies: u64,
    /// Graph pages and Token Admin pages answered with 200 (malformed ones included).
    pub user_pages: u64,
    pub pat_pages: u64,
    pub ssh_key_pages: u64,
    /// Users, PATs and SSH keys put on those pages.
    pub users_served: u64,
    pub pats_served: u64,
    pub ssh_keys_served: u64,
    /// Audit Log queries to this organization, whatever their answer.
    pub audit_requests: u64,
    /// Audit Log queries refused with 403 (auditing off, or no permission).
    pub audit_forbidden: u64,
    /// Audit Log pages answered with 200, and the entries on them.
    pub audit_pages: u64,
    pub audit_events_served: u64,
}

#[derive(Debug, Default)]
pub(crate) struct SimStats {
    pub requests_total: AtomicU64,
    pub graph_user_requests: AtomicU64,
    pub pat_requests: AtomicU64,
    pub ssh_key_requests: AtomicU64,
    pub revocation_requests: AtomicU64,
    pub tokens_revoked: AtomicU64,
    pub sign_in_requests: AtomicU64,
    pub not_found: AtomicU64,
    pub method_not_allowed: AtomicU64,
    pub bad_requests: AtomicU64,
    pub auth_failures: AtomicU64,
    pub not_token_admin: AtomicU64,
    pub throttled_429: AtomicU64,
    pub server_errors_500: AtomicU64,
    pub delayed_200: AtomicU64,
    pub malformed_bodies: AtomicU64,
    pub user_pages: AtomicU64,
    pub pat_pages: AtomicU64,
    pub ssh_key_pages: AtomicU64,
    pub users_served: AtomicU64,
    pub pats_served: AtomicU64,
    pub ssh_keys_served: AtomicU64,
    pub audit_requests: AtomicU64,
    pub audit_forbidden: AtomicU64,
    pub audit_pages: AtomicU64,
    pub audit_events_served: AtomicU64,
}

/// Adds one.
pub(crate) fn bump(counter: &AtomicU64) -> u64 {
    counter.fetch_add(1, Relaxed)
}

pub(crate) fn add(counter: &AtomicU64, n: usize) {
    counter.fetch_add(n as u64, Relaxed);
}

impl SimStats {
    pub fn snapshot(&self) -> SimStatsSnapshot {
        let g = |c: &AtomicU64| c.load(Relaxed);
        SimStatsSnapshot {
            requests_total: g(&self.requests_total),
            graph_user_requests: g(&self.graph_user_requests),
            pat_requests: g(&self.pat_requests),
            ssh_key_requests: g(&self.ssh_key_requests),
            revocation_requests: g(&self.revocation_requests),
            tokens_revoked: g(&self.tokens_revoked),
            sign_in_requests: g(&self.sign_in_requests),
            not_found: g(&self.not_found),
            method_not_allowed: g(&self.method_not_allowed),
            bad_requests: g(&self.bad_requests),
            auth_failures: g(&self.auth_failures),
            not_token_admin: g(&self.not_token_admin),
            throttled_429: g(&self.throttled_429),
            server_errors_500: g(&self.server_errors_500),
            delayed_200: g(&self.delayed_200),
            malformed_bodies: g(&self.malformed_bodies),
            user_pages: g(&self.user_pages),
            pat_pages: g(&self.pat_pages),
            ssh_key_pages: g(&self.ssh_key_pages),
            users_served: g(&self.users_served),
            pats_served: g(&self.pats_served),
            ssh_keys_served: g(&self.ssh_keys_served),
            audit_requests: g(&self.audit_requests),
            audit_forbidden: g(&self.audit_forbidden),
            audit_pages: g(&self.audit_pages),
            audit_events_served: g(&self.audit_events_served),
        }
    }
}
