/**
 * Expert checkpoints in the TensorFlow.js artifact layout: `model.json` (topology + weights manifest)
 * and one binary weights file, plus the AdamW state for resuming a job. Pure bytes in, bytes out: where
 * and how the files are written (atomically) is state/models.ts's job. Loading verifies shapes,
 * byte counts and a SHA-256 of the weights, so a truncated or corrupt file is refused with a clear error.
 */
import { createHash } from 'node:crypto';
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { StateError } from '../errors.js';
import { ExpertArchitecture, modelFromTensors, type ExpertModel } from './model.js';
import type { AdamWState } from './optimizer.js';

export const WEIGHTS_FILE = 'weights.bin';
export const OPTIMIZER_WEIGHTS_FILE = 'optimizer.bin';

const WeightSpec = z.object({ name: z.string(), shape: z.array(z.number().int().nonnegative()), dtype: z.literal('float32') });

export const ModelJson = z.object({
  format: z.literal('modestream-expert'),
  formatVersion: z.literal(1),
  generatedBy: z.string(),
  modelTopology: z.object({ architecture: ExpertArchitecture }),
  weightsManifest: z.array(z.object({ paths: z.array(z.string()).length(1), weights: z.array(WeightSpec) })).length(1),
  /** Training facts (role, expert id, steps, loss, backend...); free-form for readers, checked by the writer. */
  userDefinedMetadata: z.record(z.string(), z.unknown()),
  weightsSha256: z.string().regex(/^[0-9a-f]{64}$/),
});
export type ModelJson = z.infer<typeof ModelJson>;

const OptimizerJson = z.object({
  format: z.literal('modestream-adamw'),
  step: z.number().int().nonnegative(),
  weights: z.array(WeightSpec),
  weightsSha256: z.string().regex(/^[0-9a-f]{64}$/),
});

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

async function encode(tensors: [string, tf.Tensor][]): Promise<{ bytes: Uint8Array; specs: z.infer<typeof WeightSpec>[] }> {
  const { data, specs } = await tf.io.encodeWeights(tensors.map(([name, tensor]) => ({ name, tensor })));
  return { bytes: new Uint8Array(data), specs: specs.map((s) => ({ name: s.name, shape: s.shape, dtype: 'float32' as const })) };
}

function decode(bytes: Uint8Array, specs: z.infer<typeof WeightSpec>[], what: string): Record<string, tf.Tensor> {
  const expected = specs.reduce((sum, s) => sum + 4 * s.shape.reduce((a, b) => a * b, 1), 0);
  if (bytes.byteLength !== expected) throw new StateError(`${what}: weights hold ${bytes.byteLength} bytes, the manifest describes ${expected}`);
  const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  return tf.io.decodeWeights(buffer, specs) as Record<string, tf.Tensor>;
}

export async function serializeModel(model: ExpertModel, metadata: Record<string, unknown>): Promise<{ modelJson: string; weights: Uint8Array }> {
  const { bytes, specs } = await encode([...model.params]);
  const json: ModelJson = {
    format: 'modestream-expert',
    formatVersion: 1,
    generatedBy: 'modestream',
    modelTopology: { architecture: model.architecture },
    weightsManifest: [{ paths: [WEIGHTS_FILE], weights: specs }],
    userDefinedMetadata: metadata,
    weightsSha256: sha256(bytes),
  };
  return { modelJson: JSON.stringify(json, null, 1), weights: bytes };
}

/** Parses model.json; a missing or malformed field is a StateError naming it. */
export function parseModelJson(text: string, what = 'model.json'): ModelJson {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new StateError(`${what} is not valid JSON: ${(err as Error).message}`);
  }
  const parsed = ModelJson.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new StateError(`${what} is not a modestream expert checkpoint: ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  return parsed.data;
}

export function deserializeModel(modelJson: string, weights: Uint8Array, what = 'checkpoint'): { model: ExpertModel; metadata: Record<string, unknown> } {
  const json = parseModelJson(modelJson, `${what}/model.json`);
  if (sha256(weights) !== json.weightsSha256) throw new StateError(`${what}/${WEIGHTS_FILE} is corrupt: its SHA-256 does not match model.json`);
  const tensors = decode(weights, json.weightsManifest[0]!.weights, `${what}/${WEIGHTS_FILE}`);
  try {
    return { model: modelFromTensors(json.modelTopology.architecture, tensors), metadata: json.userDefinedMetadata };
  } catch (err) {
    throw new StateError(`${what} does not match its architecture: ${(err as Error).message}`);
  } finally {
    for (const t of Object.values(tensors)) t.dispose();
  }
}

export async function serializeOptimizer(state: AdamWState): Promise<{ json: string; weights: Uint8Array }> {
  const tensors: [string, tf.Tensor][] = [...[...state.m].map(([n, t]) => [`m/${n}`, t] as [string, tf.Tensor]), ...[...state.v].map(([n, t]) => [`v/${n}`, t] as [string, tf.Tensor])];
  const { bytes, specs } = await encode(tensors);
  return { json: JSON.stringify({ format: 'modestream-adamw', step: state.step, weights: specs, weightsSha256: sha256(bytes) }), weights: bytes };
}

export function deserializeOptimizer(json: string, weights: Uint8Array, model: ExpertModel, what = 'checkpoint'): AdamWState {
  let parsed: z.infer<typeof OptimizerJson>;
  try {
    parsed = OptimizerJson.parse(JSON.parse(json));
  } catch (err) {
    throw new StateError(`${what}/optimizer.json is unreadable: ${(err as Error).message.split('\n')[0]}`);
  }
  if (sha256(weights) !== parsed.weightsSha256) throw new StateError(`${what}/${OPTIMIZER_WEIGHTS_FILE} is corrupt: its SHA-256 does not match optimizer.json`);
  const tensors = decode(weights, parsed.weights, `${what}/${OPTIMIZER_WEIGHTS_FILE}`);
  const m = new Map<string, tf.Variable>();
  const v = new Map<string, tf.Variable>();
  for (const [name, param] of model.params) {
    const [tm, tv] = [tensors[`m/${name}`], tensors[`v/${name}`]];
    if (!tm || !tv || tm.shape.join('x') !== param.shape.join('x')) throw new StateError(`${what}: optimizer state does not match parameter ${name}`);
    m.set(name, tf.variable(tm, false));
    v.set(name, tf.variable(tv, false));
  }
  for (const t of Object.values(tensors)) t.dispose();
  return { step: parsed.step, m, v };
}
