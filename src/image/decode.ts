/**
 * The native image decoder: sharp (libvips) decodes each encoded image straight to the model's input
 * size, CLIP-style (shorter side resized, centre crop), in one pipeline. Each image is first probed
 * (src/image/probe.ts), so only the five contract formats reach libvips, and a decode bomb or a
 * truncated file is refused from its header. Failures come back as a one-line detail, never a throw.
 */
import { availableParallelism } from 'node:os';
import sharp, { type Sharp } from 'sharp';
import { FORMAT_LABEL, probeImage, type ImageFormat, type ProbeLimits } from './probe.js';

export interface PixelTarget {
  width: number;
  height: number;
  channels: 1 | 3;
}
export interface Pixels {
  kind: 'pixels';
  width: number;
  height: number;
  channels: 1 | 3;
  data: Uint8Array;
}
export type DecodeOutcome = { ok: true; image: Pixels; ms: number } | { ok: false; detail: string; ms: number };
export interface ImageDecoder {
  /** Decodes each encoded image straight to `target`; at most `concurrency` decodes run at once; results in input order. */
  decodeAll(images: readonly Uint8Array[], target: PixelTarget): Promise<DecodeOutcome[]>;
  readonly concurrency: number;
}

export const decoderName = `sharp ${sharp.versions.sharp} (libvips ${sharp.versions.vips})`;

/**
 * 'error' rejects truncated JPEGs and corrupt PNGs (bad data checksums included, which 'truncated'
 * lets through), while 'warning' would also reject libjpeg warnings that ordinary web images raise
 * (extraneous bytes before a marker, the invalid SOS parameters of some phone cameras).
 */
const FAIL_ON = 'error';
const WHITE = { r: 255, g: 255, b: 255 };

export function createSharpDecoder(options: { limits: ProbeLimits; concurrency?: number }): ImageDecoder {
  const concurrency = options.concurrency ?? availableParallelism();
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new RangeError(`concurrency must be a positive integer, got ${concurrency}`);
  // libvips otherwise splits every image across all cores: for thumbnail-sized outputs that is mostly
  // thread hand-off, and N images x N threads oversubscribes. One thread per image, with images run side
  // by side, scales better and leaves `concurrency` the only knob. The setting is process-wide; sharp's
  // pipelines run on libuv's pool, so UV_THREADPOOL_SIZE (default 4) also caps the images in flight.
  sharp.concurrency(1);
  // A stream never decodes the same file twice: libvips's operation cache would only hold memory.
  sharp.cache(false);
  const { limits } = options;
  return {
    concurrency,
    decodeAll: (images, target) => mapBounded(images, concurrency, (bytes) => decodeOne(bytes, target, limits)),
  };
}

/** One image, timed; resolves to a failure rather than rejecting. */
export async function decodeOne(bytes: Uint8Array, target: PixelTarget, limits: ProbeLimits): Promise<DecodeOutcome> {
  const start = performance.now();
  const ms = () => performance.now() - start;
  const probed = probeImage(bytes, limits);
  if (!probed.ok) return { ok: false, detail: probed.detail, ms: ms() };
  const { format } = probed.header;
  try {
    const { data, info } = await pipeline(bytes, target, limits).toBuffer({ resolveWithObject: true });
    if (info.width !== target.width || info.height !== target.height || info.channels !== target.channels) {
      return { ok: false, detail: `${undecodable(format)} (got ${info.width}x${info.height}x${info.channels})`, ms: ms() };
    }
    // A plain view (not a Buffer) so every producer of pixels hands out the same type.
    const pixels = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    return { ok: true, image: { kind: 'pixels', ...target, data: pixels }, ms: ms() };
  } catch (err) {
    return { ok: false, detail: `${undecodable(format)} (${describe(err)})`, ms: ms() };
  }
}

/**
 * sharp applies these in its own fixed order: load (first frame only, the default `pages: 1`; JPEG/WebP
 * shrink-on-load), auto-orient, embedded profile or CMYK -> sRGB, flatten, greyscale, resize, output
 * colourspace, cast to 8 bits (16-bit input is scaled, not truncated).
 */
function pipeline(bytes: Uint8Array, target: PixelTarget, limits: ProbeLimits): Sharp {
  const grey = target.channels === 1;
  return sharp(bytes, { failOn: FAIL_ON, limitInputPixels: limits.maxImagePixels, autoOrient: true })
    .flatten({ background: WHITE })
    .greyscale(grey)
    .resize(target.width, target.height, { fit: 'cover', position: 'centre' })
    .toColourspace(grey ? 'b-w' : 'srgb')
    .raw({ depth: 'uchar' });
}

const undecodable = (format: ImageFormat) => `undecodable ${FORMAT_LABEL[format]}`;

/** libvips repeats a message once per failed region: keep each distinct line once, on one line. */
function describe(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  const lines = [...new Set(text.split('\n').map((l) => l.replace(/\s+/g, ' ').trim()))].filter(Boolean);
  const line = lines.join('; ') || 'unknown error';
  return line.length > 160 ? `${line.slice(0, 159)}…` : line;
}

/**
 * `fn` over `items` with at most `limit` calls pending at once; results in input order. A fixed set of
 * workers each takes the next index, so no queue is kept. The first rejection rejects the whole and
 * stops the workers from taking further items.
 */
export async function mapBounded<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`limit must be a positive integer, got ${limit}`);
  const results = new Array<R>(items.length);
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (!failed && next < items.length) {
      const index = next++;
      try {
        results[index] = await fn(items[index]!, index);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
