/**
 * `npm run bench -- pipeline --nodes K [--records N] [--brokers B]`: modestream as a cluster on one machine.
 *
 *   1. centers bootstrapped once (20k sampled captions) into a template state dir; every node starts
 *      from a copy of it, so all of them route with the same epoch from the first record;
 *   2. for k = 1..K: k `modestream run` processes (router + sharder, state dirs and node ids of their
 *      own, one consumer group per role) on fresh routed topics; once the sharders own every routed
 *      partition, N pairs are produced (6 input partitions) and the clock runs until the router group
 *      committed all N and the sharder group the routed topic's end: end-to-end pairs/s with k nodes;
 *   3. the moved shard: after the K-node run every node stops and one NEW node with an empty state dir
 *      takes all routed partitions and restores them from the routed topic: its restore rate (from its
 *      log's per-partition lines) next to a bare kafkajs consumer reading the same topic (the anchor).
 *
 * On a 2-core machine the nodes share the cores (and the broker): the ratio k nodes / 1 node is the
 * figure, and it says how much work is CPU-bound, not how a cluster of real machines scales.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Admin, Kafka } from 'kafkajs';
import { fmt, sleep, waitUntil } from './harness.js';
import { createSyntheticFeed } from './synthetic.js';

const ROOT = resolve(import.meta.dirname, '..', '..');
const CLI = join(ROOT, 'bin', 'modestream.js');
const PARTITIONS = 6;

export interface NodesBenchOptions {
  kafka: Kafka;
  brokers: string;
  /** A state dir holding epoch 1 (copied into each node's). */
  template: string;
  tag: string;
  nodes: number;
  records: number;
  chunkSize: number;
}

interface Node {
  child: ChildProcess;
  output: () => string;
  exited: Promise<void>;
}

function startNode(env: Record<string, string>, stateDir: string): Node {
  const child = spawn(process.execPath, [CLI, 'run'], { cwd: ROOT, env: { ...process.env, ...env, MODESTREAM_STATE_DIR: stateDir }, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout!.on('data', (b: Buffer) => (log += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (log += b.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return { child, output: () => log, exited };
}

async function stopNode(node: Node): Promise<void> {
  node.child.kill('SIGTERM');
  await node.exited;
}

const lines = (node: Node, text: string) => node.output().split('\n').filter((l) => l.includes(text));

/** The partitions each node's sharder was last assigned: all of them, each once. */
function settled(nodes: Node[]): boolean {
  const owned = nodes.map((n) => (JSON.parse(lines(n, 'routed partitions assigned').at(-1) ?? '{"partitions":[]}') as { partitions: number[] }).partitions);
  const all = owned.flat();
  return owned.every((p) => p.length > 0) && all.length === PARTITIONS && new Set(all).size === PARTITIONS;
}

async function caughtUp(admin: Admin, group: string, topic: string): Promise<boolean> {
  const ends = await admin.fetchTopicOffsets(topic);
  const [committed] = await admin.fetchOffsets({ groupId: group, topics: [topic] });
  // An empty partition (an expert that got nothing) has no committed offset and nothing to wait for.
  return ends.every((e) => Number(e.high) === 0 || Number(committed?.partitions.find((p) => p.partition === e.partition)?.offset ?? -1) >= Number(e.high));
}

export async function runNodesBench({ kafka, brokers, template, tag, nodes: maxNodes, records, chunkSize }: NodesBenchOptions): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  const dirs: string[] = [];
  const running: Node[] = [];
  const rates: number[] = [];
  const envOf = (k: number) => {
    const prefix = `bench-${tag}.n${k}`;
    return {
      MODESTREAM_KAFKA__BROKERS: brokers,
      MODESTREAM_ROLES: 'router,sharder',
      MODESTREAM_TOPICS__PAIRS: `${prefix}.pairs`,
      MODESTREAM_TOPICS__PAIRS_PARTITIONS: String(PARTITIONS),
      MODESTREAM_TOPICS__ROUTED: `${prefix}.routed`,
      MODESTREAM_TOPICS__ROUTED_PARTITIONS: String(PARTITIONS),
      MODESTREAM_TOPICS__DLQ: `${prefix}.dlq`,
      MODESTREAM_TOPICS__CONTROL: `${prefix}.control`,
      MODESTREAM_TOPICS__LEADER: `${prefix}.leader`,
      MODESTREAM_TOPICS__NODES: `${prefix}.nodes`,
      MODESTREAM_TOPICS__MODELS: `${prefix}.models`,
      MODESTREAM_TOPICS__SAMPLE: `${prefix}.sample`,
      MODESTREAM_GROUPS__ROUTER: `${prefix}.router`,
      MODESTREAM_GROUPS__SHARDER: `${prefix}.sharder`,
      MODESTREAM_GROUPS__CONTROLLER: `${prefix}.controller`,
      MODESTREAM_PIPELINE__CHUNK_SIZE: String(chunkSize),
      MODESTREAM_KAFKA__SESSION_TIMEOUT_MS: '10000',
      MODESTREAM_HTTP__PORT: '0',
      MODESTREAM_BACKEND: 'wasm',
      MODESTREAM_LOG__LEVEL: 'info',
    };
  };
  const freshDir = (copy: boolean) => {
    const dir = mkdtempSync(join(tmpdir(), 'modestream-bench-node-'));
    dirs.push(dir);
    if (copy) cpSync(template, dir, { recursive: true });
    return dir;
  };
  try {
    let last: { env: Record<string, string>; routed: string } | undefined;
    for (let k = 1; k <= maxNodes; k++) {
      const env = envOf(k);
      const nodes = Array.from({ length: k }, (_, i) => startNode({ ...env, MODESTREAM_NODE__ID: `bench-node-${i + 1}` }, freshDir(true)));
      running.push(...nodes);
      await waitUntil(() => nodes.every((n) => n.output().includes('modestream running') || n.child.exitCode !== null));
      const dead = nodes.find((n) => n.child.exitCode !== null);
      if (dead) throw new Error(`a node exited at start:\n${dead.output().slice(-3000)}`);
      await waitUntil(() => settled(nodes));
      // The router group rebalances on the same joins; a few heartbeats let it settle too.
      await sleep(4000);

      const producer = kafka.producer();
      await producer.connect();
      const feed = createSyntheticFeed(2, `nodes-${k}`);
      const t0 = performance.now();
      for (let sent = 0; sent < records; ) {
        const messages = Array.from({ length: Math.min(2000, records - sent) }, () => feed.next());
        await producer.send({ topic: env.MODESTREAM_TOPICS__PAIRS, messages, acks: -1 });
        sent += messages.length;
      }
      await producer.disconnect();
      await waitUntil(async () => (await caughtUp(admin, env.MODESTREAM_GROUPS__ROUTER, env.MODESTREAM_TOPICS__PAIRS)) && (await caughtUp(admin, env.MODESTREAM_GROUPS__SHARDER, env.MODESTREAM_TOPICS__ROUTED)));
      const rate = records / ((performance.now() - t0) / 1000);
      rates.push(rate);
      console.log(`${k} node${k > 1 ? 's' : ''}: ${fmt(rate)} pairs/s end to end (produced -> durable in the owners' shards)`);
      for (const n of nodes) await stopNode(n);
      running.length = 0;
      last = { env, routed: env.MODESTREAM_TOPICS__ROUTED };
    }

    // The moved shard: a new node with an empty state dir restores every routed partition of the last run.
    const { env, routed } = last!;
    const restorer = startNode({ ...env, MODESTREAM_ROLES: 'sharder', MODESTREAM_NODE__ID: 'bench-node-new' }, freshDir(false));
    running.push(restorer);
    const withData = (await admin.fetchTopicOffsets(routed)).filter((p) => Number(p.high) > 0).length;
    await waitUntil(() => lines(restorer, 'partition restored; live').length >= withData || restorer.child.exitCode !== null);
    if (restorer.child.exitCode !== null) throw new Error(`the restoring node exited:\n${restorer.output().slice(-3000)}`);
    const started = lines(restorer, 'restoring partition from the routed topic').map((l) => JSON.parse(l) as { time: number });
    const finished = lines(restorer, 'partition restored; live').map((l) => JSON.parse(l) as { time: number; partition: number; applied: number; recordsPerSecond: number });
    const applied = finished.reduce((s, p) => s + p.applied, 0);
    const seconds = (Math.max(...finished.map((p) => p.time)) - Math.min(...started.map((p) => p.time))) / 1000;
    await stopNode(restorer);
    running.length = 0;
    const raw = await rawConsumeRate(kafka, admin, routed);

    const ratio = (a: number, b: number) => (a / b).toFixed(2);
    console.log('\nsummary (nodes share this machine\'s cores and one broker)');
    rates.forEach((r, i) => console.log(`  ${i + 1} node${i ? 's' : ' '}   ${fmt(r).padStart(8)} pairs/s end to end  (${ratio(r, rates[0]!)} x 1 node)`));
    console.log(`  restore of the moved shards on a new node: ${fmt(applied / seconds)} records/s over ${finished.length} partitions (${fmt(applied)} records, ${seconds.toFixed(1)} s; per partition ${finished.map((p) => fmt(p.recordsPerSecond)).join(', ')})`);
    console.log(`  raw kafkajs consume of the same topic:     ${fmt(raw)} records/s (anchor; restore ${ratio(applied / seconds, raw)} x raw)`);
    console.log(JSON.stringify({ nodes: maxNodes, records, endToEnd: rates.map(Math.round), restoreRate: Math.round(applied / seconds), restoredRecords: applied, rawConsumeRate: Math.round(raw) }));
  } finally {
    for (const n of running) await stopNode(n).catch(() => undefined);
    await admin.disconnect();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
}

/**
 * A bare kafkajs consumer reading a whole topic from the beginning: messages/s. Done by offsets, not by
 * counting messages: the router's transaction markers take offsets and are never delivered.
 */
async function rawConsumeRate(kafka: Kafka, admin: Admin, topic: string): Promise<number> {
  const ends = new Map((await admin.fetchTopicOffsets(topic)).map((p) => [p.partition, Number(p.high)]));
  const consumer = kafka.consumer({ groupId: `bench-raw-${Date.now()}`, maxBytesPerPartition: 8 * 2 ** 20 });
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  let seen = 0;
  let t0 = 0;
  const reached = new Map<number, number>();
  await consumer.run({
    eachBatch: async ({ batch }) => {
      if (t0 === 0) t0 = performance.now();
      seen += batch.messages.length;
      reached.set(batch.partition, Number(batch.lastOffset()) + 1);
    },
  });
  await waitUntil(() => [...ends].every(([p, high]) => high === 0 || (reached.get(p) ?? 0) >= high));
  const rate = seen / ((performance.now() - t0) / 1000);
  await consumer.disconnect();
  return rate;
}
