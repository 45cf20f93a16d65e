import { cp, mkdir, mkdtemp, readFile, readdir, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { distillStatic } from '../../app/models/distill.js';
import { createEmbedder } from '../../src/embed/embedder.js';
import { createOnnxEncoder } from '../../src/embed/onnx.js';
import { covariance, pca, projectRows, symmetricEigen, zipfSifWeights } from '../../src/embed/pca.js';
import { StaticModelJson, createStaticEmbedder, float32FromLE, float32ToLE } from '../../src/embed/static.js';
import { ConfigError, StateError } from '../../src/errors.js';
import { DataType, f32Initializer, i64Initializer, onnxModel, type GraphSpec } from '../support/onnx-writer.js';
import { H, MASK_ROW, bertSpecialAddedTokens, wordRow } from '../support/tiny-bert.js';

// --- small linear-algebra helpers for the expectations ---------------------------------------------

const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((s, x, i) => s + x * b[i]!, 0);
const row = (m: ArrayLike<number>, r: number, cols: number) => Array.from({ length: cols }, (_, c) => m[r * cols + c]!);
function normalized(v: number[]): number[] {
  const n = Math.hypot(...v);
  return n === 0 ? v.map(() => 0) : v.map((x) => x / n);
}

/** Deterministic pseudo-random numbers in [-1, 1) (a tiny LCG: tests need fixed inputs, not quality). */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 31 - 1;
  };
}

/** Orthonormal basis of R^n from fixed random vectors (Gram-Schmidt). */
function orthonormalBasis(n: number, seed: number): number[][] {
  const rand = lcg(seed);
  const basis: number[][] = [];
  while (basis.length < n) {
    let v = Array.from({ length: n }, rand);
    for (const b of basis) {
      const p = dot(v, b);
      v = v.map((x, i) => x - p * b[i]!);
    }
    basis.push(normalized(v));
  }
  return basis;
}

// --- PCA --------------------------------------------------------------------------------------------

describe('symmetricEigen', () => {
  it('returns orthonormal eigenvectors with A v = lambda v, largest eigenvalue first', () => {
    for (const n of [1, 2, 7, 40]) {
      const rand = lcg(n);
      const a = new Float64Array(n * n);
      for (let i = 0; i < n; i++) for (let j = i; j < n; j++) a[i * n + j] = a[j * n + i] = rand();
      const { values, vectors } = symmetricEigen(a, n);
      for (let i = 0; i < n; i++) {
        const v = row(vectors, i, n);
        const av = Array.from({ length: n }, (_, r) => dot(row(a, r, n), v));
        av.forEach((x, r) => expect(x).toBeCloseTo(values[i]! * v[r]!, 9));
        for (let j = 0; j < n; j++) expect(dot(v, row(vectors, j, n))).toBeCloseTo(i === j ? 1 : 0, 9);
        if (i > 0) expect(values[i]!).toBeLessThanOrEqual(values[i - 1]!);
      }
    }
  });

  it('handles repeated eigenvalues and an already diagonal matrix', () => {
    const diag = new Float64Array([2, 0, 0, 0, 5, 0, 0, 0, 2]);
    const { values, vectors } = symmetricEigen(diag, 3);
    expect(Array.from(values)).toEqual([5, 2, 2]);
    expect(Math.abs(vectors[1]!)).toBeCloseTo(1, 12); // first eigenvector is e2
  });
});

describe('pca', () => {
  // Rows = mean + sum_j c_j u_j with c over a full +/- factorial design: the design's columns are
  // orthogonal and zero-mean, so the sample covariance is exactly diag(sigma^2 * 8/7) in the u basis.
  const H = 5;
  const axes = orthonormalBasis(H, 7);
  const sigmas = [1, 3, 2]; // deliberately not sorted: the PCA must order by variance
  const mean = [0.5, -1, 2, 0, 3];
  const design: number[][] = [];
  for (let m = 0; m < 8; m++) design.push(sigmas.map((s, j) => ((m >> j) & 1 ? s : -s)));
  const rows = design.map((c) => mean.map((mu, d) => mu + c.reduce((s, cj, j) => s + cj * axes[j]![d]!, 0)));
  // Rows excluded through `keep` (huge, so any leak shows).
  const junk = [Array(H).fill(1e3), Array.from({ length: H }, (_, d) => -500 * d)];
  const all = [...junk.slice(0, 1), ...rows, ...junk.slice(1)];
  const matrix = {
    data: Float32Array.from(all.flat()),
    rows: all.length,
    cols: H,
    keep: Uint8Array.from(all, (_, i) => (i === 0 || i === all.length - 1 ? 0 : 1)),
  };

  it('finds the constructed axes, ordered by variance, up to sign', () => {
    const p = pca(matrix, 3);
    const byVariance = [1, 2, 0]; // sigmas 3, 2, 1
    byVariance.forEach((axis, k) => {
      const comp = row(p.components, k, H);
      expect(Math.abs(dot(comp, axes[axis]!))).toBeCloseTo(1, 5);
      expect(p.variances[k]!).toBeCloseTo((sigmas[axis]! ** 2 * 8) / 7, 4);
    });
    row(p.mean, 0, H).forEach((m, d) => expect(m).toBeCloseTo(mean[d]!, 5));
    expect(p.explainedVariance).toBeCloseTo(1, 6); // rank 3: three components hold everything
    expect(pca(matrix, 2).explainedVariance).toBeCloseTo((9 + 4) / (9 + 4 + 1), 5);
  });

  it('projects kept rows onto the components and leaves the others zero', () => {
    const p = pca(matrix, 2);
    const out = projectRows(matrix, p);
    expect(out.length).toBe(all.length * 2);
    expect(Array.from(out.subarray(0, 2))).toEqual([0, 0]);
    expect(Array.from(out.subarray(out.length - 2))).toEqual([0, 0]);
    const signs = [1, 2].map((axis, k) => Math.sign(dot(row(p.components, k, H), axes[axis]!)));
    design.forEach((c, i) => {
      expect(out[(i + 1) * 2]!).toBeCloseTo(signs[0]! * c[1]!, 4);
      expect(out[(i + 1) * 2 + 1]!).toBeCloseTo(signs[1]! * c[2]!, 4);
    });
  });

  it('computes the covariance of kept rows only, divided by n - 1', () => {
    const c = covariance({ data: Float32Array.from([1, 2, 3, 6, 99, 99]), rows: 3, cols: 2, keep: Uint8Array.from([1, 1, 0]) });
    expect(c.n).toBe(2);
    expect(Array.from(c.mean)).toEqual([2, 4]);
    expect(Array.from(c.cov)).toEqual([2, 4, 4, 8]);
  });

  it('refuses k outside 1..cols', () => {
    expect(() => pca(matrix, 0)).toThrow(RangeError);
    expect(() => pca(matrix, H + 1)).toThrow(RangeError);
  });

  it('takes seconds, not minutes, at MiniLM size (H = 384)', () => {
    const n = 384;
    const rand = lcg(3);
    const a = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let j = i; j < n; j++) a[i * n + j] = a[j * n + i] = rand();
    const t0 = performance.now();
    const { values } = symmetricEigen(a, n);
    expect(performance.now() - t0).toBeLessThan(20_000);
    let trace = 0;
    for (let i = 0; i < n; i++) trace += a[i * n + i]!;
    expect(values.reduce((s, v) => s + v, 0)).toBeCloseTo(trace, 6);
  });
});

describe('zipfSifWeights', () => {
  it('is a / (a + p) with p proportional to 1 / (rank + 2)', () => {
    const w = zipfSifWeights(3, 0.1);
    const norm = 1 / 2 + 1 / 3 + 1 / 4;
    [2, 3, 4].forEach((k, r) => expect(w[r]!).toBeCloseTo(0.1 / (0.1 + 1 / k / norm), 12));
    const big = zipfSifWeights(30_000);
    expect(big[0]!).toBeLessThan(big[1000]!);
    expect(big[1000]!).toBeLessThan(big[29_999]!);
  });
});

describe('float32 little-endian files', () => {
  it('round-trips values', () => {
    const v = Float32Array.from([1.5, -2, 3.25e-8, 0]);
    const bytes = float32ToLE(v);
    expect(Array.from(bytes.subarray(0, 4))).toEqual([0, 0, 0xc0, 0x3f]); // 1.5f
    expect(Array.from(float32FromLE(Uint8Array.from(bytes)))).toEqual(Array.from(v));
  });
});

// --- distillation and the static embedder on a tiny ONNX encoder ------------------------------------

const VOCAB = [
  '[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', '[unused0]', '[unused1]', // 0-6
  'a', 'red', 'shirt', '##s', '!', 'photo', 'of', 'the', 'boot', // 7-15
];
const ID = Object.fromEntries(VOCAB.map((t, i) => [t, i])) as Record<string, number>;
const SPECIAL_IDS = [0, 1, 2, 3, 4, 5, 6];
// H, wordRow and MASK_ROW come from test/support/tiny-bert.ts; the vocabulary and graph here are this test's own.

/** last_hidden_state = tanh(word[input_ids] + attention_mask * MASK_ROW): non-linear, every input used. */
function encoderGraph(): GraphSpec {
  const dyn = (name: string) => ({ name, elemType: DataType.INT64, shape: ['batch', 'seq'] });
  return {
    inputs: [dyn('input_ids'), dyn('attention_mask')],
    outputs: [{ name: 'last_hidden_state', elemType: DataType.FLOAT, shape: ['batch', 'seq', H] }],
    initializers: [
      f32Initializer('word', [VOCAB.length, H], VOCAB.flatMap((_, id) => wordRow(id))),
      f32Initializer('mask_row', [H], MASK_ROW),
      i64Initializer('axis2', [1], [2]),
    ],
    nodes: [
      { op: 'Gather', inputs: ['word', 'input_ids'], outputs: ['w'], attributes: { axis: 0 } },
      { op: 'Cast', inputs: ['attention_mask'], outputs: ['mf'], attributes: { to: DataType.FLOAT } },
      { op: 'Unsqueeze', inputs: ['mf', 'axis2'], outputs: ['mf3'] },
      { op: 'Mul', inputs: ['mf3', 'mask_row'], outputs: ['m'] },
      { op: 'Add', inputs: ['w', 'm'], outputs: ['pre'] },
      { op: 'Tanh', inputs: ['pre'], outputs: ['last_hidden_state'] },
    ],
  };
}

/** The encoder's pooled output for "[CLS] id [SEP]", computed by hand. */
function pooledSingleToken(id: number): number[] {
  const state = (t: number) => wordRow(t).map((x, d) => Math.tanh(x + MASK_ROW[d]!));
  const seq = [ID['[CLS]']!, id, ID['[SEP]']!].map(state);
  return normalized(seq.reduce((acc, s) => acc.map((x, d) => x + s[d]!), [0, 0, 0, 0]));
}

function tokenizerJson(): Record<string, unknown> {
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: bertSpecialAddedTokens(ID),
    normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: { type: 'BertProcessing', cls: ['[CLS]', 2], sep: ['[SEP]', 3] },
    model: { type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##', max_input_chars_per_word: 100, vocab: ID },
  };
}

let root: string;
let counter = 0;
const NO_MODELS = { modelsDir: '/nonexistent-models' };
const staticSettings = (dir: string, maxTokens = 128) => ({ kind: 'static', dir, maxTokens }) as const;

async function encoderDir(tokenizer: 'json' | 'vocab.txt'): Promise<string> {
  const dir = join(root, `enc${counter++}`);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'model.onnx'), onnxModel(encoderGraph()));
  if (tokenizer === 'json') await writeFile(join(dir, 'tokenizer.json'), JSON.stringify(tokenizerJson()));
  else {
    await writeFile(join(dir, 'vocab.txt'), `${VOCAB.join('\n')}\n`);
    await writeFile(join(dir, 'tokenizer_config.json'), JSON.stringify({ do_lower_case: true }));
  }
  return dir;
}

async function vectorsOf(dir: string): Promise<Float32Array> {
  return float32FromLE(await readFile(join(dir, 'vectors.bin')));
}

let distilled: string; // dim = H, from tokenizer.json
let distilledSmall: string; // dim = 2, from vocab.txt

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'modestream-static-'));
  const progress: [number, number][] = [];
  const enc = await encoderDir('json');
  distilled = join(enc, 'static');
  const r = await distillStatic({ modelDir: enc, outDir: distilled, dim: 256, onProgress: (d, t) => progress.push([d, t]) });
  expect(r.dim).toBe(H); // capped at the hidden size
  expect(r.vocab).toBe(VOCAB.length);
  const kept = VOCAB.length - SPECIAL_IDS.length;
  expect(progress.at(0)).toEqual([0, kept]);
  expect(progress.at(-1)).toEqual([kept, kept]);
  distilledSmall = join(await encoderDir('vocab.txt'), 'static');
  expect((await distillStatic({ modelDir: join(distilledSmall, '..'), outDir: distilledSmall, dim: 2 })).dim).toBe(2);
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('onnx encoder on token ids', () => {
  it('pools given id sequences like captions, and refuses use after dispose()', async () => {
    const enc = await createOnnxEncoder({ kind: 'onnx', dir: await encoderDir('json'), maxTokens: 8, pooling: 'mean', threads: 1 });
    const ids = [ID['[CLS]']!, ID.red!, ID['[SEP]']!];
    const rows = await enc.embedIds([ids, [ID['[CLS]']!, ID.boot!, ID['[SEP]']!]]);
    row(rows, 0, H).forEach((x, d) => expect(x).toBeCloseTo(pooledSingleToken(ID.red!)[d]!, 5));
    row(rows, 1, H).forEach((x, d) => expect(x).toBeCloseTo(pooledSingleToken(ID.boot!)[d]!, 5));
    // The same sequence as a caption: "red" tokenises to [CLS] red [SEP].
    expect(Array.from(await enc.embed(['red']))).toEqual(Array.from(rows.subarray(0, H)));
    enc.dispose();
    await expect(enc.embedIds([ids])).rejects.toThrow(StateError);
  });
});

describe('distillStatic', () => {
  const kept = VOCAB.map((_, id) => id).filter((id) => !SPECIAL_IDS.includes(id));
  const weights = zipfSifWeights(VOCAB.length);
  const pooled = kept.map(pooledSingleToken);
  const mean = [0, 1, 2, 3].map((d) => pooled.reduce((s, x) => s + x[d]!, 0) / pooled.length);
  const centered = pooled.map((x) => x.map((v, d) => v - mean[d]!));

  it('writes a standalone directory: vectors, metadata and the tokenizer', async () => {
    expect((await readdir(distilled)).sort()).toEqual(['static.json', 'tokenizer.json', 'vectors.bin']);
    expect((await readdir(distilledSmall)).sort()).toEqual(['static.json', 'tokenizer_config.json', 'vectors.bin', 'vocab.txt']);
    expect((await stat(distilled)).mode & 0o777).toBe(0o755); // not mkdtemp's private 0700
    const meta = StaticModelJson.parse(JSON.parse(await readFile(join(distilled, 'static.json'), 'utf8')));
    expect(meta).toMatchObject({ dim: H, vocabSize: VOCAB.length, skippedTokens: SPECIAL_IDS.length, weighting: { a: 1e-4 } });
    expect(meta.source.fingerprint).toMatch(/^onnx-v1\(model=sha256:[0-9a-f]{24},.*pooling=mean/);
    expect(meta.source.fingerprint).toContain(`model=sha256:${meta.source.modelSha256.slice(0, 24)},`);
    expect(meta.pca.explainedVariance).toBeCloseTo(1, 5);
  });

  it('gives special and [unused*] tokens zero rows', async () => {
    const v = await vectorsOf(distilled);
    for (const id of SPECIAL_IDS) expect(row(v, id, H)).toEqual([0, 0, 0, 0]);
    for (const id of kept) expect(Math.hypot(...row(v, id, H))).toBeGreaterThan(0);
  });

  it('is the centered encoder output, rotated by a full PCA, scaled by the Zipf/SIF weight', async () => {
    // With dim = H the PCA is a rotation, so unweighted rows keep every inner product of the centered
    // pooled outputs: a sign-free check of pooling, centering, PCA and weighting together.
    const v = await vectorsOf(distilled);
    const unweighted = kept.map((id) => row(v, id, H).map((x) => x / weights[id]!));
    for (let i = 0; i < kept.length; i++) {
      for (let j = 0; j < kept.length; j++) expect(dot(unweighted[i]!, unweighted[j]!)).toBeCloseTo(dot(centered[i]!, centered[j]!), 5);
    }
  });

  it('keeps the variance the metadata claims when it truncates the PCA', async () => {
    const v = await vectorsOf(distilledSmall);
    expect(v.length).toBe(VOCAB.length * 2);
    const meta = StaticModelJson.parse(JSON.parse(await readFile(join(distilledSmall, 'static.json'), 'utf8')));
    const total = centered.reduce((s, x) => s + dot(x, x), 0);
    const keptVariance = kept.reduce((s, id) => s + (row(v, id, 2)[0]! / weights[id]!) ** 2 + (row(v, id, 2)[1]! / weights[id]!) ** 2, 0);
    expect(meta.pca.explainedVariance).toBeLessThan(0.999);
    expect(keptVariance / total).toBeCloseTo(meta.pca.explainedVariance, 4);
  });

  it('replaces an existing directory and leaves no temporary one', async () => {
    const enc = join(distilledSmall, '..');
    await distillStatic({ modelDir: enc, outDir: distilledSmall, dim: 3 });
    expect((await vectorsOf(distilledSmall)).length).toBe(VOCAB.length * 3);
    expect((await readdir(enc)).filter((f) => f.includes('tmp'))).toEqual([]);
    await distillStatic({ modelDir: enc, outDir: distilledSmall, dim: 2 }); // back, for the other tests
  });
});

describe('static embedder', () => {
  /** Normalised sum of the token rows read from vectors.bin: the hand computation of an embedding. */
  async function expected(dir: string, dim: number, ids: number[]): Promise<number[]> {
    const v = await vectorsOf(dir);
    return normalized(ids.reduce((acc, id) => acc.map((x, d) => x + v[id * dim + d]!), new Array(dim).fill(0)));
  }
  const CASES = [
    { caption: 'a red shirt', ids: [ID.a!, ID.red!, ID.shirt!] },
    { caption: 'Shirts!', ids: [ID.shirt!, ID['##s']!, ID['!']!] },
    { caption: 'the zzz boot', ids: [ID.the!, ID.boot!] }, // [UNK] adds nothing
    { caption: 'photo of the red boot', ids: [ID.photo!, ID.of!, ID.the!, ID.red!, ID.boot!] },
  ];

  it('embeds a caption as the normalised mean of its token rows, without [CLS]/[SEP]', async () => {
    for (const dir of [distilled, distilledSmall]) {
      const e = await createEmbedder(staticSettings(dir), NO_MODELS);
      try {
        const out = await e.embed(CASES.map((c) => c.caption));
        expect(out.length).toBe(CASES.length * e.dim);
        for (const [i, c] of CASES.entries()) {
          const want = await expected(dir, e.dim, c.ids);
          row(out, i, e.dim).forEach((x, d) => expect(x).toBeCloseTo(want[d]!, 5));
        }
      } finally {
        e.dispose();
      }
    }
  });

  it('gives a zero row to a caption with no known token', async () => {
    const e = await createStaticEmbedder(staticSettings(distilled));
    const out = await e.embed(['', 'zzz qqq', '[CLS] [MASK]', 'a']);
    expect(Array.from(out.subarray(0, 3 * H)).every((x) => x === 0)).toBe(true);
    expect(Math.hypot(...row(out, 3, H))).toBeCloseTo(1, 6);
  });

  it('truncates to maxTokens word pieces', async () => {
    const e = await createStaticEmbedder(staticSettings(distilled, 2));
    const out = await e.embed(['photo of the red boot']);
    const want = await expected(distilled, H, [ID.photo!, ID.of!]);
    row(out, 0, H).forEach((x, d) => expect(x).toBeCloseTo(want[d]!, 5));
  });

  it('fingerprints vectors, tokenizer and dimension; changed vectors change it', async () => {
    const e = await createStaticEmbedder(staticSettings(distilled));
    expect(e.fingerprint).toMatch(/^static-v1\(vectors=sha256:[0-9a-f]{24},tokenizer=sha256:[0-9a-f]{24},dim=4\)$/);
    const copy = join(root, `copy${counter++}`);
    await cp(distilled, copy, { recursive: true });
    expect((await createStaticEmbedder(staticSettings(copy))).fingerprint).toBe(e.fingerprint);
    const v = await vectorsOf(copy);
    v[ID.red! * H]! += 0.5;
    await writeFile(join(copy, 'vectors.bin'), float32ToLE(v));
    const changed = await createStaticEmbedder(staticSettings(copy));
    expect(changed.fingerprint).not.toBe(e.fingerprint);
    expect(changed.fingerprint.replace(/vectors=sha256:\w+/, '')).toBe(e.fingerprint.replace(/vectors=sha256:\w+/, ''));
  });

  it('refuses a truncated or non-finite vectors.bin, naming the file', async () => {
    const truncated = join(root, `copy${counter++}`);
    await cp(distilled, truncated, { recursive: true });
    await truncate(join(truncated, 'vectors.bin'), VOCAB.length * H * 4 - 4);
    await expect(createStaticEmbedder(staticSettings(truncated))).rejects.toThrow(StateError);
    await expect(createStaticEmbedder(staticSettings(truncated))).rejects.toThrow(/vectors\.bin holds \d+ bytes/);

    const nan = join(root, `copy${counter++}`);
    await cp(distilled, nan, { recursive: true });
    const v = await vectorsOf(nan);
    v[ID.boot! * H + 1] = Number.NaN;
    await writeFile(join(nan, 'vectors.bin'), float32ToLE(v));
    await expect(createStaticEmbedder(staticSettings(nan))).rejects.toThrow(/vectors\.bin holds a non-finite value at token 15/);

    await rm(join(nan, 'vectors.bin'));
    await expect(createStaticEmbedder(staticSettings(nan))).rejects.toThrow(/vectors\.bin is missing/);
  });

  it('refuses a missing or inconsistent static.json, and a missing directory', async () => {
    const dir = join(root, `copy${counter++}`);
    await cp(distilled, dir, { recursive: true });
    const metaFile = join(dir, 'static.json');
    const meta = JSON.parse(await readFile(metaFile, 'utf8')) as Record<string, unknown>;
    await writeFile(metaFile, JSON.stringify({ ...meta, vocabSize: VOCAB.length + 1 }));
    await expect(createStaticEmbedder(staticSettings(dir))).rejects.toThrow(/has 16 tokens but .*static\.json says vocabSize=17/);
    await writeFile(metaFile, JSON.stringify({ ...meta, dim: 3 }));
    await expect(createStaticEmbedder(staticSettings(dir))).rejects.toThrow(/static\.json has unexpected contents: pca\.components/);
    await writeFile(metaFile, '{"format": "modestream-static", ');
    await expect(createStaticEmbedder(staticSettings(dir))).rejects.toThrow(/static\.json is not valid JSON/);
    await rm(metaFile);
    await expect(createStaticEmbedder(staticSettings(dir))).rejects.toThrow(StateError);
    await expect(createStaticEmbedder(staticSettings(join(root, 'nowhere')))).rejects.toThrow(ConfigError);
  });

  it('refuses use after dispose()', async () => {
    const e = await createStaticEmbedder(staticSettings(distilled));
    e.dispose();
    await expect(e.embed(['a'])).rejects.toThrow(StateError);
  });
});
