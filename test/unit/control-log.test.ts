/**
 * The control log's codec and rules (streams/control-log.ts): an epoch survives chunking, the reducer
 * fences deposed writers, the first complete epoch wins, broken epochs are refused, and a compacted log
 * reaches the same verdicts as the full one.
 */
import { beforeAll, describe, expect, test } from 'vitest';
import { clusterSample } from '../../src/cluster/bootstrap.js';
import type { CentroidModel } from '../../src/cluster/model.js';
import { ConfigSchema } from '../../src/config.js';
import { initBackend } from '../../src/tensor/backend.js';
import {
  CHUNK_BYTES,
  NO_CLAIM,
  emptyControlState,
  encodeRecord,
  epochBytes,
  epochChunks,
  modelOfBytes,
  newClaim,
  reduceControl,
  type ChunkRecord,
  type ControlOutcome,
  type ControlState,
  type LogMessage,
} from '../../streams/control-log.js';
import { sphereBlobs } from './cluster-fixtures.js';

let real: CentroidModel;

beforeAll(async () => {
  await initBackend('wasm');
  const dim = 16;
  const blobs = sphereBlobs({ seed: 5, clusters: 3, perCluster: 60, dim, spread: 0.15 });
  const sample = Array.from({ length: blobs.points.length / dim }, (_, i) => blobs.points.slice(i * dim, (i + 1) * dim));
  real = await clusterSample({ sample, epoch: 1, settings: { ...ConfigSchema.parse({}).clustering, fine: 8, experts: 3, maxIterations: 10 }, embedder: 'test' });
});

/** The real model grown to production size: 1024 fine centers x 384 floats (1.5 MB encoded). */
function large(epoch: number): CentroidModel {
  const m = 1024;
  const dim = 384;
  let x = 7;
  const rnd = () => ((x = (x * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) - 0.5;
  return {
    ...real,
    epoch,
    dim,
    fine: Float32Array.from({ length: m * dim }, rnd),
    fineIds: Int32Array.from({ length: m }, (_, i) => i),
    fineToExpert: Int32Array.from({ length: m }, (_, i) => i % 16),
    coarse: Float32Array.from({ length: 16 * dim }, rnd),
    experts: Int32Array.from({ length: 16 }, (_, i) => i),
    counts: new Float64Array(m).fill(3),
    radii: new Float32Array(m).fill(0.5),
  };
}

const withEpoch = (epoch: number, base = () => real): CentroidModel => ({ ...base(), epoch });
const chunkMessages = (chunks: ChunkRecord[]) => chunks.map(encodeRecord);

/** Folds messages from offset 0; returns the final state and every outcome. */
function fold(messages: readonly (LogMessage & { offset?: number })[]): { state: ControlState; outcomes: (ControlOutcome & { offset: number })[] } {
  let state = emptyControlState();
  const outcomes: (ControlOutcome & { offset: number })[] = [];
  messages.forEach((m, i) => {
    const offset = m.offset ?? i;
    const r = reduceControl(state, offset, m);
    state = r.state;
    outcomes.push({ ...r.outcome, offset });
  });
  return { state, outcomes };
}
const acceptedOf = (state: ControlState) => Object.fromEntries([...state.accepted].map(([e, a]) => [e, a.publish]));
const reasons = (outcomes: ControlOutcome[]) => outcomes.flatMap((o) => (o.kind === 'ignored' ? [o.reason] : []));

function expectSameModel(a: CentroidModel, b: CentroidModel) {
  expect(Buffer.compare(epochBytes(a), epochBytes(b))).toBe(0);
  expect(Array.from(b.fine)).toEqual(Array.from(a.fine));
  expect(b.epoch).toBe(a.epoch);
}

describe('control log codec', () => {
  test('a real epoch travels in one chunk and comes back identical', () => {
    const { chunks } = epochChunks(real, { claim: NO_CLAIM, node: 'a' });
    expect(chunks).toHaveLength(1);
    const { outcomes } = fold(chunkMessages(chunks));
    const accepted = outcomes.find((o) => o.kind === 'accepted');
    expect(accepted?.kind).toBe('accepted');
    expectSameModel(real, (accepted as { model: CentroidModel }).model);
    expectSameModel(real, modelOfBytes(epochBytes(real)));
  });

  test('1024 x 384 fine centers are cut into chunks of at most 512 KiB and reassembled', () => {
    const model = large(1);
    const { chunks, sha256 } = epochChunks(model, { claim: NO_CLAIM, node: 'a' });
    expect(chunks.length).toBeGreaterThanOrEqual(3);
    for (const c of chunks) {
      expect(c.data.byteLength).toBeLessThanOrEqual(CHUNK_BYTES);
      // The whole Kafka value stays well under the broker's 1 MiB default.
      expect(encodeRecord(c).value!.byteLength).toBeLessThan(CHUNK_BYTES + 1024);
      expect(c.sha256).toBe(sha256);
    }
    // Arrival order within the attempt does not matter.
    const { state, outcomes } = fold(chunkMessages([...chunks].reverse()));
    expect(state.accepted.get(1)?.sha256).toBe(sha256);
    expectSameModel(model, (outcomes.find((o) => o.kind === 'accepted') as { model: CentroidModel }).model);
  });
});

describe('control log rules', () => {
  test('fencing: chunks written under a claim older than the newest claim are ignored', () => {
    const a = encodeRecord(newClaim('a')); // offset 0
    const b = encodeRecord(newClaim('b')); // offset 1
    const stale = epochChunks(withEpoch(1), { claim: 0, node: 'a' }).chunks;
    const fresh = epochChunks(withEpoch(1), { claim: 1, node: 'b' });
    const { state, outcomes } = fold([a, b, ...chunkMessages(stale), ...chunkMessages(fresh.chunks)]);
    expect(reasons(outcomes)).toEqual([expect.stringMatching(/^fenced: written under claim 0, the newest claim is 1/)]);
    expect(acceptedOf(state)).toEqual({ 1: fresh.publish });
    expect(state.claim).toMatchObject({ offset: 1, node: 'b' });
  });

  test('fencing mid-publish: an attempt interrupted by a newer claim never completes', () => {
    const { chunks } = epochChunks(large(1), { claim: 0, node: 'a' });
    const { state, outcomes } = fold([encodeRecord(newClaim('a')), ...chunkMessages(chunks.slice(0, 1)), encodeRecord(newClaim('b')), ...chunkMessages(chunks.slice(1))]);
    expect(state.accepted.size).toBe(0);
    expect(state.pending.size).toBe(0);
    expect(reasons(outcomes).every((r) => r.startsWith('fenced'))).toBe(true);
  });

  test('a chunk under a claim the log does not hold is ignored; a redelivered claim is not a new claim', () => {
    const claim = newClaim('a');
    const { state, outcomes } = fold([encodeRecord(claim), ...chunkMessages(epochChunks(withEpoch(1), { claim: 5, node: 'a' }).chunks), encodeRecord(claim)]);
    expect(state.accepted.size).toBe(0);
    expect(reasons(outcomes)).toEqual([expect.stringMatching(/claim 5, which is not in the log/)]);
    expect(state.claim?.offset).toBe(0);
  });

  test('duplicate epoch number: the first complete attempt wins', () => {
    const first = epochChunks(withEpoch(2, () => large(2)), { claim: NO_CLAIM, node: 'a' });
    const second = epochChunks(withEpoch(2), { claim: NO_CLAIM, node: 'b' });
    // The second (one chunk) completes before the first's last chunk arrives: it wins.
    const { state, outcomes } = fold([...chunkMessages(first.chunks.slice(0, -1)), ...chunkMessages(second.chunks), ...chunkMessages(first.chunks.slice(-1))]);
    expect(acceptedOf(state)).toEqual({ 2: second.publish });
    expect(reasons(outcomes)).toEqual([expect.stringMatching(/epoch 2 was accepted already/)]);
    expect(state.pending.size).toBe(0);
  });

  test('a missing chunk: the epoch is not applied', () => {
    const { chunks } = epochChunks(large(1), { claim: NO_CLAIM, node: 'a' });
    const { state, outcomes } = fold(chunkMessages(chunks.filter((c) => c.index !== 1)));
    expect(state.accepted.size).toBe(0);
    expect(outcomes.some((o) => o.kind === 'accepted')).toBe(false);
  });

  test('a hash mismatch is refused, with its reason; a redelivered chunk is harmless', () => {
    const { chunks } = epochChunks(large(1), { claim: NO_CLAIM, node: 'a' });
    const flipped = Buffer.from(chunks[1]!.data);
    flipped[10] = flipped[10]! ^ 0xff;
    const corrupt = chunks.map((c) => (c.index === 1 ? { ...c, data: flipped } : c));
    const refused = fold(chunkMessages(corrupt));
    expect(refused.state.accepted.size).toBe(0);
    expect(reasons(refused.outcomes)).toEqual([expect.stringMatching(/do not hash to the attempt's SHA-256/)]);
    const redelivered = fold(chunkMessages([chunks[0]!, chunks[0]!, ...chunks.slice(1)]));
    expect(redelivered.state.accepted.size).toBe(1);
  });

  test('bytes that hash right but do not hold epoch N are refused', () => {
    const { chunks } = epochChunks(withEpoch(4), { claim: NO_CLAIM, node: 'a' });
    const lying = chunks.map((c) => ({ ...c, epoch: 5 }));
    const { state, outcomes } = fold(chunkMessages(lying));
    expect(state.accepted.size).toBe(0);
    expect(reasons(outcomes)).toEqual([expect.stringMatching(/chunks of epoch 5 hold epoch 4/)]);
  });

  test('garbage values and keys that do not match their record are ignored', () => {
    const [chunk] = chunkMessages(epochChunks(withEpoch(1), { claim: NO_CLAIM, node: 'a' }).chunks);
    const { state, outcomes } = fold([{ key: 'x', value: Buffer.from([0xc1]) }, { key: 'epoch/1/other/0', value: chunk!.value }]);
    expect(state.accepted.size).toBe(0);
    expect(reasons(outcomes)).toHaveLength(2);
  });
});

describe('compaction', () => {
  /** What a compacted partition keeps: the newest record per key, at its offset; optionally no tombstones. */
  function compact(log: (LogMessage & { offset: number })[], dropTombstones: boolean) {
    const newest = new Map<string, number>();
    for (const m of log) newest.set(m.key, m.offset);
    return log.filter((m) => newest.get(m.key) === m.offset && !(dropTombstones && m.value === null));
  }

  test('every key is written once except a losing attempt\'s tombstones, so a compacted log reaches the same verdicts', () => {
    const log: LogMessage[] = [];
    const send = (...ms: LogMessage[]) => log.push(...ms);
    const tombstones = (chunks: ChunkRecord[]) => chunks.map((c) => ({ key: encodeRecord(c).key, value: null }));

    // Bootstrap before any controller; then a controller claims and refines.
    send(...chunkMessages(epochChunks(withEpoch(1), { claim: NO_CLAIM, node: 'boot' }).chunks));
    send(encodeRecord(newClaim('a'))); // offset 1
    const claimA = log.length - 1;
    send(...chunkMessages(epochChunks(withEpoch(2, () => large(2)), { claim: claimA, node: 'a' }).chunks));
    // A bootstrap races the leader for epoch 3 and loses, then cleans up.
    const loser = epochChunks(withEpoch(3, () => large(3)), { claim: claimA, node: 'boot' });
    const winner = epochChunks(withEpoch(3), { claim: claimA, node: 'a' });
    send(...chunkMessages(loser.chunks.slice(0, 2)), ...chunkMessages(winner.chunks), ...chunkMessages(loser.chunks.slice(2)));
    send(...tombstones(loser.chunks));
    // Node b takes over; a's late chunks are fenced, and a tombstones them.
    send(encodeRecord(newClaim('b')));
    const claimB = log.length - 1;
    const late = epochChunks(withEpoch(4), { claim: claimA, node: 'a' });
    send(...chunkMessages(late.chunks), ...tombstones(late.chunks));
    const four = epochChunks(withEpoch(4, () => large(4)), { claim: claimB, node: 'b' });
    send(...chunkMessages(four.chunks));
    // A crash mid-publish leaves an incomplete attempt behind forever.
    send(...chunkMessages(epochChunks(withEpoch(5, () => large(5)), { claim: claimB, node: 'b' }).chunks.slice(0, 1)));

    const full = log.map((m, offset) => ({ ...m, offset }));
    const verdicts = fold(full).state;
    expect([...verdicts.accepted.keys()]).toEqual([1, 2, 3, 4]);
    expect(verdicts.accepted.get(3)?.publish).toBe(winner.publish);
    expect(verdicts.accepted.get(4)?.publish).toBe(four.publish);
    for (const dropTombstones of [false, true]) {
      const compacted = compact(full, dropTombstones);
      expect(compacted.length).toBeLessThan(full.length);
      const after = fold(compacted).state;
      expect(acceptedOf(after)).toEqual(acceptedOf(verdicts));
      expect([...after.accepted.values()].map((a) => a.offset)).toEqual([...verdicts.accepted.values()].map((a) => a.offset));
      expect(after.claim).toEqual(verdicts.claim);
    }
  });
});
