import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EmbedderSettings } from '../../src/config.js';
import { createEmbedder, type CaptionEmbedder } from '../../src/embed/embedder.js';
import { createOnnxEmbedder, ortLoadError } from '../../src/embed/onnx.js';
import { createTfjsGraphEmbedder } from '../../src/embed/tfjs-graph.js';
import { tokenizerFromJson, tokenizerFromVocabTxt } from '../../src/embed/tokenizer.js';
import { ConfigError, EnvironmentError, StateError } from '../../src/errors.js';
import { initBackend } from '../../src/tensor/backend.js';
import { DataType, f32Initializer, onnxModel, type GraphSpec } from '../support/onnx-writer.js';
import { constNode, placeholder, writeGraphModel, type ConstWeight, type GraphModelSpec } from '../support/tfjs-graph-writer.js';
import { H, MASK_ROW, bertSpecialAddedTokens, TYPE, VOCAB, VOCAB_TXT, WORD, fullOnnxGraph, wordRow } from '../support/tiny-bert.js';

// --- a tiny uncased BERT vocabulary ------------------------------------------------------------------

const ID = Object.fromEntries(VOCAB.map((t, i) => [t, i])) as Record<string, number>;
const uncased = () => tokenizerFromVocabTxt({ text: VOCAB_TXT, config: { do_lower_case: true } });
/** vocab.txt must come with the casing stated (see tokenizer.test.ts). */
const VOCAB_FILES = { 'vocab.txt': VOCAB_TXT, 'tokenizer_config.json': { do_lower_case: true } };

/** A Hugging Face tokenizer.json for VOCAB, shaped like the one bert-base-uncased ships. */
function tokenizerJson(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: bertSpecialAddedTokens(ID),
    normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [
        { SpecialToken: { id: '[CLS]', type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '[SEP]', type_id: 0 } },
      ],
      pair: [],
      special_tokens: {},
    },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: {
      type: 'WordPiece',
      unk_token: '[UNK]',
      continuing_subword_prefix: '##',
      max_input_chars_per_word: 100,
      vocab: Object.fromEntries(VOCAB.map((t, i) => [t, i])),
    },
    ...overrides,
  };
}

describe('WordPiece tokenizer (vocab.txt)', () => {
  it('lowercases, strips accents and splits punctuation for an uncased vocabulary', () => {
    const tok = uncased();
    expect(tok.tokenize('A Red T-Shirt!')).toEqual(['a', 'red', 't', '-', 'shirt', '!']);
    expect(tok.tokenize('Café, RÉD.')).toEqual(['cafe', ',', 'red', '.']);
    expect(tok.tokenize('$run')).toEqual(['$', 'run']);
  });

  it('uses greedy longest-match-first pieces with ## continuations, and [UNK] for unmatchable words', () => {
    const tok = uncased();
    expect(tok.tokenize('unaffable shirts running')).toEqual(['un', '##aff', '##able', 'shirt', '##s', 'run', '##ning']);
    // One unmatchable rest makes the whole word [UNK], not a partial match.
    expect(tok.tokenize('shirtx xyz')).toEqual(['[UNK]', '[UNK]']);
    expect(tok.tokenize(`${'a'.repeat(101)} a`)).toEqual(['[UNK]', 'a']);
  });

  it('cleans control characters, maps Unicode spaces, and splits CJK ideographs', () => {
    const tok = uncased();
    expect(tok.tokenize('red\u0000\tshirt\u00a0a\u200b')).toEqual(['red', 'shirt', 'a']);
    expect(tok.tokenize('中文a')).toEqual(['中', '文', 'a']);
  });

  it('matches special tokens written in the text before normalising, as Hugging Face does', () => {
    expect(uncased().tokenize('a [MASK] shirt[SEP]')).toEqual(['a', '[MASK]', 'shirt', '[SEP]']);
  });

  it('adds [CLS]/[SEP], truncates to maxTokens and pads a batch to its longest row', () => {
    const tok = uncased();
    expect(tok.encode('a red shirt', 128)).toEqual([ID['[CLS]'], ID.a, ID.red, ID.shirt, ID['[SEP]']]);
    expect(tok.encode('a red shirt', 4)).toEqual([ID['[CLS]'], ID.a, ID.red, ID['[SEP]']]);
    expect(tok.encode('a red shirt', 2)).toEqual([ID['[CLS]'], ID['[SEP]']]);
    expect(() => tok.encode('a', 1)).toThrow(ConfigError);

    const batch = tok.encodeBatch(['a', 'red shirts', 'zzz'], 128);
    expect(batch.batch).toBe(3);
    expect(batch.seqLen).toBe(5);
    expect(Array.from(batch.lengths)).toEqual([3, 5, 3]);
    expect(Array.from(batch.inputIds)).toEqual([
      ID['[CLS]'], ID.a, ID['[SEP]'], ID['[PAD]'], ID['[PAD]'],
      ID['[CLS]'], ID.red, ID.shirt, ID['##s'], ID['[SEP]'],
      ID['[CLS]'], ID['[UNK]'], ID['[SEP]'], ID['[PAD]'], ID['[PAD]'],
    ]);
    expect(Array.from(batch.attentionMask)).toEqual([1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0]);
    expect(Array.from(batch.tokenTypeIds)).toEqual(new Array(15).fill(0));
  });

  it('keeps case and accents when tokenizer_config.json says the model is cased', () => {
    const cased = [...VOCAB, 'Red', 'Café'];
    const tok = tokenizerFromVocabTxt({ text: cased.join('\n'), config: { do_lower_case: false } });
    expect(tok.tokenize('Red red Café')).toEqual(['Red', 'red', 'Café']);
    const forced = tokenizerFromVocabTxt({ text: VOCAB_TXT, config: { do_lower_case: false } });
    expect(forced.tokenize('Red')).toEqual(['[UNK]']);
  });

  it('rejects an empty vocab.txt and a vocabulary without [CLS]', () => {
    expect(() => tokenizerFromVocabTxt({ text: '', config: { do_lower_case: true } })).toThrow(StateError);
    expect(() => tokenizerFromVocabTxt({ text: VOCAB.filter((t) => t !== '[CLS]').join('\n'), config: { do_lower_case: true } })).toThrow(/\[CLS\]/);
  });
});

describe('WordPiece tokenizer (tokenizer.json)', () => {
  const samples = ['A Red T-Shirt!', 'Café, RÉD.', 'unaffable shirts', 'a [MASK] 中文', 'shirtx', ''];

  it('tokenises exactly like the equivalent vocab.txt tokenizer', () => {
    const fromJson = tokenizerFromJson(tokenizerJson());
    const fromTxt = uncased();
    for (const s of samples) {
      expect(fromJson.tokenize(s)).toEqual(fromTxt.tokenize(s));
      expect(fromJson.encode(s, 6)).toEqual(fromTxt.encode(s, 6));
    }
  });

  it('reads the normalizer settings and the [CLS]/[SEP] names from the template', () => {
    const keepCase = tokenizerFromJson(
      tokenizerJson({ normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: false } }),
    );
    expect(keepCase.tokenize('Red red')).toEqual(['[UNK]', 'red']);
    const bertProcessing = tokenizerFromJson(tokenizerJson({ post_processor: { type: 'BertProcessing', sep: ['[SEP]', 3], cls: ['[CLS]', 2] } }));
    expect(bertProcessing.encode('a', 8)).toEqual([ID['[CLS]'], ID.a, ID['[SEP]']]);
  });

  it('rejects features it does not implement, naming them', () => {
    const rejects = (overrides: Record<string, unknown>, pattern: RegExp) => {
      expect(() => tokenizerFromJson(tokenizerJson(overrides))).toThrow(ConfigError);
      expect(() => tokenizerFromJson(tokenizerJson(overrides))).toThrow(pattern);
    };
    rejects({ model: { type: 'BPE', vocab: {}, merges: [] } }, /model type "BPE" is not supported/);
    rejects({ normalizer: { type: 'Sequence', normalizers: [] } }, /normalizer "Sequence" is not supported/);
    rejects({ pre_tokenizer: { type: 'Metaspace' } }, /pre_tokenizer "Metaspace" is not supported/);
    rejects({ post_processor: { type: 'RobertaProcessing', sep: ['</s>', 2], cls: ['<s>', 0] } }, /post_processor "RobertaProcessing"/);
    rejects({ post_processor: null }, /missing post_processor/);
    rejects(
      { added_tokens: [{ id: 5, content: 'a', special: false, single_word: false, lstrip: false, rstrip: false, normalized: true }] },
      /non-special added token "a"/,
    );
  });

  it('reports a file that is not a tokenizer as corrupt', () => {
    expect(() => tokenizerFromJson({ hello: 1 })).toThrow(StateError);
    expect(() => tokenizerFromJson(tokenizerJson({ model: { type: 'WordPiece', vocab: { a: 0, b: 5 } } }))).toThrow(/ids must be/);
  });
});

// --- tiny models ---------------------------------------------------------------------------------------

// VOCAB, H, wordRow, WORD, TYPE, MASK_ROW and fullOnnxGraph come from test/support/tiny-bert.ts.

function normalized(v: number[]): number[] {
  const n = Math.hypot(...v);
  return v.map((x) => x / n);
}
const sum = (rows: number[][]) => rows.reduce((acc, r) => acc.map((x, d) => x + r[d]!), new Array(H).fill(0));

/** Hand computation of the full model's pooled output for given token ids (no padding). */
function expectedFull(ids: number[], pooling: 'mean' | 'cls'): number[] {
  const states = ids.map((id) => wordRow(id).map((x, d) => x + TYPE[d]! + MASK_ROW[d]!));
  return normalized(pooling === 'cls' ? states[0]! : sum(states));
}

// Captions with their ids, written out by hand (the tokenizer has its own tests above).
const CASES: { caption: string; ids: number[] }[] = [
  { caption: 'a red shirt', ids: [ID['[CLS]']!, ID.a!, ID.red!, ID.shirt!, ID['[SEP]']!] },
  { caption: 'Shirts!', ids: [ID['[CLS]']!, ID.shirt!, ID['##s']!, ID['!']!, ID['[SEP]']!] },
  { caption: '', ids: [ID['[CLS]']!, ID['[SEP]']!] },
  { caption: 'Café un', ids: [ID['[CLS]']!, ID.cafe!, ID.un!, ID['[SEP]']!] },
  { caption: 'photo of the red boot, running', ids: [2, 19, 20, 23, 6, 12, 13, 26, 25, 3] },
];

function expectRowsClose(e: CaptionEmbedder, out: Float32Array, expected: number[][]): void {
  expect(out.length).toBe(expected.length * e.dim);
  expected.forEach((row, i) => {
    const got = Array.from(out.subarray(i * e.dim, (i + 1) * e.dim));
    got.forEach((x, d) => expect(x).toBeCloseTo(row[d]!, 5));
  });
}

/** A model that pools itself: sentence_embedding = mean over positions of word[input_ids] (int32 ids). */
function pooledOnnxGraph(): GraphSpec {
  const zeroPad = [0, 0, 0, 0, ...WORD.slice(H)]; // [PAD] row zero: the unmasked mean has the masked direction
  return {
    inputs: [{ name: 'input_ids', elemType: DataType.INT32, shape: ['batch', 'seq'] }],
    outputs: [{ name: 'sentence_embedding', elemType: DataType.FLOAT, shape: ['batch', H] }],
    initializers: [f32Initializer('word', [VOCAB.length, H], zeroPad)],
    nodes: [
      { op: 'Gather', inputs: ['word', 'input_ids'], outputs: ['w'], attributes: { axis: 0 } },
      { op: 'ReduceMean', inputs: ['w'], outputs: ['sentence_embedding'], attributes: { axes: [1], keepdims: 0 } },
    ],
  };
}

let root: string;
let counter = 0;

async function modelDir(files: Record<string, string | Uint8Array | object>): Promise<string> {
  const dir = join(root, `m${counter++}`);
  await mkdir(dir, { recursive: true });
  for (const [name, content] of Object.entries(files)) {
    await mkdir(join(dir, name, '..'), { recursive: true });
    const data = typeof content === 'string' || content instanceof Uint8Array ? content : JSON.stringify(content);
    await writeFile(join(dir, name), data);
  }
  return dir;
}

const onnxSettings = (dir: string, extra: Partial<Extract<EmbedderSettings, { kind: 'onnx' }>> = {}) =>
  ({ kind: 'onnx', dir, maxTokens: 128, pooling: 'mean', threads: 1, ...extra }) as const;
const tfjsSettings = (dir: string, extra: Partial<Extract<EmbedderSettings, { kind: 'tfjs-graph' }>> = {}) =>
  ({ kind: 'tfjs-graph', dir, maxTokens: 128, pooling: 'mean', ...extra }) as const;

/** These tests name directories, never pulled models. */
const NO_MODELS = { modelsDir: '/nonexistent-models' };

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'modestream-encoder-'));
  await initBackend('wasm');
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('onnx embedder', () => {
  it('feeds ids, mask and token types, then mean-pools over real tokens and normalises', async () => {
    const dir = await modelDir({ 'model.onnx': onnxModel(fullOnnxGraph()), ...VOCAB_FILES });
    const e = await createEmbedder(onnxSettings(dir), NO_MODELS);
    try {
      expect(e.dim).toBe(H);
      expect(e.fingerprint).toMatch(/^onnx-v1\(model=sha256:[0-9a-f]{24},tokenizer=sha256:[0-9a-f]{24},output=last_hidden_state,pooling=mean,maxTokens=128,dim=4\)$/);
      const out = await e.embed(CASES.map((c) => c.caption));
      expectRowsClose(e, out, CASES.map((c) => expectedFull(c.ids, 'mean')));
    } finally {
      e.dispose();
    }
  });

  it('keeps caption order across internal batches of mixed lengths', async () => {
    const dir = await modelDir({ 'onnx/model.onnx': onnxModel(fullOnnxGraph()), 'tokenizer.json': tokenizerJson() });
    const e = await createOnnxEmbedder(onnxSettings(dir));
    try {
      const picks = Array.from({ length: 150 }, (_, i) => CASES[(i * 7) % CASES.length]!);
      const out = await e.embed(picks.map((c) => c.caption));
      expectRowsClose(e, out, picks.map((c) => expectedFull(c.ids, 'mean')));
      expect(await e.embed([])).toEqual(new Float32Array(0));
    } finally {
      e.dispose();
    }
    await expect(e.embed(['a'])).rejects.toThrow(StateError);
  });

  it('takes the [CLS] state with pooling "cls", and truncates to maxTokens', async () => {
    const dir = await modelDir({ 'model.onnx': onnxModel(fullOnnxGraph()), ...VOCAB_FILES });
    const cls = await createOnnxEmbedder(onnxSettings(dir, { pooling: 'cls' }));
    const short = await createOnnxEmbedder(onnxSettings(dir, { maxTokens: 3 }));
    try {
      expectRowsClose(cls, await cls.embed(['a red shirt', 'boot']), [expectedFull([2], 'cls'), expectedFull([2], 'cls')]);
      expectRowsClose(short, await short.embed(['a red shirt']), [expectedFull([2, ID.a!, 3], 'mean')]);
      expect(cls.fingerprint).toContain('pooling=cls');
      expect(short.fingerprint).toContain('maxTokens=3');
    } finally {
      cls.dispose();
      short.dispose();
    }
  });

  it('uses a rank-2 sentence output as is, with int32 inputs and only the inputs the model declares', async () => {
    const dir = await modelDir({ 'model.onnx': onnxModel(pooledOnnxGraph()), ...VOCAB_FILES });
    const e = await createOnnxEmbedder(onnxSettings(dir, { pooling: 'cls' }));
    try {
      expect(e.fingerprint).toContain('output=sentence_embedding,pooling=model');
      const expected = CASES.map((c) => normalized(sum(c.ids.map(wordRow))));
      expectRowsClose(e, await e.embed(CASES.map((c) => c.caption)), expected);
    } finally {
      e.dispose();
    }
  });

  it('fingerprints the weights, not just the settings', async () => {
    const a = await modelDir({ 'model.onnx': onnxModel(fullOnnxGraph()), ...VOCAB_FILES });
    const b = await modelDir({ 'model.onnx': onnxModel(fullOnnxGraph()), ...VOCAB_FILES });
    const changed = WORD.slice();
    changed[7] = 0.5;
    const c = await modelDir({ 'model.onnx': onnxModel(fullOnnxGraph(changed)), ...VOCAB_FILES });
    const [ea, eb, ec] = await Promise.all([a, b, c].map((d) => createOnnxEmbedder(onnxSettings(d))));
    expect(eb!.fingerprint).toBe(ea!.fingerprint);
    expect(ec!.fingerprint).not.toBe(ea!.fingerprint);
    [ea, eb, ec].forEach((e) => e!.dispose());
  });

  it('refuses models it cannot feed, and corrupt model files', async () => {
    const extra = fullOnnxGraph();
    extra.inputs.push({ name: 'position_ids', elemType: DataType.INT64, shape: ['batch', 'seq'] });
    const odd = await modelDir({ 'model.onnx': onnxModel(extra), ...VOCAB_FILES });
    await expect(createOnnxEmbedder(onnxSettings(odd))).rejects.toThrow(/cannot feed: position_ids/);
    const corrupt = await modelDir({ 'model.onnx': 'not a protobuf at all', ...VOCAB_FILES });
    await expect(createOnnxEmbedder(onnxSettings(corrupt))).rejects.toThrow(StateError);
    await expect(createOnnxEmbedder(onnxSettings(corrupt))).rejects.toThrow(/onnxruntime cannot load .*model\.onnx/);
  });

  it('says how to install onnxruntime-node when it is missing, and why it failed otherwise', () => {
    const missing = ortLoadError(Object.assign(new Error("Cannot find package 'onnxruntime-node'"), { code: 'ERR_MODULE_NOT_FOUND' }));
    expect(missing).toBeInstanceOf(EnvironmentError);
    expect(missing.message).toMatch(/npm install onnxruntime-node/);
    const broken = ortLoadError(new Error('libonnxruntime.so.1: cannot open shared object file'));
    expect(broken).toBeInstanceOf(EnvironmentError);
    expect(broken.message).toMatch(/failed to load: libonnxruntime\.so\.1/);
  });
});

// --- tfjs graph model --------------------------------------------------------------------------------

const WEIGHTS: ConstWeight[][] = [
  [{ name: 'word', dtype: 'DT_FLOAT', shape: [VOCAB.length, H], values: WORD }],
  [
    { name: 'axis0', dtype: 'DT_INT32', shape: [], values: [0] },
    { name: 'dim2', dtype: 'DT_INT32', shape: [], values: [2] },
    { name: 'mask_row', dtype: 'DT_FLOAT', shape: [H], values: MASK_ROW },
    { name: 'type0', dtype: 'DT_FLOAT', shape: [H], values: TYPE.slice(0, H) },
  ],
];

/** last_hidden_state = word[input_ids] + type0 + mask * MASK_ROW (the onnx model with token types all 0). */
function graphSpec(format?: string): GraphModelSpec {
  const T = { type: 'DT_FLOAT' };
  return {
    format,
    weightGroups: WEIGHTS,
    nodes: [
      placeholder('input_ids', 'DT_INT32', [-1, -1]),
      placeholder('attention_mask', 'DT_INT32', [-1, -1]),
      ...WEIGHTS.flat().map(constNode),
      { name: 'gather', op: 'GatherV2', input: ['word', 'input_ids', 'axis0'], attr: { Tparams: T, Tindices: { type: 'DT_INT32' }, Taxis: { type: 'DT_INT32' }, batch_dims: { i: '0' } } },
      { name: 'mask_f', op: 'Cast', input: ['attention_mask'], attr: { SrcT: { type: 'DT_INT32' }, DstT: T, Truncate: { b: false } } },
      { name: 'mask_3', op: 'ExpandDims', input: ['mask_f', 'dim2'], attr: { T, Tdim: { type: 'DT_INT32' } } },
      { name: 'masked', op: 'Mul', input: ['mask_3', 'mask_row'], attr: { T } },
      { name: 'typed', op: 'AddV2', input: ['gather', 'type0'], attr: { T } },
      { name: 'sum', op: 'AddV2', input: ['typed', 'masked'], attr: { T } },
      { name: 'last_hidden_state', op: 'Identity', input: ['sum'], attr: { T } },
    ],
  };
}

async function graphDir(spec: GraphModelSpec, extra: Record<string, string | object> = VOCAB_FILES): Promise<string> {
  const dir = await modelDir(extra);
  await writeGraphModel(dir, spec);
  return dir;
}

describe('tfjs-graph embedder', () => {
  it('loads model.json and its shards from disk and pools like the hand computation', async () => {
    const dir = await graphDir(graphSpec());
    const e = await createEmbedder(tfjsSettings(dir), NO_MODELS);
    const cls = await createTfjsGraphEmbedder(tfjsSettings(dir, { pooling: 'cls' }));
    try {
      expect(e.dim).toBe(H);
      expect(e.fingerprint).toMatch(/^tfjs-graph-v1\(model=sha256:[0-9a-f]{24},.*output=last_hidden_state,pooling=mean,maxTokens=128,dim=4\)$/);
      const picks = Array.from({ length: 70 }, (_, i) => CASES[(i * 3) % CASES.length]!);
      expectRowsClose(e, await e.embed(picks.map((c) => c.caption)), picks.map((c) => expectedFull(c.ids, 'mean')));
      expectRowsClose(cls, await cls.embed(['a red shirt']), [expectedFull([2], 'cls')]);
    } finally {
      e.dispose();
      cls.dispose();
    }
  });

  it('leaves no tensors behind', async () => {
    const dir = await graphDir(graphSpec());
    const tf = await import('@tensorflow/tfjs');
    const before = tf.memory().numTensors;
    const e = await createTfjsGraphEmbedder(tfjsSettings(dir));
    await e.embed(CASES.map((c) => c.caption));
    e.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('rejects corrupt or inconsistent graph models with the file named', async () => {
    const corrupt = await modelDir({ 'model.json': '{"format": "graph-model", ', ...VOCAB_FILES });
    await expect(createTfjsGraphEmbedder(tfjsSettings(corrupt))).rejects.toThrow(/model\.json is not valid JSON/);

    const layers = await graphDir(graphSpec('layers-model'));
    await expect(createTfjsGraphEmbedder(tfjsSettings(layers))).rejects.toThrow(/format "layers-model"/);

    const truncated = await graphDir(graphSpec());
    await writeFile(join(truncated, 'group1-shard1of1.bin'), new Uint8Array(12));
    await expect(createTfjsGraphEmbedder(tfjsSettings(truncated))).rejects.toThrow(/describes \d+ bytes but the shards hold \d+/);

    const missingShard = await graphDir(graphSpec());
    await rm(join(missingShard, 'group2-shard1of1.bin'));
    await expect(createTfjsGraphEmbedder(tfjsSettings(missingShard))).rejects.toThrow(/cannot read weight shard .*group2-shard1of1\.bin/);

    const escaping = await modelDir({
      'model.json': { format: 'graph-model', modelTopology: { node: [] }, weightsManifest: [{ paths: ['../../etc/passwd'], weights: [] }] },
      ...VOCAB_FILES,
    });
    await expect(createTfjsGraphEmbedder(tfjsSettings(escaping))).rejects.toThrow(/outside its directory/);
  });
});

describe('model directory', () => {
  it('names what is missing', async () => {
    await expect(createOnnxEmbedder(onnxSettings(join(root, 'nope')))).rejects.toThrow(ConfigError);
    await expect(createOnnxEmbedder(onnxSettings(join(root, 'nope')))).rejects.toThrow(/is not a directory/);

    const empty = await modelDir({ ...VOCAB_FILES });
    await expect(createOnnxEmbedder(onnxSettings(empty))).rejects.toThrow(/expected model\.onnx or onnx\/model\.onnx/);
    await expect(createTfjsGraphEmbedder(tfjsSettings(empty))).rejects.toThrow(/expected model\.json/);

    const noVocab = await modelDir({ 'model.onnx': onnxModel(fullOnnxGraph()) });
    await expect(createOnnxEmbedder(onnxSettings(noVocab))).rejects.toThrow(ConfigError);
    await expect(createOnnxEmbedder(onnxSettings(noVocab))).rejects.toThrow(/no tokenizer .*expected tokenizer\.json .* or vocab\.txt/);
  });

  it('checks config.json: corrupt is a StateError, maxTokens beyond the positions a ConfigError, hidden_size must match', async () => {
    const base = { 'model.onnx': onnxModel(fullOnnxGraph()), ...VOCAB_FILES };
    const corrupt = await modelDir({ ...base, 'config.json': '{hidden' });
    await expect(createOnnxEmbedder(onnxSettings(corrupt))).rejects.toThrow(StateError);
    await expect(createOnnxEmbedder(onnxSettings(corrupt))).rejects.toThrow(/config\.json is not valid JSON/);

    const small = await modelDir({ ...base, 'config.json': { max_position_embeddings: 16, hidden_size: H } });
    await expect(createOnnxEmbedder(onnxSettings(small, { maxTokens: 32 }))).rejects.toThrow(/maxTokens=32 exceeds .*max_position_embeddings=16/);
    const ok = await createOnnxEmbedder(onnxSettings(small, { maxTokens: 16 }));
    ok.dispose();

    const wrong = await modelDir({ ...base, 'config.json': { hidden_size: 768 } });
    await expect(createOnnxEmbedder(onnxSettings(wrong))).rejects.toThrow(/hidden_size=768/);
  });

  it('reads the casing of a vocab.txt model from tokenizer_config.json, and fingerprints it', async () => {
    const dir = await modelDir({
      'model.onnx': onnxModel(fullOnnxGraph()),
      'vocab.txt': VOCAB_TXT,
      'tokenizer_config.json': { do_lower_case: false },
    });
    const lowered = await modelDir({ 'model.onnx': onnxModel(fullOnnxGraph()), ...VOCAB_FILES });
    const e = await createOnnxEmbedder(onnxSettings(dir));
    const l = await createOnnxEmbedder(onnxSettings(lowered));
    try {
      // "Red" is not lowercased, so it is [UNK].
      expectRowsClose(e, await e.embed(['Red']), [expectedFull([2, ID['[UNK]']!, 3], 'mean')]);
      expectRowsClose(l, await l.embed(['Red']), [expectedFull([2, ID.red!, 3], 'mean')]);
      // Same weights and vocab, different ids: the fingerprint must tell the spaces apart.
      expect(e.fingerprint).not.toBe(l.fingerprint);
    } finally {
      e.dispose();
      l.dispose();
    }
  });
});
