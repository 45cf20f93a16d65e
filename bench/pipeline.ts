/**
 * `npm run bench -- pipeline [--records N] [--seconds S] [--rate R] [--fine M] [--experts N] [--brokers B]`
 * `npm run bench -- pipeline --nodes K [--records N]`: the cluster figures instead (bench/nodes.ts): 1..K
 * node processes end to end, and the restore rate of moved shards (N defaults to 20,000 there).
 *
 * One run, one broker, one input topic, with its anchor figures next to ours:
 *   1. produce N synthetic pairs (28x28 images) to the pairs topic            -> produce rate
 *   2. raw kafkajs consumer, no processing, over the same topic               -> anchor consume rate
 *   3. router alone (validate, embed, route against m fine centers, produce)  -> router rate, with
 *      its Kafka transactions (pipeline.exactlyOnce) and without
 *   4. router + sharder (durable in LMDB)                                     -> end-to-end rate
 *   5. S seconds at R pairs/s from a separate feeder process                   -> p50/p99 latency
 *      (pair produced -> durable in its shard), RSS at start / peak / end.
 * Centers are bootstrapped before phase 3 from 20k sampled captions (m fine, n experts), so routing does
 * the full m-center work from the first record.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Kafka, logLevel } from 'kafkajs';
import { startApp } from '../app/run.js';
import { resolveConfig, type Config } from '../src/config.js';
import { silentLogger } from '../src/logger.js';
import { benchBroker, bootstrapCenters, committed, fmt, sleep, waitUntil } from './harness.js';
import { runNodesBench } from './nodes.js';
import { createSyntheticFeed } from './synthetic.js';

const { values: args } = parseArgs({
  options: {
    records: { type: 'string', default: '200000' },
    seconds: { type: 'string', default: '300' },
    rate: { type: 'string', default: '5000' },
    fine: { type: 'string', default: '1024' },
    experts: { type: 'string', default: '4' },
    brokers: { type: 'string' },
    chunk: { type: 'string', default: '1000' },
    nodes: { type: 'string' },
  },
});
const NODES = args.nodes === undefined ? 0 : Number(args.nodes);
if (!Number.isInteger(NODES) || NODES < 0 || NODES > 8) {
  console.error(`--nodes: expected a whole number from 1 to 8, got ${args.nodes}`);
  process.exit(2);
}
// The cluster run routes every record through 1 + 2 + ... + K nodes: a smaller default.
const N = NODES && process.argv.every((a) => !a.startsWith('--records')) ? 20_000 : Number(args.records);
const SOAK_SECONDS = Number(args.seconds);
const SOAK_RATE = Number(args.rate);
const ROOT = resolve(import.meta.dirname, '..', '..');

/** Resident memory split: anonymous (heaps, wasm, buffers: what a leak grows) and file-backed (LMDB's map). */
function memory(): { rss: number; anon: number; file: number } {
  const status = readFileSync('/proc/self/status', 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0) * 1024;
  return { rss: kb('VmRSS'), anon: kb('RssAnon'), file: kb('RssFile') + kb('RssShmem') };
}
const mb = (b: number) => `${(b / 2 ** 20).toFixed(0)} MiB`;

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
          kafka: { brokers },
          stateDir: join(stateRoot, 'state'),
          topics: { pairs: `bench-${tag}.pairs`, dlq: `bench-${tag}.dlq`, routed: `bench-${tag}.routed.${phase}`, control: `bench-${tag}.control.${phase}`, leader: `bench-${tag}.leader.${phase}`, nodes: `bench-${tag}.nodes.${phase}`, models: `bench-${tag}.models.${phase}` },
          groups: { router: `bench-${tag}.router.${phase}`, sharder: `bench-${tag}.sharder.${phase}`, controller: `bench-${tag}.controller.${phase}` },
          clustering: { fine: Number(args.fine), experts: Number(args.experts), sample: 20_000 },
          pipeline: { chunkSize: Number(args.chunk) },
          backend: 'wasm',
          log: { level: 'warn' },
          ...extra,
        },
      },
    ]);
  const results: Record<string, string | number> = { records: N, fine: Number(args.fine), experts: Number(args.experts) };
  try {
    // 0. Centers from 20k sampled captions.
    {
      const { model, seconds, backend } = await bootstrapCenters(config('boot'), 20_000);
      results.bootstrapSeconds = seconds.toFixed(1);
      results.backend = backend;
      console.log(`bootstrap: ${fmt(20_000)} captions -> ${model.fineIds.length} fine -> ${model.experts.length} experts in ${results.bootstrapSeconds} s`);
    }

    if (NODES > 0) {
      await runNodesBench({ kafka, brokers, template: config('boot').stateDir, tag, nodes: NODES, records: N, chunkSize: Number(args.chunk) });
      return;
    }

    // 1. Produce N (--records 0 skips the backlog phases 1-4).
    if (N > 0) {
      const admin = kafka.admin();
      await admin.connect();
      await admin.createTopics({ topics: [{ topic: config('x').topics.pairs, numPartitions: 4 }], waitForLeaders: true });
      await admin.disconnect();
      const producer = kafka.producer();
      await producer.connect();
      const feed = createSyntheticFeed(2, 'bench');
      const t0 = performance.now();
      for (let sent = 0; sent < N; ) {
        const messages = Array.from({ length: Math.min(2000, N - sent) }, () => feed.next());
        await producer.send({ topic: config('x').topics.pairs, messages, acks: -1 });
        sent += messages.length;
      }
      await producer.disconnect();
      results.produceRate = N / ((performance.now() - t0) / 1000);
      console.log(`produce: ${fmt(results.produceRate)} pairs/s`);
    }

    // 2. Raw kafkajs consume (the anchor).
    if (N > 0) {
      const consumer = kafka.consumer({ groupId: `bench-${tag}.raw`, maxBytesPerPartition: 8 * 2 ** 20 });
      await consumer.connect();
      await consumer.subscribe({ topics: [config('x').topics.pairs], fromBeginning: true });
      let seen = 0;
      let t0 = 0;
      await consumer.run({
        eachBatch: async ({ batch }) => {
          if (t0 === 0) t0 = performance.now();
          seen += batch.messages.length;
        },
      });
      while (seen < N) await sleep(20);
      results.rawConsumeRate = N / ((performance.now() - t0) / 1000);
      await consumer.disconnect();
      console.log(`raw kafkajs consume: ${fmt(results.rawConsumeRate)} records/s`);
    }

    // 3. Router alone, with its Kafka transactions (pipeline.exactlyOnce, the default) and without.
    for (const exactlyOnce of N > 0 ? [true, false] : []) {
      const phase = exactlyOnce ? 'router' : 'router-alo';
      const cfg = config(phase, { roles: ['router'], pipeline: { chunkSize: Number(args.chunk), exactlyOnce } });
      const app = await startApp({ config: cfg, logger: silentLogger });
      const admin = kafka.admin();
      await admin.connect();
      const t0 = performance.now();
      await waitUntil(async () => (await committed(admin, cfg.groups.router, cfg.topics.pairs)) >= N);
      const rate = N / ((performance.now() - t0) / 1000);
      results[exactlyOnce ? 'routerRate' : 'routerRateAtLeastOnce'] = rate;
      await admin.disconnect();
      await app.stop();
      console.log(`router (${exactlyOnce ? 'exactly-once' : 'at-least-once'}): ${fmt(rate)} pairs/s`);
    }

    // 4. Router + sharder, produced -> durable.
    if (N > 0) {
      const cfg = config('e2e', { roles: ['router', 'sharder'] });
      const app = await startApp({ config: cfg, logger: silentLogger });
      const t0 = performance.now();
      await waitUntil(async () => app.store.totalRecords() >= N);
      results.endToEndRate = N / ((performance.now() - t0) / 1000);
      await app.stop();
      console.log(`end to end (durable in LMDB): ${fmt(results.endToEndRate)} pairs/s`);
    }

    // 5. Steady rate from a separate feeder: latency and memory.
    if (SOAK_SECONDS > 0) {
      const cfg = config('soak', { roles: ['router', 'sharder'], topics: { ...config('soak').topics, pairs: `bench-${tag}.soak` } });
      const latencies: Float64Array[] = [];
      let window: Float64Array[] = [];
      const app = await startApp({
        config: cfg,
        logger: silentLogger,
        onLatencies: (ms) => {
          latencies.push(ms);
          window.push(ms);
        },
      });
      const start = memory();
      const peak = { ...start };
      let tick = 0;
      const soakStarted = performance.now();
      const sampler = setInterval(() => {
        const now = memory();
        peak.rss = Math.max(peak.rss, now.rss);
        peak.anon = Math.max(peak.anon, now.anon);
        peak.file = Math.max(peak.file, now.file);
        // A line every 30 s: does latency or memory drift as the shards grow?
        if (++tick % 30 === 0) {
          const w = Float64Array.from(window.flatMap((l) => Array.from(l))).sort();
          window = [];
          const at = (p: number) => (w.length ? w[Math.min(w.length - 1, Math.floor(p * w.length))]!.toFixed(0) : '-');
          console.log(`  t=${((performance.now() - soakStarted) / 1000).toFixed(0)}s: ${fmt(w.length / 30)} pairs/s durable, latency p50 ${at(0.5)} ms p99 ${at(0.99)} ms, anon RSS ${mb(now.anon)}`);
        }
      }, 1000);
      const feeder = spawn(process.execPath, [join(ROOT, 'dist', 'bench', 'feed.js'), '--brokers', brokers, '--topic', cfg.topics.pairs, '--rate', String(SOAK_RATE), '--seconds', String(SOAK_SECONDS)], { stdio: ['ignore', 'pipe', 'inherit'] });
      let feedOut = '';
      feeder.stdout.on('data', (b: Buffer) => (feedOut += b.toString()));
      await new Promise((r) => feeder.once('exit', r));
      const end = memory();
      const { sent } = JSON.parse(feedOut) as { sent: number };
      await waitUntil(async () => app.store.totalRecords() >= sent);
      clearInterval(sampler);
      await app.stop();
      const all = Float64Array.from(latencies.flatMap((l) => Array.from(l))).sort();
      const pct = (p: number) => all[Math.min(all.length - 1, Math.floor(p * all.length))]!;
      Object.assign(results, {
        soakSeconds: SOAK_SECONDS,
        soakRate: SOAK_RATE,
        soakRecords: sent,
        latencyP50Ms: pct(0.5).toFixed(0),
        latencyP99Ms: pct(0.99).toFixed(0),
        rss: `${mb(start.rss)} -> ${mb(end.rss)} (peak ${mb(peak.rss)})`,
        rssAnon: `${mb(start.anon)} -> ${mb(end.anon)} (peak ${mb(peak.anon)})`,
        rssFile: `${mb(start.file)} -> ${mb(end.file)} (peak ${mb(peak.file)})`,
      });
      console.log(`steady ${SOAK_RATE}/s for ${SOAK_SECONDS} s (${fmt(sent)} pairs): latency p50 ${results.latencyP50Ms} ms, p99 ${results.latencyP99Ms} ms`);
      console.log(`  RSS start -> end of the feed (peak): ${results.rss}; anonymous ${results.rssAnon}; file-backed (LMDB map) ${results.rssFile}`);
    }

    const ratio = (a: number, b: number) => (a / b).toFixed(2);
    if (N > 0) {
    console.log('\nsummary');
    console.log(`  raw kafkajs consume   ${fmt(Number(results.rawConsumeRate))} records/s (anchor)`);
    console.log(`  router                ${fmt(Number(results.routerRate))} pairs/s  (${ratio(Number(results.routerRate), Number(results.rawConsumeRate))} x raw)`);
    console.log(`  router at-least-once  ${fmt(Number(results.routerRateAtLeastOnce))} pairs/s  (${ratio(Number(results.routerRateAtLeastOnce), Number(results.rawConsumeRate))} x raw; pipeline.exactlyOnce=false)`);
    console.log(`  end to end            ${fmt(Number(results.endToEndRate))} pairs/s  (${ratio(Number(results.endToEndRate), Number(results.rawConsumeRate))} x raw)`);
    }
    console.log(JSON.stringify(results));
  } finally {
    await broker.close();
    rmSync(stateRoot, { recursive: true, force: true });
  }
}

await main();
process.exit(0);
