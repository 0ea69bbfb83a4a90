//! The report: model, rules that derive it from an inventory, and its writers.

pub mod build;
pub mod columns;
pub mod csv;
pub mod error;
#[cfg(test)]
mod fixtures;
pub mod format;
pub mod html;
pub mod json;
pub mod model;
pub mod scope;
pub mod text;
pub mod xlsx;

pub use build::{build, row_count};
pub use csv::write_csv;
pub use error::ReportError;
pub use format::Format;
pub use html::{content_security_policy, write_html};
pub use json::{read_json, write_json};
pub use model::*;
pub use xlsx::{XlsxPlan, write_xlsx};
