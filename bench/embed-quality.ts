/**
 * `npm run bench -- embed-quality [--embedders hashed,static,onnx] [--captions N] [--seed S] [--model minilm-l6]`
 *
 * Which embedder clusters captions by meaning, and at what speed? For each embedder, on the same N
 * Fashion-MNIST feed captions (10 classes, with the feed's wrong and uninformative share):
 *   - embedding rate (one thread, chunks of 1,000 captions: what a router thread does),
 *   - MoDE's two-stage clustering (balanced, 256 fine -> 4 experts) of those captions, each caption routed
 *     to its nearest fine center as the router does, and the class cohesion of the resulting experts
 *     (per class, the share of its captions in its largest expert, averaged; a random split gives ~25%),
 *     on all captions and on the clean ones alone.
 * The anchor is a random 4-way split of the same captions, measured in the same run.
 * The README picks the default embedder from these figures.
 */
import { parseArgs } from 'node:util';
import { nearestCenters } from '../src/cluster/nearest.js';
import { classCohesion } from '../src/cluster/metrics.js';
import { createRng } from '../src/cluster/rng.js';
import { twoStageClustering } from '../src/cluster/two-stage.js';
import { ConfigSchema, type EmbedderSettings } from '../src/config.js';
import { createEmbedder } from '../src/embed/embedder.js';
import { captionFor } from '../examples/fashion-mnist/captions.js';
import { initBackend } from '../src/tensor/backend.js';
import { fmt } from './harness.js';

const { values: args } = parseArgs({
  options: {
    embedders: { type: 'string', default: 'hashed,static,onnx' },
    captions: { type: 'string', default: '12000' },
    seed: { type: 'string', default: '1' },
    model: { type: 'string', default: 'minilm-l6' },
    'models-dir': { type: 'string', default: ConfigSchema.parse({}).modelsDir },
  },
});
const N = Number(args.captions);
const SEED = Number(args.seed);

function feedCaptions(): { captions: string[]; labels: Int32Array; clean: boolean[] } {
  const rng = createRng(SEED);
  const labels = Int32Array.from({ length: N }, (_, i) => i % 10);
  const generated = Array.from(labels, (label) => captionFor({ label, rng }));
  return { captions: generated.map((g) => g.caption), labels, clean: generated.map((g) => g.kind === 'clean') };
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
const cleanOnly = (values: ArrayLike<number>, clean: readonly boolean[]) => Int32Array.from(Array.from(values).filter((_, i) => clean[i]));

async function main(): Promise<void> {
  await initBackend('wasm');
  const { captions, labels, clean } = feedCaptions();
  const rng = createRng(SEED + 1000);
  const random = Int32Array.from({ length: N }, () => rng.nextInt(4));
  console.log(`${fmt(N)} feed captions (seed ${SEED}), ${clean.filter(Boolean).length} clean`);
  console.log(`random 4-way split (anchor): cohesion ${pct(classCohesion(random, labels))}, clean ${pct(classCohesion(cleanOnly(random, clean), cleanOnly(labels, clean)))}`);
  const rows: string[] = [];
  for (const kind of args.embedders.split(',').map((k) => k.trim())) {
    const settings = ConfigSchema.parse({ embedder: kind === 'hashed' ? { kind } : { kind, model: args.model } }).embedder as EmbedderSettings;
    const embedder = await createEmbedder(settings, { modelsDir: args['models-dir'] });
    const t0 = performance.now();
    const parts: Float32Array[] = [];
    for (let i = 0; i < N; i += 1000) parts.push(await embedder.embed(captions.slice(i, i + 1000)));
    const rate = N / ((performance.now() - t0) / 1000);
    const { dim } = embedder;
    const points = new Float32Array(N * dim);
    parts.forEach((p, k) => points.set(p, k * 1000 * dim));
    embedder.dispose();
    const clustering = await twoStageClustering({ points, dim, fine: 256, experts: 4, balanced: true, seed: SEED, maxIterations: 25, tolerance: 1e-4 });
    const routed = await nearestCenters({ points, dim, centers: clustering.fineCenters });
    const experts = Int32Array.from(routed.index, (f) => clustering.fineToExpert[f]!);
    const all = classCohesion(experts, labels);
    const cleanCohesion = classCohesion(cleanOnly(experts, clean), cleanOnly(labels, clean));
    console.log(`${kind} (${dim}-d): ${fmt(rate)} captions/s, cohesion ${pct(all)}, clean ${pct(cleanCohesion)}`);
    rows.push(`| ${kind} | ${dim} | ${fmt(rate)} | ${pct(all)} | ${pct(cleanCohesion)} |`);
  }
  console.log('\n| embedder | dim | captions/s (1 thread) | class cohesion, 4 experts | clean captions only |');
  console.log('| --- | ---: | ---: | ---: | ---: |');
  console.log(`| random split (anchor) | - | - | ${pct(classCohesion(random, labels))} | ${pct(classCohesion(cleanOnly(random, clean), cleanOnly(labels, clean)))} |`);
  for (const row of rows) console.log(row);
}

await main();
