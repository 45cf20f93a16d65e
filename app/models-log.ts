/**
 * Trained weights on the models topic (ARCHITECTURE.md section 4): each published model version (the seed
 * or an expert: model.json, weights.bin and its registry facts) travels as chunks of at most CHUNK_BYTES,
 * so any node can assemble and serve complete snapshots. Pure: encoding, decoding and reassembly.
 *
 * Keys are `<model name>/<chunk index>`: compaction keeps the newest value per key, so a model's newest
 * version always survives whole, and a chunk left over from an older, longer version is recognisably
 * another version and is ignored.
 */
import { createHash } from 'node:crypto';
import { Packr } from 'msgpackr';
import { z } from 'zod';
import { ModelVersion, type ModelFiles } from '../state/models.js';

/** Well under the broker's default message size limit (1 MB) whatever the topic's own limit says. */
export const CHUNK_BYTES = 512 * 1024;

const packr = new Packr({ useRecords: false });

const bytes = z.custom<Uint8Array>((v) => v instanceof Uint8Array, { message: 'expected bytes' });

export const ModelChunk = z.object({
  name: z.string().regex(/^(seed|expert-\d+)$/, { message: 'expected "seed" or "expert-N"' }),
  version: z.number().int().positive(),
  index: z.number().int().nonnegative(),
  count: z.number().int().positive(),
  /** SHA-256 of the whole payload (hex): a version is applied only when its reassembled bytes match. */
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  info: ModelVersion,
  part: bytes,
});
export type ModelChunk = z.infer<typeof ModelChunk>;

const Payload = z.object({ modelJson: z.string(), weights: bytes });

/** A version as it travels: its name, its registry facts and its files. */
export interface ModelRelease {
  name: string;
  info: ModelVersion;
  files: ModelFiles;
}

export interface ModelMessage {
  key: string;
  value: Buffer;
}

export const chunkKey = (name: string, index: number) => `${name}/${index}`;

export function encodeRelease({ name, info, files }: ModelRelease, chunkBytes = CHUNK_BYTES): ModelMessage[] {
  const payload = packr.pack({ modelJson: files.modelJson, weights: files.weights });
  const sha256 = createHash('sha256').update(payload).digest('hex');
  const count = Math.max(1, Math.ceil(payload.byteLength / chunkBytes));
  return Array.from({ length: count }, (_, index) => {
    const part = payload.subarray(index * chunkBytes, (index + 1) * chunkBytes);
    const chunk: ModelChunk = { name, version: info.version, index, count, sha256, info, part };
    return { key: chunkKey(name, index), value: packr.pack(chunk) };
  });
}

export type Decoded = { ok: true; chunk: ModelChunk } | { ok: false; detail: string };

export function decodeChunk(value: Buffer | null): Decoded {
  if (!value) return { ok: false, detail: 'empty message' };
  let raw: unknown;
  try {
    raw = packr.unpack(value);
  } catch (err) {
    return { ok: false, detail: `not msgpack: ${(err as Error).message}` };
  }
  const parsed = ModelChunk.safeParse(raw);
  if (!parsed.success) return { ok: false, detail: `${parsed.error.issues[0]?.path.join('.')}: ${parsed.error.issues[0]?.message}` };
  return { ok: true, chunk: parsed.data };
}

export type Assembled = { kind: 'release'; release: ModelRelease } | { kind: 'corrupt'; name: string; version: number; detail: string };

/**
 * Collects chunks per model name; a version is complete when all its chunks have arrived. A chunk of a
 * newer version starts over (the older one can no longer complete: its chunks were superseded); a chunk
 * of an older version than the one collecting is ignored.
 */
export function createModelAssembler() {
  const pending = new Map<string, { version: number; sha256: string; parts: (Uint8Array | undefined)[]; info: ModelVersion; have: number }>();
  return {
    accept(chunk: ModelChunk): Assembled | undefined {
      let entry = pending.get(chunk.name);
      if (entry && chunk.version < entry.version) return undefined;
      if (!entry || chunk.version > entry.version || entry.sha256 !== chunk.sha256) {
        entry = { version: chunk.version, sha256: chunk.sha256, parts: new Array(chunk.count), info: chunk.info, have: 0 };
        pending.set(chunk.name, entry);
      }
      if (chunk.index >= entry.parts.length || entry.parts[chunk.index]) return undefined;
      entry.parts[chunk.index] = chunk.part;
      entry.have++;
      if (entry.have < entry.parts.length) return undefined;
      pending.delete(chunk.name);
      const payload = Buffer.concat(entry.parts as Uint8Array[]);
      const { name, version } = chunk;
      if (createHash('sha256').update(payload).digest('hex') !== entry.sha256) return { kind: 'corrupt', name, version, detail: 'SHA-256 of the reassembled chunks does not match' };
      let files: z.infer<typeof Payload>;
      try {
        files = Payload.parse(packr.unpack(payload));
      } catch (err) {
        return { kind: 'corrupt', name, version, detail: `unreadable payload: ${(err as Error).message}` };
      }
      return { kind: 'release', release: { name, info: entry.info, files } };
    },
  };
}
