/**
 * The training loop of one model (the seed or an expert): batches come from the caller (streamed from
 * the shards), progress and checkpoints go back through callbacks, so this module does no I/O.
 * The step counter lives in the optimizer state, so a resumed job continues the same schedule.
 */
import * as tf from '@tensorflow/tfjs';
import type { TrainingSettings } from '../config.js';
import { clipLoss } from './loss.js';
import { decayedParams, encodeImages, encodeTexts, logitScale, similarityLogits, type ExpertModel } from './model.js';
import { adamWStep, cosineLearningRate, type AdamWState } from './optimizer.js';

/** One batch of matching pairs, row-major: images [size, ...imageShape] in [0, 1], texts [size, textDim]. */
export interface TrainBatch {
  images: Float32Array;
  texts: Float32Array;
  size: number;
}

export interface TrainProgress {
  step: number;
  totalSteps: number;
  loss: number;
  learningRate: number;
  logitScale: number;
  samplesPerSecond: number;
}

export interface TrainOptions {
  model: ExpertModel;
  optimizer: AdamWState;
  settings: Pick<TrainingSettings, 'learningRate' | 'warmupSteps' | 'weightDecay' | 'beta1' | 'beta2' | 'epsilon'>;
  /** Length of the learning-rate schedule; training stops there... */
  totalSteps: number;
  /** ...or earlier, at this step (a seed that is the first part of a longer schedule). */
  stopAt?: number;
  batches: AsyncIterable<TrainBatch>;
  onStep?: (progress: TrainProgress) => void | Promise<void>;
  /** Called every `checkpointEvery` steps and at the end, after the step's update. */
  onCheckpoint?: (step: number) => Promise<void>;
  checkpointEvery?: number;
  signal?: AbortSignal;
}

export interface TrainResult {
  step: number;
  lastLoss: number;
  stopped: boolean;
}

/** The input tensor of a batch's images, in the shape the image tower expects. */
export function imageTensor(model: ExpertModel, batch: TrainBatch): tf.Tensor {
  const input = model.architecture.imageInput;
  return input.kind === 'pixels'
    ? tf.tensor4d(batch.images, [batch.size, input.height, input.width, input.channels])
    : tf.tensor2d(batch.images, [batch.size, input.dim]);
}

/** The symmetric InfoNCE loss of a batch under the model (call in a tidy or dispose the result). */
export function batchLoss(model: ExpertModel, images: tf.Tensor, texts: tf.Tensor2D): tf.Scalar {
  return clipLoss(similarityLogits(model, encodeImages(model, images), encodeTexts(model, texts)));
}

export async function trainExpert(options: TrainOptions): Promise<TrainResult> {
  const { model, optimizer, settings, totalSteps, onStep, onCheckpoint, checkpointEvery = 100, signal } = options;
  const stopAt = Math.min(options.stopAt ?? totalSteps, totalSteps);
  const decayed = decayedParams(model.architecture);
  const varList = [...model.params.values()];
  const names = [...model.params.keys()];
  const textDim = model.architecture.textDim;
  let lastLoss = Number.NaN;
  let windowStart = performance.now();
  let windowSamples = 0;
  const iterator = options.batches[Symbol.asyncIterator]();

  while (optimizer.step < stopAt) {
    if (signal?.aborted) return { step: optimizer.step, lastLoss, stopped: true };
    const next = await iterator.next();
    if (next.done) break;
    const batch = next.value;
    const lr = cosineLearningRate({ step: optimizer.step, total: totalSteps, warmup: settings.warmupSteps, base: settings.learningRate });
    const lossTensor = tf.tidy(() => {
      const images = imageTensor(model, batch);
      const texts = tf.tensor2d(batch.texts, [batch.size, textDim]);
      const { value, grads } = tf.variableGrads(() => batchLoss(model, images, texts), varList);
      // variableGrads keys by variable name; the optimizer keys by parameter name.
      const byName = Object.fromEntries(names.map((name, i) => [name, grads[varList[i]!.name]!]));
      adamWStep({ params: model.params, grads: byName, state: optimizer, lr, settings, decayed });
      return value;
    });
    const scaleTensor = tf.tidy(() => logitScale(model));
    // Reading the loss waits for the step to finish on the device: also what makes samples/s honest.
    const [loss, scale] = await Promise.all([lossTensor.data(), scaleTensor.data()]);
    lossTensor.dispose();
    scaleTensor.dispose();
    lastLoss = loss[0]!;
    windowSamples += batch.size;
    const elapsed = (performance.now() - windowStart) / 1000;
    const samplesPerSecond = windowSamples / Math.max(elapsed, 1e-9);
    if (elapsed > 5) {
      windowStart = performance.now();
      windowSamples = 0;
    }
    await onStep?.({ step: optimizer.step, totalSteps, loss: lastLoss, learningRate: lr, logitScale: scale[0]!, samplesPerSecond });
    if (onCheckpoint && (optimizer.step % checkpointEvery === 0 || optimizer.step === stopAt)) await onCheckpoint(optimizer.step);
  }
  await iterator.return?.();
  return { step: optimizer.step, lastLoss, stopped: false };
}
