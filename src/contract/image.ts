/**
 * The `image` field of a pair message: its JSON contract (three variants, exactly one per message) and
 * its checking into what ingestion takes (pixels and embeddings as sent; encoded files checked by their
 * headers, decoded later, once). Nothing here throws on bad input: problems come back as a one-line
 * detail naming the field.
 */
import { z } from 'zod';
import type { Limits } from '../config.js';
import { probeImage, type ImageFormat } from '../image/probe.js';

export type DecodedImage =
  | { kind: 'pixels'; width: number; height: number; channels: 1 | 3; data: Uint8Array }
  | { kind: 'embedding'; values: Float32Array };

const F32_MAX = 3.4028234663852886e38;

/** Order matters: it is the branch order of the union, which error reporting relies on. */
export const IMAGE_VARIANTS = ['pixels', 'encoded', 'embedding'] as const;
export type ImageVariant = (typeof IMAGE_VARIANTS)[number];

/**
 * The three image variants, bounded by `limits`:
 * - `{pixels, width, height, channels}`: base64 of width*height*channels uint8 samples, row-major,
 *   interleaved (channels 1 = grey, 3 = RGB).
 * - `{encoded}`: base64 of a JPEG, PNG, WebP, GIF or AVIF file; the format is sniffed from its magic bytes.
 * - `{embedding}`: a precomputed image embedding, finite numbers, 1..maxEmbeddingDim values.
 * Base64 is standard RFC 4648 (`+/`, padded, no whitespace).
 */
export function imageSchema(limits: Limits) {
  const side = z.number().int().min(1).max(limits.maxImageSide);
  const pixels = z
    .strictObject({
      pixels: z.base64(),
      width: side,
      height: side,
      channels: z.literal([1, 3]),
    })
    .superRefine((img, ctx) => {
      const count = img.width * img.height;
      if (count > limits.maxImagePixels) {
        ctx.addIssue({
          code: 'custom',
          message: `${img.width}x${img.height} is ${count} pixels, over maxImagePixels ${limits.maxImagePixels}`,
        });
        return;
      }
      const expected = count * img.channels;
      const got = base64ByteLength(img.pixels);
      if (got !== expected) {
        ctx.addIssue({
          code: 'custom',
          path: ['pixels'],
          message: `expected ${expected} bytes for ${img.width}x${img.height}x${img.channels}, got ${got}`,
        });
      }
    }, onlyIfValid);
  const encoded = z.strictObject({ encoded: z.base64().min(1) });
  // z.number() rejects Infinity (JSON.parse's 1e999); the range check catches what float32 would overflow.
  const component = z.number().refine((v) => Math.abs(v) <= F32_MAX, { message: 'must fit in float32 (|x| <= 3.4e38)' });
  const embedding = z.strictObject({ embedding: z.array(component).min(1).max(limits.maxEmbeddingDim) });
  return z.union([pixels, encoded, embedding]);
}

/** Cross-field checks assume the fields themselves are valid; zod runs them after non-aborting issues. */
export const onlyIfValid = { when: (payload: { issues: readonly unknown[] }) => payload.issues.length === 0 };

export type ImageMessage = z.infer<ReturnType<typeof imageSchema>>;

/** The variant keys present in a raw `image` value; exactly one is valid. */
export function variantKeysOf(raw: unknown): ImageVariant[] {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return [];
  return IMAGE_VARIANTS.filter((k) => Object.hasOwn(raw, k));
}

/** Decoded size of a string that already passed the strict base64 check. */
function base64ByteLength(b64: string): number {
  const pad = b64.endsWith('==') ? 2 : b64.endsWith('=') ? 1 : 0;
  return (b64.length / 4) * 3 - pad;
}

/**
 * An encoded image file that passed the header checks (format, dimensions, pixel limits, a cheap
 * integrity check: src/image/probe.ts) but is not decoded yet: the router's ingestion step decodes it
 * once, natively, straight to the model's input size (streams/router.ts, decodeImages).
 */
export interface EncodedImage {
  kind: 'encoded';
  format: ImageFormat;
  width: number;
  height: number;
  bytes: Uint8Array;
}

/** What a valid pair carries: pixels or an embedding as sent, or an encoded file still to decode. */
export type InputImage = DecodedImage | EncodedImage;

export type ImageCheckResult = { ok: true; image: InputImage } | { ok: false; detail: string };

/**
 * Turns a schema-valid image into pixels, an embedding or a checked encoded file. Encoded files are
 * judged by their headers only: validation stays cheap whatever the image size, and a decode bomb is
 * refused before anything is allocated.
 */
export function checkImage(image: ImageMessage, limits: Limits): ImageCheckResult {
  if ('embedding' in image) return { ok: true, image: { kind: 'embedding', values: Float32Array.from(image.embedding) } };
  if ('pixels' in image) {
    const buf = Buffer.from(image.pixels, 'base64');
    // A plain view (not a Buffer) so every producer of DecodedImage hands out the same type.
    const data = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
    const { width, height, channels } = image;
    return { ok: true, image: { kind: 'pixels', width, height, channels, data } };
  }
  const buf = Buffer.from(image.encoded, 'base64');
  const bytes = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  const probed = probeImage(bytes, limits);
  if (!probed.ok) return { ok: false, detail: `image.encoded: ${probed.detail}` };
  return { ok: true, image: { kind: 'encoded', ...probed.header, bytes } };
}

/** An image as the JSON contract carries it; `encoded` passes image file bytes through. */
export type EncodableImage = DecodedImage | { kind: 'encoded'; bytes: Uint8Array };

export function imageToMessage(image: EncodableImage): ImageMessage {
  switch (image.kind) {
    case 'pixels':
      return {
        pixels: toBase64(image.data),
        width: image.width,
        height: image.height,
        channels: image.channels,
      };
    case 'encoded':
      return { encoded: toBase64(image.bytes) };
    case 'embedding':
      return { embedding: Array.from(image.values) };
  }
}

function toBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}
