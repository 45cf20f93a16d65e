/**
 * The CLIP expert: layers against tfjs references, the optimizer and schedule against hand computation,
 * the loss falling on a tiny synthetic image-caption set, checkpoints round-tripping exactly and refusing
 * corrupt files, and no tensor leaks across training steps.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, test } from 'vitest';
import { createRng } from '../../src/cluster/rng.js';
import { ConfigSchema } from '../../src/config.js';
import type { RoutedRecord } from '../../src/contract/routed.js';
import { StateError } from '../../src/errors.js';
import { toTrainBatch, unfitReason, writeImage } from '../../src/expert/batch.js';
import { deserializeModel, deserializeOptimizer, serializeModel, serializeOptimizer } from '../../src/expert/checkpoint.js';
import { conv3x3, dense, patchConv } from '../../src/expert/layers.js';
import { architectureOf, createExpertModel, disposeModel, encodeImages, encodeTexts, type ExpertArchitecture, type ExpertModel } from '../../src/expert/model.js';
import { adamWStep, cosineLearningRate, createAdamWState, disposeAdamWState } from '../../src/expert/optimizer.js';
import { batchLoss, imageTensor, trainExpert, type TrainBatch } from '../../src/expert/train.js';
import { initBackend } from '../../src/tensor/backend.js';

const settings = ConfigSchema.parse({}).experts;
// Both image-tower layer kinds: a 2x2 patchify stem (8x8 -> 4x4) and one 3x3 conv stage (-> 2x2).
const tiny: ExpertArchitecture = architectureOf(
  { ...settings, imageInput: { kind: 'pixels', width: 8, height: 8, channels: 1 }, patch: 2, stemChannels: 8, convChannels: [4], imageHidden: 32, textHidden: 32, projection: 16 },
  12,
);

beforeAll(async () => {
  await initBackend('wasm');
});

/**
 * k classes: each image is its class's 8x8 pattern plus noise, each caption its class's vector plus
 * noise. The classes are fixed; `seed` only draws the samples, so held-out batches share the classes.
 */
function* syntheticBatches(seed: number, batch: number, classes = 6): Generator<TrainBatch> {
  const world = createRng(1234);
  const patterns = Array.from({ length: classes }, () => Float32Array.from({ length: 64 }, () => world.next()));
  const captions = Array.from({ length: classes }, () => Float32Array.from({ length: 12 }, () => world.nextGaussian()));
  const rng = createRng(seed);
  for (;;) {
    const images = new Float32Array(batch * 64);
    const texts = new Float32Array(batch * 12);
    for (let i = 0; i < batch; i++) {
      const c = rng.nextInt(classes);
      for (let p = 0; p < 64; p++) images[i * 64 + p] = Math.min(1, Math.max(0, patterns[c]![p]! + 0.1 * rng.nextGaussian()));
      for (let d = 0; d < 12; d++) texts[i * 12 + d] = captions[c]![d]! + 0.1 * rng.nextGaussian();
    }
    yield { images, texts, size: batch };
  }
}

async function* asAsync<T>(it: Iterable<T>): AsyncGenerator<T> {
  for (const x of it) yield x;
}

async function meanLoss(model: ExpertModel, batches: TrainBatch[]): Promise<number> {
  let sum = 0;
  for (const b of batches) {
    const loss = tf.tidy(() => batchLoss(model, imageTensor(model, b), tf.tensor2d(b.texts, [b.size, 12])));
    sum += (await loss.data())[0]!;
    loss.dispose();
  }
  return sum / batches.length;
}

describe('layers', () => {
  test('dense with explicit-transpose gradients equals autograd matMul', async () => {
    const x = tf.randomNormal([5, 7], 0, 1, 'float32', 1) as tf.Tensor2D;
    const w = tf.randomNormal([7, 3], 0, 1, 'float32', 2) as tf.Tensor2D;
    const ours = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.square(dense(a as tf.Tensor2D, b as tf.Tensor2D))))([x, w]);
    const reference = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.square(tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D))))([x, w]);
    for (let i = 0; i < 2; i++) expect(Array.from(await ours[i]!.data())).toEqual(Array.from(await reference[i]!.data()).map((v) => expect.closeTo(v, 4)));
    tf.dispose([x, w, ...ours, ...reference]);
  });

  test('conv3x3 (im2col from shifted slices) equals tf.conv2d with same padding', async () => {
    const x = tf.randomNormal([2, 6, 5, 3], 0, 1, 'float32', 3) as tf.Tensor4D;
    const filter = tf.randomNormal([3, 3, 3, 4], 0, 1, 'float32', 4) as tf.Tensor4D;
    const bias = tf.randomNormal([4], 0, 1, 'float32', 5) as tf.Tensor1D;
    // Kernel rows are ordered (dy, dx, c): exactly tf.conv2d's filter layout, flattened.
    const ours = conv3x3(x, tf.reshape(filter, [27, 4]) as tf.Tensor2D, bias);
    const reference = tf.add(tf.conv2d(x, filter, 1, 'same'), bias);
    expect(ours.shape).toEqual([2, 6, 5, 4]);
    const [a, b] = await Promise.all([ours.data(), reference.data()]);
    a.forEach((v, i) => expect(v).toBeCloseTo(b[i]!, 4));
    tf.dispose([x, filter, bias, ours, reference]);
  });

  test('patchConv equals tf.conv2d with kernel = stride = patch, dropping partial patches', async () => {
    const x = tf.randomNormal([2, 9, 8, 3], 0, 1, 'float32', 6) as tf.Tensor4D;
    const filter = tf.randomNormal([4, 4, 3, 5], 0, 1, 'float32', 7) as tf.Tensor4D;
    const bias = tf.randomNormal([5], 0, 1, 'float32', 8) as tf.Tensor1D;
    const ours = patchConv(x, tf.reshape(filter, [48, 5]) as tf.Tensor2D, bias, 4);
    const reference = tf.add(tf.conv2d(x, filter, 4, 'valid'), bias);
    expect(ours.shape).toEqual([2, 2, 2, 5]);
    const [a, b] = await Promise.all([ours.data(), reference.data()]);
    a.forEach((v, i) => expect(v).toBeCloseTo(b[i]!, 4));
    tf.dispose([x, filter, bias, ours, reference]);
  });
});

describe('optimizer and schedule', () => {
  test('one AdamW step matches the formula, decaying weights but not biases', async () => {
    const params = new Map([
      ['w/kernel', tf.variable(tf.tensor1d([1, -2]))],
      ['w/bias', tf.variable(tf.tensor1d([0.5]))],
    ]);
    const state = createAdamWState(params);
    const grads = { 'w/kernel': tf.tensor1d([0.1, 0.4]), 'w/bias': tf.tensor1d([-0.2]) };
    const s = { beta1: 0.9, beta2: 0.98, epsilon: 1e-6, weightDecay: 0.1 };
    adamWStep({ params, grads, state, lr: 0.01, settings: s, decayed: new Set(['w/kernel']) });
    // Step 1: mhat = g, vhat = g^2, so the Adam term is g / (|g| + eps) = sign(g).
    const expectKernel = [1 - 0.01 * (0.1 / (0.1 + 1e-6) + 0.1 * 1), -2 - 0.01 * (0.4 / (0.4 + 1e-6) + 0.1 * -2)];
    const kernel = await params.get('w/kernel')!.data();
    expect(kernel[0]).toBeCloseTo(expectKernel[0]!, 5);
    expect(kernel[1]).toBeCloseTo(expectKernel[1]!, 5);
    expect((await params.get('w/bias')!.data())[0]).toBeCloseTo(0.5 + 0.01, 5);
    expect(state.step).toBe(1);
    disposeAdamWState(state);
    tf.dispose([...params.values(), ...Object.values(grads)]);
  });

  test('cosine schedule: linear warmup, then half a cosine down to zero', () => {
    const lr = (step: number) => cosineLearningRate({ step, total: 110, warmup: 10, base: 1 });
    expect(lr(0)).toBeCloseTo(0.1);
    expect(lr(9)).toBeCloseTo(1);
    expect(lr(10)).toBeCloseTo(1);
    expect(lr(60)).toBeCloseTo(0.5);
    expect(lr(110)).toBeCloseTo(0);
  });
});

describe('training', () => {
  test('the loss falls on a tiny synthetic image-caption set, and no tensor leaks', async () => {
    const model = createExpertModel({ architecture: tiny, seed: 1 });
    const optimizer = createAdamWState(model.params);
    const held = [...Array(4)].map(((it) => () => it.next().value as TrainBatch)(syntheticBatches(99, 32)));
    const before = await meanLoss(model, held);
    let tensorsAfterFirst = 0;
    const result = await trainExpert({
      model,
      optimizer,
      settings: { ...settings.training, learningRate: 3e-3, warmupSteps: 5 },
      totalSteps: 80,
      batches: asAsync(syntheticBatches(1, 32)),
      onStep: ({ step }) => {
        if (step === 1) tensorsAfterFirst = tf.memory().numTensors;
      },
    });
    const after = await meanLoss(model, held);
    expect(result.step).toBe(80);
    // With ~5 pairs of each class in a batch of 32, even a perfect model stays near ln(32/6) = 1.7.
    expect(after).toBeLessThan(before * 0.6);
    expect(tf.memory().numTensors).toBe(tensorsAfterFirst);
    disposeAdamWState(optimizer);
    disposeModel(model);
  });

  test('an aborted run stops at a step boundary and can continue the same schedule', async () => {
    const model = createExpertModel({ architecture: tiny, seed: 2 });
    const optimizer = createAdamWState(model.params);
    const abort = new AbortController();
    const first = await trainExpert({
      model,
      optimizer,
      settings: settings.training,
      totalSteps: 20,
      batches: asAsync(syntheticBatches(3, 16)),
      signal: abort.signal,
      onStep: ({ step }) => {
        if (step === 7) abort.abort();
      },
    });
    expect(first).toMatchObject({ step: 7, stopped: true });
    const second = await trainExpert({ model, optimizer, settings: settings.training, totalSteps: 20, batches: asAsync(syntheticBatches(4, 16)) });
    expect(second).toMatchObject({ step: 20, stopped: false });
    disposeAdamWState(optimizer);
    disposeModel(model);
  });
});

describe('checkpoints', () => {
  test('save then load gives identical outputs and optimizer state', async () => {
    const model = createExpertModel({ architecture: tiny, seed: 5 });
    const optimizer = createAdamWState(model.params);
    await trainExpert({ model, optimizer, settings: settings.training, totalSteps: 3, batches: asAsync(syntheticBatches(5, 8)) });
    const { modelJson, weights } = await serializeModel(model, { role: 'test' });
    const saved = await serializeOptimizer(optimizer);
    const { model: loaded, metadata } = deserializeModel(modelJson, weights);
    const restored = deserializeOptimizer(saved.json, saved.weights, loaded);
    expect(metadata).toEqual({ role: 'test' });
    expect(restored.step).toBe(3);
    const batch = syntheticBatches(6, 8).next().value as TrainBatch;
    const embed = (m: ExpertModel) => tf.tidy(() => tf.concat([encodeImages(m, imageTensor(m, batch)), encodeTexts(m, tf.tensor2d(batch.texts, [8, 12]))], 1));
    const [a, b] = [embed(model), embed(loaded)];
    expect(Array.from(await b.data())).toEqual(Array.from(await a.data()));
    for (const [name, m] of optimizer.m) expect(Array.from(await restored.m.get(name)!.data())).toEqual(Array.from(await m.data()));
    tf.dispose([a, b]);
    disposeAdamWState(optimizer);
    disposeAdamWState(restored);
    disposeModel(model);
    disposeModel(loaded);
  });

  test('a corrupt, truncated or foreign checkpoint is refused with a clear error', async () => {
    const model = createExpertModel({ architecture: tiny, seed: 6 });
    const { modelJson, weights } = await serializeModel(model, {});
    const flipped = weights.slice();
    flipped[100] = flipped[100]! ^ 0xff;
    expect(() => deserializeModel(modelJson, flipped, 'ckpt')).toThrow(/ckpt\/weights.bin is corrupt: its SHA-256/);
    expect(() => deserializeModel(modelJson, weights.subarray(0, 1000), 'ckpt')).toThrow(StateError);
    expect(() => deserializeModel('{"format": "tfjs-layers"}', weights, 'ckpt')).toThrow(/ckpt\/model.json is not a modestream expert checkpoint: format/);
    expect(() => deserializeModel('{ nope', weights, 'ckpt')).toThrow(/not valid JSON/);
    disposeModel(model);
  });
});

describe('records to batches', () => {
  const record = (image: RoutedRecord['image'], dim = 12): RoutedRecord => ({
    id: 'r',
    caption: 'c',
    ts: 0,
    image,
    embedding: new Float32Array(dim).fill(0.5),
    route: null,
    origin: { topic: 't', partition: 0, offset: '0' },
  });

  test('pixels are scaled to [0, 1]; other sizes are resized and RGB becomes grey', () => {
    const out = new Float32Array(64);
    const grey = Uint8Array.from({ length: 64 }, (_, i) => i * 4);
    expect(writeImage({ kind: 'pixels', width: 8, height: 8, channels: 1, data: grey }, tiny, out, 0)).toBe(true);
    expect(out[1]).toBeCloseTo(4 / 255);
    const rgb = new Uint8Array(16 * 16 * 3).fill(255);
    for (let i = 0; i < 16 * 16; i++) rgb[i * 3] = 0; // (0, 255, 255) averages to 170
    expect(writeImage({ kind: 'pixels', width: 16, height: 16, channels: 3, data: rgb }, tiny, out, 0)).toBe(true);
    for (const v of out) expect(v).toBeCloseTo(170 / 255, 5);
  });

  test('records the model cannot take are skipped with their reason', () => {
    const ok = record({ kind: 'pixels', width: 8, height: 8, channels: 1, data: new Uint8Array(64) });
    const wrongImage = record({ kind: 'embedding', values: new Float32Array(4) });
    const wrongText = { ...ok, embedding: new Float32Array(7) };
    expect(unfitReason(ok, tiny)).toBeUndefined();
    const { batch, skipped } = toTrainBatch([ok, wrongImage, wrongText, ok], tiny);
    expect(batch.size).toBe(2);
    expect(batch.images.length).toBe(2 * 64);
    expect(skipped).toEqual({ 'embedding image for a pixel tower': 1, 'caption embedding of dim 7 for a text tower of 12': 1 });
  });
});
