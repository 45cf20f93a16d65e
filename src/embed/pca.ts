/**
 * Principal component analysis and the Zipf/SIF token weighting used to distil a static embedder
 * (Model2Vec recipe). Pure functions over row-major arrays: no tensors, no I/O, so that the maths is
 * unit-tested on its own and the distillation only wires files to it.
 *
 * PCA goes through the H x H covariance and a dense symmetric eigensolver (Householder reduction to
 * tridiagonal form, then implicit QL: EISPACK tred2/tql2 as published in JAMA). For BERT-sized hidden
 * sizes (H = 384..1024) that is O(H^3) on a small matrix, which takes a second or two, whereas an SVD
 * of the V x H token matrix (V ~ 30k) would be far slower in plain JavaScript.
 */

export interface SymmetricEigen {
  /** Eigenvalues, largest first. */
  values: Float64Array;
  /** n x n row-major; row i is the unit eigenvector of values[i]. */
  vectors: Float64Array;
}

/** Sweeps of QL per eigenvalue before we call the input pathological (typical: 1-3). */
const MAX_QL_ITERATIONS = 100;

/**
 * Eigen-decomposition of a symmetric n x n matrix (row-major; only symmetry is assumed, the input is
 * not modified). Each eigenvector's sign is fixed so that its largest-magnitude entry is positive:
 * eigenvectors are defined up to sign, and a deterministic choice keeps distilled files reproducible.
 */
export function symmetricEigen(a: Float64Array | Float32Array, n: number): SymmetricEigen {
  if (a.length !== n * n) throw new RangeError(`symmetricEigen: ${a.length} values, expected ${n}x${n}`);
  if (n === 0) return { values: new Float64Array(0), vectors: new Float64Array(0) };
  const V = Float64Array.from(a);
  const d = new Float64Array(n);
  const e = new Float64Array(n);
  tred2(V, d, e, n);
  tql2(V, d, e, n);
  // V holds eigenvectors as columns, eigenvalues ascending: reorder to rows, descending.
  const order = Array.from({ length: n }, (_, i) => i).sort((x, y) => d[y]! - d[x]!);
  const values = new Float64Array(n);
  const vectors = new Float64Array(n * n);
  order.forEach((col, row) => {
    values[row] = d[col]!;
    let big = 0;
    for (let k = 0; k < n; k++) if (Math.abs(V[k * n + col]!) > Math.abs(big)) big = V[k * n + col]!;
    const sign = big < 0 ? -1 : 1;
    for (let k = 0; k < n; k++) vectors[row * n + k] = sign * V[k * n + col]!;
  });
  return { values, vectors };
}

/** Householder reduction to tridiagonal form; V becomes the accumulated orthogonal transform. */
function tred2(V: Float64Array, d: Float64Array, e: Float64Array, n: number): void {
  for (let j = 0; j < n; j++) d[j] = V[(n - 1) * n + j]!;
  for (let i = n - 1; i > 0; i--) {
    let scale = 0;
    let h = 0;
    for (let k = 0; k < i; k++) scale += Math.abs(d[k]!);
    if (scale === 0) {
      e[i] = d[i - 1]!;
      for (let j = 0; j < i; j++) {
        d[j] = V[(i - 1) * n + j]!;
        V[i * n + j] = 0;
        V[j * n + i] = 0;
      }
    } else {
      for (let k = 0; k < i; k++) {
        d[k]! /= scale;
        h += d[k]! * d[k]!;
      }
      let f = d[i - 1]!;
      let g = Math.sqrt(h);
      if (f > 0) g = -g;
      e[i] = scale * g;
      h -= f * g;
      d[i - 1] = f - g;
      for (let j = 0; j < i; j++) e[j] = 0;
      for (let j = 0; j < i; j++) {
        f = d[j]!;
        V[j * n + i] = f;
        g = e[j]! + V[j * n + j]! * f;
        for (let k = j + 1; k <= i - 1; k++) {
          g += V[k * n + j]! * d[k]!;
          e[k]! += V[k * n + j]! * f;
        }
        e[j] = g;
      }
      f = 0;
      for (let j = 0; j < i; j++) {
        e[j]! /= h;
        f += e[j]! * d[j]!;
      }
      const hh = f / (h + h);
      for (let j = 0; j < i; j++) e[j]! -= hh * d[j]!;
      for (let j = 0; j < i; j++) {
        f = d[j]!;
        g = e[j]!;
        for (let k = j; k <= i - 1; k++) V[k * n + j]! -= f * e[k]! + g * d[k]!;
        d[j] = V[(i - 1) * n + j]!;
        V[i * n + j] = 0;
      }
    }
    d[i] = h;
  }
  for (let i = 0; i < n - 1; i++) {
    V[(n - 1) * n + i] = V[i * n + i]!;
    V[i * n + i] = 1;
    const h = d[i + 1]!;
    if (h !== 0) {
      for (let k = 0; k <= i; k++) d[k] = V[k * n + i + 1]! / h;
      for (let j = 0; j <= i; j++) {
        let g = 0;
        for (let k = 0; k <= i; k++) g += V[k * n + i + 1]! * V[k * n + j]!;
        for (let k = 0; k <= i; k++) V[k * n + j]! -= g * d[k]!;
      }
    }
    for (let k = 0; k <= i; k++) V[k * n + i + 1] = 0;
  }
  for (let j = 0; j < n; j++) {
    d[j] = V[(n - 1) * n + j]!;
    V[(n - 1) * n + j] = 0;
  }
  V[(n - 1) * n + n - 1] = 1;
  e[0] = 0;
}

/** Implicit QL on the tridiagonal (d, e), rotating V's columns into eigenvectors. */
function tql2(V: Float64Array, d: Float64Array, e: Float64Array, n: number): void {
  for (let i = 1; i < n; i++) e[i - 1] = e[i]!;
  e[n - 1] = 0;
  let f = 0;
  let tst1 = 0;
  const eps = 2 ** -52;
  for (let l = 0; l < n; l++) {
    tst1 = Math.max(tst1, Math.abs(d[l]!) + Math.abs(e[l]!));
    let m = l;
    while (m < n) {
      if (Math.abs(e[m]!) <= eps * tst1) break;
      m++;
    }
    if (m > l) {
      let iter = 0;
      do {
        if (++iter > MAX_QL_ITERATIONS) throw new RangeError(`symmetricEigen: QL did not converge for eigenvalue ${l}`);
        let g = d[l]!;
        let p = (d[l + 1]! - g) / (2 * e[l]!);
        let r = Math.hypot(p, 1);
        if (p < 0) r = -r;
        d[l] = e[l]! / (p + r);
        d[l + 1] = e[l]! * (p + r);
        const dl1 = d[l + 1]!;
        let h = g - d[l]!;
        for (let i = l + 2; i < n; i++) d[i]! -= h;
        f += h;
        p = d[m]!;
        let c = 1;
        let c2 = c;
        let c3 = c;
        const el1 = e[l + 1]!;
        let s = 0;
        let s2 = 0;
        for (let i = m - 1; i >= l; i--) {
          c3 = c2;
          c2 = c;
          s2 = s;
          g = c * e[i]!;
          h = c * p;
          r = Math.hypot(p, e[i]!);
          e[i + 1] = s * r;
          s = e[i]! / r;
          c = p / r;
          p = c * d[i]! - s * g;
          d[i + 1] = h + s * (c * g + s * d[i]!);
          for (let k = 0; k < n; k++) {
            const row = k * n;
            h = V[row + i + 1]!;
            V[row + i + 1] = s * V[row + i]! + c * h;
            V[row + i] = c * V[row + i]! - s * h;
          }
        }
        p = (-s * s2 * c3 * el1 * e[l]!) / dl1;
        e[l] = s * p;
        d[l] = c * p;
      } while (Math.abs(e[l]!) > eps * tst1);
    }
    d[l] = d[l]! + f;
    e[l] = 0;
  }
}

export interface MatrixRows {
  /** rows x cols, row-major. */
  data: Float32Array;
  rows: number;
  cols: number;
  /** Rows that take part (1) or are ignored (0); all rows when absent. */
  keep?: Uint8Array;
}

export interface Covariance {
  /** cols x cols, row-major, symmetric; divided by (n - 1). */
  cov: Float64Array;
  mean: Float64Array;
  /** Rows used. */
  n: number;
}

/** Column means and covariance of the kept rows, accumulated in float64 (30k rows of float32 lose digits). */
export function covariance({ data, rows, cols, keep }: MatrixRows): Covariance {
  checkShape(data, rows, cols, keep);
  const mean = new Float64Array(cols);
  let n = 0;
  for (let r = 0; r < rows; r++) {
    if (keep && !keep[r]) continue;
    n++;
    const base = r * cols;
    for (let c = 0; c < cols; c++) mean[c]! += data[base + c]!;
  }
  if (n < 2) throw new RangeError(`covariance needs at least 2 rows, got ${n}`);
  for (let c = 0; c < cols; c++) mean[c]! /= n;
  const cov = new Float64Array(cols * cols);
  // Rank-4 updates: four centered rows per pass over the (upper) triangle, so that each covariance
  // entry is loaded and stored a quarter as often; that is the cost that dominates for 30k x 384.
  const xs = [new Float64Array(cols), new Float64Array(cols), new Float64Array(cols), new Float64Array(cols)] as const;
  const [x0, x1, x2, x3] = xs;
  let filled = 0;
  const flush = () => {
    for (let f = filled; f < 4; f++) xs[f]!.fill(0);
    for (let i = 0; i < cols; i++) {
      const a0 = x0[i]!;
      const a1 = x1[i]!;
      const a2 = x2[i]!;
      const a3 = x3[i]!;
      const row = i * cols;
      for (let j = i; j < cols; j++) cov[row + j]! += a0 * x0[j]! + a1 * x1[j]! + a2 * x2[j]! + a3 * x3[j]!;
    }
    filled = 0;
  };
  for (let r = 0; r < rows; r++) {
    if (keep && !keep[r]) continue;
    const base = r * cols;
    const x = xs[filled]!;
    for (let c = 0; c < cols; c++) x[c] = data[base + c]! - mean[c]!;
    if (++filled === 4) flush();
  }
  if (filled > 0) flush();
  const scale = 1 / (n - 1);
  for (let i = 0; i < cols; i++) {
    for (let j = i; j < cols; j++) {
      const v = cov[i * cols + j]! * scale;
      cov[i * cols + j] = v;
      cov[j * cols + i] = v;
    }
  }
  return { cov, mean, n };
}

export interface Pca {
  /** k x cols row-major unit vectors, by decreasing variance. */
  components: Float64Array;
  /** Variance along each component (k). */
  variances: Float64Array;
  mean: Float64Array;
  k: number;
  cols: number;
  /** Share of the total variance that the k components keep, 0..1. */
  explainedVariance: number;
}

/** PCA of the kept rows (centered, not whitened: sklearn's PCA defaults, which Model2Vec uses). */
export function pca(matrix: MatrixRows, k: number): Pca {
  const { cols } = matrix;
  if (!Number.isInteger(k) || k < 1 || k > cols) throw new RangeError(`pca: k=${k} must be 1..${cols}`);
  const { cov, mean } = covariance(matrix);
  const { values, vectors } = symmetricEigen(cov, cols);
  let total = 0;
  // Round-off can leave tiny negative eigenvalues on a rank-deficient matrix: they hold no variance.
  for (let i = 0; i < cols; i++) total += Math.max(0, values[i]!);
  let kept = 0;
  for (let i = 0; i < k; i++) kept += Math.max(0, values[i]!);
  return {
    components: vectors.slice(0, k * cols),
    variances: values.slice(0, k),
    mean,
    k,
    cols,
    explainedVariance: total > 0 ? kept / total : 0,
  };
}

/** (row - mean) . component for every row and component: rows x k. Rows not kept come out zero. */
export function projectRows({ data, rows, cols, keep }: MatrixRows, p: Pca): Float32Array {
  checkShape(data, rows, cols, keep);
  if (cols !== p.cols) throw new RangeError(`projectRows: rows have ${cols} columns, the PCA ${p.cols}`);
  const { k, components, mean } = p;
  const out = new Float32Array(rows * k);
  // Four rows at a time share each component load and give the CPU four independent sums.
  const xs = [new Float64Array(cols), new Float64Array(cols), new Float64Array(cols), new Float64Array(cols)] as const;
  const [x0, x1, x2, x3] = xs;
  const group: number[] = [];
  const flush = () => {
    for (let f = group.length; f < 4; f++) xs[f]!.fill(0);
    for (let j = 0; j < k; j++) {
      const comp = j * cols;
      let s0 = 0;
      let s1 = 0;
      let s2 = 0;
      let s3 = 0;
      for (let c = 0; c < cols; c++) {
        const w = components[comp + c]!;
        s0 += x0[c]! * w;
        s1 += x1[c]! * w;
        s2 += x2[c]! * w;
        s3 += x3[c]! * w;
      }
      const sums = [s0, s1, s2, s3];
      group.forEach((r, g) => (out[r * k + j] = sums[g]!));
    }
    group.length = 0;
  };
  for (let r = 0; r < rows; r++) {
    if (keep && !keep[r]) continue;
    const base = r * cols;
    const x = xs[group.length]!;
    for (let c = 0; c < cols; c++) x[c] = data[base + c]! - mean[c]!;
    group.push(r);
    if (group.length === 4) flush();
  }
  if (group.length > 0) flush();
  return out;
}

/** Model2Vec's SIF coefficient: tokens whose (Zipf-estimated) probability is well above it are damped. */
export const SIF_A = 1e-4;

/**
 * SIF weights from vocabulary rank, as Model2Vec does when no corpus counts are at hand: Zipf's law
 * p(rank) proportional to 1 / (rank + 2), normalised over the vocabulary, weight = a / (a + p). Rank is
 * the token id, so this assumes the vocabulary is ordered by frequency; for BERT's vocab.txt that is
 * only roughly true (specials, [unused*] and single characters come first, ## pieces are mixed in),
 * which is why the recipe is an approximation of SIF, not SIF.
 */
export function zipfSifWeights(vocabSize: number, a = SIF_A): Float64Array {
  if (!Number.isInteger(vocabSize) || vocabSize < 0) throw new RangeError(`zipfSifWeights: vocabSize=${vocabSize}`);
  let norm = 0;
  for (let r = 0; r < vocabSize; r++) norm += 1 / (r + 2);
  const out = new Float64Array(vocabSize);
  for (let r = 0; r < vocabSize; r++) {
    const p = 1 / (r + 2) / norm;
    out[r] = a / (a + p);
  }
  return out;
}

function checkShape(data: Float32Array, rows: number, cols: number, keep: Uint8Array | undefined): void {
  if (data.length !== rows * cols) throw new RangeError(`matrix holds ${data.length} values, expected ${rows}x${cols}`);
  if (keep && keep.length !== rows) throw new RangeError(`keep mask has ${keep.length} entries, expected ${rows}`);
}
