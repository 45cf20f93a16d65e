/**
 * A static embedder distilled from a sentence encoder (the Model2Vec recipe, see app/models/distill.ts):
 * one precomputed vector per vocabulary token; a caption's embedding is the L2-normalised mean of its
 * WordPiece tokens' vectors. No network runs, so it embeds at hashed-embedder speed while living in a
 * space shaped by the encoder.
 *
 * Directory (written by distillStatic, next to the pulled model as `static/`):
 *   static.json     format, dimension, vocabulary size, where the vectors came from (zod-checked)
 *   vectors.bin     float32 little-endian, vocabSize x dim, row = token id (zero rows: tokens left out)
 *   tokenizer.json | vocab.txt [+ tokenizer_config.json]   copied from the encoder: they define the ids
 * A missing directory is a ConfigError (the setting points at the wrong place); a missing or corrupt
 * file inside it is a StateError naming the file.
 */
import { readFile, stat } from 'node:fs/promises';
import { endianness } from 'node:os';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { StaticEmbedderConfig } from '../config.js';
import { ConfigError, StateError, errorMessage } from '../errors.js';
import { parseEncoderSettings } from './batching.js';
import type { CaptionEmbedder, ResolvedEmbedderSettings } from './types.js';
import { hashFiles, readJson, shortHash } from './model-dir.js';
import { TokenizerConfigJson, tokenizerFromJson, tokenizerFromVocabTxt, type WordPieceTokenizer } from './tokenizer.js';

export type StaticEmbedderSettings = ResolvedEmbedderSettings<'static'>;

/** Bump when the reading of the files or the pooling changes: the fingerprint must change with the space. */
const ALGORITHM = 'static-v1';

export const STATIC_META_FILE = 'static.json';
export const STATIC_VECTORS_FILE = 'vectors.bin';
export const STATIC_FORMAT = 'modestream-static';
export const STATIC_FORMAT_VERSION = 1;

/** static.json: what the reader relies on (dim, vocabSize) plus the provenance a person needs to trust it. */
export const StaticModelJson = z
  .object({
    format: z.literal(STATIC_FORMAT),
    version: z.literal(STATIC_FORMAT_VERSION),
    dim: z.number().int().positive(),
    vocabSize: z.number().int().positive(),
    source: z.object({
      /** The onnx embedder's fingerprint of the encoder the vectors were distilled from. */
      fingerprint: z.string().min(1),
      /** Full sha256 over the encoder's model file(s), as hashFiles computes it. */
      modelSha256: z.string().regex(/^[0-9a-f]{64}$/),
      hiddenSize: z.number().int().positive(),
      /** What each vocabulary token was fed as, and how the token states were pooled. */
      input: z.literal('[CLS] token [SEP]'),
      pooling: z.literal('mean'),
    }),
    pca: z.object({
      components: z.number().int().positive(),
      centered: z.literal(true),
      /** Share of the token vectors' variance that the kept components hold, 0..1. */
      explainedVariance: z.number().min(0).max(1),
    }),
    weighting: z.object({
      kind: z.literal('zipf-sif'),
      a: z.number().positive(),
      rank: z.literal('token-id'),
    }),
    /** Special and [unused*] tokens: not distilled, their rows are zero. */
    skippedTokens: z.number().int().min(0),
    created: z.iso.datetime(),
  })
  .refine((m) => m.pca.components === m.dim, { message: 'pca.components must equal dim', path: ['pca', 'components'] });
export type StaticModelJson = z.infer<typeof StaticModelJson>;

export async function createStaticEmbedder(settings: StaticEmbedderSettings): Promise<CaptionEmbedder> {
  const { maxTokens } = parseEncoderSettings(StaticEmbedderConfig, settings, 'static');
  const model = await readStaticDir(settings.dir);
  const [vectorsHash, tokenizerHash] = await Promise.all([hashFiles([model.vectorsFile]), hashFiles(model.tokenizerFiles)]);
  const { dim, vectors, tokenizer } = model;
  const fingerprint = `${ALGORITHM}(vectors=sha256:${shortHash(vectorsHash)},tokenizer=sha256:${shortHash(tokenizerHash)},dim=${dim})`;
  // encode() counts [CLS] and [SEP] in its limit; static captions use neither, so maxTokens is pieces only.
  const encodeLimit = maxTokens + 2;
  const acc = new Float64Array(dim);
  let disposed = false;
  return {
    dim,
    fingerprint,
    async embed(captions) {
      if (disposed) throw new StateError(`${ALGORITHM} embedder used after dispose()`);
      const out = new Float32Array(captions.length * dim);
      for (let i = 0; i < captions.length; i++) {
        const ids = tokenizer.encode(captions[i]!, encodeLimit);
        acc.fill(0);
        // Skip [CLS] (first) and [SEP] (last). The mean's division by the count is skipped too: the
        // normalisation removes it. [UNK] and special rows are zero, so they add nothing.
        for (let t = 1; t < ids.length - 1; t++) {
          const base = ids[t]! * dim;
          for (let d = 0; d < dim; d++) acc[d]! += vectors[base + d]!;
        }
        let sumSq = 0;
        for (let d = 0; d < dim; d++) sumSq += acc[d]! * acc[d]!;
        if (sumSq === 0) continue; // no known token: a zero row, as the hashed embedder gives
        const inv = 1 / Math.sqrt(sumSq);
        const row = i * dim;
        for (let d = 0; d < dim; d++) out[row + d] = acc[d]! * inv;
      }
      return out;
    },
    dispose() {
      disposed = true;
    },
  };
}

export interface StaticDir {
  dir: string;
  meta: StaticModelJson;
  dim: number;
  /** vocabSize x dim, row = token id. */
  vectors: Float32Array;
  vectorsFile: string;
  tokenizer: WordPieceTokenizer;
  tokenizerFiles: string[];
}

/** Reads and checks a distilled directory: metadata, tokenizer and vectors must agree on their sizes. */
export async function readStaticDir(dir: string): Promise<StaticDir> {
  const root = resolve(dir);
  const info = await stat(root).catch(() => undefined);
  if (!info?.isDirectory()) {
    throw new ConfigError(
      `embedder.dir "${dir}" is not a directory: expected a static embedder distilled from an encoder ` +
        `(\`modestream models pull <model>\` writes one in <model>/static)`,
    );
  }
  const metaFile = join(root, STATIC_META_FILE);
  if (!(await isFile(metaFile))) throw new StateError(`${metaFile} is missing: "${dir}" is not a complete static embedder directory (distil it again)`);
  const parsed = StaticModelJson.safeParse(await readJson(metaFile));
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new StateError(`${metaFile} has unexpected contents: ${problems}`);
  }
  const meta = parsed.data;
  const { tokenizer, tokenizerFiles } = await readStaticTokenizer(root);
  if (tokenizer.vocabSize !== meta.vocabSize) {
    throw new StateError(`${tokenizerFiles[0]} has ${tokenizer.vocabSize} tokens but ${metaFile} says vocabSize=${meta.vocabSize}`);
  }
  const vectorsFile = join(root, STATIC_VECTORS_FILE);
  const vectors = await readVectors(vectorsFile, meta.vocabSize, meta.dim);
  return { dir: root, meta, dim: meta.dim, vectors, vectorsFile, tokenizer, tokenizerFiles };
}

/** Same precedence as model directories: tokenizer.json, else vocab.txt with tokenizer_config.json. */
async function readStaticTokenizer(root: string): Promise<{ tokenizer: WordPieceTokenizer; tokenizerFiles: string[] }> {
  const json = join(root, 'tokenizer.json');
  if (await isFile(json)) return { tokenizer: tokenizerFromJson(await readJson(json), json), tokenizerFiles: [json] };
  const vocab = join(root, 'vocab.txt');
  if (!(await isFile(vocab))) throw new StateError(`${root} has no tokenizer.json or vocab.txt: the static embedder's tokenizer files are missing`);
  const configFile = join(root, 'tokenizer_config.json');
  let config: TokenizerConfigJson | undefined;
  if (await isFile(configFile)) {
    const c = TokenizerConfigJson.safeParse(await readJson(configFile));
    if (!c.success) throw new StateError(`${configFile} has unexpected contents: ${c.error.issues.map((i) => i.message).join('; ')}`);
    config = c.data;
  }
  const text = await readFile(vocab, 'utf8').catch((err: unknown) => {
    throw new StateError(`cannot read ${vocab}: ${errorMessage(err)}`, { cause: err });
  });
  return {
    tokenizer: tokenizerFromVocabTxt(config ? { text, config } : { text }, vocab),
    tokenizerFiles: config ? [vocab, configFile] : [vocab],
  };
}

async function readVectors(file: string, vocabSize: number, dim: number): Promise<Float32Array> {
  const expected = vocabSize * dim * 4;
  const size = (await stat(file).catch(() => undefined))?.size;
  if (size === undefined) throw new StateError(`${file} is missing: the static embedder's token vectors (distil it again)`);
  if (size !== expected) {
    throw new StateError(`${file} holds ${size} bytes, expected ${vocabSize} x ${dim} float32 = ${expected} (truncated or corrupt: distil it again)`);
  }
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (err) {
    throw new StateError(`cannot read ${file}: ${errorMessage(err)}`, { cause: err });
  }
  const vectors = float32FromLE(bytes);
  // One NaN row would turn every caption holding that token into NaN and poison the centers.
  for (let i = 0; i < vectors.length; i++) {
    if (!Number.isFinite(vectors[i]!)) {
      throw new StateError(`${file} holds a non-finite value at token ${Math.floor(i / dim)} (corrupt: distil it again)`);
    }
  }
  return vectors;
}

/** float32 little-endian bytes -> Float32Array (a copy, aligned, whatever the host's byte order). */
export function float32FromLE(bytes: Uint8Array): Float32Array {
  if (bytes.byteLength % 4 !== 0) throw new RangeError(`${bytes.byteLength} bytes are not a whole number of float32 values`);
  const out = new Float32Array(bytes.byteLength / 4);
  if (endianness() === 'LE') {
    new Uint8Array(out.buffer).set(bytes);
    return out;
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(i * 4, true);
  return out;
}

/** Float32Array -> float32 little-endian bytes (the file format is fixed, the host's byte order is not). */
export function float32ToLE(values: Float32Array): Uint8Array {
  if (endianness() === 'LE') return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  const out = new Uint8Array(values.length * 4);
  const view = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) view.setFloat32(i * 4, values[i]!, true);
  return out;
}

async function isFile(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined))?.isFile() ?? false;
}
