//! Readable names for Azure DevOps OAuth scopes, as found in a PAT's `scope` string.

/// Scope name → readable label, sorted by scope name for binary search (a test checks
/// the order). Covers the common scopes only; anything else passes through unchanged.
const LABELS: &[(&str, &str)] = &[
    ("app_token", "Full access"),
    ("vso.advsec", "Advanced Security (read)"),
    (
        "vso.advsec_manage",
        "Advanced Security (read, write & manage)",
    ),
    ("vso.advsec_write", "Advanced Security (read & write)"),
    ("vso.agentpools", "Agent pools (read)"),
    ("vso.agentpools_manage", "Agent pools (read & manage)"),
    ("vso.analytics", "Analytics (read)"),
    ("vso.auditlog", "Audit log (read)"),
    ("vso.auditstreams_manage", "Audit streams (read & manage)"),
    ("vso.build", "Build (read)"),
    ("vso.build_execute", "Build (read & execute)"),
    ("vso.code", "Code (read)"),
    ("vso.code_full", "Code (full)"),
    ("vso.code_manage", "Code (read, write & manage)"),
    ("vso.code_status", "Code (status)"),
    ("vso.code_write", "Code (read & write)"),
    ("vso.connected_server", "Connected server"),
    ("vso.dashboards", "Team dashboards (read)"),
    ("vso.dashboards_manage", "Team dashboards (manage)"),
    ("vso.entitlements", "Entitlements (read)"),
    ("vso.environment_manage", "Environments (read & manage)"),
    ("vso.extension", "Extensions (read)"),
    ("vso.extension.data", "Extension data (read)"),
    ("vso.extension.data_write", "Extension data (read & write)"),
    ("vso.extension_manage", "Extensions (read & manage)"),
    ("vso.gallery", "Marketplace (read)"),
    ("vso.gallery_acquire", "Marketplace (acquire)"),
    ("vso.gallery_manage", "Marketplace (manage)"),
    ("vso.gallery_publish", "Marketplace (publish)"),
    ("vso.graph", "Graph (read)"),
    ("vso.graph_manage", "Graph (read & manage)"),
    ("vso.hooks", "Service hooks (read)"),
    ("vso.hooks_interact", "Service hooks (interact)"),
    ("vso.hooks_write", "Service hooks (read & write)"),
    ("vso.identity", "Identity (read)"),
    ("vso.identity_manage", "Identity (read & manage)"),
    (
        "vso.machinegroup_manage",
        "Deployment groups (read & manage)",
    ),
    (
        "vso.memberentitlementmanagement",
        "Member entitlement management (read)",
    ),
    (
        "vso.memberentitlementmanagement_write",
        "Member entitlement management (read & write)",
    ),
    ("vso.notification", "Notifications (read)"),
    (
        "vso.notification_diagnostics",
        "Notifications (diagnostics)",
    ),
    (
        "vso.notification_manage",
        "Notifications (read, write & manage)",
    ),
    ("vso.notification_write", "Notifications (read & write)"),
    ("vso.packaging", "Packaging (read)"),
    ("vso.packaging_manage", "Packaging (read, write & manage)"),
    ("vso.packaging_write", "Packaging (read & write)"),
    (
        "vso.pipelineresources_manage",
        "Pipeline resources (use & manage)",
    ),
    ("vso.pipelineresources_use", "Pipeline resources (use)"),
    ("vso.profile", "User profile (read)"),
    ("vso.profile_write", "User profile (read & write)"),
    ("vso.project", "Project and team (read)"),
    (
        "vso.project_manage",
        "Project and team (read, write & manage)",
    ),
    ("vso.project_write", "Project and team (read & write)"),
    ("vso.release", "Release (read)"),
    ("vso.release_execute", "Release (read, write & execute)"),
    (
        "vso.release_manage",
        "Release (read, write, execute & manage)",
    ),
    (
        "vso.securefiles_manage",
        "Secure files (read, create & manage)",
    ),
    ("vso.securefiles_read", "Secure files (read)"),
    ("vso.securefiles_write", "Secure files (read & create)"),
    ("vso.security_manage", "Security (manage)"),
    ("vso.serviceendpoint", "Service connections (read)"),
    (
        "vso.serviceendpoint_manage",
        "Service connections (read, query & manage)",
    ),
    (
        "vso.serviceendpoint_query",
        "Service connections (read & query)",
    ),
    ("vso.settings", "Settings (read)"),
    ("vso.settings_write", "Settings (read & write)"),
    ("vso.symbols", "Symbols (read)"),
    ("vso.symbols_manage", "Symbols (read, write & manage)"),
    ("vso.symbols_write", "Symbols (read & write)"),
    (
        "vso.taskgroups_manage",
        "Task groups (read, create & manage)",
    ),
    ("vso.taskgroups_read", "Task groups (read)"),
    ("vso.taskgroups_write", "Task groups (read & create)"),
    ("vso.test", "Test management (read)"),
    ("vso.test_write", "Test management (read & write)"),
    ("vso.threads_full", "Pull request threads (full)"),
    ("vso.tokenadministration", "Token administration"),
    ("vso.tokens", "Delegated authorization tokens"),
    (
        "vso.variablegroups_manage",
        "Variable groups (read, create & manage)",
    ),
    ("vso.variablegroups_read", "Variable groups (read)"),
    (
        "vso.variablegroups_write",
        "Variable groups (read & create)",
    ),
    ("vso.wiki", "Wiki (read)"),
    ("vso.wiki_write", "Wiki (read & write)"),
    ("vso.work", "Work items (read)"),
    ("vso.work_full", "Work items (full)"),
    ("vso.work_write", "Work items (read & write)"),
    ("vso.workitemsearch", "Work item search (read)"),
];

/// The readable label of one scope name, if it is a known one.
pub fn label(scope: &str) -> Option<&'static str> {
    LABELS
        .binary_search_by(|(name, _)| (*name).cmp(scope))
        .ok()
        .map(|i| LABELS[i].1)
}

/// A readable summary of a space-separated scope string: known scopes become labels
/// (`vso.code_write` → "Code (read & write)"), unknown ones pass through unchanged, the
/// order is kept, and the parts are joined with ", ". No scope at all gives "(none)".
pub fn summarize(scope: &str) -> String {
    let mut out = String::new();
    for name in scope.split_ascii_whitespace() {
        if !out.is_empty() {
            out.push_str(", ");
        }
        out.push_str(label(name).unwrap_or(name));
    }
    if out.is_empty() {
        out.push_str("(none)");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_sorted_for_binary_search() {
        for pair in LABELS.windows(2) {
            assert!(
                pair[0].0 < pair[1].0,
                "{:?} before {:?}",
                pair[0].0,
                pair[1].0
            );
        }
    }

    #[test]
    fn app_token_is_full_access() {
        assert_eq!(summarize("app_token"), "Full access");
    }

    #[test]
    fn code_levels_are_spelled_out() {
        assert_eq!(summarize("vso.code"), "Code (read)");
        assert_eq!(summarize("vso.code_write"), "Code (read & write)");
        assert_eq!(summarize("vso.code_manage"), "Code (read, write & manage)");
    }

    #[test]
    fn several_scopes_keep_their_order() {
        assert_eq!(
            summarize("vso.build_execute vso.code vso.tokenadministration"),
            "Build (read & execute), Code (read), Token administration"
        );
    }

    #[test]
    fn unknown_scopes_pass_through_unchanged() {
        assert_eq!(
            summarize("vso.code vso.brand_new_thing"),
            "Code (read), vso.brand_new_thing"
        );
    }

    #[test]
    fn extra_whitespace_is_ignored_and_empty_is_none() {
        assert_eq!(
            summarize("  vso.work_write\tvso.packaging  "),
            "Work items (read & write), Packaging (read)"
        );
        assert_eq!(summarize(""), "(none)");
        assert_eq!(summarize("   "), "(none)");
    }
}
