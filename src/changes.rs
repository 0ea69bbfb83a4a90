//! What changed since the last report of the same organization: new tokens, tokens gone,
//! tokens changed (expiry, scope, name, targets, revoked), new holders and holders gone, keyed
//! by authorization id.
//!
//! Plain data and functions. The earlier report is streamed ([`compare_with`]): one row at a
//! time, only the fields a comparison needs, from any schema version of the JSON report (the
//! row keys these fields use have not changed since version 1). Neither its text nor its rows
//! are held: at 100,000 rows, holding them cost more than the rest of the run's peak allowed.

use std::collections::{HashMap, HashSet};
use std::io::Read;

use time::OffsetDateTime;

use crate::findings::Severity;
use crate::report::{Report, ReportError, TokenRow, TokenStatus};

/// One row of the earlier report, as far as a comparison needs it.
#[derive(Debug, Clone, serde::Deserialize)]
struct BaselineToken {
    #[serde(default)]
    authorization_id: String,
    #[serde(default)]
    owner_display_name: String,
    #[serde(default)]
    owner_principal_name: String,
    #[serde(default)]
    owner_descriptor: String,
    #[serde(default)]
    pat_name: Option<String>,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    target_accounts: Vec<String>,
    #[serde(default, with = "crate::domain::timestamp::serde::option")]
    valid_to: Option<OffsetDateTime>,
    status: TokenStatus,
}

#[derive(serde::Deserialize)]
struct BaselineRun {
    org: String,
    #[serde(with = "crate::domain::timestamp::serde")]
    generated: OffsetDateTime,
    #[serde(default = "yes")]
    complete: bool,
}

fn yes() -> bool {
    true
}

/// Compare `report` with the earlier JSON report `reader` holds (`source` names it).
pub fn compare_with(
    reader: impl Read,
    source: &str,
    report: &Report,
) -> Result<Changes, ReportError> {
    use serde::de::Deserializer as _;
    let mut comparer = Comparer::new(report);
    let mut de = serde_json::Deserializer::from_reader(std::io::BufReader::new(reader));
    let header = de.deserialize_map(FileVisitor {
        on_row: &mut |old| comparer.take(old),
    })?;
    de.end()?;
    let Some(run) = header.run else {
        use serde::de::Error as _;
        return Err(serde_json::Error::custom("not a patreport JSON report (no run)").into());
    };
    if !run.org.eq_ignore_ascii_case(report.run.org.as_str()) {
        return Ok(Changes::none(format!(
            "Not compared: {source} is a report of organization {}, not {}.",
            run.org,
            report.run.org.as_str()
        )));
    }
    Ok(comparer.finish(Previous {
        source: source.to_owned(),
        generated: run.generated,
        schema_version: header.schema_version.unwrap_or(1),
        complete: run.complete,
    }))
}

/// What the top level of the file gives besides its rows.
struct Header {
    schema_version: Option<u32>,
    run: Option<BaselineRun>,
}

/// Walks the report's top-level object, handing each row to `on_row` as it is read.
struct FileVisitor<'a> {
    on_row: &'a mut dyn FnMut(BaselineToken),
}

impl<'de> serde::de::Visitor<'de> for FileVisitor<'_> {
    type Value = Header;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a patreport JSON report")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Header, A::Error> {
        let mut header = Header {
            schema_version: None,
            run: None,
        };
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match key.as_ref() {
                "schema_version" => header.schema_version = map.next_value()?,
                "run" => header.run = Some(map.next_value()?),
                "rows" => map.next_value_seed(Rows {
                    on_row: &mut *self.on_row,
                })?,
                _ => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        Ok(header)
    }
}

/// The `rows` array, one element at a time.
struct Rows<'a> {
    on_row: &'a mut dyn FnMut(BaselineToken),
}

impl<'de> serde::de::DeserializeSeed<'de> for Rows<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Rows<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("the report's rows")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(row) = seq.next_element::<BaselineToken>()? {
            (self.on_row)(row);
        }
        Ok(())
    }
}

/// The report compared with.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Previous {
    pub source: String,
    #[serde(with = "crate::domain::timestamp::serde")]
    pub generated: OffsetDateTime,
    pub schema_version: u32,
    pub complete: bool,
}

/// A token as the change lists name it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TokenRef {
    pub authorization_id: String,
    pub owner_display_name: String,
    pub owner_principal_name: String,
    pub pat_name: Option<String>,
    #[serde(default, with = "crate::domain::timestamp::serde::option")]
    pub valid_to: Option<OffsetDateTime>,
    /// Its most severe finding now (none for a token gone).
    pub severity: Option<Severity>,
}

/// Why a token is no longer listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GoneReason {
    /// Its end date had passed: the service drops expired tokens from listings in time.
    ExpiredOut,
    /// Its owner holds no token any more, or is gone from the organization.
    OwnerGone,
    /// Revoked or deleted (its owner still holds others).
    Revoked,
}

impl GoneReason {
    pub fn describe(self) -> &'static str {
        match self {
            GoneReason::ExpiredOut => "expired, no longer listed",
            GoneReason::OwnerGone => "owner holds no token now (or left)",
            GoneReason::Revoked => "revoked or deleted",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GoneToken {
    #[serde(flatten)]
    pub token: TokenRef,
    pub reason: GoneReason,
}

/// One field of a token that changed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FieldChange {
    /// The JSON key of the field: `pat_name`, `scope`, `target_accounts`, `valid_to`, `status`.
    pub field: String,
    pub before: String,
    pub after: String,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChangedToken {
    #[serde(flatten)]
    pub token: TokenRef,
    pub fields: Vec<FieldChange>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HolderRef {
    pub display_name: String,
    pub principal_name: String,
    pub pats: usize,
}

/// How many of each change.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChangeCounts {
    pub new_pats: usize,
    pub gone_pats: usize,
    pub changed_pats: usize,
    pub new_holders: usize,
    pub holders_gone: usize,
    /// Tokens of owners this run could not read: neither new nor gone, just unknown.
    pub not_compared: usize,
}

/// The changes since the previous report, or why there are none to show.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Changes {
    /// `None`: nothing to compare with (a first run), or it could not be used (`note`).
    pub previous: Option<Previous>,
    /// Said to the reader: why nothing was compared, or what to keep in mind.
    pub note: Option<String>,
    pub counts: ChangeCounts,
    pub new_pats: Vec<TokenRef>,
    pub gone_pats: Vec<GoneToken>,
    pub changed_pats: Vec<ChangedToken>,
    pub new_holders: Vec<HolderRef>,
    pub holders_gone: Vec<HolderRef>,
}

/// The changes without their lists: what a run status, a log line or a notification needs.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ChangeSummary {
    pub previous: Option<Previous>,
    pub note: Option<String>,
    pub counts: ChangeCounts,
}

impl Changes {
    pub fn summary(&self) -> ChangeSummary {
        ChangeSummary {
            previous: self.previous.clone(),
            note: self.note.clone(),
            counts: self.counts,
        }
    }

    /// Nothing to compare with, and why.
    pub fn none(note: impl Into<String>) -> Changes {
        Changes {
            note: Some(note.into()),
            ..Changes::default()
        }
    }
}

/// The first run of an organization.
pub const FIRST_RUN: &str =
    "No earlier report of this organization to compare with: this is the first.";

/// The comparison as the earlier rows stream past.
///
/// Tokens of owners this run could not read (the Errors sheet), or of owners a partial scan
/// never reached, are neither new nor gone: they are counted as not compared. Status moves
/// that only the clock makes (active → expiring → expired) are not changes; a token becoming
/// invalid (revoked) is.
struct Comparer<'r> {
    report: &'r Report,
    /// The report's rows by authorization id, and whether the earlier report had each.
    now: HashMap<&'r str, usize>,
    seen: Vec<bool>,
    unread: HashSet<&'r str>,
    holders_now: HashMap<&'r str, HolderRef>,
    /// Earlier holders by descriptor (owned: the rows they came from are gone).
    holders_before: HashMap<String, HolderRef>,
    changed: Vec<ChangedToken>,
    gone: Vec<GoneToken>,
    not_compared: usize,
}

impl<'r> Comparer<'r> {
    fn new(report: &'r Report) -> Self {
        let now = (0..report.rows.len())
            .filter(|&i| !report.rows[i].authorization_id.is_empty())
            .map(|i| (report.rows[i].authorization_id.as_str(), i))
            .collect();
        let mut holders_now: HashMap<&str, HolderRef> = HashMap::new();
        // Revoked rows (listed with --include-invalid) hold nothing: not holders, not new.
        for row in report
            .rows
            .iter()
            .filter(|r| r.status != TokenStatus::Invalid)
        {
            holders_now
                .entry(row.owner.descriptor.as_str())
                .or_insert_with(|| HolderRef {
                    display_name: row.owner.display_name.clone(),
                    principal_name: row.owner.principal_name.clone(),
                    pats: 0,
                })
                .pats += 1;
        }
        Comparer {
            report,
            now,
            seen: vec![false; report.rows.len()],
            unread: report
                .errors
                .iter()
                .map(|e| e.user_descriptor.as_str())
                .collect(),
            holders_now,
            holders_before: HashMap::new(),
            changed: Vec::new(),
            gone: Vec::new(),
            not_compared: 0,
        }
    }

    /// Whether this run read the owner with `descriptor` (a partial scan reached only some).
    fn reached(&self, descriptor: &str) -> bool {
        !self.unread.contains(descriptor)
            && (!self.report.run.stopped_early || self.holders_now.contains_key(descriptor))
    }

    fn take(&mut self, old: BaselineToken) {
        if old.status == TokenStatus::Invalid {
            // Seen, so a revoked token still listed is not new; otherwise as if absent.
            if let Some(&i) = self.now.get(old.authorization_id.as_str()) {
                self.seen[i] = true;
            }
            return;
        }
        self.holders_before
            .entry(old.owner_descriptor.clone())
            .or_insert_with(|| HolderRef {
                display_name: old.owner_display_name.clone(),
                principal_name: old.owner_principal_name.clone(),
                pats: 0,
            })
            .pats += 1;
        if old.authorization_id.is_empty() {
            return;
        }
        if let Some(&i) = self.now.get(old.authorization_id.as_str()) {
            self.seen[i] = true;
            let row = &self.report.rows[i];
            let fields = changed_fields(&old, row);
            if !fields.is_empty() {
                self.changed.push(ChangedToken {
                    token: token_ref(row),
                    fields,
                });
            }
            return;
        }
        if !self.reached(&old.owner_descriptor) {
            self.not_compared += 1;
            return;
        }
        let reason = if old
            .valid_to
            .is_some_and(|to| to < self.report.run.generated)
        {
            GoneReason::ExpiredOut
        } else if !self.holders_now.contains_key(old.owner_descriptor.as_str()) {
            GoneReason::OwnerGone
        } else {
            GoneReason::Revoked
        };
        self.gone.push(GoneToken {
            token: TokenRef {
                authorization_id: old.authorization_id,
                owner_display_name: old.owner_display_name,
                owner_principal_name: old.owner_principal_name,
                pat_name: old.pat_name,
                valid_to: old.valid_to,
                severity: None,
            },
            reason,
        });
    }

    fn finish(self, previous: Previous) -> Changes {
        let report = self.report;
        let new_pats: Vec<TokenRef> = (0..report.rows.len())
            .filter(|&i| {
                let row = &report.rows[i];
                !self.seen[i]
                    && !row.authorization_id.is_empty()
                    && row.status != TokenStatus::Invalid
            })
            .map(|i| token_ref(&report.rows[i]))
            .collect();
        let mut new_holders: Vec<HolderRef> = self
            .holders_now
            .iter()
            .filter(|(descriptor, _)| !self.holders_before.contains_key(**descriptor))
            .map(|(_, holder)| holder.clone())
            .collect();
        let mut holders_gone: Vec<HolderRef> = self
            .holders_before
            .iter()
            .filter(|(descriptor, _)| {
                !self.holders_now.contains_key(descriptor.as_str()) && self.reached(descriptor)
            })
            .map(|(_, holder)| holder.clone())
            .collect();
        for list in [&mut new_holders, &mut holders_gone] {
            list.sort_by(|a, b| {
                (a.principal_name.to_lowercase(), &a.principal_name)
                    .cmp(&(b.principal_name.to_lowercase(), &b.principal_name))
            });
        }
        let mut gone_pats = self.gone;
        gone_pats.sort_by(|a, b| by_owner(&a.token, &b.token));
        let counts = ChangeCounts {
            new_pats: new_pats.len(),
            gone_pats: gone_pats.len(),
            changed_pats: self.changed.len(),
            new_holders: new_holders.len(),
            holders_gone: holders_gone.len(),
            not_compared: self.not_compared,
        };
        let mut notes = Vec::new();
        if counts.not_compared > 0 {
            notes.push(format!(
                "{} earlier tokens belong to owners this run could not read: not compared.",
                counts.not_compared
            ));
        }
        if !previous.complete {
            notes.push(
                "The earlier report was incomplete: some tokens listed as new may only have \
                 been missed then."
                    .to_owned(),
            );
        }
        Changes {
            previous: Some(previous),
            note: (!notes.is_empty()).then(|| notes.join(" ")),
            counts,
            new_pats,
            gone_pats,
            changed_pats: self.changed,
            new_holders,
            holders_gone,
        }
    }
}

fn by_owner(a: &TokenRef, b: &TokenRef) -> std::cmp::Ordering {
    a.owner_principal_name
        .to_lowercase()
        .cmp(&b.owner_principal_name.to_lowercase())
        .then_with(|| a.authorization_id.cmp(&b.authorization_id))
}

fn token_ref(row: &TokenRow) -> TokenRef {
    TokenRef {
        authorization_id: row.authorization_id.clone(),
        owner_display_name: row.owner.display_name.clone(),
        owner_principal_name: row.owner.principal_name.clone(),
        pat_name: row.pat_name.clone(),
        valid_to: row.valid_to,
        severity: row.findings.severity(),
    }
}

fn changed_fields(old: &BaselineToken, row: &TokenRow) -> Vec<FieldChange> {
    let mut fields = Vec::new();
    let mut note = |field: &str, before: String, after: String| {
        if before != after {
            fields.push(FieldChange {
                field: field.to_owned(),
                before,
                after,
            });
        }
    };
    note(
        "pat_name",
        old.pat_name.clone().unwrap_or_default(),
        row.pat_name.clone().unwrap_or_default(),
    );
    note(
        "scope",
        normalize_scope(&old.scope),
        normalize_scope(&row.scope),
    );
    note(
        "target_accounts",
        sorted(&old.target_accounts),
        sorted(&row.target_accounts),
    );
    let date =
        |d: Option<OffsetDateTime>| d.map(crate::domain::timestamp::rfc3339).unwrap_or_default();
    note("valid_to", date(old.valid_to), date(row.valid_to));
    let revoked = |s: TokenStatus| s == TokenStatus::Invalid;
    if revoked(old.status) != revoked(row.status) {
        note(
            "status",
            old.status.as_str().to_owned(),
            row.status.as_str().to_owned(),
        );
    }
    fields
}

/// Scopes compared as a set: the service may list them in another order.
fn normalize_scope(scope: &str) -> String {
    let mut scopes: Vec<&str> = scope.split_ascii_whitespace().collect();
    scopes.sort_unstable();
    scopes.dedup();
    scopes.join(" ")
}

/// Target accounts compared as a set, as scopes are.
fn sorted(list: &[String]) -> String {
    let mut list: Vec<&str> = list.iter().map(String::as_str).collect();
    list.sort_unstable();
    list.dedup();
    list.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::{Pat, User, UserFailure};
    use crate::report::build::tests::{NOW, inventory, pat, user};
    use crate::report::{ReportOptions, build, write_json};
    use time::Duration;

    fn report_of(users: Vec<(User, Vec<Pat>)>) -> Report {
        build(inventory(users), NOW, &ReportOptions::default(), "1")
    }

    /// `after` compared with `before` as written to JSON.
    fn compare(before: &Report, after: &Report) -> Changes {
        let mut json = Vec::new();
        write_json(before, &mut json).unwrap();
        compare_with(json.as_slice(), "earlier.json", after).unwrap()
    }

    fn ids<T>(list: &[T], id: impl Fn(&T) -> &str) -> Vec<String> {
        list.iter().map(|t| id(t).to_owned()).collect()
    }

    #[test]
    fn new_gone_changed_and_holders_are_keyed_by_authorization_id() {
        let later = NOW + Duration::days(60);
        let before = report_of(vec![
            (
                user("a"),
                vec![
                    pat("keep", Some(later)),
                    pat("rename", Some(later)),
                    pat("revoke", Some(later)),
                ],
            ),
            (user("b"), vec![pat("b-only", Some(later))]),
            (
                user("c"),
                vec![pat("expiring", Some(NOW - Duration::days(1)))],
            ),
        ]);
        let mut renamed = pat("rename", Some(later + Duration::days(30)));
        renamed.display_name = Some("renamed".into());
        renamed.scope = Some("vso.code_write".into());
        let after = report_of(vec![
            (
                user("a"),
                vec![pat("keep", Some(later)), renamed, pat("fresh", Some(later))],
            ),
            (user("d"), vec![pat("d-new", Some(later))]),
        ]);
        let changes = compare(&before, &after);
        assert_eq!(
            ids(&changes.new_pats, |t| &t.authorization_id),
            ["fresh", "d-new"]
        );
        let gone: Vec<_> = changes
            .gone_pats
            .iter()
            .map(|g| (g.token.authorization_id.as_str(), g.reason))
            .collect();
        assert_eq!(
            gone,
            [
                ("revoke", GoneReason::Revoked),
                ("b-only", GoneReason::OwnerGone),
                ("expiring", GoneReason::ExpiredOut)
            ]
        );
        assert_eq!(changes.changed_pats.len(), 1);
        let fields: Vec<_> = changes.changed_pats[0]
            .fields
            .iter()
            .map(|f| f.field.as_str())
            .collect();
        assert_eq!(fields, ["pat_name", "scope", "valid_to"]);
        assert_eq!(
            ids(&changes.new_holders, |h| &h.principal_name),
            ["d@contoso.com"]
        );
        assert_eq!(
            ids(&changes.holders_gone, |h| &h.principal_name),
            ["b@contoso.com", "c@contoso.com"]
        );
        assert_eq!(
            changes.counts,
            ChangeCounts {
                new_pats: 2,
                gone_pats: 3,
                changed_pats: 1,
                new_holders: 1,
                holders_gone: 2,
                not_compared: 0
            }
        );
    }

    #[test]
    fn the_same_report_has_no_changes_and_scope_order_does_not_matter() {
        let later = NOW + Duration::days(60);
        let mut p = pat("x", Some(later));
        p.scope = Some("vso.code vso.build".into());
        let before = report_of(vec![(user("a"), vec![p.clone()])]);
        p.scope = Some("vso.build  vso.code".into());
        let after = report_of(vec![(user("a"), vec![p])]);
        let changes = compare(&before, &after);
        assert_eq!(changes.counts, ChangeCounts::default());
        assert!(changes.previous.is_some() && changes.note.is_none());
    }

    #[test]
    fn revoked_rows_listed_this_time_are_neither_new_nor_holders() {
        let later = NOW + Duration::days(60);
        let before = report_of(vec![(user("a"), vec![pat("x", Some(later))])]);
        let mut revoked = pat("old-revoked", Some(later));
        revoked.is_valid = false;
        let after = build(
            inventory(vec![
                (user("a"), vec![pat("x", Some(later))]),
                (user("z"), vec![revoked]),
            ]),
            NOW,
            &ReportOptions {
                include_invalid: true,
                ..ReportOptions::default()
            },
            "1",
        );
        let changes = compare(&before, &after);
        assert_eq!(changes.counts, ChangeCounts::default(), "{changes:?}");
    }

    #[test]
    fn owners_not_read_this_time_are_not_reported_gone() {
        let later = NOW + Duration::days(60);
        let before = report_of(vec![(user("a"), vec![pat("x", Some(later))])]);
        let mut inv = inventory(vec![]);
        inv.failures.push(UserFailure {
            user: user("a"),
            status: Some(500),
            message: "boom".into(),
        });
        let after = build(inv, NOW, &ReportOptions::default(), "1");
        let changes = compare(&before, &after);
        assert!(changes.gone_pats.is_empty() && changes.holders_gone.is_empty());
        assert_eq!(changes.counts.not_compared, 1);
        assert!(changes.note.unwrap().contains("could not read"));
    }

    #[test]
    fn another_organization_is_not_compared() {
        let before = report_of(vec![]);
        let mut json = Vec::new();
        write_json(&before, &mut json).unwrap();
        let text = String::from_utf8(json)
            .unwrap()
            .replace("\"contoso\"", "\"fabrikam\"");
        let changes = compare_with(text.as_bytes(), "other.json", &report_of(vec![])).unwrap();
        assert!(changes.previous.is_none());
        assert!(changes.note.unwrap().contains("fabrikam"));
    }

    #[test]
    fn a_version_1_report_reads_as_a_baseline() {
        let v1 = r#"{"run":{"org":"contoso","generated":"2026-03-01T00:00:00Z","stopped_early":null,
            "complete":true},"summary":{"users_scanned":1},"rows":[{"owner_display_name":"A",
            "owner_principal_name":"a@contoso.com","owner_mail_address":"","owner_origin":"aad",
            "owner_descriptor":"aad.a","pat_name":"old","status":"active","full_access":false,
            "global":false,"scope_summary":"","scope":"vso.code","target_accounts":["org"],
            "valid_from":null,"valid_to":"2026-04-01T00:00:00Z","days_to_expiry":null,
            "lifetime_days":null,"authorization_id":"v1-id"}],"errors":[]}"#;
        let changes = compare_with(
            v1.as_bytes(),
            "v1.json",
            &report_of(vec![(user("a"), vec![])]),
        )
        .unwrap();
        assert_eq!(changes.previous.unwrap().schema_version, 1);
        assert_eq!(changes.counts.gone_pats, 1);
        // Not a report: an error, not a comparison.
        assert!(compare_with(&b"{\"rows\": []}"[..], "x.json", &report_of(vec![])).is_err());
        assert!(compare_with(&b"[1, 2]"[..], "x.json", &report_of(vec![])).is_err());
    }
}
