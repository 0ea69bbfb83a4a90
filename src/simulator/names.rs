//! Word lists for the generated organization. Kept apart from the generator so the
//! generator reads as logic, not data.

pub(crate) const FIRST_NAMES: &[&str] = &[
    "Aisha", "Alejandro", "Amara", "Anders", "Ana", "Arjun", "Beatriz", "Benjamin", "Chen",
    "Chiara", "Daniel", "Dmitri", "Elena", "Emeka", "Emma", "Farah", "Fatima", "Felix", "Grace",
    "Hannah", "Hiroshi", "Ingrid", "Isabel", "Ivan", "Jamal", "James", "Jin", "José", "Julia",
    "Kai", "Kavya", "Lars", "Laura", "Leila", "Liam", "Lucía", "Mai", "Marco", "María", "Mateo",
    "Mei", "Mohammed", "Nadia", "Niamh", "Noah", "Olga", "Oliver", "Omar", "Priya", "Rafael",
    "Rahul", "Rosa", "Sakura", "Samuel", "Sara", "Sofia", "Søren", "Tariq", "Thomas", "Uma",
    "Valentina", "Wei", "Xavier", "Yara", "Yusuf", "Zainab", "Łukasz", "Zoë", "François", "Ngozi",
];

pub(crate) const LAST_NAMES: &[&str] = &[
    "Abadi", "Adeyemi", "Andersson", "Bauer", "Becker", "Brown", "Carvalho", "Chen", "Costa",
    "Dubois", "Eriksen", "Fernández", "Fischer", "García", "Gonzalez", "Gupta", "Hansen",
    "Hernández", "Ivanova", "Jansen", "Johnson", "Kim", "Kowalski", "Kumar", "Larsen", "Lee",
    "López", "Martin", "Müller", "Nakamura", "Nguyen", "Novak", "O'Brien", "Okafor", "Olsen",
    "Patel", "Pereira", "Petrov", "Rossi", "Santos", "Schmidt", "Silva", "Singh", "Smith",
    "Sørensen", "Suzuki", "Tanaka", "Taylor", "Thompson", "Van der Berg", "Wang", "Weber",
    "Williams", "Wójcik", "Yamamoto", "Zhang",
];

/// Display names that must survive a report untouched and harmless: spreadsheet formula
/// injection, HTML, and non-ASCII text.
pub(crate) const HOSTILE_USER_NAMES: &[&str] = &[
    "=HYPERLINK(\"http://x\",\"y\")",
    "+cmd|' /C calc'!A0",
    "<script>alert(1)</script>",
    "@SUM(1+1)",
    "Zoë Ångström",
    "山田太郎",
    "-2+3 Minus",
    "Ünïcödé \u{202E}Reversed",
];

/// PAT names with the same traps as [`HOSTILE_USER_NAMES`].
pub(crate) const HOSTILE_PAT_NAMES: &[&str] = &[
    "=HYPERLINK(\"http://x\",\"y\")",
    "+cmd|' /C calc'!A0",
    "<script>alert(1)</script>",
    "@SUM(1+1)",
    "Zoë Ångström's laptop",
    "山田太郎のトークン",
    "\tleading tab, \"quotes\", commas",
    "line one\nline two",
];

pub(crate) const PAT_NAMES: &[&str] = &[
    "az cli",
    "azure-pipelines agent",
    "backup script",
    "build agent",
    "ci-pipeline",
    "deploy",
    "git credential manager",
    "github sync",
    "grafana datasource",
    "jenkins",
    "local dev",
    "migration tool",
    "npm feed",
    "nuget push",
    "octopus",
    "power bi",
    "release bot",
    "renovate",
    "reporting",
    "sonarqube",
    "terraform",
    "test automation",
    "VS Code",
    "work item sync",
];

/// Scopes drawn from the real names, with weights. `app_token` means full access.
pub(crate) const SCOPES: &[(&str, u32)] = &[
    ("app_token", 20),
    ("vso.code", 12),
    ("vso.code_write", 10),
    ("vso.build_execute", 8),
    ("vso.packaging", 9),
    ("vso.packaging_write", 3),
    ("vso.work_write", 7),
    ("vso.work", 4),
    ("vso.release_execute", 5),
    ("vso.tokenadministration", 1),
    ("vso.code vso.packaging", 5),
    ("vso.code_write vso.build_execute vso.release_execute", 4),
    ("vso.work vso.code", 3),
    ("vso.graph vso.identity", 2),
    ("vso.dashboards vso.taskgroups_manage", 2),
    ("vso.graph_manage vso.identity_manage", 1),
    ("vso.code_full vso.build_execute", 2),
    ("vso.variablegroups_read vso.serviceendpoint_query", 2),
];

/// Project names for the per-project build service identities.
pub(crate) const PROJECTS: &[&str] = &[
    "Fabrikam-Fiber", "Payments", "Platform", "Mobile", "Data", "Website", "Infra", "Tools",
];
