//! What to act on: each token's findings against a [`Policy`], with a severity.
//!
//! Plain data and pure functions. The rules ([`assess`]) look at one row, the policy and the
//! report's clock; the only rule that needs more than the row (an owner holding too many
//! active tokens) gets its count from the caller. A row keeps its findings as a small set
//! ([`Findings`], two bytes), so 100,000 rows cost nothing extra to carry them.

pub mod policy;
mod rules;

pub use policy::{Policy, PolicyError};
pub use rules::{GLOBAL_RETIREMENT, assess, assess_ssh_key};

use time::OffsetDateTime;

/// How urgently a finding should be acted on.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    /// Most severe first.
    pub const DESCENDING: [Severity; 4] = [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::High => "high",
            Severity::Medium => "medium",
            Severity::Low => "low",
        }
    }
}

/// One rule a token can break. The order is the bit order of [`Findings`]: append only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Rule {
    /// Scope `app_token`: the token can do anything its owner can.
    FullAccess,
    /// Reaches every organization, before global PATs were retired.
    Global,
    /// A global PAT after the retirement date: it no longer works, and is still listed.
    GlobalRetired,
    /// A Visual Studio Marketplace scope on a global token: publishing needs a migration.
    MarketplaceGlobal,
    /// Valid for longer than the policy's maximum lifetime.
    LifetimeOverMax,
    /// A write or manage scope the policy calls broad.
    BroadScope,
    /// Expires within the policy's urgent window (7 days by default).
    ExpiresUrgently,
    /// Expires within the policy's warning window (30 days by default).
    ExpiresSoon,
    /// Expired, and still in the owner's listing.
    ExpiredListed,
    /// Valid from a date still to come.
    NotYetValid,
    /// The service sent no start or no end date.
    MissingDates,
    /// Its owner holds more active tokens than the policy allows.
    OwnerManyTokens,
    /// An SSH key valid for longer than the policy's maximum SSH key lifetime.
    SshKeyLongLived,
    /// The audit log says Azure DevOps found it in a public repository, and it is still valid.
    LeakedPublicly,
    /// The audit log shows it used from a web browser (a PAT is for scripts and tools).
    UsedFromBrowser,
    /// The audit log shows it used for security, policy, membership or auditing changes.
    SensitiveUse,
}

impl Rule {
    /// In the order a token's findings are listed within one severity (a leak's action comes
    /// before any other). Not the bit order: that is the declaration order, append only.
    pub const ALL: [Rule; 16] = [
        Rule::LeakedPublicly,
        Rule::FullAccess,
        Rule::UsedFromBrowser,
        Rule::SensitiveUse,
        Rule::Global,
        Rule::GlobalRetired,
        Rule::MarketplaceGlobal,
        Rule::LifetimeOverMax,
        Rule::BroadScope,
        Rule::ExpiresUrgently,
        Rule::ExpiresSoon,
        Rule::ExpiredListed,
        Rule::NotYetValid,
        Rule::MissingDates,
        Rule::OwnerManyTokens,
        Rule::SshKeyLongLived,
    ];

    /// The stable name used in JSON, CSV and policy files.
    pub fn code(self) -> &'static str {
        match self {
            Rule::FullAccess => "full_access",
            Rule::Global => "global",
            Rule::GlobalRetired => "global_retired",
            Rule::MarketplaceGlobal => "marketplace_global",
            Rule::LifetimeOverMax => "lifetime_over_max",
            Rule::BroadScope => "broad_scope",
            Rule::ExpiresUrgently => "expires_urgently",
            Rule::ExpiresSoon => "expires_soon",
            Rule::ExpiredListed => "expired_listed",
            Rule::NotYetValid => "not_yet_valid",
            Rule::MissingDates => "missing_dates",
            Rule::OwnerManyTokens => "owner_many_tokens",
            Rule::SshKeyLongLived => "ssh_key_long_lived",
            Rule::LeakedPublicly => "leaked_publicly",
            Rule::UsedFromBrowser => "used_from_browser",
            Rule::SensitiveUse => "sensitive_use",
        }
    }

    pub fn from_code(code: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|r| r.code() == code)
    }

    pub const fn severity(self) -> Severity {
        match self {
            Rule::FullAccess | Rule::LeakedPublicly => Severity::Critical,
            Rule::Global | Rule::MarketplaceGlobal | Rule::UsedFromBrowser | Rule::SensitiveUse => {
                Severity::High
            }
            Rule::LifetimeOverMax
            | Rule::BroadScope
            | Rule::ExpiresUrgently
            | Rule::NotYetValid
            | Rule::MissingDates
            | Rule::SshKeyLongLived => Severity::Medium,
            Rule::GlobalRetired
            | Rule::ExpiresSoon
            | Rule::ExpiredListed
            | Rule::OwnerManyTokens => Severity::Low,
        }
    }

    /// A short label for a cell or a list.
    pub fn label(self) -> &'static str {
        match self {
            Rule::FullAccess => "Full access",
            Rule::Global => "Global",
            Rule::GlobalRetired => "Global (retired)",
            Rule::MarketplaceGlobal => "Marketplace on a global token",
            Rule::LifetimeOverMax => "Lifetime above policy",
            Rule::BroadScope => "Broad write or manage scope",
            Rule::ExpiresUrgently => "Expires within days",
            Rule::ExpiresSoon => "Expires soon",
            Rule::ExpiredListed => "Expired, still listed",
            Rule::NotYetValid => "Not valid yet",
            Rule::MissingDates => "Missing dates",
            Rule::OwnerManyTokens => "Owner holds many tokens",
            Rule::SshKeyLongLived => "Long-lived SSH key",
            Rule::LeakedPublicly => "Found in a public repository",
            Rule::UsedFromBrowser => "Used from a web browser",
            Rule::SensitiveUse => "Used for security-sensitive changes",
        }
    }

    /// What to do about it, in a sentence.
    pub fn action(self) -> &'static str {
        match self {
            Rule::FullAccess => {
                "Replace it with a token limited to the scopes it needs, then revoke it."
            }
            Rule::Global => {
                "Global PATs stop working on 1 December 2026: replace it with a PAT scoped to one \
                 organization."
            }
            Rule::GlobalRetired => {
                "Global PATs no longer work since 1 December 2026: revoke it to tidy the listing."
            }
            Rule::MarketplaceGlobal => {
                "Marketplace publishing tokens had to be global: migrate the publisher's pipeline \
                 (Microsoft Entra sign-in or a new token), do not only revoke it."
            }
            Rule::LifetimeOverMax => {
                "Longer-lived than today's policy allows (it predates the policy): shorten it by \
                 replacing it."
            }
            Rule::BroadScope => "Check it needs write or manage rights; narrow it if not.",
            Rule::ExpiresUrgently => {
                "Expires within days: tell the owner, so whatever uses it does not break."
            }
            Rule::ExpiresSoon => "Expires soon: plan its renewal or retirement with the owner.",
            Rule::ExpiredListed => "Expired: the owner can delete it from their list.",
            Rule::NotYetValid => "Starts in the future: check who made it and why.",
            Rule::MissingDates => "The service gave no validity dates: check it by hand.",
            Rule::OwnerManyTokens => {
                "Its owner holds more active tokens than the policy allows: review them together."
            }
            Rule::SshKeyLongLived => "Replace it with a key that expires sooner.",
            Rule::LeakedPublicly => {
                "Azure DevOps found it in a public repository and it still works: revoke it now, \
                 then review what it did (audit log) and remove it from the repository."
            }
            Rule::UsedFromBrowser => {
                "The audit log shows it used from a web browser: ask the owner why; a PAT pasted \
                 into a browser session may have been stolen."
            }
            Rule::SensitiveUse => {
                "The audit log shows it changing security, policy or membership: confirm the owner \
                 meant to, and narrow its scope."
            }
        }
    }
}

/// The findings of one token: a set of [`Rule`]s.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Findings(u16);

impl Findings {
    pub const NONE: Findings = Findings(0);

    pub fn insert(&mut self, rule: Rule) {
        self.0 |= 1 << rule as u8;
    }

    pub fn contains(self, rule: Rule) -> bool {
        self.0 & (1 << rule as u8) != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The rules, most severe first (then in rule order).
    pub fn iter(self) -> impl Iterator<Item = Rule> {
        BY_SEVERITY.into_iter().filter(move |r| self.contains(*r))
    }

    /// The most severe finding's severity; `None` without findings. Called per row by every
    /// writer and by the ranking, so it is a few mask tests, not a walk over the rules.
    pub fn severity(self) -> Option<Severity> {
        Severity::DESCENDING
            .into_iter()
            .find(|&severity| self.0 & severity_mask(severity) != 0)
    }

    /// The labels, most severe first, joined with ", ".
    pub fn labels(self) -> String {
        let mut text = String::new();
        self.write_labels(&mut text);
        text
    }

    /// [`Findings::labels`] into a reused buffer (one per writer, not one per row).
    pub fn write_labels(self, buffer: &mut String) {
        buffer.clear();
        for (i, rule) in self.iter().enumerate() {
            if i > 0 {
                buffer.push_str(", ");
            }
            buffer.push_str(rule.label());
        }
    }
}

/// Every rule, most severe first, then in rule order.
const BY_SEVERITY: [Rule; Rule::ALL.len()] = {
    let mut order = [Rule::FullAccess; Rule::ALL.len()];
    let mut n = 0;
    let mut s = 0;
    while s < Severity::DESCENDING.len() {
        let mut i = 0;
        while i < Rule::ALL.len() {
            if Rule::ALL[i].severity() as u8 == Severity::DESCENDING[s] as u8 {
                order[n] = Rule::ALL[i];
                n += 1;
            }
            i += 1;
        }
        s += 1;
    }
    order
};

/// The bits of [`Findings`] whose rule has `severity`.
const fn severity_mask(severity: Severity) -> u16 {
    let mut mask = 0;
    let mut i = 0;
    while i < Rule::ALL.len() {
        if Rule::ALL[i].severity() as u8 == severity as u8 {
            mask |= 1 << (Rule::ALL[i] as u8);
        }
        i += 1;
    }
    mask
}

impl FromIterator<Rule> for Findings {
    fn from_iter<I: IntoIterator<Item = Rule>>(rules: I) -> Self {
        let mut findings = Findings::NONE;
        for rule in rules {
            findings.insert(rule);
        }
        findings
    }
}

/// Written as the list of rule codes, most severe first.
impl serde::Serialize for Findings {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter().map(Rule::code))
    }
}

/// Read from a list of codes; a code this version does not know is skipped (a report written
/// by a later version still reads).
impl<'de> serde::Deserialize<'de> for Findings {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let codes = Vec::<String>::deserialize(d)?;
        Ok(codes.iter().filter_map(|c| Rule::from_code(c)).collect())
    }
}

/// How many tokens have each highest severity, and how many break each rule.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FindingCounts {
    /// Tokens whose most severe finding is critical (and so on).
    pub critical: usize,
    pub high: usize,
    pub medium: usize,
    pub low: usize,
    /// Tokens with at least one finding.
    pub tokens: usize,
    /// Per rule code, in rule order: how many tokens break it.
    pub by_rule: Vec<RuleCount>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RuleCount {
    pub rule: String,
    pub severity: Severity,
    pub label: String,
    pub tokens: usize,
}

impl FindingCounts {
    /// Counts over every token's findings.
    pub fn tally(all: impl IntoIterator<Item = Findings>) -> Self {
        let mut per_rule = [0usize; Rule::ALL.len()];
        let mut counts = FindingCounts::default();
        for findings in all {
            match findings.severity() {
                Some(Severity::Critical) => counts.critical += 1,
                Some(Severity::High) => counts.high += 1,
                Some(Severity::Medium) => counts.medium += 1,
                Some(Severity::Low) => counts.low += 1,
                None => continue,
            }
            counts.tokens += 1;
            for rule in findings.iter() {
                per_rule[rule as usize] += 1;
            }
        }
        counts.by_rule = Rule::ALL
            .into_iter()
            .map(|rule| (rule, per_rule[rule as usize]))
            .filter(|(_, n)| *n > 0)
            .map(|(rule, tokens)| RuleCount {
                rule: rule.code().to_owned(),
                severity: rule.severity(),
                label: rule.label().to_owned(),
                tokens,
            })
            .collect();
        counts
    }

    pub fn of(&self, severity: Severity) -> usize {
        match severity {
            Severity::Critical => self.critical,
            Severity::High => self.high,
            Severity::Medium => self.medium,
            Severity::Low => self.low,
        }
    }
}

/// Indices of the rows with findings, in the order to act on them: most severe first, then the
/// soonest to expire (no end date last), then the rows' own order (by owner).
pub fn ranked(rows: &[crate::report::TokenRow]) -> Vec<u32> {
    // Keys computed once per row: (most severe first, no end date last, soonest, row).
    let mut keyed: Vec<(std::cmp::Reverse<Severity>, bool, i64, u32)> = (0u32..)
        .zip(rows)
        .filter_map(|(i, r)| {
            let severity = r.findings.severity()?;
            let end = r.valid_to.map(|t| t.unix_timestamp());
            Some((
                std::cmp::Reverse(severity),
                end.is_none(),
                end.unwrap_or(0),
                i,
            ))
        })
        .collect();
    keyed.sort_unstable();
    keyed.into_iter().map(|(.., i)| i).collect()
}

/// Whether global PATs are retired at `now` (they stopped working on 1 December 2026).
pub fn global_retired(now: OffsetDateTime) -> bool {
    now >= GLOBAL_RETIREMENT
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_read_back() {
        for rule in Rule::ALL {
            assert_eq!(Rule::from_code(rule.code()), Some(rule));
        }
        let mut codes: Vec<_> = Rule::ALL.iter().map(|r| r.code()).collect();
        codes.dedup();
        assert_eq!(codes.len(), Rule::ALL.len());
        assert!(Rule::ALL.len() <= 16, "Findings is a u16 bit set");
        let mut bits: Vec<usize> = Rule::ALL.iter().map(|r| *r as usize).collect();
        bits.sort_unstable();
        assert_eq!(
            bits,
            (0..Rule::ALL.len()).collect::<Vec<_>>(),
            "every bit names one rule"
        );
    }

    #[test]
    fn findings_list_most_severe_first_and_round_trip_through_json() {
        let findings: Findings = [Rule::ExpiresSoon, Rule::Global, Rule::FullAccess]
            .into_iter()
            .collect();
        assert_eq!(findings.severity(), Some(Severity::Critical));
        assert_eq!(findings.labels(), "Full access, Global, Expires soon");
        let json = serde_json::to_string(&findings).unwrap();
        assert_eq!(json, r#"["full_access","global","expires_soon"]"#);
        let back: Findings =
            serde_json::from_str(r#"["global","expires_soon","full_access","from_the_future"]"#)
                .unwrap();
        assert_eq!(back, findings);
        assert_eq!(Findings::NONE.severity(), None);
    }

    #[test]
    fn tally_counts_tokens_by_highest_severity_and_rules() {
        let counts = FindingCounts::tally([
            [Rule::FullAccess, Rule::ExpiresSoon].into_iter().collect(),
            [Rule::ExpiresSoon].into_iter().collect(),
            Findings::NONE,
        ]);
        assert_eq!(
            (counts.critical, counts.high, counts.low, counts.tokens),
            (1, 0, 1, 2)
        );
        let rules: Vec<_> = counts
            .by_rule
            .iter()
            .map(|r| (r.rule.as_str(), r.tokens))
            .collect();
        assert_eq!(rules, [("full_access", 1), ("expires_soon", 2)]);
    }
}
