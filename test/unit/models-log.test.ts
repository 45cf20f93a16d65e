import { describe, expect, it } from 'vitest';
import { createModelAssembler, decodeChunk, encodeRelease, type ModelRelease } from '../../app/models-log.js';

const release = (version: number, weightBytes: number, fill = version): ModelRelease => ({
  name: 'expert-2',
  info: { version, createdAt: 1_700_000_000_000 + version, steps: 100, loss: 1.5, records: 900, backend: 'wasm', samplesPerSecond: 1234, epoch: 3, seedVersion: 1 },
  files: { modelJson: JSON.stringify({ format: 'layers-model', version }), weights: new Uint8Array(weightBytes).map((_, i) => (i * 7 + fill) & 255) },
});

/** Decodes messages as a follower would and returns what completed. */
function follow(values: Buffer[], assembler = createModelAssembler()) {
  return values.flatMap((value) => {
    const decoded = decodeChunk(value);
    if (!decoded.ok) throw new Error(decoded.detail);
    const done = assembler.accept(decoded.chunk);
    return done ? [done] : [];
  });
}

describe('models log', () => {
  it('round-trips a version cut into chunks, keyed by model and chunk index', () => {
    const messages = encodeRelease(release(4, 5000), 1024);
    expect(messages.length).toBeGreaterThan(4);
    expect(messages.map((m) => m.key)).toEqual(messages.map((_, i) => `expert-2/${i}`));
    const [done] = follow(messages.map((m) => m.value));
    expect(done?.kind).toBe('release');
    if (done?.kind !== 'release') return;
    expect(done.release.info).toEqual(release(4, 5000).info);
    expect(done.release.files.modelJson).toBe(release(4, 5000).files.modelJson);
    expect(Buffer.from(done.release.files.weights).equals(Buffer.from(release(4, 5000).files.weights))).toBe(true);
  });

  it('completes only when every chunk has arrived, in any order', () => {
    const values = encodeRelease(release(1, 3000), 512).map((m) => m.value);
    expect(follow(values.slice(0, -1))).toEqual([]);
    const shuffled = [...values.slice(1), values[0]!];
    expect(follow(shuffled)).toHaveLength(1);
  });

  it('after compaction a leftover chunk of an older, longer version is ignored and the newest completes', () => {
    const old = encodeRelease(release(1, 4000, 1), 1024);
    const newer = encodeRelease(release(2, 2000, 9), 1024);
    // Compaction keeps the newest value per key: the new version's chunks, plus old chunks whose index it lacks.
    const newestKeys = new Set(newer.map((m) => m.key));
    const compacted = [...old.filter((m) => !newestKeys.has(m.key)), ...newer].map((m) => m.value);
    const done = follow(compacted);
    expect(done).toHaveLength(1);
    expect(done[0]?.kind === 'release' && done[0].release.info.version).toBe(2);
  });

  it('ignores chunks of an older version once a newer one is collecting', () => {
    const assembler = createModelAssembler();
    const newer = encodeRelease(release(3, 3000), 1024).map((m) => m.value);
    const older = encodeRelease(release(2, 3000), 1024).map((m) => m.value);
    expect(follow([newer[0]!, ...older], assembler)).toEqual([]);
    expect(follow(newer.slice(1), assembler).map((d) => d.kind === 'release' && d.release.info.version)).toEqual([3]);
  });

  it('reports a version whose bytes do not match its hash as corrupt', () => {
    const messages = encodeRelease(release(5, 3000), 1024);
    const decoded = messages.map((m) => decodeChunk(m.value)).map((d) => (d.ok ? d.chunk : undefined)!);
    decoded[1] = { ...decoded[1]!, part: new Uint8Array(decoded[1]!.part.length) };
    const assembler = createModelAssembler();
    const outcomes = decoded.map((c) => assembler.accept(c)).filter(Boolean);
    expect(outcomes).toEqual([{ kind: 'corrupt', name: 'expert-2', version: 5, detail: expect.stringContaining('SHA-256') }]);
  });

  it('refuses messages that are not model chunks, with a reason', () => {
    expect(decodeChunk(null)).toEqual({ ok: false, detail: 'empty message' });
    expect(decodeChunk(Buffer.from([0x92, 0x01]))).toMatchObject({ ok: false, detail: expect.stringContaining('not msgpack') });
    const bad = encodeRelease({ ...release(1, 10), name: 'other' }, 1024)[0]!.value;
    expect(decodeChunk(bad)).toMatchObject({ ok: false, detail: expect.stringContaining('name') });
  });
});
