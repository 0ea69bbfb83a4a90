//! Webhook notifications: when a report is written, a short summary goes to a Teams channel
//! (Workflows webhook), a Slack channel (incoming webhook) or any program that takes JSON.
//!
//! - [`notice`]: what a notification says, as plain data;
//! - [`format`]: the payload each kind of webhook gets ([`teams`], [`slack`], generic JSON),
//!   with organization text escaped so it cannot make links, mentions or formatting;
//! - [`webhook`]: a webhook setting, parsed once; its URL is a secret and never shown;
//! - [`deliver`]: best-effort posting with bounded retries that never fails the report.

pub mod deliver;
pub mod error;
pub mod format;
pub mod notice;
pub mod slack;
pub mod teams;
pub mod text;
pub mod webhook;

#[cfg(test)]
mod tests;

pub use deliver::{Outcome, RetryPolicy, deliver, http_client};
pub use error::NotifyError;
pub use notice::{ChangeCounts, ExpiryStep, Headline, Notice, NoticeFinding};
pub use webhook::{Flavor, Webhook};
