#!/usr/bin/env bash
# The whole test suite, from a fresh checkout: formatting, lints, then every test.
# Installs and starts what the tests need (see the README); CI runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --locked -- -D warnings

echo "== cargo test"
cargo test --all-targets --locked
