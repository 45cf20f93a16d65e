/**
 * A CLIP data expert: an image tower and a text tower projecting into one L2-normalised space, and a
 * learnable temperature (ARCHITECTURE.md section 2, "Experts"). The text tower reads the caption embedding
 * (the same one routing uses); the image tower is a small CNN over pixels (a patchify stem, optional
 * 3x3 stages, a hidden layer) or an MLP over precomputed image embeddings. The model is plain variables plus pure forward functions, so one builder serves
 * training, checkpoints and the ensemble; nothing here does I/O or logging.
 */
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { createRng } from '../cluster/rng.js';
import { ImageInputConfig, type ExpertSettings } from '../config.js';
import { avgPool2, conv3x3, dense, l2Normalize, patchConv } from './layers.js';

/** Everything needed to rebuild the network's shapes; stored in every checkpoint. */
export const ExpertArchitecture = z.object({
  imageInput: ImageInputConfig,
  patch: z.number().int().positive(),
  stemChannels: z.number().int().positive(),
  convChannels: z.array(z.number().int().positive()),
  imageHidden: z.number().int().positive(),
  textDim: z.number().int().positive(),
  textHidden: z.number().int().positive(),
  projection: z.number().int().positive(),
  logitScaleInit: z.number().positive(),
  logitScaleMax: z.number().positive(),
});
export type ExpertArchitecture = z.infer<typeof ExpertArchitecture>;

export function architectureOf(settings: ExpertSettings, textDim: number): ExpertArchitecture {
  const { imageInput, patch, stemChannels, convChannels, imageHidden, textHidden, projection, logitScaleInit, logitScaleMax } = settings;
  return { imageInput, patch, stemChannels, convChannels, imageHidden, textDim, textHidden, projection, logitScaleInit, logitScaleMax };
}

export interface ExpertModel {
  readonly architecture: ExpertArchitecture;
  /** Named variables, in a stable order (checkpoints and the optimizer rely on it). */
  readonly params: ReadonlyMap<string, tf.Variable>;
}

interface ParamSpec {
  name: string;
  shape: number[];
  init: 'he' | 'glorot' | 'zeros' | { constant: number };
  /** Weight matrices are decayed (AdamW); biases and the temperature are not. */
  decay: boolean;
}

/** The parameter list of an architecture; shapes follow the forward functions below. */
export function parameterSpecs(a: ExpertArchitecture): ParamSpec[] {
  const specs: ParamSpec[] = [];
  const layer = (name: string, fanIn: number, fanOut: number, init: 'he' | 'glorot') => {
    specs.push({ name: `${name}/kernel`, shape: [fanIn, fanOut], init, decay: true });
    specs.push({ name: `${name}/bias`, shape: [fanOut], init: 'zeros', decay: false });
  };
  if (a.imageInput.kind === 'pixels') {
    let [h, w] = [Math.floor(a.imageInput.height / a.patch), Math.floor(a.imageInput.width / a.patch)];
    if (h < 1 || w < 1) throw new RangeError(`image ${a.imageInput.width}x${a.imageInput.height} is smaller than one ${a.patch}x${a.patch} patch`);
    layer('image/stem', a.patch * a.patch * a.imageInput.channels, a.stemChannels, 'he');
    let channels = a.stemChannels;
    a.convChannels.forEach((out, i) => {
      layer(`image/conv${i}`, 9 * channels, out, 'he');
      channels = out;
      h = Math.floor(h / 2);
      w = Math.floor(w / 2);
    });
    if (h < 1 || w < 1) throw new RangeError(`image ${a.imageInput.width}x${a.imageInput.height} is too small for ${a.convChannels.length} conv stages`);
    layer('image/hidden', h * w * channels, a.imageHidden, 'he');
  } else {
    layer('image/hidden', a.imageInput.dim, a.imageHidden, 'he');
  }
  layer('image/proj', a.imageHidden, a.projection, 'glorot');
  layer('text/hidden', a.textDim, a.textHidden, 'he');
  layer('text/proj', a.textHidden, a.projection, 'glorot');
  specs.push({ name: 'logit_scale', shape: [], init: { constant: Math.log(a.logitScaleInit) }, decay: false });
  return specs;
}

/** Names of the parameters AdamW decays. */
export function decayedParams(a: ExpertArchitecture): Set<string> {
  return new Set(parameterSpecs(a).filter((s) => s.decay).map((s) => s.name));
}

/** A freshly initialised model (He for ReLU layers, Glorot for projections), deterministic for a seed. */
export function createExpertModel({ architecture, seed }: { architecture: ExpertArchitecture; seed: number }): ExpertModel {
  const a = ExpertArchitecture.parse(architecture);
  const rng = createRng(seed);
  const params = new Map<string, tf.Variable>();
  for (const spec of parameterSpecs(a)) {
    const value = tf.tidy(() => {
      if (spec.init === 'zeros') return tf.zeros(spec.shape);
      if (typeof spec.init === 'object') return tf.fill(spec.shape, spec.init.constant);
      const [fanIn, fanOut] = spec.shape as [number, number];
      const std = spec.init === 'he' ? Math.sqrt(2 / fanIn) : Math.sqrt(2 / (fanIn + fanOut));
      return tf.randomNormal(spec.shape, 0, std, 'float32', rng.nextInt(2 ** 31));
    });
    params.set(spec.name, tf.variable(value, true, uniqueName(spec.name)));
    value.dispose();
  }
  return { architecture: a, params };
}

/** A model holding the given values (checkpoint load, warm start); shapes are checked. */
export function modelFromTensors(architecture: ExpertArchitecture, values: Record<string, tf.Tensor>): ExpertModel {
  const a = ExpertArchitecture.parse(architecture);
  const params = new Map<string, tf.Variable>();
  for (const spec of parameterSpecs(a)) {
    const t = values[spec.name];
    if (!t) throw new RangeError(`missing parameter ${spec.name}`);
    if (t.shape.join('x') !== spec.shape.join('x')) throw new RangeError(`parameter ${spec.name} has shape [${t.shape}], expected [${spec.shape}]`);
    params.set(spec.name, tf.variable(t, true, uniqueName(spec.name)));
  }
  return { architecture: a, params };
}

/** An independent copy (an expert branching off the seed model). */
export function cloneModel(model: ExpertModel): ExpertModel {
  const values = Object.fromEntries([...model.params].map(([name, v]) => [name, v as tf.Tensor]));
  return modelFromTensors(model.architecture, values);
}

export function disposeModel(model: ExpertModel): void {
  for (const v of model.params.values()) v.dispose();
}

let counter = 0;
// tfjs variable names are global to the engine; two models must not collide.
const uniqueName = (name: string) => `expert${++counter}/${name}`;

function p(model: ExpertModel, name: string): tf.Tensor {
  const v = model.params.get(name);
  if (!v) throw new RangeError(`model has no parameter ${name}`);
  return v;
}

/**
 * Image tower. Pixel input: [b, h, w, c] floats in [0, 1]; embedding input: [b, dim]. Returns unit rows
 * [b, projection]. Call inside tf.tidy (or dispose the result).
 */
export function encodeImages(model: ExpertModel, images: tf.Tensor): tf.Tensor2D {
  const a = model.architecture;
  let flat: tf.Tensor2D;
  if (a.imageInput.kind === 'pixels') {
    let x = tf.relu(patchConv(images as tf.Tensor4D, p(model, 'image/stem/kernel') as tf.Tensor2D, p(model, 'image/stem/bias') as tf.Tensor1D, a.patch));
    a.convChannels.forEach((_, i) => {
      x = avgPool2(tf.relu(conv3x3(x, p(model, `image/conv${i}/kernel`) as tf.Tensor2D, p(model, `image/conv${i}/bias`) as tf.Tensor1D)));
    });
    flat = tf.reshape(x, [x.shape[0], -1]) as tf.Tensor2D;
  } else {
    flat = images as tf.Tensor2D;
  }
  const hidden = tf.relu(dense(flat, p(model, 'image/hidden/kernel') as tf.Tensor2D, p(model, 'image/hidden/bias') as tf.Tensor1D));
  return l2Normalize(dense(hidden, p(model, 'image/proj/kernel') as tf.Tensor2D, p(model, 'image/proj/bias') as tf.Tensor1D));
}

/** Text tower over caption embeddings [b, textDim]; unit rows [b, projection]. */
export function encodeTexts(model: ExpertModel, texts: tf.Tensor2D): tf.Tensor2D {
  const hidden = tf.relu(dense(texts, p(model, 'text/hidden/kernel') as tf.Tensor2D, p(model, 'text/hidden/bias') as tf.Tensor1D));
  return l2Normalize(dense(hidden, p(model, 'text/proj/kernel') as tf.Tensor2D, p(model, 'text/proj/bias') as tf.Tensor1D));
}

/** exp(logit_scale), clamped at logitScaleMax as in CLIP (no gradient through the clamp). */
export function logitScale(model: ExpertModel): tf.Scalar {
  return tf.exp(tf.minimum(p(model, 'logit_scale'), Math.log(model.architecture.logitScaleMax))) as tf.Scalar;
}

/** Cosine-similarity logits image x text, scaled: [images, texts]. */
export function similarityLogits(model: ExpertModel, imageEmb: tf.Tensor2D, textEmb: tf.Tensor2D): tf.Tensor2D {
  return tf.mul(logitScale(model), tf.matMul(imageEmb, tf.transpose(textEmb))) as tf.Tensor2D;
}
