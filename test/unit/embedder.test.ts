import { describe, expect, it } from 'vitest';
import { ConfigSchema, HashedEmbedderConfig, type EmbedderSettings } from '../../src/config.js';
import { createEmbedder, ModelNotPulledError, resolveEmbedderSettings, type CaptionEmbedder } from '../../src/embed/embedder.js';
import { createHashedEmbedder, MAX_TOKENS } from '../../src/embed/hashed.js';
import { ConfigError, StateError } from '../../src/errors.js';

const hashed = (overrides: Record<string, unknown> = {}) =>
  createHashedEmbedder(HashedEmbedderConfig.parse({ kind: 'hashed', ...overrides }));

function rows(e: CaptionEmbedder, flat: Float32Array): Float32Array[] {
  return Array.from({ length: flat.length / e.dim }, (_, i) => flat.subarray(i * e.dim, (i + 1) * e.dim));
}

const dot = (a: Float32Array, b: Float32Array) => a.reduce((s, x, i) => s + x * b[i]!, 0);
const norm = (a: Float32Array) => Math.sqrt(dot(a, a));

async function embedOne(e: CaptionEmbedder, caption: string): Promise<Float32Array> {
  return e.embed([caption]);
}

describe('hashed caption embedder', () => {
  it('is deterministic across calls and instances, and batch-independent', async () => {
    const captions = ['a red cotton t-shirt for men', 'black leather ankle boots', 'sandal'];
    const a = await hashed().embed(captions);
    const b = await hashed().embed(captions);
    expect(b).toEqual(a);
    const e = hashed();
    const single = await embedOne(e, captions[1]!);
    expect(single).toEqual(a.subarray(e.dim, 2 * e.dim));
  });

  it('gives unit-norm rows of the configured dimension', async () => {
    for (const dim of [8, 64, 256, 1000]) {
      const e = hashed({ dim });
      expect(e.dim).toBe(dim);
      const out = await e.embed(['a photo of a sneaker', 'summer dress with flowers', 'x']);
      expect(out.length).toBe(3 * dim);
      for (const row of rows(e, out)) expect(norm(row)).toBeCloseTo(1, 5);
    }
  });

  it('puts paraphrases closer than unrelated captions', async () => {
    const e = hashed();
    const [shirt, paraphrase, boots, bag, bagParaphrase] = rows(
      e,
      await e.embed([
        'a red cotton t-shirt for men',
        "men's red tshirt made of cotton",
        'black leather ankle boots',
        'small leather handbag with a gold chain',
        'leather hand bag, gold chain strap, small',
      ]),
    );
    expect(dot(shirt!, paraphrase!)).toBeGreaterThan(dot(shirt!, boots!) + 0.2);
    expect(dot(shirt!, paraphrase!)).toBeGreaterThan(dot(paraphrase!, boots!) + 0.2);
    expect(dot(bag!, bagParaphrase!)).toBeGreaterThan(dot(bag!, shirt!) + 0.2);
  });

  it('ignores case, width and punctuation variants (NFKC + lowercase)', async () => {
    const e = hashed();
    const plain = await embedOne(e, 'red t-shirt 42');
    expect(await embedOne(e, 'RED  T‑SHIRT, ４２!')).toEqual(plain);
  });

  it('gives an all-zero row only to captions without features', async () => {
    const e = hashed();
    const [empty, blank, punct, word] = rows(e, await e.embed(['', '   \t\n', '!!! ... ???', 'dress']));
    for (const r of [empty, blank, punct]) expect(Array.from(r!).every((x) => x === 0)).toBe(true);
    expect(norm(word!)).toBeCloseTo(1, 5);
  });

  it('embeds CJK, emoji and other scripts', async () => {
    const e = hashed();
    const [zh, zhShort, emoji, ru, en] = rows(
      e,
      await e.embed(['红色棉质T恤', '红色T恤', '👕👗 summer', 'красная футболка', 'black leather ankle boots']),
    );
    for (const r of [zh, zhShort, emoji, ru]) expect(norm(r!)).toBeCloseTo(1, 5);
    // Han characters are tokens of their own, so the two Chinese captions share words.
    expect(dot(zh!, zhShort!)).toBeGreaterThan(dot(zh!, en!) + 0.2);
  });

  it('bounds the work on a 1 MB caption and reads only its first MAX_TOKENS tokens', async () => {
    const e = hashed();
    const head = Array.from({ length: MAX_TOKENS }, (_, i) => `w${i}`).join(' ');
    const huge = `${head} ${'tail '.repeat(200_000)}`;
    expect(huge.length).toBeGreaterThan(1_000_000);
    const [a, b] = rows(e, await e.embed([huge, `${head} something else entirely`]));
    expect(norm(a!)).toBeCloseTo(1, 5);
    expect(a).toEqual(b);
    // A lone 1 MB token (no spaces) is still handled.
    expect(norm(await embedOne(e, 'z'.repeat(1 << 20)))).toBeCloseTo(1, 5);
  });

  it('gives different spaces for different seeds and records every parameter in the fingerprint', async () => {
    const caption = ['a red cotton t-shirt for men'];
    const a = await hashed({ seed: 0 }).embed(caption);
    const b = await hashed({ seed: 1 }).embed(caption);
    expect(Math.abs(dot(a, b))).toBeLessThan(0.5);

    const prints = [
      hashed(),
      hashed({ seed: 1 }),
      hashed({ dim: 128 }),
      hashed({ wordNgrams: 1 }),
      hashed({ charNgrams: [3] }),
      hashed({ charNgrams: [] }),
    ].map((e) => e.fingerprint);
    expect(new Set(prints).size).toBe(prints.length);
    expect(hashed().fingerprint).toBe(hashed().fingerprint);
  });

  it('works with char n-grams disabled and with word trigrams', async () => {
    for (const e of [hashed({ charNgrams: [] }), hashed({ wordNgrams: 3, charNgrams: [2, 5] })]) {
      const [a, b, c] = rows(e, await e.embed(['red cotton shirt', 'cotton shirt red', 'leather boots']));
      expect(norm(a!)).toBeCloseTo(1, 5);
      expect(dot(a!, b!)).toBeGreaterThan(dot(a!, c!));
    }
  });

  it('rejects bad settings with a ConfigError and refuses to embed after dispose', async () => {
    expect(() => createHashedEmbedder({ kind: 'hashed', dim: 0, seed: 0, wordNgrams: 2, charNgrams: [3] })).toThrow(ConfigError);
    const e = hashed();
    e.dispose();
    await expect(e.embed(['x'])).rejects.toBeInstanceOf(StateError);
  });
});

describe('createEmbedder', () => {
  it('builds the hashed embedder by name', async () => {
    const settings = ConfigSchema.parse({ embedder: { kind: 'hashed' } }).embedder;
    const e = await createEmbedder(settings, { modelsDir: '/nonexistent-models' });
    expect(e.dim).toBe(256);
    expect(e.fingerprint).toMatch(/^hashed-v1\(dim=256,/);
  });

  it('refuses a model-backed kind whose directory does not exist', async () => {
    const onnx: EmbedderSettings = { kind: 'onnx', dir: '/models/minilm', maxTokens: 128, pooling: 'mean', threads: 1 };
    await expect(createEmbedder(onnx, { modelsDir: '/nonexistent-models' })).rejects.toThrow(ConfigError);
    await expect(createEmbedder(onnx, { modelsDir: '/nonexistent-models' })).rejects.toThrow(/is not a directory/);
  });

  it('defaults to the pulled MiniLM and, when it is not pulled, names the command to run', async () => {
    const settings = ConfigSchema.parse({}).embedder;
    expect(settings).toMatchObject({ kind: 'onnx', model: 'minilm-l6' });
    const error = await createEmbedder(settings, { modelsDir: '/nonexistent-models' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ModelNotPulledError);
    expect(String(error)).toMatch(/modestream models pull minilm-l6/);
  });

  it('resolves pulled model names under modelsDir and refuses both or neither of model and dir', () => {
    const onnx = ConfigSchema.parse({ embedder: { kind: 'onnx', model: 'minilm-l3' } }).embedder;
    expect(resolveEmbedderSettings(onnx, { modelsDir: '/m' })).toMatchObject({ dir: '/m/minilm-l3' });
    const stat = ConfigSchema.parse({ embedder: { kind: 'static', model: 'minilm-l6' } }).embedder;
    expect(resolveEmbedderSettings(stat, { modelsDir: '/m' })).toMatchObject({ dir: '/m/minilm-l6/static' });
    const both = ConfigSchema.parse({ embedder: { kind: 'onnx', model: 'minilm-l6', dir: '/x' } }).embedder;
    expect(() => resolveEmbedderSettings(both, { modelsDir: '/m' })).toThrow(/exactly one of embedder.model/);
    const neither = ConfigSchema.parse({ embedder: { kind: 'static' } }).embedder;
    expect(() => resolveEmbedderSettings(neither, { modelsDir: '/m' })).toThrow(ConfigError);
  });
});
