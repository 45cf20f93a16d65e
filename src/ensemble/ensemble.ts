/**
 * The MoDE ensemble at inference (ARCHITECTURE.md section 2, step 5): the task's texts (class names with
 * prompts, or a retrieval corpus) are embedded with the caption embedder and routed to their nearest
 * fine centers, which gives p(c|T) (weights.ts); every expert scores images against the texts by cosine
 * similarity in its own space; the output is the p-weighted sum. No labels, no parameter updates.
 */
import * as tf from '@tensorflow/tfjs';
import { createNearestCenters } from '../cluster/nearest.js';
import type { DecodedImage } from '../contract/image.js';
import type { CaptionEmbedder } from '../embed/embedder.js';
import { imageSize, writeImage } from '../expert/batch.js';
import { encodeImages, encodeTexts, type ExpertModel } from '../expert/model.js';
import { imageTensor } from '../expert/train.js';
import { mixLogits, routingWeights, type NearestFine, type RoutingFormula } from './weights.js';

export interface EnsembleExpert {
  id: number;
  model: ExpertModel;
}

export interface EnsembleParts {
  experts: readonly EnsembleExpert[];
  /** Fine centers (row-major, m x dim) in the routing space, and each one's expert id. */
  fine: Float32Array;
  fineExperts: Int32Array;
  dim: number;
  /** The caption embedder whose output the experts' text towers read. */
  embedder: CaptionEmbedder;
  /** The space the fine centers live in, when not the caption embedder's (clustering on another encoder). */
  routingEmbedder?: CaptionEmbedder;
  /** Zero-shot prompt templates, "{}" is the class name; default a few CLIP-style ones. */
  prompts?: readonly string[];
  /** Default routing formula ('code'). */
  formula?: RoutingFormula;
}

export interface RoutingChoice {
  formula?: RoutingFormula;
  /** Expert id for formula 'single'. */
  expert?: number;
}

export interface Classification {
  /** [images x classes] mixed cosine similarities. */
  scores: Float32Array;
  predictions: Int32Array;
  /** p(c|T) by expert id. */
  weights: Record<number, number>;
}

export interface Retrieval {
  /** [images x texts]: image->text scores, one weighting for the whole text corpus. */
  imageToText: Float32Array;
  /** [texts x images]: text->image scores, each query text weighted as its own task. */
  textToImage: Float32Array;
  corpusWeights: Record<number, number>;
}

export const DEFAULT_PROMPTS = ['a photo of a {}.', 'a product photo of a {}.', 'a picture of the {}.', '{}'];

const IMAGE_BATCH = 512;

export interface Ensemble {
  readonly expertIds: readonly number[];
  /** p(c|T) of a task given its texts, by expert id. */
  taskWeights(texts: readonly string[], choice?: RoutingChoice): Promise<Record<number, number>>;
  classify(images: readonly DecodedImage[], classNames: readonly string[], choice?: RoutingChoice): Promise<Classification>;
  retrieve(images: readonly DecodedImage[], texts: readonly string[], choice?: RoutingChoice): Promise<Retrieval>;
  dispose(): void;
}

export function createEnsemble(parts: EnsembleParts): Ensemble {
  const { experts, embedder, dim } = parts;
  const routingEmbedder = parts.routingEmbedder ?? embedder;
  const prompts = parts.prompts ?? DEFAULT_PROMPTS;
  const defaultFormula = parts.formula ?? 'code';
  const index = new Map(experts.map((e, i) => [e.id, i]));
  const centers = createNearestCenters({ centers: parts.fine, dim });

  /** Each text's nearest fine center, as (expert index, L2 distance). Texts of no known expert are dropped. */
  async function nearest(embeddings: Float32Array): Promise<NearestFine[]> {
    const { index: rows, dist2 } = await centers.assign(embeddings);
    return Array.from(rows).flatMap((row, i) => {
      const expert = index.get(parts.fineExperts[row]!);
      return expert === undefined ? [] : [{ expert, distance: Math.sqrt(Math.max(0, dist2[i]!)) }];
    });
  }

  function weightsFor(task: readonly NearestFine[], choice: RoutingChoice): number[] {
    const formula = choice.formula ?? defaultFormula;
    const single = choice.expert === undefined ? 0 : index.get(choice.expert);
    if (formula === 'single' && single === undefined) throw new RangeError(`expert ${choice.expert} is not in this ensemble (${[...index.keys()].join(', ')})`);
    return routingWeights(task, { formula, experts: experts.length, single });
  }

  const byId = (weights: number[]) => Object.fromEntries(experts.map((e, i) => [e.id, weights[i]!]));

  /** Each expert's unit embeddings of the images, [images x projection] per expert. */
  async function imageEmbeddings(images: readonly DecodedImage[]): Promise<Float32Array[]> {
    return Promise.all(
      experts.map(async ({ model }) => {
        const per = imageSize(model.architecture);
        const out: Float32Array[] = [];
        for (let start = 0; start < images.length; start += IMAGE_BATCH) {
          const slice = images.slice(start, start + IMAGE_BATCH);
          const input = new Float32Array(slice.length * per);
          slice.forEach((image, i) => {
            if (!writeImage(image, model.architecture, input, i * per)) throw new RangeError(`image ${start + i} (${image.kind}) does not fit the experts' image tower`);
          });
          const emb = tf.tidy(() => encodeImages(model, imageTensor(model, { images: input, texts: new Float32Array(0), size: slice.length })));
          out.push((await emb.data()) as Float32Array);
          emb.dispose();
        }
        return concat(out);
      }),
    );
  }

  /** Each expert's unit embeddings of texts given as groups of caption embeddings averaged per group. */
  async function textEmbeddings(captionEmbeddings: Float32Array, groups: number, perGroup: number): Promise<Float32Array[]> {
    return Promise.all(
      experts.map(async ({ model }) => {
        const emb = tf.tidy(() => {
          const all = encodeTexts(model, tf.tensor2d(captionEmbeddings, [groups * perGroup, embedder.dim]));
          // Prompt ensembling as in CLIP: average the tower outputs over a class's prompts, renormalise.
          const mean = tf.mean(tf.reshape(all, [groups, perGroup, -1]), 1);
          return tf.div(mean, tf.norm(mean, 2, 1, true));
        });
        const data = (await emb.data()) as Float32Array;
        emb.dispose();
        return data;
      }),
    );
  }

  /** Cosine similarities [rows x cols] of unit vectors a [rows x d] and b [cols x d]. */
  async function cosine(a: Float32Array, b: Float32Array, d: number): Promise<Float32Array> {
    const out = tf.tidy(() => tf.matMul(tf.tensor2d(a, [a.length / d, d]), tf.transpose(tf.tensor2d(b, [b.length / d, d]))));
    const data = (await out.data()) as Float32Array;
    out.dispose();
    return data;
  }

  const projection = (i: number) => experts[i]!.model.architecture.projection;

  return {
    expertIds: experts.map((e) => e.id),

    async taskWeights(texts, choice = {}) {
      return byId(weightsFor(await nearest(await routingEmbedder.embed(texts)), choice));
    },

    async classify(images, classNames, choice = {}) {
      const captions = classNames.flatMap((name) => prompts.map((p) => p.replaceAll('{}', name)));
      const promptEmb = await embedder.embed(captions);
      // The class's embedding for routing: the mean of its prompts' embeddings, renormalised.
      const routingEmb = routingEmbedder === embedder ? promptEmb : await routingEmbedder.embed(captions);
      const classEmb = meanRows(routingEmb, classNames.length, prompts.length, routingEmbedder.dim);
      const weights = weightsFor(await nearest(classEmb), choice);
      const [imageEmb, textEmb] = await Promise.all([imageEmbeddings(images), textEmbeddings(promptEmb, classNames.length, prompts.length)]);
      const perExpert = await Promise.all(experts.map((_, i) => (weights[i] === 0 ? Promise.resolve(new Float32Array(images.length * classNames.length)) : cosine(imageEmb[i]!, textEmb[i]!, projection(i)))));
      const scores = mixLogits(weights, perExpert);
      return { scores, predictions: argmaxRows(scores, classNames.length), weights: byId(weights) };
    },

    async retrieve(images, texts, choice = {}) {
      const textCaptionEmb = await embedder.embed(texts);
      const perText = await nearest(routingEmbedder === embedder ? textCaptionEmb : await routingEmbedder.embed(texts));
      const corpus = weightsFor(perText, choice);
      const [imageEmb, textEmb] = await Promise.all([imageEmbeddings(images), textEmbeddings(textCaptionEmb, texts.length, 1)]);
      const sims = await Promise.all(experts.map((_, i) => cosine(imageEmb[i]!, textEmb[i]!, projection(i))));
      const imageToText = mixLogits(corpus, sims);
      // Text->image: query t is a task of one text, weighted by its own p(c|t).
      const textToImage = new Float32Array(texts.length * images.length);
      perText.forEach((nf, t) => {
        const w = weightsFor([nf], choice);
        for (let i = 0; i < images.length; i++) {
          let s = 0;
          for (let c = 0; c < experts.length; c++) s += w[c]! * sims[c]![i * texts.length + t]!;
          textToImage[t * images.length + i] = s;
        }
      });
      return { imageToText, textToImage, corpusWeights: byId(corpus) };
    },

    dispose() {
      centers.dispose();
    },
  };
}

function concat(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Means of consecutive groups of rows, renormalised to unit length. */
function meanRows(values: Float32Array, groups: number, perGroup: number, dim: number): Float32Array {
  const out = new Float32Array(groups * dim);
  for (let g = 0; g < groups; g++) {
    for (let r = 0; r < perGroup; r++) for (let d = 0; d < dim; d++) out[g * dim + d]! += values[(g * perGroup + r) * dim + d]!;
    let norm = 0;
    for (let d = 0; d < dim; d++) norm += out[g * dim + d]! ** 2;
    norm = Math.sqrt(norm) || 1;
    for (let d = 0; d < dim; d++) out[g * dim + d]! /= norm;
  }
  return out;
}

export function argmaxRows(scores: Float32Array, cols: number): Int32Array {
  const rows = scores.length / cols;
  const out = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    let best = 0;
    for (let c = 1; c < cols; c++) if (scores[r * cols + c]! > scores[r * cols + best]!) best = c;
    out[r] = best;
  }
  return out;
}

/** Recall@1 of a [queries x candidates] score matrix whose query i matches candidate i. */
export function recallAt1(scores: Float32Array, queries: number): number {
  const cols = scores.length / queries;
  const best = argmaxRows(scores, cols);
  let hits = 0;
  best.forEach((c, q) => (hits += c === q ? 1 : 0));
  return hits / queries;
}
