import { z } from 'zod';
/**
 * Typed arrays <-> bytes. msgpack (Kafka `routed` values, LMDB values) stores Buffers faithfully but
 * not typed arrays, so vectors travel as little-endian bytes and are copied back into aligned arrays.
 */
export function f32ToBytes(values: Float32Array): Buffer {
  return Buffer.from(values.buffer, values.byteOffset, values.byteLength);
}

export function bytesToF32(bytes: Uint8Array): Float32Array {
  if (bytes.byteLength % 4 !== 0) throw new RangeError(`float32 bytes must be a multiple of 4, got ${bytes.byteLength}`);
  // Copy: the source may be a slice of a larger, unaligned buffer (msgpack, LMDB).
  const out = new Float32Array(bytes.byteLength / 4);
  new Uint8Array(out.buffer).set(bytes);
  return out;
}

export function i32ToBytes(values: Int32Array): Buffer {
  return Buffer.from(values.buffer, values.byteOffset, values.byteLength);
}

export function bytesToI32(bytes: Uint8Array): Int32Array {
  if (bytes.byteLength % 4 !== 0) throw new RangeError(`int32 bytes must be a multiple of 4, got ${bytes.byteLength}`);
  const out = new Int32Array(bytes.byteLength / 4);
  new Uint8Array(out.buffer).set(bytes);
  return out;
}

/** zod schema for binary fields (msgpack Buffers); `z.instanceof(Uint8Array)` would narrow to ArrayBuffer-backed arrays. */
export const bytesSchema = z.custom<Uint8Array>((v) => v instanceof Uint8Array, { message: 'expected bytes' });
