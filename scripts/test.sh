#!/usr/bin/env bash
# The test command (README, .ci/run): type-check and build, then unit tests, then integration tests
# against a real local Kafka broker (started by test/global-setup.ts) and real LMDB.
# Extra arguments go to vitest, e.g. `npm test -- --project unit`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
exec npx vitest run "$@"
