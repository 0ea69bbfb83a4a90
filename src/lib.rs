//! patreport: an org-wide inventory of Azure DevOps personal access tokens.
//!
//! The core is plain data and functions ([`inventory`], [`report`]); around it sit thin
//! adapters: the Azure DevOps client ([`ado`]), the scan ([`engine`]), the simulated
//! organization ([`simulator`]) and the command line ([`cli`]).

pub mod ado;
pub mod auth;
// pub mod cli; (re-enabled when the simulator lands)
pub mod engine;
pub mod inventory;
pub mod report;
pub mod secret;
pub mod simulator;
