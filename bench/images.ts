/**
 * `npm run bench -- images [--records N] [--sizes 640x480,1600x1200] [--target 64x64x3] [--embedder hashed|default] [--steps S]
 *   [--decoders D] [--fetch-mib M] [--no-originals] [--brokers B]`
 *
 * Real web images at stream speed. Per source size, one run, the anchors measured next to ours:
 *   1. the decoder alone (the anchor): sharp straight to the target size, the router's pool size, over
 *      the backlog's very files                                                   -> images/s
 *   2. round 1's decoder: jpeg-js full decode, on one thread as the round-1 router did it for every
 *      pair (the ceiling of round 1's end-to-end rate, which also carried full-size pixels on)  -> images/s
 *   3. end to end: N pairs with those JPEGs in the pairs topic, router + sharder (header check, one
 *      native decode, embed, route, durable in LMDB)                              -> pairs/s, x decoder
 * Then training from the shards: samples/s of the expert model (target input) sampled from the
 * JPEG-fed shards next to shards of raw-pixel pairs of the same size and count (phase 3 again, with
 * pixels): training reads model-size pixels either way, so the two should match.
 *
 * The caption embedder is the hashed one by default here, so the figures are about images; `--embedder
 * default` runs the configured one (MiniLM), whose cost then shares the same cores.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import jpeg from 'jpeg-js';
import { Kafka, logLevel } from 'kafkajs';
import sharp from 'sharp';
import { openCore } from '../app/core.js';
import { startApp } from '../app/run.js';
import { createRng } from '../src/cluster/rng.js';
import { resolveConfig, type Config } from '../src/config.js';
import { encodePairMessage } from '../src/contract/pair.js';
import { architectureOf, createExpertModel, disposeModel } from '../src/expert/model.js';
import { createAdamWState, disposeAdamWState } from '../src/expert/optimizer.js';
import { trainExpert } from '../src/expert/train.js';
import { createSharpDecoder, decoderName, type PixelTarget } from '../src/image/decode.js';
import { silentLogger } from '../src/logger.js';
import { sampleBatches } from '../state/sampler.js';
import { splitByBytes } from '../streams/batches.js';
import { benchBroker, bootstrapCenters, fmt, waitUntil } from './harness.js';
import { createSyntheticFeed } from './synthetic.js';

const { values: args } = parseArgs({
  options: {
    records: { type: 'string', default: '3000' },
    sizes: { type: 'string', default: '640x480,1600x1200' },
    target: { type: 'string', default: '64x64x3' },
    embedder: { type: 'string', default: 'hashed' },
    steps: { type: 'string', default: '20' },
    decoders: { type: 'string' },
    'fetch-mib': { type: 'string' },
    'no-originals': { type: 'boolean', default: false },
    brokers: { type: 'string' },
  },
});

function fail(message: string): never {
  console.error(message);
  process.exit(2);
}
const N = Number(args.records);
if (!Number.isInteger(N) || N < 100) fail(`--records: expected a whole number of at least 100, got ${args.records}`);
const STEPS = Number(args.steps);
if (!Number.isInteger(STEPS) || STEPS < 1) fail(`--steps: expected a whole number of at least 1, got ${args.steps}`);
const sizes = args.sizes.split(',').map((s) => {
  const m = /^(\d+)x(\d+)$/.exec(s.trim());
  if (!m) fail(`--sizes: expected WxH[,WxH...], got ${args.sizes}`);
  return { width: Number(m[1]), height: Number(m[2]) };
});
const targetMatch = /^(\d+)x(\d+)x([13])$/.exec(args.target) ?? fail(`--target: expected WxHxC with C 1 or 3, got ${args.target}`);
const target: PixelTarget = { width: Number(targetMatch[1]), height: Number(targetMatch[2]), channels: Number(targetMatch[3]) as 1 | 3 };
if (!['hashed', 'default'].includes(args.embedder)) fail(`--embedder: expected hashed or default, got ${args.embedder}`);
const DISTINCT = 32;

/** Photo-like JPEGs: smooth colour fields with fine grain, quality 85, so they compress like photos. */
async function photos(width: number, height: number): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for (let i = 0; i < DISTINCT; i++) {
    const coarse = await sharp({ create: { width: Math.ceil(width / 24), height: Math.ceil(height / 24), channels: 3, background: '#808080', noise: { type: 'gaussian', mean: 128, sigma: 70 } } }).png().toBuffer();
    const grain = await sharp({ create: { width, height, channels: 3, background: '#808080', noise: { type: 'gaussian', mean: 128, sigma: 12 } } }).png().toBuffer();
    out.push(
      await sharp(coarse)
        .resize(width, height, { kernel: 'cubic', fit: 'fill' })
        .composite([{ input: grain, blend: 'soft-light' }])
        .modulate({ hue: i * 11 })
        .jpeg({ quality: 85, mozjpeg: false })
        .toBuffer(),
    );
  }
  return out;
}

/** jpeg-js, as round 1's router decoded every pair: full size, one thread. */
function roundOneRate(files: readonly Buffer[]): number {
  const count = Math.min(files.length, 16);
  const t0 = performance.now();
  for (let i = 0; i < count; i++) jpeg.decode(files[i]!, { useTArray: true, formatAsRGBA: false, maxMemoryUsageInMB: 1024 });
  return count / ((performance.now() - t0) / 1000);
}

async function main(): Promise<void> {
  const tag = randomUUID().slice(0, 6);
  const broker = await benchBroker(args.brokers);
  const { brokers } = broker;
  const stateRoot = mkdtempSync(join(tmpdir(), 'modestream-bench-state-'));
  const kafka = new Kafka({ brokers: brokers.split(','), logLevel: logLevel.ERROR });
  const config = (phase: string, extra: Record<string, unknown> = {}): Config =>
    resolveConfig([
      {
        origin: 'bench',
        values: {
          kafka: { brokers, ...(args['fetch-mib'] ? { maxBytesPerPartition: Number(args['fetch-mib']) * 2 ** 20 } : {}) },
          stateDir: join(stateRoot, phase),
          topics: { pairs: `bench-${tag}.pairs.${phase}`, dlq: `bench-${tag}.dlq.${phase}`, routed: `bench-${tag}.routed.${phase}`, control: `bench-${tag}.control.${phase}`, leader: `bench-${tag}.leader.${phase}`, nodes: `bench-${tag}.nodes.${phase}`, models: `bench-${tag}.models.${phase}`, sample: `bench-${tag}.sample.${phase}` },
          groups: { router: `bench-${tag}.router.${phase}`, sharder: `bench-${tag}.sharder.${phase}`, controller: `bench-${tag}.controller.${phase}` },
          clustering: { fine: 64, experts: 4, sample: 2000 },
          experts: { imageInput: { kind: 'pixels', ...target } },
          backend: 'wasm',
          // The router thread logs with its own logger: kafkajs's retries while the fresh topics settle are noise here.
          log: { level: 'fatal' },
          ...(args.embedder === 'hashed' ? { embedder: { kind: 'hashed' } } : {}),
          pipeline: { ...(args.decoders ? { imageDecoders: Number(args.decoders) } : {}), keepOriginalImages: !args['no-originals'] },
          ...extra,
        },
      },
    ]);
  const cores = availableParallelism();
  const lines: string[] = [];
  const report = (line: string) => {
    console.log(line);
    lines.push(line);
  };
  try {
    for (const size of sizes) {
      const label = `${size.width}x${size.height}`;
      const files = await photos(size.width, size.height);
      const meanKb = files.reduce((s, f) => s + f.length, 0) / files.length / 1024;
      console.log(`\n${label}: ${DISTINCT} distinct photo-like JPEGs, mean ${meanKb.toFixed(0)} KiB; target ${target.width}x${target.height}x${target.channels}; ${cores} cores`);

      // 1. The decoder alone, over fresh copies (as each Kafka message brings its own bytes).
      const decoder = createSharpDecoder({ limits: { maxImageSide: 4096, maxImagePixels: 4096 * 4096 } });
      const backlog = Array.from({ length: Math.min(N, 600) }, (_, i) => Buffer.from(files[i % DISTINCT]!));
      await decoder.decodeAll(backlog.slice(0, 8), target);
      let t0 = performance.now();
      const decoded = await decoder.decodeAll(backlog, target);
      const decoderRate = backlog.length / ((performance.now() - t0) / 1000);
      if (decoded.some((d) => !d.ok)) throw new Error(`the decoder refused a bench image: ${JSON.stringify(decoded.find((d) => !d.ok))}`);
      const roundOne = roundOneRate(files);
      console.log(`  decoder alone (${decoderName}, ${decoder.concurrency} at once): ${fmt(decoderRate)} images/s`);
      console.log(`  round 1's decoder (jpeg-js, full size, one thread): ${roundOne.toFixed(1)} images/s`);

      // Centers for the phase configs (one bootstrap per size: captions only).
      const phases = [`jpeg-${label}`, `raw-${label}`];
      for (const phase of phases) await bootstrapCenters(config(phase), 2000);

      // 3. End to end: JPEG pairs, then raw-pixel pairs of the target size (the training comparison).
      const rates: Record<string, number> = {};
      for (const phase of phases) {
        const cfg = config(phase, { roles: ['router', 'sharder'] });
        const jpegs = phase.startsWith('jpeg');
        const admin = kafka.admin();
        await admin.connect();
        await admin.createTopics({ topics: [{ topic: cfg.topics.pairs, numPartitions: 4 }], waitForLeaders: true });
        await admin.disconnect();
        const producer = kafka.producer();
        await producer.connect();
        const feed = createSyntheticFeed(2, phase);
        const rng = createRng(3);
        const pixels = new Uint8Array(target.width * target.height * target.channels);
        for (let sent = 0; sent < N; ) {
          const messages = Array.from({ length: Math.min(jpegs ? 100 : 1000, N - sent) }, (_, i) => {
            const { key, value } = feed.next();
            const caption = (JSON.parse(value.toString()) as { caption: string }).caption;
            for (let p = 0; p < pixels.length; p++) pixels[p] = Math.floor(rng.next() * 256);
            const image = jpegs ? ({ kind: 'encoded', bytes: files[(sent + i) % DISTINCT]! } as const) : ({ kind: 'pixels', ...target, data: pixels } as const);
            return { key, value: encodePairMessage({ id: key, caption, image }) };
          });
          for (const request of splitByBytes([{ topic: cfg.topics.pairs, messages }], 8 * 2 ** 20)) await producer.sendBatch({ topicMessages: request, acks: -1 });
          sent += messages.length;
        }
        await producer.disconnect();
        const app = await startApp({ config: cfg, logger: silentLogger });
        t0 = performance.now();
        await waitUntil(() => app.store.totalRecords() >= N);
        rates[phase] = N / ((performance.now() - t0) / 1000);
        await app.stop();
        console.log(`  end to end, ${jpegs ? `${label} JPEG` : `raw ${target.width}x${target.height}x${target.channels} pixel`} pairs (router + sharder, durable): ${fmt(rates[phase])} pairs/s`);
      }

      // Training from the shards: the same model and batches, JPEG-fed shards vs raw-pixel shards.
      const training: Record<string, number> = {};
      for (const phase of phases) {
        const cfg = config(phase);
        const core = await openCore(cfg, silentLogger);
        const experts = core.store.expertStats().filter((s) => s.expert >= 0 && s.records > 0).map((s) => s.expert);
        const architecture = architectureOf(cfg.experts, core.embedder.dim);
        const model = createExpertModel({ architecture, seed: 1 });
        const optimizer = createAdamWState(model.params);
        const batches = (seed: number) => sampleBatches({ store: core.store, experts, batchSize: cfg.experts.training.batch, architecture, rng: createRng(seed) });
        // Two warm-up steps (wasm JIT), then the timed ones: each call closes the batch stream it was given.
        await trainExpert({ model, optimizer, settings: cfg.experts.training, totalSteps: 2, batches: batches(5) });
        const started = performance.now();
        await trainExpert({ model, optimizer, settings: cfg.experts.training, totalSteps: 2 + STEPS, batches: batches(6) });
        training[phase] = (STEPS * cfg.experts.training.batch) / ((performance.now() - started) / 1000);
        disposeAdamWState(optimizer);
        disposeModel(model);
        await core.close();
        console.log(`  training from ${phase.startsWith('jpeg') ? 'JPEG-fed' : 'raw-pixel'} shards: ${fmt(training[phase])} samples/s (batch ${cfg.experts.training.batch}, ${STEPS} steps)`);
      }

      const e2e = rates[phases[0]!]!;
      report(`${label} JPEG: decoder ${fmt(decoderRate)} images/s (anchor) | end to end ${fmt(e2e)} pairs/s (${(e2e / decoderRate).toFixed(2)}x decoder, ${(e2e / roundOne).toFixed(1)}x round 1's jpeg-js ${roundOne.toFixed(1)}/s) | raw-pixel end to end ${fmt(rates[phases[1]!]!)} pairs/s | training ${fmt(training[phases[0]!]!)} vs ${fmt(training[phases[1]!]!)} samples/s (JPEG-fed vs raw-pixel shards)`);
    }
    console.log(`\nsummary (${cores} cores, embedder ${args.embedder}, target ${args.target}, ${fmt(N)} pairs per run)`);
    for (const line of lines) console.log(`  ${line}`);
  } finally {
    await broker.close();
    rmSync(stateRoot, { recursive: true, force: true });
  }
}

await main();
process.exit(0);
