#!/usr/bin/env bash
# Install the pinned npm dev tools (package.json / package-lock.json) into node_modules with
# `npm ci`, unless the installed tree already matches the lock file: Azurite (the storage
# emulator) and @playwright/test (the HTML view's browser tests). No install scripts are run,
# and Playwright downloads no browser: the tests drive Debian's chromium (scripts/test.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v node >/dev/null || { echo "error: node (>= 20) is needed for Azurite and Playwright" >&2; exit 1; }
command -v npm >/dev/null || { echo "error: npm is needed to install Azurite and Playwright" >&2; exit 1; }
stamp=node_modules/.patreport-lock
if [[ -f node_modules/azurite/dist/src/azurite.js && -f node_modules/@playwright/test/package.json ]] \
  && cmp -s package-lock.json "$stamp"; then
  exit 0
fi
PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
cp package-lock.json "$stamp"
