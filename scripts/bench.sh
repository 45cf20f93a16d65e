#!/usr/bin/env bash
# npm run bench -- <name> [options]: builds, then runs the compiled bench/<name>.ts.
# Benchmarks print their figures next to an anchor measured in the same run (see each file's header).
set -euo pipefail
cd "$(dirname "$0")/.."
name="${1:-}"
shift || true
if [ -z "$name" ] || [ ! -f "bench/$name.ts" ]; then
  echo "usage: npm run bench -- <name> [options]; available: $(cd bench && ls *.ts | grep -v -e synthetic -e feed -e harness -e nodes | sed 's/\.ts$//' | tr '\n' ' ')" >&2
  exit 2
fi
bash scripts/ensure-deps.sh
# The k-means anchor is numpy / scikit-learn on the same data: its venv is made on first use (from PyPI).
if [ "$name" = kmeans ] && [ ! -x .venv/bin/python ]; then
  echo "creating .venv with numpy and scikit-learn for the k-means reference" >&2
  { python3 -m venv .venv && .venv/bin/pip install -q numpy scikit-learn; } || echo "could not create .venv: the numpy reference will be skipped" >&2
fi
exec node "dist/bench/$name.js" "$@"
