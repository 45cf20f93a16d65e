/**
 * Kafka as the system of record for centroid epochs, with real processes (ARCHITECTURE.md sections 3-4):
 * two `modestream run` nodes with their own state directories share the topics and groups; exactly one
 * leads the controller, both hold the identical epochs from the control topic, and their records carry
 * epochs both hold. kill -9 of the leader hands the lead to the other within the session timeout, which
 * then publishes a later epoch; a third node started afterwards has every epoch before it routes.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, describe, expect, inject, test } from 'vitest';
import { openControl } from '../../app/control.js';
import { createLogger } from '../../app/logger.js';
import { clusterTopics } from '../../app/roles/registry.js';
import { loadConfig } from '../../cli/context.js';
import type { CentroidModel } from '../../src/cluster/model.js';
import { UNROUTED } from '../../src/contract/routed.js';
import { createCentroidStore } from '../../state/centroids.js';
import { openStateEnv } from '../../state/env.js';
import { createShardStore } from '../../state/shards.js';
import { makePairs } from '../support/fixtures.js';
import { cli, startProcessor, stopProcessor, testDeployment, type Processor } from '../support/processor.js';
import { waitFor } from '../support/waits.js';

const brokers = inject('brokers');
const SESSION_TIMEOUT_MS = 6000; // test/support/processor.ts

/** Every epoch in a node's state directory, read without disturbing a running process. */
function epochsIn(stateDir: string): Map<number, CentroidModel> {
  const env = openStateEnv({ dir: stateDir, readOnly: true });
  try {
    const store = createCentroidStore({ env });
    return new Map(store.epochs().map((e) => [e, store.get(e)!]));
  } finally {
    void env.close();
  }
}

/** The epochs the routed records of a node carry, and how many records are routed. */
function recordEpochs(stateDir: string): { epochs: Set<number>; routed: number } {
  const env = openStateEnv({ dir: stateDir, readOnly: true });
  try {
    const store = createShardStore({ env, reservoirSize: 0 });
    const epochs = new Set<number>();
    let routed = 0;
    for (const { expert } of store.expertStats()) {
      if (expert === UNROUTED) continue;
      for (const { record } of store.read(expert, { fromSeq: 0, limit: 1_000_000 })) {
        epochs.add(record.route!.epoch);
        routed++;
      }
    }
    return { epochs, routed };
  } finally {
    void env.close();
  }
}

const same = (a: CentroidModel, b: CentroidModel) =>
  a.epoch === b.epoch && a.createdAt === b.createdAt && Buffer.from(a.fine.buffer).equals(Buffer.from(b.fine.buffer)) && Buffer.from(a.fineToExpert.buffer).equals(Buffer.from(b.fineToExpert.buffer));

const occurrences = (p: Processor, text: string) => p.output().split(text).length - 1;
/** Whether a node's newest leadership line says it leads. */
const leads = (p: Processor) => p.output().lastIndexOf('controller leadership taken') > p.output().lastIndexOf('controller leadership ended');

describe('control plane', () => {
  const deployment = testDeployment(brokers);
  const nodes: Record<string, Processor | undefined> = {};
  const envOf = (name: string, stateDir: string, extra: Record<string, string> = {}) => ({ ...deployment.env, MODESTREAM_STATE_DIR: stateDir, MODESTREAM_NODE__ID: name, ...extra });
  const dirs = { a: deployment.stateDir, b: mkdtempSync(join(tmpdir(), 'modestream-node-b-')), c: mkdtempSync(join(tmpdir(), 'modestream-node-c-')) };

  afterAll(async () => {
    // The nodes' logs, for a failure's post-mortem.
    for (const [name, p] of Object.entries(nodes)) if (p) writeFileSync(join(deployment.stateDir, `node-${name}.log`), p.output());
    console.log(`node logs in ${deployment.stateDir}`);
    for (const p of Object.values(nodes)) if (p && p.child.exitCode === null) p.kill('SIGKILL');
  });

  test('one leader, identical epochs everywhere, failover after kill -9, a later epoch accepted', { timeout: 170_000 }, async () => {
    nodes.a = await startProcessor(deployment, envOf('node-a', dirs.a));
    nodes.b = await startProcessor(deployment, envOf('node-b', dirs.b));
    const kafka = new Kafka({ brokers: brokers.split(','), logLevel: logLevel.NOTHING });
    const producer = kafka.producer();
    await producer.connect();
    const send = async (pairs: ReturnType<typeof makePairs>) => {
      for (let i = 0; i < pairs.length; i += 500) await producer.send({ topic: deployment.topics.pairs, acks: -1, messages: pairs.slice(i, i + 500).map(({ key, value }) => ({ key, value })) });
    };
    try {
      // Each sharder stores about half the pairs; 2,000 fill the leader's reservoir (500) either way.
      await send(makePairs(2000, { seed: 3, prefix: 'cp1' }));
      await waitFor('epoch 1 on both nodes', () => epochsIn(dirs.a).has(1) && epochsIn(dirs.b).has(1), { timeoutMs: 90_000 });

      await waitFor('exactly one leader', () => Number(leads(nodes.a!)) + Number(leads(nodes.b!)) === 1);
      const [leader, follower] = leads(nodes.a!) ? (['a', 'b'] as const) : (['b', 'a'] as const);
      expect(same(epochsIn(dirs.a).get(1)!, epochsIn(dirs.b).get(1)!)).toBe(true);

      // Routed after epoch 1: both routers route with epochs both nodes hold.
      await send(makePairs(1000, { seed: 4, prefix: 'cp2' }));
      await waitFor('routed records on both nodes', () => recordEpochs(dirs.a).routed > 0 && recordEpochs(dirs.b).routed > 0, { timeoutMs: 60_000 });
      await waitFor('the same epochs on both nodes', () => {
        const [ea, eb] = [epochsIn(dirs.a), epochsIn(dirs.b)];
        return ea.size === eb.size && [...ea].every(([n, m]) => eb.has(n) && same(m, eb.get(n)!));
      });
      const held = new Set(epochsIn(dirs.a).keys());
      for (const dir of [dirs.a, dirs.b]) for (const e of recordEpochs(dir).epochs) expect(held.has(e), `record epoch ${e} held by both nodes`).toBe(true);

      // kill -9 the leader: the group notices after the session timeout and the survivor claims.
      const takenBefore = occurrences(nodes[follower]!, 'controller leadership taken');
      const killed = Date.now();
      nodes[leader]!.kill('SIGKILL');
      await nodes[leader]!.exited;
      await waitFor('the survivor leads', () => occurrences(nodes[follower]!, 'controller leadership taken') > takenBefore && leads(nodes[follower]!), { timeoutMs: 60_000 });
      const failoverMs = Date.now() - killed;
      console.log(`failover after kill -9 of node-${leader}: ${failoverMs} ms (session timeout ${SESSION_TIMEOUT_MS} ms)`);
      expect(failoverMs).toBeLessThan(SESSION_TIMEOUT_MS + 20_000);

      // The new leader's claim fences nobody alive; a later epoch goes through the log and is applied.
      const before = Math.max(...epochsIn(dirs[follower]).keys());
      const boot = await cli(['bootstrap', '--json'], envOf(`node-${follower}`, dirs[follower]));
      expect(boot.code, boot.output).toBe(0);
      const epoch = (JSON.parse(boot.stdout) as { epoch: number }).epoch;
      expect(epoch).toBeGreaterThan(before);
      expect(epochsIn(dirs[follower]).has(epoch)).toBe(true);

      // A new node reads the whole log before it starts routing.
      nodes.c = await startProcessor(deployment, envOf('node-c', dirs.c, { MODESTREAM_ROLES: 'router' }));
      const [ec, es] = [epochsIn(dirs.c), epochsIn(dirs[follower])];
      expect(ec.has(epoch)).toBe(true);
      for (const [n, m] of ec) expect(same(m, es.get(n)!), `epoch ${n} identical on the new node`).toBe(true);
    } finally {
      await producer.disconnect();
      await Promise.all(Object.values(nodes).map((p) => (p && p.child.exitCode === null ? stopProcessor(p) : undefined)));
    }
  });

  test('an epoch of 1024 x 384 fine centers crosses a real broker in chunks, and a fresh node reads it back', { timeout: 60_000 }, async () => {
    const fresh = testDeployment(brokers);
    const configOf = (stateDir: string, node: string) => loadConfig({}, {}, { env: { ...fresh.env, MODESTREAM_STATE_DIR: stateDir, MODESTREAM_NODE__ID: node, MODESTREAM_LOG__LEVEL: 'warn' } });
    const m = 1024;
    const dim = 384;
    const model: CentroidModel = {
      epoch: 1,
      dim,
      fine: Float32Array.from({ length: m * dim }, (_, i) => Math.sin(i)),
      fineIds: Int32Array.from({ length: m }, (_, i) => i),
      fineToExpert: Int32Array.from({ length: m }, (_, i) => i % 4),
      coarse: Float32Array.from({ length: 4 * dim }, (_, i) => Math.cos(i)),
      experts: Int32Array.from([0, 1, 2, 3]),
      counts: new Float64Array(m).fill(1),
      createdAt: 1,
      refinedThrough: {},
      origins: {},
      embedder: 'synthetic',
      stats: { sampleSize: m, inertia: 0, balanced: true, oneStage: false, fineSpread: { min: 1, max: 1, mean: 1, cv: 0 }, expertSpread: { min: 1, max: 1, mean: 1, cv: 0 } },
    };
    const readBack = async (stateDir: string, node: string, publish?: CentroidModel) => {
      const config = configOf(stateDir, node);
      const env = openStateEnv({ dir: stateDir });
      const centroids = createCentroidStore({ env });
      const control = await openControl(config, createLogger(config), centroids, clusterTopics(config));
      try {
        const started = performance.now();
        if (publish) expect(await control.publish(publish)).toBe(true);
        return { model: centroids.get(1), ms: performance.now() - started };
      } finally {
        await control.close();
        await env.close();
      }
    };
    const writer = await readBack(fresh.stateDir, 'writer', model);
    console.log(`1024 x 384 epoch (about 1.6 MB, in chunks of at most 512 KiB) published and applied in ${writer.ms.toFixed(0)} ms`);
    const reader = await readBack(mkdtempSync(join(tmpdir(), 'modestream-reader-')), 'reader');
    expect(reader.model && same(reader.model, model)).toBe(true);
    expect(writer.model && same(writer.model, model)).toBe(true);
  });
});
