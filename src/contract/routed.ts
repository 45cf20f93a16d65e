/**
 * A routed pair: the validated input plus its caption embedding and its route (fine cluster, expert,
 * centroid epoch). It travels on the `routed` topic and is what a shard stores, in one msgpack form.
 * Vectors travel as raw bytes (see codec/bytes.ts); decoding re-validates with zod because the
 * producer may be another modestream version. An encoded image (JPEG, PNG...) travels twice: decoded
 * once at ingestion to the model's input size (`img`, what training reads) and as received (`raw`,
 * what an export hands on), so nothing downstream decodes it again.
 */
import { Packr } from 'msgpackr';
import { z } from 'zod';
import { bytesSchema, bytesToF32, f32ToBytes } from '../codec/bytes.js';
import type { DecodedImage } from './image.js';

export const UNROUTED = -1;

export interface OriginalImage {
  /** 'jpeg', 'png', 'webp', 'gif' or 'avif'. */
  format: string;
  bytes: Uint8Array;
}

const WireImage = z.discriminatedUnion('k', [
  z.object({
    k: z.literal('p'),
    w: z.number().int().positive(),
    h: z.number().int().positive(),
    c: z.union([z.literal(1), z.literal(3)]),
    d: bytesSchema,
  }),
  z.object({ k: z.literal('e'), d: bytesSchema }),
]);

const WireRoute = z.object({
  /** centroid epoch the route was computed with */
  e: z.number().int().nonnegative(),
  /** fine cluster id */
  f: z.number().int().nonnegative(),
  /** expert id */
  x: z.number().int().nonnegative(),
  /** squared L2 distance to the fine center (novelty detection) */
  d: z.number().nonnegative(),
});

export const WireRoutedSchema = z.object({
  v: z.literal(1),
  id: z.string().min(1),
  cap: z.string(),
  src: z.string().optional(),
  ts: z.number(),
  meta: z.record(z.string(), z.unknown()).optional(),
  img: WireImage,
  /** The image file as received, when it came encoded: format and bytes. */
  raw: z.object({ f: z.string().min(1), d: bytesSchema }).optional(),
  emb: bytesSchema,
  route: WireRoute.nullable(),
  o: z.object({ t: z.string(), p: z.number().int().nonnegative(), o: z.string() }),
});

export type WireRouted = z.infer<typeof WireRoutedSchema>;

export interface Route {
  epoch: number;
  fine: number;
  expert: number;
  dist2: number;
}

export interface RoutedRecord {
  id: string;
  caption: string;
  source?: string;
  /** Event time, ms since epoch: the pair's `ts`, else the Kafka timestamp. */
  ts: number;
  meta?: Record<string, unknown>;
  /** At the model's input size when the pair came with an encoded image (decoded once, at ingestion). */
  image: DecodedImage;
  /** The encoded image file as received (absent for pixel and embedding images). */
  original?: OriginalImage;
  /** L2-normalised caption embedding. */
  embedding: Float32Array;
  /** null while no centroid model exists yet (bootstrap): stored unrouted, routed later. */
  route: Route | null;
  /** Where the pair entered: input topic, partition, offset. */
  origin: { topic: string; partition: number; offset: string };
}

/**
 * A routed record with the bytes it travels and is stored as. Here, below both the sharder (which
 * decodes them) and the shard store (which writes them), so neither has to import the other.
 */
export interface EncodedRecord {
  record: RoutedRecord;
  bytes: Buffer;
}

// `useRecords: false`: plain msgpack maps, readable by any msgpack decoder (kcat | msgpack tools).
const packr = new Packr({ useRecords: false });

export function toWire(r: RoutedRecord): WireRouted {
  const wire: WireRouted = {
    v: 1,
    id: r.id,
    cap: r.caption,
    ts: r.ts,
    img:
      r.image.kind === 'pixels'
        ? { k: 'p', w: r.image.width, h: r.image.height, c: r.image.channels, d: Buffer.from(r.image.data.buffer, r.image.data.byteOffset, r.image.data.byteLength) }
        : { k: 'e', d: f32ToBytes(r.image.values) },
    emb: f32ToBytes(r.embedding),
    route: r.route && { e: r.route.epoch, f: r.route.fine, x: r.route.expert, d: r.route.dist2 },
    o: { t: r.origin.topic, p: r.origin.partition, o: r.origin.offset },
  };
  if (r.source !== undefined) wire.src = r.source;
  if (r.meta !== undefined) wire.meta = r.meta;
  if (r.original !== undefined) wire.raw = { f: r.original.format, d: Buffer.from(r.original.bytes.buffer, r.original.bytes.byteOffset, r.original.bytes.byteLength) };
  return wire;
}

export function fromWire(w: WireRouted): RoutedRecord {
  const record: RoutedRecord = {
    id: w.id,
    caption: w.cap,
    ts: w.ts,
    // Copies: decoded Buffers may alias a reused read buffer (LMDB, kafkajs).
    image:
      w.img.k === 'p'
        ? { kind: 'pixels', width: w.img.w, height: w.img.h, channels: w.img.c, data: new Uint8Array(w.img.d) }
        : { kind: 'embedding', values: bytesToF32(w.img.d) },
    embedding: bytesToF32(w.emb),
    route: w.route && { epoch: w.route.e, fine: w.route.f, expert: w.route.x, dist2: w.route.d },
    origin: { topic: w.o.t, partition: w.o.p, offset: w.o.o },
  };
  if (w.src !== undefined) record.source = w.src;
  if (w.meta !== undefined) record.meta = w.meta;
  if (w.raw !== undefined) record.original = { format: w.raw.f, bytes: new Uint8Array(w.raw.d) };
  return record;
}

export function encodeRouted(r: RoutedRecord): Buffer {
  return packr.pack(toWire(r));
}

export type DecodeResult = { ok: true; record: RoutedRecord } | { ok: false; detail: string };

/** Never throws: a record this version cannot read is reported (and dead-lettered by the caller). */
export function decodeRouted(value: Buffer | null): DecodeResult {
  if (!value) return { ok: false, detail: 'empty routed record' };
  let raw: unknown;
  try {
    raw = packr.unpack(value);
  } catch (err) {
    return { ok: false, detail: `not msgpack: ${(err as Error).message}` };
  }
  const parsed = WireRoutedSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return { ok: false, detail: `routed record: ${issue?.path.join('.') || '(root)'}: ${issue?.message}` };
  }
  return { ok: true, record: fromWire(parsed.data) };
}
