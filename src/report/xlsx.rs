//! The Excel workbook: sheets Summary (shown on opening), Findings, Tokens, Owners, then SSH
//! keys and Changes when the report has them, Errors and Run, in that order.
//!
//! Untrusted text (names, messages) goes through [`excel_text`] and is always written
//! with `write_string`, so Excel stores it as a string cell and never parses it as a
//! formula. Findings, Tokens, Owners, SSH keys and Changes are constant-memory sheets: each may
//! hold 100,000 rows, so their rows are written strictly in order.

use std::path::Path;

use rust_xlsxwriter::{
    Chart, ChartType, Color, ConditionalFormatFormula, DocProperties, ExcelDateTime, Format,
    FormatBorder, Table, TableColumn, TableStyle, Workbook, Worksheet, XlsxError,
    column_number_to_name,
};
use time::OffsetDateTime;

use super::columns::{COLUMNS, HEADERS, Value, position, vocabulary};
use super::csv::join_into;
use super::error::ReportError;
use super::model::{Report, SshKeyRow, TokenStatus};
use super::text::excel_text;
use crate::changes::Changes;
use crate::domain::timestamp::rfc3339;
use crate::findings::{Rule, Severity};

// Columns of the Tokens sheet that the highlights and tests refer to.
const STATUS: u16 = position("status");
const FULL_ACCESS: u16 = position("full_access");
const GLOBAL: u16 = position("global");
const LAST_COL: u16 = COLUMNS.len() as u16 - 1;
#[cfg(test)]
const TARGETS: u16 = position("target_accounts");
#[cfg(test)]
const PAT_NAME: u16 = position("pat_name");
#[cfg(test)]
const SEVERITY: u16 = position("severity");
#[cfg(test)]
const FINDINGS: u16 = position("findings");
#[cfg(test)]
const VALID_FROM: u16 = position("valid_from");
#[cfg(test)]
const VALID_TO: u16 = position("valid_to");
#[cfg(test)]
const DAYS_TO_EXPIRY: u16 = position("days_to_expiry");
#[cfg(test)]
const LIFETIME: u16 = position("lifetime_days");

pub use super::columns::vocabulary::ALL_ORGANIZATIONS;

/// Shown next to the global count after the retirement date.
const GLOBAL_NOTE_AFTER: &str =
    "Global PATs no longer work since 1 December 2026: revoke them to tidy the listing.";

/// Shown next to the global count: the service's retirement date for global PATs.
const GLOBAL_NOTE: &str = "Global PATs stop working on 1 December 2026 (creating or regenerating them is \
                           blocked since 15 March 2026): replace them with PATs scoped to one organization.";

const DATE_FORMAT: &str = "yyyy-mm-dd hh:mm";
const MIN_WIDTH: usize = 8;
const MAX_WIDTH: usize = 60;
/// Room for the autofilter button next to a header.
const FILTER_BUTTON: usize = 3;

const SHEET_TOKENS: &str = "Tokens";
const SHEET_SUMMARY: &str = "Summary";
const SHEET_FINDINGS: &str = "Findings";
const SHEET_OWNERS: &str = "Owners";
const SHEET_CHANGES: &str = "Changes";
const SHEET_SSH_KEYS: &str = "SSH keys";

// Sheet positions, fixed when the workbook is laid out.
const SUMMARY_INDEX: usize = 0;
const FINDINGS_INDEX: usize = 1;
const TOKENS_INDEX: usize = 2;
const OWNERS_INDEX: usize = 3;

/// Findings listed on the Summary.
const TOP_FINDINGS: usize = 10;
const SHEET_ERRORS: &str = "Errors";
const SHEET_RUN: &str = "Run";

/// Writes the workbook to `path`, streaming it to the file rather than building it in memory.
pub fn write_xlsx(report: &Report, path: &Path) -> Result<(), ReportError> {
    XlsxPlan::new(report.rows.len())?.save(report, path)
}

/// The workbook as the bytes of an `.xlsx` file (tests read it back from memory).
#[cfg(test)]
fn xlsx_bytes(report: &Report) -> Result<Vec<u8>, ReportError> {
    XlsxPlan::new(report.rows.len())?.into_bytes(report)
}

/// A workbook laid out before its report exists: a constant-memory sheet needs its header,
/// filter range and highlights before its rows, and the row count is known from the inventory
/// (see [`row_count`](super::build::row_count)), so this is done right after the scan, while
/// memory is at its lowest.
///
/// The Tokens sheet is a header row with filters, not an Excel table: rust_xlsxwriter records
/// every cell of a table's range in a hash map (to refuse overlapping tables), 1.9 million
/// entries at 100,000 rows × 19 columns, 36 MB, and 53 MB while the map grows: the largest
/// allocation of a whole run, for no feature an admin uses that filters do not give.
pub struct XlsxPlan {
    workbook: Workbook,
    rows: usize,
}

impl XlsxPlan {
    /// Lay out a workbook whose Tokens sheet will hold `rows` rows.
    pub fn new(rows: usize) -> Result<Self, ReportError> {
        release_free_memory();
        let mut workbook = Workbook::new();
        // The Summary comes first (what a person opening the file should see); it is written
        // once the report is built, into this place.
        workbook
            .add_worksheet()
            .set_name(SHEET_SUMMARY)
            .map_err(in_sheet(SHEET_SUMMARY))?;
        // Findings, Tokens and Owners may each hold a row per token (or per owner): written
        // row by row to temporary files, in this order of sheets.
        workbook
            .add_worksheet_with_constant_memory()
            .and_then(|ws| ws.set_name(SHEET_FINDINGS).map(|_| ()))
            .map_err(in_sheet(SHEET_FINDINGS))?;
        let tokens = workbook
            .add_worksheet_with_constant_memory()
            .map_err(in_sheet(SHEET_TOKENS))?;
        lay_out_tokens(tokens, rows).map_err(in_sheet(SHEET_TOKENS))?;
        workbook
            .add_worksheet_with_constant_memory()
            .and_then(|ws| ws.set_name(SHEET_OWNERS).map(|_| ()))
            .map_err(in_sheet(SHEET_OWNERS))?;
        Ok(Self { workbook, rows })
    }

    /// Fill the workbook with `report` and write it to `path`.
    pub fn save(self, report: &Report, path: &Path) -> Result<(), ReportError> {
        self.fill(report)?
            .save(path)
            .map_err(|source| match source {
                XlsxError::IoError(source) => ReportError::File {
                    path: path.to_owned(),
                    source,
                },
                source => ReportError::Xlsx {
                    sheet: "(saving)",
                    source,
                },
            })
    }

    /// Fill the workbook with `report` and write it to `writer` (an open file: the pipeline
    /// opens every output before it writes any).
    pub fn save_to_writer<W: std::io::Write + std::io::Seek + Send>(
        self,
        report: &Report,
        writer: W,
    ) -> Result<(), ReportError> {
        self.fill(report)?
            .save_to_writer(writer)
            .map_err(|source| ReportError::Xlsx {
                sheet: "(saving)",
                source,
            })
    }

    #[cfg(test)]
    fn into_bytes(self, report: &Report) -> Result<Vec<u8>, ReportError> {
        self.fill(report)?
            .save_to_buffer()
            .map_err(|source| ReportError::Xlsx {
                sheet: "(saving)",
                source,
            })
    }

    fn fill(mut self, report: &Report) -> Result<Workbook, ReportError> {
        if report.rows.len() != self.rows {
            return Err(ReportError::Xlsx {
                sheet: SHEET_TOKENS,
                source: XlsxError::ParameterError(format!(
                    "the workbook was laid out for {} rows but the report has {}",
                    self.rows,
                    report.rows.len()
                )),
            });
        }
        let styles = Styles::new();
        let workbook = &mut self.workbook;
        workbook.set_properties(
            &DocProperties::new()
                .set_title(format!("PAT report: {}", report.run.org))
                .set_subject("Personal access tokens of an Azure DevOps organization")
                .set_comment(format!("Read {} (UTC)", rfc3339(report.run.finished))),
        );
        // About 40% faster to save than the default level 6, files ~10% larger (rust_xlsxwriter
        // measures 0.57x the time, 1.11x the size; Excel itself writes level 3).
        workbook.set_zip_compression_level(2);
        let order = crate::findings::ranked(&report.rows);
        // The three large sheets are independent: Tokens on this thread, Findings and Owners
        // on another (a run has two cores; the rows are only read).
        let sheets = workbook.worksheets_mut();
        let (front, back) = sheets.split_at_mut(TOKENS_INDEX);
        let (tokens, back) = back.split_first_mut().ok_or_else(missing(SHEET_TOKENS))?;
        let findings = front
            .get_mut(FINDINGS_INDEX)
            .ok_or_else(missing(SHEET_FINDINGS))?;
        let owners = back
            .get_mut(OWNERS_INDEX - TOKENS_INDEX - 1)
            .ok_or_else(missing(SHEET_OWNERS))?;
        std::thread::scope(|scope| {
            let others = scope.spawn(|| {
                write_findings(findings, report, &order, &styles)
                    .map_err(in_sheet(SHEET_FINDINGS))?;
                write_owners(owners, report, &styles).map_err(in_sheet(SHEET_OWNERS))
            });
            let tokens = write_tokens(tokens, report, &styles).map_err(in_sheet(SHEET_TOKENS));
            let others = others.join().unwrap_or_else(|_| {
                Err(ReportError::Xlsx {
                    sheet: SHEET_FINDINGS,
                    source: XlsxError::ParameterError("the sheet writer panicked".into()),
                })
            });
            tokens.and(others)
        })?;
        let summary = workbook
            .worksheet_from_index(SUMMARY_INDEX)
            .map_err(in_sheet(SHEET_SUMMARY))?;
        summary.set_active(true);
        write_summary(summary, report, &order, &styles).map_err(in_sheet(SHEET_SUMMARY))?;
        if let Some(keys) = &report.ssh_keys {
            let ws = workbook
                .add_worksheet_with_constant_memory()
                .map_err(in_sheet(SHEET_SSH_KEYS))?;
            write_ssh_keys(ws, keys, &styles).map_err(in_sheet(SHEET_SSH_KEYS))?;
        }
        if let Some(changes) = &report.changes {
            let ws = workbook
                .add_worksheet_with_constant_memory()
                .map_err(in_sheet(SHEET_CHANGES))?;
            write_changes(ws, changes, &styles).map_err(in_sheet(SHEET_CHANGES))?;
        }
        write_errors(workbook.add_worksheet(), report).map_err(in_sheet(SHEET_ERRORS))?;
        write_run(workbook.add_worksheet(), report, &styles).map_err(in_sheet(SHEET_RUN))?;
        Ok(self.workbook)
    }
}

/// A sheet [`XlsxPlan::new`] laid out is not where it was put.
fn missing(sheet: &'static str) -> impl Fn() -> ReportError {
    move || ReportError::Xlsx {
        sheet,
        source: XlsxError::ParameterError("the sheet is missing from the workbook".into()),
    }
}

fn in_sheet(sheet: &'static str) -> impl Fn(XlsxError) -> ReportError {
    move |source| ReportError::Xlsx { sheet, source }
}

/// Hand pages the allocator holds but no longer uses back to the system before the workbook's
/// allocations.
/// glibc keeps freed memory (here: the inventory the report was built from) mapped, so without
/// this the process peak is the inventory's high-water mark *plus* the workbook's.
fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free heap pages to the kernel; it has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Formats shared by all sheets, created once (a format per cell would be costly).
struct Styles {
    date: Format,
    /// The header row of the large sheets.
    banner: Format,
    critical: Format,
    high: Format,
    seconds: Format,
    header: Format,
    title: Format,
    warning: Format,
    note: Format,
}

impl Styles {
    fn new() -> Self {
        Self {
            date: Format::new().set_num_format(DATE_FORMAT),
            banner: Format::new()
                .set_bold()
                .set_font_color(Color::White)
                .set_background_color(Color::RGB(0x1F_4E78))
                .set_border_bottom(FormatBorder::Thin),
            critical: Format::new()
                .set_bold()
                .set_font_color(Color::RGB(0x9C_0006))
                .set_background_color(Color::RGB(0xFF_C7CE)),
            high: Format::new()
                .set_font_color(Color::RGB(0x83_3C0B))
                .set_background_color(Color::RGB(0xF8_CBAD)),
            seconds: Format::new().set_num_format("0.0"),
            header: Format::new()
                .set_bold()
                .set_border_bottom(FormatBorder::Thin),
            title: Format::new().set_bold().set_font_size(14),
            warning: Format::new()
                .set_bold()
                .set_font_color(Color::RGB(0x9C_0006)),
            note: Format::new()
                .set_italic()
                .set_font_color(Color::RGB(0x59_5959)),
        }
    }
}

/// The Tokens sheet's name, header row (which must come before the data in constant memory),
/// filter range, frozen header and highlights. An empty report keeps one blank data row in
/// the filter range, so the filter buttons still show.
fn lay_out_tokens(ws: &mut Worksheet, rows: usize) -> Result<(), XlsxError> {
    ws.set_name(SHEET_TOKENS)?;
    let last_row = u32::try_from(rows.max(1)).map_err(|_| XlsxError::RowColumnLimitError)?;
    // A header row with filters rather than an Excel table: the same filtering and sorting,
    // and no per-cell bookkeeping (an Excel table costs rust_xlsxwriter a hash map entry per
    // cell, 36-53 MB at 100,000 rows, the largest allocation of a whole run).
    let header = Format::new()
        .set_bold()
        .set_font_color(Color::White)
        .set_background_color(Color::RGB(0x1F_4E78))
        .set_border_bottom(FormatBorder::Thin);
    for (col, title) in (0u16..).zip(HEADERS) {
        ws.write_string_with_format(0, col, title, &header)?;
    }
    ws.autofilter(0, 0, last_row, LAST_COL)?;
    // The header and the owner stay in view while scrolling down and right.
    ws.set_freeze_panes(1, 1)?;
    // Printed: landscape, as wide as one page, the header row on every page.
    ws.set_landscape().set_print_fit_to_pages(1, 0);
    ws.set_repeat_rows(0, 0)?;
    add_token_highlights(ws, last_row)
}

/// The Tokens rows, into a sheet laid out by [`lay_out_tokens`]. Column widths are part of the
/// sheet's header XML, assembled when the file is saved, so they can be set now.
fn write_tokens(ws: &mut Worksheet, report: &Report, styles: &Styles) -> Result<(), XlsxError> {
    let widths = token_widths(report);
    for (col, width) in (0u16..).zip(widths) {
        ws.set_column_width(col, width as f64)?;
    }

    let mut targets = String::new();
    let mut labels = String::new();
    for (row, r) in (1u32..).zip(&report.rows) {
        for (col, column) in (0u16..).zip(&COLUMNS) {
            match (column.value)(r) {
                Value::Text(text) => write_text(ws, row, col, text)?,
                // A null PAT name stays an empty cell: a placeholder could be mistaken for a name.
                Value::Name(name) => write_text(ws, row, col, name.unwrap_or_default())?,
                Value::Status(status) => {
                    ws.write_string(row, col, vocabulary::status(status))?;
                }
                Value::Flag(flag) => {
                    ws.write_string(row, col, vocabulary::flag(flag))?;
                }
                Value::Targets([]) => {
                    ws.write_string(row, col, ALL_ORGANIZATIONS)?;
                }
                Value::Severity(Some(severity)) => {
                    ws.write_string(row, col, severity.as_str())?;
                }
                Value::Severity(None) => {}
                Value::Findings(findings) => {
                    findings.write_labels(&mut labels);
                    write_text(ws, row, col, &labels)?;
                }
                Value::Targets(accounts) => {
                    join_into(&mut targets, accounts);
                    write_text(ws, row, col, &targets)?;
                }
                Value::Date(date) => write_date(ws, row, col, date, &styles.date)?,
                Value::Days(Some(days)) => {
                    ws.write_number(row, col, days as f64)?;
                }
                Value::Days(None) => {}
            }
        }
    }
    Ok(())
}

/// Conditional formats over the data rows. Added first means higher priority, so the
/// cell flags stay visible on a red or amber row.
fn add_token_highlights(ws: &mut Worksheet, last_row: u32) -> Result<(), XlsxError> {
    let cell_rule =
        |col: u16, value: &str| format!("=${}2=\"{value}\"", column_number_to_name(col));
    let status = column_number_to_name(STATUS);
    let row_rule = |value: &str| format!("=${status}2=\"{value}\"");

    let full_access = Format::new()
        .set_bold()
        .set_font_color(Color::RGB(0x83_3C0B))
        .set_background_color(Color::RGB(0xF8_CBAD));
    let global = Format::new()
        .set_bold()
        .set_font_color(Color::RGB(0x1F_4E78))
        .set_background_color(Color::RGB(0xDD_EBF7));
    let expired = Format::new()
        .set_font_color(Color::RGB(0x9C_0006))
        .set_background_color(Color::RGB(0xFF_C7CE));
    let expiring = Format::new()
        .set_font_color(Color::RGB(0x9C_5700))
        .set_background_color(Color::RGB(0xFF_EB9C));
    let invalid = Format::new().set_font_color(Color::RGB(0x80_8080));

    for (col, rule, format) in [
        (
            FULL_ACCESS,
            cell_rule(FULL_ACCESS, yes_no(true)),
            full_access,
        ),
        (GLOBAL, cell_rule(GLOBAL, yes_no(true)), global),
    ] {
        ws.add_conditional_format(
            1,
            col,
            last_row,
            col,
            &ConditionalFormatFormula::new()
                .set_rule(rule.as_str())
                .set_format(format),
        )?;
    }
    for (status, format) in [
        (TokenStatus::Expired, expired),
        (TokenStatus::Expiring, expiring),
        (TokenStatus::Invalid, invalid),
    ] {
        let cf = ConditionalFormatFormula::new()
            .set_rule(row_rule(status_label(status)).as_str())
            .set_format(format);
        ws.add_conditional_format(1, 0, last_row, LAST_COL, &cf)?;
    }
    // Banded rows, added last so every highlight above wins over them.
    let band = Format::new().set_background_color(Color::RGB(0xF2_F2F2));
    ws.add_conditional_format(
        1,
        0,
        last_row,
        LAST_COL,
        &ConditionalFormatFormula::new()
            .set_rule("=MOD(ROW(),2)=0")
            .set_format(band),
    )?;
    Ok(())
}

/// Column widths (in characters) that fit the header and the longest value, capped.
fn token_widths(report: &Report) -> [usize; COLUMNS.len()] {
    let mut widths = HEADERS.map(|h| h.len() + FILTER_BUTTON);
    for r in &report.rows {
        for (width, column) in widths.iter_mut().zip(&COLUMNS) {
            let len = match (column.value)(r) {
                Value::Text(text) => text_width(text),
                Value::Name(name) => name.map_or(0, text_width),
                Value::Targets([]) => ALL_ORGANIZATIONS.len(),
                Value::Targets(accounts) => accounts
                    .iter()
                    .map(|t| text_width(t) + 2)
                    .sum::<usize>()
                    .saturating_sub(2),
                Value::Date(_) => DATE_FORMAT.len(),
                Value::Findings(findings) => findings
                    .iter()
                    .map(|rule| rule.label().len() + 2)
                    .sum::<usize>()
                    .saturating_sub(2),
                Value::Status(_) | Value::Flag(_) | Value::Days(_) | Value::Severity(_) => 0,
            };
            *width = (*width).max(len);
        }
    }
    widths.map(|w| (w + 1).clamp(MIN_WIDTH, MAX_WIDTH))
}

fn write_summary(
    ws: &mut Worksheet,
    report: &Report,
    order: &[u32],
    styles: &Styles,
) -> Result<(), XlsxError> {
    let s = &report.summary;
    let run = &report.run;
    // Owner or figure, count (or a date, or a principal name), then the text columns.
    ws.set_column_width(0, 34)?;
    ws.set_column_width(1, 28)?;
    ws.set_column_width(2, 44)?;
    ws.set_column_width(3, 28)?;
    ws.set_column_width(4, 18)?;
    ws.set_column_width(5, 60)?;
    ws.set_landscape().set_print_fit_to_pages(1, 0);

    ws.write_string_with_format(0, 0, "PAT report", &styles.title)?;
    ws.write_string_with_format(0, 1, excel_text(run.org.as_str()), &styles.title)?;
    ws.write_string(1, 0, "Generated (UTC)")?;
    write_date(ws, 1, 1, Some(run.generated), &styles.date)?;
    if !run.complete {
        let mut why = Vec::new();
        if s.users_failed > 0 {
            why.push(format!(
                "{} {} could not be read (see the Errors sheet)",
                s.users_failed,
                if s.users_failed == 1 { "user" } else { "users" }
            ));
        }
        if run.stopped_early {
            why.push(format!(
                "the scan stopped early: {}",
                run.stop_reason.as_deref().unwrap_or("no reason recorded")
            ));
        }
        let message = format!("Incomplete report: {}.", why.join("; "));
        ws.write_string_with_format(2, 0, excel_text(&message), &styles.warning)?;
    }

    // What to act on: tokens by their most severe finding, then the first of them.
    let mut row = 4;
    ws.write_string_with_format(row, 0, "What to act on", &styles.title)?;
    row += 1;
    for (i, header) in ["Most severe finding", "Tokens", "Meaning"]
        .into_iter()
        .enumerate()
    {
        ws.write_string_with_format(row, i as u16, header, &styles.header)?;
    }
    for (severity, meaning) in [
        (
            Severity::Critical,
            "Can do anything its owner can: replace and revoke first.",
        ),
        (
            Severity::High,
            "Reaches every organization, or needs a migration.",
        ),
        (
            Severity::Medium,
            "Broader or longer-lived than the policy allows, or ends within days.",
        ),
        (
            Severity::Low,
            "Housekeeping: expiring soon, expired, owners with many tokens.",
        ),
    ] {
        row += 1;
        ws.write_string(row, 0, severity.as_str())?;
        ws.write_number(row, 1, s.findings.of(severity) as f64)?;
        ws.write_string_with_format(row, 2, meaning, &styles.note)?;
    }
    row += 2;
    ws.write_string_with_format(row, 0, "Top findings", &styles.title)?;
    ws.write_string_with_format(
        row,
        2,
        "All of them, most severe first, on the Findings sheet.",
        &styles.note,
    )?;
    row += 1;
    if order.is_empty() {
        ws.write_string(row, 0, "No token breaks the policy.")?;
        row += 1;
    } else {
        for (i, header) in [
            "Owner",
            "Severity",
            "Finding",
            "PAT name",
            "Valid to (UTC)",
            "What to do",
        ]
        .into_iter()
        .enumerate()
        {
            ws.write_string_with_format(row, i as u16, header, &styles.header)?;
        }
        for &index in order.iter().take(TOP_FINDINGS) {
            let token = &report.rows[index as usize];
            let Some(first) = token.findings.iter().next() else {
                continue;
            };
            row += 1;
            write_text(ws, row, 0, &token.owner.display_name)?;
            ws.write_string(row, 1, first.severity().as_str())?;
            ws.write_string(row, 2, token.findings.labels())?;
            write_text(ws, row, 3, token.pat_name.as_deref().unwrap_or_default())?;
            write_date(ws, row, 4, token.valid_to, &styles.date)?;
            ws.write_string(row, 5, first.action())?;
        }
        row += 1;
    }

    let invalid_listed = report.rows.iter().any(|r| r.status == TokenStatus::Invalid);
    let invalid_note = if s.by_status.invalid > 0 && !invalid_listed {
        "Counted, but not listed on the Tokens sheet."
    } else {
        ""
    };
    let expiring_label = format!("Expiring (within {} days)", run.expiring_days);
    let figures = [
        ("Users listed", s.users_listed, ""),
        ("Users read", s.users_read, ""),
        (
            "Users not read",
            s.users_failed,
            if s.users_failed > 0 {
                "See the Errors sheet."
            } else {
                ""
            },
        ),
        (
            "Users holding PATs",
            s.users_with_pats,
            "Every one of them on the Owners sheet.",
        ),
        ("PATs listed", s.pats, ""),
        ("Active", s.by_status.active, ""),
        (expiring_label.as_str(), s.by_status.expiring, ""),
        ("Expired", s.by_status.expired, ""),
        ("Invalid (revoked)", s.by_status.invalid, invalid_note),
        (
            "Full access",
            s.full_access,
            "Scope app_token: anything the owner can do.",
        ),
        (
            "Global (all organizations)",
            s.global,
            global_note(run.generated),
        ),
        ("Expiring within 7 days", s.expiring_within_7_days, ""),
        ("Expiring within 30 days", s.expiring_within_30_days, ""),
        ("Expiring within 90 days", s.expiring_within_90_days, ""),
    ];
    let ssh_keys = report.ssh_keys.as_ref().map(|_| {
        (
            "SSH keys listed",
            s.ssh_keys,
            "With their findings on the SSH keys sheet.",
        )
    });
    row += 1;
    ws.write_string_with_format(row, 0, "Figures", &styles.title)?;
    row += 1;
    for (i, header) in ["Figure", "Count", "Note"].into_iter().enumerate() {
        ws.write_string_with_format(row, i as u16, header, &styles.header)?;
    }
    for (label, value, note) in figures.into_iter().chain(ssh_keys) {
        row += 1;
        ws.write_string(row, 0, label)?;
        ws.write_number(row, 1, value as f64)?;
        if !note.is_empty() {
            ws.write_string_with_format(row, 2, note, &styles.note)?;
        }
    }

    if !s.findings.by_rule.is_empty() {
        row += 2;
        ws.write_string_with_format(row, 0, "Findings by rule", &styles.title)?;
        row += 1;
        for (i, header) in ["Finding", "Tokens", "What to do"].into_iter().enumerate() {
            ws.write_string_with_format(row, i as u16, header, &styles.header)?;
        }
        for count in &s.findings.by_rule {
            row += 1;
            ws.write_string(
                row,
                0,
                format!("{} ({})", count.label, count.severity.as_str()),
            )?;
            ws.write_number(row, 1, count.tokens as f64)?;
            if let Some(rule) = Rule::from_code(&count.rule) {
                ws.write_string_with_format(row, 2, rule.action(), &styles.note)?;
            }
        }
    }

    row += 2;
    ws.write_string_with_format(row, 0, "Top holders", &styles.title)?;
    ws.write_string_with_format(row, 2, "Every holder on the Owners sheet.", &styles.note)?;
    row += 1;
    if s.top_holders.is_empty() {
        ws.write_string(row, 0, "No user holds a PAT in this report.")?;
    } else {
        let columns = ["Owner", "Principal name", "PATs", "Full access"]
            .map(|h| TableColumn::new().set_header(h));
        let last = row + s.top_holders.len() as u32;
        ws.add_table(
            row,
            0,
            last,
            3,
            &Table::new()
                .set_name("TopHolders")
                .set_style(TableStyle::Medium2)
                .set_columns(&columns),
        )?;
        for holder in &s.top_holders {
            row += 1;
            write_text(ws, row, 0, &holder.display_name)?;
            write_text(ws, row, 1, &holder.principal_name)?;
            ws.write_number(row, 2, holder.pats as f64)?;
            ws.write_number(row, 3, holder.full_access as f64)?;
        }
    }
    write_charts(ws, report, styles, row + 2)
}

/// Where the charts' figures are (columns A and B, under the tables: the sheet stays one
/// page wide when printed).
const CHART_DATA_COL: u16 = 0;
/// Where the charts sit (column C), beside their figures.
const CHART_COL: u16 = 2;

/// Three charts, each beside the figures it draws: expiries by week over the next 90 days,
/// tokens by status, and the scopes most tokens carry.
fn write_charts(
    ws: &mut Worksheet,
    report: &Report,
    styles: &Styles,
    start: u32,
) -> Result<(), XlsxError> {
    let s = &report.summary;
    let weeks: Vec<(String, usize)> = s
        .expiries_by_week
        .iter()
        .map(|w| (w.week_of.clone(), w.pats))
        .collect();
    let statuses = vec![
        ("active".to_owned(), s.by_status.active),
        ("expiring".to_owned(), s.by_status.expiring),
        ("expired".to_owned(), s.by_status.expired),
        ("invalid".to_owned(), s.by_status.invalid),
    ];
    let scopes: Vec<(String, usize)> = s
        .top_scopes
        .iter()
        .map(|c| (c.label.clone(), c.pats))
        .collect();
    let charts = [
        (
            "Valid PATs expiring, by week (next 90 days)",
            "Week of (UTC)",
            weeks,
            ChartType::Column,
        ),
        ("PATs by status", "Status", statuses, ChartType::Bar),
        (
            "Scopes most valid PATs carry",
            "Scope",
            scopes,
            ChartType::Bar,
        ),
    ];
    let mut row = start;
    for (title, category, data, kind) in charts {
        ws.write_string_with_format(row, CHART_DATA_COL, title, &styles.header)?;
        ws.write_string_with_format(row, CHART_DATA_COL + 1, "PATs", &styles.header)?;
        let first = row + 1;
        for (label, count) in &data {
            row += 1;
            write_text(ws, row, CHART_DATA_COL, label)?;
            ws.write_number(row, CHART_DATA_COL + 1, *count as f64)?;
        }
        if data.is_empty() {
            row += 1;
            ws.write_string_with_format(row, CHART_DATA_COL, "(none)", &styles.note)?;
        } else {
            let mut chart = Chart::new(kind);
            chart
                .add_series()
                .set_name(title)
                .set_categories((SHEET_SUMMARY, first, CHART_DATA_COL, row, CHART_DATA_COL))
                .set_values((
                    SHEET_SUMMARY,
                    first,
                    CHART_DATA_COL + 1,
                    row,
                    CHART_DATA_COL + 1,
                ));
            chart.title().set_name(title);
            chart.legend().set_hidden();
            chart.x_axis().set_name(category);
            if kind == ChartType::Bar {
                // Bars read top to bottom in the table's order.
                chart.y_axis().set_reverse();
            }
            chart.set_width(520).set_height(300);
            ws.insert_chart(first.saturating_sub(1), CHART_COL, &chart)?;
        }
        // A chart is about 15 rows tall: leave room before the next table.
        row = (row + 2).max(first + 16);
    }
    Ok(())
}

/// What the Summary says next to the count of global PATs, before and after their retirement.
fn global_note(at: OffsetDateTime) -> &'static str {
    if crate::findings::global_retired(at) {
        GLOBAL_NOTE_AFTER
    } else {
        GLOBAL_NOTE
    }
}

/// The frame of a list sheet: its header row, filters over `rows` rows (one blank row when
/// there are none, so the buttons still show), the header and the first `frozen` columns
/// frozen, printed landscape one page wide with the header on every page. Returns the last
/// row and column of the filter range.
fn list_sheet(
    ws: &mut Worksheet,
    headers: &[&str],
    rows: usize,
    frozen: u16,
    styles: &Styles,
) -> Result<(u32, u16), XlsxError> {
    for (col, header) in (0u16..).zip(headers) {
        ws.write_string_with_format(0, col, *header, &styles.banner)?;
    }
    let last_col = u16::try_from(headers.len().saturating_sub(1))
        .map_err(|_| XlsxError::RowColumnLimitError)?;
    let last_row = u32::try_from(rows.max(1)).map_err(|_| XlsxError::RowColumnLimitError)?;
    ws.autofilter(0, 0, last_row, last_col)?;
    ws.set_freeze_panes(1, frozen)?;
    ws.set_landscape().set_print_fit_to_pages(1, 0);
    ws.set_repeat_rows(0, 0)?;
    Ok((last_row, last_col))
}

/// Column widths in characters, within bounds.
fn set_widths(ws: &mut Worksheet, widths: &[usize]) -> Result<(), XlsxError> {
    for (col, width) in (0u16..).zip(widths) {
        ws.set_column_width(col, (width + 1).clamp(MIN_WIDTH, MAX_WIDTH) as f64)?;
    }
    Ok(())
}

const FINDINGS_HEADERS: [&str; 10] = [
    "Severity",
    "Owner",
    "PAT name",
    "Status",
    "Valid to (UTC)",
    "Days to expiry",
    "Findings",
    "What to do",
    "Principal name",
    "Authorization id",
];

/// One row per token with findings, in the order of [`crate::findings::ranked`].
fn write_findings(
    ws: &mut Worksheet,
    report: &Report,
    order: &[u32],
    styles: &Styles,
) -> Result<(), XlsxError> {
    let (last_row, last_col) = list_sheet(ws, &FINDINGS_HEADERS, order.len(), 2, styles)?;
    let mut widths = FINDINGS_HEADERS.map(|h| h.len() + FILTER_BUTTON);
    widths[4] = DATE_FORMAT.len() + 4;
    widths[7] = 60;
    let mut labels = String::new();
    for (row, &index) in (1u32..).zip(order) {
        let token = &report.rows[index as usize];
        let Some(first) = token.findings.iter().next() else {
            continue;
        };
        token.findings.write_labels(&mut labels);
        ws.write_string(row, 0, first.severity().as_str())?;
        write_text(ws, row, 1, &token.owner.display_name)?;
        write_text(ws, row, 2, token.pat_name.as_deref().unwrap_or_default())?;
        ws.write_string(row, 3, vocabulary::status(token.status))?;
        write_date(ws, row, 4, token.valid_to, &styles.date)?;
        if let Some(days) = token.days_to_expiry {
            ws.write_number(row, 5, days as f64)?;
        }
        ws.write_string(row, 6, &labels)?;
        ws.write_string(row, 7, first.action())?;
        write_text(ws, row, 8, &token.owner.principal_name)?;
        write_text(ws, row, 9, &token.authorization_id)?;
        for (col, text) in [
            (1, token.owner.display_name.as_str()),
            (2, token.pat_name.as_deref().unwrap_or_default()),
            (6, labels.as_str()),
            (8, token.owner.principal_name.as_str()),
            (9, token.authorization_id.as_str()),
        ] {
            widths[col] = widths[col].max(text_width(text));
        }
    }
    if order.is_empty() {
        ws.write_string(1, 0, "No token breaks the policy.")?;
    }
    for (col, width) in (0u16..).zip(widths) {
        ws.set_column_width(col, (width + 1).clamp(MIN_WIDTH, MAX_WIDTH) as f64)?;
    }
    let severity = column_number_to_name(0);
    for (name, format) in [
        (Severity::Critical, &styles.critical),
        (Severity::High, &styles.high),
    ] {
        let rule = format!("=${severity}2=\"{}\"", name.as_str());
        ws.add_conditional_format(
            1,
            0,
            last_row,
            last_col,
            &ConditionalFormatFormula::new()
                .set_rule(rule.as_str())
                .set_format(format.clone()),
        )?;
    }
    Ok(())
}

const SSH_KEY_HEADERS: [&str; 10] = [
    "Owner",
    "Key name",
    "Status",
    "Valid to (UTC)",
    "Days to expiry",
    "Severity",
    "Findings",
    "Principal name",
    "Valid from (UTC)",
    "Authorization id",
];

/// Every user's SSH public keys, by owner.
fn write_ssh_keys(
    ws: &mut Worksheet,
    keys: &[SshKeyRow],
    styles: &Styles,
) -> Result<(), XlsxError> {
    ws.set_name(SHEET_SSH_KEYS)?;
    list_sheet(ws, &SSH_KEY_HEADERS, keys.len(), 1, styles)?;
    let mut widths = SSH_KEY_HEADERS.map(|h| h.len() + FILTER_BUTTON);
    let mut labels = String::new();
    for (row, key) in (1u32..).zip(keys) {
        key.findings.write_labels(&mut labels);
        write_text(ws, row, 0, &key.owner_display_name)?;
        write_text(ws, row, 1, key.name.as_deref().unwrap_or_default())?;
        ws.write_string(row, 2, vocabulary::status(key.status))?;
        write_date(ws, row, 3, key.valid_to, &styles.date)?;
        if let Some(days) = key.days_to_expiry {
            ws.write_number(row, 4, days as f64)?;
        }
        if let Some(severity) = key.severity {
            ws.write_string(row, 5, severity.as_str())?;
        }
        write_text(ws, row, 6, &labels)?;
        write_text(ws, row, 7, &key.owner_principal_name)?;
        write_date(ws, row, 8, key.valid_from, &styles.date)?;
        write_text(ws, row, 9, &key.authorization_id)?;
        for (col, text) in [
            (0, key.owner_display_name.as_str()),
            (1, key.name.as_deref().unwrap_or_default()),
            (6, labels.as_str()),
            (7, key.owner_principal_name.as_str()),
            (9, key.authorization_id.as_str()),
        ] {
            widths[col] = widths[col].max(text_width(text));
        }
    }
    if keys.is_empty() {
        ws.write_string(1, 0, "No user holds an SSH key.")?;
    }
    widths[3] = widths[3].max(DATE_FORMAT.len());
    widths[8] = widths[8].max(DATE_FORMAT.len());
    set_widths(ws, &widths)
}

const CHANGES_HEADERS: [&str; 7] = [
    "Change",
    "Owner",
    "Principal name",
    "PAT name",
    "Valid to (UTC)",
    "Detail",
    "Authorization id",
];

/// What changed since the previous report: the counts, then one filterable list of every
/// change (new, gone, changed tokens; new holders and holders gone).
fn write_changes(ws: &mut Worksheet, changes: &Changes, styles: &Styles) -> Result<(), XlsxError> {
    ws.set_name(SHEET_CHANGES)?;
    let heading = match &changes.previous {
        Some(previous) => format!(
            "Changes since the report of {} (UTC): {}",
            crate::domain::timestamp::rfc3339(previous.generated),
            previous.source
        ),
        None => "No comparison".to_owned(),
    };
    write_text_with(ws, 0, 0, &heading, &styles.title)?;
    let mut row = 1;
    if let Some(note) = &changes.note {
        write_text_with(ws, row, 0, note, &styles.note)?;
        row += 1;
    }
    if changes.previous.is_none() {
        return Ok(());
    }
    row += 1;
    let c = &changes.counts;
    for (label, count) in [
        ("New PATs", c.new_pats),
        ("PATs gone", c.gone_pats),
        ("PATs changed", c.changed_pats),
        ("New holders", c.new_holders),
        ("Holders gone", c.holders_gone),
        ("Not compared (owner not read)", c.not_compared),
    ] {
        ws.write_string(row, 0, label)?;
        ws.write_number(row, 1, count as f64)?;
        row += 1;
    }
    row += 1;
    let header_row = row;
    for (col, header) in (0u16..).zip(CHANGES_HEADERS) {
        ws.write_string_with_format(row, col, header, &styles.banner)?;
    }
    let mut widths = CHANGES_HEADERS.map(|h| h.len() + FILTER_BUTTON);
    widths[4] = DATE_FORMAT.len() + 4;
    let mut line = |ws: &mut Worksheet,
                    change: &str,
                    owner: &str,
                    principal: &str,
                    name: Option<&str>,
                    valid_to: Option<OffsetDateTime>,
                    detail: &str,
                    id: &str|
     -> Result<(), XlsxError> {
        row += 1;
        ws.write_string(row, 0, change)?;
        write_text(ws, row, 1, owner)?;
        write_text(ws, row, 2, principal)?;
        write_text(ws, row, 3, name.unwrap_or_default())?;
        write_date(ws, row, 4, valid_to, &styles.date)?;
        write_text(ws, row, 5, detail)?;
        write_text(ws, row, 6, id)?;
        for (col, text) in [
            (1, owner),
            (2, principal),
            (3, name.unwrap_or_default()),
            (5, detail),
            (6, id),
        ] {
            widths[col] = widths[col].max(text_width(text));
        }
        Ok(())
    };
    for t in &changes.new_pats {
        let detail = t
            .severity
            .map(|s| format!("most severe finding: {}", s.as_str()))
            .unwrap_or_default();
        line(
            ws,
            "new",
            &t.owner_display_name,
            &t.owner_principal_name,
            t.pat_name.as_deref(),
            t.valid_to,
            &detail,
            &t.authorization_id,
        )?;
    }
    for g in &changes.gone_pats {
        let t = &g.token;
        line(
            ws,
            "gone",
            &t.owner_display_name,
            &t.owner_principal_name,
            t.pat_name.as_deref(),
            t.valid_to,
            g.reason.describe(),
            &t.authorization_id,
        )?;
    }
    for c in &changes.changed_pats {
        let t = &c.token;
        let detail = c
            .fields
            .iter()
            .map(|f| {
                format!(
                    "{}: {} → {}",
                    f.field,
                    empty_as_none(&f.before),
                    empty_as_none(&f.after)
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        line(
            ws,
            "changed",
            &t.owner_display_name,
            &t.owner_principal_name,
            t.pat_name.as_deref(),
            t.valid_to,
            &detail,
            &t.authorization_id,
        )?;
    }
    for (change, holders) in [
        ("new holder", &changes.new_holders),
        ("holder gone", &changes.holders_gone),
    ] {
        for h in holders {
            let detail = format!("{} PATs", h.pats);
            line(
                ws,
                change,
                &h.display_name,
                &h.principal_name,
                None,
                None,
                &detail,
                "",
            )?;
        }
    }
    let last = row.max(header_row + 1);
    ws.autofilter(header_row, 0, last, CHANGES_HEADERS.len() as u16 - 1)?;
    ws.set_column_width(0, 30)?;
    for (col, width) in (1u16..).zip(widths.iter().skip(1)) {
        ws.set_column_width(col, (width + 1).clamp(MIN_WIDTH, MAX_WIDTH) as f64)?;
    }
    Ok(())
}

fn empty_as_none(text: &str) -> &str {
    if text.is_empty() { "(none)" } else { text }
}

const OWNERS_HEADERS: [&str; 14] = [
    "Owner",
    "Principal name",
    "PATs",
    "Active",
    "Expiring",
    "Expired",
    "Invalid",
    "Full access",
    "Global",
    "Critical",
    "High",
    "Medium",
    "Low",
    "Next expiry (UTC)",
];

/// Every holder, most to act on first, with counts by status and by most severe finding.
fn write_owners(ws: &mut Worksheet, report: &Report, styles: &Styles) -> Result<(), XlsxError> {
    list_sheet(ws, &OWNERS_HEADERS, report.owners.len(), 1, styles)?;
    let mut widths = OWNERS_HEADERS.map(|h| h.len() + FILTER_BUTTON);
    widths[13] = DATE_FORMAT.len() + 4;
    for (row, owner) in (1u32..).zip(&report.owners) {
        write_text(ws, row, 0, &owner.display_name)?;
        write_text(ws, row, 1, &owner.principal_name)?;
        let counts = [
            owner.pats,
            owner.by_status.active,
            owner.by_status.expiring,
            owner.by_status.expired,
            owner.by_status.invalid,
            owner.full_access,
            owner.global,
            owner.critical,
            owner.high,
            owner.medium,
            owner.low,
        ];
        for (col, count) in (2u16..).zip(counts) {
            ws.write_number(row, col, count as f64)?;
        }
        write_date(ws, row, 13, owner.next_expiry, &styles.date)?;
        widths[0] = widths[0].max(text_width(&owner.display_name));
        widths[1] = widths[1].max(text_width(&owner.principal_name));
    }
    if report.owners.is_empty() {
        ws.write_string(1, 0, "No user holds a PAT in this report.")?;
    }
    set_widths(ws, &widths)
}

fn write_errors(ws: &mut Worksheet, report: &Report) -> Result<(), XlsxError> {
    ws.set_name(SHEET_ERRORS)?;
    if report.errors.is_empty() {
        ws.write_string(0, 0, "No errors: the tokens of every user were listed.")?;
        return Ok(());
    }
    const HEADERS: [&str; 5] = [
        "User",
        "Principal name",
        "Descriptor",
        "HTTP status",
        "Message",
    ];
    let mut widths = HEADERS.map(|h| h.len() + FILTER_BUTTON);
    let columns = HEADERS.map(|h| TableColumn::new().set_header(h));
    let last = u32::try_from(report.errors.len()).map_err(|_| XlsxError::RowColumnLimitError)?;
    ws.add_table(
        0,
        0,
        last,
        4,
        &Table::new()
            .set_name("Errors")
            .set_style(TableStyle::Medium2)
            .set_columns(&columns),
    )?;
    ws.set_freeze_panes(1, 0)?;
    for (row, e) in (1u32..).zip(&report.errors) {
        write_text(ws, row, 0, &e.user_display_name)?;
        write_text(ws, row, 1, &e.user_principal_name)?;
        write_text(ws, row, 2, &e.user_descriptor)?;
        if let Some(status) = e.http_status {
            ws.write_number(row, 3, f64::from(status))?;
        }
        write_text(ws, row, 4, &e.message)?;
        for (w, s) in widths.iter_mut().zip([
            &e.user_display_name,
            &e.user_principal_name,
            &e.user_descriptor,
        ]) {
            *w = (*w).max(text_width(s));
        }
        widths[4] = widths[4].max(text_width(&e.message));
    }
    set_widths(ws, &widths)
}

fn write_run(ws: &mut Worksheet, report: &Report, styles: &Styles) -> Result<(), XlsxError> {
    ws.set_name(SHEET_RUN)?;
    let run = &report.run;
    ws.set_column_width(0, 46)?;
    ws.set_column_width(1, 40)?;
    ws.write_string_with_format(0, 0, "Field", &styles.header)?;
    ws.write_string_with_format(0, 1, "Value (times in UTC)", &styles.header)?;

    let labels = [
        "Organization",
        "Started",
        "Finished",
        "Duration (s)",
        "API calls",
        "Retries",
        "Throttled responses",
        "Throttling wait (s)",
        "Complete",
        "Stopped early",
        "Expiring window (days)",
        "Generated",
        "Tool version",
        "Users listed twice by the service (scanned once)",
        "PATs listed twice by the service (kept once)",
        "Rate limit reported (TSTU per window, X-RateLimit-Limit)",
        "TSTU consumed (measured from X-RateLimit-Remaining)",
        "Estimated TSTU per call",
        "Estimated TSTU per call, by API",
        "Time the service delayed answers (s, X-RateLimit-Delay)",
        "Lowest X-RateLimit-Remaining seen (TSTU)",
    ];
    for (row, label) in (1u32..).zip(labels) {
        ws.write_string(row, 0, label)?;
    }
    write_text(ws, 1, 1, run.org.as_str())?;
    write_date(ws, 2, 1, Some(run.started), &styles.date)?;
    write_date(ws, 3, 1, Some(run.finished), &styles.date)?;
    ws.write_number_with_format(4, 1, run.duration_seconds, &styles.seconds)?;
    ws.write_number(5, 1, run.api_calls as f64)?;
    ws.write_number(6, 1, run.retries as f64)?;
    ws.write_number(7, 1, run.throttled as f64)?;
    ws.write_number_with_format(8, 1, run.throttle_wait_seconds, &styles.seconds)?;
    ws.write_string(9, 1, yes_no(run.complete))?;
    match (&run.stop_reason, run.stopped_early) {
        (Some(reason), true) => write_text(ws, 10, 1, reason)?,
        (None, true) => {
            ws.write_string(10, 1, yes_no(true))?;
        }
        (_, false) => {
            ws.write_string(10, 1, yes_no(false))?;
        }
    }
    ws.write_number(11, 1, f64::from(run.expiring_days))?;
    write_date(ws, 12, 1, Some(run.generated), &styles.date)?;
    write_text(ws, 13, 1, &run.tool_version)?;
    ws.write_number(14, 1, run.duplicate_users as f64)?;
    ws.write_number(15, 1, run.duplicate_pats as f64)?;
    // Rate-limit figures: blank-free, so an admin sees "not reported" rather than a zero
    // that would claim the limit was far away.
    const NOT_REPORTED: &str = "not reported by the service";
    match run.tstu_limit {
        Some(limit) => ws.write_number(16, 1, limit)?,
        None => ws.write_string(16, 1, NOT_REPORTED)?,
    };
    if run.tstu_limit.is_some() {
        ws.write_number(17, 1, run.tstu_consumed)?;
    } else {
        ws.write_string(17, 1, NOT_REPORTED)?;
    }
    match run.tstu_per_call {
        Some(cost) => ws.write_number(18, 1, cost)?,
        None => ws.write_string(18, 1, NOT_REPORTED)?,
    };
    let by_api: Vec<String> = run
        .tstu_per_call_by_api
        .iter()
        .map(|(api, cost)| format!("{api} {cost:.4}"))
        .collect();
    if by_api.is_empty() {
        ws.write_string(19, 1, NOT_REPORTED)?;
    } else {
        write_text(ws, 19, 1, &by_api.join(", "))?;
    }
    ws.write_number_with_format(20, 1, run.rate_limit_delay_seconds, &styles.seconds)?;
    match run.lowest_remaining {
        Some(remaining) => ws.write_number(21, 1, remaining)?,
        None => ws.write_string(21, 1, NOT_REPORTED)?,
    };
    if let Some(refresh) = &run.refresh {
        let rows: [(&str, String); 6] = [
            ("Refresh", refresh.mode.clone()),
            (
                "Why a full scan",
                refresh.reason.clone().unwrap_or_default(),
            ),
            (
                "Audit log read (UTC)",
                match (refresh.audit_from, refresh.audit_to) {
                    (Some(from), Some(to)) => format!(
                        "{} to {}",
                        crate::domain::timestamp::rfc3339(from),
                        crate::domain::timestamp::rfc3339(to)
                    ),
                    _ => "not read".into(),
                },
            ),
            (
                "Token events in the audit log",
                refresh.token_events.to_string(),
            ),
            (
                "Owners read / taken from the last state",
                format!("{} / {}", refresh.owners_read, refresh.owners_reused),
            ),
            (
                "Check against the refreshes",
                refresh.check.clone().unwrap_or_default(),
            ),
        ];
        for (row, (label, value)) in (22u32..).zip(rows) {
            ws.write_string(row, 0, label)?;
            write_text(ws, row, 1, &value)?;
        }
    }
    Ok(())
}

/// [`write_text`] with a format.
fn write_text_with(
    ws: &mut Worksheet,
    row: u32,
    col: u16,
    s: &str,
    format: &Format,
) -> Result<(), XlsxError> {
    if !s.is_empty() {
        ws.write_string_with_format(row, col, excel_text(s), format)?;
    }
    Ok(())
}

/// Writes untrusted text as a string cell (never a formula); empty text leaves the cell empty.
fn write_text(ws: &mut Worksheet, row: u32, col: u16, s: &str) -> Result<(), XlsxError> {
    if !s.is_empty() {
        ws.write_string(row, col, excel_text(s))?;
    }
    Ok(())
}

/// Writes a real date cell (UTC). A date outside Excel's range (years 1900–9999) is
/// written as RFC 3339 text rather than failing the workbook.
fn write_date(
    ws: &mut Worksheet,
    row: u32,
    col: u16,
    date: Option<OffsetDateTime>,
    format: &Format,
) -> Result<(), XlsxError> {
    let Some(date) = date else { return Ok(()) };
    // The Unix timestamp is offset-independent, so this is the UTC date and time.
    match ExcelDateTime::from_timestamp(date.unix_timestamp()) {
        Ok(excel) => ws.write_datetime_with_format(row, col, &excel, format)?,
        Err(_) => ws.write_string(row, col, rfc3339(date))?,
    };
    Ok(())
}

fn status_label(status: TokenStatus) -> &'static str {
    vocabulary::status(status)
}

fn yes_no(b: bool) -> &'static str {
    vocabulary::flag(b)
}

/// Approximate display width in characters (bytes for ASCII, the cheap common case).
fn text_width(s: &str) -> usize {
    if s.is_ascii() {
        s.len()
    } else {
        s.chars().count()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use calamine::{Data, Reader, Xlsx, open_workbook_from_rs};

    use super::*;
    use crate::report::build::tests::NOW;
    use crate::report::fixtures::{HOSTILE, empty_report, hostile_report};

    fn open(report: &Report) -> Xlsx<Cursor<Vec<u8>>> {
        open_workbook_from_rs(Cursor::new(xlsx_bytes(report).unwrap())).unwrap()
    }

    fn cell(range: &calamine::Range<Data>, row: u32, col: u16) -> Data {
        range
            .get_value((row, u32::from(col)))
            .cloned()
            .unwrap_or(Data::Empty)
    }

    /// The sheets of every workbook, with `optional` ones (SSH keys, Changes) in their place.
    fn sheets(optional: &[&'static str]) -> Vec<&'static str> {
        let mut names = vec![SHEET_SUMMARY, SHEET_FINDINGS, SHEET_TOKENS, SHEET_OWNERS];
        names.extend(optional);
        names.extend([SHEET_ERRORS, SHEET_RUN]);
        names
    }

    fn excel_serial(date: OffsetDateTime) -> f64 {
        date.unix_timestamp() as f64 / 86_400.0 + 25_569.0
    }

    #[test]
    fn sheets_come_in_order_summary_findings_tokens_owners_errors_run_and_the_summary_opens() {
        assert_eq!(open(&hostile_report()).sheet_names(), sheets(&[]));
        let workbook = stored_xml(&hostile_report(), "xl/workbook.xml");
        // The Summary (the first sheet) is the one shown on opening.
        assert!(!workbook.contains("activeTab="), "{workbook}");
        let summary = stored_xml(&hostile_report(), "xl/worksheets/sheet1.xml");
        assert!(summary.contains(r#"tabSelected="1""#), "{summary}");
        // The Tokens header row repeats on every printed page.
        assert!(
            workbook.contains(r#"<definedName name="_xlnm.Print_Titles" localSheetId="2">Tokens!$1:$1</definedName>"#),
            "{workbook}"
        );
    }

    #[test]
    fn the_workbook_is_titled_and_prints_the_tokens_landscape_one_page_wide() {
        let report = hostile_report();
        let core = stored_xml(&report, "docProps/core.xml");
        assert!(
            core.contains(&format!(
                "<dc:title>PAT report: {}</dc:title>",
                report.run.org
            )),
            "{core}"
        );
        let tokens = tokens_xml(&report);
        assert!(
            tokens.contains(r#"<pageSetUpPr fitToPage="1"/>"#),
            "{tokens}"
        );
        assert!(tokens.contains(r#"orientation="landscape""#), "{tokens}");
        assert!(tokens.contains(r#"fitToHeight="0""#), "{tokens}");
    }

    /// One part of the file, as stored.
    fn stored_xml(report: &Report, part: &str) -> String {
        let bytes = xlsx_bytes(report).unwrap();
        let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
        let mut file = archive.by_name(part).unwrap();
        let mut text = String::new();
        std::io::Read::read_to_string(&mut file, &mut text).unwrap();
        text
    }

    /// The XML of the Tokens sheet (the third) as stored in the file.
    fn tokens_xml(report: &Report) -> String {
        stored_xml(report, "xl/worksheets/sheet3.xml")
    }

    #[test]
    fn tokens_header_row_matches_the_columns_and_filters_every_row() {
        let report = hostile_report();
        let mut wb = open(&report);
        let range = wb.worksheet_range(SHEET_TOKENS).unwrap();
        let header: Vec<Data> = (0..=LAST_COL).map(|c| cell(&range, 0, c)).collect();
        let expected: Vec<Data> = HEADERS.iter().map(|h| Data::String((*h).into())).collect();
        assert_eq!(header, expected);
        assert_eq!(range.height(), 1 + 8, "the header and every row");
        let xml = tokens_xml(&report);
        assert!(xml.contains(r#"<autoFilter ref="A1:W9"/>"#), "{xml}");
        assert!(
            xml.contains(r#"xSplit="1" ySplit="1""#),
            "the header and the owner are frozen: {xml}"
        );
    }

    #[test]
    fn injection_strings_are_literal_text_never_formulas() {
        let report = hostile_report();
        let mut wb = open(&report);
        let range = wb.worksheet_range(SHEET_TOKENS).unwrap();
        let formulas = wb.worksheet_formula(SHEET_TOKENS).unwrap();
        assert!(
            formulas.used_cells().all(|(_, _, f)| f.is_empty()),
            "no cell holds a formula"
        );
        for (row, name) in (1u32..).zip(HOSTILE) {
            assert_eq!(
                cell(&range, row, PAT_NAME),
                Data::String(name.into()),
                "PAT name {name:?}"
            );
            assert_eq!(cell(&range, row, 0), Data::String("=1+1".into()));
        }
        let errors = wb.worksheet_range(SHEET_ERRORS).unwrap();
        assert_eq!(
            cell(&errors, 1, 4),
            Data::String("@too many <requests>".into())
        );
        assert!(
            wb.worksheet_formula(SHEET_ERRORS)
                .unwrap()
                .used_cells()
                .all(|(_, _, f)| f.is_empty())
        );
    }

    #[test]
    fn token_values_are_typed_dates_numbers_and_flags() {
        let report = hostile_report();
        let mut wb = open(&report);
        let range = wb.worksheet_range(SHEET_TOKENS).unwrap();
        let first = &report.rows[0];

        let Data::DateTime(valid_to) = cell(&range, 1, VALID_TO) else {
            panic!("valid to is not a date: {:?}", cell(&range, 1, VALID_TO));
        };
        assert!(valid_to.is_datetime());
        assert!((valid_to.as_f64() - excel_serial(first.valid_to.unwrap())).abs() < 1e-6);
        assert!(matches!(cell(&range, 1, VALID_FROM), Data::DateTime(_)));
        assert_eq!(cell(&range, 1, DAYS_TO_EXPIRY), Data::Float(100.0));
        assert_eq!(
            cell(&range, 1, LIFETIME),
            Data::Float(first.lifetime_days.unwrap() as f64)
        );
        assert_eq!(cell(&range, 1, STATUS), Data::String("active".into()));
        assert_eq!(cell(&range, 1, SEVERITY), Data::String("medium".into()));
        assert_eq!(
            cell(&range, 1, FINDINGS),
            Data::String("Lifetime above policy".into())
        );
        assert_eq!(cell(&range, 1, TARGETS), Data::String("org-guid".into()));
        assert_eq!(
            cell(&range, 1, position("authorization_id")),
            Data::String("id0".into())
        );
        assert_eq!(cell(&range, 1, LAST_COL), Data::Empty, "no audit signal");

        // The last row: the unnamed, full-access, global, expired PAT.
        assert_eq!(cell(&range, 8, PAT_NAME), Data::Empty);
        assert_eq!(cell(&range, 8, STATUS), Data::String("expired".into()));
        assert_eq!(cell(&range, 8, FULL_ACCESS), Data::String("yes".into()));
        assert_eq!(cell(&range, 8, GLOBAL), Data::String("yes".into()));
        assert_eq!(
            cell(&range, 8, TARGETS),
            Data::String(ALL_ORGANIZATIONS.into())
        );
        assert_eq!(
            cell(&range, 8, position("scope_summary")),
            Data::String("Full access".into())
        );
        assert_eq!(cell(&range, 8, DAYS_TO_EXPIRY), Data::Float(-2.0));
    }

    #[test]
    fn summary_errors_and_run_carry_the_figures() {
        let report = hostile_report();
        let mut wb = open(&report);
        let summary = wb.worksheet_range(SHEET_SUMMARY).unwrap();
        let figure = |label: &str| {
            let row = (0..summary.height() as u32)
                .find(|&r| cell(&summary, r, 0) == Data::String(label.into()))
                .unwrap_or_else(|| panic!("no {label:?} on the Summary sheet"));
            cell(&summary, row, 1)
        };
        assert_eq!(figure("Users listed"), Data::Float(3.0));
        assert_eq!(figure("Users read"), Data::Float(2.0));
        assert_eq!(figure("Users not read"), Data::Float(1.0));
        assert_eq!(figure("PATs listed"), Data::Float(8.0));
        assert_eq!(figure("Expired"), Data::Float(1.0));
        assert_eq!(figure("Global (all organizations)"), Data::Float(1.0));
        assert_eq!(figure("Owner"), Data::String("Severity".into()));
        assert_eq!(figure("medium"), Data::Float(7.0));
        assert_eq!(figure("low"), Data::Float(1.0));
        assert_eq!(figure("critical"), Data::Float(0.0));
        assert!(
            summary
                .used_cells()
                .any(|(_, _, v)| matches!(v, Data::String(s) if s.contains("1 December 2026")))
        );

        let errors = wb.worksheet_range(SHEET_ERRORS).unwrap();
        assert_eq!(cell(&errors, 0, 3), Data::String("HTTP status".into()));
        assert_eq!(cell(&errors, 1, 1), Data::String("x@contoso.com".into()));
        assert_eq!(cell(&errors, 1, 3), Data::Float(429.0));

        let run = wb.worksheet_range(SHEET_RUN).unwrap();
        assert_eq!(cell(&run, 1, 1), Data::String("contoso".into()));
        assert!(matches!(cell(&run, 2, 1), Data::DateTime(_)));
        assert_eq!(cell(&run, 4, 1), Data::Float(30.5));
        assert_eq!(cell(&run, 5, 1), Data::Float(12.0));
        assert_eq!(cell(&run, 9, 0), Data::String("Complete".into()));
        assert_eq!(cell(&run, 9, 1), Data::String("no".into()));
        let Data::DateTime(generated) = cell(&run, 12, 1) else {
            panic!("generated is not a date")
        };
        assert!((generated.as_f64() - excel_serial(NOW)).abs() < 1e-6);
        assert_eq!(cell(&run, 13, 1), Data::String("0.1.0".into()));
    }

    #[test]
    fn an_empty_report_is_a_valid_workbook() {
        let mut wb = open(&empty_report());
        assert_eq!(wb.sheet_names(), sheets(&[]));
        let tokens = wb.worksheet_range(SHEET_TOKENS).unwrap();
        assert_eq!(cell(&tokens, 0, 0), Data::String("Owner".into()));
        assert_eq!(cell(&tokens, 1, 0), Data::Empty);
        let xml = tokens_xml(&empty_report());
        assert!(xml.contains(r#"<autoFilter ref="A1:W2"/>"#), "{xml}");
        let findings = wb.worksheet_range(SHEET_FINDINGS).unwrap();
        assert_eq!(
            cell(&findings, 1, 0),
            Data::String("No token breaks the policy.".into())
        );
        let errors = wb.worksheet_range(SHEET_ERRORS).unwrap();
        assert!(matches!(cell(&errors, 0, 0), Data::String(s) if s.starts_with("No errors")));
    }

    #[test]
    fn write_xlsx_writes_the_file_and_names_it_on_failure() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.xlsx");
        write_xlsx(&empty_report(), &path).unwrap();
        assert!(std::fs::read(&path).unwrap().starts_with(b"PK"));

        let bad = dir.path().join("missing").join("report.xlsx");
        let err = write_xlsx(&empty_report(), &bad).unwrap_err();
        assert!(
            matches!(&err, ReportError::File { path, .. } if *path == bad),
            "{err:?}"
        );
    }

    #[test]
    fn overlong_and_control_character_text_still_writes() {
        let mut report = hostile_report();
        report.rows[0].pat_name = Some(format!("a\u{1}b{}", "x".repeat(40_000)));
        let mut wb = open(&report);
        let range = wb.worksheet_range(SHEET_TOKENS).unwrap();
        let Data::String(name) = cell(&range, 1, PAT_NAME) else {
            panic!("name is not text")
        };
        assert!(name.starts_with("abxxx"));
        assert_eq!(name.len(), crate::report::text::EXCEL_MAX_CELL_CHARS);
    }

    #[test]
    fn column_widths_fit_content_within_bounds() {
        let mut report = hostile_report();
        report.rows[0].scope = "s".repeat(500).into();
        let widths = token_widths(&report);
        assert_eq!(widths[usize::from(position("scope"))], MAX_WIDTH);
        assert!(widths.iter().all(|w| (MIN_WIDTH..=MAX_WIDTH).contains(w)));
        // "Valid to (UTC)" and its filter button are wider than a date.
        assert_eq!(
            widths[usize::from(VALID_TO)],
            "Valid to (UTC)".len() + FILTER_BUTTON + 1
        );
    }

    #[test]
    fn findings_come_most_severe_first_and_the_summary_has_its_charts() {
        let mut report = hostile_report();
        // The last row becomes the one critical finding.
        report.rows[7].status = TokenStatus::Active;
        report.rows[7].findings = [Rule::FullAccess, Rule::Global].into_iter().collect();
        let mut wb = open(&report);
        let findings = wb.worksheet_range(SHEET_FINDINGS).unwrap();
        assert_eq!(cell(&findings, 0, 0), Data::String("Severity".into()));
        assert_eq!(cell(&findings, 1, 0), Data::String("critical".into()));
        assert_eq!(
            cell(&findings, 1, 6),
            Data::String("Full access, Global".into())
        );
        assert_eq!(cell(&findings, 2, 0), Data::String("medium".into()));
        assert_eq!(findings.height(), 1 + 8);
        let owners = wb.worksheet_range(SHEET_OWNERS).unwrap();
        // The owners as the report built them (the rows were changed after).
        assert_eq!(owners.height(), 1 + report.owners.len());
        assert_eq!(
            cell(&owners, 1, 1),
            Data::String(report.owners[0].principal_name.clone())
        );
        assert_eq!(cell(&owners, 0, 9), Data::String("Critical".into()));
        for chart in [
            "xl/charts/chart1.xml",
            "xl/charts/chart2.xml",
            "xl/charts/chart3.xml",
        ] {
            assert!(stored_xml(&report, chart).contains("<c:chart>"), "{chart}");
        }
    }

    #[test]
    fn ssh_keys_and_changes_have_their_sheets_when_the_report_has_them() {
        let mut report = hostile_report();
        report.ssh_keys = Some(vec![SshKeyRow {
            owner_display_name: "=1+1".into(),
            owner_principal_name: "evil@contoso.com".into(),
            name: Some("@laptop".into()),
            status: TokenStatus::Active,
            valid_from: None,
            valid_to: None,
            days_to_expiry: None,
            lifetime_days: None,
            authorization_id: "k1".into(),
            severity: Some(Severity::Medium),
            findings: [Rule::MissingDates].into_iter().collect(),
        }]);
        report.changes = Some(Changes::none(crate::changes::FIRST_RUN));
        let mut wb = open(&report);
        assert_eq!(wb.sheet_names(), sheets(&[SHEET_SSH_KEYS, SHEET_CHANGES]));
        let keys = wb.worksheet_range(SHEET_SSH_KEYS).unwrap();
        assert_eq!(cell(&keys, 1, 1), Data::String("@laptop".into()));
        assert_eq!(cell(&keys, 1, 6), Data::String("Missing dates".into()));
        let changes = wb.worksheet_range(SHEET_CHANGES).unwrap();
        assert_eq!(
            cell(&changes, 1, 0),
            Data::String(crate::changes::FIRST_RUN.into())
        );
    }
}
