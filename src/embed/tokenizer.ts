/**
 * BERT WordPiece tokenisation, matching Hugging Face `tokenizers` (BertNormalizer + BertPreTokenizer +
 * WordPiece + the "[CLS] $A [SEP]" template) so that a pretrained encoder sees the ids it was trained on.
 *
 * Per caption:
 * 1. Special tokens (the vocabulary's [CLS], [SEP], [PAD], [UNK], [MASK] and any other special added
 *    token) written literally in the text are matched first, as HF does, and map to their own ids.
 * 2. Normalise the rest: drop NUL, U+FFFD and control characters, map whitespace to ' ' (cleanText);
 *    surround CJK ideographs with spaces; NFD + drop combining marks (stripAccents); lowercase.
 * 3. Split on whitespace; every punctuation character is a word of its own.
 * 4. WordPiece, greedy longest-match-first with the `##` continuation prefix; a word with any
 *    unmatchable rest, or longer than maxInputCharsPerWord code points, becomes [UNK].
 * 5. [CLS] pieces [SEP], the pieces truncated so that the whole fits maxTokens.
 *
 * Builders parse text they are given; reading files is model-dir.ts's job.
 */
import { z } from 'zod';
import { ConfigError, StateError } from '../errors.js';

export interface WordPieceOptions {
  /** Token per id (the line order of vocab.txt). */
  vocab: readonly string[];
  lowercase: boolean;
  stripAccents: boolean;
  cleanText: boolean;
  handleChineseChars: boolean;
  unkToken: string;
  clsToken: string;
  sepToken: string;
  padToken: string;
  continuingSubwordPrefix: string;
  maxInputCharsPerWord: number;
  /** Tokens matched verbatim in the raw text before normalisation (HF special added tokens). */
  specialTokens: readonly string[];
}

/** One batch, row-major [batch, seqLen], padded to the longest row (never beyond maxTokens). */
export interface EncodedBatch {
  batch: number;
  seqLen: number;
  inputIds: Int32Array;
  attentionMask: Int32Array;
  tokenTypeIds: Int32Array;
  /** Real tokens per row, [CLS] and [SEP] included. */
  lengths: Int32Array;
}

export interface WordPieceTokenizer {
  readonly vocabSize: number;
  /** Word pieces of one caption, without [CLS]/[SEP] and without truncation. */
  tokenize(text: string): string[];
  readonly padId: number;
  /** Ids of one caption: [CLS] pieces [SEP], at most maxTokens ids. */
  encode(text: string, maxTokens: number): number[];
  encodeBatch(texts: readonly string[], maxTokens: number): EncodedBatch;
}

/** [CLS] and [SEP] take two of the maxTokens positions. */
export const MIN_MAX_TOKENS = 2;

export function createWordPieceTokenizer(options: WordPieceOptions): WordPieceTokenizer {
  const ids = new Map<string, number>();
  options.vocab.forEach((token, id) => {
    // vocab.txt may repeat a line; HF keeps the last id, and so do we.
    ids.set(token, id);
  });
  const idOf = (token: string, role: string): number => {
    const id = ids.get(token);
    if (id === undefined) throw new ConfigError(`tokenizer vocabulary has no ${role} token "${token}"`);
    return id;
  };
  const unk = idOf(options.unkToken, 'unknown');
  const cls = idOf(options.clsToken, 'classifier');
  const sep = idOf(options.sepToken, 'separator');
  const pad = idOf(options.padToken, 'padding');
  const prefix = options.continuingSubwordPrefix;
  const specials = [...new Set(options.specialTokens.filter((t) => t !== ''))]
    // Longest first, so that "[MASK]" is not shadowed by a shorter special that is its prefix.
    .sort((a, b) => b.length - a.length);
  const specialPattern = specials.length ? new RegExp(specials.map(escapeRegExp).join('|'), 'gu') : undefined;

  function wordPiece(word: string, out: string[]): void {
    const chars = Array.from(word);
    if (chars.length > options.maxInputCharsPerWord) {
      out.push(options.unkToken);
      return;
    }
    const pieces: string[] = [];
    for (let start = 0; start < chars.length; ) {
      let end = chars.length;
      let found: string | undefined;
      while (start < end) {
        const sub = (start > 0 ? prefix : '') + chars.slice(start, end).join('');
        if (ids.has(sub)) {
          found = sub;
          break;
        }
        end--;
      }
      if (found === undefined) {
        out.push(options.unkToken);
        return;
      }
      pieces.push(found);
      start = end;
    }
    out.push(...pieces);
  }

  function tokenizePlain(text: string, out: string[]): void {
    for (const word of preTokenize(normalize(text, options))) wordPiece(word, out);
  }

  function tokenize(text: string): string[] {
    const out: string[] = [];
    if (!specialPattern) {
      tokenizePlain(text, out);
      return out;
    }
    let last = 0;
    for (const m of text.matchAll(specialPattern)) {
      tokenizePlain(text.slice(last, m.index), out);
      out.push(m[0]);
      last = m.index + m[0].length;
    }
    tokenizePlain(text.slice(last), out);
    return out;
  }

  function encode(text: string, maxTokens: number): number[] {
    checkMaxTokens(maxTokens);
    const pieces = tokenize(text);
    const body = pieces.slice(0, maxTokens - 2).map((p) => ids.get(p) ?? unk);
    return [cls, ...body, sep];
  }

  return {
    vocabSize: options.vocab.length,
    tokenize,
    encode,
    padId: pad,
    encodeBatch: (texts, maxTokens) => padBatch(texts.map((t) => encode(t, maxTokens)), pad),
  };
}

/** Pads encoded rows to the longest one; attention mask 1 on real tokens, token types all 0 (one sentence). */
export function padBatch(rows: readonly (readonly number[])[], padId: number): EncodedBatch {
  const seqLen = rows.reduce((m, r) => Math.max(m, r.length), 0);
  const batch = rows.length;
  const inputIds = new Int32Array(batch * seqLen).fill(padId);
  const attentionMask = new Int32Array(batch * seqLen);
  const lengths = new Int32Array(batch);
  rows.forEach((row, i) => {
    inputIds.set(row, i * seqLen);
    attentionMask.fill(1, i * seqLen, i * seqLen + row.length);
    lengths[i] = row.length;
  });
  return { batch, seqLen, inputIds, attentionMask, tokenTypeIds: new Int32Array(batch * seqLen), lengths };
}

function checkMaxTokens(maxTokens: number): void {
  if (!Number.isInteger(maxTokens) || maxTokens < MIN_MAX_TOKENS) {
    throw new ConfigError(`maxTokens must be an integer >= ${MIN_MAX_TOKENS} ([CLS] and [SEP] need two), got ${maxTokens}`);
  }
}

// --- normalisation (BertNormalizer) --------------------------------------------------------------

const CONTROL = /\p{C}/u;
const WHITESPACE = /\p{White_Space}/u;
const MARK_NONSPACING = /\p{Mn}/gu;

function normalize(text: string, o: WordPieceOptions): string {
  let s = text;
  if (o.cleanText) {
    let out = '';
    for (const ch of s) {
      const cp = ch.codePointAt(0)!;
      // \t \n \r are whitespace, not controls (HF's is_control excludes them).
      if (ch === '\t' || ch === '\n' || ch === '\r') out += ' ';
      else if (cp === 0 || cp === 0xfffd || CONTROL.test(ch)) continue;
      else out += WHITESPACE.test(ch) ? ' ' : ch;
    }
    s = out;
  }
  if (o.handleChineseChars) {
    let out = '';
    for (const ch of s) out += isChineseChar(ch.codePointAt(0)!) ? ` ${ch} ` : ch;
    s = out;
  }
  // HF leaves the text in NFD after stripping (Hangul syllables stay as jamo), so we do not recompose.
  if (o.stripAccents) s = s.normalize('NFD').replace(MARK_NONSPACING, '');
  // Per character, like Rust's char::to_lowercase: no context-dependent final sigma.
  if (o.lowercase) s = Array.from(s, (ch) => ch.toLowerCase()).join('');
  return s;
}

/** The CJK Unified Ideographs blocks BERT treats as words of their own (not Hangul, kana). */
function isChineseChar(cp: number): boolean {
  return (
    (cp >= 0x4e00 && cp <= 0x9fff) ||
    (cp >= 0x3400 && cp <= 0x4dbf) ||
    (cp >= 0x20000 && cp <= 0x2a6df) ||
    (cp >= 0x2a700 && cp <= 0x2b73f) ||
    (cp >= 0x2b740 && cp <= 0x2b81f) ||
    (cp >= 0x2b820 && cp <= 0x2ceaf) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0x2f800 && cp <= 0x2fa1f)
  );
}

// --- pre-tokenisation (BertPreTokenizer) ---------------------------------------------------------

const PUNCTUATION = /\p{P}/u;

/** BERT counts every non-alphanumeric printable ASCII character as punctuation ($, +, <, ^, `...). */
function isPunctuation(ch: string): boolean {
  const cp = ch.codePointAt(0)!;
  if ((cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) || (cp >= 123 && cp <= 126)) return true;
  return PUNCTUATION.test(ch);
}

function preTokenize(text: string): string[] {
  const words: string[] = [];
  let word = '';
  for (const ch of text) {
    if (WHITESPACE.test(ch)) {
      if (word) words.push(word);
      word = '';
    } else if (isPunctuation(ch)) {
      if (word) words.push(word);
      words.push(ch);
      word = '';
    } else {
      word += ch;
    }
  }
  if (word) words.push(word);
  return words;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

// --- loading from vocab.txt ----------------------------------------------------------------------

const BERT_SPECIALS = { unkToken: '[UNK]', clsToken: '[CLS]', sepToken: '[SEP]', padToken: '[PAD]' } as const;

/** The subset of tokenizer_config.json that a vocab.txt-only tokenizer needs (HF BertTokenizer keys). */
export const TokenizerConfigJson = z
  .object({
    do_lower_case: z.boolean().optional(),
    strip_accents: z.boolean().nullable().optional(),
    tokenize_chinese_chars: z.boolean().optional(),
    unk_token: z.string().optional(),
    cls_token: z.string().optional(),
    sep_token: z.string().optional(),
    pad_token: z.string().optional(),
    mask_token: z.string().optional(),
  })
  .loose();
export type TokenizerConfigJson = z.infer<typeof TokenizerConfigJson>;

export interface VocabTxtSource {
  /** Contents of vocab.txt. */
  text: string;
  /** Parsed tokenizer_config.json, when the directory has one. */
  config?: TokenizerConfigJson;
}

/** One token per line; a trailing newline does not add a token. */
export function parseVocabTxt(text: string): string[] {
  const lines = text.split(/\r?\n/);
  if (lines.at(-1) === '') lines.pop();
  return lines;
}

/** What to add when a vocab.txt model does not state its casing. */
const CASING_FIX =
  'add a tokenizer_config.json beside vocab.txt that states it: {"do_lower_case": true} for an uncased model ' +
  '(bert-base-uncased, all-MiniLM-L6-v2, SimCSE ...-uncased) or {"do_lower_case": false} for a cased one; ' +
  "or use the model's tokenizer.json instead";

/**
 * vocab.txt alone does not say whether the model lowercases its input, and the vocabulary cannot tell
 * us reliably: uncased vocabularies still hold capitals outside ASCII ("ℝ" in MiniLM's). A wrong guess
 * is silent (capitalised captions become [UNK], embeddings drift), so the casing must come from the
 * model's tokenizer_config.json, and a vocabulary without it is refused.
 */
export function tokenizerFromVocabTxt(source: VocabTxtSource, file = 'vocab.txt'): WordPieceTokenizer {
  const vocab = parseVocabTxt(source.text);
  if (vocab.length === 0) throw new StateError(`${file} is empty: expected one WordPiece token per line`);
  const c = source.config;
  if (c?.do_lower_case === undefined) {
    const why = c ? 'its tokenizer_config.json has no "do_lower_case" key' : 'there is no tokenizer_config.json beside it';
    throw new ConfigError(`${file}: cannot tell whether the model lowercases its input (${why}); modestream does not guess the casing: ${CASING_FIX}`);
  }
  const lowercase = c.do_lower_case;
  const specials = {
    unkToken: c.unk_token ?? BERT_SPECIALS.unkToken,
    clsToken: c.cls_token ?? BERT_SPECIALS.clsToken,
    sepToken: c.sep_token ?? BERT_SPECIALS.sepToken,
    padToken: c.pad_token ?? BERT_SPECIALS.padToken,
  };
  const mask = c.mask_token ?? '[MASK]';
  return createWordPieceTokenizer({
    vocab,
    lowercase,
    // HF: strip_accents=None follows lowercase.
    stripAccents: c.strip_accents ?? lowercase,
    cleanText: true,
    handleChineseChars: c.tokenize_chinese_chars ?? true,
    ...specials,
    continuingSubwordPrefix: '##',
    maxInputCharsPerWord: 100,
    specialTokens: [...Object.values(specials), mask].filter((t) => vocab.includes(t)),
  });
}

// --- loading from a Hugging Face tokenizer.json --------------------------------------------------

const AddedToken = z.object({
  id: z.number().int().min(0),
  content: z.string(),
  special: z.boolean().default(false),
  single_word: z.boolean().default(false),
  lstrip: z.boolean().default(false),
  rstrip: z.boolean().default(false),
  normalized: z.boolean().default(false),
});

/** Hugging Face requires these keys too (it refuses the file without them); we never fill in a casing. */
const BertNormalizer = z.object({
  type: z.literal('BertNormalizer'),
  clean_text: z.boolean(),
  handle_chinese_chars: z.boolean(),
  strip_accents: z.boolean().nullable().default(null),
  lowercase: z.boolean(),
});

const SpecialPiece = z.object({ SpecialToken: z.object({ id: z.string(), type_id: z.number().int() }) });
const SequencePiece = z.object({ Sequence: z.object({ id: z.enum(['A', 'B']), type_id: z.number().int() }) });

/** The fields we read; anything else in the file (decoder, padding, truncation) does not change ids. */
export const TokenizerJson = z
  .object({
    added_tokens: z.array(AddedToken).default([]),
    normalizer: z.object({ type: z.string() }).loose().nullable().default(null),
    pre_tokenizer: z.object({ type: z.string() }).loose().nullable().default(null),
    post_processor: z.object({ type: z.string() }).loose().nullable().default(null),
    padding: z.object({ pad_token: z.string().optional() }).loose().nullable().default(null),
    model: z.object({ type: z.string().optional() }).loose(),
  })
  .loose();

const WordPieceModel = z.object({
  type: z.literal('WordPiece').optional(),
  vocab: z.record(z.string(), z.number().int().min(0)),
  unk_token: z.string().default('[UNK]'),
  continuing_subword_prefix: z.string().default('##'),
  max_input_chars_per_word: z.number().int().positive().default(100),
});

/**
 * Supported: model WordPiece; normalizer BertNormalizer or none; pre_tokenizer BertPreTokenizer;
 * post_processor BertProcessing or a TemplateProcessing whose single template is
 * <special> $A <special>; added tokens that are special, matched verbatim (not normalized, no
 * lstrip/rstrip/single_word). Everything else (BPE/Unigram models, normalizer or pre-tokenizer
 * sequences, Metaspace, non-special added tokens...) is rejected rather than approximated.
 */
export function tokenizerFromJson(raw: unknown, file = 'tokenizer.json'): WordPieceTokenizer {
  const unsupported = (what: string) =>
    new ConfigError(`${file}: ${what} is not supported (modestream reads BERT WordPiece tokenizers only; see docs/embedders.md)`);
  const parsed = TokenizerJson.safeParse(raw);
  if (!parsed.success) throw new StateError(`${file} is not a Hugging Face tokenizer file: ${describeIssues(parsed.error)}`);
  const t = parsed.data;

  if (t.model.type !== undefined && t.model.type !== 'WordPiece') throw unsupported(`model type "${t.model.type}"`);
  const model = WordPieceModel.safeParse(t.model);
  if (!model.success) throw new StateError(`${file}: invalid WordPiece model: ${describeIssues(model.error)}`);
  const vocab = vocabFromRecord(model.data.vocab, file);

  let norm = { lowercase: false, stripAccents: false, cleanText: false, handleChineseChars: false };
  if (t.normalizer) {
    if (t.normalizer.type === 'BertNormalizer') {
      const n = t.normalizer as Record<string, unknown>;
      const missing = ['lowercase', 'clean_text', 'handle_chinese_chars'].filter((k) => typeof n[k] !== 'boolean');
      if (missing.length) {
        throw new ConfigError(
          `${file}: normalizer BertNormalizer has no boolean ${missing.map((k) => `"${k}"`).join(', ')} (Hugging Face requires them too); ` +
            'modestream does not guess how the model normalises text: "lowercase" is true for an uncased model, false for a cased one',
        );
      }
    }
    const bert = BertNormalizer.safeParse(t.normalizer);
    if (!bert.success) throw unsupported(`normalizer "${t.normalizer.type}"`);
    const b = bert.data;
    norm = {
      lowercase: b.lowercase,
      stripAccents: b.strip_accents ?? b.lowercase,
      cleanText: b.clean_text,
      handleChineseChars: b.handle_chinese_chars,
    };
  }
  if (t.pre_tokenizer?.type !== 'BertPreTokenizer') throw unsupported(`pre_tokenizer "${t.pre_tokenizer?.type ?? 'none'}"`);
  const { clsToken, sepToken } = readPostProcessor(t.post_processor, unsupported);

  for (const added of t.added_tokens) {
    if (!added.special) throw unsupported(`non-special added token "${added.content}"`);
    if (added.normalized || added.lstrip || added.rstrip || added.single_word) {
      throw unsupported(`added token "${added.content}" with normalized/lstrip/rstrip/single_word`);
    }
    if (vocab[added.id] !== added.content) {
      throw unsupported(`added token "${added.content}" (id ${added.id}) outside the WordPiece vocabulary`);
    }
  }
  const padToken = t.padding?.pad_token ?? ['[PAD]', '<pad>'].find((p) => vocab.includes(p)) ?? vocab[0]!;
  return createWordPieceTokenizer({
    vocab,
    ...norm,
    unkToken: model.data.unk_token,
    clsToken,
    sepToken,
    padToken,
    continuingSubwordPrefix: model.data.continuing_subword_prefix,
    maxInputCharsPerWord: model.data.max_input_chars_per_word,
    specialTokens: t.added_tokens.map((a) => a.content),
  });
}

function readPostProcessor(
  pp: { type: string } | null,
  unsupported: (what: string) => ConfigError,
): { clsToken: string; sepToken: string } {
  if (pp === null) throw unsupported('a missing post_processor (no [CLS]/[SEP] template)');
  if (pp.type === 'BertProcessing') {
    const bert = z
      .object({ cls: z.tuple([z.string(), z.number()]), sep: z.tuple([z.string(), z.number()]) })
      .safeParse(pp);
    if (!bert.success) throw unsupported('a BertProcessing post_processor without cls/sep');
    return { clsToken: bert.data.cls[0], sepToken: bert.data.sep[0] };
  }
  if (pp.type === 'TemplateProcessing') {
    const single = z.object({ single: z.array(z.union([SpecialPiece, SequencePiece])) }).safeParse(pp);
    const pieces = single.success ? single.data.single : [];
    const [first, middle, last] = pieces;
    if (pieces.length === 3 && first && 'SpecialToken' in first && middle && 'Sequence' in middle && last && 'SpecialToken' in last) {
      if (first.SpecialToken.type_id !== 0 || middle.Sequence.type_id !== 0 || last.SpecialToken.type_id !== 0) {
        throw unsupported('a single-sentence template with token type ids other than 0');
      }
      return { clsToken: first.SpecialToken.id, sepToken: last.SpecialToken.id };
    }
    throw unsupported('a TemplateProcessing post_processor whose single template is not "<cls> $A <sep>"');
  }
  throw unsupported(`post_processor "${pp.type}"`);
}

function vocabFromRecord(record: Record<string, number>, file: string): string[] {
  const entries = Object.entries(record);
  const vocab: string[] = new Array(entries.length);
  for (const [token, id] of entries) {
    if (id >= entries.length || vocab[id] !== undefined) {
      throw new StateError(`${file}: WordPiece vocabulary ids must be 0..${entries.length - 1}, each once (token "${token}" has id ${id})`);
    }
    vocab[id] = token;
  }
  return vocab;
}

function describeIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`)
    .join('; ');
}
