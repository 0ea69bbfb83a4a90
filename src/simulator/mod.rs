//! A simulated Azure DevOps organization: a deterministic org generator and an HTTP server
//! that speaks the Graph users and Token Admin APIs (PAT and SSH key listings, revocations)
//! and the Audit Log query exactly as docs/contracts.md ("Azure DevOps") describes them,
//! including the awkward parts (header vs body paging, four "last page" markers, sign-in pages
//! instead of 401s, throttling, BOMs). The served org can change while it runs
//! ([`SimServer::mutate`]), each change written to its audit log.
//!
//! It backs `patreport report --demo`, the integration tests and the benchmark. It is at
//! least as strict as the real service: a client that passes against it should not trip
//! over the real one.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use patreport::simulator::{OrgSpec, SimConfig, SimOrg, SimServer};
//! let org = SimOrg::generate("Fabrikam", &OrgSpec::demo(), time::OffsetDateTime::now_utc());
//! let server = SimServer::start(org, SimConfig::demo()).await?;
//! let users_url = format!("{}/Fabrikam/_apis/graph/users", server.base_url());
//! // ... scan with PAT `patreport::simulator::DEMO_PAT` ...
//! server.shutdown().await;
//! # Ok(()) }
//! ```

mod api_version;
mod audit;
mod auth;
mod config;
mod data;
mod faults;
mod hash;
mod mutations;
mod names;
mod paging;
mod ratelimit;
mod reply;
mod revocations;
mod server;
mod stats;
mod tstu;
mod wire;

#[cfg(test)]
mod audit_tests;
#[cfg(test)]
mod revocation_tests;
#[cfg(test)]
mod tests;

pub use audit::{
    AuditActor, AuditCategory, AuditConfig, AuditEvent, AuditLog, AuditMode, BROWSER_USER_AGENT,
    DEMO_PAT_AUTHORIZATION_ID, EventDraft, GIT_USER_AGENT, PatAction, SYSTEM_ACTOR_ID,
    TOKEN_ADMIN_DISPLAY_NAME, TOKEN_ADMIN_UPN, TOKEN_ADMIN_USER_ID, pat_event, pat_mechanism,
    ssh_revoke_event, ticks,
};
pub use auth::{AuthConfig, AuthFailureMode, BearerValidator, DEMO_BEARER, DEMO_PAT};
pub use config::{Gate, SimConfig};
pub use data::{
    OrgSpec, SECRET_MARKER, SimOrg, SimPat, SimSshKey, SimUser, SubjectKind, no_date_sentinel,
};
pub use faults::{FaultConfig, Hostile, Persistence, Storm};
pub use mutations::{Change, MutationError, Mutations, NewPat, PatChange, PatUse};
pub use paging::PagingConfig;
pub use ratelimit::WindowLimit;
pub use server::{SimServer, router};
pub use stats::SimStatsSnapshot;
#[cfg(test)]
pub(crate) use tstu::{Decision, TstuMeter};
pub use tstu::{TstuApi, TstuCosts, TstuLimit};
