/**
 * Casing of WordPiece tokenizers: it must come from the model's own files, never from a look at the
 * vocabulary. An uncased vocabulary may hold capitals outside ASCII (MiniLM's has "ℝ"), which once
 * made us treat it as cased and turn capitalised captions into [UNK].
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readModelDir } from '../../src/embed/model-dir.js';
import { tokenizerFromJson, tokenizerFromVocabTxt } from '../../src/embed/tokenizer.js';
import { ConfigError } from '../../src/errors.js';

// Uncased, yet with capitals outside ASCII, as in all-MiniLM-L6-v2's vocab.txt (ℝ, ##ℝ).
const VOCAB = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', 'a', 'red', 't', '-', 'shirt', ',', 'cafe', 'ℝ', '##ℝ', 'ω', 'Ω'];
const VOCAB_TXT = `${VOCAB.join('\n')}\n`;
const ID = Object.fromEntries(VOCAB.map((t, i) => [t, i])) as Record<string, number>;

const UPPER = 'A RED T-SHIRT, CAFÉ';
const LOWER = 'a red t-shirt, café';

function tokenizerJson(normalizer: Record<string, unknown>): Record<string, unknown> {
  return {
    added_tokens: ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'].map((content) => ({ id: ID[content], content, special: true })),
    normalizer: { type: 'BertNormalizer', ...normalizer },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: { type: 'BertProcessing', cls: ['[CLS]', 2], sep: ['[SEP]', 3] },
    model: { type: 'WordPiece', unk_token: '[UNK]', vocab: ID },
  };
}

describe('vocab.txt casing comes from tokenizer_config.json', () => {
  it('lowercases for do_lower_case true even though the vocabulary holds non-ASCII capitals', () => {
    const tok = tokenizerFromVocabTxt({ text: VOCAB_TXT, config: { do_lower_case: true } });
    const expected = [ID['[CLS]'], ID.a, ID.red, ID.t, ID['-'], ID.shirt, ID[','], ID.cafe, ID['[SEP]']];
    expect(tok.encode(LOWER, 128)).toEqual(expected);
    expect(tok.encode(UPPER, 128)).toEqual(expected);
    // Lowercasing applies to non-ASCII capitals too: "Ω" in the text finds "ω", not the vocabulary's "Ω".
    expect(tok.tokenize('Ω')).toEqual(['ω']);
  });

  it('keeps case for do_lower_case false', () => {
    const tok = tokenizerFromVocabTxt({ text: VOCAB_TXT, config: { do_lower_case: false } });
    expect(tok.tokenize('RED red Ω')).toEqual(['[UNK]', 'red', 'Ω']);
  });

  it('refuses vocab.txt without a config, naming the file, the key and what to add', () => {
    const build = () => tokenizerFromVocabTxt({ text: VOCAB_TXT }, '/m/vocab.txt');
    expect(build).toThrow(ConfigError);
    expect(build).toThrow(/\/m\/vocab\.txt: .*no tokenizer_config\.json beside it.*\{"do_lower_case": true\}/);
  });

  it('refuses a tokenizer_config.json that does not state do_lower_case', () => {
    const build = () => tokenizerFromVocabTxt({ text: VOCAB_TXT, config: { unk_token: '[UNK]' } });
    expect(build).toThrow(ConfigError);
    expect(build).toThrow(/tokenizer_config\.json has no "do_lower_case" key/);
  });
});

describe('tokenizer.json casing comes from its BertNormalizer', () => {
  const full = { clean_text: true, handle_chinese_chars: true, strip_accents: null };

  it('lowercases for lowercase true, so capitals and lower case give the same ids', () => {
    const tok = tokenizerFromJson(tokenizerJson({ ...full, lowercase: true }));
    expect(tok.encode(UPPER, 128)).toEqual(tok.encode(LOWER, 128));
    expect(tok.encode(UPPER, 128)).not.toContain(ID['[UNK]']);
  });

  it('refuses a BertNormalizer without lowercase instead of assuming one', () => {
    const build = () => tokenizerFromJson(tokenizerJson(full), '/m/tokenizer.json');
    expect(build).toThrow(ConfigError);
    expect(build).toThrow(/\/m\/tokenizer\.json: normalizer BertNormalizer has no boolean "lowercase"/);
  });
});

describe('model directory', () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'modestream-tokenizer-'));
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  async function dir(name: string, files: Record<string, string>): Promise<string> {
    const d = await mkdtemp(join(root, name));
    // readModelDir only locates the model file; its bytes are the embedder's business.
    await writeFile(join(d, 'model.onnx'), 'not read here');
    for (const [file, text] of Object.entries(files)) await writeFile(join(d, file), text);
    return d;
  }

  it('refuses vocab.txt alone with a ConfigError naming the vocab path and tokenizer_config.json', async () => {
    const d = await dir('bare-', { 'vocab.txt': VOCAB_TXT });
    const read = readModelDir({ dir: d, kind: 'onnx', maxTokens: 128 });
    await expect(read).rejects.toThrow(ConfigError);
    await expect(readModelDir({ dir: d, kind: 'onnx', maxTokens: 128 })).rejects.toThrow(
      `${join(d, 'vocab.txt')}: cannot tell whether the model lowercases its input (there is no tokenizer_config.json beside it)`,
    );
  });

  it('reads the casing from tokenizer_config.json and hashes both files', async () => {
    const d = await dir('cfg-', { 'vocab.txt': VOCAB_TXT, 'tokenizer_config.json': JSON.stringify({ do_lower_case: true }) });
    const m = await readModelDir({ dir: d, kind: 'onnx', maxTokens: 128 });
    expect(m.tokenizerFiles).toEqual([join(d, 'vocab.txt'), join(d, 'tokenizer_config.json')]);
    expect(m.tokenizer.encode(UPPER, 128)).toEqual(m.tokenizer.encode(LOWER, 128));
  });
});
