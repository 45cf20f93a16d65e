#!/usr/bin/env bash
# Installs what the project needs, once: npm packages (when package-lock.json is newer than the install)
# and the compiled code. Broker jars are fetched by `modestream broker start` itself (Maven, cached).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "installing npm packages (npm ci)..." >&2
  ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund >&2
fi
npm run --silent build >&2
