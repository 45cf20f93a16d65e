/**
 * How the set of experts follows a drifting stream (ARCHITECTURE.md section 3). Pure planning: each function
 * takes the current centroid epoch and returns the next one, or nothing to do; the controller publishes
 * it and moves the affected records.
 *
 * - Novelty: routed pairs beyond their fine cluster's radius were buffered as candidates
 *   (src/cluster/novelty.ts). A full buffer is clustered, and each cluster is JUDGED: only a dense group
 *   the existing centers do not explain (members closer to their new center than to any existing fine
 *   center, by the measured `maxRatio`) becomes a new fine center, with a radius from its members; the rest is a
 *   stationary stream's tail and is dropped. A kept center joins the expert of its nearest coarse center,
 *   or, when farther from all of them than the model's own fine-to-coarse scale (`spawnQuantile` x
 *   `spawnFactor`), the far centers form a new expert, warm-started from the nearest existing expert.
 * - Split: an expert holding more than `splitFactor` times the mean share of records is split in two
 *   by 2-means over its fine centers; the second half becomes a new expert, warm-started from the old.
 */
import type { ControllerSettings } from '../config.js';
import { kmeans } from './kmeans.js';
import type { CentroidModel } from './model.js';
import { judgeClusters, nearestUnitRow, noveltyMaxRatio, spawnThreshold, type ClusterJudgement } from './novelty.js';
import { normaliseRowInPlace } from './vectors.js';

type DriftSettings = ControllerSettings['drift'];

export interface NoveltyPlan {
  model: CentroidModel;
  /** New fine ids that joined existing experts, by expert. */
  joined: Record<number, number[]>;
  /** New experts and their fine ids. */
  spawned: Record<number, number[]>;
  /** Buffered pairs that fell in clusters not kept (too small, or explained by the existing centers). */
  dropped: number;
  /** Every cluster of the buffer and the verdict on it (the log shows why nothing was kept). */
  judged: ClusterJudgement[];
  /** The spawn threshold used (distance to the nearest coarse center). */
  spawnDistance: number;
}

/** The buffer was judged and nothing in it is new: every candidate is dropped. */
export interface NoveltyRejection {
  model?: undefined;
  dropped: number;
  judged: ClusterJudgement[];
}

export interface SplitPlan {
  model: CentroidModel;
  expert: number;
  newExpert: number;
  /** Fine ids moved to the new expert. */
  moved: number[];
}

const expertModelName = (expert: number) => `expert-${expert}`;

const nearestRow = nearestUnitRow;

function meanUnit(rows: Float32Array, indices: readonly number[], dim: number): Float32Array {
  const out = new Float32Array(dim);
  for (const r of indices) for (let d = 0; d < dim; d++) out[d]! += rows[r * dim + d]!;
  normaliseRowInPlace(out, dim, 0);
  return out;
}

/**
 * Clusters a full novelty buffer and plans the next epoch from the clusters judged new; a rejection
 * (nothing new: the candidates are a stationary tail) when none is, undefined when the buffer is too
 * small to form even one cluster of `minClusterSize`.
 */
export async function planNovelty({ model, novel, settings, seed, now = Date.now() }: { model: CentroidModel; novel: Float32Array; settings: DriftSettings; seed: number; now?: number }): Promise<NoveltyPlan | NoveltyRejection | undefined> {
  const { dim } = model;
  const n = novel.length / dim;
  const k = Math.min(settings.newClusters, Math.floor(n / settings.minClusterSize));
  if (k < 1) return undefined;
  const fit = await kmeans({ points: novel, dim, k, seed, maxIterations: 20, tolerance: 1e-4 });
  const judged = judgeClusters({ points: novel, dim, centers: fit.centers, assignment: fit.assignment, fine: model.fine, minSize: settings.minClusterSize, maxRatio: noveltyMaxRatio(model, settings), radiusQuantile: settings.radiusQuantile });
  const kept = judged.filter((j) => j.keep).map((j) => j.cluster);
  if (kept.length === 0) return { dropped: n, judged };
  const spawnDistance = spawnThreshold(model, settings.spawnQuantile, settings.spawnFactor);

  const joined: Record<number, number[]> = {};
  const far: number[] = [];
  let nextFine = Math.max(...model.fineIds) + 1;
  const newFineIds: number[] = [];
  const newFineExperts: number[] = [];
  for (const c of kept) {
    const { row, distance } = nearestRow(fit.centers, c, model.coarse, dim);
    const id = nextFine++;
    newFineIds.push(id);
    if (distance <= spawnDistance) {
      const expert = model.experts[row]!;
      (joined[expert] ??= []).push(id);
      newFineExperts.push(expert);
    } else {
      far.push(newFineIds.length - 1);
      newFineExperts.push(-1);
    }
  }

  let experts = model.experts;
  let coarse = model.coarse;
  const origins = { ...model.origins };
  const spawned: Record<number, number[]> = {};
  if (far.length > 0) {
    const expert = Math.max(...model.experts) + 1;
    const center = meanUnit(fit.centers, far.map((i) => kept[i]!), dim);
    // Warm start from the expert whose coarse center is nearest the new data.
    origins[expert] = expertModelName(model.experts[nearestRow(center, 0, model.coarse, dim).row]!);
    experts = Int32Array.from([...model.experts, expert]);
    coarse = Float32Array.from([...model.coarse, ...center]);
    spawned[expert] = far.map((i) => newFineIds[i]!);
    for (const i of far) newFineExperts[i] = expert;
  }

  const fine = new Float32Array(model.fine.length + kept.length * dim);
  fine.set(model.fine);
  kept.forEach((c, i) => fine.set(fit.centers.subarray(c * dim, (c + 1) * dim), model.fine.length + i * dim));
  return {
    model: {
      ...model,
      epoch: model.epoch + 1,
      fine,
      fineIds: Int32Array.from([...model.fineIds, ...newFineIds]),
      fineToExpert: Int32Array.from([...model.fineToExpert, ...newFineExperts]),
      coarse,
      experts,
      counts: Float64Array.from([...model.counts, ...kept.map((c) => fit.sizes[c]!)]),
      // An epoch without radii (stored before they existed) stays without: the controller derives them.
      ...(model.radii ? { radii: Float32Array.from([...model.radii, ...kept.map((c) => judged[c]!.radius)]) } : {}),
      createdAt: now,
      origins,
    },
    joined,
    spawned,
    dropped: n - kept.reduce((s, c) => s + fit.sizes[c]!, 0),
    judged,
    spawnDistance,
  };
}

export async function planSplit({ model, records, settings, seed, now = Date.now() }: { model: CentroidModel; records: ReadonlyMap<number, number>; settings: DriftSettings; seed: number; now?: number }): Promise<SplitPlan | undefined> {
  const { dim } = model;
  const experts = Array.from(model.experts);
  const total = experts.reduce((s, e) => s + (records.get(e) ?? 0), 0);
  if (total === 0 || experts.length === 0) return undefined;
  const largest = experts.reduce((a, b) => ((records.get(b) ?? 0) > (records.get(a) ?? 0) ? b : a));
  const share = (records.get(largest) ?? 0) / total;
  const rows = Array.from(model.fineToExpert.keys()).filter((r) => model.fineToExpert[r] === largest);
  if (share <= settings.splitFactor / experts.length || (records.get(largest) ?? 0) < settings.minSplitRecords || rows.length < 2) return undefined;

  const points = new Float32Array(rows.length * dim);
  rows.forEach((r, i) => points.set(model.fine.subarray(r * dim, (r + 1) * dim), i * dim));
  const fit = await kmeans({ points, dim, k: 2, seed, maxIterations: 20, tolerance: 1e-4 });
  const second = rows.filter((_, i) => fit.assignment[i] === 1);
  const first = rows.filter((_, i) => fit.assignment[i] === 0);
  if (first.length === 0 || second.length === 0) return undefined;

  const newExpert = Math.max(...experts) + 1;
  const fineToExpert = model.fineToExpert.slice();
  for (const r of second) fineToExpert[r] = newExpert;
  const coarse = Float32Array.from([...model.coarse, ...meanUnit(model.fine, second, dim)]);
  coarse.set(meanUnit(model.fine, first, dim), experts.indexOf(largest) * dim);
  return {
    model: {
      ...model,
      epoch: model.epoch + 1,
      fineToExpert,
      coarse,
      experts: Int32Array.from([...experts, newExpert]),
      createdAt: now,
      // Both halves start from the expert as it was; the old id keeps its versions and continues.
      origins: { ...model.origins, [newExpert]: expertModelName(largest) },
    },
    expert: largest,
    newExpert,
    moved: second.map((r) => model.fineIds[r]!),
  };
}
