#!/usr/bin/env bash
# The whole test suite, from a fresh checkout: formatting, lints, then every test.
# Installs and starts what the tests need (see the README); CI runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

# Azurite (the storage emulator the storage and Functions tests start) installs from the
# pinned package-lock.json while the Rust checks run.
azurite_log=$(mktemp)
trap 'rm -f "$azurite_log"' EXIT
scripts/install-azurite.sh >"$azurite_log" 2>&1 &
azurite_install=$!

echo "== infra: offline Bicep check (scripts/check-infra.sh; pinned parsers from PyPI)"
scripts/check-infra.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --locked -- -D warnings

echo "== Azurite (npm ci) and openssl (test certificates for Azurite's HTTPS mode)"
if ! wait "$azurite_install"; then
  cat "$azurite_log" >&2
  exit 1
fi
command -v openssl >/dev/null || { echo "error: openssl is needed for the storage tests' certificates" >&2; exit 1; }

echo "== cargo test"
cargo test --all-targets --locked
