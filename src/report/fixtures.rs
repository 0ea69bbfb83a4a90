//! Test reports shared by the writers' tests.

use time::Duration;

use super::build::build;
use super::build::tests::{NOW, inventory, pat, user};
use super::model::{Report, ReportOptions};
use crate::inventory::{Pat, User, UserFailure};

/// Names anyone in an organization could choose, meant to be evaluated by a spreadsheet
/// or a browser; every writer must keep them inert.
pub(crate) const HOSTILE: [&str; 7] = [
    "=HYPERLINK(\"http://x\",\"y\")",
    "+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(1)",
    "\tleading tab",
    "\rleading cr",
    "<script>alert(1)</script>",
];

/// A report whose PAT names are the [`HOSTILE`] strings (in that row order), owned by a
/// user whose display name is a formula, plus one full-access global expired PAT with
/// no name, and one failed user.
pub(crate) fn hostile_report() -> Report {
    let evil = User {
        display_name: "=1+1".into(),
        ..user("evil")
    };
    let pats = HOSTILE
        .iter()
        .enumerate()
        .map(|(i, name)| Pat {
            display_name: Some((*name).into()),
            ..pat(
                &format!("id{i}"),
                Some(NOW + Duration::days(100 + i as i64)),
            )
        })
        .collect();
    let full = Pat {
        display_name: None,
        scope: Some("app_token".into()),
        target_accounts: None,
        ..pat("zz", Some(NOW - Duration::days(2)))
    };
    let mut inv = inventory(vec![(evil, pats), (user("zoe"), vec![full])]);
    inv.failures.push(UserFailure {
        user: user("x"),
        status: Some(429),
        message: "@too many <requests>".into(),
    });
    build(inv, NOW, &ReportOptions::default(), "0.1.0")
}

/// A report of an organization without users.
pub(crate) fn empty_report() -> Report {
    build(inventory(vec![]), NOW, &ReportOptions::default(), "0.1.0")
}
