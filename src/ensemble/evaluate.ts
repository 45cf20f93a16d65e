/**
 * Evaluation measures on an ensemble: zero-shot top-1 accuracy from class names, and image<->text
 * retrieval recall@1 on matching pairs (image i goes with text i). Pure: data in, numbers out.
 */
import type { DecodedImage } from '../contract/image.js';
import { recallAt1, type Ensemble, type RoutingChoice } from './ensemble.js';

export interface ZeroShotResult {
  top1: number;
  perClass: number[];
  /** p(c|T) of the classification task, by expert id. */
  weights: Record<number, number>;
}

export async function zeroShotAccuracy({
  ensemble,
  images,
  labels,
  classNames,
  choice,
}: {
  ensemble: Ensemble;
  images: readonly DecodedImage[];
  labels: ArrayLike<number>;
  classNames: readonly string[];
  choice?: RoutingChoice;
}): Promise<ZeroShotResult> {
  const { predictions, weights } = await ensemble.classify(images, classNames, choice);
  const hits = new Array<number>(classNames.length).fill(0);
  const totals = new Array<number>(classNames.length).fill(0);
  let correct = 0;
  predictions.forEach((p, i) => {
    const label = labels[i]!;
    totals[label]!++;
    if (p === label) {
      correct++;
      hits[label]!++;
    }
  });
  return { top1: correct / images.length, perClass: hits.map((h, c) => (totals[c] ? h / totals[c]! : 0)), weights };
}

export interface RetrievalResult {
  imageToTextR1: number;
  textToImageR1: number;
  corpusWeights: Record<number, number>;
}

export async function retrievalRecall({ ensemble, images, texts, choice }: { ensemble: Ensemble; images: readonly DecodedImage[]; texts: readonly string[]; choice?: RoutingChoice }): Promise<RetrievalResult> {
  if (images.length !== texts.length) throw new RangeError(`retrieval needs matching pairs: ${images.length} images, ${texts.length} texts`);
  const { imageToText, textToImage, corpusWeights } = await ensemble.retrieve(images, texts, choice);
  return { imageToTextR1: recallAt1(imageToText, images.length), textToImageR1: recallAt1(textToImage, texts.length), corpusWeights };
}
