/**
 * Training batches streamed from the shards: each slot of a batch is a uniformly random record of the
 * job's shards (experts weighted by their record counts), except a share drawn from the other experts
 * (MoDE's out-of-cluster pairs). Random access by [expert, seq] means memory holds one batch, whatever
 * the shard size, and there is no epoch boundary to reshuffle at.
 */
import type { Rng } from '../src/cluster/rng.js';
import type { RoutedRecord } from '../src/contract/routed.js';
import { EnvironmentError } from '../src/errors.js';
import { toTrainBatch, unfitReason } from '../src/expert/batch.js';
import type { ExpertArchitecture } from '../src/expert/model.js';
import type { TrainBatch } from '../src/expert/train.js';
import type { ShardStore } from './shards.js';

export interface SamplerOptions {
  store: Pick<ShardStore, 'shardSize' | 'get'>;
  /** The shards the job trains on (one expert, or all of them for the seed model). */
  experts: readonly number[];
  /** Experts whose records may be mixed in as out-of-cluster pairs. */
  others?: readonly number[];
  outOfClusterShare?: number;
  batchSize: number;
  architecture: ExpertArchitecture;
  rng: Rng;
  /** Records decoded so far (tests check memory stays bounded by the batch). */
  onRead?: (count: number) => void;
}

interface WeightedShards {
  experts: number[];
  cumulative: number[];
  total: number;
}

function weigh(store: SamplerOptions['store'], experts: readonly number[]): WeightedShards {
  const sizes = experts.map((e) => store.shardSize(e).records);
  const cumulative: number[] = [];
  sizes.reduce((sum, n, i) => (cumulative[i] = sum + n), 0);
  return { experts: [...experts], cumulative, total: cumulative[cumulative.length - 1] ?? 0 };
}

function drawRecord(store: SamplerOptions['store'], shards: WeightedShards, rng: Rng): RoutedRecord | undefined {
  const target = rng.next() * shards.total;
  const index = shards.cumulative.findIndex((c) => target < c);
  const expert = shards.experts[index === -1 ? shards.experts.length - 1 : index]!;
  const { nextSeq } = store.shardSize(expert);
  // Seqs have gaps where records moved (catch-up routing, splits): a few retries find a record.
  for (let attempt = 0; attempt < 8; attempt++) {
    const record = store.get(expert, Math.floor(rng.next() * nextSeq));
    if (record) return record;
  }
  return undefined;
}

export async function* sampleBatches(options: SamplerOptions): AsyncGenerator<TrainBatch> {
  const { store, batchSize, architecture, rng, onRead } = options;
  const inCluster = weigh(store, options.experts);
  const outside = weigh(store, options.others ?? []);
  const share = outside.total > 0 ? (options.outOfClusterShare ?? 0) : 0;
  if (inCluster.total === 0) throw new EnvironmentError(`no records to train on in expert shard(s) ${options.experts.join(', ')}`);
  for (;;) {
    const records: RoutedRecord[] = [];
    const unfit: Record<string, number> = {};
    let attempts = 0;
    while (records.length < batchSize) {
      if (++attempts > batchSize * 20) {
        throw new EnvironmentError(`could not fill a batch from expert shard(s) ${options.experts.join(', ')}: ${JSON.stringify(unfit)} unusable, or too many gaps`);
      }
      const record = drawRecord(store, rng.next() < share ? outside : inCluster, rng);
      if (!record) continue;
      const reason = unfitReason(record, architecture);
      if (reason) unfit[reason] = (unfit[reason] ?? 0) + 1;
      else records.push(record);
    }
    onRead?.(attempts);
    yield toTrainBatch(records, architecture).batch;
    // Give the event loop a turn between batches (heartbeats of a process that also ingests).
    await new Promise((resolve) => setImmediate(resolve));
  }
}
