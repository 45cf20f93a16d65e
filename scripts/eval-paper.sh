#!/usr/bin/env bash
# npm run eval:paper [-- --steps 3000 --fine 256 --seed 1]: trains and evaluates the paper's table on
# Fashion-MNIST and refreshes the generated table in docs/results.md (see examples/fashion-mnist/paper.ts).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
exec node dist/examples/fashion-mnist/paper.js --out docs/results.md "$@"
