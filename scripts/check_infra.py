"""Offline checks of infra/ (run by scripts/check-infra.sh, which installs the parsers).

No Bicep CLI can be installed here, so this is what can be checked without one:

* syntax: every infra/**/*.bicep through two independent parsers, tree-sitter-bicep (ERROR and
  MISSING nodes) and pycep-parser (the grammar checkov uses); every infra/**/*.json parses;
* wiring that `bicep build` would catch: local module files exist, no registry (br:/ts:)
  modules, module calls pass only parameters the module declares and every one it requires,
  main.parameters.json names only parameters of main.bicep and maps every one of them;
* typos a build would not catch either: resource type@apiVersion pairs and role definition ids
  must be in the known lists below (add to them only after checking the ARM reference);
* agreement with the app: every queue of PatReport*/function.json is created, every %SETTING%
  the function.json files use is set, every PATREPORT_*/AZURE_* app setting is in the app's
  registry of setting names (src/settings/names.rs), the settings Flex Consumption rejects are absent, host storage is identity-based,
  and the azd service name / dist zip agree with azure.yaml and the packaging hook.

Not checked (needs Azure or the Bicep CLI): types and schemas, property names, expressions,
what-if. Exit status 1 on any problem.
"""

import json
import re
import sys
from pathlib import Path

import tree_sitter
import tree_sitter_bicep
from pycep import BicepParser

ROOT = Path(__file__).resolve().parent.parent
INFRA = ROOT / "infra"

# Resource type@apiVersion pairs in use, each checked against the ARM template reference
# (most from Azure/azure-quickstart-templates function-app-flex-managed-identities).
KNOWN_API_VERSIONS = {
    "Microsoft.Resources/resourceGroups@2021-04-01",
    "Microsoft.OperationalInsights/workspaces@2023-09-01",
    "Microsoft.Insights/components@2020-02-02",
    "Microsoft.Storage/storageAccounts@2023-05-01",
    "Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31",
    "Microsoft.Authorization/roleAssignments@2022-04-01",
    "Microsoft.KeyVault/vaults@2023-07-01",
    "Microsoft.Web/serverfarms@2024-04-01",
    "Microsoft.Web/sites@2024-04-01",
    "Microsoft.Web/sites/config@2024-04-01",
    "Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01",
}

# Built-in role definition ids (Azure built-in roles reference).
KNOWN_ROLES = {
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b": "Storage Blob Data Owner",
    "ba92f5b4-2d11-453d-a403-e96b0029c9fe": "Storage Blob Data Contributor",
    "db58b8e5-c6ad-4a2a-8342-4190687cbf4a": "Storage Blob Delegator",
    "974c5e8b-45b9-4653-ba55-5f855dd0fb88": "Storage Queue Data Contributor",
    "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3": "Storage Table Data Contributor",
    "3913510d-42f4-4e42-8a64-420c390055eb": "Monitoring Metrics Publisher",
    "4633458b-17de-408a-b874-0445c86b69e6": "Key Vault Secrets User",
    "b86a8fe4-44ce-4948-aee5-eccb2c155cd7": "Key Vault Secrets Officer",
}

# App settings Flex Consumption rejects or ignores, and ones that must never be set by hand.
FORBIDDEN_SETTINGS = {
    "FUNCTIONS_WORKER_RUNTIME": "Flex derives the worker from functionAppConfig.runtime",
    "FUNCTIONS_EXTENSION_VERSION": "not accepted on Flex Consumption",
    "WEBSITE_RUN_FROM_PACKAGE": "not supported on Flex Consumption",
    "WEBSITE_CONTENTSHARE": "not supported on Flex Consumption",
    "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING": "not supported on Flex Consumption",
    "WEBSITE_TIME_ZONE": "not supported on Flex Consumption",
    "TZ": "not supported on Flex Consumption",
    "SCM_DO_BUILD_DURING_DEPLOYMENT": "not supported on Flex Consumption",
    "AzureWebJobsStorage": "a connection string needs shared keys: use AzureWebJobsStorage__* with the identity",
    "WEBSITE_AUTH_ENABLED": "the platform sets it; setting it by hand makes patreport trust a header anyone can send",
}
REQUIRED_SETTINGS = [
    "AzureWebJobsStorage__accountName",
    "AzureWebJobsStorage__credential",
    "AzureWebJobsStorage__clientId",
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
    "PATREPORT_ORGS",
    "PATREPORT_STORAGE_ACCOUNT_URL",
]

GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)

problems: list[str] = []


def problem(where, text):
    problems.append(f"{where}: {text}")


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


# ---- syntax --------------------------------------------------------------------------------

TS = tree_sitter.Parser(tree_sitter.Language(tree_sitter_bicep.language()))


def walk(node):
    yield node
    for child in node.children:
        yield from walk(child)


def text(node) -> str:
    return node.text.decode()


def string_value(node):
    """The value of a plain string literal node, or None for an interpolated one."""
    if node.type != "string":
        return None
    if any(c.type == "interpolation" for c in node.children):
        return None
    return "".join(text(c) for c in node.children if c.type == "string_content")


def parse_bicep(path: Path):
    source = path.read_bytes()
    tree = TS.parse(source)
    for node in walk(tree.root_node):
        if node.type == "ERROR" or node.is_missing:
            row, col = node.start_point
            kind = "missing " + node.type if node.is_missing else "syntax error"
            snippet = text(node).splitlines()[0][:60] if text(node) else ""
            problem(f"{rel(path)}:{row + 1}:{col + 1}", f"tree-sitter: {kind} near '{snippet}'")
    try:
        ast = BicepParser().parse(text=source.decode())
    except Exception as e:  # lark's errors carry line and column in their first line
        problem(rel(path), f"pycep: {str(e).strip().splitlines()[0]}")
        ast = None
    return tree, ast


def object_keys(node):
    """Keys of every object literal under node (identifiers or plain strings)."""
    keys = []
    for n in walk(node):
        if n.type == "object_property" and n.children:
            key = n.children[0]
            if key.type == "identifier":
                keys.append(text(key))
            elif string_value(key) is not None:
                keys.append(string_value(key))
    return keys


def main() -> int:
    bicep_files = sorted(INFRA.rglob("*.bicep"))
    json_files = sorted(INFRA.rglob("*.json"))
    if not bicep_files:
        print("error: no infra/**/*.bicep", file=sys.stderr)
        return 1

    parsed = {}
    for path in bicep_files:
        parsed[path] = parse_bicep(path)
    for path in json_files:
        try:
            json.loads(path.read_text())
        except ValueError as e:
            problem(rel(path), f"not JSON: {e}")

    # ---- per file: API versions, role ids, modules --------------------------------------
    app_settings: dict[str, str] = {}
    strings: set[str] = set()
    for path, (tree, ast) in parsed.items():
        for node in walk(tree.root_node):
            value = string_value(node)
            if value is not None:
                strings.add(value)
                if GUID.match(value) and value.lower() not in KNOWN_ROLES:
                    row = node.start_point[0] + 1
                    problem(f"{rel(path)}:{row}", f"'{value}' is not a known built-in role id (KNOWN_ROLES)")
            if node.type == "resource_declaration":
                type_node = next((c for c in node.children if c.type == "string"), None)
                declared = string_value(type_node) if type_node else None
                if declared and "@" in declared and declared not in KNOWN_API_VERSIONS:
                    row = node.start_point[0] + 1
                    problem(f"{rel(path)}:{row}", f"'{declared}' is not in KNOWN_API_VERSIONS (check the ARM reference, then add it)")
            if node.type == "variable_declaration":
                name = next((text(c) for c in node.children if c.type == "identifier"), "")
                if name.endswith("Settings") or name.endswith("Setting"):
                    for key in object_keys(node):
                        app_settings.setdefault(key, f"{rel(path)}:{node.start_point[0] + 1}")

        if ast is None:
            continue
        for name, module in (ast.get("modules") or {}).items():
            detail = module.get("detail") or {}
            target = detail.get("path") or detail.get("full") or ""
            if module.get("type") != "local" or re.match(r"^(br|ts)[:/]", target):
                problem(rel(path), f"module '{name}' uses a registry ({target}): registry modules need network access at build time")
                continue
            callee = (path.parent / target).resolve()
            if not callee.is_file():
                problem(rel(path), f"module '{name}': {target} does not exist")
                continue
            callee_ast = parsed.get(callee, (None, None))[1]
            if callee_ast is None:
                continue
            config = module.get("config") or {}
            config = config.get("config", config)  # conditional modules nest one level
            passed = set((config.get("params") or {}).keys())
            declared = callee_ast.get("parameters") or {}
            for p in sorted(passed - set(declared)):
                problem(rel(path), f"module '{name}' passes '{p}', which {target} does not declare")
            for p, spec in sorted(declared.items()):
                if spec.get("default") is None and p not in passed:
                    problem(rel(path), f"module '{name}' does not pass '{p}', which {target} requires")

    # ---- main.parameters.json against main.bicep ---------------------------------------
    main = INFRA / "main.bicep"
    params_file = INFRA / "main.parameters.json"
    main_ast = parsed.get(main, (None, None))[1]
    if not main.is_file():
        problem("infra", "main.bicep is missing (azd looks for infra/main.bicep)")
    elif not params_file.is_file():
        problem("infra", "main.parameters.json is missing")
    elif main_ast is not None:
        mapped = json.loads(params_file.read_text()).get("parameters", {})
        declared = main_ast.get("parameters") or {}
        for p in sorted(set(mapped) - set(declared)):
            problem(rel(params_file), f"'{p}' is not a parameter of main.bicep")
        for p in sorted(set(declared) - set(mapped)):
            problem(rel(params_file), f"main.bicep parameter '{p}' is not mapped to an azd environment value")
        for p, spec in mapped.items():
            value = spec.get("value")
            if isinstance(value, str) and "$" in value and not re.fullmatch(r"\$\{[A-Za-z_][A-Za-z0-9_]*(=[^}]*)?\}", value):
                problem(rel(params_file), f"'{p}': '{value}' is not a single ${{NAME}} expression")

    # ---- the app's own files --------------------------------------------------------------
    # The one registry of setting names: src/settings/names.rs (`pub const X: &str = "NAME";`,
    # listed in the SETTINGS table as `setting(X, ...)` or `secret(X, ...)`).
    names_rs = (ROOT / "src" / "settings" / "names.rs").read_text()
    consts = dict(re.findall(r'pub const ([A-Z_]+): &str = "([^"]+)";', names_rs))
    table = names_rs[names_rs.index("pub const SETTINGS"):]
    registry = {consts[ident] for ident in re.findall(r"\b(?:setting|secret)\(\s*([A-Z_]+)\s*,", table) if ident in consts}
    if len(registry) < 10:
        problem("src/settings/names.rs", f"could not read the settings registry (found {len(registry)} names)")
    functions = sorted((ROOT).glob("*/function.json"))
    if not functions:
        problem("repo", "no */function.json found")
    for fn in functions:
        doc = json.loads(fn.read_text())
        for binding in doc.get("bindings", []):
            queue = binding.get("queueName")
            if queue and queue not in strings:
                problem(rel(fn), f"queue '{queue}' is not created in infra/")
            for value in binding.values():
                if isinstance(value, str):
                    for setting in re.findall(r"%([A-Za-z0-9_]+)%", value):
                        if setting not in app_settings:
                            problem(rel(fn), f"%{setting}% is not set in the app settings")
            if binding.get("type", "").startswith("queue") and f"{binding.get('queueName')}-poison" not in strings and not binding.get("queueName", "").endswith("-poison"):
                problem(rel(fn), f"poison queue '{binding.get('queueName')}-poison' is not created in infra/")

    for setting, why in FORBIDDEN_SETTINGS.items():
        if setting in app_settings:
            problem(app_settings[setting], f"app setting {setting}: {why}")
    for setting in REQUIRED_SETTINGS:
        if setting not in app_settings:
            problem("infra", f"app setting {setting} is not set")
    for setting, where in sorted(app_settings.items()):
        if re.match(r"^(PATREPORT|AZURE)_", setting) and setting not in registry:
            problem(where, f"app setting {setting} is not in the settings registry, src/settings/names.rs (renamed or misspelled?)")

    host = json.loads((ROOT / "host.json").read_text())
    exe = host.get("customHandler", {}).get("description", {}).get("defaultExecutablePath")
    if exe != "patreport":
        problem("host.json", f"defaultExecutablePath is '{exe}'; scripts/package-functions.sh ships 'patreport'")

    # ---- azure.yaml (no YAML library: the few keys needed, by shape) ----------------------
    azure_yaml = ROOT / "azure.yaml"
    if not azure_yaml.is_file():
        problem("repo", "azure.yaml is missing")
    else:
        y = azure_yaml.read_text()
        services = re.findall(r"^services:\s*\n((?:[ \t]+.*\n|\s*\n)*)", y, re.M)
        names = re.findall(r"^  ([A-Za-z0-9_-]+):\s*$", services[0], re.M) if services else []
        service_var = (main_ast or {}).get("variables", {}).get("serviceName", {}).get("value")
        if names != [service_var]:
            problem("azure.yaml", f"services {names} do not match main.bicep serviceName '{service_var}' (the azd-service-name tag)")
        if "'azd-service-name': serviceName" not in (INFRA / "resources.bicep").read_text():
            problem("infra/resources.bicep", "the function app is not tagged azd-service-name: serviceName")
        dist = re.search(r"^\s+dist:\s*(\S+)\s*$", y, re.M)
        if not dist or not dist.group(1).endswith(".zip"):
            problem("azure.yaml", "dist must name the .zip the hook builds (azd then uploads it unchanged, exec bit included)")
        elif f"scripts/package-functions.sh {dist.group(1)}" not in y:
            problem("azure.yaml", f"the prepackage hook must run scripts/package-functions.sh {dist.group(1)}")

    checked = len(bicep_files) + len(json_files)
    if problems:
        for p in problems:
            print(f"  {p}", file=sys.stderr)
        print(f"infra check: {len(problems)} problem(s) in {checked} files", file=sys.stderr)
        return 1
    print(f"infra check: {len(bicep_files)} Bicep and {len(json_files)} JSON files parse; "
          f"modules, parameters, API versions, role ids, queues and {len(app_settings)} app settings agree")
    return 0


if __name__ == "__main__":
    sys.exit(main())
