/**
 * Distils a static embedder from a pulled ONNX sentence encoder, following the published Model2Vec
 * recipe:
 * 1. every vocabulary token except special and [unused*] ones goes through the encoder alone, as
 *    "[CLS] token [SEP]", mean-pooled and normalised exactly as the onnx embedder pools captions;
 * 2. PCA of the resulting V x H matrix (centered) down to `dim` components;
 * 3. each row scaled by a Zipf/SIF weight from its vocabulary rank (pca.ts says why that is approximate).
 * The static embedder (src/embed/static.ts) then averages these rows per caption: no network runs.
 *
 * Output directory (outDir, normally <model>/static): vectors.bin, static.json and a copy of the
 * tokenizer files, so that it stands alone. It is written under a temporary name and renamed into
 * place: a reader never sees a half-written directory, and an interrupted run leaves the old one.
 */
import { chmod, copyFile, mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { z } from 'zod';
import { ConfigError, StateError } from '../../src/errors.js';
import { hashFiles, readJson } from '../../src/embed/model-dir.js';
import { createOnnxEncoder, type OnnxEncoder } from '../../src/embed/onnx.js';
import { SIF_A, pca, projectRows, zipfSifWeights } from '../../src/embed/pca.js';
import {
  STATIC_FORMAT,
  STATIC_FORMAT_VERSION,
  STATIC_META_FILE,
  STATIC_VECTORS_FILE,
  StaticModelJson,
  float32ToLE,
} from '../../src/embed/static.js';
import { TokenizerConfigJson, parseVocabTxt } from '../../src/embed/tokenizer.js';

export const DEFAULT_STATIC_DIM = 256;

/** Single-token sequences per encoder run: 3 positions each, so a large batch stays cheap. */
const TOKENS_PER_RUN = 256;

export async function distillStatic(options: {
  modelDir: string;
  outDir: string;
  dim?: number;
  onProgress?: (done: number, total: number) => void;
}): Promise<{ dim: number; vocab: number; seconds: number }> {
  const started = performance.now();
  const requested = options.dim ?? DEFAULT_STATIC_DIM;
  if (!Number.isInteger(requested) || requested < 1) throw new ConfigError(`static embedder dim must be a positive integer, got ${requested}`);

  const encoder = await createOnnxEncoder({
    kind: 'onnx',
    dir: options.modelDir,
    // [CLS] token [SEP]: 3 positions; the probe run needs 2.
    maxTokens: 3,
    pooling: 'mean',
    // A one-off batch job: use the machine (the router's one-thread-per-session rule is for serving).
    threads: Math.min(availableParallelism(), 16),
  });
  try {
    const vocab = await readVocabulary(encoder);
    const skip = skippedTokens(vocab);
    const V = vocab.tokens.length;
    const H = encoder.dim;
    const dim = Math.min(requested, H);

    const hidden = await encodeTokens(encoder, vocab, skip, options.onProgress);
    const keep = Uint8Array.from(skip, (s) => (s ? 0 : 1));
    const p = pca({ data: hidden, rows: V, cols: H, keep }, dim);
    const vectors = projectRows({ data: hidden, rows: V, cols: H, keep }, p);
    const weights = zipfSifWeights(V);
    for (let r = 0; r < V; r++) {
      const w = weights[r]!;
      for (let d = 0; d < dim; d++) vectors[r * dim + d]! *= w;
    }

    const meta: StaticModelJson = {
      format: STATIC_FORMAT,
      version: STATIC_FORMAT_VERSION,
      dim,
      vocabSize: V,
      source: {
        fingerprint: encoder.fingerprint,
        modelSha256: await hashFiles(encoder.modelFiles),
        hiddenSize: H,
        input: '[CLS] token [SEP]',
        pooling: 'mean',
      },
      pca: { components: dim, centered: true, explainedVariance: Math.min(1, Math.max(0, p.explainedVariance)) },
      weighting: { kind: 'zipf-sif', a: SIF_A, rank: 'token-id' },
      skippedTokens: skip.filter(Boolean).length,
      created: new Date().toISOString(),
    };
    // Fails here, not in the reader, if this writer and the schema ever drift apart.
    StaticModelJson.parse(meta);

    await writeDirAtomically(options.outDir, async (tmp) => {
      await writeFile(join(tmp, STATIC_VECTORS_FILE), float32ToLE(vectors));
      await writeFile(join(tmp, STATIC_META_FILE), `${JSON.stringify(meta, null, 2)}\n`);
      for (const file of encoder.model.tokenizerFiles) await copyFile(file, join(tmp, basename(file)));
    });
    return { dim, vocab: V, seconds: (performance.now() - started) / 1000 };
  } finally {
    encoder.dispose();
  }
}

interface Vocabulary {
  /** Token per id. */
  tokens: string[];
  /** Tokens the tokenizer files declare special. */
  specials: Set<string>;
  cls: number;
  sep: number;
}

const TokenizerJsonVocab = z
  .object({
    added_tokens: z.array(z.object({ content: z.string(), special: z.boolean().default(false) }).loose()).default([]),
    model: z.object({ vocab: z.record(z.string(), z.number().int().min(0)) }).loose(),
  })
  .loose();

/**
 * Token strings by id and the declared special tokens. The tokenizer object only maps text to ids, so
 * the files are read again here (model-dir.ts has already validated them).
 */
async function readVocabulary(encoder: OnnxEncoder): Promise<Vocabulary> {
  const files = encoder.model.tokenizerFiles;
  const first = files[0]!;
  const [cls, sep] = encoder.model.tokenizer.encode('', 2) as [number, number];
  if (basename(first) === 'tokenizer.json') {
    const parsed = TokenizerJsonVocab.safeParse(await readJson(first));
    if (!parsed.success) throw new StateError(`${first}: cannot read the WordPiece vocabulary: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
    const tokens: string[] = [];
    for (const [token, id] of Object.entries(parsed.data.model.vocab)) tokens[id] = token;
    return { tokens, specials: new Set(parsed.data.added_tokens.filter((t) => t.special).map((t) => t.content)), cls, sep };
  }
  const tokens = parseVocabTxt(await readFile(first, 'utf8'));
  const configFile = files.find((f) => basename(f) === 'tokenizer_config.json');
  const config = configFile ? TokenizerConfigJson.parse(await readJson(configFile)) : {};
  const specials = new Set([
    config.unk_token ?? '[UNK]',
    config.cls_token ?? '[CLS]',
    config.sep_token ?? '[SEP]',
    config.pad_token ?? '[PAD]',
    config.mask_token ?? '[MASK]',
  ]);
  return { tokens, specials, cls, sep };
}

/**
 * Tokens left out: declared specials ([CLS], [SEP], [PAD], [UNK], [MASK]) and BERT's [unused*] slots.
 * Their encoder outputs say nothing about meaning (the [unused*] embeddings were never trained) and would
 * skew the PCA; a caption never produces [unused*] and its specials should not move its embedding.
 */
function skippedTokens(vocab: Vocabulary): boolean[] {
  return Array.from(vocab.tokens, (t, id) => t === undefined || vocab.specials.has(t) || /^\[unused\d+\]$/.test(t) || id === vocab.cls || id === vocab.sep);
}

/** V x H: pooled encoder output of each kept token (rows of skipped tokens stay zero). */
async function encodeTokens(
  encoder: OnnxEncoder,
  vocab: Vocabulary,
  skip: readonly boolean[],
  onProgress: ((done: number, total: number) => void) | undefined,
): Promise<Float32Array> {
  const H = encoder.dim;
  const ids = skip.flatMap((s, id) => (s ? [] : [id]));
  const out = new Float32Array(vocab.tokens.length * H);
  onProgress?.(0, ids.length);
  for (let start = 0; start < ids.length; start += TOKENS_PER_RUN) {
    const chunk = ids.slice(start, start + TOKENS_PER_RUN);
    const rows = await encoder.embedIds(chunk.map((id) => [vocab.cls, id, vocab.sep]));
    chunk.forEach((id, k) => out.set(rows.subarray(k * H, (k + 1) * H), id * H));
    onProgress?.(start + chunk.length, ids.length);
  }
  return out;
}

/** Builds the directory under a temporary name beside outDir, then renames it into place. */
async function writeDirAtomically(outDir: string, fill: (tmp: string) => Promise<void>): Promise<void> {
  const target = resolve(outDir);
  await mkdir(dirname(target), { recursive: true });
  const tmp = await mkdtemp(join(dirname(target), `.${basename(target)}.tmp-`));
  try {
    await fill(tmp);
    // mkdtemp creates the directory private (0700); the result is a model file that any user may read.
    await chmod(tmp, 0o755);
    try {
      await rename(tmp, target);
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
      // rename() cannot replace a non-empty directory: move the old one aside first, so that the only
      // window without a complete directory at `target` is between two renames.
      const old = `${tmp}.old`;
      await rename(target, old);
      await rename(tmp, target);
      await rm(old, { recursive: true, force: true });
    }
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
}
