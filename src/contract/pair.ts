/**
 * The input message contract: what data teams produce to the pairs topic, and the validator that turns
 * raw Kafka bytes into a ValidPair or a Rejection for the dead-letter topic. Never throws.
 *
 * Kafka key: the pair id, or null (kcat without -K). A zero-length key counts as absent, since some
 * producers send "" for "no key". Kafka value: UTF-8 JSON (a BOM is tolerated):
 *
 *   {"id": "crawl-000123",                  required, 1..maxIdChars UTF-16 units, printable
 *    "caption": "a red cotton t-shirt",     required, not blank, <= maxCaptionChars
 *    "image": {"pixels": "<base64>", "width": 28, "height": 28, "channels": 1}
 *           | {"encoded": "<base64 JPEG, PNG, WebP, GIF or AVIF file>"}
 *           | {"embedding": [0.12, -0.5, ...]},
 *    "source": "crawler-eu",                optional, 1..maxIdChars
 *    "ts": "2024-05-01T12:00:00.000Z",      optional, ISO-8601 with Z or a +hh:mm offset
 *    "meta": {...}}                         optional object, <= maxMetaBytes re-serialised
 *
 * Unknown top-level keys are rejected (a typo must not silently drop data); extras go in `meta`.
 * Reasons: `oversized` (value over maxMessageBytes, checked before parsing), `invalid-json` (empty,
 * not UTF-8, not JSON), `invalid-image` (anything wrong inside a present `image`), `invalid-schema`
 * (everything else, meta size included), `key-mismatch` (a key that differs from `id`).
 */
import { z } from 'zod';
import { LimitsConfig, type Limits } from '../config.js';
import {
  checkImage,
  IMAGE_VARIANTS,
  imageSchema,
  imageToMessage,
  onlyIfValid,
  variantKeysOf,
  type EncodableImage,
  type InputImage,
} from './image.js';

export type { DecodedImage, EncodableImage, EncodedImage, InputImage } from './image.js';

// Control, format, surrogate and private-use code points, and line/paragraph separators. Unassigned
// code points (\p{Cn}) are left out on purpose: that set changes with the runtime's Unicode version.
const UNPRINTABLE = /[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Zl}\p{Zp}]/u;

export function pairMessageSchema(limits: Limits) {
  return z.strictObject({
    id: z
      .string()
      .min(1)
      .max(limits.maxIdChars)
      .refine((id) => !UNPRINTABLE.test(id) && id.trim() === id, {
        message: 'must be printable (no control or format characters, no leading or trailing whitespace)',
      }),
    caption: z
      .string()
      .max(limits.maxCaptionChars)
      .refine((c) => c.trim() !== '', { message: 'must not be empty or whitespace only' }),
    image: imageSchema(limits),
    source: z.string().min(1).max(limits.maxIdChars).optional(),
    ts: z.iso.datetime({ offset: true }).optional(),
    meta: z
      .record(z.string(), z.unknown())
      .superRefine((meta, ctx) => {
        const size = jsonByteLength(meta);
        if (size === undefined) ctx.addIssue({ code: 'custom', message: 'cannot be re-serialised as JSON (nested too deeply)' });
        else if (size > limits.maxMetaBytes) {
          ctx.addIssue({ code: 'custom', message: `is ${size} bytes as JSON, over maxMetaBytes ${limits.maxMetaBytes}` });
        }
      }, onlyIfValid)
      .optional(),
  });
}

/** The contract under default limits (documentation, JSON Schema export, producers' own checks). */
export const PairMessageSchema = pairMessageSchema(LimitsConfig.parse({}));
export type PairMessage = z.infer<typeof PairMessageSchema>;

export interface ValidPair extends Omit<PairMessage, 'image' | 'ts'> {
  /** An encoded file is only header-checked here; the router decodes it at ingestion. */
  image: InputImage;
  /** Milliseconds since the epoch, from the ISO string. */
  ts?: number;
}

export type RejectReason = 'oversized' | 'invalid-json' | 'invalid-schema' | 'invalid-image' | 'key-mismatch';

export interface Rejection {
  reason: RejectReason;
  /** One readable line that names the field, e.g. `caption: must not be empty or whitespace only`. */
  detail: string;
}

export type ParseResult = { ok: true; pair: ValidPair } | { ok: false; rejection: Rejection };

const utf8 = new TextDecoder('utf-8', { fatal: true });
// Built once per Limits object: building the schema costs far more than using it.
const schemaCache = new WeakMap<Limits, ReturnType<typeof pairMessageSchema>>();

export function parsePair(input: { key: Buffer | null; value: Buffer | null }, limits: Limits): ParseResult {
  try {
    return parseUnsafe(input, limits);
  } catch (err) {
    // Last resort so that a validator bug dead-letters one record instead of stopping the stream.
    return reject('invalid-schema', `value: could not be validated (${oneLine(err instanceof Error ? err.message : String(err))})`);
  }
}

function parseUnsafe({ key, value }: { key: Buffer | null; value: Buffer | null }, limits: Limits): ParseResult {
  if (value === null || value.length === 0) return reject('invalid-json', 'value: empty (null or zero bytes)');
  if (value.length > limits.maxMessageBytes) {
    return reject('oversized', `value: ${value.length} bytes, over maxMessageBytes ${limits.maxMessageBytes}`);
  }
  let text: string;
  try {
    text = utf8.decode(value);
  } catch {
    return reject('invalid-json', 'value: not valid UTF-8');
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    return reject('invalid-json', `value: invalid JSON (${oneLine(err instanceof Error ? err.message : String(err))})`);
  }

  let schema = schemaCache.get(limits);
  if (!schema) schemaCache.set(limits, (schema = pairMessageSchema(limits)));
  const parsed = schema.safeParse(raw, { reportInput: true });
  if (!parsed.success) {
    const [first, ...rest] = parsed.error.issues;
    if (!first) return reject('invalid-schema', 'value: rejected by the schema');
    const inImage = first.path[0] === 'image' && isObject(raw) && Object.hasOwn(raw, 'image');
    const more = rest.length > 0 ? ` (+${rest.length} more)` : '';
    return reject(inImage ? 'invalid-image' : 'invalid-schema', describeIssue(first, [], raw) + more);
  }
  const msg = parsed.data;

  const keyText = key === null || key.length === 0 ? undefined : key.toString('utf8');
  if (keyText !== undefined && keyText !== msg.id) {
    return reject('key-mismatch', `key: ${quote(keyText)} differs from id ${quote(msg.id)}`);
  }
  let ts: number | undefined;
  if (msg.ts !== undefined) {
    ts = Date.parse(msg.ts);
    if (!Number.isFinite(ts)) return reject('invalid-schema', `ts: ${quote(msg.ts)} is not a valid date`);
  }
  const image = checkImage(msg.image, limits);
  if (!image.ok) return reject('invalid-image', image.detail);

  const pair: ValidPair = { id: msg.id, caption: msg.caption, image: image.image };
  if (msg.source !== undefined) pair.source = msg.source;
  if (ts !== undefined) pair.ts = ts;
  if (msg.meta !== undefined) pair.meta = msg.meta;
  return { ok: true, pair };
}

export type PairMessageInput = Omit<ValidPair, 'image'> & { image: EncodableImage };

/**
 * The JSON value for a pair (feed generator, tests, producers). Inverse of parsePair for valid input;
 * it does not validate (parsePair does), and throws RangeError on a non-finite `ts`.
 */
export function encodePairMessage(pair: PairMessageInput): Buffer {
  const message: PairMessage = { id: pair.id, caption: pair.caption, image: imageToMessage(pair.image) };
  if (pair.source !== undefined) message.source = pair.source;
  if (pair.ts !== undefined) message.ts = new Date(pair.ts).toISOString();
  if (pair.meta !== undefined) message.meta = pair.meta;
  return Buffer.from(JSON.stringify(message), 'utf8');
}

// ---------------------------------------------------------------------------------------------------
// Issue -> one readable line.

type Issue = z.core.$ZodIssue;
type PathKey = PropertyKey;

function describeIssue(issue: Issue, prefix: readonly PathKey[], raw: unknown): string {
  const path = [...prefix, ...issue.path];
  if (issue.code === 'invalid_union' && path.length === 1 && path[0] === 'image') return describeImageUnion(issue, raw);
  return `${formatPath(path)}: ${describeProblem(issue)}`;
}

/** The union's per-branch errors are noise except for the branch whose variant key is present. */
function describeImageUnion(issue: Extract<Issue, { code: 'invalid_union' }>, raw: unknown): string {
  const image = isObject(raw) ? raw['image'] : undefined;
  if (image === undefined) return 'image: is required';
  const expected = `expected an object with exactly one of ${IMAGE_VARIANTS.join(', ')}`;
  if (!isObject(image)) return `image: ${expected}, got ${kindOf(image)}`;
  const keys = variantKeysOf(image);
  const [only] = keys;
  if (keys.length !== 1 || only === undefined) {
    return `image: ${expected}, got ${keys.length === 0 ? 'none' : keys.join(' and ')}`;
  }
  const branch = issue.errors[IMAGE_VARIANTS.indexOf(only)];
  const sub = branch?.[0];
  return sub ? describeIssue(sub, ['image'], raw) : `image: invalid ${only} image`;
}

function describeProblem(issue: Issue): string {
  const input: unknown = issue.input;
  switch (issue.code) {
    case 'invalid_type':
      if (input === undefined) return 'is required';
      if (issue.expected === 'int') return `must be an integer, got ${preview(input)}`;
      if (typeof input === 'number' && !Number.isFinite(input)) return `must be a finite number, got ${String(input)}`;
      return `expected ${issue.expected === 'record' ? 'object' : issue.expected}, got ${kindOf(input)}`;
    case 'too_small':
    case 'too_big': {
      const bound = issue.code === 'too_small' ? issue.minimum : issue.maximum;
      const word = issue.code === 'too_small' ? 'least' : 'most';
      if (issue.origin === 'string' && typeof input === 'string') {
        if (issue.code === 'too_small' && input.length === 0) return 'must not be empty';
        return `must be at ${word} ${String(bound)} characters, got ${input.length}`;
      }
      if (issue.origin === 'array' && Array.isArray(input)) return `must have at ${word} ${String(bound)} values, got ${input.length}`;
      return `must be at ${word} ${String(bound)}, got ${preview(input)}`;
    }
    case 'invalid_format':
      if (issue.format === 'base64') return 'must be standard base64 (A-Z a-z 0-9 + /, "=" padded, no whitespace)';
      if (issue.format === 'datetime') {
        return `must be an ISO-8601 date-time with Z or an offset, like "2024-05-01T12:00:00Z", got ${preview(input)}`;
      }
      return oneLine(issue.message);
    case 'invalid_value':
      return `must be one of ${issue.values.map((v) => String(v)).join(', ')}, got ${preview(input)}`;
    case 'unrecognized_keys': {
      const names = issue.keys.slice(0, 5).map(quote).join(', ') + (issue.keys.length > 5 ? ', ...' : '');
      const hint = issue.path.length === 0 ? ' (extra fields belong in "meta")' : '';
      return `unknown key${issue.keys.length > 1 ? 's' : ''} ${names}${hint}`;
    }
    default:
      return oneLine(issue.message);
  }
}

function formatPath(path: readonly PathKey[]): string {
  if (path.length === 0) return 'value';
  return path
    .map((seg, i) => (typeof seg === 'number' ? `[${seg}]` : `${i === 0 ? '' : '.'}${String(seg)}`))
    .join('');
}

function kindOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number' && !Number.isFinite(v)) return String(v);
  return typeof v;
}

function preview(v: unknown): string {
  if (typeof v === 'string') return quote(v);
  if (typeof v === 'number' || typeof v === 'boolean' || v === null) return String(v);
  return kindOf(v);
}

function quote(s: string): string {
  return oneLine(JSON.stringify(s.length > 64 ? `${s.slice(0, 64)}...` : s));
}

/** Details go into DLQ headers and log lines: one line, bounded. */
function oneLine(s: string): string {
  // eslint-disable-next-line no-control-regex
  const flat = s.replace(/[\u0000-\u001f\u007f\u2028\u2029]+/g, ' ').trim();
  return flat.length > 240 ? `${flat.slice(0, 240)}...` : flat;
}

function jsonByteLength(v: unknown): number | undefined {
  try {
    return Buffer.byteLength(JSON.stringify(v), 'utf8');
  } catch {
    return undefined;
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function reject(reason: RejectReason, detail: string): ParseResult {
  return { ok: false, rejection: { reason, detail } };
}
