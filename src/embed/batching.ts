/**
 * Captions -> model batches -> rows in caption order, shared by the model-backed embedders.
 */
import { StateError } from '../errors.js';
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
