/**
 * Centroid epochs: every routing model ever published, by epoch number. Epochs are immutable once
 * written; publishing is conditional (the epoch must not exist yet), so two processes that bootstrap at
 * the same moment cannot both win. Resolves once flushed to disk.
 */
import { z } from 'zod';
import { bytesSchema } from '../src/codec/bytes.js';
import type { CentroidModel } from '../src/cluster/model.js';
import { StateError } from '../src/errors.js';
import type { StateEnv } from './env.js';

const Spread = z.object({ min: z.number(), max: z.number(), mean: z.number(), cv: z.number() });

const StoredModel = z.object({
  epoch: z.number().int().positive(),
  dim: z.number().int().positive(),
  fine: bytesSchema,
  fineIds: bytesSchema,
  fineToExpert: bytesSchema,
  coarse: bytesSchema,
  experts: bytesSchema,
  counts: bytesSchema,
  // Optional: epochs stored before novelty radii existed load without them (see CentroidModel.radii).
  radii: bytesSchema.optional(),
  maxRatio: z.number().positive().optional(),
  createdAt: z.number(),
  refinedThrough: z.record(z.string(), z.number().int().nonnegative()).default({}),
  origins: z.record(z.string(), z.string()).default({}),
  embedder: z.string(),
  stats: z.object({
    sampleSize: z.number(),
    inertia: z.number(),
    balanced: z.boolean(),
    oneStage: z.boolean(),
    fineSpread: Spread,
    expertSpread: Spread,
  }),
});
type StoredModel = z.infer<typeof StoredModel>;

const raw = (a: Float32Array | Int32Array | Float64Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

function copyInto<T extends Float32Array | Int32Array | Float64Array>(ctor: { new (n: number): T; BYTES_PER_ELEMENT: number }, b: Uint8Array): T {
  const out = new ctor(b.byteLength / ctor.BYTES_PER_ELEMENT);
  new Uint8Array(out.buffer).set(b);
  return out;
}

export function encodeModel(m: CentroidModel): StoredModel {
  const { radii, maxRatio, ...rest } = m;
  return {
    ...rest,
    ...(maxRatio !== undefined ? { maxRatio } : {}),
    fine: raw(m.fine),
    fineIds: raw(m.fineIds),
    fineToExpert: raw(m.fineToExpert),
    coarse: raw(m.coarse),
    experts: raw(m.experts),
    counts: raw(m.counts),
    // No key at all when absent: msgpack may turn an undefined value into null, which the schema refuses.
    ...(radii ? { radii: raw(radii) } : {}),
  };
}

export function decodeModel(value: unknown): CentroidModel {
  const parsed = StoredModel.safeParse(value);
  if (!parsed.success) throw new StateError(`corrupt centroid epoch: ${parsed.error.issues[0]?.path.join('.')}: ${parsed.error.issues[0]?.message}`);
  const s = parsed.data;
  const { radii, ...rest } = s;
  const model: CentroidModel = {
    ...rest,
    ...(radii ? { radii: copyInto(Float32Array, radii) } : {}),
    refinedThrough: Object.fromEntries(Object.entries(s.refinedThrough).map(([k, v]) => [Number(k), v])),
    origins: Object.fromEntries(Object.entries(s.origins).map(([k, v]) => [Number(k), v])),
    fine: copyInto(Float32Array, s.fine),
    fineIds: copyInto(Int32Array, s.fineIds),
    fineToExpert: copyInto(Int32Array, s.fineToExpert),
    coarse: copyInto(Float32Array, s.coarse),
    experts: copyInto(Int32Array, s.experts),
    counts: copyInto(Float64Array, s.counts),
  };
  const m = model.fineIds.length;
  if (model.fine.length !== m * model.dim || model.fineToExpert.length !== m || (model.radii !== undefined && model.radii.length !== m) || model.coarse.length !== model.experts.length * model.dim) {
    throw new StateError(`corrupt centroid epoch ${model.epoch}: array sizes do not match m=${m}, dim=${model.dim}`);
  }
  return model;
}

export type CentroidStore = ReturnType<typeof createCentroidStore>;

export function createCentroidStore({ env }: { env: StateEnv }) {
  const { centroids } = env;
  let cache: CentroidModel | undefined;

  return {
    latestEpoch(): number {
      for (const key of centroids.getKeys({ reverse: true, limit: 1 })) return key;
      return 0;
    },

    /** The newest model; decoded once per epoch. */
    latest(): CentroidModel | undefined {
      const epoch = this.latestEpoch();
      if (epoch === 0) return undefined;
      if (cache?.epoch !== epoch) cache = decodeModel(centroids.get(epoch));
      return cache;
    },

    get(epoch: number): CentroidModel | undefined {
      const value = centroids.get(epoch);
      return value === undefined ? undefined : decodeModel(value);
    },

    epochs(): number[] {
      return [...centroids.getKeys()];
    },

    /** Writes `model` unless its epoch exists already; true when this call wrote it. Durable on resolve. */
    async publish(model: CentroidModel): Promise<boolean> {
      const written = await centroids.ifNoExists(model.epoch, () => {
        centroids.put(model.epoch, encodeModel(model));
      });
      await env.root.flushed;
      return written;
    },
  };
}
