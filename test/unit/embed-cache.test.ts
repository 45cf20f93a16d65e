import { describe, expect, it } from 'vitest';
import { withEmbeddingCache, type CacheLookups } from '../../src/embed/cache.js';
import type { CaptionEmbedder } from '../../src/embed/embedder.js';
import { createHashedEmbedder } from '../../src/embed/hashed.js';
import { HashedEmbedderConfig } from '../../src/config.js';

/** The hashed embedder, counting the captions that reach it. */
function countingEmbedder(): CaptionEmbedder & { seen: string[] } {
  const inner = createHashedEmbedder(HashedEmbedderConfig.parse({ kind: 'hashed', dim: 32 }));
  const seen: string[] = [];
  return {
    dim: inner.dim,
    fingerprint: inner.fingerprint,
    seen,
    async embed(captions) {
      seen.push(...captions);
      return inner.embed(captions);
    },
    dispose: () => inner.dispose(),
  };
}

describe('embedding cache', () => {
  it('returns exactly the rows of the embedder, in caption order, with the same fingerprint', async () => {
    const inner = countingEmbedder();
    const cached = withEmbeddingCache(inner, { entries: 100 });
    const captions = ['red dress', 'blue jeans', 'red dress', 'a leather bag', 'blue jeans'];
    const expected = await countingEmbedder().embed(captions);
    expect(await cached.embed(captions)).toEqual(expected);
    expect(await cached.embed(captions)).toEqual(expected);
    expect(cached.fingerprint).toBe(inner.fingerprint);
    expect(cached.dim).toBe(inner.dim);
  });

  it('sends each distinct caption to the model once and reports hits and misses', async () => {
    const inner = countingEmbedder();
    const lookups: CacheLookups[] = [];
    const cached = withEmbeddingCache(inner, { entries: 100, onLookups: (l) => lookups.push(l) });
    await cached.embed(['a', 'b', 'a']);
    await cached.embed(['b', 'c']);
    expect(inner.seen).toEqual(['a', 'b', 'c']);
    expect(lookups).toEqual([{ hits: 1, misses: 2 }, { hits: 1, misses: 1 }]);
  });

  it('evicts the least recently used caption when full', async () => {
    const inner = countingEmbedder();
    const cached = withEmbeddingCache(inner, { entries: 2 });
    await cached.embed(['a', 'b']);
    await cached.embed(['a']); // a is now more recent than b
    await cached.embed(['c']); // evicts b
    inner.seen.length = 0;
    await cached.embed(['a', 'c', 'b']);
    expect(inner.seen).toEqual(['b']);
  });

  it('is the embedder itself when sized 0', () => {
    const inner = countingEmbedder();
    expect(withEmbeddingCache(inner, { entries: 0 })).toBe(inner);
  });
});
