/**
 * What Kubernetes and Prometheus see of a running instance. The probes: /healthz (liveness) fails while a
 * stage's consumer is dead (also with a real consumer the broker refuses for good), /readyz (readiness)
 * until every stage runs. The scrape: lag and the centroid
 * epoch are read when /metrics is scraped, so they move without anyone reading /status.json (a real
 * `modestream run` against the local broker, holding no stage, so the lag is exactly what was produced).
 */
import { afterAll, describe, expect, inject, test } from 'vitest';
import { startHttpServer } from '../../app/http.js';
import { silentLogger } from '../../src/logger.js';
import type { StageHealth } from '../../streams/health.js';
import { produceFashionMnist, startProcessor, stopProcessor, testDeployment, type Processor } from '../support/processor.js';
import { waitFor } from '../support/waits.js';

const brokers = inject('brokers');

describe('liveness and readiness', () => {
  test('/healthz fails with a dead stage and names it; /readyz fails until every stage runs', async () => {
    let stages: StageHealth[] = [
      { stage: 'router', state: 'running', since: 0, restarts: 0 },
      { stage: 'sharder', state: 'starting', since: 0, restarts: 0 },
    ];
    const server = await startHttpServer({ host: '127.0.0.1', port: 0, logger: silentLogger, health: () => stages });
    const get = async (path: string) => {
      const res = await fetch(`${server.url}${path}`);
      return { status: res.status, body: (await res.json()) as { ok: boolean; stages: { stage: string; state: string; error?: string }[] } };
    };
    try {
      expect((await get('/healthz')).status).toBe(200);
      expect((await get('/readyz')).status).toBe(503);
      stages = stages.map((s) => ({ ...s, state: 'running' }));
      expect((await get('/readyz')).status).toBe(200);
      stages = [stages[0]!, { stage: 'sharder', state: 'dead', since: Date.now(), restarts: 6, error: 'MDB_MAP_FULL' }];
      const dead = await get('/healthz');
      expect(dead.status).toBe(503);
      expect(dead.body.ok).toBe(false);
      expect(dead.body.stages.find((s) => s.stage === 'sharder')).toMatchObject({ state: 'dead', error: 'MDB_MAP_FULL' });
      expect((await get('/readyz')).status).toBe(503);
    } finally {
      await server.close();
    }
  });
});

describe('a real consumer that dies', () => {
  // The broker refuses a session timeout above its group.max.session.timeout.ms (30 min) with a
  // non-retriable error: the sharder's consumer cannot join, kafkajs gives it up, and the probes must say so.
  const deployment = testDeployment(brokers, { MODESTREAM_ROLES: 'sharder,http', MODESTREAM_KAFKA__SESSION_TIMEOUT_MS: '1900000' });
  let processor: Processor | undefined;
  afterAll(() => stopProcessor(processor));

  test('/healthz answers 503 naming the dead sharder and the broker\'s reason; /readyz too', async () => {
    processor = await startProcessor(deployment);
    const url = /"status":"(http:\/\/[^"]+)\/status\.json"/.exec(processor.output())?.[1];
    expect(url, 'the processor logs its HTTP address').toBeDefined();
    const live = await waitFor('liveness to fail', async () => {
      const res = await fetch(`${url}/healthz`);
      return res.status === 503 ? ((await res.json()) as { ok: boolean; stages: { stage: string; state: string; error?: string }[] }) : undefined;
    }, { timeoutMs: 60_000, intervalMs: 500 });
    expect(live.ok).toBe(false);
    expect(live.stages).toEqual([expect.objectContaining({ stage: 'sharder', state: 'dead', error: expect.stringMatching(/session timeout/i) })]);
    expect((await fetch(`${url}/readyz`)).status).toBe(503);
  }, 120_000);
});

describe('metrics read at scrape time', () => {
  // Controller and http only: nothing consumes the input topic, so its lag is what was produced.
  const deployment = testDeployment(brokers, { MODESTREAM_ROLES: 'controller,http', MODESTREAM_TOPICS__PAIRS_PARTITIONS: '2' });
  let processor: Processor | undefined;
  afterAll(() => stopProcessor(processor));

  const sample = (text: string, name: string, labels: Record<string, string> = {}) =>
    text
      .split('\n')
      .filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `))
      .filter((l) => Object.entries(labels).every(([k, v]) => l.includes(`${k}="${v}"`)))
      .map((l) => Number(l.slice(l.lastIndexOf(' ') + 1)));

  test('consumer lag follows the topic without /status.json being read; the centroid epoch is exported', async () => {
    processor = await startProcessor(deployment);
    const url = /"status":"(http:\/\/[^"]+)\/status\.json"/.exec(processor.output())?.[1];
    expect(url, 'the processor logs its HTTP address').toBeDefined();
    const scrape = async () => (await fetch(`${url}/metrics`)).text();

    const before = await scrape();
    expect(sample(before, 'modestream_centroid_epoch')).toEqual([0]);
    expect(sample(before, 'modestream_consumer_lag', { stage: 'router' }).reduce((a, b) => a + b, 0)).toBe(0);

    const produced = await produceFashionMnist(deployment, 'tops:700', 1);
    expect(produced.code, produced.output).toBe(0);
    const lag = await waitFor('router lag of 700 at scrape', async () => {
      const rows = sample(await scrape(), 'modestream_consumer_lag', { stage: 'router', topic: deployment.topics.pairs });
      return rows.length === 2 && rows.reduce((a, b) => a + b, 0) === 700 ? rows : undefined;
    }, { timeoutMs: 30_000, intervalMs: 500 });
    expect(lag).toHaveLength(2);
  }, 120_000);
});
