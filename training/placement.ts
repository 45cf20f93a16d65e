/**
 * Which models this node trains (ARCHITECTURE.md section 4, "Training where the data is"): an expert on
 * the node that owns its routed partition (expert mod P), where its shard is; the seed on the node whose
 * controller leads, once in the cluster. A node without the sharder role (roles split over processes that
 * share one state dir) trains every expert; one without the controller role trains the seed.
 */
import { SEED } from '../state/models.js';

/** What the placement reads from the roles running in this process (absent: the role is not here). */
export interface PlacementSources {
  /** The routed partitions the sharder owns now. */
  owned?: () => readonly number[];
  /** Whether this node's controller leads the cluster. */
  leads?: () => boolean;
  routedPartitions: number;
}

export function trainingPlacement({ owned, leads, routedPartitions }: PlacementSources): (name: string) => boolean {
  return (name) => {
    if (name === SEED) return leads ? leads() : true;
    const expert = Number(name.slice('expert-'.length));
    return owned ? owned().includes(expert % routedPartitions) : true;
  };
}

/** The seed trains on the cluster-wide sample where this node's shards hold only some of the partitions. */
export function seedSource({ owned, routedPartitions }: PlacementSources): () => 'sample' | 'shards' {
  return () => (owned && owned().length < routedPartitions ? 'sample' : 'shards');
}
