/**
 * A bounded caption -> embedding cache in front of any embedder. Web crawls repeat alt texts (product
 * names, "image", template captions), and a model-backed encoder costs milliseconds per caption, so an
 * exact repeat should never reach the model. Least-recently-used eviction via Map insertion order.
 * The space is unchanged (same fingerprint, same rows): the cache only skips work.
 */
import type { CaptionEmbedder } from './types.js';

export interface CacheLookups {
  hits: number;
  misses: number;
}

export interface CachedEmbedderOptions {
  /** Most captions kept; 0 returns the embedder itself. */
  entries: number;
  /** Called after every embed() with that call's hits and misses (captions that reached the model). */
  onLookups?: (lookups: CacheLookups) => void;
}

export function withEmbeddingCache(embedder: CaptionEmbedder, { entries, onLookups }: CachedEmbedderOptions): CaptionEmbedder {
  if (entries <= 0) return embedder;
  const { dim } = embedder;
  const rows = new Map<string, Float32Array>();

  const remember = (caption: string, row: Float32Array) => {
    if (rows.size >= entries) rows.delete(rows.keys().next().value!);
    rows.set(caption, row);
  };

  return {
    dim,
    fingerprint: embedder.fingerprint,
    async embed(captions) {
      const out = new Float32Array(captions.length * dim);
      // Misses are embedded once each, even when a caption repeats inside this call.
      const missing = new Map<string, number[]>();
      captions.forEach((caption, i) => {
        const row = rows.get(caption);
        if (row) {
          rows.delete(caption); // move to the most-recent end
          rows.set(caption, row);
          out.set(row, i * dim);
        } else {
          const at = missing.get(caption);
          if (at) at.push(i);
          else missing.set(caption, [i]);
        }
      });
      if (missing.size > 0) {
        const unique = [...missing.keys()];
        const fresh = await embedder.embed(unique);
        unique.forEach((caption, k) => {
          const row = fresh.slice(k * dim, (k + 1) * dim);
          for (const i of missing.get(caption)!) out.set(row, i * dim);
          remember(caption, row);
        });
      }
      // A repeat inside the call counts as a hit: it did not reach the model either.
      onLookups?.({ hits: captions.length - missing.size, misses: missing.size });
      return out;
    },
    dispose() {
      rows.clear();
      embedder.dispose();
    },
  };
}
