#!/usr/bin/env node
// Runs the compiled CLI (npm run build writes dist/). Exit codes: 0 ok, 1 failure, 2 bad input.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const entry = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  process.stderr.write('modestream: not built yet; run `npm run build` (or `npm ci`) in the package directory\n');
  process.exit(1);
}
const { main } = await import(entry.href);
const code = await main(process.argv);
process.exitCode = code;
// Native handles (LMDB, tfjs) can outlive a one-shot command; give stdout time to drain, then leave.
setTimeout(() => process.exit(code), 2000).unref();
