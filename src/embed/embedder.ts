/**
 * Caption embedders: captions -> L2-normalised vectors in a space that fine centers live in.
 * Centers store the embedder's fingerprint, so routing can refuse centers built in another space.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { EmbedderSettings } from '../config.js';
import { ConfigError } from '../errors.js';
import { createHashedEmbedder } from './hashed.js';
import type { CaptionEmbedder, ResolvedEmbedderSettings } from './types.js';

// Callers outside src/embed get the types with the factory, from one module.
export type { CaptionEmbedder, ResolvedEmbedderSettings } from './types.js';

/** Where a pulled model keeps the static embedder distilled from it. */
export const STATIC_SUBDIR = 'static';

/** A `model` name that `modestream models pull` has not fetched yet: the message says what to run. */
export class ModelNotPulledError extends ConfigError {}

export interface EmbedderContext {
  /** Where pulled models live (`modelsDir` in the config). */
  modelsDir: string;
  /** Tells whether a path exists; injected so that resolution stays free of I/O in tests. */
  exists?: (path: string) => boolean;
}

/**
 * Turns `model: "minilm-l6"` into the directory `modestream models pull` wrote. A missing model is an
 * error that names the command to run: routing must never fall back silently to another space.
 */
export function resolveEmbedderSettings(settings: EmbedderSettings, { modelsDir, exists }: EmbedderContext): ResolvedEmbedderSettings {
  if (settings.kind === 'hashed') return settings;
  const { dir, model } = settings as { dir?: string; model?: string };
  if ((dir === undefined) === (model === undefined)) {
    throw new ConfigError(`embedder (${settings.kind}): set exactly one of embedder.model (a pulled model, see \`modestream models list\`) or embedder.dir (a local model directory)`);
  }
  if (dir !== undefined) return { ...settings, dir } as ResolvedEmbedderSettings;
  const modelDir = join(modelsDir, model!);
  const resolved = settings.kind === 'static' ? join(modelDir, STATIC_SUBDIR) : modelDir;
  if (exists && !exists(resolved)) {
    throw new ModelNotPulledError(
      `the ${settings.kind} embedder needs the model "${model}", which is not in ${modelsDir}: run \`npx modestream models pull ${model}\`` +
        ` (or choose another embedder, e.g. --set embedder.kind=hashed)`,
    );
  }
  return { ...settings, dir: resolved } as ResolvedEmbedderSettings;
}

/**
 * Async because model-backed embedders (onnx, tfjs-graph, static) load files before they can embed.
 * Their modules load on demand, so the hashed embedder never pays for tfjs or onnxruntime start-up.
 */
export async function createEmbedder(settings: EmbedderSettings, context: EmbedderContext): Promise<CaptionEmbedder> {
  const resolved = resolveEmbedderSettings(settings, { exists: existsSync, ...context });
  switch (resolved.kind) {
    case 'hashed':
      return createHashedEmbedder(resolved);
    case 'onnx':
      return (await import('./onnx.js')).createOnnxEmbedder(resolved as ResolvedEmbedderSettings<'onnx'>);
    case 'tfjs-graph':
      return (await import('./tfjs-graph.js')).createTfjsGraphEmbedder(resolved as ResolvedEmbedderSettings<'tfjs-graph'>);
    case 'static':
      return (await import('./static.js')).createStaticEmbedder(resolved as ResolvedEmbedderSettings<'static'>);
  }
}
