/**
 * Captions -> model batches -> rows in caption order, shared by the model-backed embedders.
 */
import type { z } from 'zod';
import { ConfigError, StateError } from '../errors.js';
import type { CaptionEmbedder } from './types.js';
import { hashFiles, shortHash, type ModelDir } from './model-dir.js';
import type { Pooling } from './pooling.js';
import { padBatch, type EncodedBatch, type WordPieceTokenizer } from './tokenizer.js';

/** The BERT inputs we can produce; a model that declares any other input is refused. */
export const FEEDABLE = ['input_ids', 'attention_mask', 'token_type_ids'] as const;
export type Feedable = (typeof FEEDABLE)[number];

/** Each feedable input's values for a batch, row-major [batch, seqLen]. */
export function feedValues(batch: EncodedBatch): Record<Feedable, Int32Array> {
  return { input_ids: batch.inputIds, attention_mask: batch.attentionMask, token_type_ids: batch.tokenTypeIds };
}

/** Captions per model run: big enough to amortise the call, small enough to bound padding waste. */
export const CAPTIONS_PER_RUN = 64;

export interface BatchResult {
  /** [batch, dim] row-major, each row L2-normalised. */
  rows: Float32Array;
  dim: number;
  /** True when the model gave token states that we pooled; false when it pooled itself. */
  tokenLevel: boolean;
}

export interface EmbedInBatchesOptions {
  captions: readonly string[];
  tokenizer: WordPieceTokenizer;
  maxTokens: number;
  dim: number;
  run: (batch: EncodedBatch) => Promise<BatchResult>;
}

/**
 * Batches captions of similar token counts together (padding costs attention work for nothing), then
 * writes each row back at its caption's position.
 */
export async function embedInBatches({ captions, tokenizer, maxTokens, dim, run }: EmbedInBatchesOptions): Promise<Float32Array> {
  const encoded = captions.map((c) => tokenizer.encode(c, maxTokens));
  const order = encoded.map((_, i) => i).sort((a, b) => encoded[a]!.length - encoded[b]!.length);
  const out = new Float32Array(captions.length * dim);
  for (let start = 0; start < order.length; start += CAPTIONS_PER_RUN) {
    const chunk = order.slice(start, start + CAPTIONS_PER_RUN);
    const result = await run(padBatch(chunk.map((i) => encoded[i]!), tokenizer.padId));
    if (result.dim !== dim) throw new StateError(`model output changed dimension: ${result.dim}, expected ${dim}`);
    chunk.forEach((caption, k) => out.set(result.rows.subarray(k * dim, (k + 1) * dim), caption * dim));
  }
  return out;
}

/** One run on the empty caption ([CLS] [SEP]): fails fast on a model we cannot feed, and tells the dimension. */
export function probeBatch(tokenizer: WordPieceTokenizer, maxTokens: number): EncodedBatch {
  return padBatch([tokenizer.encode('', maxTokens)], tokenizer.padId);
}

export interface EncoderEmbedderOptions {
  /** Names the algorithm in the fingerprint; bump it when feeding, output choice or pooling changes. */
  algorithm: string;
  modelDir: ModelDir;
  /** Every file whose bytes define the model (weights shards, external data). */
  modelFiles: readonly string[];
  /** The output tensor used, for the fingerprint. */
  output: string;
  pooling: Pooling;
  maxTokens: number;
  run: (batch: EncodedBatch) => Promise<BatchResult>;
  /** Frees the runtime's resources (session, graph model). */
  release: () => void;
}

/**
 * The CaptionEmbedder around a model runner: probes it once (fails fast, learns the dimension), checks
 * the dimension against config.json, and fingerprints model + tokenizer bytes so that centers built in
 * one embedding space are never used with another.
 */
export async function encoderEmbedder({ algorithm, modelDir, modelFiles, output, pooling, maxTokens, run, release }: EncoderEmbedderOptions): Promise<CaptionEmbedder> {
  const probe = await run(probeBatch(modelDir.tokenizer, maxTokens));
  const dim = probe.dim;
  if (probe.tokenLevel && modelDir.hiddenSize !== undefined && modelDir.hiddenSize !== dim) {
    throw new StateError(`${modelDir.modelFile} outputs ${dim}-d token states but config.json says hidden_size=${modelDir.hiddenSize}`);
  }
  const [modelHash, tokenizerHash] = await Promise.all([hashFiles(modelFiles), hashFiles(modelDir.tokenizerFiles)]);
  const fingerprint =
    `${algorithm}(model=sha256:${shortHash(modelHash)},tokenizer=sha256:${shortHash(tokenizerHash)},` +
    `output=${output},pooling=${probe.tokenLevel ? pooling : 'model'},maxTokens=${maxTokens},dim=${dim})`;
  let disposed = false;
  return {
    dim,
    fingerprint,
    async embed(captions) {
      if (disposed) throw new StateError(`${algorithm} embedder used after dispose()`);
      return embedInBatches({ captions, tokenizer: modelDir.tokenizer, maxTokens, dim, run });
    },
    dispose() {
      if (disposed) return;
      disposed = true;
      release();
    },
  };
}

/** Settings parsed with their zod schema; every issue named by its key. */
export function parseEncoderSettings<T extends z.ZodType>(schema: T, settings: unknown, kind: string): z.infer<T> {
  const parsed = schema.safeParse(settings);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || 'embedder'}: ${i.message}`).join('; ');
    throw new ConfigError(`invalid ${kind} embedder settings: ${problems}`);
  }
  return parsed.data;
}
