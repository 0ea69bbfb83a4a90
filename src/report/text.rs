//! Guards for untrusted text.
//!
//! PAT names, user names and service messages are chosen by anyone in the organization,
//! so a name such as `=HYPERLINK("http://x","y")` must reach the reader as text, never as
//! a formula. The xlsx writer writes every such value with `write_string` (a string cell
//! is never evaluated) after [`excel_text`]; the csv writer passes it through [`csv_safe`],
//! because a spreadsheet opening a CSV file parses each field afresh.

use std::borrow::Cow;

/// Excel's limit for the text of one cell, in UTF-16 code units.
pub const EXCEL_MAX_CELL_CHARS: usize = 32_767;

/// Characters that make a spreadsheet treat a CSV field as a formula (OWASP CSV injection).
const FORMULA_TRIGGERS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// Prefixes a single quote when a field starts with `=`, `+`, `-`, `@`, tab or carriage
/// return, so a spreadsheet opening the CSV shows the text instead of evaluating it.
pub fn csv_safe(s: &str) -> Cow<'_, str> {
    if s.starts_with(FORMULA_TRIGGERS) {
        let mut quoted = String::with_capacity(s.len() + 1);
        quoted.push('\'');
        quoted.push_str(s);
        Cow::Owned(quoted)
    } else {
        Cow::Borrowed(s)
    }
}

/// Makes text fit an xlsx string cell: drops the characters XML 1.0 cannot carry (C0
/// controls other than tab, newline and carriage return; U+FFFE and U+FFFF) and truncates
/// to Excel's 32,767-unit cell limit at a character boundary (a longer string would make
/// the writer fail the whole workbook).
pub fn excel_text(s: &str) -> Cow<'_, str> {
    // Fast path, the common case: no byte that could start a dropped character, and
    // short enough that even one UTF-16 unit per byte stays within the limit.
    if s.len() <= EXCEL_MAX_CELL_CHARS && !s.bytes().any(suspicious_byte) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len().min(EXCEL_MAX_CELL_CHARS * 3));
    let mut units = 0;
    let mut changed = false;
    for ch in s.chars() {
        if !xml_char(ch) {
            changed = true;
            continue;
        }
        let len = ch.len_utf16();
        if units + len > EXCEL_MAX_CELL_CHARS {
            changed = true;
            break;
        }
        units += len;
        out.push(ch);
    }
    if changed {
        Cow::Owned(out)
    } else {
        Cow::Borrowed(s)
    }
}

/// A byte that is, or may begin, a character [`excel_text`] drops (0xEF starts U+FFFE/F).
fn suspicious_byte(b: u8) -> bool {
    (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r')) || b == 0xEF
}

/// Whether XML 1.0 can carry the character (surrogates cannot occur in a Rust `str`).
fn xml_char(ch: char) -> bool {
    !matches!(ch, '\u{0}'..='\u{8}' | '\u{B}' | '\u{C}' | '\u{E}'..='\u{1F}' | '\u{FFFE}' | '\u{FFFF}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_formula_triggers_are_prefixed_with_a_quote() {
        for s in [
            "=HYPERLINK(\"http://x\",\"y\")",
            "+cmd|' /C calc'!A0",
            "-2+3",
            "@SUM(1)",
            "\tleading tab",
            "\rleading cr",
        ] {
            assert_eq!(csv_safe(s), format!("'{s}"), "{s:?}");
        }
    }

    #[test]
    fn csv_ordinary_text_is_borrowed_unchanged() {
        for s in [
            "build agent",
            "",
            "a=b",
            "<script>alert(1)</script>",
            "'quoted",
        ] {
            assert!(matches!(csv_safe(s), Cow::Borrowed(b) if b == s), "{s:?}");
        }
    }

    #[test]
    fn excel_text_keeps_ordinary_text_borrowed() {
        for s in [
            "plain",
            "=1+1",
            "tab\there\nnewline\r",
            "ünïcödé ✓ 𝄞",
            "\u{FEFF}bom",
        ] {
            assert!(matches!(excel_text(s), Cow::Borrowed(b) if b == s), "{s:?}");
        }
    }

    #[test]
    fn excel_text_drops_characters_xml_cannot_carry() {
        assert_eq!(
            excel_text("a\u{0}b\u{1}c\u{1F}d\u{FFFE}e\u{FFFF}f\u{B}"),
            "abcdef"
        );
    }

    #[test]
    fn excel_text_truncates_to_the_cell_limit_at_a_char_boundary() {
        let long = "x".repeat(EXCEL_MAX_CELL_CHARS + 10);
        assert_eq!(excel_text(&long).len(), EXCEL_MAX_CELL_CHARS);

        // A character outside the BMP takes two UTF-16 units: it must not be split.
        let mut edge = "x".repeat(EXCEL_MAX_CELL_CHARS - 1);
        edge.push('𝄞');
        let cut = excel_text(&edge);
        assert_eq!(cut.encode_utf16().count(), EXCEL_MAX_CELL_CHARS - 1);
        assert!(!cut.contains('𝄞'));

        // Multi-byte text exactly at the limit is kept whole.
        let wide = "é".repeat(EXCEL_MAX_CELL_CHARS);
        assert!(matches!(excel_text(&wide), Cow::Borrowed(_)));
    }
}
