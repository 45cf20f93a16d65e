/**
 * `npm run bench -- train [--backends wasm,cpu] [--batches 256,1024] [--steps N]`
 *
 * Training throughput of the default expert model (experts.* defaults, 28x28 grey images, 256-d
 * caption embeddings) on each available backend: ms/step and samples/s at each batch size (4096 too
 * when a GPU backend is up). Anchor in the same run: the dense layer's forward+backward with tfjs's
 * autograd matMul (transpose flags) next to ours (explicit transposes), at the model's largest layer.
 */
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { createRng } from '../src/cluster/rng.js';
import { ConfigSchema, type Backend } from '../src/config.js';
import { dense } from '../src/expert/layers.js';
import { architectureOf, createExpertModel, disposeModel } from '../src/expert/model.js';
import { createAdamWState, disposeAdamWState } from '../src/expert/optimizer.js';
import { trainExpert, type TrainBatch } from '../src/expert/train.js';
import { initBackend } from '../src/tensor/backend.js';

const { values: args } = parseArgs({
  options: {
    backends: { type: 'string', default: 'tensorflow-gpu,webgpu,tensorflow,wasm,cpu' },
    batches: { type: 'string', default: '256,1024' },
    steps: { type: 'string' },
  },
});

const settings = ConfigSchema.parse({}).experts;
const architecture = architectureOf(settings, 256);

function syntheticBatch(size: number, seed: number): TrainBatch {
  const rng = createRng(seed);
  return {
    images: Float32Array.from({ length: size * 28 * 28 }, () => rng.next()),
    texts: Float32Array.from({ length: size * 256 }, () => rng.nextGaussian()),
    size,
  };
}

async function* repeat(batch: TrainBatch): AsyncGenerator<TrainBatch> {
  for (;;) yield batch;
}

async function timeTraining(batchSize: number, steps: number): Promise<{ msPerStep: number; samplesPerSecond: number; loss: number }> {
  const model = createExpertModel({ architecture, seed: 1 });
  const optimizer = createAdamWState(model.params);
  const batch = syntheticBatch(batchSize, 2);
  // Two warm-up steps: kernel compilation (WebGPU) and wasm JIT are not throughput.
  await trainExpert({ model, optimizer, settings: settings.training, totalSteps: 2, batches: repeat(batch) });
  const started = performance.now();
  const result = await trainExpert({ model, optimizer, settings: settings.training, totalSteps: 2 + steps, batches: repeat(batch) });
  const ms = (performance.now() - started) / steps;
  disposeAdamWState(optimizer);
  disposeModel(model);
  return { msPerStep: ms, samplesPerSecond: (batchSize * 1000) / ms, loss: result.lastLoss };
}

/** Forward + backward of x[b, k] . w[k, n] both ways, ms per call. */
async function denseAnchor(b: number, k: number, n: number, reps: number): Promise<{ flags: number; explicit: number }> {
  const x = tf.randomNormal([b, k]) as tf.Tensor2D;
  const w = tf.randomNormal([k, n]) as tf.Tensor2D;
  const run = async (f: (a: tf.Tensor2D, c: tf.Tensor2D) => tf.Tensor) => {
    const g = tf.grads((a: tf.Tensor, c: tf.Tensor) => tf.sum(f(a as tf.Tensor2D, c as tf.Tensor2D)));
    const once = async () => {
      const out = g([x, w]);
      await Promise.all(out.map((t) => t.data()));
      tf.dispose(out);
    };
    await once();
    const t0 = performance.now();
    for (let i = 0; i < reps; i++) await once();
    return (performance.now() - t0) / reps;
  };
  const flags = await run((a, c) => tf.matMul(a, c));
  const explicit = await run((a, c) => dense(a, c));
  tf.dispose([x, w]);
  return { flags, explicit };
}

const rows: string[] = [];
for (const backend of args.backends.split(',') as Backend[]) {
  let info;
  try {
    info = await initBackend(backend);
  } catch (err) {
    console.log(`${backend}: not available (${(err as Error).message.split(';')[0]})`);
    continue;
  }
  const gpu = backend === 'webgpu' || backend === 'tensorflow-gpu';
  const batches = args.batches.split(',').map(Number);
  if (gpu && !batches.includes(4096)) batches.push(4096);
  console.log(`${backend}${info.adapter ? ` (${info.adapter})` : ''}:`);
  for (const batch of batches) {
    // The pure-JS cpu backend needs minutes per step at large batches: a couple of steps tell enough.
    const steps = Number(args.steps ?? (gpu ? 20 : backend === 'cpu' ? 2 : 5));
    const r = await timeTraining(batch, steps);
    const line = `${backend.padEnd(15)} batch ${String(batch).padStart(5)}: ${r.msPerStep.toFixed(0).padStart(7)} ms/step ${Math.round(r.samplesPerSecond).toString().padStart(8)} samples/s (loss ${r.loss.toFixed(3)})`;
    console.log(`  ${line}`);
    rows.push(line);
  }
  // The largest dense layer: the flattened stem output into the hidden layer.
  const flat = (28 / settings.patch) ** 2 * settings.stemChannels;
  const anchor = await denseAnchor(256, flat, settings.imageHidden, backend === 'cpu' ? 2 : 10);
  const anchorLine = `${backend.padEnd(15)} dense fwd+bwd [256 x ${flat}] x [${flat} x ${settings.imageHidden}]: autograd matMul ${anchor.flags.toFixed(1)} ms, explicit transposes ${anchor.explicit.toFixed(1)} ms (${(anchor.flags / anchor.explicit).toFixed(2)}x)`;
  console.log(`  ${anchorLine}`);
  rows.push(anchorLine);
}
console.log(`\nsummary (default expert: ${settings.patch}x${settings.patch} patch stem ${settings.stemChannels}, conv3x3 [${settings.convChannels.join(',')}], hidden ${settings.imageHidden}/${settings.textHidden}, projection ${settings.projection})`);
for (const r of rows) console.log(`  ${r}`);
