/**
 * `npm run bench -- embed [--embedders hashed,static,onnx] [--records N] [--onnx-records N] [--threads T]
 *                         [--model minilm-l6] [--models-dir D] [--brokers B]`
 *
 * Is the router the embedder's bottleneck? For each embedder, one run on one broker:
 *   1. raw encoder: the embedder alone on the run's captions, T threads, no cache    -> anchor captions/s
 *   2. router alone (validate, embed, route, produce), T router threads, no cache     -> router pairs/s
 *   3. router + sharder (durable in LMDB), no cache                                   -> end-to-end pairs/s
 *   4. router alone with the default caption cache                                    -> pairs/s, hit rate
 * The target is router >= 0.8 x raw at the same thread count. Stage rates are timed from the first
 * record out (group join and model loading excluded, as the anchor excludes loading) to the last. Captions come from the synthetic bench feed
 * (4-6 words, some repeats); centers are bootstrapped first (256 fine, 4 experts) so routing does real work.
 * static and onnx need `modestream models pull` first.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { Kafka, logLevel } from 'kafkajs';
import { openCore } from '../app/core.js';
import { startApp } from '../app/run.js';
import { clusterSample } from '../src/cluster/bootstrap.js';
import { ConfigSchema, resolveConfig, type Config, type EmbedderSettings } from '../src/config.js';
import { createEmbedder } from '../src/embed/embedder.js';
import { silentLogger } from '../src/logger.js';
import { benchBroker, committed, fmt, sleep } from './harness.js';
import { createSyntheticFeed } from './synthetic.js';

const CHUNK = 1000;

interface WorkerJob {
  settings: EmbedderSettings;
  modelsDir: string;
  captions: string[];
}

/**
 * Steady rate of a stage: counts from the first progress seen (start-up, group join and model load
 * excluded) until `total` is reached; from the start when the first progress seen is already everything.
 */
async function steadyRate(progress: () => Promise<number> | number, total: number): Promise<number> {
  const started = performance.now();
  let first: { at: number; count: number } | undefined;
  for (;;) {
    const count = await progress();
    if (count > 0 && !first) first = { at: performance.now(), count };
    if (count >= total) break;
    await sleep(50);
  }
  // Everything arrived at once (few, large commits): only the whole window can be timed.
  if (first!.count >= total) return total / ((performance.now() - started) / 1000);
  return (total - first!.count) / ((performance.now() - first!.at) / 1000);
}

/** The raw anchor's threads: each embeds its share in chunks, as a router thread would, and reports. */
async function embedShare({ settings, modelsDir, captions }: WorkerJob): Promise<void> {
  const embedder = await createEmbedder(settings, { modelsDir });
  parentPort!.postMessage('ready');
  await new Promise((r) => parentPort!.once('message', r));
  for (let i = 0; i < captions.length; i += CHUNK) await embedder.embed(captions.slice(i, i + CHUNK));
  embedder.dispose();
  parentPort!.postMessage('done');
}

/** Raw encoder rate over T threads: timed from the moment every thread has its embedder loaded. */
async function rawRate(job: Omit<WorkerJob, 'captions'>, captions: string[], threads: number): Promise<number> {
  const share = Math.ceil(captions.length / threads);
  const workers = Array.from({ length: threads }, (_, t) => new Worker(new URL(import.meta.url), { workerData: { ...job, captions: captions.slice(t * share, (t + 1) * share) } }));
  const next = (w: Worker) => new Promise<void>((resolve, reject) => (w.once('message', () => resolve()), w.once('error', reject)));
  await Promise.all(workers.map(next));
  const t0 = performance.now();
  const done = Promise.all(workers.map(next));
  for (const w of workers) w.postMessage('go');
  await done;
  const seconds = (performance.now() - t0) / 1000;
  await Promise.all(workers.map((w) => w.terminate()));
  return captions.length / seconds;
}

async function main(): Promise<void> {
  const { values: args } = parseArgs({
    options: {
      embedders: { type: 'string', default: 'hashed,static,onnx' },
      records: { type: 'string', default: '50000' },
      'onnx-records': { type: 'string', default: '4000' },
      threads: { type: 'string', default: '1' },
      model: { type: 'string', default: 'minilm-l6' },
      'models-dir': { type: 'string', default: ConfigSchema.parse({}).modelsDir },
      brokers: { type: 'string' },
    },
  });
  const threads = Number(args.threads);
  const modelsDir = args['models-dir'];
  const kinds = args.embedders.split(',').map((k) => k.trim());
  const settingsOf = (kind: string): Record<string, unknown> =>
    kind === 'hashed' ? { kind } : kind === 'static' ? { kind, model: args.model } : kind === 'onnx' ? { kind, model: args.model, threads: 1 } : { kind };

  const broker = await benchBroker(args.brokers);
  const kafka = new Kafka({ brokers: broker.brokers.split(','), logLevel: logLevel.ERROR });
  const stateRoot = mkdtempSync(join(tmpdir(), 'modestream-bench-embed-'));
  const rows: string[] = [];
  try {
    for (const kind of kinds) {
      const n = kind === 'onnx' ? Number(args['onnx-records']) : Number(args.records);
      const tag = `${kind}-${randomUUID().slice(0, 6)}`;
      const config = (phase: string, extra: Record<string, unknown> = {}): Config =>
        resolveConfig([
          {
            origin: 'bench',
            values: {
              kafka: { brokers: broker.brokers },
              stateDir: join(stateRoot, tag),
              modelsDir,
              embedder: settingsOf(kind),
              topics: { pairs: `bench-${tag}.pairs`, dlq: `bench-${tag}.dlq`, routed: `bench-${tag}.routed.${phase}`, control: `bench-${tag}.control.${phase}`, leader: `bench-${tag}.leader.${phase}`, nodes: `bench-${tag}.nodes.${phase}`, models: `bench-${tag}.models.${phase}` },
              groups: { router: `bench-${tag}.router.${phase}`, sharder: `bench-${tag}.sharder.${phase}`, controller: `bench-${tag}.controller.${phase}` },
              clustering: { fine: 256, experts: 4, sample: 5000 },
              pipeline: { chunkSize: CHUNK, routerThreads: threads, embedCache: 0 },
              backend: 'wasm',
              log: { level: 'warn' },
              ...extra,
            },
          },
        ]);

      // Centers first, from captions of another feed seed.
      const core = await openCore(config('boot'), silentLogger);
      const bootFeed = createSyntheticFeed(1, 'boot');
      const bootCaptions = Array.from({ length: Math.min(n, 5000) }, () => (JSON.parse(bootFeed.next().value.toString()) as { caption: string }).caption);
      const flat = await core.embedder.embed(bootCaptions);
      const dim = core.embedder.dim;
      const sample = bootCaptions.map((_, i) => flat.slice(i * dim, (i + 1) * dim));
      await core.centroids.publish(await clusterSample({ sample, epoch: 1, settings: config('boot').clustering, embedder: core.embedder.fingerprint }));
      const fingerprint = core.embedder.fingerprint;
      await core.close();

      // The run's pairs, produced once; the raw anchor embeds exactly their captions.
      const feed = createSyntheticFeed(2, tag);
      const messages = Array.from({ length: n }, () => feed.next());
      const captions = messages.map((m) => (JSON.parse(m.value.toString()) as { caption: string }).caption);
      const admin = kafka.admin();
      await admin.connect();
      await admin.createTopics({ topics: [{ topic: config('x').topics.pairs, numPartitions: 4 }], waitForLeaders: true });
      const producer = kafka.producer();
      await producer.connect();
      for (let i = 0; i < n; i += 2000) await producer.send({ topic: config('x').topics.pairs, messages: messages.slice(i, i + 2000), acks: -1 });
      await producer.disconnect();

      const raw = await rawRate({ settings: config('x').embedder, modelsDir }, captions, threads);
      console.log(`${kind}: ${fingerprint}`);
      console.log(`  raw encoder (${threads} thread${threads > 1 ? 's' : ''}): ${fmt(raw)} captions/s`);

      const routerRate = async (phase: string, extra: Record<string, unknown> = {}) => {
        const cfg = config(phase, { roles: ['router'], ...extra });
        const app = await startApp({ config: cfg, logger: silentLogger });
        const rate = await steadyRate(() => committed(admin, cfg.groups.router, cfg.topics.pairs), n);
        const lookups = await app.metrics.embedCacheLookups.get();
        await app.stop();
        const count = (result: string) => lookups.values.find((v) => v.labels.result === result)?.value ?? 0;
        return { rate, hits: count('hit'), misses: count('miss') };
      };
      const router = await routerRate('router');
      console.log(`  router: ${fmt(router.rate)} pairs/s (${(router.rate / raw).toFixed(2)} x raw)`);

      const e2eCfg = config('e2e', { roles: ['router', 'sharder'] });
      const app = await startApp({ config: e2eCfg, logger: silentLogger });
      const e2e = await steadyRate(() => app.store.totalRecords(), n);
      await app.stop();
      console.log(`  end to end (durable in LMDB): ${fmt(e2e)} pairs/s (${(e2e / raw).toFixed(2)} x raw)`);

      const cacheEntries = ConfigSchema.parse({}).pipeline.embedCache;
      const cached = await routerRate('cached', { pipeline: { chunkSize: CHUNK, routerThreads: threads, embedCache: cacheEntries } });
      const hitRate = cached.hits / Math.max(1, cached.hits + cached.misses);
      console.log(`  router with a ${fmt(cacheEntries)}-entry caption cache: ${fmt(cached.rate)} pairs/s, hit rate ${(100 * hitRate).toFixed(1)}%`);
      await admin.disconnect();
      rows.push(`| ${kind} | ${n} | ${threads} | ${fmt(raw)} | ${fmt(router.rate)} (${(router.rate / raw).toFixed(2)}x) | ${fmt(e2e)} | ${fmt(cached.rate)} (${(100 * hitRate).toFixed(0)}% hits) |`);
    }
    console.log('\n| embedder | pairs | threads | raw encoder captions/s (anchor) | router pairs/s | end to end pairs/s | router with cache |');
    console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
    for (const row of rows) console.log(row);
  } finally {
    rmSync(stateRoot, { recursive: true, force: true });
    await broker.close();
  }
}

if (isMainThread) {
  await main();
  process.exit(0);
} else {
  await embedShare(workerData as WorkerJob);
}
