/**
 * The control topic's records and the rules every node applies to them (ARCHITECTURE.md section 3,
 * "Epochs are immutable"). Pure: no Kafka here; streams/control-follower.ts feeds the log in.
 *
 * Two kinds of record on one partition, so every reader sees them in the same total order:
 *   - a claim: a controller took the lead; its offset is the fencing token;
 *   - an epoch chunk: one slice (<= CHUNK_BYTES) of an encoded centroid epoch, with the epoch number,
 *     the publish attempt it belongs to, index/count, the SHA-256 of the whole and the claim it was
 *     written under.
 *
 * Keys are unique per record (claim/<node>/<id>, epoch/<N>/<publish>/<i>), so compaction, which keeps
 * only the newest value per key, never removes a record another one did not write under the same key.
 * The only records ever superseded are tombstones a publisher sends for its own LOSING attempt, and the
 * reducer's verdicts never depend on a losing attempt: a compacted log yields the same accepted epochs
 * as the full log (test/unit/control-log.test.ts checks it).
 */
import { createHash, randomUUID } from 'node:crypto';
import { Packr } from 'msgpackr';
import { z } from 'zod';
import { bytesSchema } from '../src/codec/bytes.js';
import type { CentroidModel } from '../src/cluster/model.js';
import { decodeModel, encodeModel } from '../src/cluster/model-codec.js';
import { errorMessage } from '../src/errors.js';

/** Kafka's default max.message.bytes is 1 MiB; half of it leaves room for the envelope. */
export const CHUNK_BYTES = 512 * 1024;
/** The claim a chunk carries when no controller has ever claimed (a `modestream bootstrap` before any `run`). */
export const NO_CLAIM = -1;

const packr = new Packr({ useRecords: false });

export const ClaimRecord = z.object({
  type: z.literal('claim'),
  /** Unique per claim: a redelivered copy is recognised and ignored. */
  id: z.string().min(1),
  node: z.string().min(1),
  at: z.number(),
});
export type ClaimRecord = z.infer<typeof ClaimRecord>;

export const ChunkRecord = z.object({
  type: z.literal('epoch-chunk'),
  epoch: z.number().int().positive(),
  /** One publish attempt: two writers of the same epoch number never mix their chunks. */
  publish: z.string().min(1),
  node: z.string().min(1),
  index: z.number().int().nonnegative(),
  count: z.number().int().positive(),
  /** Hex SHA-256 of the whole encoded epoch. */
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  /** Offset of the claim the writer held (NO_CLAIM when none existed). */
  claim: z.number().int().min(NO_CLAIM),
  data: bytesSchema,
});
export type ChunkRecord = z.infer<typeof ChunkRecord>;

export const ControlRecord = z.discriminatedUnion('type', [ClaimRecord, ChunkRecord]);
export type ControlRecord = z.infer<typeof ControlRecord>;

export const claimKey = (c: Pick<ClaimRecord, 'node' | 'id'>) => `claim/${c.node}/${c.id}`;
export const chunkKey = (c: Pick<ChunkRecord, 'epoch' | 'publish' | 'index'>) => `epoch/${c.epoch}/${c.publish}/${c.index}`;
const keyOf = (r: ControlRecord) => (r.type === 'claim' ? claimKey(r) : chunkKey(r));

/** A Kafka message's key and value, before or after the broker. `value: null` is a tombstone. */
export interface LogMessage {
  key: string;
  value: Buffer | null;
}

export function encodeRecord(record: ControlRecord): LogMessage {
  return { key: keyOf(record), value: packr.pack(record) };
}

export function newClaim(node: string, at = Date.now()): ClaimRecord {
  return { type: 'claim', id: randomUUID(), node, at };
}

/** The bytes of an epoch: state/centroids.ts's stored form, msgpack-packed. */
export function epochBytes(model: CentroidModel): Buffer {
  return packr.pack(encodeModel(model));
}

export function modelOfBytes(bytes: Uint8Array): CentroidModel {
  return decodeModel(packr.unpack(bytes));
}

export const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** One publish attempt of `model` under `claim`, cut into chunks of at most `chunkBytes`. */
export function epochChunks(model: CentroidModel, { claim, node, publish = randomUUID(), chunkBytes = CHUNK_BYTES }: { claim: number; node: string; publish?: string; chunkBytes?: number }): { publish: string; sha256: string; chunks: ChunkRecord[] } {
  const bytes = epochBytes(model);
  const hash = sha256(bytes);
  const count = Math.max(1, Math.ceil(bytes.byteLength / chunkBytes));
  const chunks = Array.from({ length: count }, (_, index): ChunkRecord => ({
    type: 'epoch-chunk',
    epoch: model.epoch,
    publish,
    node,
    index,
    count,
    sha256: hash,
    claim,
    data: bytes.subarray(index * chunkBytes, (index + 1) * chunkBytes),
  }));
  return { publish, sha256: hash, chunks };
}

/** What the log has decided so far. Replaced, never mutated, by reduceControl. */
export interface ControlState {
  /** The newest claim: its offset is the token every chunk must carry. */
  claim?: { offset: number; id: string; node: string; at: number };
  /** Claim ids seen (a redelivered claim is not a new claim). */
  claimIds: ReadonlySet<string>;
  /** Accepted epochs by number: which attempt won, its hash, and the offset that completed it. */
  accepted: ReadonlyMap<number, { publish: string; sha256: string; node: string; claim: number; offset: number }>;
  /** Attempts still collecting chunks, by publish id. */
  pending: ReadonlyMap<string, { epoch: number; count: number; sha256: string; claim: number; node: string; chunks: readonly (Uint8Array | undefined)[] }>;
}

export const emptyControlState = (): ControlState => ({ claimIds: new Set(), accepted: new Map(), pending: new Map() });

/** What one record did: nothing worth saying, a new claim, an accepted epoch, or an ignored record with why. */
export type ControlOutcome =
  | { kind: 'none' }
  | { kind: 'claim'; offset: number; node: string }
  | { kind: 'accepted'; epoch: number; publish: string; model: CentroidModel }
  | { kind: 'ignored'; reason: string; epoch?: number; publish?: string };

const none: ControlOutcome = { kind: 'none' };

function without<K, V>(map: ReadonlyMap<K, V>, key: K): Map<K, V> {
  const next = new Map(map);
  next.delete(key);
  return next;
}

/**
 * The log's rules, applied to the record at `offset` (ARCHITECTURE.md section 3):
 *   - fencing: a chunk must carry the newest claim seen so far (an older one means its writer was
 *     deposed; a newer, unseen one cannot exist in a totally ordered log);
 *   - the first complete attempt for epoch N wins; chunks of N arriving after that are ignored;
 *   - a complete attempt whose bytes do not hash to its SHA-256, or do not decode into epoch N, is refused.
 * A tombstone (value null) is a losing attempt's cleanup: it drops what is pending under that key's
 * attempt, which can no longer complete anyway.
 */
export function reduceControl(state: ControlState, offset: number, message: LogMessage): { state: ControlState; outcome: ControlOutcome } {
  if (message.value === null) {
    const publish = /^epoch\/\d+\/([^/]+)\/\d+$/.exec(message.key)?.[1];
    return { state: publish && state.pending.has(publish) ? { ...state, pending: without(state.pending, publish) } : state, outcome: none };
  }
  let record: ControlRecord;
  try {
    const parsed = ControlRecord.safeParse(packr.unpack(message.value));
    if (!parsed.success) return { state, outcome: { kind: 'ignored', reason: `not a control record: ${parsed.error.issues[0]?.path.join('.')}: ${parsed.error.issues[0]?.message}` } };
    record = parsed.data;
  } catch (err) {
    return { state, outcome: { kind: 'ignored', reason: `undecodable control record: ${errorMessage(err)}` } };
  }
  if (keyOf(record) !== message.key) return { state, outcome: { kind: 'ignored', reason: `key ${message.key} does not match its record (${keyOf(record)})` } };

  if (record.type === 'claim') {
    if (state.claimIds.has(record.id)) return { state, outcome: none };
    const claim = { offset, id: record.id, node: record.node, at: record.at };
    return { state: { ...state, claim, claimIds: new Set([...state.claimIds, record.id]) }, outcome: { kind: 'claim', offset, node: record.node } };
  }

  const { epoch, publish } = record;
  const ignore = (reason: string) => ({ state: state.pending.has(publish) ? { ...state, pending: without(state.pending, publish) } : state, outcome: { kind: 'ignored' as const, reason, epoch, publish } });
  const newest = state.claim?.offset ?? NO_CLAIM;
  if (record.claim !== newest) return ignore(record.claim < newest ? `fenced: written under claim ${record.claim}, the newest claim is ${newest}` : `written under claim ${record.claim}, which is not in the log`);
  if (state.accepted.has(epoch)) return ignore(`epoch ${epoch} was accepted already (the first complete one wins)`);

  const pending = state.pending.get(publish) ?? { epoch, count: record.count, sha256: record.sha256, claim: record.claim, node: record.node, chunks: new Array<Uint8Array | undefined>(record.count).fill(undefined) };
  if (pending.epoch !== epoch || pending.count !== record.count || pending.sha256 !== record.sha256 || pending.claim !== record.claim || record.index >= record.count) {
    return ignore(`chunk ${record.index} disagrees with its attempt's epoch, count, hash or claim`);
  }
  if (pending.chunks[record.index]) return { state, outcome: none }; // a redelivered chunk
  const chunks = pending.chunks.map((c, i) => (i === record.index ? record.data : c));
  if (chunks.some((c) => c === undefined)) return { state: { ...state, pending: new Map(state.pending).set(publish, { ...pending, chunks }) }, outcome: none };

  const bytes = Buffer.concat(chunks as Uint8Array[]);
  if (sha256(bytes) !== pending.sha256) return ignore(`epoch ${epoch}: the chunks do not hash to the attempt's SHA-256`);
  let model: CentroidModel;
  try {
    model = modelOfBytes(bytes);
  } catch (err) {
    return ignore(`epoch ${epoch}: ${errorMessage(err)}`);
  }
  if (model.epoch !== epoch) return ignore(`the chunks of epoch ${epoch} hold epoch ${model.epoch}`);
  return {
    state: { ...state, pending: without(state.pending, publish), accepted: new Map(state.accepted).set(epoch, { publish, sha256: pending.sha256, node: pending.node, claim: pending.claim, offset }) },
    outcome: { kind: 'accepted', epoch, publish, model },
  };
}
