/**
 * Cluster status from heartbeats (ARCHITECTURE.md section 4, "Cluster status"): two real `modestream run`
 * nodes on one broker, each with its own state dir and node id, heartbeating every 500 ms on the nodes
 * topic. Status on either side lists both; a kill -9'd node reads dead after three intervals; a cleanly
 * stopped one reads stopped, also to `modestream status` with no node running. Node A also serves with
 * http.token set from the environment: snapshots need the token, the probes do not.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, inject, test } from 'vitest';
import { StatusReport } from '../../src/status.js';
import { cli, readStatus, startProcessor, stopProcessor, testDeployment, type Processor } from '../support/processor.js';
import { waitFor } from '../support/waits.js';

const brokers = inject('brokers');
const TOKEN = 'cluster-test-token-3f9a1c0d5e7b';
const deployment = testDeployment(brokers, { MODESTREAM_NODE__HEARTBEAT_MS: '500', MODESTREAM_TOPICS__ROUTED_PARTITIONS: '4' });
const nodeA = { MODESTREAM_NODE__ID: 'node-a', MODESTREAM_HTTP__TOKEN: TOKEN };
const nodeB = { MODESTREAM_NODE__ID: 'node-b', MODESTREAM_STATE_DIR: mkdtempSync(join(tmpdir(), 'modestream-state-node-b-')) };

type Node = StatusReport['nodes'][number];
const byId = (r: StatusReport) => new Map(r.nodes.map((n) => [n.id, n]));
const httpUrlOf = (p: Processor) => /"status":"(http:\/\/[^"]+)\/status\.json"/.exec(p.output())?.[1];
const metric = (text: string, state: string) => Number(text.split('\n').find((l) => l.startsWith(`modestream_cluster_nodes{state="${state}"}`))?.split(' ').pop());

describe('cluster status', () => {
  let a: Processor | undefined;
  let b: Processor | undefined;
  afterAll(async () => {
    b?.kill('SIGKILL');
    await stopProcessor(a);
  });

  test('both nodes live with their roles, urls and partitions; B killed -9 reads dead on A; A stopped reads stopped to the CLI', async () => {
    [a, b] = await Promise.all([startProcessor(deployment, nodeA), startProcessor(deployment, nodeB)]);
    const urlA = httpUrlOf(a)!;
    const urlB = httpUrlOf(b)!;
    expect(urlA && urlB, 'both nodes log their HTTP address').toBeTruthy();

    // The CLI (reading the nodes topic) and A's /status.json both see both nodes live.
    const both = (r: StatusReport) => ['node-a', 'node-b'].every((id) => byId(r).get(id)?.state === 'live');
    const cliView = await waitFor('the CLI to list both nodes live', async () => {
      const r = await readStatus(deployment, []);
      return both(r) ? r : undefined;
    }, { timeoutMs: 60_000, intervalMs: 500 });
    expect(cliView.nodesError).toBeUndefined();
    const fromA = await waitFor('A to list both nodes live', async () => {
      const r = StatusReport.parse(await (await fetch(`${urlA}/status.json`)).json());
      return both(r) ? r : undefined;
    }, { timeoutMs: 30_000, intervalMs: 250 });
    for (const [id, url] of [['node-a', urlA], ['node-b', urlB]] as const) {
      const n = byId(fromA).get(id)!;
      expect(n).toMatchObject({ id, state: 'live', httpUrl: url, roles: ['router', 'sharder', 'controller', 'trainer', 'http'], version: '0.1.0' });
      expect(n.heartbeatAgeSeconds).toBeLessThan(1.5);
      for (const p of n.partitions.routed) expect(p >= 0 && p < 4, `${id} partition ${p}`).toBe(true);
    }
    expect(fromA.cluster?.routedPartitions).toBe(4);
    // Routed partitions come from the sharder's owned() (the restore work); where the sharder reports
    // them, each partition is owned by exactly one of the two once the group has settled.
    const owned = (r: StatusReport) => r.nodes.filter((n) => n.state === 'live').flatMap((n: Node) => n.partitions.routed);
    if (owned(fromA).length > 0) {
      await waitFor('the four routed partitions to be split between A and B', async () => {
        const r = StatusReport.parse(await (await fetch(`${urlA}/status.json`)).json());
        const all = owned(r).sort();
        return all.join(',') === '0,1,2,3' && byId(r).get('node-a')!.partitions.routed.length > 0 && byId(r).get('node-b')!.partitions.routed.length > 0;
      }, { timeoutMs: 60_000, intervalMs: 500 });
    }
    const scrape = await (await fetch(`${urlA}/metrics`)).text();
    expect(metric(scrape, 'live')).toBe(2);
    expect(metric(scrape, 'dead')).toBe(0);

    // http.token from MODESTREAM_HTTP__TOKEN: snapshots need it, probes and status do not; never logged.
    expect((await fetch(`${urlA}/snapshots`)).status).toBe(401);
    expect((await fetch(`${urlA}/snapshots`, { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
    expect((await fetch(`${urlA}/healthz`)).status).toBe(200);
    expect((await fetch(`${urlB}/snapshots`)).status, 'B has no token: open').toBe(200);
    expect(a.output()).not.toContain(TOKEN);

    // kill -9: no final heartbeat; A says dead after three of B's intervals.
    const killedAt = Date.now();
    b.kill('SIGKILL');
    await b.exited;
    const dead = await waitFor('A to report B dead', async () => {
      const r = StatusReport.parse(await (await fetch(`${urlA}/status.json`)).json());
      return byId(r).get('node-b')?.state === 'dead' ? r : undefined;
    }, { timeoutMs: 20_000, intervalMs: 200 });
    expect(Date.now() - killedAt).toBeGreaterThanOrEqual(1000);
    expect(byId(dead).get('node-a')?.state).toBe('live');
    expect(byId(dead).get('node-b')!.heartbeatAgeSeconds).toBeGreaterThan(1.5);
    const afterKill = await (await fetch(`${urlA}/metrics`)).text();
    expect([metric(afterKill, 'live'), metric(afterKill, 'dead'), metric(afterKill, 'stopped')]).toEqual([1, 1, 0]);

    // A stops cleanly: its final heartbeat says stopped, and the CLI, with no node running, reads that.
    await stopProcessor(a);
    expect(a.output()).toContain('final heartbeat sent (stopped)');
    a = undefined;
    const after = await readStatus(deployment, []);
    expect(after.nodesError).toBeUndefined();
    expect(byId(after).get('node-a')?.state).toBe('stopped');
    expect(byId(after).get('node-b')?.state).toBe('dead');
    const text = await cli(['status'], deployment.env);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^node-a\s+stopped\s/m);
    expect(text.stdout).toMatch(/^node-b\s+dead\s/m);
  }, 300_000);
});
