#!/usr/bin/env bash
# Install (if needed) and run Azurite, the Azure Storage emulator, for local use with
# `func start` (blob on 10000, queue on 10001, table on 10002: what UseDevelopmentStorage=true
# means). The tests start their own instances on free ports; this is for running by hand.
#   scripts/azurite.sh            in-memory, data gone when it stops
#   scripts/azurite.sh --persist  data kept in .azurite/
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-azurite.sh
args=(--blobHost 127.0.0.1 --queueHost 127.0.0.1 --tableHost 127.0.0.1
      --disableTelemetry --skipApiVersionCheck --loose)
if [[ "${1:-}" == "--persist" ]]; then
  args+=(--location .azurite)
else
  args+=(--inMemoryPersistence)
fi
exec node node_modules/azurite/dist/src/azurite.js "${args[@]}"
