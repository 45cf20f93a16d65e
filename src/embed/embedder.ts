/**
 * Caption embedders: captions -> L2-normalised vectors in a space that fine centers live in.
 * Centers store the embedder's fingerprint, so routing can refuse centers built in another space.
 */
import type { EmbedderSettings } from '../config.js';
import { createHashedEmbedder } from './hashed.js';

export interface CaptionEmbedder {
  readonly dim: number;
  /** Stable fingerprint of the embedding space (kind + every parameter); centers store it. */
  readonly fingerprint: string;
  /** Row-major n x dim, each row L2-normalised (an all-zero row only if the caption has no features). */
  embed(captions: readonly string[]): Promise<Float32Array>;
  dispose(): void;
}

/**
 * Async because model-backed embedders (onnx, tfjs-graph) load files before they can embed. Their
 * modules load on demand, so the default embedder never pays for tfjs or onnxruntime start-up.
 */
export async function createEmbedder(settings: EmbedderSettings): Promise<CaptionEmbedder> {
  switch (settings.kind) {
    case 'hashed':
      return createHashedEmbedder(settings);
    case 'onnx':
      return (await import('./onnx.js')).createOnnxEmbedder(settings);
    case 'tfjs-graph':
      return (await import('./tfjs-graph.js')).createTfjsGraphEmbedder(settings);
  }
}
