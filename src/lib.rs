//! patreport: an org-wide inventory of Azure DevOps personal access tokens.
//!
//! The core is plain data and functions: [`domain`] (names parsed once), [`inventory`],
//! [`report`] (model, rules, writers), [`auditlog`] (audit events and the signals they give)
//! and [`lifecycle`] (the states of a service run). The incremental [`refresh`] decides from
//! the audit log which owners to read again. Around
//! it sit thin adapters: the Azure DevOps client ([`ado`]), the scan ([`engine`]), the one
//! report [`pipeline`] every face calls, outgoing [`credentials`] and incoming [`callers`]
//! (both meeting Microsoft [`entra`]), Blob [`storage`], webhook notifications ([`notify`]),
//! the Functions custom handler ([`functions`]), the [`settings`], the simulated organization
//! ([`simulator`]) and the command line ([`cli`]).

pub mod ado;
pub mod auditlog;
pub mod bench;
pub mod callers;
pub mod changes;
pub mod cli;
pub mod credentials;
pub mod domain;
pub mod engine;
pub mod entra;
pub mod findings;
pub mod functions;
pub mod inventory;
pub mod lifecycle;
pub mod notify;
pub mod pipeline;
pub mod refresh;
pub mod report;
pub mod revoke;
pub mod scrub;
pub mod secret;
pub mod settings;
pub mod simulator;
pub mod stop;
pub mod storage;
