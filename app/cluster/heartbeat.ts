/**
 * This node's heartbeat on the nodes topic (ARCHITECTURE.md section 4, "Cluster status"): every
 * `node.heartbeatMs`, keyed by node id on a compacted topic, so the topic holds each node's newest.
 * A clean stop sends one last heartbeat marked stopped (not a tombstone), so that status tells a node
 * stopped on purpose from one that died. Whatever its roles, every node heartbeats.
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type { Producer } from 'kafkajs';
import { defer, exhaustMap, timer, type Subscription } from 'rxjs';
import type { Config } from '../../src/config.js';
import { UNROUTED } from '../../src/contract/routed.js';
import { errorMessage } from '../../src/errors.js';
import type { Logger } from '../../src/logger.js';
import { NodeHeartbeat, type RestoreProgress } from '../../src/nodes.js';

/**
 * What other roles may expose, read duck-typed: the controller's election (`leadership()`) and the
 * sharder's assignment and restores (`owned()`, `restores()`). A role without them reports nothing.
 */
interface MaybeLeader {
  leadership?: () => { leader: boolean; since?: number; claim?: number };
}
interface MaybeSharder {
  owned?: () => readonly number[];
  restores?: () => readonly RestoreProgress[];
}

export interface HeartbeatSources {
  config: Pick<Config, 'roles'>;
  node: string;
  startedAt: number;
  /** The running roles by name (app/run.ts). */
  running: ReadonlyMap<string, unknown>;
  httpUrl?: () => string | undefined;
  /** Records per expert in the local shards. */
  expertStats: () => readonly { expert: number; records: number }[];
  centroidEpoch: () => number;
  snapshotVersion: () => Promise<number | undefined>;
}

let packageVersion: string | undefined;
/** modestream's version from package.json (next to the sources, or two levels above dist/app/cluster). */
export function modestreamVersion(): string {
  if (packageVersion === undefined) {
    packageVersion = 'unknown';
    for (const rel of ['../../package.json', '../../../package.json']) {
      try {
        const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version?: string };
        if (pkg.name === 'modestream' && pkg.version) {
          packageVersion = pkg.version;
          break;
        }
      } catch {
        // Not here; try the next.
      }
    }
  }
  return packageVersion;
}

/** One heartbeat from the node's current state. */
export async function buildHeartbeat(s: HeartbeatSources, now: number, { heartbeatMs, stopped = false }: { heartbeatMs: number; stopped?: boolean }): Promise<NodeHeartbeat> {
  const controller = s.running.get('controller') as MaybeLeader | undefined;
  const sharder = s.running.get('sharder') as MaybeSharder | undefined;
  const leader = typeof controller?.leadership === 'function' ? controller.leadership().leader : undefined;
  const httpUrl = s.httpUrl?.();
  const snapshotVersion = await s.snapshotVersion().catch(() => undefined);
  return NodeHeartbeat.parse({
    node: s.node,
    host: hostname(),
    pid: process.pid,
    roles: [...s.config.roles],
    ...(httpUrl ? { httpUrl } : {}),
    startedAt: s.startedAt,
    at: now,
    heartbeatMs,
    ...(leader !== undefined ? { leader } : {}),
    partitions: { routed: typeof sharder?.owned === 'function' ? [...sharder.owned()].sort((a, b) => a - b) : [] },
    restores: typeof sharder?.restores === 'function' ? [...sharder.restores()] : [],
    experts: s.expertStats().filter((e) => e.expert !== UNROUTED).map(({ expert, records }) => ({ expert, records })),
    centroidEpoch: s.centroidEpoch(),
    ...(snapshotVersion !== undefined ? { snapshotVersion } : {}),
    version: modestreamVersion(),
    ...(stopped ? { stopped: true } : {}),
  });
}

export interface RunningHeartbeats {
  /** Stops the loop and sends the final heartbeat marked stopped (bounded: a down broker cannot hold the stop). */
  stop(): Promise<void>;
}

export function startHeartbeats({ sources, producer, topic, heartbeatMs, logger, finalTimeoutMs = 5000 }: { sources: HeartbeatSources; producer: Pick<Producer, 'send'>; topic: string; heartbeatMs: number; logger: Logger; finalTimeoutMs?: number }): RunningHeartbeats {
  let inFlight: Promise<unknown> = Promise.resolve();
  const send = async (stopped: boolean) => {
    const hb = await buildHeartbeat(sources, Date.now(), { heartbeatMs, stopped });
    await producer.send({ topic, messages: [{ key: hb.node, value: JSON.stringify(hb), timestamp: String(hb.at) }] });
  };
  // exhaustMap: a tick that finds the previous send still waiting on the broker is skipped, not queued.
  const loop: Subscription = timer(0, heartbeatMs)
    .pipe(
      exhaustMap(() =>
        defer(() => {
          inFlight = send(false).catch((err: unknown) => logger.warn({ err: errorMessage(err), topic }, 'heartbeat not sent'));
          return inFlight;
        }),
      ),
    )
    .subscribe();
  return {
    async stop() {
      loop.unsubscribe();
      // After the send in flight, so the stopped one is the last in the log.
      const final = inFlight
        .then(() => send(true))
        .then(
          () => logger.info({ node: sources.node }, 'final heartbeat sent (stopped)'),
          (err: unknown) => logger.warn({ err: errorMessage(err) }, 'final heartbeat not sent; the node will read as dead'),
        );
      let timeout: NodeJS.Timeout | undefined;
      const late = new Promise<void>((resolve) => (timeout = setTimeout(() => (logger.warn({ ms: finalTimeoutMs }, 'final heartbeat timed out; the node will read as dead'), resolve()), finalTimeoutMs)));
      await Promise.race([final, late]);
      clearTimeout(timeout);
    },
  };
}
