#!/usr/bin/env bash
# Install the pinned Azurite (package.json / package-lock.json) into node_modules with `npm ci`,
# unless the installed tree already matches the lock file. No install scripts are run.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v node >/dev/null || { echo "error: node (>= 18) is needed for Azurite, the storage emulator the tests use" >&2; exit 1; }
command -v npm >/dev/null || { echo "error: npm is needed to install Azurite" >&2; exit 1; }
stamp=node_modules/.patreport-lock
if [[ -f node_modules/azurite/dist/src/azurite.js ]] && cmp -s package-lock.json "$stamp"; then
  exit 0
fi
npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
cp package-lock.json "$stamp"
