/**
 * A local model directory for the onnx and tfjs-graph embedders: where the model file and the
 * tokenizer are, what config.json says, and a content hash for the fingerprint. Nothing is downloaded.
 *
 * Layout (what `optimum-cli export onnx`, `tensorflowjs_converter` and the Hugging Face hub produce):
 *   model.onnx | onnx/model.onnx      (onnx; external data beside it as model.onnx_data)
 *   model.json + weight shards        (tfjs-graph)
 *   tokenizer.json | vocab.txt + tokenizer_config.json   (in the root or beside the model file;
 *                                       do_lower_case must be stated: the casing is never guessed)
 *   config.json                       (optional: hidden_size, max_position_embeddings)
 * Missing files are ConfigErrors (the setting points at the wrong place); unreadable or corrupt ones
 * are StateErrors. Both name the file and what was expected.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { z } from 'zod';
import { ConfigError, StateError, errorMessage } from '../errors.js';
import {
  TokenizerConfigJson,
  tokenizerFromJson,
  tokenizerFromVocabTxt,
  type WordPieceTokenizer,
} from './tokenizer.js';

export type ModelKind = 'onnx' | 'tfjs-graph';

const MODEL_FILES: Record<ModelKind, readonly string[]> = {
  onnx: ['model.onnx', 'onnx/model.onnx'],
  'tfjs-graph': ['model.json'],
};

/** The parts of a Hugging Face config.json that bound what we may feed the model. */
export const ModelConfigJson = z
  .object({
    hidden_size: z.number().int().positive().optional(),
    max_position_embeddings: z.number().int().positive().optional(),
    model_type: z.string().optional(),
  })
  .loose();

export interface ModelDir {
  dir: string;
  kind: ModelKind;
  /** model.onnx or model.json (absolute). */
  modelFile: string;
  /** tokenizer.json, or vocab.txt plus tokenizer_config.json (absolute): they define the ids. */
  tokenizerFiles: string[];
  tokenizer: WordPieceTokenizer;
  hiddenSize?: number;
  maxPositions?: number;
}

export interface ReadModelDirOptions {
  dir: string;
  kind: ModelKind;
  /** Checked against config.json's max_position_embeddings: more positions than the model has fail inside it. */
  maxTokens: number;
}

export async function readModelDir({ dir, kind, maxTokens }: ReadModelDirOptions): Promise<ModelDir> {
  const root = resolve(dir);
  if (!(await isDirectory(root))) {
    throw new ConfigError(`embedder.dir "${dir}" is not a directory: expected a local ${kind} model directory (see docs/embedders.md)`);
  }
  const modelFile = await firstFile(root, MODEL_FILES[kind]);
  if (!modelFile) {
    throw new ConfigError(`no ${kind} model in "${dir}": expected ${MODEL_FILES[kind].join(' or ')}`);
  }
  // Tokenizer files sit in the root (hub layout) or beside the model file (optimum's output folder).
  const tokenizerDirs = [...new Set([root, dirname(modelFile)])];
  const { tokenizer, tokenizerFiles } = await readTokenizer(tokenizerDirs, dir);
  const config = await readJsonIfPresent(join(root, 'config.json'), ModelConfigJson);
  const maxPositions = config?.max_position_embeddings;
  if (maxPositions !== undefined && maxTokens > maxPositions) {
    throw new ConfigError(
      `embedder.maxTokens=${maxTokens} exceeds the model's max_position_embeddings=${maxPositions} (config.json in "${dir}")`,
    );
  }
  const out: ModelDir = { dir: root, kind, modelFile, tokenizerFiles, tokenizer };
  if (config?.hidden_size !== undefined) out.hiddenSize = config.hidden_size;
  if (maxPositions !== undefined) out.maxPositions = maxPositions;
  return out;
}

async function readTokenizer(dirs: readonly string[], shownDir: string) {
  const json = await firstFile(dirs, ['tokenizer.json']);
  // tokenizer.json describes the whole pipeline (its normalizer states the casing); vocab.txt needs
  // tokenizer_config.json for it, and the builder refuses a vocab.txt whose casing nobody states.
  if (json) return { tokenizerFiles: [json], tokenizer: tokenizerFromJson(await readJson(json), json) };
  const vocab = await firstFile(dirs, ['vocab.txt']);
  if (!vocab) {
    throw new ConfigError(
      `no tokenizer in "${shownDir}": expected tokenizer.json (Hugging Face, WordPiece) or vocab.txt with a tokenizer_config.json stating do_lower_case`,
    );
  }
  const configFile = join(dirname(vocab), 'tokenizer_config.json');
  const config = await readJsonIfPresent(configFile, TokenizerConfigJson);
  const text = await readText(vocab);
  return {
    tokenizerFiles: [vocab, configFile],
    tokenizer: tokenizerFromVocabTxt(config ? { text, config } : { text }, vocab),
  };
}

/** Reads and parses a JSON file; corrupt JSON or a schema mismatch is a StateError naming the file. */
export async function readJson(file: string): Promise<unknown> {
  const text = await readText(file);
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new StateError(`${file} is not valid JSON: ${errorMessage(err)}`, { cause: err });
  }
}

async function readJsonIfPresent<T extends z.ZodType>(file: string, schema: T): Promise<z.infer<T> | undefined> {
  if (!(await isFile(file))) return undefined;
  const parsed = schema.safeParse(await readJson(file));
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new StateError(`${file} has unexpected contents: ${problems}`);
  }
  return parsed.data;
}

async function readText(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    throw new StateError(`cannot read ${file}: ${errorMessage(err)}`, { cause: err });
  }
}

/**
 * Resolves a path that a model file names (a weight shard) inside `dir`, refusing absolute paths and
 * `..` escapes: a model directory must not make us read arbitrary files.
 */
export function resolveInside(dir: string, name: string, referrer: string): string {
  const full = resolve(dir, name);
  const rel = relative(dir, full);
  if (rel === '' || rel.startsWith('..') || resolve(dir, rel) !== full) {
    throw new StateError(`${referrer} names "${name}", which is outside its directory ${dir}`);
  }
  return full;
}

/**
 * sha256 over each file's name, size and bytes, in order: the fingerprint must change when any weight
 * or the vocabulary changes (centroid epochs store it). Hashing a 400 MB model takes about a second.
 */
export async function hashFiles(files: readonly string[]): Promise<string> {
  const all = createHash('sha256');
  for (const file of files) {
    const { sha256, bytes } = await digestFile(file);
    all.update(`${basename(file)}\0${bytes}\0${sha256}\n`);
  }
  return all.digest('hex');
}

export interface Digest {
  sha256: string;
  bytes: number;
}

/** One file's sha256 and size, streamed (models are tens of MB); unreadable is a StateError naming it. */
export async function digestFile(path: string): Promise<Digest> {
  const hash = createHash('sha256');
  let bytes = 0;
  try {
    for await (const chunk of createReadStream(path)) {
      hash.update(chunk as Buffer);
      bytes += (chunk as Buffer).length;
    }
  } catch (err) {
    throw new StateError(`cannot read ${path}: ${errorMessage(err)}`, { cause: err });
  }
  return { sha256: hash.digest('hex'), bytes };
}

/** Short hex prefix used in fingerprints: 96 bits tell models apart without bloating stored records. */
export const shortHash = (hex: string): string => hex.slice(0, 24);

async function firstFile(dirs: string | readonly string[], names: readonly string[]): Promise<string | undefined> {
  for (const dir of typeof dirs === 'string' ? [dirs] : dirs) {
    for (const name of names) {
      const file = join(dir, name);
      if (await isFile(file)) return file;
    }
  }
  return undefined;
}

async function isFile(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined))?.isFile() ?? false;
}

async function isDirectory(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined))?.isDirectory() ?? false;
}

/** ONNX external-data files that exporters write next to the model (model.onnx_data, model.onnx.data). */
export async function onnxExternalData(modelFile: string): Promise<string[]> {
  const found: string[] = [];
  for (const suffix of ['_data', '.data']) {
    if (await isFile(modelFile + suffix)) found.push(modelFile + suffix);
  }
  return found;
}
