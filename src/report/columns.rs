//! The Tokens columns, defined once: their order, the header the workbook and the CSV show,
//! the key the JSON uses, and the value each takes from a row. The writers differ only in how
//! they render a kind of value (a date cell, RFC 3339 text, a JSON string).

use super::model::{TokenRow, TokenStatus};
use crate::findings::{Findings, Severity};
use time::OffsetDateTime;

/// One cell of a row, typed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    /// Text from the organization or derived from it (untrusted; may be empty).
    Text(&'a str),
    /// A PAT name, which the service may send as `null`: kept apart from an empty name.
    Name(Option<&'a str>),
    Status(TokenStatus),
    Flag(bool),
    /// The organizations a PAT reaches; none listed means every organization (global).
    Targets(&'a [String]),
    Date(Option<OffsetDateTime>),
    /// Whole days (negative once a PAT has expired).
    Days(Option<i64>),
    /// The most severe finding's severity; `None` without findings.
    Severity(Option<Severity>),
    /// The findings, most severe first.
    Findings(Findings),
}

/// The words every writer uses for the same values (workbook, CSV, the HTML view). JSON keeps
/// its types: booleans, lowercase names, an empty list of target accounts.
pub mod vocabulary {
    use super::TokenStatus;

    /// What the Target accounts column says for a global PAT.
    pub const ALL_ORGANIZATIONS: &str = "All organizations";

    /// A status as JSON names it.
    pub fn status(status: TokenStatus) -> &'static str {
        status.as_str()
    }

    pub fn flag(flag: bool) -> &'static str {
        if flag { "yes" } else { "no" }
    }
}

/// A column of the Tokens sheet, the CSV and the JSON rows.
pub struct Column {
    /// Header of the workbook's Tokens table and of the CSV.
    pub header: &'static str,
    /// Key in the JSON report's rows.
    pub key: &'static str,
    pub value: for<'a> fn(&'a TokenRow) -> Value<'a>,
}

/// Every column, in order: what an admin reads first (whose, which, its state, when it ends,
/// how far it reaches, what to do), then the rest.
pub const COLUMNS: [Column; 23] = [
    Column {
        header: "Owner",
        key: "owner_display_name",
        value: |r| Value::Text(&r.owner.display_name),
    },
    Column {
        header: "PAT name",
        key: "pat_name",
        value: |r| Value::Name(r.pat_name.as_deref()),
    },
    Column {
        header: "Status",
        key: "status",
        value: |r| Value::Status(r.status),
    },
    Column {
        header: "Valid to (UTC)",
        key: "valid_to",
        value: |r| Value::Date(r.valid_to),
    },
    Column {
        header: "Days to expiry",
        key: "days_to_expiry",
        value: |r| Value::Days(r.days_to_expiry),
    },
    Column {
        header: "Full access",
        key: "full_access",
        value: |r| Value::Flag(r.full_access),
    },
    Column {
        header: "Global",
        key: "global",
        value: |r| Value::Flag(r.global),
    },
    Column {
        header: "Severity",
        key: "severity",
        value: |r| Value::Severity(r.findings.severity()),
    },
    Column {
        header: "Findings",
        key: "findings",
        value: |r| Value::Findings(r.findings),
    },
    Column {
        header: "Scope summary",
        key: "scope_summary",
        value: |r| Value::Text(&r.scope_summary),
    },
    Column {
        header: "Principal name",
        key: "owner_principal_name",
        value: |r| Value::Text(&r.owner.principal_name),
    },
    Column {
        header: "Mail",
        key: "owner_mail_address",
        value: |r| Value::Text(&r.owner.mail_address),
    },
    Column {
        header: "Origin",
        key: "owner_origin",
        value: |r| Value::Text(&r.owner.origin),
    },
    Column {
        header: "Target accounts",
        key: "target_accounts",
        value: |r| Value::Targets(&r.target_accounts),
    },
    Column {
        header: "Valid from (UTC)",
        key: "valid_from",
        value: |r| Value::Date(r.valid_from),
    },
    Column {
        header: "Lifetime (days)",
        key: "lifetime_days",
        value: |r| Value::Days(r.lifetime_days),
    },
    Column {
        header: "Scope",
        key: "scope",
        value: |r| Value::Text(&r.scope),
    },
    Column {
        header: "User descriptor",
        key: "owner_descriptor",
        value: |r| Value::Text(&r.owner.descriptor),
    },
    Column {
        header: "Authorization id",
        key: "authorization_id",
        value: |r| Value::Text(&r.authorization_id),
    },
    // From the audit log (empty when it was not read, or says nothing of the token).
    Column {
        header: "Last audited use (UTC)",
        key: "last_audited_use",
        value: |r| Value::Date(audited(r).and_then(|a| a.last_use.as_ref()).map(|u| u.at)),
    },
    Column {
        header: "Last audited operation",
        key: "last_audited_operation",
        value: |r| {
            Value::Text(
                audited(r)
                    .and_then(|a| a.last_use.as_ref())
                    .map_or("", |u| u.action.as_str()),
            )
        },
    },
    Column {
        header: "Found in a public repository (UTC)",
        key: "publicly_discovered",
        value: |r| Value::Date(audited(r).and_then(|a| a.discovered)),
    },
    Column {
        header: "Revoked by Azure DevOps (UTC)",
        key: "system_revoked",
        value: |r| Value::Date(audited(r).and_then(|a| a.system_revoked)),
    },
];

fn audited(r: &TokenRow) -> Option<&crate::auditlog::TokenSignals> {
    r.audit.as_deref()
}

/// The headers, in column order.
pub const HEADERS: [&str; COLUMNS.len()] = {
    let mut headers = [""; COLUMNS.len()];
    let mut i = 0;
    while i < COLUMNS.len() {
        headers[i] = COLUMNS[i].header;
        i += 1;
    }
    headers
};

/// The position of the column with JSON key `key` (a compile-time error if there is none).
pub const fn position(key: &str) -> u16 {
    let mut i = 0;
    while i < COLUMNS.len() {
        if eq(COLUMNS[i].key.as_bytes(), key.as_bytes()) {
            return i as u16;
        }
        i += 1;
    }
    panic!("no such column")
}

const fn eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Rows serialize through the columns, so the JSON keys are the columns' keys, in their order.
impl serde::Serialize for TokenRow {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(COLUMNS.len()))?;
        for column in &COLUMNS {
            match (column.value)(self) {
                Value::Text(text) => map.serialize_entry(column.key, text)?,
                Value::Name(name) => map.serialize_entry(column.key, &name)?,
                Value::Status(status) => map.serialize_entry(column.key, &status)?,
                Value::Flag(flag) => map.serialize_entry(column.key, &flag)?,
                Value::Targets(targets) => map.serialize_entry(column.key, targets)?,
                Value::Date(date) => {
                    map.serialize_entry(column.key, &date.map(crate::domain::timestamp::rfc3339))?
                }
                Value::Days(days) => map.serialize_entry(column.key, &days)?,
                Value::Severity(severity) => map.serialize_entry(column.key, &severity)?,
                Value::Findings(findings) => map.serialize_entry(column.key, &findings)?,
            }
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures::hostile_report;

    #[test]
    fn keys_and_headers_are_unique() {
        let mut keys: Vec<&str> = COLUMNS.iter().map(|c| c.key).collect();
        keys.sort_unstable();
        keys.dedup();
        let mut headers = HEADERS.to_vec();
        headers.sort_unstable();
        headers.dedup();
        assert_eq!((keys.len(), headers.len()), (COLUMNS.len(), COLUMNS.len()));
        assert_eq!(position("status"), 2);
        assert_eq!(
            COLUMNS[usize::from(position("authorization_id"))].header,
            "Authorization id"
        );
    }

    #[test]
    fn json_rows_have_exactly_the_column_keys_in_order() {
        let report = hostile_report();
        let text = serde_json::to_string(&report.rows[0]).unwrap();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        let keys: Vec<&String> = value.as_object().unwrap().keys().collect();
        let mut expected: Vec<&str> = COLUMNS.iter().map(|c| c.key).collect();
        expected.sort_unstable(); // serde_json's map is sorted
        assert_eq!(keys, expected);
        let order: Vec<usize> = COLUMNS
            .iter()
            .map(|c| text.find(&format!("\"{}\":", c.key)).unwrap())
            .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{text}");
    }
}
