//! Revoking tokens safely, in bulk, with an audit trail.
//!
//! - [`plan`]: which tokens, chosen from a report by filters and written down as a plan (plain
//!   data);
//! - [`run`]: the plan checked against fresh listings, then revoked in batches (dry run by
//!   default), each id's outcome kept;
//! - [`audit`]: one JSON line per run, appended next to the reports.
//!
//! Revocation cannot be undone, so nothing here sends an id the fresh listing does not show
//! valid, nor the same id twice, and a rerun of a plan finishes what a failed run left.

pub mod audit;
pub mod plan;
pub mod run;

pub use audit::{AuditRecord, audit_file};
pub use plan::{PlannedToken, RevokePlan, Selection, SelectionError, plan};
pub use run::{BATCH_LIMIT, Mode, Outcome, RevokeResult, execute};
