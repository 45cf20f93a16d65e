/**
 * Offline measurement of the novelty rule (src/cluster/novelty.ts) in a real embedding space: bootstraps
 * like the service (reservoir of the first `sample` stationary pairs -> two-stage clustering -> radii),
 * then routes the rest of the stream and simulates the novelty buffer and its judgement. Prints candidate
 * rates (stationary vs new family), per-caption AUCs, the judged clusters' ratios, spawns over the
 * stationary stream and pairs of a new family until it is detected.
 *   node dist/bench/novelty-embed.js --kind onnx        # once: embeds the captions into /tmp/novelty-cache
 *   node dist/bench/novelty.js --kind onnx [--sample 20000 --fine 1024 --experts 4 --buffer 500]
 *     [--refine 12000] [--order id]     # online refinement first; stationary buffers by pair id
 */
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { clusterSample, withRadii } from '../src/cluster/bootstrap.js';
import { planNovelty } from '../src/cluster/drift.js';
import { kmeans } from '../src/cluster/kmeans.js';
import type { CentroidModel } from '../src/cluster/model.js';
import { nearestCenters } from '../src/cluster/nearest.js';
import { meanDisplacement, refinedEpoch, refineCenters } from '../src/cluster/online.js';
import { nearestUnitRow, noveltyMaxRatio, quantile, spawnThreshold } from '../src/cluster/novelty.js';
import { ConfigSchema } from '../src/config.js';
import { initBackend } from '../src/tensor/backend.js';

const { values } = parseArgs({
  options: {
    cache: { type: 'string', default: '/tmp/novelty-cache' },
    kind: { type: 'string', default: 'onnx' },
    sample: { type: 'string', default: '20000' },
    fine: { type: 'string', default: '1024' },
    experts: { type: 'string', default: '4' },
    buffer: { type: 'string' },
    repeats: { type: 'string', default: '40' },
    clusters: { type: 'string' },
    'max-ratio': { type: 'string' },
    margin: { type: 'string' },
    // Online refinement as the controller runs it over the first N stationary pairs (0: none), then the
    // novelty rule judged on the refined centers: with the bootstrap's radii and threshold (stale) or
    // with both re-derived for the refined centers (--recalibrate).
    refine: { type: 'string', default: '0' },
    recalibrate: { type: 'boolean', default: false },
    // Stationary buffers taken from a backlog of 2 x buffer candidates (the catch-up after a bootstrap
    // flags hundreds at once) in this order: arrival (random here) or pair id (the buffer before it
    // kept arrival numbers; Fashion-MNIST ids carry the label).
    order: { type: 'string', default: 'arrival' },
  },
});

await initBackend('wasm');
const defaults = ConfigSchema.parse({});
const drift = {
  ...defaults.controller.drift,
  ...(values.buffer ? { bufferSize: Number(values.buffer) } : {}),
  ...(values.clusters ? { newClusters: Number(values.clusters) } : {}),
  ...(values['max-ratio'] ? { maxRatio: Number(values['max-ratio']) } : {}),
  ...(values.margin ? { radiusMargin: Number(values.margin) } : {}),
};
console.log(`settings: buffer ${drift.bufferSize}, newClusters ${drift.newClusters}, minClusterSize ${drift.minClusterSize}, maxRatio ${drift.maxRatio}, margin ${drift.radiusMargin}`);
const meta = JSON.parse(await readFile(join(values.cache, `${values.kind}.json`), 'utf8')) as { dim: number; fingerprint: string; families: string[]; ids?: string[] };
const buf = await readFile(join(values.cache, `${values.kind}.f32`));
const all = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
const { dim } = meta;
const rowsOf = (family: (f: string) => boolean) => meta.families.flatMap((f, i) => (family(f) ? [i] : []));
const take = (idx: readonly number[]) => {
  const out = new Float32Array(idx.length * dim);
  idx.forEach((r, i) => out.set(all.subarray(r * dim, (r + 1) * dim), i * dim));
  return out;
};
const stationaryIdx = rowsOf((f) => f === 'tops' || f === 'bottoms' || f === 'dresses');
const sampleSize = Number(values.sample);
const seen = stationaryIdx.slice(0, sampleSize);
const heldOut = stationaryIdx.slice(sampleSize);
const families = { footwear: rowsOf((f) => f === 'footwear'), bags: rowsOf((f) => f === 'bags') };

let started = performance.now();
const sampleRows = seen.map((r) => all.slice(r * dim, (r + 1) * dim));
const clustering = { ...defaults.clustering, fine: Number(values.fine), experts: Number(values.experts), sample: sampleSize };
// The bootstrap is the slow part (minutes for 1024 centers); the clustering is cached, radii are not.
const modelCache = join(values.cache, `${values.kind}-${sampleSize}-${clustering.fine}-${clustering.experts}.model.json`);
const clustered: CentroidModel = existsSync(modelCache)
  ? reviveModel(JSON.parse(await readFile(modelCache, 'utf8')))
  : await clusterSample({ sample: sampleRows, epoch: 1, settings: clustering, embedder: meta.fingerprint });
if (!existsSync(modelCache)) await writeFile(modelCache, JSON.stringify(clustered, (_, v: unknown) => (ArrayBuffer.isView(v) ? Array.from(v as Float32Array) : v)));
const model = await refined(await withRadii(clustered, sampleRows, drift), Number(values.refine));
console.log(`${values.kind}: bootstrap ${sampleSize} -> ${clustering.fine} fine / ${clustering.experts} experts in ${((performance.now() - started) / 1000).toFixed(0)} s; radius quantile ${drift.radiusQuantile}, margin ${drift.radiusMargin}`);
const radii = model.radii!;
console.log(`buffer ratio threshold: ${noveltyMaxRatio(model, drift).toFixed(3)} (${drift.maxRatio !== undefined ? 'configured' : model.maxRatio !== undefined ? `calibrated, factor ${drift.ratioFactor}` : 'per-space default'})`);
console.log(`radii: p5 ${quantile(radii, 0.05).toFixed(3)} median ${quantile(radii, 0.5).toFixed(3)} p95 ${quantile(radii, 0.95).toFixed(3)}`);

interface Routed {
  distance: Float32Array;
  row: Int32Array;
  candidate: Uint8Array;
}
async function route(points: Float32Array, m: CentroidModel): Promise<Routed> {
  const r = await nearestCenters({ points, dim, centers: m.fine });
  const distance = Float32Array.from(r.dist2, Math.sqrt);
  const candidate = Uint8Array.from(distance, (d, i) => (d > m.radii![r.index[i]!]! * drift.radiusMargin ? 1 : 0));
  return { distance, row: r.index, candidate };
}
const rate = (r: Routed) => r.candidate.reduce((s, c) => s + c, 0) / r.candidate.length;

/** P(score of a new-family caption > score of a known one), ties half. */
function auc(known: ArrayLike<number>, novel: ArrayLike<number>): number {
  const all = [...Array.from(known, (v) => ({ v, n: 0 })), ...Array.from(novel, (v) => ({ v, n: 1 }))].filter((x) => !Number.isNaN(x.v)).sort((a, b) => a.v - b.v);
  let rankSum = 0;
  for (let i = 0; i < all.length; ) {
    let j = i;
    while (j < all.length && all[j]!.v === all[i]!.v) j++;
    for (let t = i; t < j; t++) if (all[t]!.n === 1) rankSum += (i + j + 1) / 2;
    i = j;
  }
  const n1 = novel.length;
  const n0 = known.length;
  return (rankSum - (n1 * (n1 + 1)) / 2) / (n0 * n1);
}

const inSample = await route(take(seen), model);
const stationary = await route(take(heldOut), model);
const novel = { footwear: await route(take(families.footwear), model), bags: await route(take(families.bags), model) };
const rel = (r: Routed) => Float32Array.from(r.distance, (d, i) => d / radii[r.row[i]!]!);
console.log(`candidate rate: in-sample ${(100 * rate(inSample)).toFixed(2)}%, held-out stationary ${(100 * rate(stationary)).toFixed(2)}%, footwear ${(100 * rate(novel.footwear)).toFixed(2)}%, bags ${(100 * rate(novel.bags)).toFixed(2)}%`);
console.log(`distance to nearest fine center: stationary p50 ${quantile(stationary.distance, 0.5).toFixed(3)} p99 ${quantile(stationary.distance, 0.99).toFixed(3)}; footwear p50 ${quantile(novel.footwear.distance, 0.5).toFixed(3)}; bags p50 ${quantile(novel.bags.distance, 0.5).toFixed(3)}`);
for (const [name, r] of Object.entries(novel)) {
  console.log(`AUC stationary vs ${name}: raw distance ${auc(stationary.distance, r.distance).toFixed(3)}, distance / radius ${auc(rel(stationary), rel(r)).toFixed(3)}`);
}

// ------------------------------------------------------------------------------------------------
// Buffer judgement. Every judged cluster's ratio, labelled by where its candidates came from.
const k = drift.newClusters;
/** The controller's judgement of one buffer, as planNovelty makes it. */
async function judge(points: Float32Array, seed: number, m: CentroidModel = model) {
  return (await planNovelty({ model: m, novel: points, settings: drift, seed }))?.judged ?? [];
}
const candidatesOf = (idx: readonly number[], r: Routed) => idx.filter((_, i) => r.candidate[i] === 1);
const stationaryCandidates = candidatesOf(heldOut, stationary);
const B = drift.bufferSize;
const repeats = Number(values.repeats);
// Stationary: random buffers of B held-out candidates (a stream of ~B / rate pairs each).
const stationaryRatios: number[] = [];
let stationaryKept = 0;
const idOf = (row: number) => meta.ids?.[row] ?? String(row);
for (let t = 0; t < repeats; t++) {
  const backlog = shuffled(stationaryCandidates, 1000 + t).slice(0, 2 * B);
  if (values.order === 'id') backlog.sort((a, b) => (idOf(a) < idOf(b) ? -1 : 1));
  const pick = t % 2 === 0 ? backlog.slice(0, B) : backlog.slice(B);
  for (const j of await judge(take(pick), t)) {
    if (j.size >= drift.minClusterSize) stationaryRatios.push(j.ratio);
    if (j.keep) stationaryKept++;
  }
}
console.log(`stationary buffers (${repeats} x ${B} candidates in ${values.order} order, each ~${Math.round(B / rate(stationary))} pairs): cluster ratio min ${Math.min(...stationaryRatios).toFixed(3)} p5 ${quantile(stationaryRatios, 0.05).toFixed(3)} median ${quantile(stationaryRatios, 0.5).toFixed(3)}; kept ${stationaryKept}`);

// The first buffer after a bootstrap: the catch-up routes the sample itself, whose candidates are the
// farthest members of every cluster (by construction of the radii), not a held-out tail.
const inSampleCandidates = candidatesOf(seen, inSample);
const inSampleRatios: number[] = [];
let inSampleKept = 0;
for (let t = 0; t < repeats && inSampleCandidates.length >= B; t++) {
  const pick = shuffled(inSampleCandidates, 3000 + t).slice(0, B);
  for (const j of await judge(take(pick), t)) {
    if (j.size >= drift.minClusterSize) inSampleRatios.push(j.ratio);
    if (j.keep) inSampleKept++;
  }
}
if (inSampleRatios.length) console.log(`in-sample buffers (${repeats} x ${B} of ${inSampleCandidates.length} candidates): cluster ratio min ${Math.min(...inSampleRatios).toFixed(3)} p5 ${quantile(inSampleRatios, 0.05).toFixed(3)} median ${quantile(inSampleRatios, 0.5).toFixed(3)}; kept ${inSampleKept}`);

// A new family arrives: the buffer holds stationary candidates already (a random fill level) and fills
// up with the family's candidates in stream order. Pairs of the family until a cluster is kept.
for (const [name, idx] of Object.entries(families)) {
  const r = novel[name as keyof typeof novel];
  const familyRatios: number[] = [];
  const until: number[] = [];
  let spawned = 0;
  for (let t = 0; t < Math.min(repeats, 20); t++) {
    const fill = Math.floor((t / 20) * B);
    const carried = shuffled(stationaryCandidates, 5000 + t).slice(0, fill);
    // Family order differs per repeat: rotate the stream.
    const offset = Math.floor((t / 20) * idx.length);
    const order = [...idx.slice(offset), ...idx.slice(0, offset)];
    const cand = order.map((_, i) => r.candidate[(i + offset) % idx.length] === 1);
    let buffer = [...carried];
    let pairs = 0;
    let detected = false;
    for (let i = 0; i < order.length && pairs < 6000; i++) {
      pairs++;
      if (cand[i]) buffer.push(order[i]!);
      if (buffer.length < B) continue;
      const points = take(buffer);
      const judged = await judge(points, t);
      for (const j of judged) if (j.size >= drift.minClusterSize) familyRatios.push(j.ratio);
      buffer = [];
      if (judged.some((j) => j.keep)) {
        detected = true;
        const plan = await planNovelty({ model, novel: points, settings: drift, seed: t });
        if (plan?.model && Object.keys(plan.spawned).length > 0) spawned++;
        break;
      }
    }
    until.push(detected ? pairs : Infinity);
  }
  const found = until.filter(Number.isFinite);
  console.log(
    `${name}: detected in ${found.length}/${until.length} runs (${until.filter((u) => u <= 3000).length} within 3,000 pairs), pairs until detection median ${found.length ? quantile(found, 0.5) : 'n/a'} max ${found.length ? Math.max(...found) : 'n/a'}; ` +
      `cluster ratios p5 ${quantile(familyRatios, 0.05).toFixed(3)} median ${quantile(familyRatios, 0.5).toFixed(3)}; spawned a new expert in ${spawned} of ${found.length}`,
  );
}

// Spawn scale: existing fine centers' distances to their own coarse center vs new-family centers'.
const own = spawnThreshold(model, 0.5, 1);
console.log(`fine -> own coarse distance: median ${own.toFixed(3)}, p95 ${spawnThreshold(model, 0.95, 1).toFixed(3)}, max ${spawnThreshold(model, 1, 1).toFixed(3)}; spawn threshold (q ${drift.spawnQuantile} x ${drift.spawnFactor}) ${spawnThreshold(model, drift.spawnQuantile, drift.spawnFactor).toFixed(3)}`);
for (const [name, idx] of Object.entries({ stationary: stationaryCandidates, ...families })) {
  const fit = await kmeans({ points: take(idx.slice(0, B)), dim, k, seed: 3, maxIterations: 20, tolerance: 1e-4 });
  const d = Array.from({ length: k }, (_, c) => nearestUnitRow(fit.centers, c, model.coarse, dim).distance);
  console.log(`${name}: k-means centers of ${Math.min(B, idx.length)} ${name === 'stationary' ? 'candidates' : 'pairs'} -> nearest coarse center: min ${Math.min(...d).toFixed(3)} median ${quantile(d, 0.5).toFixed(3)} max ${Math.max(...d).toFixed(3)}`);
}

/** The model after online refinement over the first `pairs` stationary pairs, batch by batch as the controller does. */
async function refined(start: CentroidModel, pairs: number): Promise<CentroidModel> {
  const { batch, moveThreshold } = defaults.clustering.refine;
  let base = start;
  let draft = { fine: base.fine, counts: base.counts };
  let epochs = 0;
  for (let i = 0; i < Math.min(pairs, stationaryIdx.length); i += batch) {
    const points = take(stationaryIdx.slice(i, Math.min(i + batch, pairs)));
    const routed = await nearestCenters({ points, dim, centers: base.fine });
    const step = refineCenters({ ...draft, dim }, points, routed.index);
    draft = step;
    if (meanDisplacement(draft.fine, base.fine, dim) <= moveThreshold) continue;
    base = refinedEpoch(base, step);
    epochs++;
    if (values.recalibrate) base = await withRadii(base, sampleRows, drift);
  }
  if (pairs > 0) console.log(`refined over ${pairs} pairs: ${epochs} new epochs, radii and threshold ${values.recalibrate ? 're-derived each epoch' : 'kept from the bootstrap'}`);
  return base;
}

function reviveModel(m: CentroidModel & Record<string, unknown>): CentroidModel {
  const f32 = (v: unknown) => Float32Array.from(v as number[]);
  const i32 = (v: unknown) => Int32Array.from(v as number[]);
  return { ...m, fine: f32(m.fine), coarse: f32(m.coarse), fineIds: i32(m.fineIds), fineToExpert: i32(m.fineToExpert), experts: i32(m.experts), counts: Float64Array.from(m.counts) };
}

function shuffled<T>(xs: readonly T[], seed: number): T[] {
  const out = [...xs];
  let s = seed >>> 0;
  for (let i = out.length - 1; i > 0; i--) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}
