/**
 * Training jobs for real: `modestream train` processes over LMDB shards, the seed then an expert
 * warm-started from it, kill -9 mid-job and a restart that resumes from the checkpoint, corrupt and
 * missing checkpoints refused clearly, and the sampler's memory bounded by the batch on a large shard.
 */
import { mkdtempSync, rmSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createRng } from '../../src/cluster/rng.js';
import { ConfigSchema } from '../../src/config.js';
import { encodeRouted, type RoutedRecord } from '../../src/contract/routed.js';
import { architectureOf } from '../../src/expert/model.js';
import { readCurrent } from '../../state/artifacts.js';
import { openStateEnv } from '../../state/env.js';
import { createModelStore, expertName, SEED } from '../../state/models.js';
import { sampleBatches } from '../../state/sampler.js';
import { createShardStore } from '../../state/shards.js';
import { cli, runCli } from '../support/processor.js';
import { waitFor } from '../support/waits.js';

const stateDir = mkdtempSync(join(tmpdir(), 'modestream-train-'));
// A small expert so that CPU training takes seconds: an 8-channel patch stem and one 3x3 stage.
const env = {
  MODESTREAM_STATE_DIR: stateDir,
  MODESTREAM_BACKEND: 'wasm',
  // The shards below hold 256-d caption embeddings: the hashed embedder's space, named explicitly.
  MODESTREAM_EMBEDDER__KIND: 'hashed',
  MODESTREAM_EXPERTS__STEM_CHANNELS: '8',
  MODESTREAM_EXPERTS__CONV_CHANNELS: '4',
  MODESTREAM_EXPERTS__IMAGE_HIDDEN: '32',
  MODESTREAM_EXPERTS__TEXT_HIDDEN: '32',
  MODESTREAM_EXPERTS__PROJECTION: '16',
  MODESTREAM_EXPERTS__TRAINING__CHECKPOINT_EVERY: '10',
  MODESTREAM_EXPERTS__TRAINING__BATCH: '32',
  MODESTREAM_LOG__LEVEL: 'info',
};

/** Four experts of 28x28 images whose pattern follows the caption's class. */
async function fillShards(dir: string, perExpert: number): Promise<Float32Array[]> {
  const stateEnv = openStateEnv({ dir });
  const store = createShardStore({ env: stateEnv, reservoirSize: 0 });
  const rng = createRng(3);
  const patterns = Array.from({ length: 8 }, () => Uint8Array.from({ length: 784 }, () => rng.nextInt(256)));
  const captions = Array.from({ length: 8 }, () => Float32Array.from({ length: 256 }, () => rng.nextGaussian() / 16));
  let n = 0;
  for (let expert = 0; expert < 4; expert++) {
    for (let start = 0; start < perExpert; start += 1000) {
      const items = Array.from({ length: Math.min(1000, perExpert - start) }, () => {
        const c = expert * 2 + rng.nextInt(2);
        const record: RoutedRecord = {
          id: `p${n++}`,
          caption: `c${c}`,
          ts: 0,
          image: { kind: 'pixels', width: 28, height: 28, channels: 1, data: patterns[c]! },
          embedding: captions[c]!,
          route: { epoch: 1, fine: c, expert, dist2: 0 },
          origin: { topic: 't', partition: 0, offset: String(n) },
        };
        return { record, bytes: encodeRouted(record) };
      });
      await store.append(items, { topic: 't', partition: 0, nextOffset: n });
    }
  }
  await stateEnv.close();
  return captions;
}

beforeAll(async () => {
  await fillShards(stateDir, 500);
});
afterAll(() => rmSync(stateDir, { recursive: true, force: true }));

describe('training jobs', () => {
  test('an expert cannot train before the seed exists', async () => {
    const result = await cli(['train', '--expert', '0', '--steps', '5'], env);
    expect(result.code).toBe(1);
    expect(result.output).toContain('no seed model yet');
  });

  test('the seed trains on all shards and is published as v1', async () => {
    const result = await cli(['train', '--seed', '--steps', '20'], env);
    expect(result.code, result.output).toBe(0);
    expect(result.stdout).toMatch(/seed: v1 after 20 steps, loss [\d.]+, \d+ samples\/s on wasm/);
    const stateEnv = openStateEnv({ dir: stateDir, readOnly: true });
    try {
      const models = createModelStore({ env: stateEnv });
      expect(models.latest(SEED)).toMatchObject({ version: 1, steps: 20, backend: 'wasm', records: 2000 });
      expect(models.job(SEED)).toMatchObject({ state: 'done', step: 20, totalSteps: 20 });
    } finally {
      await stateEnv.close();
    }
  });

  test('kill -9 during an expert job, then the same command resumes from the last checkpoint', async () => {
    const job = runCli(['train', '--expert', '1', '--steps', '60', '--no-progress'], env);
    const jobDir = join(stateDir, 'models', expertName(1), 'job');
    await waitFor('a checkpoint at step 20 or later', async () => Number((await readCurrent(jobDir))?.slice(5) ?? 0) >= 20, { timeoutMs: 120_000, intervalMs: 100 });
    job.kill('SIGKILL');
    expect((await job.exited).signal).toBe('SIGKILL');
    const checkpointed = Number((await readCurrent(jobDir))!.slice(5));

    const again = await cli(['train', '--expert', '1', '--steps', '60'], env);
    expect(again.code, again.output).toBe(0);
    expect(again.output).toContain(`resuming from checkpoint at step ${checkpointed}`);
    expect(again.stdout).toMatch(new RegExp(`expert 1: v1 after 60 steps \\(resumed at ${checkpointed}\\)`));
    const stateEnv = openStateEnv({ dir: stateDir, readOnly: true });
    try {
      const models = createModelStore({ env: stateEnv });
      expect(models.latest(expertName(1))).toMatchObject({ version: 1, steps: 60, seedVersion: 1, records: 500 });
      expect(models.job(expertName(1))).toMatchObject({ state: 'done', resumedFrom: checkpointed });
    } finally {
      await stateEnv.close();
    }
  });

  test('a corrupt checkpoint or a missing model file is refused with a clear error', async () => {
    const job = runCli(['train', '--expert', '2', '--steps', '60', '--no-progress'], env);
    const jobDir = join(stateDir, 'models', expertName(2), 'job');
    await waitFor('a first checkpoint', async () => (await readCurrent(jobDir)) !== undefined, { timeoutMs: 120_000, intervalMs: 100 });
    job.kill('SIGKILL');
    await job.exited;
    const current = (await readCurrent(jobDir))!;
    truncateSync(join(jobDir, current, 'weights.bin'), 100);
    const corrupt = await cli(['train', '--expert', '2', '--steps', '60'], env);
    expect(corrupt.code).toBe(1);
    expect(corrupt.output).toContain(`${current}/weights.bin is corrupt`);

    rmSync(join(stateDir, 'models', SEED, 'v000001', 'weights.bin'));
    const missing = await cli(['train', '--expert', '3', '--steps', '5'], env);
    expect(missing.code).toBe(1);
    expect(missing.output).toMatch(/seed\/v000001\/weights\.bin is missing/);
  });

  test('the sampler reads one batch at a time from a shard much larger than the batch', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'modestream-sampler-'));
    try {
      const captions = await fillShards(dir, 5000);
      const expertZero = new Set([captions[0]![0], captions[1]![0]]);
      const stateEnv = openStateEnv({ dir, readOnly: true });
      const store = createShardStore({ env: stateEnv, reservoirSize: 0 });
      const architecture = architectureOf({ ...ConfigSchema.parse({}).experts, stemChannels: 8 }, 256);
      let reads = 0;
      let batches = 0;
      let fromOthers = 0;
      const sampler = sampleBatches({ store, experts: [0], others: [1, 2, 3], outOfClusterShare: 0.2, batchSize: 64, architecture, rng: createRng(1), onRead: (n) => (reads += n) });
      for await (const batch of sampler) {
        expect(batch.size).toBe(64);
        // Expert 0 holds classes 0 and 1; any other caption came from another expert's shard.
        for (let i = 0; i < 64; i++) if (!expertZero.has(batch.texts[i * 256]!)) fromOthers++;
        if (++batches === 50) break;
      }
      // Draws per batch stay within the batch (plus rare retries): memory is one batch, not the shard.
      expect(reads).toBeLessThanOrEqual(50 * 64 * 1.05);
      expect(fromOthers / (50 * 64)).toBeGreaterThan(0.15);
      expect(fromOthers / (50 * 64)).toBeLessThan(0.25);
      await stateEnv.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
