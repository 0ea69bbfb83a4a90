//! patreport: an org-wide inventory of Azure DevOps personal access tokens.
//!
//! The core is plain data and functions ([`inventory`], [`report`]); around it sit thin
//! adapters: the Azure DevOps client ([`ado`]), the scan ([`engine`]), the simulated
//! organization ([`simulator`]) and the command line ([`cli`]).

pub mod ado;
pub mod auth;
pub mod bench;
pub mod cli;
pub mod config;
pub mod engine;
pub mod functions;
pub mod inventory;
pub mod report;
pub mod secret;
pub mod simulator;
pub mod storage;
