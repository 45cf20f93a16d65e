/**
 * Evaluating an ensemble on the Fashion-MNIST test split (the last 1,000 images per class): zero-shot
 * top-1 from class-name prompts, and image<->text retrieval R@1 with generated clean captions. Used by
 * `modestream eval`, the demo and the drift test.
 */
import { createRng } from '../../src/cluster/rng.js';
import type { DecodedImage } from '../../src/contract/image.js';
import type { Ensemble, RoutingChoice } from '../../src/ensemble/ensemble.js';
import { retrievalRecall, zeroShotAccuracy } from '../../src/ensemble/evaluate.js';
import { captionFor } from './captions.js';
import { FASHION_MNIST_CLASSES } from './classes.js';
import { loadFashionMnist } from './dataset.js';

export interface TestSet {
  images: DecodedImage[];
  labels: Int32Array;
}

/** The test images of `classes` (default all ten), at most `perClass` of each. */
export async function fashionMnistTestSet({ classes, perClass = 1000 }: { classes?: number[]; perClass?: number } = {}): Promise<TestSet> {
  const set = await loadFashionMnist({ split: 'test', ...(classes ? { classes } : {}) });
  const taken = new Map<number, number>();
  const kept = set.images.filter((img) => {
    const n = taken.get(img.label) ?? 0;
    taken.set(img.label, n + 1);
    return n < perClass;
  });
  return {
    images: kept.map((img) => ({ kind: 'pixels', width: set.width, height: set.height, channels: 1, data: img.pixels })),
    labels: Int32Array.from(kept, (img) => img.label),
  };
}

export interface ZeroShotReport {
  top1: number;
  perClass: { label: number; name: string; top1: number }[];
  weights: Record<number, number>;
}

/** Zero-shot over the given test images; `classes` are the candidate labels (default all ten). */
export async function zeroShotReport({ ensemble, test, classes, choice }: { ensemble: Ensemble; test: TestSet; classes?: number[]; choice?: RoutingChoice }): Promise<ZeroShotReport> {
  const candidates = classes ?? FASHION_MNIST_CLASSES.map((c) => c.label);
  const position = new Map(candidates.map((label, i) => [label, i]));
  const rows = Array.from(test.labels.keys()).filter((i) => position.has(test.labels[i]!));
  const result = await zeroShotAccuracy({
    ensemble,
    images: rows.map((i) => test.images[i]!),
    labels: Int32Array.from(rows, (i) => position.get(test.labels[i]!)!),
    classNames: candidates.map((label) => FASHION_MNIST_CLASSES[label]!.promptName),
    ...(choice ? { choice } : {}),
  });
  return { top1: result.top1, perClass: candidates.map((label, i) => ({ label, name: FASHION_MNIST_CLASSES[label]!.name, top1: result.perClass[i]! })), weights: result.weights };
}

export interface RetrievalReport {
  pairs: number;
  imageToTextR1: number;
  textToImageR1: number;
}

export async function retrievalReport({ ensemble, test, pairs = 1000, seed = 1, choice }: { ensemble: Ensemble; test: TestSet; pairs?: number; seed?: number; choice?: RoutingChoice }): Promise<RetrievalReport> {
  const rng = createRng(seed);
  const rows = Array.from(test.labels.keys());
  for (let k = rows.length - 1; k > 0; k--) {
    const j = rng.nextInt(k + 1);
    [rows[k], rows[j]] = [rows[j]!, rows[k]!];
  }
  const chosen = rows.slice(0, pairs);
  const texts = chosen.map((r) => captionFor({ label: test.labels[r]!, rng, options: { wrongShare: 0, uninformativeShare: 0 } }).caption);
  const result = await retrievalRecall({ ensemble, images: chosen.map((r) => test.images[r]!), texts, ...(choice ? { choice } : {}) });
  return { pairs: chosen.length, imageToTextR1: result.imageToTextR1, textToImageR1: result.textToImageR1 };
}
