/**
 * A centroid epoch as plain msgpack-able values and back: typed arrays become little-endian bytes, and
 * decoding re-validates with zod. One form for LMDB (state/centroids.ts) and for the control topic
 * (streams/control-log.ts), so an epoch read from either is checked the same way.
 */
import { z } from 'zod';
import { bytesSchema } from '../codec/bytes.js';
import { StateError } from '../errors.js';
import type { CentroidModel } from './model.js';

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
export type StoredModel = z.infer<typeof StoredModel>;

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
