import { describe, expect, test } from 'vitest';
import { applyRecord } from '../../app/cluster/directory.js';
import { buildHeartbeat, startHeartbeats } from '../../app/cluster/heartbeat.js';
import { clusterStatus } from '../../app/cluster/report.js';
import { bearerMatches, needsToken } from '../../app/http-auth.js';
import { ConfigSchema } from '../../src/config.js';
import { countStates, judgeNodes, NodeHeartbeat, nodeState, ownerOf, partitionOf, placeExperts } from '../../src/nodes.js';
import { StatusReport } from '../../src/status.js';

const now = 1_000_000;
const silent = { fatal() {}, error() {}, warn() {}, info() {}, debug() {}, trace() {}, child() { return silent; } } as never;

function hb(node: string, over: Partial<NodeHeartbeat> = {}): NodeHeartbeat {
  return NodeHeartbeat.parse({
    node,
    host: 'h',
    pid: 1,
    roles: ['sharder'],
    startedAt: now - 60_000,
    at: now,
    heartbeatMs: 500,
    partitions: { routed: [] },
    restores: [],
    experts: [],
    centroidEpoch: 1,
    version: '0.1.0',
    ...over,
  });
}

describe('heartbeat schema', () => {
  test('a full heartbeat parses; a bad node id or a missing field does not', () => {
    const full = hb('a', { httpUrl: 'http://x:1', leader: true, snapshotVersion: 3, partitions: { routed: [0, 2] }, restores: [{ topic: 'r', partition: 2, from: 0, target: 10, applied: 4, state: 'restoring' }], experts: [{ expert: 2, records: 5 }], stopped: true });
    expect(NodeHeartbeat.parse(JSON.parse(JSON.stringify(full)))).toEqual(full);
    expect(NodeHeartbeat.safeParse({ ...full, node: 'a b' }).success).toBe(false);
    const { partitions: _, ...noPartitions } = full;
    expect(NodeHeartbeat.safeParse(noPartitions).success).toBe(false);
  });

  test('built from the roles it finds: leadership and assignment are read only where a role exposes them', async () => {
    const sources = { config: { roles: ['sharder', 'controller'] as ('sharder' | 'controller')[] }, node: 'n1', startedAt: 5, expertStats: () => [{ expert: -1, records: 9 }, { expert: 3, records: 7 }], centroidEpoch: () => 2, snapshotVersion: async () => undefined };
    const bare = await buildHeartbeat({ ...sources, running: new Map<string, unknown>([['sharder', {}], ['controller', {}]]) }, now, { heartbeatMs: 500 });
    expect(bare).toMatchObject({ node: 'n1', partitions: { routed: [] }, restores: [], experts: [{ expert: 3, records: 7 }], centroidEpoch: 2 });
    expect('leader' in bare || 'stopped' in bare || 'httpUrl' in bare).toBe(false);
    expect(bare.version).toMatch(/^\d+\.\d+\.\d+/);
    const restore = { topic: 'r', partition: 1, from: 0, target: 9, applied: 3, state: 'restoring' as const };
    const full = await buildHeartbeat(
      { ...sources, running: new Map<string, unknown>([['sharder', { owned: () => [3, 1], restores: () => [restore] }], ['controller', { leadership: () => ({ leader: true, since: 1 }) }]]), httpUrl: () => 'http://h:1', snapshotVersion: async () => 4 },
      now,
      { heartbeatMs: 500, stopped: true },
    );
    expect(full).toMatchObject({ leader: true, partitions: { routed: [1, 3] }, restores: [restore], httpUrl: 'http://h:1', snapshotVersion: 4, stopped: true });
  });
});

describe('heartbeat loop', () => {
  const sources = { config: { roles: ['http' as const] }, node: 'n1', startedAt: 1, running: new Map(), expertStats: () => [], centroidEpoch: () => 0, snapshotVersion: async () => undefined };

  test('one at once and every interval, keyed by node id; stop sends a last one marked stopped', async () => {
    const sent: { key: string; hb: NodeHeartbeat }[] = [];
    const producer = { send: async ({ messages }: { messages: { key: string; value: string }[] }) => void sent.push(...messages.map((m) => ({ key: m.key, hb: NodeHeartbeat.parse(JSON.parse(m.value)) }))) };
    const loop = startHeartbeats({ sources, producer: producer as never, topic: 'nodes', heartbeatMs: 100, logger: silent });
    await new Promise((r) => setTimeout(r, 250));
    await loop.stop();
    expect(sent.length).toBeGreaterThanOrEqual(3);
    expect(sent.every((m) => m.key === 'n1' && m.hb.heartbeatMs === 100)).toBe(true);
    expect(sent.slice(0, -1).some((m) => m.hb.stopped)).toBe(false);
    expect(sent.at(-1)!.hb.stopped).toBe(true);
  });

  test('a broker that never answers cannot hold the stop', async () => {
    const loop = startHeartbeats({ sources, producer: { send: () => new Promise(() => {}) } as never, topic: 'nodes', heartbeatMs: 100, logger: silent, finalTimeoutMs: 200 });
    await new Promise((r) => setTimeout(r, 50));
    const started = Date.now();
    await loop.stop();
    expect(Date.now() - started).toBeLessThan(1000);
  });
});

describe('liveness', () => {
  test('live within 3 of its own intervals, dead after, stopped when it said so whatever its age', () => {
    expect(nodeState(hb('a', { at: now - 1500 }), now)).toBe('live');
    expect(nodeState(hb('a', { at: now - 1501 }), now)).toBe('dead');
    expect(nodeState(hb('a', { at: now - 1501, heartbeatMs: 1000 }), now)).toBe('live');
    expect(nodeState(hb('a', { at: now, stopped: true }), now)).toBe('stopped');
    expect(nodeState(hb('a', { at: now - 10 ** 7, stopped: true }), now)).toBe('stopped');
    expect(countStates(judgeNodes([hb('a'), hb('b', { at: 0 }), hb('c', { stopped: true }), hb('d')], now))).toEqual({ live: 2, dead: 1, stopped: 1 });
  });
});

describe('owner of an expert', () => {
  test('the live node listing partition expert mod P; dead and stopped nodes own nothing', () => {
    const nodes = judgeNodes([hb('a', { partitions: { routed: [0, 1] } }), hb('b', { partitions: { routed: [2] }, at: 0 }), hb('c', { partitions: { routed: [3] }, stopped: true })], now);
    expect(partitionOf(5, 4)).toBe(1);
    expect(ownerOf(5, 4, nodes)?.heartbeat.node).toBe('a');
    expect(ownerOf(2, 4, nodes)).toBeUndefined();
    expect(ownerOf(3, 4, nodes)).toBeUndefined();
  });

  test('two live claimants (mid-rebalance): the newer heartbeat wins', () => {
    const nodes = judgeNodes([hb('a', { partitions: { routed: [0] }, at: now - 400 }), hb('b', { partitions: { routed: [0] }, at: now - 100 })], now);
    expect(ownerOf(4, 4, nodes)?.heartbeat.node).toBe('b');
  });

  test('placement: records summed over live nodes, the owner\'s restore of the partition, experts only heartbeats know', () => {
    const restore = { topic: 'routed', partition: 1, from: 10, target: 50, applied: 30, state: 'restoring' as const };
    const nodes = judgeNodes(
      [
        hb('a', { partitions: { routed: [1] }, experts: [{ expert: 1, records: 10 }, { expert: 2, records: 4 }], restores: [restore, { ...restore, topic: 'other' }] }),
        hb('b', { partitions: { routed: [2] }, experts: [{ expert: 1, records: 5 }, { expert: 6, records: 1 }] }),
        hb('c', { experts: [{ expert: 1, records: 100 }], at: 0 }),
      ],
      now,
    );
    expect(placeExperts([1, 2], { partitions: 4, routedTopic: 'routed', nodes })).toEqual([
      { id: 1, partition: 1, owner: 'a', records: 15, restore },
      { id: 2, partition: 2, owner: 'b', records: 4, restore: null },
      { id: 6, partition: 2, owner: 'b', records: 1, restore: null },
    ]);
  });

  test('the report\'s cluster part validates against the StatusReport schema', () => {
    const part = clusterStatus({ heartbeats: [hb('a', { partitions: { routed: [0] }, experts: [{ expert: 0, records: 3 }] }), hb('b', { at: now - 5000 })], now, routedPartitions: 4, routedTopic: 'r', experts: [] });
    expect(part.nodes.map((n) => [n.id, n.state, n.heartbeatAgeSeconds])).toEqual([['a', 'live', 0], ['b', 'dead', 5]]);
    expect(part.cluster?.experts).toEqual([{ id: 0, partition: 0, owner: 'a', records: 3, restore: null, freshness: null }]);
    expect(StatusReport.shape.nodes.parse(part.nodes)).toEqual(part.nodes);
    expect(StatusReport.shape.cluster.parse(part.cluster)).toEqual(part.cluster);
  });
});

describe('nodes topic reader', () => {
  test('keeps each node\'s newest record in log order; a tombstone forgets, garbage is skipped', () => {
    const latest = new Map<string, NodeHeartbeat>();
    const rec = (h: NodeHeartbeat) => ({ key: Buffer.from(h.node), value: Buffer.from(JSON.stringify(h)) });
    applyRecord(latest, rec(hb('a', { at: 1 })), silent);
    applyRecord(latest, rec(hb('a', { at: 2, stopped: true })), silent);
    applyRecord(latest, rec(hb('b')), silent);
    applyRecord(latest, { key: Buffer.from('x'), value: Buffer.from('not json') }, silent);
    applyRecord(latest, { key: Buffer.from('y'), value: Buffer.from('{"node":"y"}') }, silent);
    expect(latest.get('a')).toMatchObject({ at: 2, stopped: true });
    applyRecord(latest, { key: Buffer.from('b'), value: null }, silent);
    expect([...latest.keys()]).toEqual(['a']);
  });
});

describe('bearer token', () => {
  const token = 'abcdefghijklmnop-0123';
  test('which paths need it', () => {
    expect(needsToken('/snapshots/latest', {})).toBe(false);
    for (const p of ['/snapshots', '/snapshots/latest', '/snapshots/3/expert-0.bin']) expect(needsToken(p, { token })).toBe(true);
    for (const p of ['/healthz', '/readyz', '/status', '/status.json', '/metrics', '/snapshotsX']) expect(needsToken(p, { token })).toBe(false);
    expect(needsToken('/metrics', { token, protectMetrics: true })).toBe(true);
  });

  test('the check: exact token, Bearer scheme, case-insensitive scheme', () => {
    expect(bearerMatches(`Bearer ${token}`, token)).toBe(true);
    expect(bearerMatches(`bearer ${token}`, token)).toBe(true);
    expect(bearerMatches(`Bearer ${token}x`, token)).toBe(false);
    expect(bearerMatches(`Bearer ${token.slice(1)}`, token)).toBe(false);
    expect(bearerMatches(`Basic ${token}`, token)).toBe(false);
    expect(bearerMatches(undefined, token)).toBe(false);
    expect(bearerMatches('Bearer ', token)).toBe(false);
  });

  test('config: http.token at least 16 characters, a numeric env value taken as text; protectMetrics off by default', () => {
    expect(ConfigSchema.parse({}).http).toEqual({ host: '127.0.0.1', port: 8080, protectMetrics: false });
    expect(ConfigSchema.parse({ http: { token: 1234567890123456 } }).http.token).toBe('1234567890123456');
    expect(ConfigSchema.safeParse({ http: { token: 'short' } }).success).toBe(false);
  });
});
