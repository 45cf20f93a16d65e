/**
 * The ops status page in a real browser (Debian Chromium driven by playwright-core): served by
 * startHttpServer from a fake status source, it shows one row per expert with its state, follows the
 * report as it changes, keeps the last good data marked stale while /status.json fails, escapes the
 * report's text, and loads nothing but itself and status.json. Needs no Kafka broker.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startHttpServer, type RunningHttpServer } from '../../app/http.js';
import { silentLogger } from '../../src/logger.js';
import { StatusReport } from '../../src/status.js';
import { openBrowser, type Browser } from '../support/browser.js';

const RESULTS_DIR = fileURLToPath(new URL('../../test-results/', import.meta.url));
// Text that would run script if the page ever parsed report data as HTML.
const HOSTILE = 'caption spike from <img src=x onerror="globalThis.__pwned=1"><b>crawler-7</b>';

type Phase = 'initial' | 'changed';
type Expert = StatusReport['experts'][number];

function fakeStatus(phase: Phase): StatusReport {
  const now = Date.now();
  const ago = (s: number) => new Date(now - s * 1000).toISOString();
  const expert = (id: number, records: number, fine: number, state: Expert['state'], version: number | null, trainedAgo: number | null, pending: number, oldest: number | null): Expert => ({
    id,
    records,
    fineClusters: fine,
    firstRecordAt: ago(7200),
    lastRecordAt: ago(2),
    version,
    lastTrainedAt: trainedAgo === null ? null : ago(trainedAgo),
    pending,
    oldestPendingAgeSeconds: oldest,
    state,
  });
  const changed = phase === 'changed';
  const experts = [
    expert(0, 41_200, 260, 'fresh', 4, 300, 120, 35),
    expert(1, 38_950, 251, changed ? 'training' : 'stale', 2, 5400, 9_800, 5100),
    expert(2, 36_010, 248, 'queued', 3, 2400, 4_100, 1900),
    changed ? expert(3, 30_400, 240, 'fresh', 3, 4, 0, null) : expert(3, 30_400, 240, 'training', 2, 3300, 6_000, 2800),
    expert(4, 12_500, 25, 'failed', 1, 6600, 12_500, 6500),
    expert(5, 480, 0, 'untrained', null, null, 480, 640),
    ...(changed ? [expert(6, 1_200, 12, 'queued', null, null, 1_200, 90)] : []),
  ];
  const unrouted = 0;
  const events: StatusReport['events'] = [
    { at: ago(5), kind: 'retrain', message: 'expert-3 v3 trained: 400 steps, loss 1.94' },
    { at: ago(120), kind: 'snapshot', message: 'snapshot v12 published (epoch 3, 6 experts)' },
    { at: ago(600), kind: 'failure', message: HOSTILE },
    { at: ago(3600), kind: 'epoch', message: 'centroid epoch 3: 1024 fine centers refined' },
  ];
  if (changed) events.unshift({ at: ago(1), kind: 'spawn', message: 'expert 6 spawned from 12 novel fine centers' });
  return StatusReport.parse({
    generatedAt: new Date(now).toISOString(),
    brokers: ['127.0.0.1:9092'],
    backend: { name: 'webgpu', adapter: 'NVIDIA H100' },
    embedder: { kind: 'onnx', model: 'minilm-l6', dim: 384, fingerprint: 'onnx-v1(model=sha256:736d2b18,dim=384)', mismatch: false },
    centroids: {
      epoch: changed ? 4 : 3,
      fine: changed ? 1036 : 1024,
      experts: experts.length,
      dim: 256,
      inertia: 0.412,
      sampleSize: 50_000,
      balanced: true,
      oneStage: false,
      fineSpread: { min: 0.1, max: 0.6, mean: 0.3, cv: 0.2 },
      expertSpread: { min: 0.4, max: 0.9, mean: 0.6, cv: 0.1 },
      createdAt: ago(3600),
    },
    experts,
    trainingQueue: changed
      ? [
          { name: 'expert-2', reason: 'pending 4100 >= 4000', priority: 0.82 },
          { name: 'expert-6', reason: 'new expert', priority: 0.5 },
        ]
      : [
          { name: 'expert-1', reason: 'stale: oldest pending 85 min', priority: 0.91 },
          { name: 'expert-2', reason: 'pending 4100 >= 4000', priority: 0.82 },
        ],
    snapshot: { version: changed ? 13 : 12, createdAt: ago(changed ? 3 : 120), epoch: 3 },
    events,
    unrouted,
    totalRecords: experts.reduce((sum, e) => sum + e.records, unrouted),
    deadLettered: changed ? 21 : 17,
    reservoir: { seen: 160_740, capacity: 50_000 },
    partitions: [0, 1, 2, 3].flatMap((p) => [
      { topic: 'pairs', partition: p, stage: 'router' as const, position: 40_000 + p, end: 40_010 + p * (changed ? 400 : 100), lag: 10 + p * (changed ? 400 : 100) - p },
      { topic: 'routed', partition: p, stage: 'sharder' as const, position: 39_990, end: 39_990, lag: 0 },
    ]),
    models: [
      { name: 'seed', version: 1, trainedAt: ago(7000), steps: 2000, loss: 2.31, records: 50_000, backend: 'webgpu', samplesPerSecond: 31_000 },
      { name: 'expert-0', version: 4, trainedAt: ago(300), steps: 400, loss: 1.87, records: 41_080, backend: 'webgpu', samplesPerSecond: 29_500 },
    ],
    jobs: [
      changed
        ? { name: 'expert-3', state: 'done', step: 400, totalSteps: 400, loss: 1.94, samplesPerSecond: 30_100, backend: 'webgpu', adapter: 'NVIDIA H100', updatedAt: ago(4) }
        : { name: 'expert-3', state: 'running', step: 120, totalSteps: 400, loss: 2.12, samplesPerSecond: 29_800, backend: 'webgpu', adapter: 'NVIDIA H100', updatedAt: ago(1) },
      ...(changed ? [{ name: 'expert-1', state: 'running' as const, step: 16, totalSteps: 400, loss: 2.4, samplesPerSecond: 28_000, backend: 'webgpu', updatedAt: ago(1) }] : []),
      { name: 'expert-4', state: 'failed', step: 37, totalSteps: 400, loss: null, samplesPerSecond: null, backend: 'webgpu', updatedAt: ago(6500), error: 'GPU device lost; retrying in 4 min' },
    ],
    nodes: [
      node('node-a', 'live', 0.4, [0, 2], true, []),
      node('node-b', changed ? 'dead' : 'live', changed ? 9 : 0.8, [1, 3], false, [{ topic: 'routed', partition: 3, from: 100, target: 2100, applied: 600, state: 'restoring' }]),
    ],
    cluster: {
      routedPartitions: 4,
      experts: experts.map((e) => ({ id: e.id, partition: e.id % 4, owner: e.id % 2 === 0 ? 'node-a' : changed ? null : 'node-b', records: e.records, restore: null, freshness: null })),
    },
  });
  function node(id: string, state: 'live' | 'dead' | 'stopped', age: number, routed: number[], leader: boolean, restores: StatusReport['nodes'][number]['restores']): StatusReport['nodes'][number] {
    return { id, host: 'h1', pid: 7, roles: ['sharder', 'http'], httpUrl: `http://${id}:8080`, state, startedAt: ago(900), lastHeartbeatAt: ago(age), heartbeatAgeSeconds: age, leader, partitions: { routed }, restores, centroidEpoch: 3, snapshotVersion: 12, version: '0.1.0' };
  }
}

let phase: Phase = 'initial';
let failing = false;
let server: RunningHttpServer;
let browser: Browser;
let page: Page;
const consoleErrors: string[] = [];
const requested: string[] = [];

const rows = () => page.locator('[data-testid="expert-row"]');
const row = (id: number) => page.locator(`[data-testid="expert-row"][data-expert-id="${id}"]`);
const POLL = { timeout: 15_000, interval: 250 };

beforeAll(async () => {
  server = await startHttpServer({
    host: '127.0.0.1',
    port: 0,
    logger: silentLogger,
    status: async () => {
      if (failing) throw new Error('LMDB environment is closed');
      return fakeStatus(phase);
    },
  });
  browser = await openBrowser();
  page = browser.page;
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(m.text());
  });
  page.on('pageerror', (err) => consoleErrors.push(`pageerror: ${err.message}`));
  page.on('request', (r) => requested.push(r.url()));
});

afterAll(async () => {
  await browser?.close();
  await server?.close();
});

describe('status page', () => {
  test('GET /status serves one self-contained page under a strict CSP, / redirects to it', async () => {
    const res = await fetch(`${server.url}/status`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'none'");
    expect(csp).toMatch(/script-src 'sha256-[A-Za-z0-9+/=]+'/);
    const html = await res.text();
    expect(html).not.toMatch(/(src|href)\s*=\s*"(https?:)?\/\//i);
    expect(html).toContain('data-status-url="status.json"');

    const root = await fetch(`${server.url}/`, { redirect: 'manual' });
    expect(root.status).toBe(302);
    expect(new URL(root.headers.get('location') ?? '', `${server.url}/`).pathname).toBe('/status');
    const head = await fetch(`${server.url}/status`, { method: 'HEAD' });
    expect(head.status).toBe(200);
  });

  test('without a status source (modestream serve) /status and / are 404', async () => {
    const bare = await startHttpServer({ host: '127.0.0.1', port: 0, logger: silentLogger });
    try {
      expect((await fetch(`${bare.url}/status`)).status).toBe(404);
      expect((await fetch(`${bare.url}/status.json`)).status).toBe(404);
      expect((await fetch(`${bare.url}/`, { redirect: 'manual' })).status).toBe(404);
    } finally {
      await bare.close();
    }
  });

  test('shows one row per expert with its state, the header figures, jobs and events', async () => {
    await page.goto(`${server.url}/`);
    expect(new URL(page.url()).pathname).toBe('/status');
    const expected = fakeStatus('initial');
    await expect.poll(() => rows().count(), POLL).toBe(expected.experts.length);
    for (const e of expected.experts) {
      expect(await row(e.id).getAttribute('data-state')).toBe(e.state);
      expect((await row(e.id).getByTestId('expert-state').textContent())?.trim()).toBe(e.state);
      expect(await row(e.id).getByTestId('expert-records').textContent()).toBe(e.records.toLocaleString('en-US'));
      expect(await row(e.id).getByTestId('expert-pending').textContent()).toBe(e.pending.toLocaleString('en-US'));
    }
    expect(await page.getByTestId('stat-epoch').textContent()).toMatch(/^3/);
    expect(await page.getByTestId('stat-records').textContent()).toMatch(/^159,540/);
    expect(await page.getByTestId('stat-dead-letters').textContent()).toBe('17');
    expect(await page.getByTestId('stat-snapshot').textContent()).toMatch(/^v12/);
    expect(await page.getByTestId('stat-backend').textContent()).toBe('webgpuNVIDIA H100');
    expect(await page.getByTestId('stat-embedder').textContent()).toBe('onnx minilm-l6384-d onnx-v1(model=sha256:736d2b18,dim=384)');
    expect(await page.getByTestId('updated').textContent()).toMatch(/^updated \d+ s ago$/);
    expect(await page.getByTestId('error-banner').isVisible()).toBe(false);

    const running = page.locator('[data-testid="job-row"][data-job-name="expert-3"]');
    expect(await running.getAttribute('data-state')).toBe('running');
    const bar = running.getByTestId('job-progress');
    expect([await bar.getAttribute('value'), await bar.getAttribute('max')]).toEqual(['120', '400']);
    expect(await running.getByTestId('job-steps').textContent()).toBe('120 / 400 (30%)');
    expect(await page.getByTestId('job-error').textContent()).toContain('GPU device lost');
    expect(await page.locator('[data-testid="queue-row"]').count()).toBe(2);
    expect(await page.locator('[data-testid="partition-row"]').count()).toBe(8);
    const nodeRow = (id: string) => page.locator(`[data-testid="node-row"][data-node-id="${id}"]`);
    expect(await page.locator('[data-testid="node-row"]').count()).toBe(2);
    expect([await nodeRow('node-a').getAttribute('data-state'), await nodeRow('node-b').getAttribute('data-state')]).toEqual(['live', 'live']);
    expect(await nodeRow('node-b').textContent()).toContain('p3 500 / 2,000');
    expect(await row(1).getByTestId('expert-owner').textContent()).toBe('node-b');

    const kinds = await page.locator('[data-testid="event-row"]').evaluateAll((els) => els.map((e) => e.getAttribute('data-kind')));
    expect(kinds).toEqual(['retrain', 'snapshot', 'failure', 'epoch']);
    // Report text is shown as text: the hostile event message is visible verbatim and created no element.
    await expect.poll(() => page.getByTestId('event-message').nth(2).textContent()).toBe(HOSTILE);
    expect(await page.locator('main img, main b').count()).toBe(0);
    expect(await page.evaluate(() => (globalThis as Record<string, unknown>).__pwned)).toBeUndefined();
  });

  test('follows the report as it changes', async () => {
    phase = 'changed';
    const expected = fakeStatus('changed');
    await expect.poll(() => rows().count(), POLL).toBe(expected.experts.length);
    await expect.poll(() => row(1).getAttribute('data-state'), POLL).toBe('training');
    for (const e of expected.experts) expect(await row(e.id).getAttribute('data-state')).toBe(e.state);
    expect(await row(6).getByTestId('expert-state').textContent()).toBe('queued');
    expect(await page.getByTestId('stat-epoch').textContent()).toMatch(/^4/);
    expect(await page.getByTestId('stat-dead-letters').textContent()).toBe('21');
    expect(await page.locator('[data-testid="job-row"][data-job-name="expert-3"]').getAttribute('data-state')).toBe('done');
    // Running jobs first, then by time.
    const jobs = await page.locator('[data-testid="job-row"]').evaluateAll((els) => els.map((e) => e.getAttribute('data-job-name')));
    expect(jobs).toEqual(['expert-1', 'expert-4', 'expert-3']);
    expect(await page.locator('[data-testid="event-row"]').first().getAttribute('data-kind')).toBe('spawn');
    await expect.poll(() => page.locator('[data-testid="node-row"][data-node-id="node-b"]').getAttribute('data-state'), POLL).toBe('dead');
    expect(await page.locator('[data-testid="node-row"][data-node-id="node-b"]').getByTestId('node-state').textContent()).toBe('dead');
    expect(await row(1).getByTestId('expert-owner').count()).toBe(0);

    mkdirSync(RESULTS_DIR, { recursive: true });
    await page.screenshot({ path: join(RESULTS_DIR, 'status-page.png'), fullPage: true });
  });

  test('shows an error banner while status.json fails, keeps the last data marked stale, then recovers', async () => {
    failing = true;
    const banner = page.getByTestId('error-banner');
    await expect.poll(() => banner.isVisible(), POLL).toBe(true);
    const text = (await banner.textContent()) ?? '';
    expect(text).toContain('HTTP 500');
    expect(text).toContain('LMDB environment is closed');
    expect(text).toContain('last good data');
    expect(await page.getByRole('alert').textContent()).toBe(text);
    expect(await page.getByTestId('main').getAttribute('data-stale')).toBe('true');
    expect(await page.getByTestId('connection').textContent()).toBe('stale');
    expect(await rows().count()).toBe(7);
    expect(await row(1).getAttribute('data-state')).toBe('training');
    await page.screenshot({ path: join(RESULTS_DIR, 'status-page-error.png') });

    failing = false;
    await expect.poll(() => banner.isVisible(), POLL).toBe(false);
    expect(await page.getByTestId('main').getAttribute('data-stale')).toBe('false');
    expect(await page.getByTestId('connection').textContent()).toBe('live');
  });

  test('loaded nothing but the page and status.json, with no script or CSP errors', () => {
    const paths = new Set(requested.map((u) => `${new URL(u).origin === server.url ? '' : new URL(u).origin}${new URL(u).pathname}`));
    expect([...paths].sort()).toEqual(['/', '/status', '/status.json']);
    // The only console errors are Chromium's reports of the 500 responses provoked above.
    expect(consoleErrors.filter((m) => !/status of 500/.test(m))).toEqual([]);
    expect(consoleErrors.length).toBeGreaterThan(0);
  });
});
