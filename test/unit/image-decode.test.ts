/**
 * The sharp decoder on files of every kind it must read, each decoded to the two target shapes, checked
 * by size and by colour; its refusals; and the bounded pool that runs the decodes.
 */
import { availableParallelism } from 'node:os';
import sharp, { type Metadata, type Sharp } from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { createSharpDecoder, decoderName, mapBounded, type DecodeOutcome, type Pixels, type PixelTarget } from '../../src/image/decode.js';
import type { ProbeLimits } from '../../src/image/probe.js';

const LIMITS: ProbeLimits = { maxImageSide: 8192, maxImagePixels: 16_777_216 };
const TARGETS: PixelTarget[] = [
  { width: 28, height: 28, channels: 1 },
  { width: 64, height: 64, channels: 3 },
];
const AVIF_WRITABLE = sharp.format.heif.output.buffer;

type Rgb = [number, number, number];
const RED: Rgb = [200, 60, 40];
const BLUE: Rgb = [40, 90, 190];
const WHITE: Rgb = [255, 255, 255];
/** Inside the CMYK gamut: saturated colours come back from a CMYK round trip clipped. */
const STEEL: Rgb = [60, 120, 180];

const solid = (width: number, height: number, [r, g, b]: Rgb) => sharp({ create: { width, height, channels: 3, background: { r, g, b } } });

/** Raw RGB(A) pixels, left half `left`, right half `right` (an undefined side is fully transparent). */
function halves(width: number, height: number, left: Rgb, right?: Rgb): Sharp {
  const channels = right ? 3 : 4;
  const data = new Uint8Array(width * height * channels);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const colour = x < width / 2 ? left : right;
      const at = (y * width + x) * channels;
      if (colour) data.set(colour, at);
      if (channels === 4) data[at + 3] = colour ? 255 : 0;
    }
  }
  return sharp(data, { raw: { width, height, channels } });
}

/** Two solid frames as an animated GIF. */
async function twoFrameGif(width: number, height: number, first: Rgb, second: Rgb): Promise<Buffer> {
  const frames = Buffer.concat([await solid(width, height, first).raw().toBuffer(), await solid(width, height, second).raw().toBuffer()]);
  return sharp(frames, { raw: { width, height: height * 2, channels: 3, pageHeight: height } }).gif({ loop: 0 }).toBuffer();
}

/** What libvips' sRGB -> B_W gives: relative luminance in linear light, re-encoded with the sRGB curve. */
function greyOf([r, g, b]: Rgb): number {
  const linear = (v: number) => (v / 255 <= 0.04045 ? v / 255 / 12.92 : ((v / 255 + 0.055) / 1.055) ** 2.4);
  const y = 0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b);
  return 255 * (y <= 0.0031308 ? 12.92 * y : 1.055 * y ** (1 / 2.4) - 0.055);
}

/** Per-channel mean over columns [x0, x1) and rows [y0, y1) (fractions of the image). */
function meanOf(image: Pixels, [x0, x1, y0, y1] = [0, 1, 0, 1]): number[] {
  const { width, height, channels, data } = image;
  const sums = new Array<number>(channels).fill(0);
  let count = 0;
  for (let y = Math.floor(y0 * height); y < Math.ceil(y1 * height); y++) {
    for (let x = Math.floor(x0 * width); x < Math.ceil(x1 * width); x++) {
      for (let c = 0; c < channels; c++) sums[c]! += data[(y * width + x) * channels + c]!;
      count++;
    }
  }
  return sums.map((s) => s / count);
}

/** The expected mean as the image's channels see it: RGB, or its grey. */
const expectedMean = (rgb: Rgb, channels: 1 | 3): number[] => (channels === 3 ? rgb : [greyOf(rgb)]);

function expectClose(actual: number[], expected: number[], tolerance: number, what: string): void {
  const off = actual.map((v, i) => Math.abs(v - expected[i]!));
  if (off.some((d) => d > tolerance)) {
    throw new Error(`${what}: mean ${actual.map((v) => v.toFixed(1)).join(',')} vs expected ${expected.map((v) => v.toFixed(1)).join(',')} (tolerance ${tolerance})`);
  }
}

function decoded(outcome: DecodeOutcome | undefined): Pixels {
  if (!outcome?.ok) throw new Error(`expected a decoded image, got ${outcome ? outcome.detail : 'nothing'}`);
  return outcome.image;
}

function refused(outcome: DecodeOutcome | undefined): { detail: string; ms: number } {
  if (!outcome || outcome.ok) throw new Error('expected a refusal');
  return outcome;
}

/** Regions and the colour each must have: [x0, x1, y0, y1] fractions, away from edges that resampling blurs. */
type Expectation = Array<{ region?: [number, number, number, number]; rgb: Rgb }>;

interface Case {
  name: string;
  encode: () => Promise<Buffer>;
  expect: Expectation;
  tolerance: number;
  /** Confirms the file is the kind the case names (sharp's metadata of the encoded file). */
  kind?: (meta: Metadata) => boolean;
}

const LEFT: [number, number, number, number] = [0, 0.35, 0, 1];
const RIGHT: [number, number, number, number] = [0.65, 1, 0, 1];
const TOP: [number, number, number, number] = [0, 1, 0, 0.35];
const BOTTOM: [number, number, number, number] = [0, 1, 0.65, 1];

const CASES: Case[] = [
  { name: 'baseline JPEG', encode: () => solid(640, 480, RED).jpeg({ quality: 90 }).toBuffer(), expect: [{ rgb: RED }], tolerance: 8 },
  {
    name: 'progressive JPEG',
    encode: () => solid(640, 480, BLUE).jpeg({ progressive: true }).toBuffer(),
    expect: [{ rgb: BLUE }],
    tolerance: 8,
    kind: (m) => m.isProgressive === true,
  },
  {
    name: 'greyscale JPEG',
    encode: () => solid(300, 200, [150, 150, 150]).toColourspace('b-w').jpeg().toBuffer(),
    expect: [{ rgb: [150, 150, 150] }],
    tolerance: 4,
    kind: (m) => m.channels === 1,
  },
  {
    name: 'CMYK JPEG',
    encode: () => solid(200, 150, STEEL).toColourspace('cmyk').jpeg().toBuffer(),
    expect: [{ rgb: STEEL }],
    // A round trip through a CMYK profile shifts colours a little.
    tolerance: 20,
    kind: (m) => m.space === 'cmyk' && m.channels === 4,
  },
  {
    name: 'EXIF-rotated JPEG (orientation 6)',
    // Stored wide with a red left half; shown rotated 90 degrees clockwise: tall, red on top.
    encode: () => halves(60, 40, RED, BLUE).jpeg({ quality: 95 }).withMetadata({ orientation: 6 }).toBuffer(),
    expect: [
      { region: TOP, rgb: RED },
      { region: BOTTOM, rgb: BLUE },
    ],
    tolerance: 12,
    kind: (m) => m.orientation === 6 && m.width === 60,
  },
  {
    name: 'palette PNG',
    encode: () => solid(120, 80, RED).png({ palette: true }).toBuffer(),
    expect: [{ rgb: RED }],
    tolerance: 3,
    kind: (m) => m.isPalette === true,
  },
  {
    name: '16-bit PNG',
    encode: () => solid(90, 70, BLUE).toColourspace('rgb16').png().toBuffer(),
    expect: [{ rgb: BLUE }],
    tolerance: 3,
    kind: (m) => m.depth === 'ushort',
  },
  {
    name: 'PNG with alpha (transparent right half)',
    encode: () => halves(64, 32, RED).png().toBuffer(),
    expect: [
      { region: LEFT, rgb: RED },
      { region: RIGHT, rgb: WHITE },
    ],
    tolerance: 3,
    kind: (m) => m.hasAlpha === true,
  },
  { name: 'WebP', encode: () => solid(640, 480, RED).webp({ quality: 90 }).toBuffer(), expect: [{ rgb: RED }], tolerance: 8 },
  {
    name: 'animated GIF (first frame)',
    encode: () => twoFrameGif(48, 36, RED, BLUE),
    expect: [{ rgb: RED }],
    tolerance: 6,
    kind: (m) => m.pages === 2,
  },
  ...(AVIF_WRITABLE ? [{ name: 'AVIF', encode: () => solid(160, 120, BLUE).avif().toBuffer(), expect: [{ rgb: BLUE }], tolerance: 10 }] : []),
];

const files = new Map<string, Buffer>();
beforeAll(async () => {
  for (const c of CASES) files.set(c.name, await c.encode());
});

describe('sharp decoder: every input kind to both target shapes', () => {
  const decoder = createSharpDecoder({ limits: LIMITS, concurrency: 2 });

  it.each(CASES.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const bytes = files.get(c.name)!;
    if (c.kind) expect(c.kind(await sharp(bytes).metadata())).toBe(true);
    for (const target of TARGETS) {
      const [outcome] = await decoder.decodeAll([bytes], target);
      const image = decoded(outcome);
      expect({ width: image.width, height: image.height, channels: image.channels }).toEqual(target);
      expect(image.data.length).toBe(target.width * target.height * target.channels);
      expect(Object.getPrototypeOf(image.data)).toBe(Uint8Array.prototype); // a plain view, not a Buffer
      expect(outcome!.ms).toBeGreaterThanOrEqual(0);
      for (const { region, rgb } of c.expect) {
        expectClose(meanOf(image, region), expectedMean(rgb, target.channels), c.tolerance, `${c.name} ${target.channels}ch ${region ?? 'whole'}`);
      }
    }
  });

  it('names itself with the sharp and libvips versions', () => {
    expect(decoderName).toBe(`sharp ${sharp.versions.sharp} (libvips ${sharp.versions.vips})`);
  });
});

describe('sharp decoder: refusals come back as details, never throws', () => {
  const decoder = createSharpDecoder({ limits: LIMITS, concurrency: 2 });
  const target = TARGETS[1]!;
  let photo: Buffer;
  let png: Buffer;
  beforeAll(async () => {
    const noise = sharp({ create: { width: 640, height: 480, channels: 3, background: '#000', noise: { type: 'gaussian', mean: 128, sigma: 50 } } }).blur(2);
    photo = await noise.clone().jpeg({ quality: 85 }).toBuffer();
    png = await noise.clone().png().toBuffer();
  });

  it('not a refusal: a JPEG with bytes appended after its end-of-image marker (a motion photo) decodes', async () => {
    const [outcome] = await decoder.decodeAll([Buffer.concat([photo, Buffer.from('appended video bytes '.repeat(50))])], target);
    expect(decoded(outcome).data.length).toBe(target.width * target.height * target.channels);
  });

  // The time bounds below are safety bounds (nothing hangs or decodes the whole bomb), not benchmarks.
  it('a truncated JPEG, quickly', async () => {
    const [outcome] = await decoder.decodeAll([photo.subarray(0, Math.floor(photo.length * 0.6))], target);
    const { detail, ms } = refused(outcome);
    expect(detail).toBe('JPEG truncated (no end-of-image marker)');
    expect(ms).toBeLessThan(2000);
  });

  it('a decode bomb (a blank 4096x4096 PNG of a few dozen KB, limit 1e6 pixels), quickly', async () => {
    const bomb = await sharp({ create: { width: 4096, height: 4096, channels: 3, background: '#fff' } }).png({ compressionLevel: 9 }).toBuffer();
    expect(bomb.length).toBeLessThan(256 * 1024);
    const small = createSharpDecoder({ limits: { maxImageSide: 8192, maxImagePixels: 1_000_000 }, concurrency: 1 });
    const started = performance.now();
    const [outcome] = await small.decodeAll([bomb], target);
    const { detail, ms } = refused(outcome);
    expect(detail).toBe(`PNG is 4096x4096 = ${4096 * 4096} pixels, over maxImagePixels 1000000`);
    expect(ms).toBeLessThan(2000);
    expect(performance.now() - started).toBeLessThan(2000);
  });

  it('a PNG whose image data fails its checksum: the header passes, libvips refuses (failOn "error")', async () => {
    const bad = Buffer.from(png);
    const idat = bad.indexOf('IDAT', 8, 'latin1') - 4;
    const crcAt = idat + 8 + bad.readUInt32BE(idat);
    bad[crcAt] = bad[crcAt]! ^ 0xff;
    const [outcome] = await decoder.decodeAll([bad], target);
    const { detail } = refused(outcome);
    expect(detail).toMatch(/^undecodable PNG \(.+\)$/);
    expect(detail.length).toBeLessThan(200);
    expect(detail).not.toMatch(/\s{2}|\n/);
  });

  it('unknown bytes and an empty input', async () => {
    const outcomes = await decoder.decodeAll([Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"/>'), new Uint8Array(0)], target);
    for (const outcome of outcomes) expect(refused(outcome).detail).toMatch(/unrecognised magic bytes/);
  });

  it('results in input order, refusals in their places', async () => {
    const colours: Rgb[] = Array.from({ length: 20 }, (_, i) => [(i * 37) % 256, (i * 91) % 256, (i * 53) % 256]);
    const images = await Promise.all(colours.map((rgb) => solid(48, 40, rgb).png().toBuffer()));
    const broken = new Set([3, 11, 17]);
    const inputs = images.map((bytes, i) => (broken.has(i) ? bytes.subarray(0, bytes.length - 1) : bytes));
    const outcomes = await decoder.decodeAll(inputs, target);
    expect(outcomes).toHaveLength(20);
    outcomes.forEach((outcome, i) => {
      if (broken.has(i)) expect(refused(outcome).detail).toBe('PNG truncated (last chunk is not IEND)');
      else expectClose(meanOf(decoded(outcome)), colours[i]!, 2, `image ${i}`);
    });
  });

  it('concurrency: defaults to the available parallelism; a non-positive one is refused', () => {
    expect(createSharpDecoder({ limits: LIMITS }).concurrency).toBe(availableParallelism());
    expect(() => createSharpDecoder({ limits: LIMITS, concurrency: 0 })).toThrow(RangeError);
  });
});

describe('mapBounded', () => {
  const tick = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  it.each([1, 2, 5])('never has more than %i calls pending, reaches that bound, and keeps input order', async (limit) => {
    let inFlight = 0;
    let peak = 0;
    const items = Array.from({ length: 20 }, (_, i) => i);
    const results = await mapBounded(items, limit, async (item, index) => {
      expect(index).toBe(item);
      peak = Math.max(peak, ++inFlight);
      // Uneven durations, so later items finish before earlier ones.
      await tick((item * 7) % 5);
      inFlight--;
      return item * 10;
    });
    expect(peak).toBe(limit);
    expect(results).toEqual(items.map((i) => i * 10));
  });

  it('a limit above the item count starts one call per item; no items, no calls', async () => {
    let calls = 0;
    expect(await mapBounded(['a', 'b'], 8, async (s) => (calls++, s.toUpperCase()))).toEqual(['A', 'B']);
    expect(calls).toBe(2);
    expect(await mapBounded([], 3, async () => calls++)).toEqual([]);
    expect(calls).toBe(2);
  });

  it('rejects with the first failure and starts no further items', async () => {
    const started: number[] = [];
    const run = mapBounded(Array.from({ length: 10 }, (_, i) => i), 2, async (i) => {
      started.push(i);
      await tick(1);
      if (i === 2) throw new Error('boom');
      return i;
    });
    await expect(run).rejects.toThrow('boom');
    await tick(20);
    expect(Math.max(...started)).toBeLessThanOrEqual(3);
  });

  it('refuses a limit that is not a positive integer', async () => {
    await expect(mapBounded([1], 0, async (x) => x)).rejects.toThrow(RangeError);
    await expect(mapBounded([1], 1.5, async (x) => x)).rejects.toThrow(RangeError);
  });
});
