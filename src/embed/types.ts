/**
 * What every caption embedder implements, apart from the factory (embedder.ts) that picks one: the
 * embedders import these, and the factory imports the embedders, so the two cannot share a module.
 */
import type { EmbedderSettings } from '../config.js';

export interface CaptionEmbedder {
  readonly dim: number;
  /** Stable fingerprint of the embedding space (kind + every parameter); centers store it. */
  readonly fingerprint: string;
  /** Row-major n x dim, each row L2-normalised (an all-zero row only if the caption has no features). */
  embed(captions: readonly string[]): Promise<Float32Array>;
  dispose(): void;
}

/** Settings of a model-backed kind with its directory resolved (`model` names become paths). */
export type ResolvedEmbedderSettings<K extends EmbedderSettings['kind'] = EmbedderSettings['kind']> = Extract<EmbedderSettings, { kind: K }> &
  (K extends 'hashed' ? unknown : { dir: string });
