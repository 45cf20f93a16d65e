/**
 * The Python example of the ONNX export (examples/python/zero_shot.py, ONNX Runtime + numpy) against the
 * TypeScript evaluation: a small snapshot is trained on Fashion-MNIST training images without Kafka (state
 * directory filled directly, as snapshots.test.ts does), exported with `modestream snapshot export --format
 * onnx`, then `modestream eval --task zeroshot --json` and the Python script must agree on top-1 within 0.1
 * point and on the routing weights; one batch of image and text tower outputs under onnxruntime-Python must
 * match the tfjs towers (cosine >= 0.9999).
 *
 * Needs the built CLI (dist/) and a Python 3 with onnxruntime and numpy: MODESTREAM_TEST_PYTHON names one,
 * else a venv is made in a temp dir with `pip install onnxruntime numpy`; the test skips when that fails.
 * Uses no broker (the integration project starts one for other files regardless).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { openCore, type Core } from '../../app/core.js';
import { captionFor } from '../../examples/fashion-mnist/captions.js';
import { loadFashionMnist } from '../../examples/fashion-mnist/dataset.js';
import { runTrainingJob } from '../../training/job.js';
import { publishSnapshot } from '../../training/snapshot.js';
import { clusterSample } from '../../src/cluster/bootstrap.js';
import { createRng } from '../../src/cluster/rng.js';
import { createRouting } from '../../src/cluster/routing.js';
import { resolveConfig, snapshotsDirOf, type Config } from '../../src/config.js';
import { encodeRouted, type RoutedRecord } from '../../src/contract/routed.js';
import { deserializeModel } from '../../src/expert/checkpoint.js';
import { disposeModel, encodeImages, encodeTexts } from '../../src/expert/model.js';
import { silentLogger } from '../../src/logger.js';
import { createSnapshotStore } from '../../state/snapshots.js';
import { cli, CLI, ROOT } from '../support/processor.js';

const root = mkdtempSync(join(tmpdir(), 'modestream-onnx-python-'));
const stateDir = join(root, 'state');
const exportDir = join(root, 'onnx');
const config: Config = resolveConfig([
  {
    origin: 'test',
    values: {
      stateDir,
      backend: 'wasm',
      embedder: { kind: 'hashed' },
      clustering: { fine: 12, experts: 3 },
      experts: { stemChannels: 8, imageHidden: 32, textHidden: 32, projection: 16, training: { batch: 64, warmupSteps: 10, checkpointEvery: 1000 } },
      log: { level: 'silent' },
    },
  },
]);
/** What the spawned CLI (and through it, the Python script's `modestream embed`) runs with. */
const env = { MODESTREAM_STATE_DIR: stateDir, MODESTREAM_BACKEND: 'wasm', MODESTREAM_EMBEDDER__KIND: 'hashed' };
let core: Core;
let experts: number[] = [];

/** A Python with onnxruntime and numpy, or why there is none. */
function findPython(): { python: string } | { skip: string } {
  const given = process.env.MODESTREAM_TEST_PYTHON;
  const check = (python: string) => spawnSync(python, ['-c', 'import onnxruntime, numpy'], { encoding: 'utf8' });
  if (given) return check(given).status === 0 ? { python: given } : { skip: `MODESTREAM_TEST_PYTHON=${given} cannot import onnxruntime and numpy` };
  const venv = join(root, '.venv-onnx');
  const made = spawnSync('python3', ['-m', 'venv', venv], { encoding: 'utf8' });
  if (made.status !== 0) return { skip: `python3 -m venv failed: ${made.error?.message ?? made.stderr}` };
  const python = join(venv, 'bin', 'python');
  const pip = spawnSync(python, ['-m', 'pip', 'install', '-q', '-r', join(ROOT, 'examples', 'python', 'requirements.txt')], { encoding: 'utf8', timeout: 300_000 });
  if (pip.status !== 0) return { skip: `pip install onnxruntime numpy failed (no PyPI?): ${pip.error?.message ?? pip.stderr.slice(-500)}` };
  return check(python).status === 0 ? { python } : { skip: 'the venv cannot import onnxruntime and numpy' };
}

beforeAll(async () => {
  core = await openCore(config, silentLogger);
  // 200 training images per class with clean generated captions, routed by centers clustered on them.
  const train = await loadFashionMnist({ split: 'train' });
  const rng = createRng(21);
  const chosen = train.images.filter((img) => img.index < 200);
  const captions = chosen.map((img) => captionFor({ label: img.label, rng, options: { wrongShare: 0, uninformativeShare: 0 } }).caption);
  const embeddings = await core.embedder.embed(captions);
  const dim = core.embedder.dim;
  const rows = captions.map((_, i) => embeddings.slice(i * dim, (i + 1) * dim));
  const model = await clusterSample({ sample: rows, epoch: 1, settings: config.clustering, embedder: core.embedder.fingerprint });
  await core.centroids.publish(model);
  const routing = createRouting(model);
  const routes = await routing.route(embeddings);
  routing.dispose();
  const items = chosen.map((img, n) => {
    const record: RoutedRecord = {
      id: `f${n}`,
      caption: captions[n]!,
      ts: 0,
      image: { kind: 'pixels', width: 28, height: 28, channels: 1, data: img.pixels },
      embedding: rows[n]!,
      route: routes[n]!,
      origin: { topic: 't', partition: 0, offset: String(n) },
    };
    return { record, bytes: encodeRouted(record) };
  });
  await core.store.append(items, { topic: 't', partition: 0, nextOffset: items.length });
  await runTrainingJob({ config, logger: silentLogger, core, target: { kind: 'seed' }, steps: 200 });
  // Two experts with models of their own; the third (if routed to) serves with the seed.
  experts = [...new Set(routes.map((r) => r.expert))].sort((a, b) => a - b).slice(0, 2);
  for (const expert of experts) await runTrainingJob({ config, logger: silentLogger, core, target: { kind: 'expert', expert }, steps: 80 });
  await publishSnapshot({ config, core });
}, 600_000);

afterAll(async () => {
  await core?.close();
  rmSync(root, { recursive: true, force: true });
});

describe('ONNX export, Python example', () => {
  test('examples/python/zero_shot.py matches `modestream eval` zero-shot top-1 and routing weights; towers match tfjs', async (ctx) => {
    const exported = await cli(['snapshot', 'export', '--format', 'onnx', '--out', exportDir], env);
    expect(exported.code, exported.output).toBe(0);
    const manifest = JSON.parse(readFileSync(join(exportDir, 'manifest.json'), 'utf8')) as { experts: { id: number; files: { image: string; text: string } }[] };
    expect(manifest.experts.length).toBeGreaterThanOrEqual(2);

    const found = findPython();
    if ('skip' in found) return ctx.skip(found.skip);
    const tsTop1 = async (flags: string[]) => {
      const evaluated = await cli(['eval', '--snapshot', snapshotsDirOf(config), '--task', 'zeroshot', '--json', ...flags], env, 600_000);
      expect(evaluated.code, evaluated.output).toBe(0);
      return (JSON.parse(evaluated.stdout) as { zeroShot: { top1: number; weights: Record<string, number> } }).zeroShot;
    };
    const pythonTop1 = (flags: string[]) => {
      const script = join(ROOT, 'examples', 'python', 'zero_shot.py');
      const py = spawnSync(found.python, [script, '--export', exportDir, '--modestream', `${process.execPath} ${CLI}`, ...flags], { cwd: ROOT, env: { ...process.env, ...env }, encoding: 'utf8', timeout: 600_000 });
      expect(py.status, py.stderr).toBe(0);
      return JSON.parse(py.stdout.trim().split('\n').at(-1)!) as { top1: number; n: number; weights: Record<string, number> };
    };

    // The snapshot's own routing ('code'), then one expert alone (its towers, not the seed's, must be used).
    for (const flags of [[], ['--formula', 'single', '--expert', String(experts[0])]]) {
      const [ts, python] = [await tsTop1(flags), pythonTop1(flags)];
      console.log(`zero-shot top-1 [${flags.join(' ') || 'snapshot routing'}]: TypeScript ${ts.top1}, Python/onnxruntime ${python.top1} (n=${python.n}); weights TS ${JSON.stringify(ts.weights)} Python ${JSON.stringify(python.weights)}`);
      expect(python.n).toBe(10_000);
      expect(ts.top1).toBeGreaterThan(0.2); // trained: well above chance, so agreement means something
      expect(Math.abs(python.top1 - ts.top1)).toBeLessThanOrEqual(0.001);
      expect(Object.keys(python.weights).sort()).toEqual(Object.keys(ts.weights).sort());
      for (const [id, w] of Object.entries(ts.weights)) expect(python.weights[id]).toBeCloseTo(w, 4);
    }

    // One batch through each exported model's towers in onnxruntime-Python vs the snapshot's tfjs model.
    const store = createSnapshotStore({ dir: snapshotsDirOf(config) });
    const version = (await store.latest())!;
    const snapshot = (await store.manifest(version))!.manifest;
    const rng = createRng(4);
    const [n, textDim] = [32, core.embedder.dim];
    const pixels = Float32Array.from({ length: n * 784 }, () => rng.next());
    const texts = await core.embedder.embed(Array.from({ length: n }, (_, i) => captionFor({ label: i % 10, rng }).caption));
    writeFileSync(join(root, 'pixels.bin'), pixels);
    writeFileSync(join(root, 'texts.bin'), texts);
    for (const expert of snapshot.experts) {
      const files = manifest.experts.find((e) => e.id === expert.id)!.files;
      const script = [
        'import sys, numpy as np, onnxruntime as ort',
        'd, image, text, dim = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])',
        "run = lambda f, name, x: ort.InferenceSession(f'{d}/{f}', providers=['CPUExecutionProvider']).run(None, {name: x})[0]",
        "p = np.fromfile(f'{d}/../pixels.bin', dtype='<f4').reshape(-1, 28, 28, 1); t = np.fromfile(f'{d}/../texts.bin', dtype='<f4').reshape(-1, dim)",
        "np.concatenate([run(image, 'pixels', p).ravel(), run(text, 'caption_embedding', t).ravel()]).astype('<f4').tofile(f'{d}/../towers.bin')",
      ].join('\n');
      const towers = spawnSync(found.python, ['-c', script, exportDir, files.image, files.text, String(textDim)], { encoding: 'utf8' });
      expect(towers.status, towers.stderr).toBe(0);
      const got = new Float32Array(readFileSync(join(root, 'towers.bin')).buffer.slice(0));
      const located = async (name: string) => readFileSync((await store.filePath(version, name))!.path);
      const { model } = deserializeModel((await located(expert.files.json)).toString(), await located(expert.files.weights));
      try {
        const projection = model.architecture.projection;
        const want = tf.tidy(() => tf.concat([encodeImages(model, tf.tensor4d(pixels, [n, 28, 28, 1])).reshape([-1]), encodeTexts(model, tf.tensor2d(texts, [n, textDim])).reshape([-1])]));
        const expected = (await want.data()) as Float32Array;
        want.dispose();
        expect(got.length).toBe(expected.length);
        for (let r = 0; r < expected.length / projection; r++) {
          let [dot, a, b] = [0, 0, 0];
          for (let k = r * projection; k < (r + 1) * projection; k++) [dot, a, b] = [dot + got[k]! * expected[k]!, a + got[k]! ** 2, b + expected[k]! ** 2];
          expect(dot / Math.sqrt(a * b), `expert ${expert.id} row ${r}`).toBeGreaterThanOrEqual(0.9999);
        }
      } finally {
        disposeModel(model);
      }
    }
  });
});
