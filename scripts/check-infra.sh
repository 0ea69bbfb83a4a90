#!/usr/bin/env bash
# Offline check of the deployment (infra/*.bicep, main.parameters.json, azure.yaml): the Bicep
# CLI cannot be installed here, so the Bicep is parsed by tree-sitter-bicep and pycep-parser and
# checked for what a build would catch in module and parameter wiring, plus agreement with the
# app (queues, settings, azd service). scripts/check_infra.py lists every check.
#
#   scripts/check-infra.sh             syntax and consistency (a few seconds once installed)
#   scripts/check-infra.sh --checkov   also checkov's security rules, with the skips below
#
# The tools install from PyPI into Python venvs under target/ (pinned; reinstalled only when the
# pins change). Needs python3 with venv. It does not run `bicep build` or what-if: run those
# where Azure is reachable (docs/deploy.md).
set -euo pipefail
cd "$(dirname "$0")/.."

run_checkov=false
case "${1:-}" in
  "") ;;
  --checkov) run_checkov=true ;;
  *) echo "usage: $0 [--checkov]" >&2; exit 2 ;;
esac

command -v python3 >/dev/null || { echo "error: python3 (with venv) is needed for the offline Bicep check" >&2; exit 1; }

# Parsers, with every dependency pinned.
parsers=(
  pycep-parser==0.7.1 lark==1.3.1 regex==2026.11.19 typing_extensions==4.16.0
  tree-sitter==0.26.1 tree-sitter-bicep==1.1.0
)
# checkov pins pycep-parser 0.5.1 itself, so it lives in its own venv.
checkov=(checkov==3.3.30)

# venv DIR PACKAGES...: create or refresh a venv whose installed pins match PACKAGES.
venv() {
  local dir=$1; shift
  local stamp="$dir/.pins"
  if [[ -x "$dir/bin/python" ]] && [[ "$(cat "$stamp" 2>/dev/null)" == "$*" ]]; then
    return 0
  fi
  rm -rf "$dir"
  python3 -m venv "$dir"
  "$dir/bin/python" -m pip install --quiet --disable-pip-version-check --no-input "$@"
  echo "$*" >"$stamp"
}

venv target/infra-check/parsers "${parsers[@]}"
target/infra-check/parsers/bin/python scripts/check_infra.py

if $run_checkov; then
  venv target/infra-check/checkov "${checkov[@]}"
  # Skipped, each on purpose:
  #   CKV_AZURE_35, CKV_AZURE_59   storage stays reachable from public networks: Flex
  #                                Consumption without a virtual network reaches its host
  #                                storage that way (shared keys are off; Entra ID only)
  #   CKV_AZURE_206                LRS: the reports can be made again; the quickstart's choice
  #   CKV_AZURE_43                 the name is computed ('st' + uniqueString), not checkable
  #   CKV_AZURE_109, CKV_AZURE_189 Key Vault public access: Flex cannot resolve Key Vault
  #                                references to a network-restricted vault
  #   CKV_AZURE_110, CKV_AZURE_42  purge protection off, so `azd down --purge` + `azd up` with
  #                                the same environment name work (soft delete stays on)
  #   CKV_AZURE_222                function app public access: it is an HTTP API (function key
  #                                plus Entra ID caller check)
  #   CKV_AZURE_13                 App Service Authentication: an option (callerAuth
  #                                app-service, in an authsettingsV2 resource checkov does not
  #                                connect to the site); by default patreport validates
  #                                callers' tokens itself (PATREPORT_CALLER_AUTH=bearer)
  #   CKV_AZURE_17                 client certificates: callers use Entra ID tokens
  #   CKV_AZURE_78                 FTP: Flex has none; basic publishing credentials are off
  #   CKV_AZURE_212, CKV_AZURE_225 minimum instances / zone redundancy: a weekly batch job
  #   CKV_AZURE_213                health check: not a Flex Consumption feature
  #   CKV_AZURE_63, CKV_AZURE_65,  HTTP logs, detailed errors, failed request tracing,
  #   CKV_AZURE_66, CKV_AZURE_80,  .NET version, Azure Files: App Service (not Flex) settings
  #   CKV_AZURE_88
  skip=CKV_AZURE_35,CKV_AZURE_59,CKV_AZURE_206,CKV_AZURE_43,CKV_AZURE_109,CKV_AZURE_189
  skip+=,CKV_AZURE_110,CKV_AZURE_42,CKV_AZURE_222,CKV_AZURE_13,CKV_AZURE_17,CKV_AZURE_78
  skip+=,CKV_AZURE_212,CKV_AZURE_225,CKV_AZURE_213,CKV_AZURE_63,CKV_AZURE_65,CKV_AZURE_66
  skip+=,CKV_AZURE_80,CKV_AZURE_88
  # --skip-download: no calls to Prisma Cloud (guidelines, severities); everything is local.
  target/infra-check/checkov/bin/checkov --directory infra --framework bicep --compact --quiet \
    --skip-download --skip-check "$skip"
fi
