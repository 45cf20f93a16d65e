/**
 * Clustering on the live stream, against the real broker: no centers at first (pairs are stored
 * unrouted), bootstrap once the reservoir is full, every record routed exactly once, online refinement
 * publishing new epochs without touching the fine->expert map, and `modestream bootstrap` reclustering
 * on demand with fresh fine ids.
 */
import { rmSync } from 'node:fs';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import { createCentroidStore } from '../../state/centroids.js';
import { openStateEnv, type StateEnv } from '../../state/env.js';
import { createShardStore } from '../../state/shards.js';
import { makePairs } from '../support/fixtures.js';
import { cli, startProcessor, stopProcessor, testDeployment, type Processor } from '../support/processor.js';
import { waitFor } from '../support/waits.js';

const brokers = inject('brokers');

describe('clustering on the stream', () => {
  const deployment = testDeployment(brokers, {
    MODESTREAM_CLUSTERING__REFINE__BATCH: '256',
    MODESTREAM_CLUSTERING__REFINE__MOVE_THRESHOLD: '0.002',
    // These tests compare epochs before and after a recluster; drift (a spawn between the two reads) is
    // test/integration/drift.test.ts's subject and would race them here.
    MODESTREAM_CONTROLLER__DRIFT__ENABLED: 'false',
  });
  const kafka = new Kafka({ brokers: brokers.split(','), logLevel: logLevel.NOTHING });
  const producer = kafka.producer();
  let processor: Processor;
  let env: StateEnv;

  beforeAll(async () => {
    await producer.connect();
    processor = await startProcessor(deployment);
    env = openStateEnv({ dir: deployment.stateDir, readOnly: true });
  });

  afterAll(async () => {
    await stopProcessor(processor);
    await producer.disconnect();
    await env?.close();
    rmSync(deployment.stateDir, { recursive: true, force: true });
  });

  const send = (pairs: ReturnType<typeof makePairs>) =>
    producer.send({ topic: deployment.topics.pairs, acks: -1, messages: pairs.map(({ key, value }) => ({ key, value })) });

  test('bootstraps from the stream and routes every record exactly once, also those that came first', async () => {
    const store = createShardStore({ env, reservoirSize: 0 });
    const centroids = createCentroidStore({ env });
    const early = makePairs(300, { seed: 21, prefix: 'early' });
    await send(early);
    await waitFor('the first pairs stored unrouted', () => store.unroutedCount() === 300);
    expect(centroids.latestEpoch()).toBe(0);

    const later = makePairs(1700, { seed: 22, prefix: 'later' });
    await send(later);
    await waitFor('all pairs routed', () => store.totalRecords() === 2000 && store.unroutedCount() === 0, { timeoutMs: 120_000 });
    expect(store.audit()).toEqual({ records: 2000, ids: 2000, problems: [] });
    const first = centroids.get(1)!;
    expect(first.fineIds.length).toBe(16);
    expect(new Set(first.fineToExpert).size).toBe(4);
    for (const p of early) {
      const loc = store.locate(p.id)!;
      expect(loc.expert).toBeGreaterThanOrEqual(0);
    }
    // Every stored record carries the epoch it was routed with, and its fine cluster belongs to its expert.
    for (const expert of first.experts) {
      for (const { record } of store.read(expert)) {
        expect(record.route!.expert).toBe(expert);
        const model = centroids.get(record.route!.epoch)!;
        const row = Array.from(model.fineIds).indexOf(record.route!.fine);
        expect(model.fineToExpert[row]).toBe(expert);
      }
    }
  });

  test('online refinement publishes new epochs with the same ids and fine->expert map', async () => {
    const centroids = createCentroidStore({ env });
    await send(makePairs(1500, { seed: 23, prefix: 'refine' }));
    await waitFor('a refined epoch', () => centroids.latestEpoch() >= 2, { timeoutMs: 120_000 });
    const [first, refined] = [centroids.get(1)!, centroids.latest()!];
    expect(Array.from(refined.fineIds)).toEqual(Array.from(first.fineIds));
    expect(Array.from(refined.fineToExpert)).toEqual(Array.from(first.fineToExpert));
    expect(Array.from(refined.fine)).not.toEqual(Array.from(first.fine));
    expect(Object.values(refined.refinedThrough).reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
    expect(processor.output()).toContain('refined centers published as a new epoch');
  });

  test('`modestream bootstrap` reclusters on demand: new epoch, fresh fine ids, status shows it', async () => {
    const centroids = createCentroidStore({ env });
    const before = centroids.latest()!;
    const result = await cli(['bootstrap', '--fine', '8', '--experts', '4', '--plain', '--json'], deployment.env);
    expect(result.code, result.output).toBe(0);
    const summary = JSON.parse(result.stdout) as { epoch: number; fine: number; experts: number; balanced: boolean };
    expect(summary).toMatchObject({ fine: 8, experts: 4, balanced: false });
    expect(summary.epoch).toBeGreaterThan(before.epoch);
    const model = centroids.get(summary.epoch)!;
    expect(Math.min(...model.fineIds)).toBeGreaterThan(Math.max(...before.fineIds));
    expect(new Set(model.experts)).toEqual(new Set(before.experts));

    const status = await cli(['status', '--json'], deployment.env);
    const report = JSON.parse(status.stdout) as { centroids: { epoch: number; fine: number; fineSpread: { cv: number } } };
    expect(report.centroids.epoch).toBeGreaterThanOrEqual(summary.epoch);
    expect(report.centroids.fine).toBe(8);
  });
});
