/**
 * The GPU check (scripts/gpu/check.sh runs it on an offline NVIDIA host): exits non-zero unless the
 * WebGPU backend is up on a real adapter, then prints the adapter, a 4096^3 matmul figure, and trains
 * the seed model and one expert through the real job path (LMDB shards -> sampler -> trainer ->
 * checkpoint -> published version) on synthetic pairs, printing samples/s and loss.
 *   node dist/bench/gpu-check.js [--backend webgpu] [--records 20000] [--batch 4096] [--steps 60] [--matmul 4096]
 * Without a GPU, MODESTREAM_WEBGPU_ALLOW_SOFTWARE=1 and a software Vulkan driver (Debian
 * mesa-vulkan-drivers: lavapipe) run the same WebGPU code path slowly, to check it before a GPU session.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { runTrainingJob } from '../training/job.js';
import { openCore } from '../app/core.js';
import { createRng } from '../src/cluster/rng.js';
import { resolveConfig, type Backend } from '../src/config.js';
import { encodeRouted, type RoutedRecord } from '../src/contract/routed.js';
import type { Logger } from '../src/logger.js';
import { silentLogger } from '../src/logger.js';

const { values: args } = parseArgs({
  options: {
    backend: { type: 'string', default: 'webgpu' },
    records: { type: 'string', default: '20000' },
    batch: { type: 'string', default: '4096' },
    steps: { type: 'string', default: '60' },
    matmul: { type: 'string', default: '4096' },
  },
});
const backend = args.backend as Backend;
const stateDir = mkdtempSync(join(tmpdir(), 'modestream-gpu-check-'));
const config = resolveConfig([{ origin: 'gpu-check', values: { stateDir, backend, log: { level: 'warn' } } }]);

const consoleLogger: Logger = { ...silentLogger, warn: (o, m) => console.warn(m ?? o, typeof o === 'object' ? JSON.stringify(o) : ''), error: (o, m) => console.error(m ?? o) };

let core;
try {
  core = await openCore(config, consoleLogger);
} catch (err) {
  console.error(`FAIL: backend ${backend} did not start: ${(err as Error).message}`);
  process.exit(3);
}
if (core.backend.name !== backend || tf.getBackend() !== (backend === 'tensorflow-gpu' ? 'tensorflow' : backend)) {
  console.error(`FAIL: asked for ${backend}, running on ${tf.getBackend()}`);
  process.exit(3);
}
console.log(`backend: ${tf.getBackend()} adapter: ${core.backend.adapter ?? '(none)'}`);

// One large matmul: the raw throughput the trainer can hope for.
{
  const n = Number(args.matmul);
  const a = tf.randomNormal([n, n]);
  const b = tf.randomNormal([n, n]);
  await tf.matMul(a, b).data();
  const reps = 5;
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) {
    const c = tf.matMul(a, b);
    await c.data();
    c.dispose();
  }
  const ms = (performance.now() - t0) / reps;
  console.log(`matmul ${n}^3 f32: ${ms.toFixed(1)} ms, ${((2 * n ** 3) / ms / 1e6).toFixed(1)} GFLOP/s (read back included)`);
  tf.dispose([a, b]);
}

// Synthetic shards: 4 experts, 28x28 images whose pattern matches the caption's class.
{
  const rng = createRng(1);
  const classes = 10;
  const patterns = Array.from({ length: classes }, () => Uint8Array.from({ length: 784 }, () => rng.nextInt(256)));
  const captions = Array.from({ length: classes }, () => Float32Array.from({ length: 256 }, () => rng.nextGaussian() / 16));
  const total = Number(args.records);
  for (let start = 0; start < total; start += 2000) {
    const items = Array.from({ length: Math.min(2000, total - start) }, (_, i) => {
      const c = rng.nextInt(classes);
      const record: RoutedRecord = {
        id: `gpu-${start + i}`,
        caption: `class ${c}`,
        ts: Date.now(),
        image: { kind: 'pixels', width: 28, height: 28, channels: 1, data: patterns[c]!.map((v) => Math.min(255, Math.max(0, v + rng.nextInt(41) - 20))) },
        embedding: captions[c]!.map((v) => v + rng.nextGaussian() / 64),
        route: { epoch: 1, fine: c, expert: c % 4, dist2: 0 },
        origin: { topic: 'gpu-check', partition: 0, offset: String(start + i) },
      };
      return { record, bytes: encodeRouted(record) };
    });
    await core.store.append(items, { topic: 'gpu-check', partition: 0, nextOffset: start + items.length });
  }
  console.log(`shards: ${total} synthetic pairs in 4 experts`);
}

const batch = Number(args.batch);
const steps = Number(args.steps);
for (const target of [{ kind: 'seed' as const }, { kind: 'expert' as const, expert: 0 }]) {
  let first = Number.NaN;
  const t0 = performance.now();
  const result = await runTrainingJob({
    config,
    logger: consoleLogger,
    core,
    target,
    steps,
    batch,
    onProgress: (p) => {
      if (Number.isNaN(first)) first = p.loss;
      if (p.step % 10 === 0 || p.step === p.totalSteps) console.log(`  ${target.kind} step ${p.step}/${p.totalSteps} loss ${p.loss.toFixed(4)} ${Math.round(p.samplesPerSecond)} samples/s`);
    },
  });
  const seconds = (performance.now() - t0) / 1000;
  console.log(
    `${target.kind === 'seed' ? 'seed' : 'expert 0'}: ${result.steps} steps at batch ${batch} in ${seconds.toFixed(1)} s, ` +
      `${Math.round(result.samplesPerSecond)} samples/s (last window), ${Math.round((result.steps * batch) / seconds)} samples/s overall, loss ${first.toFixed(4)} -> ${result.loss.toFixed(4)}`,
  );
}
await core.close();
rmSync(stateDir, { recursive: true, force: true });
