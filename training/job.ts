/**
 * One training job, a function of its options: the seed model on a sample of all shards, or one expert
 * on its shard (plus out-of-cluster pairs), warm-started from the latest seed. Checkpoints (model +
 * optimizer + job facts) are written atomically every `checkpointEvery` steps; a job started again after
 * a crash resumes from the last one. The finished model is published as the next version and
 * registered. `modestream train` calls it in its own process; the scheduler runs it in a child process
 * (job-process.ts).
 */
import { UNROUTED } from '../src/contract/routed.js';
import { createRng } from '../src/cluster/rng.js';
import type { Config } from '../src/config.js';
import { EnvironmentError, errorMessage } from '../src/errors.js';
import { deserializeModel, deserializeOptimizer, serializeModel, serializeOptimizer } from '../src/expert/checkpoint.js';
import { architectureOf, createExpertModel, disposeModel, type ExpertModel } from '../src/expert/model.js';
import { createAdamWState, disposeAdamWState, type AdamWState } from '../src/expert/optimizer.js';
import { trainExpert, type TrainProgress } from '../src/expert/train.js';
import type { Logger } from '../src/logger.js';
import { createModelStore, expertName, SEED, type JobFacts, type ModelStore, type ModelVersion } from '../state/models.js';
import { sampleBatches, type SamplerOptions } from '../state/sampler.js';
import type { SeedSample } from '../state/seed-sample.js';
import { openCore, type Core } from '../app/core.js';

/**
 * `from: 'sample'`: the seed trains on the cluster-wide seed sample (a node that holds only some routed
 * partitions); default: on the local shards, which on one machine hold the whole stream.
 */
export type TrainTarget = { kind: 'seed'; from?: 'sample' | 'shards' } | { kind: 'expert'; expert: number };

export interface TrainJobOptions {
  config: Config;
  logger: Logger;
  target: TrainTarget;
  /** Overrides experts.training.steps / seedSteps and .batch. */
  steps?: number;
  batch?: number;
  onProgress?: (p: TrainProgress & { resumedFrom?: number }) => void;
  signal?: AbortSignal;
  /** An already open core (tests, `train --all`); otherwise one is opened and closed here. */
  core?: Core;
}

export interface TrainJobResult {
  name: string;
  version: number;
  steps: number;
  loss: number;
  samplesPerSecond: number;
  resumedFrom?: number;
  stopped: boolean;
}


/** The seed sample as the sampler's one shard (id 0): its slots, filled from 0, are the sequence numbers. */
function sampleAsShard(sample: SeedSample): SamplerOptions['store'] {
  const size = sample.size();
  return { shardSize: () => ({ records: size, nextSeq: size }), get: (_shard, slot) => sample.get(slot) };
}

export async function runTrainingJob(options: TrainJobOptions): Promise<TrainJobResult> {
  const core = options.core ?? (await openCore(options.config, options.logger));
  try {
    return await trainWith(core, options);
  } finally {
    if (!options.core) await core.close();
  }
}

async function trainWith(core: Core, { config, logger, target, steps, batch, onProgress, signal }: TrainJobOptions): Promise<TrainJobResult> {
  const settings = config.experts.training;
  const models = createModelStore({ env: core.env });
  const name = target.kind === 'seed' ? SEED : expertName(target.expert);
  const architecture = architectureOf(config.experts, core.embedder.dim);
  const experts = core.store.expertStats().filter((s) => s.expert !== UNROUTED && s.records > 0).map((s) => s.expert);
  // Until the sample holds a batch, the seed trains on what is here rather than waiting.
  const fromSample = target.kind === 'seed' && target.from === 'sample' && core.seedSample.size() >= (batch ?? settings.batch);
  const source = fromSample ? sampleAsShard(core.seedSample) : core.store;
  const jobExperts = fromSample ? [0] : target.kind === 'seed' ? experts : [target.expert];
  const records = jobExperts.reduce((sum, e) => sum + source.shardSize(e).records, 0);
  if (records === 0) throw new EnvironmentError(`${name}: no records to train on yet (${target.kind === 'seed' ? 'no expert shard has records' : `expert ${target.expert}'s shard is empty`})`);

  const fresh: JobFacts = {
    name,
    totalSteps: steps ?? (target.kind === 'seed' ? settings.seedSteps : settings.steps),
    batch: batch ?? settings.batch,
    architecture,
    records,
    ...(target.kind === 'expert' ? { shardSeq: core.store.shardSize(target.expert).nextSeq } : {}),
    epoch: core.centroids.latestEpoch(),
    startedAt: Date.now(),
  };
  const resumed = await loadCheckpoint(models, name, fresh, logger);
  let model: ExpertModel;
  let optimizer: AdamWState;
  let facts: JobFacts;
  if (resumed) {
    ({ model, optimizer, facts } = resumed);
    logger.info({ name, step: optimizer.step, totalSteps: facts.totalSteps }, 'resuming training from checkpoint');
  } else {
    facts = fresh;
    if (target.kind === 'seed') model = createExpertModel({ architecture, seed: settings.seed });
    else {
      const seed = models.latest(SEED);
      if (!seed) throw new EnvironmentError(`${name}: no seed model yet; train it first (modestream train --seed, or --all)`);
      // An expert continues from its own newest version; a new one (spawned, split off) from the model
      // the drift logic named, else from the seed (ARCHITECTURE.md section 2: experts branch from the seed).
      const origin = core.centroids.latest()?.origins[target.expert];
      const from = models.latest(name) ? name : origin && models.latest(origin) ? origin : SEED;
      const version = models.latest(from)!.version;
      model = await loadVersion(models, from, version);
      facts.seedVersion = seed.version;
      if (from !== SEED) facts.warmStartedFrom = `${from}@v${version}`;
      if (JSON.stringify(model.architecture) !== JSON.stringify(architecture)) {
        disposeModel(model);
        throw new EnvironmentError(`${name}: ${from} v${version} has another architecture than experts.* configures now; retrain the seed`);
      }
    }
    optimizer = createAdamWState(model.params);
  }

  const resumedFrom = resumed ? optimizer.step : undefined;
  const backend = core.backend.name;
  const startedAt = Date.now();
  let last: TrainProgress | undefined;
  let reportedAt = 0;
  const report = async (state: 'running' | 'done' | 'failed', error?: string) =>
    models.reportJob({
      name,
      state,
      step: optimizer.step,
      totalSteps: facts.totalSteps,
      loss: last?.loss ?? null,
      samplesPerSecond: last?.samplesPerSecond ?? null,
      backend,
      ...(core.backend.adapter ? { adapter: core.backend.adapter } : {}),
      pid: process.pid,
      startedAt,
      updatedAt: Date.now(),
      ...(resumedFrom !== undefined ? { resumedFrom } : {}),
      ...(error ? { error } : {}),
    });

  try {
    await report('running');
    const result = await trainExpert({
      model,
      optimizer,
      settings,
      totalSteps: facts.totalSteps,
      batches: sampleBatches({
        store: source,
        experts: jobExperts,
        others: target.kind === 'expert' ? experts.filter((e) => e !== target.expert) : [],
        outOfClusterShare: target.kind === 'expert' ? settings.outOfClusterShare : 0,
        batchSize: facts.batch,
        architecture,
        // Resumed jobs draw a different stream of batches, not the start of the same one again.
        rng: createRng(settings.seed * 7919 + optimizer.step),
      }),
      checkpointEvery: settings.checkpointEvery,
      signal,
      onStep: async (progress) => {
        last = progress;
        onProgress?.({ ...progress, ...(resumedFrom !== undefined ? { resumedFrom } : {}) });
        if (Date.now() - reportedAt > 2000) {
          reportedAt = Date.now();
          await report('running');
        }
      },
      onCheckpoint: (step) => writeCheckpoint(models, name, model, optimizer, facts, step),
    });
    if (result.stopped) {
      await report('running');
      return { name, version: 0, steps: result.step, loss: result.lastLoss, samplesPerSecond: last?.samplesPerSecond ?? 0, resumedFrom, stopped: true };
    }
    const version = await publish(models, name, model, {
      createdAt: Date.now(),
      steps: result.step,
      loss: result.lastLoss,
      records: facts.records,
      backend,
      samplesPerSecond: last?.samplesPerSecond ?? 0,
      ...(facts.seedVersion !== undefined ? { seedVersion: facts.seedVersion } : {}),
      ...(facts.shardSeq !== undefined ? { shardSeq: facts.shardSeq } : {}),
      ...(facts.warmStartedFrom !== undefined ? { warmStartedFrom: facts.warmStartedFrom } : {}),
      epoch: facts.epoch,
    });
    await report('done');
    await models.discardJob(name);
    logger.info({ name, version, steps: result.step, loss: result.lastLoss, backend }, 'model published');
    return { name, version, steps: result.step, loss: result.lastLoss, samplesPerSecond: last?.samplesPerSecond ?? 0, resumedFrom, stopped: false };
  } catch (err) {
    await report('failed', errorMessage(err)).catch(() => undefined);
    throw err;
  } finally {
    disposeAdamWState(optimizer);
    disposeModel(model);
  }
}

async function writeCheckpoint(models: ModelStore, name: string, model: ExpertModel, optimizer: AdamWState, facts: JobFacts, step: number): Promise<void> {
  const [m, o] = await Promise.all([serializeModel(model, { name, step }), serializeOptimizer(optimizer)]);
  await models.writeCheckpoint(name, step, { modelJson: m.modelJson, weights: m.weights, optimizerJson: o.json, optimizerWeights: o.weights, job: JSON.stringify(facts) });
}

/**
 * The job's last checkpoint, when it belongs to the same job (same step budget, batch and
 * architecture); otherwise the stale job is discarded and training starts over.
 */
async function loadCheckpoint(models: ModelStore, name: string, fresh: JobFacts, logger: Logger): Promise<{ model: ExpertModel; optimizer: AdamWState; facts: JobFacts } | undefined> {
  const checkpoint = await models.readCheckpoint(name);
  if (!checkpoint) return undefined;
  const { dir } = checkpoint;
  const { facts } = checkpoint;
  const same = facts.totalSteps === fresh.totalSteps && facts.batch === fresh.batch && JSON.stringify(facts.architecture) === JSON.stringify(fresh.architecture);
  if (!same) {
    logger.warn({ name, checkpoint: dir }, 'discarding a checkpoint of a job with other settings');
    await models.discardJob(name);
    return undefined;
  }
  const { model } = deserializeModel(checkpoint.modelJson, checkpoint.weights, dir);
  try {
    const optimizer = deserializeOptimizer(checkpoint.optimizerJson, checkpoint.optimizerWeights, model, dir);
    return { model, optimizer, facts };
  } catch (err) {
    disposeModel(model);
    throw err;
  }
}

/** Loads a published version; a missing or corrupt file is a StateError naming it. */
export async function loadVersion(models: ModelStore, name: string, version: number): Promise<ExpertModel> {
  const { dir, modelJson, weights } = await models.readVersion(name, version);
  return deserializeModel(modelJson, weights, dir).model;
}

async function publish(models: ModelStore, name: string, model: ExpertModel, facts: Omit<ModelVersion, 'version'>): Promise<number> {
  const version = models.nextVersion(name);
  await models.writeVersion(name, version, await serializeModel(model, { name, version, ...facts }));
  await models.register(name, { version, ...facts });
  return version;
}
