/**
 * The header probe against real files written by sharp (libvips), their truncations and corruptions,
 * header-declared decode bombs, and fuzzed bytes.
 */
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { createRng } from '../../src/cluster/rng.js';
import { probeImage, type ImageFormat, type ProbeLimits, type ProbeResult } from '../../src/image/probe.js';

const LIMITS: ProbeLimits = { maxImageSide: 8192, maxImagePixels: 16_777_216 };
const AVIF_WRITABLE = sharp.format.heif.output.buffer;

/** Photo-like content (blurred noise), so the encoders emit real entropy-coded data. */
function photo(width: number, height: number, channels: 3 | 4 = 3) {
  return sharp({ create: { width, height, channels, background: '#000', noise: { type: 'gaussian', mean: 128, sigma: 50 } } }).blur(1.5);
}

interface Case {
  name: string;
  format: ImageFormat;
  width: number;
  height: number;
  encode: (width: number, height: number) => Promise<Buffer>;
  /** The WebP chunk that carries the size, so each header path is known to be exercised. */
  webpChunk?: string;
}

const CASES: Case[] = [
  { name: 'baseline JPEG', format: 'jpeg', width: 37, height: 23, encode: (w, h) => photo(w, h).jpeg({ quality: 85 }).toBuffer() },
  { name: 'progressive JPEG', format: 'jpeg', width: 23, height: 37, encode: (w, h) => photo(w, h).jpeg({ progressive: true }).toBuffer() },
  { name: 'CMYK JPEG', format: 'jpeg', width: 40, height: 30, encode: (w, h) => photo(w, h).toColourspace('cmyk').jpeg().toBuffer() },
  {
    name: 'JPEG with EXIF (orientation 6)',
    format: 'jpeg',
    width: 50,
    height: 20,
    encode: (w, h) => photo(w, h).jpeg().withMetadata({ orientation: 6 }).toBuffer(),
  },
  { name: 'RGB PNG', format: 'png', width: 37, height: 23, encode: (w, h) => photo(w, h).png().toBuffer() },
  { name: 'palette PNG', format: 'png', width: 31, height: 17, encode: (w, h) => photo(w, h).png({ palette: true }).toBuffer() },
  { name: '16-bit PNG', format: 'png', width: 19, height: 29, encode: (w, h) => photo(w, h).toColourspace('rgb16').png().toBuffer() },
  { name: 'RGBA PNG', format: 'png', width: 33, height: 21, encode: (w, h) => photo(w, h, 4).png().toBuffer() },
  { name: 'lossy WebP', format: 'webp', width: 37, height: 23, webpChunk: 'VP8 ', encode: (w, h) => photo(w, h).webp().toBuffer() },
  {
    name: 'lossless WebP',
    format: 'webp',
    width: 41,
    height: 27,
    webpChunk: 'VP8L',
    encode: (w, h) => photo(w, h).webp({ lossless: true }).toBuffer(),
  },
  { name: 'WebP with alpha', format: 'webp', width: 29, height: 45, webpChunk: 'VP8X', encode: (w, h) => photo(w, h, 4).webp().toBuffer() },
  { name: 'GIF', format: 'gif', width: 37, height: 23, encode: (w, h) => photo(w, h).gif().toBuffer() },
  { name: 'animated GIF', format: 'gif', width: 24, height: 18, encode: (w, h) => animatedGif(w, h) },
  ...(AVIF_WRITABLE
    ? [{ name: 'AVIF', format: 'avif' as const, width: 37, height: 23, encode: (w: number, h: number) => photo(w, h).avif().toBuffer() }]
    : []),
];

/** Two frames stacked as pages (sharp's pageHeight), written as one animated GIF. */
async function animatedGif(width: number, height: number): Promise<Buffer> {
  const frames = await photo(width, height * 2).raw().toBuffer();
  return sharp(frames, { raw: { width, height: height * 2, channels: 3, pageHeight: height } }).gif({ loop: 0 }).toBuffer();
}

const files = new Map<string, Buffer>();
beforeAll(async () => {
  for (const c of CASES) files.set(c.name, await c.encode(c.width, c.height));
});
const file = (name: string): Buffer => files.get(name)!;
const firstOf = (format: ImageFormat): Buffer => file(CASES.find((c) => c.format === format)!.name);

function refused(result: ProbeResult): string {
  if (result.ok) throw new Error(`expected a refusal, got ${JSON.stringify(result.header)}`);
  return result.detail;
}

const ascii = (b: Uint8Array, at: number, length: number) => Buffer.from(b.subarray(at, at + length)).toString('latin1');

/** Offset of the first JPEG segment with `marker` (walking the lengths, as scan data is not reached). */
function jpegSegment(b: Uint8Array, marker: (m: number) => boolean): number {
  for (let at = 2; at + 4 <= b.length; at += 2 + Buffer.from(b).readUInt16BE(at + 2)) if (marker(b[at + 1]!)) return at;
  throw new Error('segment not found');
}

/** A hand-built GIF: a logical screen and one frame placed inside or beyond it (1 pixel of LZW data). */
function handGif(screen: [number, number], frame: [number, number, number, number], trailer = true): Buffer {
  const u16 = (v: number) => [v & 0xff, v >> 8];
  return Buffer.from([
    ...Buffer.from('GIF89a', 'latin1'),
    ...u16(screen[0]),
    ...u16(screen[1]),
    0x80, 0, 0, // global colour table of 2 entries
    0, 0, 0, 255, 255, 255,
    0x21, 0xf9, 4, 0, 0, 0, 0, 0, // graphic control extension
    0x2c,
    ...frame.flatMap(u16),
    0, // no local colour table
    2, 2, 0x44, 0x01, 0, // LZW minimum code size, one sub-block, terminator
    ...(trailer ? [0x3b] : []),
  ]);
}

describe('probeImage: header sizes of real files', () => {
  it.each(CASES.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const bytes = file(c.name);
    expect(probeImage(bytes, LIMITS)).toEqual({ ok: true, header: { format: c.format, width: c.width, height: c.height } });
    if (c.webpChunk) expect(ascii(bytes, 12, 4)).toBe(c.webpChunk);
  });

  it('a GIF frame reaching beyond the logical screen sizes the image (the larger extent)', () => {
    expect(probeImage(handGif([10, 10], [0, 0, 1, 1]), LIMITS)).toMatchObject({ ok: true, header: { width: 10, height: 10 } });
    expect(probeImage(handGif([10, 10], [5, 6, 20, 8]), LIMITS)).toMatchObject({ ok: true, header: { width: 25, height: 14 } });
  });

  it('accepts an input that is a view into a larger buffer', () => {
    const bytes = file('RGB PNG');
    const padded = new Uint8Array(bytes.length + 20);
    padded.set(bytes, 10);
    expect(probeImage(padded.subarray(10, 10 + bytes.length), LIMITS)).toEqual(probeImage(bytes, LIMITS));
  });
});

describe('probeImage: integrity checks', () => {
  it.each([
    ['jpeg', /^JPEG truncated \(no end-of-image marker\)$/],
    ['png', /^PNG truncated \(last chunk is not IEND\)$/],
    ['gif', /^GIF truncated \(no 0x3B trailer\)$/],
    ['webp', /^WebP truncated \(RIFF size says \d+ bytes, got \d+\)$/],
    ...(AVIF_WRITABLE ? [['avif', /^AVIF truncated \(top-level box sizes do not add up/] as const] : []),
  ] as const)('refuses a truncated %s, naming the check', (format, detail) => {
    const bytes = firstOf(format);
    expect(refused(probeImage(bytes.subarray(0, Math.floor(bytes.length * 0.7)), LIMITS))).toMatch(detail);
  });

  it('JPEG: tolerates bytes after the end-of-image marker (padding, appended data), not a file cut mid-scan', () => {
    const jpeg = file('baseline JPEG');
    const withTail = (tail: Buffer) => probeImage(Buffer.concat([jpeg, tail]), LIMITS);
    expect(withTail(Buffer.alloc(64)).ok).toBe(true);
    expect(withTail(Buffer.from('\r\n \t')).ok).toBe(true);
    expect(withTail(Buffer.from('a motion photo appends its video here')).ok).toBe(true);
    // Cut inside the scan data: no FFD9 anywhere after the start-of-scan (byte stuffing rules it out).
    expect(refused(probeImage(jpeg.subarray(0, jpeg.length - 2), LIMITS))).toBe('JPEG truncated (no end-of-image marker)');
    expect(refused(probeImage(Buffer.concat([jpeg.subarray(0, jpeg.length - 100), Buffer.alloc(64)]), LIMITS))).toBe('JPEG truncated (no end-of-image marker)');
  });

  it('JPEG: refuses one without a start-of-scan, and one whose header stops short', () => {
    const jpeg = file('baseline JPEG');
    const sos = jpegSegment(jpeg, (m) => m === 0xda);
    const noScan = Buffer.concat([jpeg.subarray(0, sos), Buffer.from([0xff, 0xd9])]);
    expect(refused(probeImage(noScan, LIMITS))).toBe('JPEG has no image data (end-of-image before any start-of-scan)');
    expect(refused(probeImage(jpeg.subarray(0, sos), LIMITS))).toBe('JPEG header truncated (no start-of-scan marker)');
  });

  it('PNG: refuses a corrupt IHDR by its checksum', () => {
    const png = Buffer.from(file('RGB PNG'));
    png[17] = png[17]! ^ 0x01; // a width byte: the stored CRC no longer matches
    expect(refused(probeImage(png, LIMITS))).toBe('PNG IHDR checksum mismatch (corrupt header)');
  });

  it('WebP: refuses a RIFF size that disagrees with the length; GIF: refuses bytes after the trailer or no trailer', () => {
    const webp = firstOf('webp');
    expect(refused(probeImage(Buffer.concat([webp, Buffer.alloc(2)]), LIMITS))).toBe(
      `WebP RIFF size ${webp.length} disagrees with its byte length ${webp.length + 2}`,
    );
    const gif = firstOf('gif');
    expect(refused(probeImage(Buffer.concat([gif, Buffer.from([0x3b])]), LIMITS))).toBe('GIF has 1 bytes after its 0x3B trailer');
    expect(refused(probeImage(handGif([4, 4], [0, 0, 4, 4], false), LIMITS))).toBe('GIF truncated (no 0x3B trailer)');
  });

  it.runIf(AVIF_WRITABLE)('AVIF: refuses one cut exactly at the box before its media data', () => {
    const avif = firstOf('avif');
    const mdat = avif.indexOf('mdat', 0, 'latin1') - 4;
    expect(mdat).toBeGreaterThan(0);
    expect(mdat + avif.readUInt32BE(mdat)).toBe(avif.length); // mdat is the last box here
    expect(refused(probeImage(avif.subarray(0, mdat), LIMITS))).toBe('AVIF has no image data (no mdat box)');
  });

  it('refuses unknown magic bytes and HEIF brands that are not AVIF', () => {
    expect(refused(probeImage(Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"/>'), LIMITS))).toBe(
      'not a JPEG, PNG, WebP, GIF or AVIF (unrecognised magic bytes)',
    );
    expect(refused(probeImage(new Uint8Array(0), LIMITS))).toMatch(/unrecognised magic bytes/);
    const heic = Buffer.from([0, 0, 0, 24, ...Buffer.from('ftypheic\0\0\0\0mif1heic', 'latin1')]);
    expect(refused(probeImage(heic, LIMITS))).toBe('ISO-BMFF file without an AVIF brand (brands heic, mif1, heic)');
  });
});

describe('probeImage: dimension limits (decode bombs refused from the header)', () => {
  let bomb: Buffer;
  beforeAll(async () => {
    // A blank 4096x4096 PNG compresses to tens of kilobytes but decodes to 48 MiB.
    bomb = await sharp({ create: { width: 4096, height: 4096, channels: 3, background: '#fff' } }).png({ compressionLevel: 9 }).toBuffer();
  });

  it('a small PNG declaring 4096x4096 passes at exactly the pixel limit and is refused one pixel below it', () => {
    expect(bomb.length).toBeLessThan(256 * 1024);
    const pixels = 4096 * 4096;
    expect(probeImage(bomb, { maxImageSide: 8192, maxImagePixels: pixels })).toMatchObject({ ok: true, header: { width: 4096, height: 4096 } });
    expect(refused(probeImage(bomb, { maxImageSide: 8192, maxImagePixels: pixels - 1 }))).toBe(
      `PNG is 4096x4096 = ${pixels} pixels, over maxImagePixels ${pixels - 1}`,
    );
    expect(refused(probeImage(bomb, { maxImageSide: 4095, maxImagePixels: pixels }))).toBe('PNG is 4096x4096, a side exceeds maxImageSide 4095');
  });

  it('a JPEG whose frame header says 60000x60000 is refused by the side limit, or by the pixel limit when sides may be that long', () => {
    const jpeg = Buffer.from(file('baseline JPEG'));
    const sof = jpegSegment(jpeg, (m) => m === 0xc0);
    jpeg.writeUInt16BE(60000, sof + 5);
    jpeg.writeUInt16BE(60000, sof + 7);
    expect(refused(probeImage(jpeg, LIMITS))).toBe('JPEG is 60000x60000, a side exceeds maxImageSide 8192');
    expect(refused(probeImage(jpeg, { maxImageSide: 65535, maxImagePixels: LIMITS.maxImagePixels }))).toBe(
      `JPEG is 60000x60000 = ${60000 * 60000} pixels, over maxImagePixels ${LIMITS.maxImagePixels}`,
    );
    jpeg.writeUInt16BE(0, sof + 5);
    expect(refused(probeImage(jpeg, LIMITS))).toBe('JPEG header declares an empty 60000x0 image');
  });
});

describe('probeImage never throws', () => {
  const MAGICS = [
    [0xff, 0xd8, 0xff],
    [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a],
    [...Buffer.from('RIFF\0\0\0\0WEBPVP8X', 'latin1')],
    [...Buffer.from('GIF89a', 'latin1')],
    [0, 0, 0, 20, ...Buffer.from('ftypavif\0\0\0\0mif1', 'latin1')],
  ];

  /** Whatever is accepted respects the limits. */
  function sane(result: ProbeResult): boolean {
    if (!result.ok) return typeof result.detail === 'string' && result.detail.length > 0 && !result.detail.includes('\n');
    const { width, height } = result.header;
    return width >= 1 && height >= 1 && width <= LIMITS.maxImageSide && height <= LIMITS.maxImageSide && width * height <= LIMITS.maxImagePixels;
  }

  it('on random bytes, with and without a valid magic prefix', () => {
    const rng = createRng(1);
    for (let n = 0; n < 4000; n++) {
      const body = Uint8Array.from({ length: rng.nextInt(400) }, () => rng.nextInt(256));
      const magic = MAGICS[n % (MAGICS.length + 1)] ?? [];
      expect(sane(probeImage(Uint8Array.from([...magic, ...body]), LIMITS))).toBe(true);
    }
  });

  it('on every prefix of a small file of each format (all refused but the whole file)', () => {
    for (const c of CASES) {
      const bytes = file(c.name);
      for (let end = 0; end < bytes.length; end++) {
        const result = probeImage(bytes.subarray(0, end), LIMITS);
        if (result.ok) throw new Error(`${c.name}: the ${end}-byte prefix of ${bytes.length} was accepted`);
      }
      expect(probeImage(bytes, LIMITS).ok).toBe(true);
    }
  });

  it('on files of each format with a few bytes changed', () => {
    const rng = createRng(2);
    for (const c of CASES) {
      const original = file(c.name);
      for (let n = 0; n < 300; n++) {
        const bytes = Uint8Array.from(original);
        // Mostly in the header, where the parsing is.
        for (let k = 1 + rng.nextInt(4); k > 0; k--) bytes[rng.nextInt(Math.min(bytes.length, n % 2 ? 64 : bytes.length))] = rng.nextInt(256);
        expect(sane(probeImage(bytes, LIMITS))).toBe(true);
      }
    }
  });
});
