/**
 * The status report's cluster part (src/status.ts `nodes`, `cluster`) from the nodes' newest heartbeats
 * and this node's view of its experts: who is live, who owns which expert, restore progress, freshness.
 */
import { judgeNodes, placeExperts, type NodeHeartbeat } from '../../src/nodes.js';
import type { StatusReport } from '../../src/status.js';

const iso = (ms: number) => new Date(ms).toISOString();

export function clusterStatus({
  heartbeats,
  now,
  routedPartitions,
  routedTopic,
  experts,
}: {
  heartbeats: readonly NodeHeartbeat[];
  now: number;
  routedPartitions: number;
  routedTopic: string;
  /** This node's expert rows (freshness, training), already in the report. */
  experts: StatusReport['experts'];
}): Pick<StatusReport, 'nodes' | 'cluster'> {
  const judged = judgeNodes(heartbeats, now);
  const local = new Map(experts.map((e) => [e.id, e]));
  return {
    nodes: judged.map(({ heartbeat: h, state }) => ({
      id: h.node,
      host: h.host,
      pid: h.pid,
      roles: h.roles,
      httpUrl: h.httpUrl ?? null,
      state,
      startedAt: iso(h.startedAt),
      lastHeartbeatAt: iso(h.at),
      heartbeatAgeSeconds: Math.max(0, (now - h.at) / 1000),
      leader: h.leader ?? null,
      partitions: { routed: h.partitions.routed },
      restores: h.restores,
      centroidEpoch: h.centroidEpoch,
      snapshotVersion: h.snapshotVersion ?? null,
      version: h.version,
    })),
    cluster: {
      routedPartitions,
      experts: placeExperts(local.keys(), { partitions: routedPartitions, routedTopic, nodes: judged }).map((p) => {
        const e = local.get(p.id);
        return { ...p, freshness: e ? { state: e.state, version: e.version, pending: e.pending, oldestPendingAgeSeconds: e.oldestPendingAgeSeconds } : null };
      }),
    },
  };
}
