/**
 * The `image` field of a pair message: its JSON contract (three variants, exactly one per message) and
 * its decoding into what training consumes. Nothing here throws on bad input: problems come back as a
 * one-line detail naming the field.
 */
import { inflateSync } from 'node:zlib';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { z } from 'zod';
import type { Limits } from '../config.js';

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
 * - `{encoded}`: base64 of a PNG or JPEG file; the format is sniffed from its magic bytes.
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

export type ImageDecodeResult = { ok: true; image: DecodedImage } | { ok: false; detail: string };

/** Turns a schema-valid image into pixels or an embedding; PNG/JPEG dimensions are checked before decoding. */
export function decodeImage(image: ImageMessage, limits: Limits): ImageDecodeResult {
  if ('embedding' in image) return { ok: true, image: { kind: 'embedding', values: Float32Array.from(image.embedding) } };
  if ('pixels' in image) {
    const buf = Buffer.from(image.pixels, 'base64');
    // A plain view (not a Buffer) so every producer of DecodedImage hands out the same type.
    const data = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
    const { width, height, channels } = image;
    return { ok: true, image: { kind: 'pixels', width, height, channels, data } };
  }
  return decodeEncoded(Buffer.from(image.encoded, 'base64'), limits);
}

const PNG_MAGIC = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

function decodeEncoded(bytes: Buffer, limits: Limits): ImageDecodeResult {
  if (bytes.subarray(0, 8).equals(PNG_MAGIC)) return decodePng(bytes, limits);
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return decodeJpeg(bytes, limits);
  return fail('not a PNG or JPEG (unrecognised magic bytes)');
}

interface Dimensions {
  width: number;
  height: number;
}

function checkDimensions(format: string, dims: Dimensions, limits: Limits): string | undefined {
  const { width, height } = dims;
  if (width < 1 || height < 1) return `${format} header declares an empty ${width}x${height} image`;
  if (width > limits.maxImageSide || height > limits.maxImageSide) {
    return `${format} is ${width}x${height}, a side exceeds maxImageSide ${limits.maxImageSide}`;
  }
  if (width * height > limits.maxImagePixels) {
    return `${format} is ${width}x${height} = ${width * height} pixels, over maxImagePixels ${limits.maxImagePixels}`;
  }
  return undefined;
}

function decodePng(bytes: Buffer, limits: Limits): ImageDecodeResult {
  // IHDR must be the first chunk: length(4) type(4) width(4) height(4) depth(1) colorType(1) ... interlace(1)
  if (bytes.length < 33 || bytes.toString('latin1', 12, 16) !== 'IHDR') return fail('PNG without an IHDR header');
  const dims = { width: bytes.readUInt32BE(16), height: bytes.readUInt32BE(20) };
  const tooBig = checkDimensions('PNG', dims, limits);
  if (tooBig) return fail(tooBig);
  const colorType = bytes[25];
  const interlaced = bytes[28] === 1;
  // pngjs bounds inflation by the image size, except for interlaced images: bound those ourselves.
  if (interlaced && !interlacedDataFits(bytes, dims)) return fail('PNG image data inflates beyond its declared size');
  let png: PNG;
  try {
    png = PNG.sync.read(bytes, { checkCRC: true });
  } catch (err) {
    return fail(`undecodable PNG (${describe(err)})`);
  }
  const greyType = colorType === 0 || colorType === 4;
  return { ok: true, image: fromInterleaved(png.data, png.width, png.height, 4, greyType) };
}

/** Inflates the IDAT stream with an output cap: 16-bit RGBA plus Adam7's extra filter bytes, generously. */
function interlacedDataFits(bytes: Buffer, dims: Dimensions): boolean {
  const parts: Buffer[] = [];
  for (let at = 8; at + 12 <= bytes.length; ) {
    const length = bytes.readUInt32BE(at);
    const type = bytes.toString('latin1', at + 4, at + 8);
    if (type === 'IDAT') parts.push(bytes.subarray(at + 8, Math.min(bytes.length, at + 8 + length)));
    if (type === 'IEND') break;
    at += 12 + length;
  }
  const cap = 2 * (dims.width * 8 + 1) * dims.height + 1024;
  try {
    inflateSync(Buffer.concat(parts), { maxOutputLength: cap });
    return true;
  } catch (err) {
    // A corrupt stream is pngjs's to report; only an overflow is a bomb.
    return !(err instanceof RangeError);
  }
}

const SOF_MARKERS = new Set([0xc0, 0xc1, 0xc2, 0xc3, 0xc5, 0xc6, 0xc7, 0xc9, 0xca, 0xcb, 0xcd, 0xce, 0xcf]);

/** Walks the JPEG segments up to the first start-of-frame marker, which carries the dimensions. */
function jpegDimensions(bytes: Buffer): Dimensions | undefined {
  let at = 2;
  while (at + 4 <= bytes.length) {
    if (bytes[at] !== 0xff) return undefined;
    const marker = bytes[at + 1]!;
    if (marker === 0xff) {
      at += 1; // fill byte
      continue;
    }
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd8)) {
      at += 2; // standalone markers carry no length
      continue;
    }
    if (marker === 0xd9 || marker === 0xda) return undefined; // end of image or scan data before any frame
    if (SOF_MARKERS.has(marker)) {
      if (at + 9 > bytes.length) return undefined;
      return { height: bytes.readUInt16BE(at + 5), width: bytes.readUInt16BE(at + 7) };
    }
    at += 2 + bytes.readUInt16BE(at + 2);
  }
  return undefined;
}

function decodeJpeg(bytes: Buffer, limits: Limits): ImageDecodeResult {
  const dims = jpegDimensions(bytes);
  if (!dims) return fail('JPEG without a readable frame header');
  const tooBig = checkDimensions('JPEG', dims, limits);
  if (tooBig) return fail(tooBig);
  let decoded: { width: number; height: number; data: Uint8Array };
  try {
    decoded = jpeg.decode(bytes, {
      useTArray: true,
      formatAsRGBA: false,
      maxResolutionInMP: limits.maxImagePixels / 1e6,
      // Coefficient blocks (~12 B/px for 3 components) + output (3 B/px), with headroom.
      maxMemoryUsageInMB: Math.max(64, Math.ceil((limits.maxImagePixels * 24) / 2 ** 20)),
    });
  } catch (err) {
    return fail(`undecodable JPEG (${describe(err)})`);
  }
  if (decoded.width !== dims.width || decoded.height !== dims.height) {
    return fail(`undecodable JPEG (decoded ${decoded.width}x${decoded.height}, header says ${dims.width}x${dims.height})`);
  }
  // jpeg-js expands grey JPEGs to RGB; the equality scan brings them back to one channel.
  return { ok: true, image: fromInterleaved(decoded.data, decoded.width, decoded.height, 3, false) };
}

/** Keeps R,G,B (drops alpha); one channel when the image is grey by type or by content (R=G=B everywhere). */
function fromInterleaved(src: Uint8Array, width: number, height: number, stride: number, grey: boolean): DecodedImage {
  const count = width * height;
  if (grey || isGrey(src, count, stride)) {
    const data = new Uint8Array(count);
    for (let i = 0, j = 0; i < count; i++, j += stride) data[i] = src[j]!;
    return { kind: 'pixels', width, height, channels: 1, data };
  }
  const data = new Uint8Array(count * 3);
  for (let i = 0, j = 0; i < count * 3; i += 3, j += stride) {
    data[i] = src[j]!;
    data[i + 1] = src[j + 1]!;
    data[i + 2] = src[j + 2]!;
  }
  return { kind: 'pixels', width, height, channels: 3, data };
}

function isGrey(src: Uint8Array, count: number, stride: number): boolean {
  for (let j = 0; j < count * stride; j += stride) {
    if (src[j] !== src[j + 1] || src[j] !== src[j + 2]) return false;
  }
  return true;
}

/** An image as the JSON contract carries it; `encoded` passes PNG/JPEG file bytes through. */
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

function fail(detail: string): ImageDecodeResult {
  return { ok: false, detail: `image.encoded: ${detail}` };
}

function describe(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.replace(/\s+/g, ' ').trim().slice(0, 160) || 'unknown error';
}
