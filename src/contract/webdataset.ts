/**
 * WebDataset samples as pairs (the layout img2dataset writes): a tar whose members `<key>.<ext>` group
 * into samples by key, e.g. `000123.jpg` (the image), `000123.txt` (the caption), `000123.json`
 * (metadata, the caption's fallback field). The key is the member's path up to the first dot of its
 * file name, the extension everything after it (WebDataset's own rule), lower-cased here. Pure: the tar
 * reading is app/webdataset.ts's.
 */
import { encodePairMessage } from './pair.js';

/** Image members by preference, when a sample holds several. */
export const IMAGE_EXTENSIONS = ['jpg', 'jpeg', 'png', 'webp', 'gif', 'avif'] as const;

export interface WebDatasetSample {
  key: string;
  /** Extension (lower-case) -> bytes. */
  members: Map<string, Buffer>;
}

export type SkipReason = 'missing-caption' | 'no-image' | 'unknown-image-type' | 'oversized';

export type SampleResult = { ok: true; id: string; value: Buffer } | { ok: false; reason: SkipReason; detail: string };

export interface SampleOptions {
  /** The .json field read when a sample has no .txt caption. */
  captionField: string;
  /** A message over this many bytes is skipped as oversized (limits.maxMessageBytes: the router would refuse it). */
  maxMessageBytes: number;
  /** Set as each pair's `source` (e.g. the shard's file name). */
  source?: string;
}

/** `dir/000123.tar.gz`-style split of a member name; undefined for names without an extension. */
export function splitMemberName(name: string): { key: string; ext: string } | undefined {
  const slash = name.lastIndexOf('/');
  const dot = name.indexOf('.', slash + 1);
  if (dot <= slash + 1 || dot === name.length - 1) return undefined;
  return { key: name.slice(0, dot), ext: name.slice(dot + 1).toLowerCase() };
}

export function samplePair(sample: WebDatasetSample, options: SampleOptions): SampleResult {
  const { key, members } = sample;
  const imageExt = IMAGE_EXTENSIONS.find((ext) => members.has(ext));
  if (!imageExt) {
    const others = [...members.keys()].filter((ext) => ext !== 'txt' && ext !== 'json');
    return others.length
      ? { ok: false, reason: 'unknown-image-type', detail: `${key}: no JPEG, PNG, WebP, GIF or AVIF member (has .${others.join(', .')})` }
      : { ok: false, reason: 'no-image', detail: `${key}: no image member` };
  }
  const meta = parseJsonObject(members.get('json'));
  const text = members.get('txt')?.toString('utf8').trim();
  const field = meta?.[options.captionField];
  const caption = text || (typeof field === 'string' ? field.trim() : '');
  if (!caption) return { ok: false, reason: 'missing-caption', detail: `${key}: no .txt caption and no "${options.captionField}" in its .json` };
  const value = encodePairMessage({
    id: key,
    caption,
    image: { kind: 'encoded', bytes: members.get(imageExt)! },
    ...(options.source ? { source: options.source } : {}),
    ...(meta ? { meta } : {}),
  });
  if (value.length > options.maxMessageBytes) {
    return { ok: false, reason: 'oversized', detail: `${key}: ${value.length} bytes as a message, over maxMessageBytes ${options.maxMessageBytes}` };
  }
  return { ok: true, id: key, value };
}

function parseJsonObject(bytes: Buffer | undefined): Record<string, unknown> | undefined {
  if (!bytes) return undefined;
  try {
    const parsed: unknown = JSON.parse(bytes.toString('utf8'));
    return parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
