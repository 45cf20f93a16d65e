/**
 * A pretrained BERT-style sentence encoder exported to ONNX, run with onnxruntime-node on the CPU.
 * onnxruntime-node is an optional peer dependency, imported only when this embedder is configured.
 *
 * Feeds input_ids / attention_mask / token_type_ids (those the model declares, int64 or int32).
 * Output: `last_hidden_state`, else the first rank-3 output (token states, pooled here), else a rank-2
 * output (the export already pools: used as is, `pooling` does not apply). Rows are L2-normalised.
 */
import type * as Ort from 'onnxruntime-node';
import { OnnxEmbedderConfig } from '../config.js';
import { EnvironmentError, StateError, errorMessage } from '../errors.js';
import type { CaptionEmbedder, ResolvedEmbedderSettings } from './types.js';
import { onnxExternalData, readModelDir, type ModelDir } from './model-dir.js';
import { normalizeRows, poolTokenStates, type Pooling } from './pooling.js';
import { padBatch, type EncodedBatch } from './tokenizer.js';
import { FEEDABLE, encoderEmbedder, feedValues, parseEncoderSettings, type BatchResult, type Feedable } from './batching.js';

export type OnnxEmbedderSettings = ResolvedEmbedderSettings<'onnx'>;

/** Bump when feeding, output choice or pooling changes: the fingerprint must change with the space. */
const ALGORITHM = 'onnx-v1';

type OrtModule = typeof Ort;

interface InputPlan {
  name: Feedable;
  type: 'int64' | 'int32';
}

export async function createOnnxEmbedder(settings: OnnxEmbedderSettings): Promise<CaptionEmbedder> {
  return createOnnxEncoder(settings);
}

/** The onnx embedder plus direct access to the model with token ids (static-embedder distillation). */
export interface OnnxEncoder extends CaptionEmbedder {
  readonly model: ModelDir;
  /** Every file whose bytes define the model, for fingerprints of what is derived from it. */
  readonly modelFiles: readonly string[];
  /**
   * Pools id sequences given as is (the caller adds [CLS]/[SEP]) with the same feeding and pooling as
   * embed(): rows.length x dim, L2-normalised. Distillation feeds one vocabulary token per row.
   */
  embedIds(rows: readonly (readonly number[])[]): Promise<Float32Array>;
}

export async function createOnnxEncoder(settings: OnnxEmbedderSettings): Promise<OnnxEncoder> {
  const { maxTokens, pooling, threads } = parseEncoderSettings(OnnxEmbedderConfig, settings, 'onnx');
  const model = await readModelDir({ dir: settings.dir, kind: 'onnx', maxTokens });
  const ort = await loadOrt();
  const session = await openSession(ort, model, threads);
  try {
    const inputs = planInputs(session, model.modelFile);
    const output = planOutput(session, model.modelFile);
    const run = (batch: EncodedBatch) => runBatch({ ort, session, inputs, output, batch, pooling, file: model.modelFile });

    const modelFiles = [model.modelFile, ...(await onnxExternalData(model.modelFile))];
    const embedder = await encoderEmbedder({
      algorithm: ALGORITHM,
      modelDir: model,
      modelFiles,
      output,
      pooling,
      maxTokens,
      run,
      release: () => void session.release().catch(() => undefined),
    });
    let disposed = false;
    const embedIds = async (rows: readonly (readonly number[])[]): Promise<Float32Array> => {
      // The session is released on dispose(); running it afterwards would fail inside onnxruntime.
      if (disposed) throw new StateError(`${ALGORITHM} encoder used after dispose()`);
      if (rows.length === 0) return new Float32Array(0);
      const result = await run(padBatch(rows, model.tokenizer.padId));
      if (result.dim !== embedder.dim) throw new StateError(`model output changed dimension: ${result.dim}, expected ${embedder.dim}`);
      return result.rows;
    };
    const dispose = () => {
      disposed = true;
      embedder.dispose();
    };
    return { ...embedder, model, modelFiles, embedIds, dispose };
  } catch (err) {
    void session.release().catch(() => undefined);
    throw err;
  }
}

async function loadOrt(): Promise<OrtModule> {
  try {
    return (await import('onnxruntime-node')) as OrtModule;
  } catch (err) {
    throw ortLoadError(err);
  }
}

/** What to tell the user when `import('onnxruntime-node')` fails: missing (install it) or broken. */
export function ortLoadError(err: unknown): EnvironmentError {
  const missing = (err as { code?: string } | null)?.code === 'ERR_MODULE_NOT_FOUND';
  return new EnvironmentError(
    missing
      ? 'the "onnx" embedder needs the optional package onnxruntime-node: run `npm install onnxruntime-node`'
      : `onnxruntime-node is installed but failed to load: ${errorMessage(err)}`,
    { cause: err },
  );
}

async function openSession(ort: OrtModule, model: ModelDir, threads: number): Promise<Ort.InferenceSession> {
  try {
    return await ort.InferenceSession.create(model.modelFile, {
      executionProviders: ['cpu'],
      // One session per router thread: parallelism comes from threads x intra-op threads, set explicitly
      // because onnxruntime's default (every core) oversubscribes the machine when several routers run.
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      graphOptimizationLevel: 'all',
      logSeverityLevel: 3,
    });
  } catch (err) {
    throw new StateError(`onnxruntime cannot load ${model.modelFile}: ${errorMessage(err)}`, { cause: err });
  }
}

type ValueMetadata = Ort.InferenceSession.ValueMetadata;

/** inputMetadata/outputMetadata arrived in onnxruntime 1.21; older peers have names only. */
function metadataOf(session: Ort.InferenceSession, side: 'input' | 'output'): readonly ValueMetadata[] {
  const meta = side === 'input' ? session.inputMetadata : session.outputMetadata;
  return Array.isArray(meta) ? meta : [];
}

function planInputs(session: Ort.InferenceSession, file: string): InputPlan[] {
  const meta = new Map(metadataOf(session, 'input').map((m) => [m.name, m]));
  const unknown = session.inputNames.filter((n) => !(FEEDABLE as readonly string[]).includes(n));
  if (unknown.length > 0) {
    throw new StateError(`${file} declares inputs modestream cannot feed: ${unknown.join(', ')} (expected ${FEEDABLE.join(', ')})`);
  }
  if (!session.inputNames.includes('input_ids')) throw new StateError(`${file} has no input_ids input`);
  return session.inputNames.map((name) => {
    const m = meta.get(name);
    const type = m?.isTensor ? m.type : 'int64';
    if (type !== 'int64' && type !== 'int32') throw new StateError(`${file}: input ${name} is ${type}, expected int64 or int32`);
    return { name: name as Feedable, type };
  });
}

/** The output to read, by name and declared rank; the actual rank of each run decides how it is used. */
function planOutput(session: Ort.InferenceSession, file: string): string {
  const names = session.outputNames;
  if (names.length === 0) throw new StateError(`${file} has no outputs`);
  const rankOf = (name: string): number | undefined => {
    const m = metadataOf(session, 'output').find((x) => x.name === name);
    return m?.isTensor && m.shape.length > 0 ? m.shape.length : undefined;
  };
  return (
    names.find((n) => n === 'last_hidden_state') ??
    names.find((n) => rankOf(n) === 3) ??
    names.find((n) => n === 'sentence_embedding') ??
    names.find((n) => rankOf(n) === 2) ??
    names[0]!
  );
}

interface RunOptions {
  ort: OrtModule;
  session: Ort.InferenceSession;
  inputs: readonly InputPlan[];
  output: string;
  batch: EncodedBatch;
  pooling: Pooling;
  file: string;
}

async function runBatch({ ort, session, inputs, output, batch, pooling, file }: RunOptions): Promise<BatchResult> {
  const source = feedValues(batch);
  const shape = [batch.batch, batch.seqLen];
  const feeds: Record<string, Ort.Tensor> = {};
  for (const { name, type } of inputs) {
    const data = source[name];
    feeds[name] = type === 'int64' ? new ort.Tensor('int64', BigInt64Array.from(data, (v) => BigInt(v)), shape) : new ort.Tensor('int32', data, shape);
  }
  let result: Ort.InferenceSession.ReturnType;
  try {
    result = await session.run(feeds, [output]);
  } catch (err) {
    throw new StateError(`onnxruntime failed to run ${file}: ${errorMessage(err)}`, { cause: err });
  }
  const tensor = result[output];
  if (!tensor) throw new StateError(`${file} returned no ${output}`);
  try {
    if (tensor.type !== 'float32') throw new StateError(`${file}: output ${output} is ${tensor.type}, expected float32`);
    const data = tensor.data as Float32Array;
    const dims = tensor.dims;
    if (dims.length === 3 && dims[0] === batch.batch && dims[1] === batch.seqLen) {
      const dim = dims[2]!;
      const rows = poolTokenStates({ hidden: data, batch: batch.batch, seqLen: batch.seqLen, dim, mask: batch.attentionMask }, pooling);
      return { rows, dim, tokenLevel: true };
    }
    if (dims.length === 2 && dims[0] === batch.batch) {
      const dim = dims[1]!;
      return { rows: normalizeRows(Float32Array.from(data), dim), dim, tokenLevel: false };
    }
    throw new StateError(
      `${file}: output ${output} has shape [${dims.join(', ')}]; expected [batch, tokens, hidden] or [batch, dim] ` +
        `for a batch of ${batch.batch}x${batch.seqLen}`,
    );
  } finally {
    tensor.dispose();
  }
}
