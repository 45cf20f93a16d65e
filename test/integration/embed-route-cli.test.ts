/**
 * `modestream embed` and `modestream route` as users run them, with the hashed embedder (no model
 * needed) and a state dir holding one centroid epoch clustered here from hashed caption embeddings.
 * No Kafka involved: both commands read stdin/arguments and the state dir only.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { loadConfig } from '../../cli/context.js';
import { clusterSample } from '../../src/cluster/bootstrap.js';
import type { CentroidModel } from '../../src/cluster/model.js';
import { createEmbedder, type CaptionEmbedder } from '../../src/embed/embedder.js';
import { initBackend } from '../../src/tensor/backend.js';
import { createCentroidStore } from '../../state/centroids.js';
import { openStateEnv } from '../../state/env.js';
import { CLI, ROOT, cli } from '../support/processor.js';

const HASHED = ['--set', 'embedder.kind=hashed'];
const tmp = mkdtempSync(join(tmpdir(), 'modestream-embed-route-'));
const stateDir = join(tmp, 'state');
const emptyStateDir = join(tmp, 'empty');
let embedder: CaptionEmbedder;
let model: CentroidModel;

const COLOURS = ['red', 'navy', 'black', 'white', 'green', 'yellow'];
const ITEMS = ['running shoes', 'leather boots', 'silk dress', 'wool scarf', 'denim jacket', 'cotton socks', 'golden retriever puppy', 'mountain lake at dawn'];

/** squared L2 from v to every fine center, nearest first: the answer `route` must give. */
function ranked(v: Float32Array): { fine: number; expert: number; dist2: number }[] {
  const { dim } = model;
  return Array.from(model.fineIds, (fine, c) => {
    let d = 0;
    for (let j = 0; j < dim; j++) d += (v[j]! - model.fine[c * dim + j]!) ** 2;
    return { fine, expert: model.fineToExpert[c]!, dist2: d };
  }).sort((a, b) => a.dist2 - b.dist2);
}

beforeAll(async () => {
  // The same config resolution as the CLI processes below, so the fingerprints agree.
  const config = loadConfig({ set: ['embedder.kind=hashed'], stateDir });
  embedder = await createEmbedder(config.embedder, { modelsDir: config.modelsDir });
  await initBackend('wasm');
  const captions = COLOURS.flatMap((c) => ITEMS.map((i) => `${c} ${i}`));
  const vectors = await embedder.embed(captions);
  const sample = captions.map((_, i) => vectors.slice(i * embedder.dim, (i + 1) * embedder.dim));
  model = await clusterSample({ sample, epoch: 1, settings: { ...config.clustering, fine: 6, experts: 2 }, embedder: embedder.fingerprint });
  const env = openStateEnv({ dir: stateDir });
  expect(await createCentroidStore({ env }).publish(model)).toBe(true);
  await env.close();
  // A state dir that exists but has no epoch yet.
  await openStateEnv({ dir: emptyStateDir }).close();
});

afterAll(() => {
  embedder?.dispose();
  rmSync(tmp, { recursive: true, force: true });
});

describe('modestream embed', () => {
  test('writes one JSON line per non-blank stdin line, equal to the configured embedder', async () => {
    const child = spawn(process.execPath, [CLI, 'embed', ...HASHED, '--batch', '2'], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.stdin.end('red running shoes\n\n   \nNAVY Silk Dress\r\nwool scarf\ncafé crème');
    const code = await new Promise((r) => child.once('exit', r));
    expect(code, stderr).toBe(0);
    const rows = stdout.trim().split('\n').map((l) => JSON.parse(l) as { caption: string; embedding: number[] });
    const captions = ['red running shoes', 'NAVY Silk Dress', 'wool scarf', 'café crème'];
    expect(rows.map((r) => r.caption)).toEqual(captions);
    const expected = await embedder.embed(captions);
    rows.forEach((r, i) => {
      expect(r.embedding).toHaveLength(embedder.dim);
      // Printed with 9 significant digits, which round-trip to the same float32.
      expect(Float32Array.from(r.embedding)).toEqual(expected.subarray(i * embedder.dim, (i + 1) * embedder.dim));
    });
  });

  test('streams: a line gets its vector while stdin is still open', { timeout: 30_000 }, async () => {
    const child = spawn(process.execPath, [CLI, 'embed', ...HASHED], { cwd: ROOT, stdio: ['pipe', 'pipe', 'inherit'] });
    const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    try {
      child.stdin.write('first caption\n');
      const first = await lines.next();
      expect(JSON.parse(first.value as string).caption).toBe('first caption');
      child.stdin.write('second caption\n');
      expect(JSON.parse((await lines.next()).value as string).caption).toBe('second caption');
    } finally {
      child.stdin.end();
    }
    expect(await new Promise((r) => child.once('exit', r))).toBe(0);
  });

  test('--fingerprint and --dim-only describe the configured embedder', async () => {
    expect((await cli(['embed', ...HASHED, '--fingerprint'], {})).stdout.trim()).toBe(embedder.fingerprint);
    expect((await cli(['embed', ...HASHED, '--dim-only'], {})).stdout.trim()).toBe(String(embedder.dim));
  });

  test('a model that is not pulled, or a vocab.txt without its casing, exits 2 with the fix', async () => {
    const notPulled = await cli(['embed', '--set', 'embedder.kind=onnx', '--set', 'embedder.model=minilm-l6', '--set', `modelsDir=${join(tmp, 'no-models')}`, '--fingerprint'], {});
    expect(notPulled.code).toBe(2);
    expect(notPulled.output).toContain('run `npx modestream models pull minilm-l6`');

    const dir = join(tmp, 'vocab-only');
    mkdirSync(dir);
    writeFileSync(join(dir, 'model.onnx'), 'never read: the tokenizer is refused first');
    writeFileSync(join(dir, 'vocab.txt'), '[PAD]\n[UNK]\n[CLS]\n[SEP]\nred\nℝ\n');
    const vocabOnly = await cli(['embed', '--set', 'embedder.kind=onnx', '--set', `embedder.dir=${dir}`, '--fingerprint'], {});
    expect(vocabOnly.code).toBe(2);
    expect(vocabOnly.output).toContain('no tokenizer_config.json beside it');
    expect(vocabOnly.output).toContain('{"do_lower_case": true}');
  });
});

describe('modestream route', () => {
  test('--json gives the nearest fine cluster, its expert and the next two, per caption', async () => {
    const captions = ['red running shoes', 'a golden retriever puppy in the snow'];
    const { code, stdout, output } = await cli(['route', ...captions, ...HASHED, '--state-dir', stateDir, '--json'], {});
    expect(code, output).toBe(0);
    const routes = stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const vectors = await embedder.embed(captions);
    routes.forEach((r, i) => {
      const [best, ...rest] = ranked(vectors.subarray(i * embedder.dim, (i + 1) * embedder.dim));
      expect(r).toMatchObject({ caption: captions[i], epoch: 1, fine: best!.fine, expert: best!.expert });
      expect(r.dist2 as number).toBeCloseTo(best!.dist2, 5);
      const next = r.next as { fine: number; expert: number; dist2: number }[];
      expect(next.map((n) => [n.fine, n.expert])).toEqual(rest.slice(0, 2).map((n) => [n.fine, n.expert]));
    });
  });

  test('prints a readable line per caption without --json', async () => {
    const { code, stdout } = await cli(['route', 'navy wool scarf', ...HASHED, '--state-dir', stateDir], {});
    expect(code).toBe(0);
    expect(stdout).toMatch(/^"navy wool scarf"\n {2}epoch 1: fine \d+ \(expert \d+, dist² \d\.\d{4}\)\n {2}next: fine \d+ .*, fine \d+ /);
  });

  test('refuses an epoch built with another embedder, and a state dir without centers (exit 2)', async () => {
    const other = await cli(['route', 'red running shoes', ...HASHED, '--set', 'embedder.dim=128', '--state-dir', stateDir], {});
    expect(other.code).toBe(2);
    expect(other.output).toContain('centroid epoch 1');
    expect(other.output).toContain('modestream bootstrap');

    for (const dir of [emptyStateDir, join(tmp, 'missing')]) {
      const none = await cli(['route', 'red running shoes', ...HASHED, '--state-dir', dir], {});
      expect(none.code).toBe(2);
      expect(none.output).toContain('no centroid epoch to route with');
    }
  });

  test('a model that is not pulled exits 2 with the pull command', async () => {
    const { code, output } = await cli(['route', 'x', '--set', `modelsDir=${join(tmp, 'no-models')}`, '--state-dir', stateDir], {});
    expect(code).toBe(2);
    expect(output).toContain('run `npx modestream models pull minilm-l6`');
    expect(output).not.toMatch(/\n\s+at /);
  });
});
