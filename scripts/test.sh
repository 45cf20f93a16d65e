#!/usr/bin/env bash
# The test command (README, .ci/run): type-check and build, pull the default caption encoder (idempotent:
# a no-op once present), then unit tests, then integration tests against a real local Kafka broker
# (started by test/global-setup.ts) and real LMDB.
# Extra arguments go to vitest, e.g. `npm test -- --project unit`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
# The tests of the real encoder need it; without Python/pip (or offline) they skip, except under CI=true,
# where they fail: CI must exercise the default embedding space.
if ! node bin/modestream.js models pull >/dev/null; then
  echo "warning: could not pull the default caption encoder; its tests will skip (or fail under CI)" >&2
fi
exec npx vitest run "$@"
