/**
 * Continual learning end to end on a drifting Fashion-MNIST feed, for real: a `modestream run` process
 * (router, sharder, controller, trainer, http) against the local broker, fed with tops and trousers
 * first; it bootstraps, trains the seed and the experts, publishes a snapshot. Then footwear and bags appear:
 * novel pairs become new fine clusters (joining an expert or spawning one), the experts that received
 * them are retrained by the scheduler, a new snapshot is published, and its zero-shot accuracy on the
 * footwear classes is clearly above the previous snapshot's.
 *
 * Then the same drift in the real encoder's space (all-MiniLM-L6-v2, the default embedder), without
 * training: a stationary stream must create no new fine cluster, and a new family must be detected
 * within its first 3,000 pairs. It needs the pulled model in <MODESTREAM_TEST_MODELS_DIR or
 * .modestream/models>/minilm-l6; CI pulls it first, so there a missing model fails, elsewhere it skips.
 * MODESTREAM_TEST_DRIFT_STATIONARY / _SAMPLE / _FINE scale it up (the full-size check: 30000 / 20000 / 1024).
 */
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import { fashionMnistTestSet, zeroShotReport, type TestSet } from '../../examples/fashion-mnist/eval.js';
import { loadSnapshot } from '../../client/index.js';
import { initBackend } from '../../src/tensor/backend.js';
import { openBrowser } from '../support/browser.js';
import { ROOT, produceFashionMnist, readStatus, startProcessor, stopProcessor, testDeployment, type Processor } from '../support/processor.js';
import { waitFor } from '../support/waits.js';

const brokers = inject('brokers');
const FOOTWEAR = [5, 7, 9];

describe('drift: a new class family appears mid-stream', () => {
  const deployment = testDeployment(brokers, {
    MODESTREAM_CLUSTERING__SAMPLE: '2000',
    MODESTREAM_CLUSTERING__FINE: '32',
    MODESTREAM_CLUSTERING__EXPERTS: '3',
    MODESTREAM_EXPERTS__TRAINING__BATCH: '128',
    MODESTREAM_EXPERTS__TRAINING__SEED_STEPS: '200',
    MODESTREAM_EXPERTS__TRAINING__STEPS: '100',
    MODESTREAM_EXPERTS__TRAINING__CHECKPOINT_EVERY: '50',
    MODESTREAM_CONTROLLER__SEED_MIN_RECORDS: '2000',
    MODESTREAM_CONTROLLER__TICK_MS: '500',
    MODESTREAM_CONTROLLER__RETRAIN__PENDING_RECORDS: '400',
    MODESTREAM_CONTROLLER__RETRAIN__MIN_RECORDS: '200',
    // Novelty candidates come from per-cluster radii (no absolute distance). The buffer judgement's ratio
    // separates less in hashed space (bench/novelty.ts --kind hashed, 2000 / 32 / 3, buffer 200: stationary
    // tail clusters >= 0.82, new-family clusters 0.78-0.80): the default maxRatio follows the space (0.8
    // here, maxRatioFor), and a smaller buffer lets a new family be judged several times.
    MODESTREAM_CONTROLLER__DRIFT__BUFFER_SIZE: '200',
    MODESTREAM_CONTROLLER__DRIFT__NEW_CLUSTERS: '6',
    MODESTREAM_CONTROLLER__DRIFT__MIN_CLUSTER_SIZE: '15',
    MODESTREAM_CLUSTERING__REFINE__ENABLED: 'false',
  });
  let processor: Processor;
  let footwearTest: TestSet;

  const status = () => readStatus(deployment);
  /** Where the run stands (a wait's failure message): both waits fit the test's timeout, so they say it. */
  const progress = (s: Awaited<ReturnType<typeof status>>) =>
    `snapshot v${s.snapshot?.version ?? '-'}, epoch ${s.centroids?.epoch ?? '-'}, ${s.totalRecords} stored (${s.unrouted} unrouted), queue [${s.trainingQueue.map((q) => q.name).join(', ')}], experts ${s.experts.map((e) => `${e.id}:${e.state}:${e.records}:v${e.version ?? '-'}`).join(' ')}; events: ${s.events.slice(0, 6).map((e) => `${e.kind} ${e.message}`).join(' | ')}`;
  const produce = (schedule: string, seed: number) => produceFashionMnist(deployment, schedule, seed);
  const footwearAccuracy = async (version: number) => {
    const snapshot = await loadSnapshot(`${deployment.stateDir}/snapshots/v${String(version).padStart(6, '0')}`);
    try {
      return (await zeroShotReport({ ensemble: snapshot.ensemble, test: footwearTest, classes: FOOTWEAR })).top1;
    } finally {
      snapshot.dispose();
    }
  };

  beforeAll(async () => {
    await initBackend('wasm');
    footwearTest = await fashionMnistTestSet({ classes: FOOTWEAR, perClass: 300 });
    processor = await startProcessor(deployment);
  });

  afterAll(async () => {
    await stopProcessor(processor);
    rmSync(deployment.stateDir, { recursive: true, force: true });
  });

  test('new footwear pairs create fine clusters, experts retrain, and the new snapshot knows footwear', async () => {
    const first = await produce('tops,bottoms:5000', 1);
    expect(first.code, first.output).toBe(0);
    const before = await waitFor(
      'seed and every expert trained, and a snapshot of them',
      async () => {
        const s = await status();
        const ready = s.snapshot && s.experts.length === 3 && s.experts.every((e) => e.version !== null) && s.snapshot.version >= 4;
        if (!ready) throw new Error(progress(s));
        return s;
      },
      { timeoutMs: 280_000, intervalMs: 2000 },
    );
    const epochBefore = before.centroids!.epoch;
    const fineBefore = before.centroids!.fine;
    const accuracyBefore = await footwearAccuracy(before.snapshot!.version);

    // Footwear and bags, as in the demo: in hashed space footwear alone is detected within 3,000 pairs in
    // only ~70% of runs (bags in all), so the family is the two together; the accuracy check is footwear's.
    const second = await produce('footwear,bags:4000', 2);
    expect(second.code, second.output).toBe(0);
    const after = await waitFor(
      'a drift epoch, then every expert with enough records (new ones included) trained and snapshotted',
      async () => {
        const s = await status();
        const drift = s.events.find((e) => e.kind === 'spawn' || (e.kind === 'epoch' && e.message.includes('novel pairs')));
        if (!drift || !s.snapshot || s.centroids!.epoch <= epochBefore) return undefined;
        const retrained = s.events.find((e) => e.kind === 'retrain' && e.at > drift.at);
        const settled = s.experts.every((e) => e.state === 'fresh' || (e.state === 'untrained' && e.records < 200));
        const snapshot = s.events.find((e) => e.kind === 'snapshot' && retrained && e.at >= retrained.at);
        if (!(snapshot && settled && s.trainingQueue.length === 0)) throw new Error(progress(s));
        return s;
      },
      { timeoutMs: 280_000, intervalMs: 2000 },
    );
    // No job failed on the way (the seed, for one, waits for routed records instead of failing on none).
    expect(after.events.filter((e) => e.kind === 'failure').map((e) => e.message)).toEqual([]);
    // New fine clusters joined an expert or formed new ones; a spawned expert with enough data is trained.
    const spawned = after.experts.filter((e) => e.id >= 3 && e.records >= 200);
    expect(spawned.every((e) => e.version !== null)).toBe(true);
    expect(after.centroids!.fine).toBeGreaterThan(fineBefore);
    // Prometheus sees the same: every fine cluster novelty added, and the epoch in use.
    const url = /"status":"(http:\/\/[^"]+)\/status\.json"/.exec(processor.output())?.[1];
    const metrics = await (await fetch(`${url}/metrics`)).text();
    const value = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(metrics)?.[1]);
    expect(value('modestream_fine_clusters_added_total')).toBe(after.centroids!.fine - fineBefore);
    expect(value('modestream_centroid_epoch')).toBeGreaterThanOrEqual(after.centroids!.epoch);
    // The served snapshot holds every expert of the epoch, also a spawned one still too small to train
    // (it serves with the seed): a spawn publishes a snapshot without waiting for a job.
    await waitFor('a snapshot with every expert of the newest epoch', async () => {
      const s = await status();
      const snapshot = await loadSnapshot(`${deployment.stateDir}/snapshots/v${String(s.snapshot!.version).padStart(6, '0')}`);
      const ids = snapshot.manifest.experts.map((e) => e.id);
      snapshot.dispose();
      return JSON.stringify(ids) === JSON.stringify(s.experts.map((e) => e.id)) ? ids : undefined;
    }, { timeoutMs: 30_000, intervalMs: 1000 });
    const accuracyAfter = await footwearAccuracy(after.snapshot!.version);
    console.info(`footwear zero-shot: ${(100 * accuracyBefore).toFixed(1)}% (v${before.snapshot!.version}) -> ${(100 * accuracyAfter).toFixed(1)}% (v${after.snapshot!.version}); events:\n${after.events.map((e) => `  ${e.kind} ${e.message}`).join('\n')}`);
    expect(accuracyAfter).toBeGreaterThan(accuracyBefore + 0.1);
  });

  test('the status page of the running instance shows its experts (headless Chromium, screenshot)', async () => {
    const url = /"status":"(http:\/\/[^"]+)\/status\.json"/.exec(processor.output())?.[1];
    expect(url, 'the processor logs its status URL').toBeDefined();
    const report = await status();
    const browser = await openBrowser();
    try {
      await browser.page.goto(`${url}/status`);
      const rows = browser.page.locator('[data-testid="expert-row"]');
      await expect.poll(() => rows.count(), { timeout: 15_000 }).toBe(report.experts.length);
      for (const expert of report.experts) {
        await expect.poll(() => browser.page.locator(`[data-testid="expert-row"][data-expert-id="${expert.id}"]`).count()).toBe(1);
      }
      mkdirSync(join(ROOT, 'test-results'), { recursive: true });
      await browser.page.screenshot({ path: join(ROOT, 'test-results', 'status-page-live.png'), fullPage: true });
    } finally {
      await browser.close();
    }
  });
});

const modelsDir = resolve(ROOT, process.env.MODESTREAM_TEST_MODELS_DIR ?? '.modestream/models');
const minilm = join(modelsDir, 'minilm-l6');
const minilmPresent = existsSync(minilm);
const minilmMissing = `no pulled model in ${minilm}: run \`npx modestream models pull minilm-l6\` (or set MODESTREAM_TEST_MODELS_DIR)`;
// In CI the model is part of the setup: skipping there would let a broken pull pass unnoticed.
const minilmRequired = Boolean(process.env.CI);
if (!minilmPresent && !minilmRequired) console.warn(`drift (real encoder): skipped, ${minilmMissing}`);

describe.skipIf(!minilmPresent && !minilmRequired)('drift in the real encoder space (all-MiniLM-L6-v2)', () => {
  const stationaryPairs = Number(process.env.MODESTREAM_TEST_DRIFT_STATIONARY ?? 12_000);
  const sample = process.env.MODESTREAM_TEST_DRIFT_SAMPLE ?? '6000';
  const deployment = testDeployment(brokers, {
    MODESTREAM_EMBEDDER__KIND: 'onnx',
    MODESTREAM_EMBEDDER__DIR: minilm,
    MODESTREAM_CLUSTERING__SAMPLE: sample,
    MODESTREAM_CLUSTERING__FINE: process.env.MODESTREAM_TEST_DRIFT_FINE ?? '256',
    MODESTREAM_CLUSTERING__EXPERTS: '4',
    // Detection only: no training competing for the cores.
    MODESTREAM_ROLES: 'router,sharder,controller',
    MODESTREAM_CONTROLLER__TICK_MS: '500',
  });
  let processor: Processor | undefined;
  const status = () => readStatus(deployment);
  const noveltyEvents = (s: Awaited<ReturnType<typeof status>>) => s.events.filter((e) => e.kind === 'spawn' || (e.kind === 'epoch' && e.message.includes('novel pairs')));
  const noveltyLog = () => processor!.output().split('\n').filter((l) => l.includes('novelty buffer') || l.includes('centroid epoch published') || l.includes('refined centers published'));
  const judgedNothingNew = () => noveltyLog().filter((l) => l.includes('nothing new; candidates dropped'));
  const storedAll = (n: number) =>
    waitFor(`${n} pairs stored and routed`, async () => {
      const s = await status();
      return s.totalRecords >= n && s.unrouted === 0 && s.centroids ? s : undefined;
    }, { timeoutMs: 900_000, intervalMs: 2000 });

  beforeAll(async () => {
    if (!minilmPresent) throw new Error(minilmMissing);
    processor = await startProcessor(deployment);
  });

  afterAll(async () => {
    await stopProcessor(processor);
    rmSync(deployment.stateDir, { recursive: true, force: true });
  });

  test('a stationary stream creates no fine cluster; a new family does within 3,000 of its pairs', async () => {
    const first = await produceFashionMnist(deployment, `tops,bottoms,dresses:${stationaryPairs}`, 1);
    expect(first.code, first.output).toBe(0);
    const before = await storedAll(stationaryPairs);
    // A few controller ticks for the last full buffer to be judged.
    await new Promise((r) => setTimeout(r, 8000));
    const stationary = await status();
    const judged = judgedNothingNew();
    console.info(`stationary: ${stationaryPairs} pairs, ${judged.length} novelty buffers judged and dropped; epochs and judgements:\n${noveltyLog().map((l) => `  ${l.slice(0, 1200)}`).join('\n')}`);
    // The stream had enough candidates to be judged at all (otherwise "no new cluster" proves nothing).
    expect(judged.length).toBeGreaterThanOrEqual(1);
    expect(noveltyEvents(stationary)).toEqual([]);
    expect(stationary.centroids!.fine).toBe(before.centroids!.fine);

    const second = await produceFashionMnist(deployment, 'footwear:3000', 2);
    expect(second.code, second.output).toBe(0);
    const after = await waitFor(
      'new fine clusters for footwear',
      async () => {
        const s = await status();
        return noveltyEvents(s).length > 0 ? s : undefined;
      },
      { timeoutMs: 300_000, intervalMs: 2000 },
    );
    console.info(`new family: ${noveltyEvents(after).map((e) => `${e.kind} ${e.message}`).join('; ')}`);
    expect(after.centroids!.fine).toBeGreaterThan(stationary.centroids!.fine);
  }, 1_800_000); // ~4 minutes at the default size; the full-size check (30,000 pairs) takes longer.
});
