/**
 * Test data: valid pairs with captions from a few well-separated topics (so clustering has structure)
 * and tiny grey images, plus one invalid message of every kind the contract rejects.
 */
import { randomUUID } from 'node:crypto';

const TOPICS = [
  ['red', 'cotton', 't-shirt', 'sleeve', 'casual', 'top'],
  ['leather', 'ankle', 'boots', 'heel', 'sole', 'footwear'],
  ['denim', 'blue', 'jeans', 'trousers', 'slim', 'pants'],
  ['handbag', 'strap', 'zipper', 'tote', 'bag', 'purse'],
  ['summer', 'floral', 'dress', 'skirt', 'pleated', 'silk'],
  ['running', 'sneaker', 'lace', 'mesh', 'trainer', 'sport'],
  ['wool', 'knit', 'pullover', 'sweater', 'warm', 'winter'],
  ['rain', 'hooded', 'coat', 'jacket', 'waterproof', 'zip'],
];

export interface FixturePair {
  id: string;
  key: Buffer;
  value: Buffer;
  topic: number;
}

/** Deterministic small PRNG so the fixtures are the same on every run. */
function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function makePairs(count: number, { seed = 1, prefix = randomUUID().slice(0, 8) } = {}): FixturePair[] {
  const rand = rng(seed);
  const pixels = Buffer.alloc(16);
  return Array.from({ length: count }, (_, i) => {
    const topic = Math.floor(rand() * TOPICS.length);
    const words = TOPICS[topic]!;
    const caption = Array.from({ length: 4 + Math.floor(rand() * 4) }, () => words[Math.floor(rand() * words.length)]).join(' ');
    for (let p = 0; p < pixels.length; p++) pixels[p] = Math.floor(rand() * 256);
    const id = `${prefix}-${i}`;
    const value = Buffer.from(JSON.stringify({ id, caption: `${caption} #${i}`, image: { pixels: pixels.toString('base64'), width: 4, height: 4, channels: 1 }, source: 'fixtures' }));
    return { id, key: Buffer.from(id), value, topic };
  });
}

/** One message per rejection class; `reason` is what the DLQ header must say. */
export function makeInvalidMessages(prefix = randomUUID().slice(0, 8), maxMessageBytes = 65_536): { key: Buffer | null; value: Buffer; reason: string }[] {
  const img = { pixels: Buffer.alloc(16).toString('base64'), width: 4, height: 4, channels: 1 };
  const json = (o: unknown) => Buffer.from(JSON.stringify(o));
  return [
    { key: null, value: Buffer.from('{"id": "x", "caption": '), reason: 'invalid-json' },
    { key: null, value: Buffer.from('not json at all'), reason: 'invalid-json' },
    { key: null, value: json({ id: `${prefix}-nocap`, image: img }), reason: 'invalid-schema' },
    { key: null, value: json({ id: `${prefix}-empty`, caption: '   ', image: img }), reason: 'invalid-schema' },
    { key: null, value: json({ id: `${prefix}-extra`, caption: 'a shirt', image: img, colour: 'red' }), reason: 'invalid-schema' },
    { key: null, value: json({ id: `${prefix}-pix`, caption: 'a shirt', image: { ...img, width: 5 } }), reason: 'invalid-image' },
    { key: null, value: json({ id: `${prefix}-b64`, caption: 'a shirt', image: { ...img, pixels: '!!notbase64!!' } }), reason: 'invalid-image' },
    { key: null, value: Buffer.from(`{"id": "${prefix}-inf", "caption": "a shirt", "image": {"embedding": [1, 1e999]}}`), reason: 'invalid-image' },
    { key: null, value: json({ id: `${prefix}-png`, caption: 'a shirt', image: { encoded: Buffer.from('\x89PNG\r\n\x1a\n garbage').toString('base64') } }), reason: 'invalid-image' },
    { key: Buffer.from('other-id'), value: json({ id: `${prefix}-key`, caption: 'a shirt', image: img }), reason: 'key-mismatch' },
    { key: null, value: json({ id: `${prefix}-big`, caption: 'x'.repeat(maxMessageBytes), image: img }), reason: 'oversized' },
  ];
}
