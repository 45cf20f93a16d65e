/**
 * `modestream snapshot export --format onnx`: one published ensemble snapshot as ONNX models that ONNX
 * Runtime (Python, C++, Java...) can run without modestream, plus a JSON manifest with what the MoDE
 * ensemble needs around them (fine centers, their experts, the routing formula and constants, the prompt
 * templates, the caption encoder the text towers read).
 *
 *   <out>/seed.image.onnx, seed.text.onnx              the seed model's towers (when the snapshot has one)
 *   <out>/expert-<id>.image.onnx, expert-<id>.text.onnx each expert with its own model; an expert still
 *                                                        serving with the seed points at the seed's files
 *   <out>/centroids.bin                                 fine centers, float32 little-endian, [m, dim]
 *   <out>/manifest.json ...... see OnnxExportManifest (written last: its presence means complete)
 *
 * The snapshot's files are verified against its manifest (size and SHA-256) and each model's weights
 * against its model.json, as the client does. Every output file is written to a temporary name, fsynced
 * and renamed, so a reader never sees a half-written file.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { DEFAULT_PROMPTS } from '../src/ensemble/ensemble.js';
import { StateError } from '../src/errors.js';
import { parseModelJson } from '../src/expert/checkpoint.js';
import type { ExpertArchitecture } from '../src/expert/model.js';
import { BATCH_DIM, imageInputOf, imageTowerOnnx, L2_EPSILON, ONNX_OPSET, OUTPUT, TEXT_INPUT, textTowerOnnx, type ExpertWeights } from '../src/onnx/expert-graph.js';
import type { SnapshotManifest } from '../src/snapshot/manifest.js';
import { writeFileAtomically } from '../state/artifacts.js';
import { expertName, SEED } from '../state/models.js';
import { createSnapshotStore } from '../state/snapshots.js';

export const ONNX_EXPORT_FORMAT = 'modestream-onnx-export';
export const ONNX_MANIFEST_FILE = 'manifest.json';
export const ONNX_CENTERS_FILE = 'centroids.bin';

export interface OnnxModelEntry {
  files: { image: string; text: string };
  /** The snapshot model it came from (its version and model.json name). */
  modelVersion: number;
  source: string;
  /** exp(min(logit_scale, log(logitScaleMax))): CLIP's temperature. The ensemble itself mixes plain cosines. */
  logitScale: number;
  architecture: ExpertArchitecture;
}

export interface OnnxExportManifest {
  format: typeof ONNX_EXPORT_FORMAT;
  formatVersion: 1;
  /** The snapshot version exported. */
  version: number;
  snapshotCreatedAt: string;
  exportedAt: string;
  opset: number;
  /** Tensor names and layouts every tower uses; N is the dynamic batch dimension. */
  io: {
    image: { name: string; shape: (number | string)[]; layout: string };
    text: { name: string; shape: (number | string)[] };
    output: { name: string; shape: (number | string)[]; normalization: string };
  };
  seed: OnnxModelEntry | null;
  experts: (OnnxModelEntry & { id: number; fineClusters: number; sharesSeed: boolean })[];
  fineCenters: { file: string; dtype: 'float32'; byteOrder: 'little'; shape: [number, number]; sha256: string; fineIds: number[]; epoch: number };
  /** Expert id of each fine center, in row order of fineCenters. */
  fineToExpert: number[];
  routing: {
    formula: SnapshotManifest['routing']['formula'];
    constants: SnapshotManifest['routing']['constants'];
    description: Record<string, string>;
  };
  /** Zero-shot prompt templates ("{}" is the class name); a class's text embedding is the renormalised mean over them. */
  prompts: string[];
  /** The caption encoder whose embeddings the text towers (and routing) read; not exported here. */
  captionEncoder: { kind: string; model?: string; fingerprint: string; dim: number; settings: SnapshotManifest['embedder']['settings'] };
}

export interface OnnxExportOptions {
  /** The snapshots root (versions v000001/..., CURRENT). */
  snapshotsDir: string;
  /** Default: the latest (CURRENT). */
  version?: number;
  outDir: string;
  /** Written into each model's metadata_props. */
  producerVersion?: string;
}

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** A snapshot model's weights, verified against its model.json, as Float32Arrays by parameter name. */
export function decodeModelWeights(modelJson: string, weights: Uint8Array, what: string): { architecture: ExpertArchitecture; weights: ExpertWeights } {
  const json = parseModelJson(modelJson, what);
  if (sha256(weights) !== json.weightsSha256) throw new StateError(`${what}: weights are corrupt (SHA-256 differs from model.json)`);
  const specs = json.weightsManifest[0]!.weights;
  const expected = specs.reduce((sum, s) => sum + 4 * s.shape.reduce((a, b) => a * b, 1), 0);
  if (weights.byteLength !== expected) throw new StateError(`${what}: weights hold ${weights.byteLength} bytes, model.json describes ${expected}`);
  const out: ExpertWeights = {};
  let offset = 0;
  for (const spec of specs) {
    const size = spec.shape.reduce((a, b) => a * b, 1);
    const values = new Float32Array(size);
    new Uint8Array(values.buffer).set(weights.subarray(offset, offset + 4 * size));
    out[spec.name] = values;
    offset += 4 * size;
  }
  return { architecture: json.modelTopology.architecture, weights: out };
}

function logitScaleOf(a: ExpertArchitecture, weights: ExpertWeights): number {
  const raw = weights['logit_scale']?.[0];
  if (raw === undefined) throw new StateError('model has no logit_scale');
  return Math.exp(Math.min(raw, Math.log(a.logitScaleMax)));
}

export async function exportSnapshotOnnx(options: OnnxExportOptions): Promise<OnnxExportManifest> {
  const store = createSnapshotStore({ dir: options.snapshotsDir });
  const version = options.version ?? (await store.latest());
  if (version === undefined) throw new StateError(`${options.snapshotsDir} holds no snapshot (no CURRENT); publish one with modestream snapshot`);
  const found = await store.manifest(version);
  if (!found) throw new StateError(`snapshot v${version} does not exist in ${options.snapshotsDir} (versions: ${(await store.versions()).join(', ') || 'none'})`);
  const { manifest } = found;
  const what = `snapshot v${version}`;

  const read = async (name: string): Promise<Uint8Array> => {
    const located = await store.filePath(version, name);
    if (!located) throw new StateError(`${what}: ${name} is not listed in its manifest or is missing`);
    const bytes = await readFile(located.path);
    if (bytes.byteLength !== located.entry.bytes || sha256(bytes) !== located.entry.sha256) throw new StateError(`${what}: ${name} is corrupt (size or SHA-256 differs from the manifest)`);
    return bytes;
  };

  await mkdir(options.outDir, { recursive: true });
  const exported = new Map<string, OnnxModelEntry>();
  /** Converts one snapshot model (once per model.json) to `<base>.image.onnx` / `<base>.text.onnx`. */
  const exportModel = async (base: string, ref: SnapshotManifest['experts'][number] | NonNullable<SnapshotManifest['seed']>, meta: Record<string, string>): Promise<OnnxModelEntry> => {
    const done = exported.get(ref.files.json);
    if (done) return done;
    const jsonText = Buffer.from(await read(ref.files.json)).toString();
    const { architecture, weights } = decodeModelWeights(jsonText, await read(ref.files.weights), `${what}/${ref.files.json}`);
    const towerOptions = {
      metadata: { snapshotVersion: String(version), model: base, modelVersion: String(ref.version), ...meta },
      ...(options.producerVersion ? { producerVersion: options.producerVersion } : {}),
    };
    const files = { image: `${base}.image.onnx`, text: `${base}.text.onnx` };
    await writeFileAtomically(options.outDir, files.image, imageTowerOnnx(architecture, weights, { ...towerOptions, metadata: { ...towerOptions.metadata, tower: 'image' } }));
    await writeFileAtomically(options.outDir, files.text, textTowerOnnx(architecture, weights, { ...towerOptions, metadata: { ...towerOptions.metadata, tower: 'text' } }));
    const entry: OnnxModelEntry = { files, modelVersion: ref.version, source: ref.files.json, logitScale: logitScaleOf(architecture, weights), architecture };
    exported.set(ref.files.json, entry);
    return entry;
  };

  const seed = manifest.seed ? await exportModel(SEED, manifest.seed, { role: 'seed' }) : null;
  const experts: OnnxExportManifest['experts'] = [];
  for (const e of manifest.experts) {
    const entry = await exportModel(expertName(e.id), e, { role: 'expert', expert: String(e.id) });
    experts.push({ id: e.id, ...entry, fineClusters: e.fineClusters, sharesSeed: manifest.seed !== null && e.files.json === manifest.seed.files.json });
  }

  const centers = await read(manifest.centroids.file);
  const m = manifest.centroids.fineIds.length;
  if (centers.byteLength !== 4 * m * manifest.centroids.dim) throw new StateError(`${what}: ${manifest.centroids.file} does not hold ${m} centers of dim ${manifest.centroids.dim}`);
  await writeFileAtomically(options.outDir, ONNX_CENTERS_FILE, centers);

  const first = seed ?? experts[0];
  const architecture = first?.architecture;
  const imageIo = architecture ? imageInputOf(architecture) : { name: 'pixels', shape: [BATCH_DIM] };
  const settings = manifest.embedder.settings;
  const result: OnnxExportManifest = {
    format: ONNX_EXPORT_FORMAT,
    formatVersion: 1,
    version,
    snapshotCreatedAt: manifest.createdAt,
    exportedAt: new Date().toISOString(),
    opset: ONNX_OPSET,
    io: {
      image: {
        ...imageIo,
        layout: architecture?.imageInput.kind === 'embedding' ? 'precomputed image embedding [N, dim]' : 'NHWC float32 pixels in [0, 1] (byte / 255), bilinear-resized to H x W, grey<->RGB by repeat/average',
      },
      text: { name: TEXT_INPUT, shape: [BATCH_DIM, architecture?.textDim ?? manifest.embedder.dim] },
      output: { name: OUTPUT, shape: [BATCH_DIM, architecture?.projection ?? 0], normalization: `x / sqrt(sum(x^2) + ${L2_EPSILON})` },
    },
    seed,
    experts,
    fineCenters: { file: ONNX_CENTERS_FILE, dtype: 'float32', byteOrder: 'little', shape: [m, manifest.centroids.dim], sha256: sha256(centers), fineIds: manifest.centroids.fineIds, epoch: manifest.centroids.epoch },
    fineToExpert: manifest.centroids.fineToExpert,
    routing: {
      formula: manifest.routing.formula,
      constants: manifest.routing.constants,
      description: {
        nearest: "each task text (a class: its prompts' caption embeddings averaged and renormalised) is assigned its nearest fine center s(l) by L2 distance d_l; its expert is fineToExpert[s(l)]",
        code: 'kappa = 5 log10(max(10, |L| - 200)); a = exp(0.5 - sqrt|L|) if |L| < 10 else 0; W_c = sum over l with expert c of exp(kappa (a - d_l)); p = softmax(W / codeTemperature)',
        paper: 'p(c|T) proportional to exp(sum over l with expert c of exp(-d_l^2 / paperLambda))',
        uniform: 'p = 1 / experts',
        mix: "scores = sum_c p_c * cosine(image embedding_c, text embedding_c) over the experts (each expert's own towers)",
      },
    },
    prompts: [...DEFAULT_PROMPTS],
    captionEncoder: {
      kind: settings.kind,
      ...('model' in settings && settings.model ? { model: settings.model } : {}),
      fingerprint: manifest.embedder.fingerprint,
      dim: manifest.embedder.dim,
      settings,
    },
  };
  await writeFileAtomically(options.outDir, ONNX_MANIFEST_FILE, `${JSON.stringify(result, null, 1)}\n`);
  return result;
}
