/**
 * The model registry and training-job progress, in LMDB, plus the files of each model under
 * `<stateDir>/models/<name>/`:
 *   v000001/, v000002/ ...   published versions (model.json + weights.bin), written atomically, immutable
 *   job/ckpt-000400/ ... + job/CURRENT   the running job's checkpoints (model, optimizer, job.json)
 * A version is registered only after its directory is complete and fsynced, so the registry never
 * names a partial model. Job progress is what `status` shows; it is advisory (last write wins).
 */
import { join } from 'node:path';
import { z } from 'zod';
import { StateError } from '../src/errors.js';
import type { StateEnv } from './env.js';

export const SEED = 'seed';
export const expertName = (expert: number) => `expert-${expert}`;
export const versionDir = (version: number) => `v${String(version).padStart(6, '0')}`;

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

export type ModelStore = ReturnType<typeof createModelStore>;

export function createModelStore({ env }: { env: StateEnv }) {
  const { models, jobs } = env;
  const root = join(env.dir, 'models');

  const entry = (name: string): ModelEntry | undefined => {
    const raw = models.get(name);
    if (raw === undefined) return undefined;
    const parsed = ModelEntry.safeParse(raw);
    if (!parsed.success) throw new StateError(`corrupt model registry entry ${name}: ${parsed.error.issues[0]?.message}`);
    return parsed.data;
  };

  return {
    /** `<stateDir>/models/<name>`: published versions live below it. */
    dirOf: (name: string) => join(root, name),
    jobDirOf: (name: string) => join(root, name, 'job'),
    versionPath: (name: string, version: number) => join(root, name, versionDir(version)),

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
        models.put(name, { name, versions: [...current.versions, version] });
      });
      await env.root.flushed;
    },

    job(name: string): JobStatus | undefined {
      const parsed = JobStatus.safeParse(jobs.get(name));
      return parsed.success ? parsed.data : undefined;
    },

    jobs(): JobStatus[] {
      return [...jobs.getRange()].flatMap(({ value }) => {
        const parsed = JobStatus.safeParse(value);
        return parsed.success ? [parsed.data] : [];
      });
    },

    async reportJob(status: JobStatus): Promise<void> {
      await jobs.put(status.name, status);
    },
  };
}
