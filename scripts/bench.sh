#!/usr/bin/env bash
# npm run bench -- <name> [options]: builds, then runs the compiled bench/<name>.ts.
# Benchmarks print their figures next to an anchor measured in the same run (see each file's header).
set -euo pipefail
cd "$(dirname "$0")/.."
name="${1:-}"
shift || true
if [ -z "$name" ] || [ ! -f "bench/$name.ts" ]; then
  echo "usage: npm run bench -- <name> [options]; available: $(cd bench && ls *.ts | grep -v -e synthetic -e feed | sed 's/\.ts$//' | tr '\n' ' ')" >&2
  exit 2
fi
bash scripts/ensure-deps.sh
exec node "dist/bench/$name.js" "$@"
