/**
 * Token states -> one unit vector per caption, the way sentence-transformers pools BERT outputs.
 * Pure functions over row-major arrays; the tfjs embedder does the same with tensor ops.
 */

export type Pooling = 'mean' | 'cls';

export interface TokenStates {
  /** [batch, seqLen, dim] row-major. */
  hidden: Float32Array;
  batch: number;
  seqLen: number;
  dim: number;
  /** [batch, seqLen], 1 on real tokens, 0 on padding. */
  mask: Int32Array;
}

/**
 * Mean over the masked tokens, or the first ([CLS]) token; then L2-normalised. The mean's division by
 * the token count is skipped: normalisation removes any positive per-row scale.
 */
export function poolTokenStates(states: TokenStates, pooling: Pooling): Float32Array {
  const { hidden, batch, seqLen, dim, mask } = states;
  if (hidden.length !== batch * seqLen * dim) {
    throw new RangeError(`token states hold ${hidden.length} values, expected ${batch}x${seqLen}x${dim}`);
  }
  const out = new Float32Array(batch * dim);
  const acc = new Float64Array(dim);
  for (let b = 0; b < batch; b++) {
    acc.fill(0);
    const last = pooling === 'cls' ? Math.min(1, seqLen) : seqLen;
    for (let t = 0; t < last; t++) {
      if (pooling === 'mean' && mask[b * seqLen + t] === 0) continue;
      const base = (b * seqLen + t) * dim;
      for (let d = 0; d < dim; d++) acc[d]! += hidden[base + d]!;
    }
    writeNormalized(acc, out.subarray(b * dim, (b + 1) * dim));
  }
  return out;
}

/** L2-normalises each row of a [rows, dim] matrix in place; an all-zero row stays zero. */
export function normalizeRows(data: Float32Array, dim: number): Float32Array {
  const acc = new Float64Array(dim);
  for (let r = 0; r * dim < data.length; r++) {
    const row = data.subarray(r * dim, (r + 1) * dim);
    for (let d = 0; d < dim; d++) acc[d] = row[d]!;
    writeNormalized(acc, row);
  }
  return data;
}

function writeNormalized(acc: Float64Array, row: Float32Array): void {
  let sumSq = 0;
  for (let d = 0; d < acc.length; d++) sumSq += acc[d]! * acc[d]!;
  const inv = sumSq > 0 ? 1 / Math.sqrt(sumSq) : 0;
  for (let d = 0; d < acc.length; d++) row[d] = acc[d]! * inv;
}
