/**
 * The cluster's membership, as the nodes topic records it (ARCHITECTURE.md section 4, "Cluster status"):
 * every node heartbeats its roles, routed partitions, restore progress and shard counts, keyed by node
 * id on a compacted topic. What is derived from the heartbeats (live / dead / stopped, the owner of an
 * expert) is computed here, from the heartbeats and a clock, so that the rules are tested without Kafka.
 */
import { z } from 'zod';

const nodeId = z.string().regex(/^[a-zA-Z0-9._-]{1,64}$/);

export const RestoreProgress = z.object({
  topic: z.string(),
  partition: z.number().int().min(0),
  from: z.number().int(),
  target: z.number().int(),
  applied: z.number().int(),
  state: z.enum(['restoring', 'live']),
});
export type RestoreProgress = z.infer<typeof RestoreProgress>;

export const NodeHeartbeat = z.object({
  node: nodeId,
  host: z.string(),
  pid: z.number().int(),
  roles: z.array(z.string()),
  /** Where its http role listens, if it runs one. */
  httpUrl: z.string().optional(),
  /** Epoch ms. */
  startedAt: z.number(),
  /** Epoch ms, the sender's clock: liveness assumes clocks within a heartbeat interval of each other. */
  at: z.number(),
  /** The sender's interval: it is judged by its own (a node silent for 3 intervals is dead). */
  heartbeatMs: z.number().int().positive(),
  /** Whether its controller leads (absent: no controller role, or one that does not elect). */
  leader: z.boolean().optional(),
  /** Routed partitions its sharder is assigned now (expert e lives on partition e mod P). */
  partitions: z.object({ routed: z.array(z.number().int().min(0)) }),
  restores: z.array(RestoreProgress),
  /** Records in its local shards. */
  experts: z.array(z.object({ expert: z.number().int(), records: z.number().int().min(0) })),
  centroidEpoch: z.number().int(),
  snapshotVersion: z.number().int().optional(),
  /** modestream's package version. */
  version: z.string(),
  /** Set on the last heartbeat of a clean stop: "stopped", not "dead". */
  stopped: z.boolean().optional(),
});
export type NodeHeartbeat = z.infer<typeof NodeHeartbeat>;

export type NodeState = 'live' | 'dead' | 'stopped';

/** Missed intervals after which a silent node is dead. */
export const DEAD_AFTER_INTERVALS = 3;

/** A clean stop says so; otherwise a node is live while its last heartbeat is younger than 3 intervals. */
export function nodeState(hb: Pick<NodeHeartbeat, 'at' | 'heartbeatMs' | 'stopped'>, now: number): NodeState {
  if (hb.stopped) return 'stopped';
  return now - hb.at <= DEAD_AFTER_INTERVALS * hb.heartbeatMs ? 'live' : 'dead';
}

/** The routed partition that holds an expert (the router's rule: partition = expert mod P). */
export const partitionOf = (expert: number, partitions: number) => ((expert % partitions) + partitions) % partitions;

export interface JudgedNode {
  heartbeat: NodeHeartbeat;
  state: NodeState;
}

/** Each node's newest heartbeat judged against `now`, by node id. */
export function judgeNodes(heartbeats: Iterable<NodeHeartbeat>, now: number): JudgedNode[] {
  return [...heartbeats].sort((a, b) => a.node.localeCompare(b.node)).map((heartbeat) => ({ heartbeat, state: nodeState(heartbeat, now) }));
}

/**
 * The live node whose sharder holds the expert's partition. Two live claimants happen for a moment
 * during a rebalance (the old owner's last heartbeat still fresh): the newer heartbeat wins.
 */
export function ownerOf(expert: number, partitions: number, nodes: readonly JudgedNode[]): JudgedNode | undefined {
  const p = partitionOf(expert, partitions);
  return nodes
    .filter((n) => n.state === 'live' && n.heartbeat.partitions.routed.includes(p))
    .reduce<JudgedNode | undefined>((best, n) => (!best || n.heartbeat.at > best.heartbeat.at ? n : best), undefined);
}

export interface ExpertPlacement {
  id: number;
  partition: number;
  owner: string | null;
  /** Records over the live nodes' heartbeats (a partition moved mid-restore may count on both). */
  records: number;
  /** The owner's restore of the expert's partition, if it reported one. */
  restore: RestoreProgress | null;
}

/** Per expert: the partition, its owner, the records the live nodes report and the owner's restore. */
export function placeExperts(experts: Iterable<number>, { partitions, routedTopic, nodes }: { partitions: number; routedTopic: string; nodes: readonly JudgedNode[] }): ExpertPlacement[] {
  const ids = new Set(experts);
  const live = nodes.filter((n) => n.state === 'live');
  for (const n of live) for (const e of n.heartbeat.experts) ids.add(e.expert);
  return [...ids]
    .filter((id) => id >= 0)
    .sort((a, b) => a - b)
    .map((id) => {
      const partition = partitionOf(id, partitions);
      const owner = ownerOf(id, partitions, nodes);
      const records = live.reduce((sum, n) => sum + (n.heartbeat.experts.find((e) => e.expert === id)?.records ?? 0), 0);
      const restore = owner?.heartbeat.restores.find((r) => r.topic === routedTopic && r.partition === partition) ?? null;
      return { id, partition, owner: owner?.heartbeat.node ?? null, records, restore };
    });
}

/** How many nodes are in each state (the `modestream_cluster_nodes` gauge). */
export function countStates(nodes: readonly JudgedNode[]): Record<NodeState, number> {
  const counts: Record<NodeState, number> = { live: 0, dead: 0, stopped: 0 };
  for (const n of nodes) counts[n.state]++;
  return counts;
}
