/**
 * The one LMDB environment under the state directory, and its named databases. Every store opens its
 * DB here, so writes to several DBs commit together in one `root.transaction` (LMDB has one writer per
 * environment, across processes: two modestream processes may share a state directory).
 *
 * Guarantees (lmdb-js defaults, overlappingSync on Linux): a transaction's promise resolves once it is
 * committed and visible to every process; `root.flushed` resolves once it is on disk. Stores that
 * acknowledge input to Kafka await both.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { open, type Database, type RootDatabase } from 'lmdb';

export type Key = string | number | (string | number)[];

export interface StateEnv {
  readonly dir: string;
  readonly root: RootDatabase;
  /** [expert, seq] -> the routed record's msgpack bytes, exactly as they came off the routed topic */
  readonly shards: Database<Buffer, Key>;
  /** pair id -> [expert, seq]: the record's one location, also the dedup key */
  readonly dedup: Database<[number, number], string>;
  /** [topic, partition] -> next offset to read */
  readonly offsets: Database<number, Key>;
  /** counters and small documents, keyed by [kind, id] */
  readonly meta: Database<unknown, Key>;
  /** epoch -> centroid model */
  readonly centroids: Database<unknown, number>;
  /** slot -> sampled caption embedding */
  readonly reservoir: Database<unknown, number>;
  /** model name ('seed', 'expert-3') -> its published versions */
  readonly models: Database<unknown, string>;
  /** model name -> the state of its training job (progress for status) */
  readonly jobs: Database<unknown, string>;
  /** [time, pid, n] -> controller event */
  readonly events: Database<unknown, Key>;
  /** arrival number -> { id, embedding } of a pair far from its fine center (drift detection), oldest first */
  readonly novelty: Database<unknown, number>;
  /** pair id -> embedding: the novelty buffer as stored before arrival numbers (moved into `novelty` on the next write) */
  readonly noveltyById: Database<unknown, string>;
  /** slot -> a routed record's bytes: the cluster-wide reservoir the seed trains on (state/seed-sample.ts) */
  readonly sample: Database<Buffer, number>;
  /** pair id -> its slot in `sample` (a redelivered pair is not sampled twice) */
  readonly sampleIds: Database<number, string>;
  close(): Promise<void>;
}

export interface OpenStateOptions {
  dir: string;
  readOnly?: boolean;
}

export function openStateEnv({ dir, readOnly = false }: OpenStateOptions): StateEnv {
  const path = join(dir, 'lmdb');
  if (!readOnly) mkdirSync(path, { recursive: true });
  // 8 KiB pages: a routed record (a 28x28 image and a 256-d caption embedding, ~2 KiB) then fits in a
  // leaf page instead of taking an overflow page of its own, which halves the disk and cache it uses.
  // (Applies when the environment is created.)
  const root = open({ path, maxDbs: 16, readOnly, pageSize: 8192 });
  const db = <V, K extends Key>(name: string) => root.openDB<V, K>({ name });
  return {
    dir,
    root,
    // Binary: the sharder stores the bytes it received instead of decoding and re-encoding each record.
    shards: root.openDB<Buffer, Key>({ name: 'shards', encoding: 'binary' }),
    dedup: db('dedup'),
    offsets: db('offsets'),
    meta: db('meta'),
    centroids: db('centroids'),
    reservoir: db('reservoir'),
    models: db('models'),
    jobs: db('jobs'),
    events: db('events'),
    novelty: db('noveltyQueue'),
    noveltyById: db('novelty'),
    sample: root.openDB<Buffer, number>({ name: 'sample', encoding: 'binary' }),
    sampleIds: db('sampleIds'),
    close: () => root.close(),
  };
}
