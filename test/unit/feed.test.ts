/**
 * The Fashion-MNIST feed: caption vocabulary and noise rates, the split boundaries of the real package
 * files, the schedule (order, drift, no replacement) and the messages it produces.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Producer } from 'kafkajs';
import { beforeAll, describe, expect, test } from 'vitest';
import {
  loadFashionMnist,
  parseClassFile,
  resolveFashionMnistDir,
  TEST_PER_CLASS,
  TRAIN_PER_CLASS,
  type FashionMnistSet,
} from '../../examples/fashion-mnist/dataset.js';
import {
  fashionMnistFeed,
  fashionMnistPairs,
  parseClassList,
  parseScheduleText,
  planFashionMnistFeed,
  type FeedPair,
} from '../../examples/fashion-mnist/feed.js';
import { produceAll } from '../../app/produce.js';
import { createRng } from '../../src/cluster/rng.js';
import { LimitsConfig } from '../../src/config.js';
import { parsePair } from '../../src/contract/pair.js';
import { ConfigError, EnvironmentError } from '../../src/errors.js';
import {
  BRANDS,
  captionFor,
  PLACEHOLDERS,
  resolveCaptionOptions,
  SHOP_NOISE,
  SHOPS,
  uninformativeCaption,
  type GeneratedCaption,
} from '../../examples/fashion-mnist/captions.js';
import {
  FASHION_FAMILIES,
  FASHION_MNIST_CLASSES,
  fillTemplate,
  labelsOfFamily,
  ZERO_SHOT_TEMPLATES,
  zeroShotPrompts,
} from '../../examples/fashion-mnist/classes.js';

const FOOTWEAR = labelsOfFamily('footwear');

/** Lower case, with hyphens/underscores/slashes as spaces, so slugs and file names match phrases. */
function normalise(text: string): string {
  return text.toLowerCase().replace(/[-_/]+/g, ' ');
}

/** Whole-word mention, plural allowed: "tee" matches "tees" and "#tee", not "guaranteed". */
function mentions(text: string, word: string): boolean {
  const w = normalise(word).replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`(^|[^a-z0-9])${w}(s|es)?([^a-z0-9]|$)`).test(normalise(text));
}

function synonymsOf(label: number): readonly string[] {
  return FASHION_MNIST_CLASSES[label]!.synonyms;
}

function hypernymsOf(label: number): readonly string[] {
  return FASHION_FAMILIES[FASHION_MNIST_CLASSES[label]!.family].hypernyms;
}

const ALL_CLASS_WORDS = [...new Set(FASHION_MNIST_CLASSES.flatMap((c) => [...c.synonyms, ...hypernymsOf(c.label)]))];

function captions(n: number, seed: number, label: (i: number) => number, options?: Parameters<typeof captionFor>[0]['options']): (GeneratedCaption & { label: number })[] {
  const rng = createRng(seed);
  return Array.from({ length: n }, (_, i) => ({ ...captionFor({ label: label(i), rng, options }), label: label(i) }));
}

describe('class vocabulary and zero-shot prompts', () => {
  test('ten classes in label order, the prompt name first among the synonyms, families as documented', () => {
    expect(FASHION_MNIST_CLASSES.map((c) => c.label)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    for (const c of FASHION_MNIST_CLASSES) expect(c.synonyms[0]).toBe(c.promptName);
    expect(labelsOfFamily('tops')).toEqual([0, 2, 4, 6]);
    expect(labelsOfFamily('dresses')).toEqual([3]);
    expect(labelsOfFamily('bottoms')).toEqual([1]);
    expect(FOOTWEAR).toEqual([5, 7, 9]);
    expect(labelsOfFamily('bags')).toEqual([8]);
  });

  test('prompts fill every template and fix the article', () => {
    const prompts = zeroShotPrompts(9);
    expect(prompts).toHaveLength(ZERO_SHOT_TEMPLATES.length);
    expect(prompts).toContain('a photo of an ankle boot.');
    expect(prompts).toContain('an ankle boot on a plain background.');
    expect(prompts).toContain('a photo of the ankle boot.');
    expect(zeroShotPrompts(7)).toContain('a product photo of a sneaker.');
    expect(fillTemplate('a {} and a {}', 'egg')).toBe('an egg and an egg');
    expect(() => zeroShotPrompts(10)).toThrow(RangeError);
  });
});

describe('captions', () => {
  test('are deterministic for a seed and differ between seeds', () => {
    const a = captions(300, 11, (i) => i % 10);
    expect(captions(300, 11, (i) => i % 10)).toEqual(a);
    const b = captions(300, 12, (i) => i % 10);
    expect(b.filter((c, i) => c.caption !== a[i]!.caption).length).toBeGreaterThan(250);
  });

  test('wrong and uninformative shares match the options over 10k captions', () => {
    // Binomial standard deviations at n = 10k are at most 0.005; the tolerance is about four of them.
    for (const [options, wrong, uninformative] of [
      [undefined, 0.1, 0.05],
      [{ wrongShare: 0.3, uninformativeShare: 0.2 }, 0.3, 0.2],
      [{ wrongShare: 0, uninformativeShare: 0 }, 0, 0],
    ] as const) {
      const out = captions(10_000, 5, (i) => i % 10, options);
      const share = (kind: string) => out.filter((c) => c.kind === kind).length / out.length;
      expect(Math.abs(share('wrong') - wrong)).toBeLessThan(0.02);
      expect(Math.abs(share('uninformative') - uninformative)).toBeLessThan(0.02);
    }
  });

  test('clean captions name their class or its family, mostly by a synonym', () => {
    const clean = captions(5000, 3, (i) => i % 10).filter((c) => c.kind === 'clean');
    expect(clean.every((c) => c.captionLabel === c.label)).toBe(true);
    const missing = clean.filter((c) => ![...synonymsOf(c.label), ...hypernymsOf(c.label)].some((w) => mentions(c.caption, w)));
    expect(missing.map((c) => c.caption)).toEqual([]);
    const bySynonym = clean.filter((c) => synonymsOf(c.label).some((w) => mentions(c.caption, w))).length;
    expect(bySynonym / clean.length).toBeGreaterThan(0.85);
  });

  test('wrong captions are written for another class, spread over all nine others', () => {
    const wrong = captions(10_000, 4, () => 7).filter((c) => c.kind === 'wrong');
    expect(wrong.every((c) => c.captionLabel !== null && c.captionLabel !== 7)).toBe(true);
    expect(new Set(wrong.map((c) => c.captionLabel)).size).toBe(9);
    // The text names the class it was written for.
    const named = wrong.filter((c) => [...synonymsOf(c.captionLabel!), ...hypernymsOf(c.captionLabel!)].some((w) => mentions(c.caption, w)));
    expect(named.length).toBe(wrong.length);
  });

  test('uninformative captions and the noise vocabulary carry no class or family word', () => {
    const noise = [...SHOP_NOISE, ...BRANDS, ...SHOPS, ...PLACEHOLDERS];
    expect(noise.filter((n) => ALL_CLASS_WORDS.some((w) => mentions(n, w)))).toEqual([]);
    const rng = createRng(9);
    const texts = Array.from({ length: 3000 }, () => uninformativeCaption(rng));
    expect(texts.filter((t) => ALL_CLASS_WORDS.some((w) => mentions(t, w)))).toEqual([]);
    const flagged = captions(5000, 10, (i) => i % 10).filter((c) => c.kind === 'uninformative');
    expect(flagged.length).toBeGreaterThan(100);
    expect(flagged.every((c) => c.captionLabel === null)).toBe(true);
  });

  test('are diverse: hundreds of distinct forms per class, numbers aside', () => {
    for (const label of [0, 9]) {
      const texts = captions(2000, 21 + label, () => label, { wrongShare: 0, uninformativeShare: 0 }).map((c) => c.caption);
      expect(new Set(texts).size).toBeGreaterThan(1500);
      expect(new Set(texts.map((t) => t.replace(/\d+/g, '#'))).size).toBeGreaterThan(1000);
    }
  });

  test('bad options and labels are rejected', () => {
    expect(() => resolveCaptionOptions({ wrongShare: 0.7, uninformativeShare: 0.4 })).toThrow(ConfigError);
    expect(() => resolveCaptionOptions({ wrongShare: -0.1 })).toThrow(/wrongShare/);
    expect(() => captionFor({ label: 10, rng: createRng(1) })).toThrow(RangeError);
  });
});

describe('schedule', () => {
  test('the default draws every training image of every class exactly once, classes interleaved', () => {
    const plan = planFashionMnistFeed({ seed: 1 });
    expect(plan).toHaveLength(10 * TRAIN_PER_CLASS);
    expect(new Set(plan.map((s) => `${s.label}/${s.index}`)).size).toBe(plan.length);
    expect(plan.every((s) => s.index >= 0 && s.index < TRAIN_PER_CLASS)).toBe(true);
    // Interleaved: the first thousand already hold every class.
    expect(new Set(plan.slice(0, 1000).map((s) => s.label)).size).toBe(10);
    expect(planFashionMnistFeed({ seed: 1 }).slice(0, 50)).toEqual(plan.slice(0, 50));
    expect(planFashionMnistFeed({ seed: 2 }).slice(0, 50)).not.toEqual(plan.slice(0, 50));
  });

  test('a drift schedule keeps its phases in order and never repeats an image', () => {
    const schedule = [
      { classes: [0, 1, 2, 3, 4, 6], count: 20_000 },
      { classes: [5, 7, 9], count: 8000 },
      { classes: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9] },
    ];
    const plan = planFashionMnistFeed({ seed: 3, schedule });
    expect(plan).toHaveLength(60_000);
    expect(new Set(plan.map((s) => `${s.label}/${s.index}`)).size).toBe(60_000);
    expect(plan.slice(0, 20_000).some((s) => FOOTWEAR.includes(s.label))).toBe(false);
    expect(plan.slice(20_000, 28_000).every((s) => FOOTWEAR.includes(s.label))).toBe(true);
    expect(plan.slice(0, 28_000).some((s) => s.label === 8)).toBe(false);
    expect(new Set(plan.slice(20_000, 28_000).map((s) => s.label)).size).toBe(3);
  });

  test('the test split draws from the last thousand per class; impossible counts fail up front', () => {
    const plan = planFashionMnistFeed({ seed: 4, split: 'test', schedule: [{ classes: [8] }] });
    expect(plan).toHaveLength(TEST_PER_CLASS);
    expect(plan.every((s) => s.label === 8 && s.index >= TRAIN_PER_CLASS && s.index < TRAIN_PER_CLASS + TEST_PER_CLASS)).toBe(true);
    expect(() => planFashionMnistFeed({ seed: 4, schedule: [{ classes: [8], count: 5000 }, { classes: [8], count: 1001 }] })).toThrow(/phase 2.*1001.*only 1000/);
    expect(() => planFashionMnistFeed({ seed: 4, schedule: [] })).toThrow(ConfigError);
    expect(() => planFashionMnistFeed({ seed: 4, schedule: [{ classes: [11] }] })).toThrow(ConfigError);
    expect(() => planFashionMnistFeed({ seed: 0.5 })).toThrow(ConfigError);
  });

  test('the command-line schedule accepts labels and family names', () => {
    expect(parseScheduleText('tops,bottoms,dresses:20000/footwear:8000')).toEqual([
      { classes: [0, 1, 2, 3, 4, 6], count: 20_000 },
      { classes: [5, 7, 9], count: 8000 },
    ]);
    expect(parseScheduleText('8/0,5')).toEqual([{ classes: [8] }, { classes: [0, 5] }]);
    expect(parseClassList('bags,1,1')).toEqual([1, 8]);
    expect(() => parseScheduleText('shoes:10')).toThrow(/neither a label/);
    expect(() => parseScheduleText('0:ten')).toThrow(ConfigError);
    expect(() => parseScheduleText('0:0')).toThrow(ConfigError);
  });
});

describe('class file parser', () => {
  const image = (v: number) => `[${Array.from({ length: 784 }, () => v).join(',')}]`;

  test('drops empty entries and tolerates JSON whitespace', () => {
    const text = ` { "data" : [ ${image(7)} ,[], \n${image(255)} ] } \n`;
    const out = parseClassFile(Buffer.from(text), 'x.json');
    expect(out).toHaveLength(2 * 784);
    expect(out[0]).toBe(7);
    expect(out[784]).toBe(255);
    expect(parseClassFile(Buffer.from('{"data":[]}'), 'x.json')).toHaveLength(0);
  });

  test.each([
    ['a value over 255', `{"data":[${image(256)}]}`, /integer 0\.\.255/],
    ['a negative value', `{"data":[${image(-1)}]}`, /integer 0\.\.255/],
    ['a leading zero', `{"data":[[07${',0'.repeat(783)}]]}`, /integer 0\.\.255/],
    ['a short image', '{"data":[[1,2,3]]}', /3 values, expected 784/],
    ['trailing content', `{"data":[${image(1)}]}x`, /trailing/],
    ['another shape', '{"images":[]}', /expected "\\"data\\""/],
  ])('rejects %s', (_, text, message) => {
    expect(() => parseClassFile(Buffer.from(text), 'x.json')).toThrow(EnvironmentError);
    expect(() => parseClassFile(Buffer.from(text), 'x.json')).toThrow(message);
  });
});

describe('Fashion-MNIST package files', () => {
  let train: FashionMnistSet;
  let test_: FashionMnistSet;
  beforeAll(async () => {
    // Class 0 has the package's two empty entries; class 5 is the smallest file.
    [train, test_] = await Promise.all([loadFashionMnist({ split: 'train', classes: [5, 0] }), loadFashionMnist({ split: 'test', classes: [0, 5] })]);
  });

  test('train is the first 6000 images per class, test the last 1000, disjoint', () => {
    for (const [set, start, size] of [
      [train, 0, TRAIN_PER_CLASS],
      [test_, TRAIN_PER_CLASS, TEST_PER_CLASS],
    ] as const) {
      expect(set.images).toHaveLength(2 * size);
      for (const label of [0, 5]) {
        const own = set.images.filter((i) => i.label === label);
        expect(own.map((i) => i.index)).toEqual(Array.from({ length: size }, (_, k) => start + k));
      }
      expect(set.images.every((i) => i.pixels.length === 784)).toBe(true);
    }
    const trainIds = new Set(train.images.map((i) => `${i.label}/${i.index}`));
    expect(test_.images.some((i) => trainIds.has(`${i.label}/${i.index}`))).toBe(false);
  });

  test('pixels are the package values, real images in 0..255', async () => {
    const raw = JSON.parse(await readFile(join(resolveFashionMnistDir(), 'src', 'clothes', '0.json'), 'utf8')) as { data: number[][] };
    const images = raw.data.filter((d) => d.length > 0);
    expect(images).toHaveLength(TRAIN_PER_CLASS + TEST_PER_CLASS);
    const sampled = [...train.images, ...test_.images].filter((i) => i.label === 0 && i.index % 97 === 0);
    expect(sampled.filter((img) => !Buffer.from(img.pixels).equals(Buffer.from(images[img.index]!)))).toEqual([]);
    for (const img of [...train.images, ...test_.images]) {
      const max = img.pixels.reduce((m, v) => Math.max(m, v), 0);
      expect(max).toBeGreaterThan(50); // a garment, not a blank frame
    }
  });

  test('a missing package is an EnvironmentError', async () => {
    await expect(loadFashionMnist({ split: 'train', classes: [0], packageDir: '/nonexistent/fashion-mnist' })).rejects.toThrow(EnvironmentError);
    await expect(loadFashionMnist({ split: 'train', classes: [0], packageDir: '/nonexistent/fashion-mnist' })).rejects.toThrow(/fashion-mnist package/);
  });

  test('the feed yields valid pair messages keyed by id, in schedule order, with ground truth in meta', async () => {
    const schedule = [
      { classes: [0], count: 400 },
      { classes: [0, 5], count: 600 },
    ];
    const messages: { key: string; value: Buffer }[] = [];
    for await (const m of fashionMnistPairs({ seed: 8, schedule, dataset: train })) messages.push(m);
    expect(messages).toHaveLength(1000);
    const limits = LimitsConfig.parse({});
    const pairs = messages.map((m) => {
      const parsed = parsePair({ key: Buffer.from(m.key), value: m.value }, limits);
      if (!parsed.ok) throw new Error(parsed.rejection.detail);
      return parsed.pair;
    });
    expect(new Set(pairs.map((p) => p.id)).size).toBe(1000);
    const byId = new Map(train.images.map((i) => [`fmnist-train-${i.label}-${i.index}`, i]));
    for (const p of pairs) {
      const img = byId.get(p.id);
      expect(img).toBeDefined();
      expect(p.source).toBe('fashion-mnist');
      expect(p.meta?.['label']).toBe(img!.label);
      const { data, ...shape } = p.image as Extract<typeof p.image, { kind: 'pixels' }>;
      expect(shape).toEqual({ kind: 'pixels', width: 28, height: 28, channels: 1 });
      // Buffer.equals: vitest's deep equality on typed arrays costs milliseconds per image.
      expect(Buffer.from(data).equals(img!.pixels)).toBe(true);
    }
    expect(pairs.slice(0, 400).every((p) => p.meta?.['label'] === 0)).toBe(true);
    expect(pairs.slice(400).some((p) => p.meta?.['label'] === 5)).toBe(true);
    const kinds = new Set(pairs.map((p) => p.meta?.['captionKind']));
    expect(kinds).toEqual(new Set(['clean', 'wrong', 'uninformative']));
  });

  test('an image keeps its caption whatever the schedule; the test split has its own ids', async () => {
    const collect = async (options: Parameters<typeof fashionMnistFeed>[0]) => {
      const out: FeedPair[] = [];
      for await (const p of fashionMnistFeed(options)) out.push(p);
      return out;
    };
    const a = await collect({ seed: 8, schedule: [{ classes: [0, 5], count: 3000 }], dataset: train });
    const b = new Map((await collect({ seed: 8, schedule: [{ classes: [5] }, { classes: [0] }], dataset: train })).map((p) => [p.id, p.caption]));
    expect(a.every((p) => b.get(p.id) === p.caption)).toBe(true);
    const t = await collect({ seed: 8, split: 'test', schedule: [{ classes: [5], count: 10 }], dataset: test_ });
    expect(t.every((p) => /^fmnist-test-5-6\d{3}$/.test(p.id))).toBe(true);
    await expect(collect({ seed: 8, split: 'test', dataset: train })).rejects.toThrow(ConfigError);
  });
});

describe('produceAll keys', () => {
  test("an item's own key wins over the id in its value", async () => {
    const sent: { key: string | null }[] = [];
    const producer = { sendBatch: async ({ topicMessages }: { topicMessages: { messages: { key: string | null }[] }[] }) => void sent.push(...topicMessages.flatMap((t) => t.messages)) } as unknown as Producer;
    const items = (async function* () {
      yield { key: 'k1', value: Buffer.from('{"id":"other"}') };
      yield { value: Buffer.from('{"id":"from-value"}') };
    })();
    await produceAll({ producer, topic: 't', items });
    expect(sent.map((m) => m.key)).toEqual(['k1', 'from-value']);
  });

  test('big values go out in requests of at most maxBatchBytes, all of them, in order', async () => {
    const requests: number[] = [];
    const sent: string[] = [];
    const producer = {
      sendBatch: async ({ topicMessages }: { topicMessages: { messages: { key: string; value: Buffer }[] }[] }) => {
        const messages = topicMessages.flatMap((t) => t.messages);
        requests.push(messages.reduce((sum, m) => sum + m.key.length + m.value.length, 0));
        sent.push(...messages.map((m) => m.key));
      },
    } as unknown as Producer;
    const items = (async function* () {
      for (let i = 0; i < 40; i++) yield { key: `k${i}`, value: Buffer.alloc(300) };
    })();
    await produceAll({ producer, topic: 't', items, maxBatchBytes: 1000 });
    expect(sent).toEqual(Array.from({ length: 40 }, (_, i) => `k${i}`));
    expect(Math.max(...requests)).toBeLessThanOrEqual(1000);
  });
});
