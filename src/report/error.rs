//! Errors of the report writers.

use std::path::PathBuf;

/// Why a report could not be written. Each variant says which output (and, for the
/// workbook, which sheet) failed; the underlying error is the `source`.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The workbook could not be built; `sheet` names the sheet being written, or is
    /// "(saving)" when assembling the file failed.
    #[error("cannot build the xlsx report (sheet {sheet})")]
    Xlsx {
        sheet: &'static str,
        #[source]
        source: rust_xlsxwriter::XlsxError,
    },
    /// A report file could not be written to disk.
    #[error("cannot write the report file {}", path.display())]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The CSV report could not be written (includes I/O errors of the writer).
    #[error("cannot write the csv report")]
    Csv(#[from] ::csv::Error),
    /// The JSON report could not be written (includes I/O errors of the writer).
    #[error("cannot write the json report")]
    Json(#[from] serde_json::Error),
    /// The HTML report could not be written.
    #[error("cannot write the html report")]
    Html(#[source] std::io::Error),
}
