/**
 * modestream as a cluster, for real (ARCHITECTURE.md section 4): three `modestream run` nodes (every role,
 * separate state dirs and HTTP ports) on a three-broker KRaft cluster of their own (ports 19350-19365).
 * 50k valid pairs and a few hundred invalid ones stream in; one node is killed with SIGKILL mid-stream
 * and left dead; the broker leading the most partitions is killed and restarted. At the end:
 *   - every valid pair is in exactly one live node's shards (of the routed partitions it owns), once;
 *   - every invalid message is in the dead-letter topic with its original bytes;
 *   - all nodes hold the same epochs, and every stored record was routed with one of them;
 *   - the survivors took over the dead node's partitions and the controller role (one leader);
 *   - a snapshot served by a surviving node holds every expert of the newest epoch.
 *
 * The acceptance test of the scale-out work, run on demand (MODESTREAM_TEST_CLUSTER=1; 2-5 min on 2
 * cores), not in `npm test` (CI's time). What it found: pairs lost by kafkajs's read-committed filter
 * and pairs on two owners (the same filter delivering aborted records, also when the broker listed them
 * in abort order rather than by first offset), restored history refilling the
 * leader's novelty buffer, and chunks committed with part of their pairs never written: kafkajs's
 * producer retry skipped a partition whose leader moved onto a broker that had already answered
 * (patches/kafkajs+2.2.4.patch, all fixed there). When a pair is missing, the failure message says
 * where it came in and whether the routed topic holds it at all, and the nodes' logs are kept (the
 * path is printed).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel, type Admin, type Producer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { killLocalKafkaNode, startLocalKafkaCluster, stopLocalKafka, type LocalKafkaOptions } from '../../deploy/kafka/local-kafka.js';
import { decodeRouted } from '../../src/contract/routed.js';
import { StatusReport } from '../../src/status.js';
import { createCentroidStore, encodeModel } from '../../state/centroids.js';
import { openStateEnv } from '../../state/env.js';
import { createShardStore } from '../../state/shards.js';
import { makeInvalidMessages, makePairs } from '../support/fixtures.js';
import { startProcessor, stopProcessor, testDeployment, type Processor, type TestDeployment } from '../support/processor.js';
import { waitFor } from '../support/waits.js';

const PORT = 19350;
const CONTROLLER_PORT = 19360;
const ROUTED_PARTITIONS = 6;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Node {
  id: string;
  stateDir: string;
  process?: Processor;
}

/** Sends in batches; a batch refused while a broker is down is sent again (the pipeline deduplicates). */
async function produceAll(producer: Producer, topic: string, messages: { key: Buffer | null; value: Buffer }[], batch = 500): Promise<void> {
  for (let i = 0; i < messages.length; i += batch) {
    for (let attempt = 0; ; attempt++) {
      try {
        await producer.send({ topic, acks: -1, messages: messages.slice(i, i + batch) });
        break;
      } catch (err) {
        if (attempt > 60) throw err;
        await sleep(1000);
      }
    }
  }
}

async function topicEnd(admin: Admin, topic: string): Promise<Map<number, number>> {
  return new Map((await admin.fetchTopicOffsets(topic)).map((p) => [p.partition, Number(p.high)]));
}

/** Whether a group has committed up to the end of every partition of a topic. */
async function caughtUp(admin: Admin, group: string, topic: string): Promise<boolean> {
  const end = await topicEnd(admin, topic);
  const [committed] = await admin.fetchOffsets({ groupId: group, topics: [topic] });
  return (committed?.partitions ?? []).every((p) => Number(p.offset) >= (end.get(p.partition) ?? 0)) && (committed?.partitions.length ?? 0) === end.size;
}

/** Every message of a topic (read-committed), from the beginning to the end offsets seen now. */
async function readTopic(kafka: Kafka, admin: Admin, topic: string, { uncommitted = false } = {}): Promise<{ partition: number; offset: string; key: Buffer | null; value: Buffer | null }[]> {
  const end = await topicEnd(admin, topic);
  const expected = [...end.values()].reduce((a, b) => a + b, 0);
  const out: { partition: number; offset: string; key: Buffer | null; value: Buffer | null }[] = [];
  const consumer = kafka.consumer({ groupId: `read-${topic}-${Date.now()}`, maxBytesPerPartition: 8 * 2 ** 20, readUncommitted: uncommitted });
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  const done = new Map<number, number>();
  await consumer.run({
    eachBatch: async ({ batch }) => {
      for (const m of batch.messages) out.push({ partition: batch.partition, offset: m.offset, key: m.key, value: m.value });
      done.set(batch.partition, Number(batch.lastOffset()) + 1);
    },
  });
  // Offsets, not counts: transaction markers take offsets without being messages.
  await waitFor(`all of ${topic} read (${expected} offsets)`, () => [...end].every(([p, high]) => high === 0 || (done.get(p) ?? 0) >= high), { timeoutMs: 120_000 });
  await consumer.disconnect();
  return out;
}

async function statusOf(url: string): Promise<StatusReport> {
  const response = await fetch(`${url}/status.json`);
  return StatusReport.parse(await response.json());
}

describe.runIf(process.env.MODESTREAM_TEST_CLUSTER === '1')('modestream cluster: 3 nodes on 3 brokers', () => {
  let dataDir: string;
  let broker: LocalKafkaOptions;
  let bootstrap: string;
  let kafka: Kafka;
  let admin: Admin;

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'modestream-cluster-kafka-'));
    broker = { port: PORT, controllerPort: CONTROLLER_PORT, dataDir, nodes: 3, heapMb: 384, startTimeoutMs: 240_000 };
    ({ bootstrap } = await startLocalKafkaCluster(broker));
    kafka = new Kafka({ clientId: 'cluster-test', brokers: bootstrap.split(','), logLevel: logLevel.NOTHING, retry: { retries: 30, initialRetryTime: 300, maxRetryTime: 3000 } });
    admin = kafka.admin();
    await admin.connect();
  }, 300_000);

  afterAll(async () => {
    await admin?.disconnect();
    if (broker) await stopLocalKafka(broker);
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  test('kill -9 a node and the busiest broker mid-stream: every pair in exactly one live shard, one leader, same epochs, a whole snapshot', async () => {
    const deployment: TestDeployment = testDeployment(bootstrap, {
      MODESTREAM_TOPICS__ROUTED_PARTITIONS: String(ROUTED_PARTITIONS),
      MODESTREAM_NODE__HEARTBEAT_MS: '500',
      MODESTREAM_ROLES: 'router,sharder,controller,trainer,http',
      // Small, quick training: the test is about where things run, not how well they learn.
      MODESTREAM_EXPERTS__TRAINING__STEPS: '20',
      MODESTREAM_EXPERTS__TRAINING__SEED_STEPS: '20',
      MODESTREAM_EXPERTS__TRAINING__BATCH: '32',
      MODESTREAM_EXPERTS__TRAINING__CHECKPOINT_EVERY: '10',
      MODESTREAM_CONTROLLER__SEED_MIN_RECORDS: '1000',
      MODESTREAM_CONTROLLER__RETRAIN__PENDING_RECORDS: '1000000',
      MODESTREAM_CONTROLLER__RETRAIN__MIN_RECORDS: '200',
    });
    const nodes: Node[] = [1, 2, 3].map((i) => ({ id: `node-${i}`, stateDir: mkdtempSync(join(tmpdir(), `modestream-cluster-node${i}-`)) }));
    const envOf = (node: Node) => ({ MODESTREAM_STATE_DIR: node.stateDir, MODESTREAM_NODE__ID: node.id });
    const pairs = makePairs(50_000, { seed: 21, prefix: 'cluster' });
    const invalid = Array.from({ length: 30 }, (_, i) => makeInvalidMessages(`bad${i}`)).flat();
    // Invalid messages spread through the stream.
    const input: { key: Buffer | null; value: Buffer }[] = pairs.map(({ key, value }) => ({ key, value }));
    invalid.forEach((m, i) => input.splice(Math.floor(((i + 1) * input.length) / (invalid.length + 1)), 0, { key: m.key, value: m.value }));
    const producer = kafka.producer();
    await producer.connect();
    try {
      for (const node of nodes) node.process = await startProcessor(deployment, envOf(node));
      const producing = produceAll(producer, deployment.topics.pairs, input);

      // A third of the way: the third node dies for good.
      await waitFor('a third of the pairs routed', async () => [...(await topicEnd(admin, deployment.topics.routed)).values()].reduce((a, b) => a + b, 0) > 15_000, { timeoutMs: 300_000 });
      nodes[2]!.process!.kill('SIGKILL');
      expect((await nodes[2]!.process!.exited).signal).toBe('SIGKILL');

      // Two thirds: the broker leading the most partitions of the pairs and routed topics dies and comes back.
      await waitFor('two thirds routed', async () => [...(await topicEnd(admin, deployment.topics.routed)).values()].reduce((a, b) => a + b, 0) > 32_000, { timeoutMs: 300_000 });
      const metadata = await admin.fetchTopicMetadata({ topics: [deployment.topics.pairs, deployment.topics.routed] });
      const leads = new Map<number, number>();
      for (const t of metadata.topics) for (const p of t.partitions) leads.set(p.leader, (leads.get(p.leader) ?? 0) + 1);
      const busiest = [...leads].sort((a, b) => b[1] - a[1])[0]![0];
      await killLocalKafkaNode(broker, busiest);
      await sleep(4000);
      await startLocalKafkaCluster(broker);
      console.info(`[cluster] killed node-3, then broker ${busiest} (leader of ${leads.get(busiest)} partitions), restarted it`);

      await producing;
      const live = nodes.slice(0, 2);
      await waitFor('the routers and sharders caught up', async () => (await caughtUp(admin, deployment.groups.router, deployment.topics.pairs)) && (await caughtUp(admin, deployment.groups.sharder, deployment.topics.routed)), { timeoutMs: 600_000, intervalMs: 1000 });

      // The cluster as a surviving node sees it: node-3 dead, its partitions and the controller taken over.
      const url = (node: Node) => /"url":"(http:\/\/[\d.:]+)"[^\n]*http server listening/.exec(node.process!.output())?.[1];
      const first = url(live[0]!);
      expect(first, live[0]!.process!.output().slice(-2000)).toBeDefined();
      const status = await waitFor(
        'a status where the live nodes own every routed partition, restored, and node-3 is dead',
        async () => {
          const s = await statusOf(first!);
          const owned = s.nodes.filter((n) => n.state === 'live').flatMap((n) => n.partitions.routed);
          const restored = s.nodes.filter((n) => n.state === 'live').every((n) => n.restores.every((r) => r.state === 'live'));
          return s.nodes.find((n) => n.id === 'node-3')?.state === 'dead' && owned.length === ROUTED_PARTITIONS && new Set(owned).size === ROUTED_PARTITIONS && restored ? s : undefined;
        },
        { timeoutMs: 120_000, intervalMs: 1000 },
      );
      const liveNodes = status.nodes.filter((n) => n.state === 'live');
      expect(liveNodes.map((n) => n.id).sort()).toEqual(['node-1', 'node-2']);
      expect(liveNodes.filter((n) => n.leader).length).toBe(1);
      const ownedBy = new Map(liveNodes.map((n) => [n.id, new Set(n.partitions.routed)]));

      // A snapshot served by a surviving node holds every expert of the newest epoch.
      // Experts train on the nodes owning their partitions, the seed on the leader; node-1 assembles the
      // snapshot from what the models topic brings. The 4 bootstrapped experts hold thousands of pairs
      // each and must be trained; experts spawned by drift late in the stream may still be under
      // controller.retrain.minRecords and serve with the seed (ARCHITECTURE.md section 3).
      const manifest = await waitFor(
        'a snapshot on node-1 with every expert of its newest epoch, the 4 bootstrapped ones trained',
        async () => {
          const res = await fetch(`${first}/snapshots/latest`);
          if (!res.ok) return undefined;
          const m = (await res.json()) as { centroids: { epoch: number }; seed: { version: number; files: unknown }; experts: { id: number; files: unknown }[] };
          const trained = m.experts.filter((e) => JSON.stringify(e.files) !== JSON.stringify(m.seed.files)).map((e) => e.id);
          return [0, 1, 2, 3].every((id) => trained.includes(id)) ? m : undefined;
        },
        { timeoutMs: 300_000, intervalMs: 2000 },
      );
      // Drift can still add an expert while restored records pass through the leader's novelty buffer:
      // wait until the newest epoch has held still for a few seconds and the served snapshot covers it.
      const second = url(live[1]!);
      let still = { epoch: -1, since: Date.now() };
      const settled = await waitFor(
        'the newest epoch to hold still on both nodes',
        async () => {
          const [s, other] = await Promise.all([statusOf(first!), statusOf(second!)]);
          const res = await fetch(`${first}/snapshots/latest`);
          if (!res.ok || !s.centroids || other.centroids?.epoch !== s.centroids.epoch) return undefined;
          const m = (await res.json()) as typeof manifest;
          if (s.centroids.epoch !== still.epoch) still = { epoch: s.centroids.epoch, since: Date.now() };
          // A snapshot is assembled when a trained version arrives, so experts drift spawned late (still
          // under controller.retrain.minRecords) may not be in it yet: the check below says so.
          return Date.now() - still.since > 8000 ? { manifest: m, experts: s.experts.map((e) => e.id) } : undefined;
        },
        { timeoutMs: 180_000, intervalMs: 1000 },
      );
      const trainedHere = new Set([...live[0]!.process!.output().matchAll(/"name":"(expert-\d+|seed)","version":\d+,"chunks"/g)].map((m) => m[1]));
      const trainedElsewhere = manifest.experts.filter((e) => !trainedHere.has(`expert-${e.id}`) && JSON.stringify(e.files) !== JSON.stringify(manifest.seed.files));
      expect(trainedElsewhere.length, 'the snapshot holds experts trained on other nodes').toBeGreaterThan(0);

      for (const node of live) await stopProcessor(node.process);

      // Ground truth: each routed record's partition, as the brokers hold it (read-committed).
      const routed = await readTopic(kafka, admin, deployment.topics.routed);
      const partitionsOf = new Map<string, Set<number>>();
      /** Each routed copy of a pair: where it went, with which route, from which input offset (the failure message). */
      const routingsOf = new Map<string, string[]>();
      for (const m of routed) {
        const decoded = decodeRouted(m.value);
        if (!decoded.ok) continue;
        const { id, route, origin } = decoded.record;
        const set = partitionsOf.get(id) ?? new Set();
        set.add(m.partition);
        partitionsOf.set(id, set);
        routingsOf.set(id, [...(routingsOf.get(id) ?? []), `p${m.partition} epoch ${route?.epoch} fine ${route?.fine} expert ${route?.expert} from ${origin?.topic.split('.').at(-1)}/${origin?.partition}@${origin?.offset}`]);
      }

      // Each live node's shards, restricted to the partitions it owns (a store keeps what it held of a
      // partition that moved away, as a Kafka Streams task's state dir does; it is not its copy to serve).
      const held = new Map<string, string[]>();
      /** Every copy, owner or not: where a pair missing from its owner is, if anywhere (the failure message). */
      const copies = new Map<string, string[]>();
      const epochsOf = new Map<string, string[]>();
      let stale = 0;
      for (const node of nodes) {
        const env = openStateEnv({ dir: node.stateDir, readOnly: true });
        try {
          const centroids = createCentroidStore({ env });
          const epochs = centroids.epochs();
          epochsOf.set(node.id, epochs.map((e) => `${e}:${Buffer.from(encodeModel(centroids.get(e)!).fine).toString('base64').slice(0, 64)}`));
          if (node.id === 'node-3') continue;
          const store = createShardStore({ env, reservoirSize: 0 });
          expect(store.unroutedCount(), `${node.id} holds unrouted records`).toBe(0);
          const owned = ownedBy.get(node.id)!;
          for (const { id, expert, seq } of store.ids()) {
            const record = store.get(expert, seq);
            expect(record && epochs.includes(record.route!.epoch), `${id} on ${node.id} routed with an epoch the node holds`).toBe(true);
            copies.set(id, [...(copies.get(id) ?? []), node.id]);
            const home = [...(partitionsOf.get(id) ?? [])];
            if (home.some((p) => owned.has(p))) held.set(id, [...(held.get(id) ?? []), node.id]);
            else stale++;
          }
        } finally {
          await env.close();
        }
      }
      console.info(`[cluster] ${held.size} pairs held by their partitions' owners; ${stale} stale copies of partitions that moved away ignored`);

      const twice = [...held].filter(([, where]) => where.length > 1);
      expect(twice.slice(0, 5).map(([id, where]) => `${id} on ${where.join(', ')}: ${routingsOf.get(id)?.join('; ')}`), `${twice.length} pairs held by two owners`).toEqual([]);
      const missing = pairs.filter((p) => !held.has(p.id)).map((p) => p.id);
      // Where a missing pair came in, and whether the routed topic holds it in a transaction that did not commit.
      const [inputs, uncommitted] = missing.length ? await Promise.all([readTopic(kafka, admin, deployment.topics.pairs), readTopic(kafka, admin, deployment.topics.routed, { uncommitted: true })]) : [[], []];
      const idOfRouted = (value: Buffer | null) => {
        const decoded = decodeRouted(value);
        return decoded.ok ? decoded.record.id : undefined;
      };
      const atOf = (rows: typeof inputs, id: string, idOf: (m: (typeof inputs)[number]) => string | undefined = (m) => m.key?.toString()) => rows.filter((m) => idOf(m) === id).map((m) => `${m.partition}@${m.offset}`);
      const whereMissing = missing.slice(0, 5).map((id) => `${id}: partitions [${[...(partitionsOf.get(id) ?? [])]}], copies on [${copies.get(id) ?? []}], input at [${atOf(inputs, id)}], routed uncommitted at [${atOf(uncommitted, id, (m) => idOfRouted(m.value))}]`);
      if (missing.length) console.info(`[cluster] missing: ${missing.length}, input offsets ${missing.map((id) => atOf(inputs, id).join('|')).join(' ')}`);
      const owners = JSON.stringify(Object.fromEntries([...ownedBy].map(([n, ps]) => [n, [...ps]])));
      expect(whereMissing, `${missing.length} pairs in no live owner's shard; owners ${owners}`).toEqual([]);
      expect(held.size).toBe(pairs.length);
      const multiPartition = [...partitionsOf].filter(([, ps]) => ps.size > 1);
      expect(multiPartition.slice(0, 5).map(([id]) => id), 'pairs routed to two partitions').toEqual([]);

      // Every invalid message dead-lettered with its original bytes.
      const dlq = new Set((await readTopic(kafka, admin, deployment.topics.dlq)).map((m) => m.value?.toString('base64')));
      expect(invalid.filter((m) => !dlq.has(m.value.toString('base64'))).map((m) => m.reason)).toEqual([]);

      // The same epochs everywhere: each node's list is a prefix of the longest (a node stopped earlier, or
      // killed, stopped following; the last one up can still have refined on what it restored).
      const lists = nodes.map((n) => epochsOf.get(n.id)!).sort((x, y) => y.length - x.length);
      for (const list of lists) expect(lists[0]!.slice(0, list.length)).toEqual(list);
      expect(lists[1]!.length).toBeGreaterThan(1);

      // The snapshot: every expert of its epoch.
      const env = openStateEnv({ dir: nodes[0]!.stateDir, readOnly: true });
      try {
        const centroids = createCentroidStore({ env });
        const sorted = (ids: Iterable<number>) => [...ids].sort((x, y) => x - y);
        // The snapshot holds every expert of its epoch, which was the newest on both nodes when it was
        // served. (Stopping the leader first can still add one: the next leader then judges the novelty
        // buffer its own sharder filled, which nobody judged while it was not leading; see the README.)
        expect(sorted(settled.manifest.experts.map((e) => e.id))).toEqual(sorted(centroids.get(settled.manifest.centroids.epoch)!.experts));
        expect(sorted(settled.experts)).toEqual(sorted(centroids.get(settled.manifest.centroids.epoch)!.experts));
      } finally {
        await env.close();
      }
    } finally {
      for (const node of nodes) if (node.process && node.process.child.exitCode === null && node.process.child.signalCode === null) await stopProcessor(node.process);
      // The nodes' logs, for a failure's post-mortem.
      const logs = mkdtempSync(join(tmpdir(), 'modestream-cluster-logs-'));
      for (const node of nodes) if (node.process) writeFileSync(join(logs, `${node.id}.log`), node.process.output());
      console.info(`[cluster] node logs in ${logs}`);
      await producer.disconnect();
      for (const node of nodes) rmSync(node.stateDir, { recursive: true, force: true });
    }
  }, 1_200_000);
});
