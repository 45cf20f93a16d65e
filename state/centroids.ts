/**
 * Centroid epochs: every routing model ever published, by epoch number. Epochs are immutable once
 * written; the write is conditional (the epoch must not exist yet). Since the control topic is the
 * system of record (ARCHITECTURE.md section 3), this store is each node's local copy of it: the
 * control follower (streams/control-follower.ts) writes the epochs the log accepted, in log order.
 * Resolves once flushed to disk.
 */
import type { CentroidModel } from '../src/cluster/model.js';
import { decodeModel, encodeModel } from '../src/cluster/model-codec.js';
import type { StateEnv } from './env.js';

export { decodeModel, encodeModel };

export type CentroidStore = ReturnType<typeof createCentroidStore>;

export function createCentroidStore({ env }: { env: StateEnv }) {
  const { centroids } = env;
  let cache: CentroidModel | undefined;

  return {
    latestEpoch(): number {
      for (const key of centroids.getKeys({ reverse: true, limit: 1 })) return key;
      return 0;
    },

    /** The newest model; decoded once per epoch. */
    latest(): CentroidModel | undefined {
      const epoch = this.latestEpoch();
      if (epoch === 0) return undefined;
      if (cache?.epoch !== epoch) cache = decodeModel(centroids.get(epoch));
      return cache;
    },

    get(epoch: number): CentroidModel | undefined {
      const value = centroids.get(epoch);
      return value === undefined ? undefined : decodeModel(value);
    },

    epochs(): number[] {
      return [...centroids.getKeys()];
    },

    /** Writes `model` unless its epoch exists already; true when this call wrote it. Durable on resolve. */
    async publish(model: CentroidModel): Promise<boolean> {
      const written = await centroids.ifNoExists(model.epoch, () => {
        centroids.put(model.epoch, encodeModel(model));
      });
      await env.root.flushed;
      return written;
    },
  };
}
