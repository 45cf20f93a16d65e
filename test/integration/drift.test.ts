/**
 * Continual learning end to end on a drifting Fashion-MNIST feed, for real: a `modestream run` process
 * (router, sharder, controller, trainer, http) against the local broker, fed with tops and trousers
 * first; it bootstraps, trains the seed and the experts, publishes a snapshot. Then footwear appears:
 * novel pairs become new fine clusters (joining an expert or spawning one), the experts that received
 * them are retrained by the scheduler, a new snapshot is published, and its zero-shot accuracy on the
 * footwear classes is clearly above the previous snapshot's.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import { fashionMnistTestSet, zeroShotReport, type TestSet } from '../../app/eval/fashion-mnist.js';
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
    MODESTREAM_EXPERTS__TRAINING__SEED_STEPS: '300',
    MODESTREAM_EXPERTS__TRAINING__STEPS: '150',
    MODESTREAM_EXPERTS__TRAINING__CHECKPOINT_EVERY: '50',
    MODESTREAM_CONTROLLER__SEED_MIN_RECORDS: '2000',
    MODESTREAM_CONTROLLER__TICK_MS: '500',
    MODESTREAM_CONTROLLER__RETRAIN__PENDING_RECORDS: '400',
    MODESTREAM_CONTROLLER__RETRAIN__MIN_RECORDS: '200',
    MODESTREAM_CONTROLLER__DRIFT__NOVELTY_DISTANCE: '1.2',
    MODESTREAM_CONTROLLER__DRIFT__BUFFER_SIZE: '300',
    MODESTREAM_CONTROLLER__DRIFT__NEW_CLUSTERS: '6',
    MODESTREAM_CONTROLLER__DRIFT__MIN_CLUSTER_SIZE: '15',
    MODESTREAM_CLUSTERING__REFINE__ENABLED: 'false',
  });
  let processor: Processor;
  let footwearTest: TestSet;

  const status = () => readStatus(deployment);
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
        return ready ? s : undefined;
      },
      { timeoutMs: 600_000, intervalMs: 2000 },
    );
    const epochBefore = before.centroids!.epoch;
    const fineBefore = before.centroids!.fine;
    const accuracyBefore = await footwearAccuracy(before.snapshot!.version);

    const second = await produce('footwear:3000', 2);
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
        return snapshot && settled && s.trainingQueue.length === 0 ? s : undefined;
      },
      { timeoutMs: 600_000, intervalMs: 2000 },
    );
    // New fine clusters joined an expert or formed new ones; a spawned expert with enough data is trained.
    const spawned = after.experts.filter((e) => e.id >= 3 && e.records >= 200);
    expect(spawned.every((e) => e.version !== null)).toBe(true);
    expect(after.centroids!.fine).toBeGreaterThan(fineBefore);
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
