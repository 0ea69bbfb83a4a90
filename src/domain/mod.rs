//! Names and values every layer shares, each parsed once where it enters the program (a
//! command-line flag, a setting, a queue message, a URL path) and trusted from then on.

pub mod org;
pub mod run_id;
pub mod timestamp;

pub use org::{OrgName, OrgNameError};
pub use run_id::{RunId, RunIdError};

/// A GUID in its usual spelling: lowercase, hyphenated 8-4-4-4-12 (Azure DevOps' ids).
pub fn guid(value: u128) -> String {
    let h = format!("{value:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// `text` as quoted back in an error message: short, and on one line whatever it held.
fn quoted(text: &str) -> String {
    text.chars()
        .take(60)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}
