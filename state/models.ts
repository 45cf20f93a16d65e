/**
 * The model store: the registry and training-job progress, in LMDB, and every file of every model, under
 * `<stateDir>/models/<name>/`. This module alone names those files and directories:
 *   v000001/, v000002/ ...   published versions (model.json + weights.bin), written atomically, immutable
 *   job/ckpt-000000400/ ... + job/CURRENT   the running job's checkpoints (model, optimizer, job.json)
 * Directories are written with state/artifacts.ts (temp dir, fsync, rename; CURRENT replaced by rename).
 * A version is registered only after its directory is complete and fsynced, so the registry never
 * names a partial model. Job progress is what `status` shows; it is advisory (last write wins).
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { StateError } from '../src/errors.js';
import { OPTIMIZER_WEIGHTS_FILE, WEIGHTS_FILE } from '../src/expert/checkpoint.js';
import { ExpertArchitecture } from '../src/expert/model.js';
import { pruneDirectories, readCurrent, readFiles, setCurrent, writeDirectoryAtomically } from './artifacts.js';
import type { StateEnv } from './env.js';
import { parseStored } from './stored.js';

export const SEED = 'seed';
export const expertName = (expert: number) => `expert-${expert}`;
export const versionDir = (version: number) => `v${String(version).padStart(6, '0')}`;
export const checkpointDir = (step: number) => `ckpt-${String(step).padStart(9, '0')}`;

const MODEL_JSON = 'model.json';
const OPTIMIZER_JSON = 'optimizer.json';
const JOB_JSON = 'job.json';
/** Checkpoints kept per job directory, the one CURRENT names always among them. */
const KEEP_CHECKPOINTS = 2;

/** A model's files (the TensorFlow.js artifact layout; src/expert/checkpoint.ts makes and reads the bytes). */
export interface ModelFiles {
  modelJson: string;
  weights: Uint8Array;
}

/** A job's checkpoint: the model, the optimizer state and the job's own facts (JSON). */
export interface CheckpointFiles extends ModelFiles {
  optimizerJson: string;
  optimizerWeights: Uint8Array;
  job: string;
}

export const ModelVersion = z.object({
  version: z.number().int().positive(),
  createdAt: z.number(),
  steps: z.number().int().nonnegative(),
  loss: z.number(),
  /** Records in the model's shard(s) when its job started: freshness is measured against it. */
  records: z.number().int().nonnegative(),
  /** Experts: the shard's next sequence number when the job started (records from there are pending). */
  shardSeq: z.number().int().nonnegative().optional(),
  /** Experts spawned or split off: the model they were warm-started from. */
  warmStartedFrom: z.string().optional(),
  backend: z.string(),
  samplesPerSecond: z.number(),
  /** Experts: the seed version they branched from. */
  seedVersion: z.number().int().positive().optional(),
  /** Centroid epoch in force when the job started. */
  epoch: z.number().int().nonnegative(),
});
export type ModelVersion = z.infer<typeof ModelVersion>;

const ModelEntry = z.object({ name: z.string(), versions: z.array(ModelVersion) });
export type ModelEntry = z.infer<typeof ModelEntry>;

export const JobStatus = z.object({
  name: z.string(),
  state: z.enum(['running', 'done', 'failed']),
  step: z.number().int().nonnegative(),
  totalSteps: z.number().int().positive(),
  loss: z.number().nullable(),
  samplesPerSecond: z.number().nullable(),
  backend: z.string(),
  adapter: z.string().optional(),
  pid: z.number().int(),
  startedAt: z.number(),
  updatedAt: z.number(),
  resumedFrom: z.number().int().optional(),
  error: z.string().optional(),
});
export type JobStatus = z.infer<typeof JobStatus>;

/** A job's own facts, written into each of its checkpoints (job.json): a resumed job must match them. */
export const JobFacts = z.object({
  name: z.string(),
  totalSteps: z.number().int().positive(),
  batch: z.number().int().positive(),
  architecture: ExpertArchitecture,
  seedVersion: z.number().int().positive().optional(),
  warmStartedFrom: z.string().optional(),
  records: z.number().int().nonnegative(),
  shardSeq: z.number().int().nonnegative().optional(),
  epoch: z.number().int().nonnegative(),
  startedAt: z.number(),
});
export type JobFacts = z.infer<typeof JobFacts>;

/** job.json of a checkpoint directory, parsed; unreadable JSON or a wrong shape is a StateError naming the file. */
function parseJobFacts(text: string, file: string): JobFacts {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new StateError(`corrupt job facts ${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
  return parseStored(JobFacts, value, `job facts ${file}`);
}

export type ModelStore = ReturnType<typeof createModelStore>;

export function createModelStore({ env }: { env: StateEnv }) {
  const { models, jobs } = env;
  const root = join(env.dir, 'models');

  const entry = (name: string): ModelEntry | undefined => {
    const raw = models.get(name);
    return raw === undefined ? undefined : parseStored(ModelEntry, raw, `model registry entry ${name}`);
  };

  const jobOf = (name: string, value: unknown): JobStatus => parseStored(JobStatus, value, `training job ${name}`);

  // `<stateDir>/models/<name>`: published versions, and job/ for the running job's checkpoints.
  const dirOf = (name: string) => join(root, name);
  const jobDirOf = (name: string) => join(root, name, 'job');
  const versionPath = (name: string, version: number) => join(root, name, versionDir(version));

  return {
    /**
     * Writes a version's directory atomically; `register` it afterwards. A directory of a version that is
     * not registered is what a writer killed between the two steps left behind: it is replaced, or the
     * retried job would fail on it forever.
     */
    async writeVersion(name: string, version: number, files: ModelFiles): Promise<void> {
      if (!entry(name)?.versions.some((v) => v.version === version)) await rm(versionPath(name, version), { recursive: true, force: true });
      await writeDirectoryAtomically(dirOf(name), versionDir(version), { [MODEL_JSON]: files.modelJson, [WEIGHTS_FILE]: files.weights });
    },

    /** A published version's files and directory; a missing file is a StateError naming it. */
    async readVersion(name: string, version: number): Promise<ModelFiles & { dir: string }> {
      const dir = versionPath(name, version);
      const files = await readFiles(dir, [MODEL_JSON, WEIGHTS_FILE]);
      return { dir, modelJson: files[MODEL_JSON]!.toString(), weights: files[WEIGHTS_FILE]! };
    },

    /** Writes the job's checkpoint at `step` atomically, points job/CURRENT at it and prunes older ones. */
    async writeCheckpoint(name: string, step: number, files: CheckpointFiles): Promise<void> {
      const jobDir = jobDirOf(name);
      const ckpt = checkpointDir(step);
      await writeDirectoryAtomically(jobDir, ckpt, {
        [MODEL_JSON]: files.modelJson,
        [WEIGHTS_FILE]: files.weights,
        [OPTIMIZER_JSON]: files.optimizerJson,
        [OPTIMIZER_WEIGHTS_FILE]: files.optimizerWeights,
        [JOB_JSON]: files.job,
      });
      await setCurrent(jobDir, ckpt);
      await pruneDirectories(jobDir, { keep: KEEP_CHECKPOINTS, prefix: 'ckpt-' });
    },

    /**
     * The job's current checkpoint, if any, with its job.json parsed as `facts`; a missing file or
     * corrupt facts are a StateError naming the file.
     */
    async readCheckpoint(name: string): Promise<(CheckpointFiles & { dir: string; facts: JobFacts }) | undefined> {
      const current = await readCurrent(jobDirOf(name));
      if (!current) return undefined;
      const dir = join(jobDirOf(name), current);
      const files = await readFiles(dir, [MODEL_JSON, WEIGHTS_FILE, OPTIMIZER_JSON, OPTIMIZER_WEIGHTS_FILE, JOB_JSON]);
      const job = files[JOB_JSON]!.toString();
      return {
        dir,
        facts: parseJobFacts(job, join(dir, JOB_JSON)),
        modelJson: files[MODEL_JSON]!.toString(),
        weights: files[WEIGHTS_FILE]!,
        optimizerJson: files[OPTIMIZER_JSON]!.toString(),
        optimizerWeights: files[OPTIMIZER_WEIGHTS_FILE]!,
        job,
      };
    },

    /** Removes the job's checkpoints (the job finished, or they belong to a job with other settings). */
    async discardJob(name: string): Promise<void> {
      await rm(jobDirOf(name), { recursive: true, force: true });
    },

    latest(name: string): ModelVersion | undefined {
      return entry(name)?.versions.at(-1);
    },

    versions(name: string): ModelVersion[] {
      return entry(name)?.versions ?? [];
    },

    names(): string[] {
      return [...models.getKeys()];
    },

    nextVersion(name: string): number {
      return (entry(name)?.versions.at(-1)?.version ?? 0) + 1;
    },

    /** Registers a version whose directory is already complete; conditional on nobody having taken it. */
    async register(name: string, version: ModelVersion): Promise<void> {
      await env.root.transaction(() => {
        const current = entry(name) ?? { name, versions: [] };
        if (current.versions.some((v) => v.version === version.version)) throw new StateError(`${name} version ${version.version} is registered already`);
        // Sorted: versions trained elsewhere arrive over the models topic in any order (app/model-replica.ts).
        models.put(name, { name, versions: [...current.versions, version].sort((a, b) => a.version - b.version) });
      });
      await env.root.flushed;
    },

    job(name: string): JobStatus | undefined {
      const value = jobs.get(name);
      return value === undefined ? undefined : jobOf(name, value);
    },

    jobs(): JobStatus[] {
      return [...jobs.getRange()].map(({ key, value }) => jobOf(key, value));
    },

    async reportJob(status: JobStatus): Promise<void> {
      await jobs.put(status.name, status);
    },
  };
}
