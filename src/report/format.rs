//! The files a report can be written as.

use std::fmt;

/// One rendering of a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Format {
    /// The Excel workbook: Summary, Tokens, Errors and Run sheets.
    Xlsx,
    /// The Tokens rows.
    Csv,
    /// Everything the report holds.
    Json,
    /// The self-contained page: summary cards, the sortable, filterable token table, errors
    /// and run details, readable offline in a browser.
    Html,
}

impl Format {
    /// Every format, in the order outputs are written and listed.
    pub const ALL: [Format; 4] = [Format::Xlsx, Format::Csv, Format::Json, Format::Html];

    /// The file extension, which is also the format's name in settings and flags.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Xlsx => "xlsx",
            Format::Csv => "csv",
            Format::Json => "json",
            Format::Html => "html",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            Format::Csv => "text/csv; charset=utf-8",
            Format::Json => "application/json",
            Format::Html => "text/html; charset=utf-8",
        }
    }

    /// A comma-separated list such as `xlsx,csv`: each named once, in [`Self::ALL`] order.
    pub fn parse_list(text: &str) -> Result<Vec<Format>, String> {
        let mut formats = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let format: Format = part.parse()?;
            if !formats.contains(&format) {
                formats.push(format);
            }
        }
        if formats.is_empty() {
            return Err("names no format: use xlsx, csv, json or html, comma-separated".into());
        }
        formats.sort_unstable();
        Ok(formats)
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.extension())
    }
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Format::ALL
            .into_iter()
            .find(|f| f.extension().eq_ignore_ascii_case(text.trim()))
            .ok_or_else(|| format!("'{text}' is not a format: use xlsx, csv, json or html"))
    }
}

impl serde::Serialize for Format {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.extension())
    }
}

impl<'de> serde::Deserialize<'de> for Format {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_parse_in_a_fixed_order_once_each() {
        assert_eq!(
            Format::parse_list("json, XLSX,json").unwrap(),
            vec![Format::Xlsx, Format::Json]
        );
        assert!(Format::parse_list(" , ").is_err());
        assert!(
            Format::parse_list("xlsx,pdf")
                .unwrap_err()
                .contains("'pdf'")
        );
        assert_eq!(
            Format::parse_list("html,xlsx").unwrap(),
            vec![Format::Xlsx, Format::Html]
        );
    }

    #[test]
    fn html_is_a_page_in_utf_8() {
        assert_eq!("HTML".parse::<Format>().unwrap(), Format::Html);
        assert_eq!(Format::Html.extension(), "html");
        assert_eq!(Format::Html.content_type(), "text/html; charset=utf-8");
        assert!(Format::ALL.contains(&Format::Html));
    }
}
