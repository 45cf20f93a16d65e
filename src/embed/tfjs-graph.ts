/**
 * A pretrained BERT-style sentence encoder converted to a TensorFlow.js graph model
 * (`tensorflowjs_converter --output_format=tfjs_graph_model`), run on the active tfjs backend.
 * Same inputs, output choice and pooling as the onnx embedder; pooling runs on the backend so only
 * [batch, dim] comes back to the CPU.
 */
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { TfjsGraphEmbedderConfig } from '../config.js';
import { ConfigError, StateError, errorMessage } from '../errors.js';
import { FEEDABLE, encoderEmbedder, feedValues, parseEncoderSettings, type BatchResult, type Feedable } from './batching.js';
import type { CaptionEmbedder, ResolvedEmbedderSettings } from './types.js';
import { readJson, readModelDir, resolveInside } from './model-dir.js';
import type { Pooling } from './pooling.js';
import type { EncodedBatch } from './tokenizer.js';

export type TfjsGraphEmbedderSettings = ResolvedEmbedderSettings<'tfjs-graph'>;

/** Bump when feeding, output choice or pooling changes: the fingerprint must change with the space. */
const ALGORITHM = 'tfjs-graph-v1';


const WeightEntry = z
  .object({
    name: z.string(),
    shape: z.array(z.number().int().min(0)),
    dtype: z.enum(['float32', 'int32', 'bool', 'string', 'complex64']),
    quantization: z.object({ dtype: z.enum(['uint8', 'uint16', 'float16']) }).loose().optional(),
  })
  .loose();

/** model.json as tensorflowjs_converter writes it for graph models. */
export const GraphModelJson = z
  .object({
    format: z.string().optional(),
    generatedBy: z.string().optional(),
    convertedBy: z.string().nullable().optional(),
    modelTopology: z.object({ node: z.array(z.unknown()) }).loose(),
    weightsManifest: z.array(z.object({ paths: z.array(z.string()).min(1), weights: z.array(WeightEntry) }).loose()),
    signature: z.record(z.string(), z.unknown()).optional(),
    userDefinedMetadata: z.record(z.string(), z.unknown()).optional(),
    modelInitializer: z.record(z.string(), z.unknown()).optional(),
    initializerSignature: z.record(z.string(), z.unknown()).optional(),
  })
  .loose();
type GraphModelJson = z.infer<typeof GraphModelJson>;

const BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1, complex64: 8, uint8: 1, uint16: 2, float16: 2 };

export interface GraphModelFiles {
  json: GraphModelJson;
  /** Weight shard paths in manifest order (absolute). */
  shards: string[];
}

/** Reads and validates model.json and names its shards; corrupt or inconsistent files are StateErrors. */
export async function readGraphModelJson(modelFile: string): Promise<GraphModelFiles> {
  const parsed = GraphModelJson.safeParse(await readJson(modelFile));
  if (!parsed.success) {
    const problems = parsed.error.issues.slice(0, 5).map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new StateError(`${modelFile} is not a TensorFlow.js graph model: ${problems}`);
  }
  const json = parsed.data;
  if (json.format !== undefined && json.format !== 'graph-model') {
    throw new ConfigError(`${modelFile} has format "${json.format}"; the tfjs-graph embedder loads "graph-model" files`);
  }
  const dir = dirname(modelFile);
  const shards = json.weightsManifest.flatMap((group) => group.paths.map((p) => resolveInside(dir, p, modelFile)));
  return { json, shards };
}

/** A tf.io.IOHandler over the local file system: tfjs without tfjs-node has no file:// loader. */
export function fileSystemHandler({ json, shards }: GraphModelFiles, modelFile: string): tf.io.IOHandler {
  return {
    async load(): Promise<tf.io.ModelArtifacts> {
      const buffers: ArrayBuffer[] = [];
      for (const shard of shards) {
        let bytes: Buffer;
        try {
          bytes = await readFile(shard);
        } catch (err) {
          throw new StateError(`cannot read weight shard ${shard} named by ${modelFile}: ${errorMessage(err)}`, { cause: err });
        }
        // Copy out of Node's pooled buffer: tfjs reads whole ArrayBuffers.
        buffers.push(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer);
      }
      const weightSpecs = json.weightsManifest.flatMap((g) => g.weights) as tf.io.WeightsManifestEntry[];
      checkWeightBytes(weightSpecs, buffers, modelFile);
      const artifacts: tf.io.ModelArtifacts = {
        modelTopology: json.modelTopology as object,
        weightSpecs,
        weightData: buffers.length === 1 ? buffers[0]! : buffers,
        format: json.format ?? 'graph-model',
      };
      if (json.generatedBy !== undefined) artifacts.generatedBy = json.generatedBy;
      if (json.convertedBy !== undefined && json.convertedBy !== null) artifacts.convertedBy = json.convertedBy;
      if (json.signature) artifacts.signature = json.signature as object;
      if (json.userDefinedMetadata) artifacts.userDefinedMetadata = json.userDefinedMetadata as Record<string, object>;
      if (json.modelInitializer) artifacts.modelInitializer = json.modelInitializer as object;
      if (json.initializerSignature) artifacts.initializerSignature = json.initializerSignature as object;
      return artifacts;
    },
  };
}

/** A truncated or swapped shard would otherwise surface as a tfjs RangeError deep inside decoding. */
function checkWeightBytes(specs: readonly tf.io.WeightsManifestEntry[], buffers: readonly ArrayBuffer[], file: string): void {
  if (specs.some((s) => s.dtype === 'string')) return; // variable-length: no fixed size to check
  const expected = specs.reduce((sum, s) => {
    const bytes = BYTES[s.quantization?.dtype ?? s.dtype] ?? 0;
    return sum + s.shape.reduce((n, d) => n * d, 1) * bytes;
  }, 0);
  const actual = buffers.reduce((sum, b) => sum + b.byteLength, 0);
  if (expected !== actual) {
    throw new StateError(`${file}: its weights manifest describes ${expected} bytes but the shards hold ${actual}`);
  }
}

export async function createTfjsGraphEmbedder(settings: TfjsGraphEmbedderSettings): Promise<CaptionEmbedder> {
  const { dir, maxTokens, pooling } = parseEncoderSettings(TfjsGraphEmbedderConfig, settings, 'tfjs-graph');
  const modelDir = await readModelDir({ dir, kind: 'tfjs-graph', maxTokens });
  const files = await readGraphModelJson(modelDir.modelFile);
  let model: tf.GraphModel;
  try {
    model = await tf.loadGraphModel(fileSystemHandler(files, modelDir.modelFile));
  } catch (err) {
    if (err instanceof StateError) throw err;
    throw new StateError(`TensorFlow.js cannot load ${modelDir.modelFile}: ${errorMessage(err)}`, { cause: err });
  }
  try {
    const inputs = planInputs(model, modelDir.modelFile);
    const output = planOutput(model);
    const executor = createExecutor(model);
    const run = (batch: EncodedBatch) => runBatch({ executor, inputs, output, batch, pooling, file: modelDir.modelFile });

    return await encoderEmbedder({
      algorithm: ALGORITHM,
      modelDir,
      modelFiles: [modelDir.modelFile, ...files.shards],
      output,
      pooling,
      maxTokens,
      run,
      release: () => model.dispose(),
    });
  } catch (err) {
    model.dispose();
    throw err;
  }
}

interface InputPlan {
  /** What the model is fed under (signature key or node name). */
  key: string;
  feeds: Feedable;
}

/** `a:0` and `a` name the same tensor; converted graphs use either. */
const baseName = (name: string): string => name.replace(/:\d+$/, '');

function planInputs(model: tf.GraphModel, file: string): InputPlan[] {
  const keys = model.inputNodes;
  const plans = keys.map((key, i) => {
    const info = model.inputs[i];
    const feeds = FEEDABLE.find((f) => f === baseName(key) || f === baseName(info?.name ?? ''));
    if (!feeds) {
      throw new StateError(`${file} declares input "${key}" that modestream cannot feed (expected ${FEEDABLE.join(', ')})`);
    }
    if (info?.dtype !== undefined && info.dtype !== 'int32') {
      throw new StateError(`${file}: input "${key}" is ${info.dtype}, expected int32`);
    }
    return { key, feeds };
  });
  if (!plans.some((p) => p.feeds === 'input_ids')) throw new StateError(`${file} has no input_ids input`);
  return plans;
}

function planOutput(model: tf.GraphModel): string {
  const names = model.outputNodes;
  return names.find((n) => baseName(n) === 'last_hidden_state') ?? names.find((n) => baseName(n) === 'sentence_embedding') ?? names[0]!;
}

type Executor = (feeds: tf.NamedTensorMap, output: string) => Promise<tf.Tensor>;

/**
 * `execute` is synchronous and quiet; graphs with control flow or dynamic shapes need `executeAsync`
 * (which warns on every call for graphs that do not), so switch only when `execute` refuses.
 */
function createExecutor(model: tf.GraphModel): Executor {
  let useAsync = false;
  const single = (t: tf.Tensor | tf.Tensor[]): tf.Tensor => {
    if (!Array.isArray(t)) return t;
    t.slice(1).forEach((x) => x.dispose());
    return t[0]!;
  };
  return async (feeds, output) => {
    if (!useAsync) {
      try {
        return single(model.execute(feeds, output));
      } catch (err) {
        if (!/executeAsync/.test(errorMessage(err))) throw err;
        useAsync = true;
      }
    }
    return single(await model.executeAsync(feeds, output));
  };
}

interface RunOptions {
  executor: Executor;
  inputs: readonly InputPlan[];
  output: string;
  batch: EncodedBatch;
  pooling: Pooling;
  file: string;
}

async function runBatch({ executor, inputs, output, batch, pooling, file }: RunOptions): Promise<BatchResult> {
  const shape: [number, number] = [batch.batch, batch.seqLen];
  const source = feedValues(batch);
  const feeds: tf.NamedTensorMap = {};
  for (const { key, feeds: what } of inputs) feeds[key] = tf.tensor2d(source[what], shape, 'int32');
  const mask = tf.tensor2d(batch.attentionMask, shape, 'int32');
  let states: tf.Tensor | undefined;
  let pooled: tf.Tensor2D | undefined;
  try {
    try {
      states = await executor(feeds, output);
    } catch (err) {
      throw new StateError(`TensorFlow.js failed to run ${file}: ${errorMessage(err)}`, { cause: err });
    }
    const s = states;
    if (s.dtype !== 'float32') throw new StateError(`${file}: output ${output} is ${s.dtype}, expected float32`);
    const tokenLevel = s.rank === 3 && s.shape[0] === batch.batch && s.shape[1] === batch.seqLen;
    if (!tokenLevel && !(s.rank === 2 && s.shape[0] === batch.batch)) {
      throw new StateError(
        `${file}: output ${output} has shape [${s.shape.join(', ')}]; expected [batch, tokens, hidden] or [batch, dim] ` +
          `for a batch of ${batch.batch}x${batch.seqLen}`,
      );
    }
    pooled = tf.tidy(() => {
      let rows: tf.Tensor2D;
      if (!tokenLevel) rows = s as tf.Tensor2D;
      else if (pooling === 'cls') rows = tf.squeeze(tf.slice(s, [0, 0, 0], [-1, 1, -1]), [1]);
      // Masked sum: normalisation below removes the mean's 1/count.
      else rows = tf.sum(tf.mul(s, tf.expandDims(tf.cast(mask, 'float32'), 2)), 1);
      const norms = tf.sqrt(tf.sum(tf.square(rows), 1, true));
      // An all-zero row stays zero instead of becoming NaN.
      return tf.div(rows, tf.maximum(norms, 1e-30)) as tf.Tensor2D;
    });
    const rows = (await pooled.data()) as Float32Array;
    return { rows, dim: pooled.shape[1], tokenLevel };
  } finally {
    tf.dispose([...Object.values(feeds), mask]);
    states?.dispose();
    pooled?.dispose();
  }
}
