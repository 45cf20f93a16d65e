/**
 * Task-adaptive routing weights p(c|T) of the MoDE ensemble (ARCHITECTURE.md section 2, step 5): which experts
 * a task (its class names, or its texts) belongs to, from the distances of the task's embeddings to the
 * fine cluster centers, without labels and without touching any parameter.
 *
 * - 'code' (the official implementation, default): d_l = ||e_l - e_s(l)||_2 (not squared) to the nearest
 *   fine center s(l); kappa = 5 log10(max(10, |L| - 200)); a = exp(0.5 - sqrt|L|) if |L| < 10 else 0;
 *   W_c = sum over classes l whose nearest center is in S_c of exp(kappa (a - d_l)); p = softmax(W / 8).
 * - 'paper': A_l = exp(-||e_l - e_s(l)||^2 / lambda) for the nearest center only, lambda = 0.2;
 *   p(c|T) proportional to exp(sum over l with s(l) in S_c of A_l).
 * - 'uniform': 1/n each; 'single': all weight on one expert.
 */
import { z } from 'zod';

export const RoutingFormula = z.enum(['code', 'paper', 'uniform', 'single']);
export type RoutingFormula = z.infer<typeof RoutingFormula>;

export const PAPER_LAMBDA = 0.2;
export const CODE_TEMPERATURE = 8;

/** For each task embedding: its nearest fine center's expert (index into the experts) and L2 distance. */
export interface NearestFine {
  expert: number;
  distance: number;
}

export interface WeightOptions {
  formula: RoutingFormula;
  experts: number;
  /** Expert index for formula 'single'. */
  single?: number;
  lambda?: number;
}

/** The official code's constants for a task of `classes` entries. */
export function codeConstants(classes: number): { kappa: number; a: number } {
  return { kappa: 5 * Math.log10(Math.max(10, classes - 200)), a: classes < 10 ? Math.exp(0.5 - Math.sqrt(classes)) : 0 };
}

export function softmax(values: readonly number[]): number[] {
  const max = Math.max(...values);
  const exps = values.map((v) => Math.exp(v - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / sum);
}

/** p(c|T) over the experts for one task, given each task entry's nearest fine center. */
export function routingWeights(task: readonly NearestFine[], options: WeightOptions): number[] {
  const n = options.experts;
  if (options.formula === 'uniform') return Array.from({ length: n }, () => 1 / n);
  if (options.formula === 'single') {
    const k = options.single ?? 0;
    if (k < 0 || k >= n) throw new RangeError(`single expert ${k} is not one of ${n} experts`);
    return Array.from({ length: n }, (_, i) => (i === k ? 1 : 0));
  }
  const scores = new Array<number>(n).fill(0);
  if (options.formula === 'code') {
    const { kappa, a } = codeConstants(task.length);
    for (const { expert, distance } of task) scores[expert]! += Math.exp(kappa * (a - distance));
    return softmax(scores.map((w) => w / CODE_TEMPERATURE));
  }
  const lambda = options.lambda ?? PAPER_LAMBDA;
  for (const { expert, distance } of task) scores[expert]! += Math.exp(-(distance * distance) / lambda);
  return softmax(scores);
}

/** sum_c p_c * logits_c, with logits_c row-major [rows, cols] per expert. */
export function mixLogits(weights: readonly number[], logits: readonly Float32Array[]): Float32Array {
  const out = new Float32Array(logits[0]?.length ?? 0);
  logits.forEach((l, c) => {
    const w = weights[c]!;
    if (w === 0) return;
    for (let i = 0; i < out.length; i++) out[i]! += w * l[i]!;
  });
  return out;
}
