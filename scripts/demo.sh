#!/usr/bin/env bash
# npm run demo [-- --once]: installs what is missing, builds, then runs `modestream demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
exec node bin/modestream.js demo "$@"
