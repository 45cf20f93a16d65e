/**
 * ONNX export of the experts' towers: the graphs built by src/onnx/expert-graph.ts, run with
 * onnxruntime-node, against encodeImages / encodeTexts on the wasm tfjs backend, for a pixel tower with a
 * conv stage (and a crop), one without, and an embedding-input tower; plus the snapshot exporter.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { Command } from 'commander';
import * as ort from 'onnxruntime-node';
import { beforeAll, describe, expect, test } from 'vitest';
import { createRng } from '../../src/cluster/rng.js';
import { registerSnapshotExport } from '../../cli/commands/snapshot-export.js';
import { exportSnapshotOnnx, type OnnxExportManifest } from '../../app/onnx-export.js';
import { ConfigSchema } from '../../src/config.js';
import { CODE_TEMPERATURE, PAPER_LAMBDA } from '../../src/ensemble/weights.js';
import { ConfigError, StateError } from '../../src/errors.js';
import { serializeModel } from '../../src/expert/checkpoint.js';
import { architectureOf, createExpertModel, disposeModel, encodeImages, encodeTexts, type ExpertArchitecture, type ExpertModel } from '../../src/expert/model.js';
import { convWeight, imageTowerOnnx, OUTPUT, textTowerOnnx, TEXT_INPUT, type ExpertWeights } from '../../src/onnx/expert-graph.js';
import { CENTROIDS_FILE, SNAPSHOT_FORMAT, modelFiles } from '../../src/snapshot/manifest.js';
import { initBackend } from '../../src/tensor/backend.js';
import { createSnapshotStore } from '../../state/snapshots.js';

const settings = ConfigSchema.parse({}).experts;
const arch = (over: Partial<typeof settings>, textDim = 24): ExpertArchitecture =>
  architectureOf({ ...settings, stemChannels: 8, convChannels: [], imageHidden: 32, textHidden: 20, projection: 16, ...over }, textDim);

const variants: Record<string, ExpertArchitecture> = {
  'pixels 28x28x1, patch 4, one conv stage (7x7 -> 3x3, odd side)': arch({ imageInput: { kind: 'pixels', width: 28, height: 28, channels: 1 }, patch: 4, convChannels: [6] }),
  'pixels 16x16x3, patch 4, no conv stage': arch({ imageInput: { kind: 'pixels', width: 16, height: 16, channels: 3 }, patch: 4 }),
  'pixels 18x17x3, patch 4 (cropped), two conv stages, non-square': arch({ imageInput: { kind: 'pixels', width: 17, height: 18, channels: 3 }, patch: 4, convChannels: [5, 7] }),
  'embedding input 40': arch({ imageInput: { kind: 'embedding', dim: 40 } }),
};

beforeAll(async () => {
  await initBackend('wasm');
});

async function weightsOf(model: ExpertModel): Promise<ExpertWeights> {
  const out: ExpertWeights = {};
  for (const [name, v] of model.params) out[name] = (await v.data()) as Float32Array;
  return out;
}

/** Per-row cosine between a and b and their largest absolute difference. */
function compare(a: Float32Array, b: Float32Array, dim: number): { minCosine: number; maxAbs: number } {
  expect(a.length).toBe(b.length);
  let minCosine = 1;
  let maxAbs = 0;
  for (let r = 0; r < a.length / dim; r++) {
    let [dot, na, nb] = [0, 0, 0];
    for (let d = 0; d < dim; d++) {
      const [x, y] = [a[r * dim + d]!, b[r * dim + d]!];
      dot += x * y;
      na += x * x;
      nb += y * y;
      maxAbs = Math.max(maxAbs, Math.abs(x - y));
    }
    minCosine = Math.min(minCosine, dot / Math.sqrt(na * nb));
  }
  return { minCosine, maxAbs };
}

async function runOnnx(bytes: Uint8Array, input: string, data: Float32Array, dims: number[]): Promise<{ values: Float32Array; dims: readonly number[] }> {
  const session = await ort.InferenceSession.create(bytes);
  try {
    expect(session.inputNames).toEqual([input]);
    expect(session.outputNames).toEqual([OUTPUT]);
    const result = await session.run({ [input]: new ort.Tensor('float32', data, dims) });
    const out = result[OUTPUT]!;
    return { values: out.data as Float32Array, dims: out.dims };
  } finally {
    await session.release();
  }
}

async function tfOut(t: tf.Tensor): Promise<Float32Array> {
  const data = (await t.data()) as Float32Array;
  t.dispose();
  return data;
}

describe('convWeight', () => {
  test('maps dense rows (dy, dx, c) to ONNX [out, c, kh, kw]', () => {
    // k=2, c=2, out=3: kernel[(dy*2+dx)*2+c][o] = 1000*dy + 100*dx + 10*c + o.
    const kernel = new Float32Array(2 * 2 * 2 * 3);
    for (let dy = 0; dy < 2; dy++) for (let dx = 0; dx < 2; dx++) for (let c = 0; c < 2; c++) for (let o = 0; o < 3; o++) kernel[((dy * 2 + dx) * 2 + c) * 3 + o] = 1000 * dy + 100 * dx + 10 * c + o;
    const w = convWeight(kernel, 2, 2, 3);
    for (let o = 0; o < 3; o++) for (let c = 0; c < 2; c++) for (let dy = 0; dy < 2; dy++) for (let dx = 0; dx < 2; dx++) expect(w[((o * 2 + c) * 2 + dy) * 2 + dx]).toBe(1000 * dy + 100 * dx + 10 * c + o);
  });
});

async function withRandomBiases(model: ExpertModel): Promise<ExpertModel> {
  // Non-zero biases, so a misplaced bias would show.
  let seed = 11;
  for (const [name, v] of model.params) if (name.endsWith('/bias')) v.assign(tf.tidy(() => tf.randomNormal(v.shape, 0, 0.1, 'float32', seed++)));
  return model;
}

describe.each(Object.entries(variants))('%s', (_, architecture) => {
  test('image and text towers match encodeImages / encodeTexts under onnxruntime', async () => {
    const model = await withRandomBiases(createExpertModel({ architecture, seed: 7 }));
    try {
      const weights = await weightsOf(model);
      const rng = createRng(3);
      const a = model.architecture;
      const batch = 5;

      const imageDims = a.imageInput.kind === 'pixels' ? [batch, a.imageInput.height, a.imageInput.width, a.imageInput.channels] : [batch, a.imageInput.dim];
      const images = Float32Array.from({ length: imageDims.reduce((x, y) => x * y, 1) }, () => (a.imageInput.kind === 'pixels' ? rng.next() : rng.nextGaussian()));
      const expectedImages = await tfOut(tf.tidy(() => encodeImages(model, tf.tensor(images, imageDims))));
      const image = await runOnnx(imageTowerOnnx(a, weights), a.imageInput.kind === 'pixels' ? 'pixels' : 'image_embedding', images, imageDims);
      expect(image.dims).toEqual([batch, a.projection]);
      const imageStats = compare(image.values, expectedImages, a.projection);
      expect(imageStats.minCosine).toBeGreaterThanOrEqual(0.9999);
      expect(imageStats.maxAbs).toBeLessThan(1e-4);

      const texts = Float32Array.from({ length: 3 * a.textDim }, () => rng.nextGaussian());
      const expectedTexts = await tfOut(tf.tidy(() => encodeTexts(model, tf.tensor2d(texts, [3, a.textDim]))));
      const text = await runOnnx(textTowerOnnx(a, weights), TEXT_INPUT, texts, [3, a.textDim]);
      expect(text.dims).toEqual([3, a.projection]);
      const textStats = compare(text.values, expectedTexts, a.projection);
      expect(textStats.minCosine).toBeGreaterThanOrEqual(0.9999);
      expect(textStats.maxAbs).toBeLessThan(1e-4);
      console.log(`${JSON.stringify(a.imageInput)} conv=${JSON.stringify(a.convChannels)}: image cos>=${imageStats.minCosine.toFixed(7)} maxAbs=${imageStats.maxAbs.toExponential(2)}; text cos>=${textStats.minCosine.toFixed(7)} maxAbs=${textStats.maxAbs.toExponential(2)}`);
    } finally {
      disposeModel(model);
    }
  });
});

describe('exportSnapshotOnnx', () => {
  test('exports every model of a published snapshot; the files run under onnxruntime like the tfjs towers', async () => {
    const root = await mkdtemp(join(tmpdir(), 'onnx-export-'));
    const models: ExpertModel[] = [];
    try {
      const architecture = variants['pixels 28x28x1, patch 4, one conv stage (7x7 -> 3x3, odd side)']!;
      const seedModel = await withRandomBiases(createExpertModel({ architecture, seed: 1 }));
      const expert0 = await withRandomBiases(createExpertModel({ architecture, seed: 2 }));
      models.push(seedModel, expert0);
      // A snapshot as training/snapshot.ts publishes it: expert 0 has its own model, expert 1 serves with the seed.
      const files: Record<string, Uint8Array | string> = {};
      const refOf = async (name: string, version: number, model: ExpertModel) => {
        const names = modelFiles(`${name}-v${version}`);
        const { modelJson, weights } = await serializeModel(model, { role: name });
        files[names.json] = modelJson;
        files[names.weights] = weights;
        return { version, files: names, trainedAt: new Date(0).toISOString(), steps: 10, loss: 1.5, records: 100, backend: 'wasm' };
      };
      const dim = architecture.textDim;
      const centers = Float32Array.from({ length: 3 * dim }, (_, i) => Math.sin(i));
      files[CENTROIDS_FILE] = new Uint8Array(centers.buffer);
      const seedRef = await refOf('seed', 1, seedModel);
      const ownRef = await refOf('expert-0', 4, expert0);
      const embedder = ConfigSchema.parse({}).embedder;
      const store = createSnapshotStore({ dir: join(root, 'snapshots') });
      await store.publish(
        {
          format: SNAPSHOT_FORMAT,
          formatVersion: 1,
          version: 1,
          createdAt: new Date(0).toISOString(),
          embedder: { settings: embedder, fingerprint: 'test-fingerprint', dim },
          centroids: { epoch: 2, dim, file: CENTROIDS_FILE, fineIds: [0, 1, 2], fineToExpert: [0, 1, 0] },
          routing: { formula: 'code', constants: { codeTemperature: CODE_TEMPERATURE, paperLambda: PAPER_LAMBDA } },
          seed: seedRef,
          experts: [
            { ...ownRef, id: 0, fineClusters: 2 },
            { ...seedRef, id: 1, fineClusters: 1 },
          ],
        },
        files,
      );

      const out = join(root, 'onnx');
      const manifest = await exportSnapshotOnnx({ snapshotsDir: join(root, 'snapshots'), outDir: out });
      const onDisk = JSON.parse(await readFile(join(out, 'manifest.json'), 'utf8')) as OnnxExportManifest;
      expect(onDisk).toEqual(manifest);
      expect(manifest).toMatchObject({
        version: 1,
        opset: 13,
        seed: { files: { image: 'seed.image.onnx', text: 'seed.text.onnx' }, modelVersion: 1 },
        experts: [
          { id: 0, files: { image: 'expert-0.image.onnx', text: 'expert-0.text.onnx' }, modelVersion: 4, sharesSeed: false, fineClusters: 2 },
          { id: 1, files: { image: 'seed.image.onnx', text: 'seed.text.onnx' }, modelVersion: 1, sharesSeed: true, fineClusters: 1 },
        ],
        fineCenters: { file: 'centroids.bin', dtype: 'float32', shape: [3, dim], fineIds: [0, 1, 2], epoch: 2 },
        fineToExpert: [0, 1, 0],
        routing: { formula: 'code', constants: { codeTemperature: CODE_TEMPERATURE, paperLambda: PAPER_LAMBDA } },
        captionEncoder: { kind: embedder.kind, fingerprint: 'test-fingerprint', dim },
        io: { image: { name: 'pixels', shape: ['N', 28, 28, 1] }, text: { name: 'caption_embedding', shape: ['N', dim] }, output: { name: 'embedding', shape: ['N', 16] } },
      });
      expect(manifest.seed!.logitScale).toBeCloseTo(1 / 0.07, 3);
      expect(manifest.prompts.length).toBeGreaterThan(0);
      expect(new Float32Array((await readFile(join(out, 'centroids.bin'))).buffer.slice(0))).toEqual(centers);
      expect((await readdir(out)).sort()).toEqual(['centroids.bin', 'expert-0.image.onnx', 'expert-0.text.onnx', 'manifest.json', 'seed.image.onnx', 'seed.text.onnx']);

      const rng = createRng(5);
      const images = Float32Array.from({ length: 4 * 28 * 28 }, () => rng.next());
      const texts = Float32Array.from({ length: 2 * dim }, () => rng.nextGaussian());
      for (const [base, model] of [['seed', seedModel], ['expert-0', expert0]] as const) {
        const session = await ort.InferenceSession.create(join(out, `${base}.image.onnx`));
        const got = (await session.run({ pixels: new ort.Tensor('float32', images, [4, 28, 28, 1]) }))['embedding']!.data as Float32Array;
        await session.release();
        const want = await tfOut(tf.tidy(() => encodeImages(model, tf.tensor4d(images, [4, 28, 28, 1]))));
        expect(compare(got, want, 16).maxAbs).toBeLessThan(1e-4);
        const textSession = await ort.InferenceSession.create(join(out, `${base}.text.onnx`));
        const gotText = (await textSession.run({ caption_embedding: new ort.Tensor('float32', texts, [2, dim]) }))['embedding']!.data as Float32Array;
        await textSession.release();
        const wantText = await tfOut(tf.tidy(() => encodeTexts(model, tf.tensor2d(texts, [2, dim]))));
        expect(compare(gotText, wantText, 16).maxAbs).toBeLessThan(1e-4);
      }

      // The CLI command under a `snapshot` command, as cli/commands/snapshot.ts would register it.
      const program = new Command('modestream').version('0.1.0').exitOverride();
      const snapshot = program.command('snapshot').action(() => undefined);
      registerSnapshotExport(snapshot);
      const cliOut = join(root, 'cli');
      await program.parseAsync(['snapshot', 'export', '--format', 'onnx', '--out', cliOut, '--dir', join(root, 'snapshots'), '--snapshot-version', '1'], { from: 'user' });
      expect((await readdir(cliOut)).sort()).toEqual((await readdir(out)).sort());
      await expect(program.parseAsync(['snapshot', 'export', '--format', 'tflite', '--out', cliOut], { from: 'user' })).rejects.toThrow(ConfigError);

      // A pinned version that does not exist, and a corrupt weights file, are refused.
      await expect(exportSnapshotOnnx({ snapshotsDir: join(root, 'snapshots'), outDir: join(root, 'x'), version: 9 })).rejects.toThrow(StateError);
      await writeFile(join(root, 'snapshots', 'v000001', ownRef.files.weights), Buffer.alloc((files[ownRef.files.weights] as Uint8Array).byteLength));
      await expect(exportSnapshotOnnx({ snapshotsDir: join(root, 'snapshots'), outDir: join(root, 'y') })).rejects.toThrow(/corrupt/);
      expect(existsSync(join(root, 'y', 'manifest.json'))).toBe(false);
    } finally {
      for (const m of models) disposeModel(m);
      await rm(root, { recursive: true, force: true });
    }
  });
});
