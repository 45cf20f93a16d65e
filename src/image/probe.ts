/**
 * Header-only validation of an encoded image: sniff the format, read the stored dimensions, refuse
 * decode bombs by those dimensions, and run a cheap integrity check, all before any decoder allocates
 * a pixel. Pure (Node's zlib only for the PNG header's CRC-32); never throws (reads past the end
 * yield 0 and every walk checks its bounds and always advances).
 *
 * Dimensions are as stored, before EXIF / `irot` orientation: a rotation swaps the sides, which the
 * limits below do not care about.
 */
import { crc32 } from 'node:zlib';

export const IMAGE_FORMATS = ['jpeg', 'png', 'webp', 'gif', 'avif'] as const;
export type ImageFormat = (typeof IMAGE_FORMATS)[number];
export interface ImageHeader {
  format: ImageFormat;
  width: number;
  height: number;
}
export type ProbeResult = { ok: true; header: ImageHeader } | { ok: false; detail: string };
export interface ProbeLimits {
  maxImageSide: number;
  maxImagePixels: number;
}

/** The name used in details. */
export const FORMAT_LABEL: Record<ImageFormat, string> = { jpeg: 'JPEG', png: 'PNG', webp: 'WebP', gif: 'GIF', avif: 'AVIF' };

export function probeImage(bytes: Uint8Array, limits: ProbeLimits): ProbeResult {
  const format = sniff(bytes);
  if (format === undefined) {
    // HEIC (and MP4) share AVIF's container: name the brands rather than calling the magic unknown.
    if (ascii(bytes, 4, 4) === 'ftyp') {
      return fail(`ISO-BMFF file without an AVIF brand (brands ${ftypBrands(bytes).slice(0, 8).map(printable).join(', ')})`);
    }
    return fail('not a JPEG, PNG, WebP, GIF or AVIF (unrecognised magic bytes)');
  }
  const read = READERS[format](bytes);
  if (typeof read === 'string') return fail(read);
  const label = FORMAT_LABEL[format];
  const { width, height } = read;
  if (width < 1 || height < 1) return fail(`${label} header declares an empty ${width}x${height} image`);
  if (width > limits.maxImageSide || height > limits.maxImageSide) {
    return fail(`${label} is ${width}x${height}, a side exceeds maxImageSide ${limits.maxImageSide}`);
  }
  if (width * height > limits.maxImagePixels) {
    return fail(`${label} is ${width}x${height} = ${width * height} pixels, over maxImagePixels ${limits.maxImagePixels}`);
  }
  return { ok: true, header: { format, width, height } };
}

function fail(detail: string): ProbeResult {
  return { ok: false, detail };
}

interface Dimensions {
  width: number;
  height: number;
}

/** Dimensions, or a one-line detail saying which check failed. */
type Reader = (bytes: Uint8Array) => Dimensions | string;

const READERS: Record<ImageFormat, Reader> = { jpeg: readJpeg, png: readPng, webp: readWebp, gif: readGif, avif: readAvif };

// ---- byte access: out-of-range reads give 0 (never throw); callers check lengths for truncation ----

const u8 = (b: Uint8Array, at: number): number => b[at] ?? 0;
const u16be = (b: Uint8Array, at: number): number => u8(b, at) * 0x100 + u8(b, at + 1);
const u16le = (b: Uint8Array, at: number): number => u8(b, at) + u8(b, at + 1) * 0x100;
const u24le = (b: Uint8Array, at: number): number => u16le(b, at) + u8(b, at + 2) * 0x10000;
// Multiplication, not <<, so values >= 2^31 stay positive.
const u32be = (b: Uint8Array, at: number): number => u16be(b, at) * 0x10000 + u16be(b, at + 2);
const u32le = (b: Uint8Array, at: number): number => u16le(b, at) + u16le(b, at + 2) * 0x10000;
const ascii = (b: Uint8Array, at: number, length: number): string =>
  String.fromCharCode(...Array.from({ length }, (_, i) => u8(b, at + i)));

function startsWith(b: Uint8Array, at: number, magic: readonly number[]): boolean {
  return magic.every((v, i) => b[at + i] === v);
}

const PNG_MAGIC = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

function sniff(b: Uint8Array): ImageFormat | undefined {
  if (startsWith(b, 0, [0xff, 0xd8, 0xff])) return 'jpeg';
  if (startsWith(b, 0, PNG_MAGIC)) return 'png';
  if (ascii(b, 0, 4) === 'RIFF' && ascii(b, 8, 4) === 'WEBP') return 'webp';
  if (ascii(b, 0, 6) === 'GIF87a' || ascii(b, 0, 6) === 'GIF89a') return 'gif';
  if (ascii(b, 4, 4) === 'ftyp' && isAvifBrand(b)) return 'avif';
  return undefined;
}

// ---- JPEG ----

/** Start-of-frame markers (C4 DHT, C8 JPG and CC DAC share the range but are not frames). */
const SOF_MARKERS = new Set([0xc0, 0xc1, 0xc2, 0xc3, 0xc5, 0xc6, 0xc7, 0xc9, 0xca, 0xcb, 0xcd, 0xce, 0xcf]);

/** Walks the segments to the first start-of-scan, taking the size from the frame header before it. */
function readJpeg(b: Uint8Array): Dimensions | string {
  let dims: Dimensions | undefined;
  let at = 2;
  for (;;) {
    if (at + 2 > b.length) return 'JPEG header truncated (no start-of-scan marker)';
    if (b[at] !== 0xff) return `JPEG header corrupt (expected a marker at byte ${at})`;
    const marker = u8(b, at + 1);
    if (marker === 0xff) {
      at += 1; // fill byte
      continue;
    }
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd8)) {
      at += 2; // standalone markers carry no length
      continue;
    }
    if (marker === 0xd9) return 'JPEG has no image data (end-of-image before any start-of-scan)';
    if (at + 4 > b.length) return 'JPEG header truncated (no start-of-scan marker)';
    const length = u16be(b, at + 2);
    if (length < 2) return `JPEG header corrupt (segment at byte ${at} has length ${length})`;
    if (SOF_MARKERS.has(marker) && dims === undefined) {
      if (length < 7 || at + 9 > b.length) return 'JPEG header truncated (incomplete frame header)';
      dims = { height: u16be(b, at + 5), width: u16be(b, at + 7) };
    }
    at += 2 + length;
    if (marker === 0xda) break;
  }
  if (dims === undefined) return 'JPEG without a frame header before its start-of-scan';
  if (!hasEoiAfter(b, at)) return 'JPEG truncated (no end-of-image marker)';
  return dims;
}

/**
 * An end-of-image marker somewhere after the first start-of-scan. Inside entropy-coded data a 0xFF is
 * always followed by 0x00 or a restart marker, so FFD9 there is the real end: a file cut off mid-scan
 * has none, while bytes a camera or an upload path appended after it (padding, a motion photo's video)
 * are tolerated, as decoders ignore them. One native backwards search.
 */
function hasEoiAfter(b: Uint8Array, scanAt: number): boolean {
  const at = Buffer.from(b.buffer, b.byteOffset, b.byteLength).lastIndexOf(EOI);
  return at >= scanAt;
}

const EOI = Buffer.from([0xff, 0xd9]);

// ---- PNG ----

/** The only valid IEND chunk: zero length, type, and the CRC of "IEND". */
const PNG_IEND = [0, 0, 0, 0, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82];
/** Bit depths allowed per colour type (PNG spec, table 11.1). */
const PNG_DEPTHS: Record<number, readonly number[]> = { 0: [1, 2, 4, 8, 16], 2: [8, 16], 3: [1, 2, 4, 8], 4: [8, 16], 6: [8, 16] };

function readPng(b: Uint8Array): Dimensions | string {
  // IHDR is the first chunk: length(4) "IHDR" width(4) height(4) depth colourType compression filter interlace crc(4)
  if (b.length < 33) return 'PNG header truncated (no complete IHDR chunk)';
  if (u32be(b, 8) !== 13 || ascii(b, 12, 4) !== 'IHDR') return 'PNG without an IHDR header';
  if (crc32(b.subarray(12, 29)) !== u32be(b, 29)) return 'PNG IHDR checksum mismatch (corrupt header)';
  const depth = u8(b, 24);
  const colourType = u8(b, 25);
  if (!PNG_DEPTHS[colourType]?.includes(depth)) return `PNG IHDR declares bit depth ${depth} with colour type ${colourType}`;
  if (b.length < 33 + PNG_IEND.length || !startsWith(b, b.length - PNG_IEND.length, PNG_IEND)) {
    return 'PNG truncated (last chunk is not IEND)';
  }
  return { width: u32be(b, 16), height: u32be(b, 20) };
}

// ---- WebP ----

function readWebp(b: Uint8Array): Dimensions | string {
  // The RIFF size counts everything after its own 8-byte header.
  const declared = u32le(b, 4) + 8;
  if (declared > b.length) return `WebP truncated (RIFF size says ${declared} bytes, got ${b.length})`;
  if (declared !== b.length) return `WebP RIFF size ${declared} disagrees with its byte length ${b.length}`;
  if (b.length < 30) return 'WebP header truncated';
  const chunk = ascii(b, 12, 4);
  if (chunk === 'VP8 ') {
    // Lossy: 3-byte frame tag, start code 9D 01 2A, then 14-bit sides (the top 2 bits are scaling).
    if (!startsWith(b, 23, [0x9d, 0x01, 0x2a])) return 'WebP VP8 frame without its start code';
    return { width: u16le(b, 26) & 0x3fff, height: u16le(b, 28) & 0x3fff };
  }
  if (chunk === 'VP8L') {
    // Lossless: signature 0x2F, then width-1 and height-1 in 14 bits each, little-endian bit order.
    if (u8(b, 20) !== 0x2f) return 'WebP VP8L stream without its signature';
    const bits = u32le(b, 21);
    return { width: (bits & 0x3fff) + 1, height: ((bits >>> 14) & 0x3fff) + 1 };
  }
  // Extended: flags(1) reserved(3), then canvas width-1 and height-1 in 24 bits each.
  if (chunk === 'VP8X') return { width: u24le(b, 24) + 1, height: u24le(b, 27) + 1 };
  return `WebP with an unknown first chunk "${printable(chunk)}"`;
}

// ---- GIF ----

/**
 * Walks the whole block structure (header, extensions, image descriptors, data sub-blocks) to the
 * trailer: cheap, as sub-blocks are up to 255 bytes and only their length bytes are read, and it makes
 * "ends with the 0x3B trailer" mean the trailer, not a 0x3B byte where the file happened to be cut.
 * The size is the larger of the logical screen and the first frame's extent: decoders size the canvas
 * from either.
 */
function readGif(b: Uint8Array): Dimensions | string {
  if (b.length < 13) return 'GIF header truncated';
  let width = u16le(b, 6);
  let height = u16le(b, 8);
  let at = 13 + colourTableSize(u8(b, 10));
  let frames = 0;
  for (;;) {
    if (at >= b.length) return 'GIF truncated (no 0x3B trailer)';
    const block = u8(b, at);
    if (block === 0x3b) break;
    if (block === 0x21) {
      at = skipSubBlocks(b, at + 2);
    } else if (block === 0x2c) {
      if (at + 10 > b.length) return 'GIF truncated (no 0x3B trailer)';
      if (frames === 0) {
        width = Math.max(width, u16le(b, at + 1) + u16le(b, at + 5));
        height = Math.max(height, u16le(b, at + 3) + u16le(b, at + 7));
      }
      frames += 1;
      // descriptor(10), local colour table, LZW minimum code size(1), data sub-blocks
      at = skipSubBlocks(b, at + 10 + colourTableSize(u8(b, at + 9)) + 1);
    } else {
      return `GIF corrupt (unknown block 0x${block.toString(16).padStart(2, '0')} at byte ${at})`;
    }
  }
  if (frames === 0) return 'GIF has no image';
  if (at + 1 !== b.length) return `GIF has ${b.length - at - 1} bytes after its 0x3B trailer`;
  return { width, height };
}

/** A colour table of 2^(n+1) RGB entries when the flag's top bit is set. */
const colourTableSize = (flags: number): number => (flags & 0x80 ? 3 * 2 ** ((flags & 0x07) + 1) : 0);

/** Offset after the sub-block chain starting at `at` (each: length byte, data; a zero length ends it). */
function skipSubBlocks(b: Uint8Array, at: number): number {
  while (at < b.length) {
    const size = u8(b, at);
    at += 1 + size;
    if (size === 0) return at;
  }
  return b.length; // ran off the end: the trailer check reports it
}

// ---- AVIF (ISO-BMFF / HEIF) ----

const AVIF_BRANDS = new Set(['avif', 'avis', 'mif1']);
/** HEIF brands of HEVC-coded images, which share mif1 with AVIF but which the AV1 decoder cannot read. */
const HEVC_BRANDS = new Set(['heic', 'heix', 'heim', 'heis', 'hevc', 'hevx']);

function ftypBrands(b: Uint8Array): string[] {
  const size = u32be(b, 0);
  const end = Math.min(b.length, size);
  const brands = [ascii(b, 8, 4)];
  for (let at = 16; at + 4 <= end; at += 4) brands.push(ascii(b, at, 4));
  return brands;
}

function isAvifBrand(b: Uint8Array): boolean {
  const brands = ftypBrands(b);
  if (brands.includes('avif') || brands.includes('avis')) return true;
  return brands.some((x) => AVIF_BRANDS.has(x)) && !brands.some((x) => HEVC_BRANDS.has(x));
}

interface Box {
  type: string;
  /** Where the payload starts (after size, type and any 64-bit size). */
  body: number;
  end: number;
}

/**
 * The boxes in [from, to). A box running past `to` ends the list and is reported through `overrun`;
 * so is a stub shorter than a box header.
 */
function boxes(b: Uint8Array, from: number, to: number): { list: Box[]; overrun?: string } {
  const list: Box[] = [];
  let at = from;
  while (at < to) {
    if (at + 8 > to) return { list, overrun: `${to - at} stray bytes after the last box` };
    const type = printable(ascii(b, at + 4, 4));
    let size = u32be(b, at);
    let body = at + 8;
    if (size === 1) {
      if (at + 16 > to) return { list, overrun: `box '${type}' truncated` };
      size = u32be(b, at + 8) * 2 ** 32 + u32be(b, at + 12);
      body = at + 16;
    } else if (size === 0) {
      size = to - at; // extends to the end of its container
    }
    if (size < body - at) return { list, overrun: `box '${type}' declares size ${size}` };
    if (at + size > to) return { list, overrun: `box '${type}' runs past the end` };
    list.push({ type, body, end: at + size });
    at += size;
  }
  return { list };
}

const child = (b: Uint8Array, parent: Box | undefined, type: string, skip = 0): Box | undefined =>
  parent && boxes(b, parent.body + skip, parent.end).list.find((x) => x.type === type);

/**
 * Top-level boxes must tile the file exactly, and the image data must be there (an `mdat`, or an
 * `idat` inside `meta`): otherwise a file cut at a box boundary would pass. The size is the largest
 * `ispe` (image spatial extent) property: the primary image, or its grid, is the largest item; thumbnails
 * are smaller, and taking the largest errs on the side of refusing a bomb.
 */
function readAvif(b: Uint8Array): Dimensions | string {
  const top = boxes(b, 0, b.length);
  if (top.overrun) return `AVIF truncated (top-level box sizes do not add up to ${b.length} bytes: ${top.overrun})`;
  const meta = top.list.find((x) => x.type === 'meta');
  if (!meta) return 'AVIF without a meta box';
  // meta is a full box: 4 bytes of version and flags before its children.
  if (!top.list.some((x) => x.type === 'mdat') && !child(b, meta, 'idat', 4)) return 'AVIF has no image data (no mdat box)';
  const ipco = child(b, child(b, meta, 'iprp', 4), 'ipco');
  let best: Dimensions | undefined;
  for (const prop of ipco ? boxes(b, ipco.body, ipco.end).list : []) {
    // ispe: version/flags(4), width(4), height(4)
    if (prop.type !== 'ispe' || prop.body + 12 > prop.end) continue;
    const dims = { width: u32be(b, prop.body + 4), height: u32be(b, prop.body + 8) };
    if (!best || dims.width * dims.height > best.width * best.height) best = dims;
  }
  return best ?? 'AVIF header has no image size (ispe) property';
}

/** Keeps details one readable line whatever bytes a type field holds. */
function printable(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, '?');
}
