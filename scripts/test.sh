#!/usr/bin/env bash
# The whole test suite, from a fresh checkout: formatting, lints, then every test.
# Installs and starts what the tests need (see the README); CI runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

# Azurite (the storage emulator the storage and Functions tests start) and Playwright (the
# browser tests' driver) install from the pinned package-lock.json while the Rust checks run.
azurite_log=$(mktemp)
chromium_log=$(mktemp)
trap 'rm -f "$azurite_log" "$chromium_log"' EXIT
scripts/install-azurite.sh >"$azurite_log" 2>&1 &
azurite_install=$!

# Chromium for the browser tests: Debian's package (Playwright cannot download its own build
# here), installed with apt-get when missing, also while the Rust checks run.
install_chromium() {
  [[ -x /usr/bin/chromium ]] && return 0
  local sudo=()
  [[ $(id -u) -eq 0 ]] || sudo=(sudo)
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
}
install_chromium >"$chromium_log" 2>&1 &
chromium_install=$!

echo "== infra: offline Bicep check and checkov security rules (scripts/check-infra.sh --checkov; pinned, from PyPI)"
scripts/check-infra.sh --checkov

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --locked -- -D warnings

echo "== Azurite and Playwright (npm ci) and openssl (test certificates for Azurite's HTTPS mode)"
if ! wait "$azurite_install"; then
  cat "$azurite_log" >&2
  exit 1
fi
command -v openssl >/dev/null || { echo "error: openssl is needed for the storage tests' certificates" >&2; exit 1; }

echo "== cargo test"
cargo test --all-targets --locked

echo "== browser tests: the HTML view and the start page in Chromium (npx playwright test; pages from target/debug)"
# The start page comes from examples/start_page.rs; `cargo test` builds examples only as tests.
cargo build --examples --locked
if ! wait "$chromium_install"; then
  cat "$chromium_log" >&2
  echo "error: Chromium is needed for the browser tests (apt-get install chromium)" >&2
  exit 1
fi
npx --no-install playwright test
