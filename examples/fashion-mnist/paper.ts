/**
 * `npm run eval:paper`: a small-scale replica of the MoDE paper's table on real images (ARCHITECTURE.md
 * section 7). Fashion-MNIST training images (first 6,000 per class) become web-crawl-like pairs
 * (captions.ts); the test images (last 1,000 per class) are evaluated zero-shot with class-name
 * prompts and for image<->text retrieval.
 *
 * Equal total training steps B for every row. One cosine schedule trains the seed for 27/32 of B (the
 * paper's experts branch at epoch 27 of 32); the rest, (5/32) B steps, continues either one model on all
 * data (the baseline) or n experts of (5/32) B / n steps each, every expert starting from the seed and
 * seeing only its cluster's pairs plus 2% from other clusters. Rows: baseline, MoDE-2, MoDE-4, Rand-4
 * (random split), one-stage-4 (the data clustered straight into 4), and MoDE-4 clustered on the seed's
 * text-tower embeddings (the paper's Table 7). The same model code, training loop, ensemble and routing
 * weights as the service; batches come from memory instead of LMDB so the runs are quick and seeded.
 *
 * Zero-shot is measured three ways: on the 10-class task with the code and paper routing formulas and
 * the uniform mean; on narrow tasks (NARROW_TASKS: one family's images and class names only), where
 * p(c|T) has something to choose; and with held-out class names (reworded-classes.ts) that the caption
 * generator never writes, to separate the embedder's knowledge of words from memorised vocabulary.
 *
 *   node dist/examples/fashion-mnist/paper.js [--steps 3000] [--batch 256] [--fine 256] [--seed 1] [--retrieval 1000]
 *     [--embedder default|hashed] [--models-dir .modestream/models] [--out docs/results.md]
 * With --out, the report replaces the part of the file between the eval:paper markers (or fills a new file).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { kmeans } from '../../src/cluster/kmeans.js';
import { classCohesion, purity } from '../../src/cluster/metrics.js';
import { nearestCenters } from '../../src/cluster/nearest.js';
import { createRng, type Rng } from '../../src/cluster/rng.js';
import { ConfigSchema } from '../../src/config.js';
import type { DecodedImage } from '../../src/contract/image.js';
import { createEmbedder, type CaptionEmbedder } from '../../src/embed/embedder.js';
import { createEnsemble, type Ensemble, type RoutingChoice } from '../../src/ensemble/ensemble.js';
import { retrievalRecall, zeroShotAccuracy } from '../../src/ensemble/evaluate.js';
import { writeImage } from '../../src/expert/batch.js';
import { architectureOf, cloneModel, createExpertModel, disposeModel, encodeTexts, type ExpertModel } from '../../src/expert/model.js';
import { cosineLearningRate, createAdamWState, disposeAdamWState, type AdamWState } from '../../src/expert/optimizer.js';
import { trainExpert, type TrainBatch } from '../../src/expert/train.js';
import { initBackend } from '../../src/tensor/backend.js';
import { captionFor } from './captions.js';
import { FASHION_MNIST_CLASSES, fillTemplate, labelsOfFamily, ZERO_SHOT_TEMPLATES } from './classes.js';
import { loadFashionMnist } from './dataset.js';
import { fashionMnistFeed } from './feed.js';
import { EVERYDAY_CLASS_NAMES, rewordedName } from './reworded-classes.js';

const { values: args } = parseArgs({
  options: {
    steps: { type: 'string', default: '3000' },
    batch: { type: 'string', default: '256' },
    fine: { type: 'string', default: '256' },
    seed: { type: 'string', default: '1' },
    retrieval: { type: 'string', default: '1000' },
    out: { type: 'string' },
    backend: { type: 'string', default: 'auto' },
    // The configured default (the pulled MiniLM) unless 'hashed': the older, download-free space.
    embedder: { type: 'string', default: 'default' },
    // Where pulled encoders are; the default is the config's, so a run can read a copy elsewhere.
    'models-dir': { type: 'string' },
  },
});
if (!['default', 'hashed'].includes(args.embedder)) throw new Error(`--embedder must be default or hashed, got ${args.embedder}`);
const TOTAL = Number(args.steps);
const BATCH = Number(args.batch);
const FINE = Number(args.fine);
const SEED = Number(args.seed);
const SEED_STEPS = Math.round((TOTAL * 27) / 32);
const BRANCH_STEPS = TOTAL - SEED_STEPS;
const started = performance.now();
const log = (msg: string) => console.log(`[${((performance.now() - started) / 1000).toFixed(0).padStart(5)} s] ${msg}`);

const config = ConfigSchema.parse({
  ...(args['models-dir'] ? { modelsDir: args['models-dir'] } : {}),
  ...(args.embedder === 'hashed' ? { embedder: { kind: 'hashed' } } : {}),
});

/**
 * Narrow zero-shot tasks: a family's test images, choosing among its class names only. Bottoms, dresses
 * and bags have one class each, where classification is trivially 100%, so they are pooled into one
 * 3-class task; unlike the other two it crosses families, so its classes can route to different experts.
 */
const NARROW_TASKS: readonly { name: string; labels: readonly number[] }[] = [
  { name: 'tops', labels: labelsOfFamily('tops') },
  { name: 'footwear', labels: labelsOfFamily('footwear') },
  { name: 'bottoms+dresses+bags', labels: [...labelsOfFamily('bottoms'), ...labelsOfFamily('dresses'), ...labelsOfFamily('bags')].sort((a, b) => a - b) },
];
const training = config.experts.training;

interface Pairs {
  /** Model-ready image inputs, row-major [n, 28*28] in [0, 1]. */
  images: Float32Array;
  /** Caption embeddings [n, dim]. */
  texts: Float32Array;
  labels: Int32Array;
  n: number;
}

/** Random batches from the rows of `pool` (indices into pairs), with `share` drawn from `others`. */
async function* batchesFrom(pairs: Pairs, pool: Int32Array, others: Int32Array, share: number, rng: Rng, imageSize: number, dim: number): AsyncGenerator<TrainBatch> {
  for (;;) {
    const images = new Float32Array(BATCH * imageSize);
    const texts = new Float32Array(BATCH * dim);
    for (let i = 0; i < BATCH; i++) {
      const from = others.length > 0 && rng.next() < share ? others : pool;
      const row = from[rng.nextInt(from.length)]!;
      images.set(pairs.images.subarray(row * imageSize, (row + 1) * imageSize), i * imageSize);
      texts.set(pairs.texts.subarray(row * dim, (row + 1) * dim), i * dim);
    }
    yield { images, texts, size: BATCH };
  }
}

/** Trains from step 0 of a `total`-step cosine schedule (base rate, warmup) until `stopAt`. */
async function train(model: ExpertModel, optimizer: AdamWState, batches: AsyncGenerator<TrainBatch>, schedule: { total: number; stopAt?: number; learningRate: number; warmupSteps: number }, label: string): Promise<number> {
  const until = schedule.stopAt ?? schedule.total;
  const result = await trainExpert({
    model,
    optimizer,
    settings: { ...training, learningRate: schedule.learningRate, warmupSteps: schedule.warmupSteps },
    totalSteps: schedule.total,
    stopAt: until,
    batches,
    onStep: ({ step, loss, samplesPerSecond }) => {
      if (step % 250 === 0 || step === until) log(`  ${label}: step ${step}/${until} loss ${loss.toFixed(3)} (${Math.round(samplesPerSecond)} samples/s)`);
    },
  });
  return result.lastLoss;
}

/** Assignment of every training pair to an expert, for one way of splitting the data. */
interface Split {
  name: string;
  experts: number;
  assignment: Int32Array;
  /** Fine centers and their experts, for routing at inference. */
  fine: Float32Array;
  fineExperts: Int32Array;
  dim: number;
  /** Caption embedder whose space the centers live in. */
  embedder: CaptionEmbedder;
  /** classCohesion: per class, the share of its pairs in its largest expert, averaged over classes. */
  cohesion: number;
  /** purity: the share of pairs whose expert's majority class is their own class. */
  purity: number;
}

async function clusterSplit(name: string, points: Float32Array, dim: number, fine: number, experts: number, embedder: CaptionEmbedder, labels: Int32Array, oneStage = false): Promise<Split> {
  const s = SEED;
  const fineFit = oneStage
    ? await kmeans({ points, dim, k: experts, seed: s, maxIterations: 25, tolerance: 1e-4, assignment: 'balanced' })
    : await kmeans({ points, dim, k: fine, seed: s, maxIterations: 25, tolerance: 1e-4, assignment: 'balanced' });
  let fineExperts: Int32Array;
  if (oneStage) fineExperts = Int32Array.from({ length: experts }, (_, i) => i);
  else {
    const coarse = await kmeans({ points: fineFit.centers, dim, k: experts, seed: s + 1, maxIterations: 25, tolerance: 1e-4, assignment: 'balanced' });
    fineExperts = (await nearestCenters({ points: fineFit.centers, dim, centers: coarse.centers })).index;
  }
  // Pairs go to the expert of their nearest fine center, as the router sends them.
  const routed = await nearestCenters({ points, dim, centers: fineFit.centers });
  const assignment = Int32Array.from(routed.index, (row) => fineExperts[row]!);
  return { name, experts, assignment, fine: fineFit.centers, fineExperts, dim, embedder, cohesion: classCohesion(assignment, labels), purity: purity(assignment, labels) };
}

async function main(): Promise<void> {
  const backend = await initBackend(args.backend as never);
  log(`backend ${backend.name}; B = ${TOTAL} steps at batch ${BATCH}: seed ${SEED_STEPS}, then ${BRANCH_STEPS} shared by the branches`);

  const embedder = await createEmbedder(config.embedder, { modelsDir: config.modelsDir });
  const dim = embedder.dim;
  const embedderName = config.embedder.kind === 'hashed' ? `hashed n-grams (${dim}-d)` : `${config.embedder.kind} ${'model' in config.embedder && config.embedder.model ? config.embedder.model : ''} (${dim}-d)`.replace('  ', ' ');
  log(`caption embedder: ${embedderName}`);
  const architecture = architectureOf(config.experts, dim);
  const imageSize = 28 * 28;

  // Training pairs from the feed generator (clean, wrong and uninformative captions).
  const trainSet = await loadFashionMnist({ split: 'train' });
  const pairs: Pairs = { images: new Float32Array(trainSet.images.length * imageSize), texts: new Float32Array(0), labels: new Int32Array(trainSet.images.length), n: trainSet.images.length };
  const captions: string[] = [];
  const kinds = { clean: 0, wrong: 0, uninformative: 0 };
  let i = 0;
  for await (const pair of fashionMnistFeed({ seed: SEED, split: 'train', dataset: trainSet })) {
    writeImage(pair.image as DecodedImage, architecture, pairs.images, i * imageSize);
    pairs.labels[i] = pair.meta.label;
    captions.push(pair.caption);
    kinds[pair.meta.captionKind]++;
    i++;
  }
  pairs.texts = await embedder.embed(captions);
  const embedMinutes = (performance.now() - started) / 60_000;
  log(`training pairs: ${pairs.n} (${kinds.clean} clean, ${kinds.wrong} wrong, ${kinds.uninformative} uninformative captions)`);

  // Test: all 10,000 images for zero-shot; the first `retrieval` (shuffled, seeded) with clean captions.
  const testSet = await loadFashionMnist({ split: 'test' });
  const testImages: DecodedImage[] = testSet.images.map((img) => ({ kind: 'pixels', width: 28, height: 28, channels: 1, data: img.pixels }));
  const testLabels = Int32Array.from(testSet.images, (img) => img.label);
  const rng = createRng(SEED + 7);
  const order = Array.from(testImages.keys());
  for (let k = order.length - 1; k > 0; k--) {
    const j = rng.nextInt(k + 1);
    [order[k], order[j]] = [order[j]!, order[k]!];
  }
  const retrievalRows = order.slice(0, Number(args.retrieval));
  const retrievalImages = retrievalRows.map((r) => testImages[r]!);
  const retrievalLabels = retrievalRows.map((r) => testLabels[r]!);
  const retrievalTexts = retrievalRows.map((r) => captionFor({ label: testLabels[r]!, rng, options: { wrongShare: 0, uninformativeShare: 0 } }).caption);
  const classNames = FASHION_MNIST_CLASSES.map((c) => c.promptName);
  const rewordedNames = FASHION_MNIST_CLASSES.map((c) => rewordedName(c.label));
  const narrowSets = NARROW_TASKS.map((task) => ({ ...task, ...restrictTo(testImages, testLabels, task.labels) }));
  // Whether the caption embedder alone relates each held-out name to its class: no expert can map a
  // reworded name to the right images if the embedder already puts it nearer another class's name.
  const wordCheck = nearestClass(await promptMeans(embedder, rewordedNames), await promptMeans(embedder, classNames), embedder.dim);
  const wordHits = wordCheck.filter((best, label) => best === label).length;
  const everydayNames = [...EVERYDAY_CLASS_NAMES];
  const everydayCheck = nearestClass(await promptMeans(embedder, everydayNames), await promptMeans(embedder, classNames), embedder.dim);
  const everydayHits = everydayCheck.filter((best, label) => best === label).length;
  const wordLine =
    `Caption embedder alone (no expert): a reworded name's prompt-averaged embedding is nearest to its own class's canonical name for ${wordHits} of 10 classes (${wordCheck.map((best, l) => `${rewordedNames[l]}→${classNames[best]}`).join(', ')}); ` +
    `an everyday name's for ${everydayHits} of 10 (${everydayCheck.map((best, l) => `${everydayNames[l]}→${classNames[best]}`).join(', ')}).`;
  log(wordLine);

  // The seed: one model, 27/32 of the budget, on all pairs.
  const all = Int32Array.from({ length: pairs.n }, (_, k) => k);
  const seedModel = createExpertModel({ architecture, seed: SEED });
  const seedOptimizer = createAdamWState(seedModel.params);
  // The seed is the first 27/32 of one cosine schedule over B steps. Every branch (baseline or expert)
  // then runs the same shape, from the rate the seed stopped at down to zero, over its own steps, with a
  // fresh optimizer: the only difference between rows is which pairs each branch sees, and how many steps.
  await train(seedModel, seedOptimizer, batchesFrom(pairs, all, new Int32Array(0), 0, createRng(SEED + 1), imageSize, dim), { total: TOTAL, stopAt: SEED_STEPS, learningRate: training.learningRate, warmupSteps: training.warmupSteps }, 'seed');
  disposeAdamWState(seedOptimizer);
  const branchRate = cosineLearningRate({ step: SEED_STEPS, total: TOTAL, warmup: training.warmupSteps, base: training.learningRate });

  // The splits.
  const splits: Split[] = [];
  splits.push(await clusterSplit('MoDE-2', pairs.texts, dim, FINE, 2, embedder, pairs.labels));
  splits.push(await clusterSplit('MoDE-4', pairs.texts, dim, FINE, 4, embedder, pairs.labels));
  const random = createRng(SEED + 3);
  const randAssignment = Int32Array.from({ length: pairs.n }, () => random.nextInt(4));
  const mode4 = splits[1]!;
  splits.push({ ...mode4, name: 'Rand-4', assignment: randAssignment, cohesion: classCohesion(randAssignment, pairs.labels), purity: purity(randAssignment, pairs.labels) });
  splits.push(await clusterSplit('one-stage-4', pairs.texts, dim, FINE, 4, embedder, pairs.labels, true));
  // Table 7: cluster the seed's text-tower embeddings of the captions instead of the caption embedder's.
  const seedSpace = seedTextEmbedder(seedModel, embedder);
  const seedTexts = await seedSpace.embed(captions);
  splits.push(await clusterSplit('MoDE-4 (seed embeddings)', seedTexts, seedSpace.dim, FINE, 4, seedSpace, pairs.labels));
  log(`splits: ${splits.map((s) => `${s.name} cohesion ${(100 * s.cohesion).toFixed(1)}% purity ${(100 * s.purity).toFixed(1)}%`).join(', ')}`);

  interface NarrowResult {
    task: string;
    classes: number;
    code: number;
    paper: number | null;
    uniform: number | null;
    reworded: number;
    weightsCode: string;
    weightsPaper: string;
  }
  interface Row {
    name: string;
    experts: number;
    stepsPerExpert: number;
    cohesion: number | null;
    purity: number | null;
    zeroShot: number;
    zeroShotPaper: number | null;
    zeroShotUniform: number | null;
    zeroShotReworded: number;
    zeroShotEveryday: number;
    narrow: NarrowResult[];
    i2t: number;
    t2i: number;
    i2tClass: number;
    t2iClass: number;
    weights: string;
  }
  const rows: Row[] = [];

  async function evaluate(name: string, models: ExpertModel[], split: Split | undefined, stepsPerExpert: number): Promise<void> {
    const ensemble = createEnsemble({
      experts: models.map((model, id) => ({ id, model })),
      fine: split?.fine ?? new Float32Array(dim).fill(1 / Math.sqrt(dim)),
      fineExperts: split?.fineExperts ?? new Int32Array(1),
      dim: split?.dim ?? dim,
      embedder,
      routingEmbedder: split?.embedder ?? embedder,
      prompts: ZERO_SHOT_TEMPLATES,
    });
    const code: RoutingChoice = { formula: 'code' };
    // With one model every formula gives it weight 1: only the code pass is run.
    const several = models.length > 1;
    const zs = await zeroShotAccuracy({ ensemble, images: testImages, labels: testLabels, classNames, choice: code });
    const paper = several ? await zeroShotAccuracy({ ensemble, images: testImages, labels: testLabels, classNames, choice: { formula: 'paper' } }) : undefined;
    const uniform = several ? await zeroShotAccuracy({ ensemble, images: testImages, labels: testLabels, classNames, choice: { formula: 'uniform' } }) : undefined;
    const reworded = await zeroShotAccuracy({ ensemble, images: testImages, labels: testLabels, classNames: rewordedNames, choice: code });
    const everyday = await zeroShotAccuracy({ ensemble, images: testImages, labels: testLabels, classNames: everydayNames, choice: code });
    const narrow: NarrowResult[] = [];
    for (const task of narrowSets) {
      const names = task.labels.map((l) => classNames[l]!);
      const run = (choice: RoutingChoice, taskNames = names) => zeroShotAccuracy({ ensemble, images: task.images, labels: task.targets, classNames: taskNames, choice });
      const nCode = await run(code);
      const nPaper = several ? await run({ formula: 'paper' }) : undefined;
      const nUniform = several ? await run({ formula: 'uniform' }) : undefined;
      const nReworded = await run(code, task.labels.map((l) => rewordedNames[l]!));
      narrow.push({
        task: task.name,
        classes: task.labels.length,
        code: nCode.top1,
        paper: nPaper?.top1 ?? null,
        uniform: nUniform?.top1 ?? null,
        reworded: nReworded.top1,
        weightsCode: weightString(nCode.weights),
        weightsPaper: nPaper ? weightString(nPaper.weights) : '–',
      });
      log(`  ${name} / ${task.name}: code ${(100 * nCode.top1).toFixed(2)}% (p ${weightString(nCode.weights)}), paper ${nPaper ? (100 * nPaper.top1).toFixed(2) : '–'}% (p ${nPaper ? weightString(nPaper.weights) : '–'}), uniform ${nUniform ? (100 * nUniform.top1).toFixed(2) : '–'}%, reworded ${(100 * nReworded.top1).toFixed(2)}%`);
    }
    const rr = await retrievalRecall({ ensemble, images: retrievalImages, texts: retrievalTexts, choice: code });
    const classHits = await classRecall(ensemble, code);
    ensemble.dispose();
    rows.push({
      name,
      experts: models.length,
      stepsPerExpert,
      cohesion: split?.cohesion ?? null,
      purity: split?.purity ?? null,
      zeroShot: zs.top1,
      zeroShotPaper: paper?.top1 ?? null,
      zeroShotUniform: uniform?.top1 ?? null,
      zeroShotReworded: reworded.top1,
      zeroShotEveryday: everyday.top1,
      narrow,
      i2t: rr.imageToTextR1,
      t2i: rr.textToImageR1,
      i2tClass: classHits.i2t,
      t2iClass: classHits.t2i,
      weights: weightString(zs.weights),
    });
    log(`${name}: zero-shot top-1 ${(100 * zs.top1).toFixed(2)}%${paper ? ` (paper ${(100 * paper.top1).toFixed(2)}%, uniform mean ${(100 * uniform!.top1).toFixed(2)}%)` : ''}, reworded ${(100 * reworded.top1).toFixed(2)}%, everyday names ${(100 * everyday.top1).toFixed(2)}%, R@1 i->t ${(100 * rr.imageToTextR1).toFixed(1)}% t->i ${(100 * rr.textToImageR1).toFixed(1)}%`);
  }

  /** Retrieval at class level: the top hit has the query's class (captions of one class are near-identical). */
  async function classRecall(ensemble: Ensemble, choice: RoutingChoice): Promise<{ i2t: number; t2i: number }> {
    const { imageToText, textToImage } = await ensemble.retrieve(retrievalImages, retrievalTexts, choice);
    const n = retrievalImages.length;
    const hit = (scores: Float32Array, q: number) => {
      let best = 0;
      for (let c = 1; c < n; c++) if (scores[q * n + c]! > scores[q * n + best]!) best = c;
      return retrievalLabels[best] === retrievalLabels[q] ? 1 : 0;
    };
    let i2t = 0;
    let t2i = 0;
    for (let q = 0; q < n; q++) {
      i2t += hit(imageToText, q);
      t2i += hit(textToImage, q);
    }
    return { i2t: i2t / n, t2i: t2i / n };
  }

  // Baseline: the seed continues on all pairs for the whole branch budget.
  {
    const model = cloneModel(seedModel);
    const optimizer = createAdamWState(model.params);
    await train(model, optimizer, batchesFrom(pairs, all, new Int32Array(0), 0, createRng(SEED + 11), imageSize, dim), { total: BRANCH_STEPS, learningRate: branchRate, warmupSteps: 0 }, 'baseline');
    await evaluate('one model, all data (baseline)', [model], undefined, BRANCH_STEPS);
    disposeAdamWState(optimizer);
    disposeModel(model);
  }

  for (const split of splits) {
    const steps = Math.round(BRANCH_STEPS / split.experts);
    const models: ExpertModel[] = [];
    for (let e = 0; e < split.experts; e++) {
      const pool = Int32Array.from(all.filter((k) => split.assignment[k] === e));
      const others = Int32Array.from(all.filter((k) => split.assignment[k] !== e));
      const model = cloneModel(seedModel);
      const optimizer = createAdamWState(model.params);
      await train(model, optimizer, batchesFrom(pairs, pool, others, training.outOfClusterShare, createRng(SEED + 100 + e), imageSize, dim), { total: steps, learningRate: branchRate, warmupSteps: 0 }, `${split.name} expert ${e} (${pool.length} pairs)`);
      disposeAdamWState(optimizer);
      models.push(model);
    }
    await evaluate(split.name, models, split, steps);
    for (const m of models) disposeModel(m);
  }

  const minutes = (performance.now() - started) / 60_000;
  const pct = (x: number | null) => (x === null ? '–' : (100 * x).toFixed(2));
  const table = [
    '| model | experts | steps per expert | class cohesion | expert purity | zero-shot top-1 (code weights) | zero-shot top-1 (paper weights) | zero-shot top-1 (uniform mean) | zero-shot top-1, held-out names (code weights) | zero-shot top-1, everyday names (code weights) | R@1 image→text | R@1 text→image | class R@1 image→text | class R@1 text→image | p(c\\|T), classification |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
    ...rows.map((r) => `| ${r.name} | ${r.experts} | ${r.stepsPerExpert} | ${pct(r.cohesion)} | ${pct(r.purity)} | ${pct(r.zeroShot)} | ${pct(r.zeroShotPaper)} | ${pct(r.zeroShotUniform)} | ${pct(r.zeroShotReworded)} | ${pct(r.zeroShotEveryday)} | ${pct(r.i2t)} | ${pct(r.t2i)} | ${pct(r.i2tClass)} | ${pct(r.t2iClass)} | ${r.weights} |`),
  ].join('\n');
  const narrowTable = [
    '| model | task (classes) | code weights | paper weights | uniform mean | reworded names (code weights) | p(c\\|T), code | p(c\\|T), paper |',
    '| --- | --- | ---: | ---: | ---: | ---: | --- | --- |',
    ...rows.flatMap((r) => r.narrow.map((n) => `| ${r.name} | ${n.task} (${n.classes}) | ${pct(n.code)} | ${pct(n.paper)} | ${pct(n.uniform)} | ${pct(n.reworded)} | ${n.weightsCode} | ${n.weightsPaper} |`)),
  ].join('\n');
  const options = `--steps ${TOTAL} --batch ${BATCH} --fine ${FINE} --seed ${SEED} --retrieval ${args.retrieval}${args.embedder === 'default' ? '' : ` --embedder ${args.embedder}`}`;
  const command = `npm run eval:paper -- ${options}`;
  const report = [
    `Run: \`${command}\` on ${backend.name} (${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB), ${minutes.toFixed(1)} min (of which ${embedMinutes.toFixed(1)} min loading and embedding the training captions), ${new Date().toISOString()}.`,
    `Caption embedder (clustering, routing and the text towers' input): ${embedderName}.`,
    `Budget B = ${TOTAL} steps at batch ${BATCH} for every row: seed ${SEED_STEPS} steps (27/32), then ${BRANCH_STEPS} steps (5/32) for the baseline or split evenly among the experts (each from the seed; 2% out-of-cluster pairs). Fine clusters m = ${FINE}. Captions: ${kinds.clean} clean, ${kinds.wrong} wrong, ${kinds.uninformative} uninformative.`,
    '',
    table,
    '',
    `Zero-shot: all 10,000 test images (last 1,000 per class), ${ZERO_SHOT_TEMPLATES.length} prompt templates per class name. Retrieval: ${args.retrieval} test images with generated clean captions; R@1 counts the exact pair, class R@1 a top hit of the query's class. Class cohesion: per class, the share of its training pairs in its largest expert, averaged over the 10 classes (a random split into n gives about 1/n). Expert purity: the share of training pairs whose expert's majority class is their own (about 10% for a random split). Held-out names: ${rewordedNames.map((n, l) => `${n} (${classNames[l]})`).join(', ')}, none of them a word of the caption generator. Everyday names: ${everydayNames.map((n, l) => `${n} (${classNames[l]})`).join(', ')} (several also occur in crawled captions).`,
    wordLine,
    '',
    `Narrow tasks (zero-shot on one group's test images, choosing among its class names only; same models as above):`,
    '',
    narrowTable,
  ].join('\n');
  console.log(`\n${report}`);
  if (args.out) writeReport(args.out, report);
  tf.disposeVariables();
}

const START = '<!-- eval:paper:start -->';
const END = '<!-- eval:paper:end -->';

/** Replaces the generated part of `path` (between the markers), keeping the analysis around it. */
function writeReport(path: string, report: string): void {
  const previous = existsSync(path) ? readFileSync(path, 'utf8') : '';
  const [start, end] = [previous.indexOf(START), previous.indexOf(END)];
  const text = start >= 0 && end > start ? `${previous.slice(0, start + START.length)}\n${report}\n${previous.slice(end)}` : `${START}\n${report}\n${END}\n`;
  writeFileSync(path, text);
}

/** The test images and labels of `labels` only, relabelled 0..k-1 in the order of `labels`. */
function restrictTo(images: readonly DecodedImage[], labels: Int32Array, keep: readonly number[]): { images: DecodedImage[]; targets: Int32Array } {
  const position = new Map(keep.map((label, i) => [label, i]));
  const rows = Array.from(labels.keys()).filter((i) => position.has(labels[i]!));
  return { images: rows.map((i) => images[i]!), targets: Int32Array.from(rows, (i) => position.get(labels[i]!)!) };
}

/** Unit-length mean of each name's zero-shot prompt embeddings, [names x dim], as the ensemble routes a class. */
async function promptMeans(embedder: CaptionEmbedder, names: readonly string[]): Promise<Float32Array> {
  const per = ZERO_SHOT_TEMPLATES.length;
  const raw = await embedder.embed(names.flatMap((n) => ZERO_SHOT_TEMPLATES.map((t) => fillTemplate(t, n))));
  const out = new Float32Array(names.length * embedder.dim);
  for (let c = 0; c < names.length; c++) {
    for (let t = 0; t < per; t++) for (let d = 0; d < embedder.dim; d++) out[c * embedder.dim + d]! += raw[(c * per + t) * embedder.dim + d]!;
    const row = out.subarray(c * embedder.dim, (c + 1) * embedder.dim);
    const norm = Math.hypot(...row) || 1;
    row.forEach((v, d) => (row[d] = v / norm));
  }
  return out;
}

/** For each query row, the index of the reference row with the highest cosine (rows are unit length). */
function nearestClass(queries: Float32Array, references: Float32Array, dim: number): number[] {
  return Array.from({ length: queries.length / dim }, (_, q) => {
    let best = 0;
    let bestSim = -Infinity;
    for (let r = 0; r < references.length / dim; r++) {
      let sim = 0;
      for (let d = 0; d < dim; d++) sim += queries[q * dim + d]! * references[r * dim + d]!;
      if (sim > bestSim) [best, bestSim] = [r, sim];
    }
    return best;
  });
}

/** p(c|T) by expert as "0.26/0.25/...", in expert id order. */
function weightString(weights: Record<number, number>): string {
  return Object.values(weights).map((w) => w.toFixed(2)).join('/');
}

/** Captions through the seed's text tower: the embedding space of the Table 7 variant. */
function seedTextEmbedder(seed: ExpertModel, base: CaptionEmbedder): CaptionEmbedder {
  return {
    dim: seed.architecture.projection,
    fingerprint: `seed-text-tower(${base.fingerprint})`,
    async embed(captions) {
      const out = new Float32Array(captions.length * seed.architecture.projection);
      for (let start = 0; start < captions.length; start += 4096) {
        const slice = captions.slice(start, start + 4096);
        const input = await base.embed(slice);
        const emb = tf.tidy(() => encodeTexts(seed, tf.tensor2d(input, [slice.length, base.dim])));
        out.set(await emb.data(), start * seed.architecture.projection);
        emb.dispose();
      }
      return out;
    },
    dispose() {},
  };
}

await main();
