/**
 * The local Apache Kafka: N nodes (default 1) in KRaft combined mode on loopback, run from the jars that
 * deploy/kafka/pom.xml pulls from Maven Central. Used by `modestream broker start|stop|status` and by the
 * integration tests' global setup, so both exercise the same code.
 *
 * Everything lives in the data dir (one node: the dir itself; N nodes: <dataDir>/node-<id>, see
 * layout.ts): server.properties, log4j.properties, logs/ (Kafka's log.dirs, formatted once), broker.log
 * (the JVM's stdout+stderr) and broker.pid. The nodes run detached, so they outlive the command that
 * started them; the pid files are how a later command finds them. Modules: layout.ts (ports, dirs),
 * properties.ts (server.properties), processes.ts (JVMs, pid files), readiness.ts, environment.ts.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ConfigError, EnvironmentError } from '../../src/errors.js';
import { silentLogger, type Logger } from '../../src/logger.js';
import type { LocalBrokerSettings } from '../../src/config.js';
import { ensureKafkaJars, javaExecutable, portIsFree } from './environment.js';
import { HOST, clusterLayout, nodePaths, type ClusterLayout, type NodeLayout } from './layout.js';
import { formatStorage, isBrokerProcess, kill, livePid, newClusterId, spawnBroker, terminate } from './processes.js';
import { configuredPort, kafkaLog4jProperties, kafkaServerProperties } from './properties.js';
import { probeBroker, waitUntilReady } from './readiness.js';
import { ensureTlsFiles, tlsPaths } from './tls.js';

export { ensureKafkaJars } from './environment.js';
export { clusterLayout, quorumVoters, type ClusterLayout, type NodeLayout } from './layout.js';
export { kafkaLog4jProperties, kafkaServerProperties } from './properties.js';

export interface LocalKafkaOptions extends Omit<LocalBrokerSettings, 'nodes' | 'tls'> {
  /** Nodes of the cluster; default 1. */
  nodes?: number;
  /** An SSL listener besides PLAINTEXT; default false. */
  tls?: boolean;
  logger?: Logger;
  /** Where the broker jars live; default <package root>/deploy/kafka/target/libs. */
  libsDir?: string;
  /** Environment for java/mvn lookups and the child processes (tests hide java or mvn through PATH). */
  env?: NodeJS.ProcessEnv;
  /** How long `stop` waits after SIGTERM before SIGKILL. */
  stopTimeoutMs?: number;
}

/** What `startLocalKafka` has always answered: node 1's pid, and whether every node was already running. */
export interface StartResult {
  pid: number;
  alreadyRunning: boolean;
  bootstrap: string;
}

export interface ClusterStartResult {
  bootstrap: string;
  saslBootstrap?: string;
  tlsBootstrap?: string;
  /** The CA certificate TLS clients trust (kafka.ssl.caFile). */
  caFile?: string;
  nodes: { id: number; pid: number; alreadyRunning: boolean }[];
}

export interface StopResult {
  wasRunning: boolean;
  /** Node 1's pid (the single broker's). */
  pid?: number;
  /** Every node that was stopped. */
  stopped?: { id: number; pid: number }[];
}

export interface BrokerNodeStatus {
  id: number;
  port: number;
  saslPort?: number;
  tlsPort?: number;
  controllerPort: number;
  pid?: number;
  running: boolean;
  ready: boolean;
}

export interface LocalKafkaStatus {
  /** Every node is running... */
  running: boolean;
  /** ...and ready. */
  ready: boolean;
  /** Node 1's pid. */
  pid?: number;
  bootstrap: string;
  saslBootstrap?: string;
  tlsBootstrap?: string;
  caFile?: string;
  dataDir: string;
  brokers: BrokerNodeStatus[];
}

const DEFAULT_STOP_TIMEOUT_MS = 30_000;
/** <dataDir>/cluster.json of an N > 1 cluster: the one cluster id every node is formatted with. */
const CLUSTER_FILE = 'cluster.json';
/** <dataDir>/scram-user: the SCRAM user the storage was formatted with (never the password). */
const SCRAM_USER_FILE = 'scram-user';

const layoutOf = (o: LocalKafkaOptions): ClusterLayout => clusterLayout({ ...o, sasl: o.sasl !== undefined, tls: o.tls === true });

/** The bootstrap lists and CA file a client needs, for results and status. */
function endpointsOf(layout: ClusterLayout) {
  return {
    bootstrap: layout.bootstrap,
    ...(layout.saslBootstrap ? { saslBootstrap: layout.saslBootstrap } : {}),
    ...(layout.tlsBootstrap ? { tlsBootstrap: layout.tlsBootstrap, caFile: tlsPaths(layout.dataDir).caFile } : {}),
  };
}

/** Starts the cluster; see startLocalKafkaCluster. Kept for callers that run one node. */
export async function startLocalKafka(o: LocalKafkaOptions): Promise<StartResult> {
  const result = await startLocalKafkaCluster(o);
  return { pid: result.nodes[0]!.pid, alreadyRunning: result.nodes.every((n) => n.alreadyRunning), bootstrap: result.bootstrap };
}

/**
 * Starts every node of this data dir that is not running (running ones are left alone), and returns once
 * kafkajs clients can reach all of them and use consumer groups.
 */
export async function startLocalKafkaCluster(o: LocalKafkaOptions): Promise<ClusterStartResult> {
  const logger = o.logger ?? silentLogger;
  const layout = layoutOf(o);
  const clusterId = await checkDataDir(layout, o);

  const running = new Map<number, number>();
  for (const node of layout.nodes) {
    const paths = nodePaths(node.dir);
    const pid = await livePid(paths);
    if (pid === undefined) continue;
    const runningPort = configuredPort(await readFile(paths.propsFile, 'utf8').catch(() => ''));
    if (runningPort !== undefined && runningPort !== node.port) {
      throw new ConfigError(
        `the broker of ${node.dir} (pid ${pid}) already runs on port ${runningPort}, not ${node.port}; stop it first to change ports`,
      );
    }
    running.set(node.id, pid);
  }
  const toStart = layout.nodes.filter((node) => !running.has(node.id));
  for (const node of toStart) await checkPortsFree(node);

  const deadline = Date.now() + o.startTimeoutMs;
  const spawned = new Map<number, { pid: number; exit?: string }>();
  if (toStart.length > 0) {
    const env = o.env ?? process.env;
    const java = javaExecutable(env);
    const classpath = join(await ensureKafkaJars(o), '*');
    const tls = o.tls ? await ensureTlsFiles({ dataDir: layout.dataDir, java, env, logger }) : undefined;
    try {
      for (const node of toStart) {
        const paths = nodePaths(node.dir);
        await mkdir(paths.logsDir, { recursive: true });
        await writeFile(paths.propsFile, kafkaServerProperties({ node, nodeCount: layout.nodes.length, voters: layout.voters, logsDir: paths.logsDir, tls }));
        await writeFile(paths.log4jFile, kafkaLog4jProperties());
        if (!existsSync(join(paths.logsDir, 'meta.properties'))) {
          await formatStorage({ java, classpath, paths, clusterId: clusterId ?? newClusterId(), sasl: o.sasl, env, deadline, logger });
        }
        // Keep the previous run's log for post-mortems; the tail we report on failure is this run's alone.
        if (existsSync(paths.logFile)) await rename(paths.logFile, `${paths.logFile}.1`);
        const child = spawnBroker({ java, classpath, heapMb: o.heapMb, paths, env });
        const entry: { pid: number; exit?: string } = { pid: child.pid ?? 0 };
        child.once('exit', (code, signal) => (entry.exit = signal === null ? `exit code ${code}` : `killed by ${signal}`));
        child.once('error', (err) => (entry.exit = `could not run ${java}: ${err.message}`));
        if (child.pid === undefined) {
          await new Promise((r) => setImmediate(r)); // the 'error' event carries the reason
          throw new EnvironmentError(`could not start Kafka node ${node.id}: ${entry.exit ?? 'no pid'}`);
        }
        spawned.set(node.id, entry);
        await writeFile(paths.pidFile, `${child.pid}\n`);
        logger.info({ node: node.id, pid: child.pid, port: node.port, dir: node.dir }, 'local Kafka node starting');
      }
    } catch (err) {
      await stopSpawned(layout, spawned);
      throw err;
    }
  }

  // Nodes already running may themselves be starting (another command launched them a moment ago):
  // every start waits for the whole cluster.
  try {
    await waitUntilReady({
      bootstrap: layout.bootstrap,
      nodeIds: layout.nodes.map((n) => n.id),
      deadline,
      exitReason: () => exitedNode(layout, spawned, running),
      logFiles: layout.nodes.map((n) => nodePaths(n.dir).logFile),
    });
  } catch (err) {
    // Half-started JVMs would hold the ports and the pid files; a retry must find a clean slate.
    await stopSpawned(layout, spawned);
    throw err;
  }
  const nodes = layout.nodes.map((n) => ({ id: n.id, pid: running.get(n.id) ?? spawned.get(n.id)!.pid, alreadyRunning: running.has(n.id) }));
  logger.info({ bootstrap: layout.bootstrap, nodes }, toStart.length === 0 ? 'local Kafka already running' : 'local Kafka ready');
  return { ...endpointsOf(layout), nodes };
}

/** SIGTERM every node (Kafka's shutdown hook closes logs cleanly), then SIGKILL after stopTimeoutMs. Idempotent. */
export async function stopLocalKafka(o: LocalKafkaOptions): Promise<StopResult> {
  const logger = o.logger ?? silentLogger;
  const layout = layoutOf({ ...o, nodes: await nodeCountOf(o) });
  const live = (await Promise.all(layout.nodes.map(async (node) => ({ node, pid: await livePid(nodePaths(node.dir)) })))).filter(
    (n): n is { node: NodeLayout; pid: number } => n.pid !== undefined,
  );
  if (live.length === 0) return { wasRunning: false };
  // All at once: stopped one by one, the last voters would wait for a quorum that is already gone.
  await Promise.all(
    live.map(async ({ node, pid }) => {
      const paths = nodePaths(node.dir);
      logger.info({ node: node.id, pid }, 'stopping local Kafka node');
      const how = await terminate(pid, paths, o.stopTimeoutMs ?? DEFAULT_STOP_TIMEOUT_MS);
      await rm(paths.pidFile, { force: true });
      if (how === 'killed') logger.warn({ node: node.id, pid }, 'local Kafka node did not stop after SIGTERM; killed it');
      else logger.info({ node: node.id, pid }, 'local Kafka node stopped');
    }),
  );
  const stopped = live.map(({ node, pid }) => ({ id: node.id, pid }));
  return { wasRunning: true, pid: stopped.find((s) => s.id === 1)?.pid ?? stopped[0]!.pid, stopped };
}

/** SIGKILL one node, as a crash would (tests of broker failures). Returns its pid, or undefined if it was not running. */
export async function killLocalKafkaNode(o: LocalKafkaOptions, id: number): Promise<number | undefined> {
  const nodes = await nodeCountOf(o);
  const node = layoutOf({ ...o, nodes }).nodes.find((n) => n.id === id);
  if (node === undefined) throw new ConfigError(`no Kafka node ${id}: the cluster has nodes 1..${nodes}`);
  const paths = nodePaths(node.dir);
  const pid = await livePid(paths);
  if (pid === undefined) return undefined;
  await kill(pid, paths);
  await rm(paths.pidFile, { force: true });
  (o.logger ?? silentLogger).warn({ node: id, pid }, 'local Kafka node killed');
  return pid;
}

export async function localKafkaStatus(o: LocalKafkaOptions): Promise<LocalKafkaStatus> {
  const layout = layoutOf({ ...o, nodes: await nodeCountOf(o) });
  const brokers = await Promise.all(
    layout.nodes.map(async (node): Promise<BrokerNodeStatus> => {
      const pid = await livePid(nodePaths(node.dir));
      const ready =
        pid !== undefined &&
        (await probeBroker(`${HOST}:${node.port}`, { nodeIds: [node.id], requestTimeoutMs: 5_000 }).then(
          () => true,
          () => false,
        ));
      const ports = {
        port: node.port,
        ...(node.saslPort !== undefined ? { saslPort: node.saslPort } : {}),
        ...(node.tlsPort !== undefined ? { tlsPort: node.tlsPort } : {}),
        controllerPort: node.controllerPort,
      };
      return { id: node.id, ...ports, ...(pid !== undefined ? { pid } : {}), running: pid !== undefined, ready };
    }),
  );
  const pid = brokers[0]!.pid;
  return {
    running: brokers.every((b) => b.running),
    ready: brokers.every((b) => b.ready),
    ...(pid !== undefined ? { pid } : {}),
    ...endpointsOf(layout),
    dataDir: layout.dataDir,
    brokers,
  };
}

// ---------------------------------------------------------------------------------------------------

/** The node count a data dir was formatted for, if any. */
async function formattedNodeCount(dataDir: string): Promise<number | undefined> {
  const clusterFile = join(dataDir, CLUSTER_FILE);
  if (existsSync(clusterFile)) return (JSON.parse(await readFile(clusterFile, 'utf8')) as { nodes: number }).nodes;
  return existsSync(join(dataDir, 'logs', 'meta.properties')) ? 1 : undefined;
}

/** stop, status and kill follow the data dir's own node count, so `broker stop` needs no --nodes. */
async function nodeCountOf(o: LocalKafkaOptions): Promise<number> {
  return (await formattedNodeCount(resolve(o.dataDir))) ?? o.nodes ?? 1;
}

/**
 * Refuses a data dir laid out for another node count or SCRAM user (a quorum cannot change its voters,
 * and the credential was fixed when the storage was formatted). Returns the cluster id to format new
 * nodes with: the recorded one for N > 1, undefined (a fresh id) for one node.
 */
async function checkDataDir(layout: ClusterLayout, o: LocalKafkaOptions): Promise<string | undefined> {
  const n = layout.nodes.length;
  const clusterFile = join(layout.dataDir, CLUSTER_FILE);
  const recorded = existsSync(clusterFile) ? (JSON.parse(await readFile(clusterFile, 'utf8')) as { clusterId: string; nodes: number }) : undefined;
  const formattedAs = await formattedNodeCount(layout.dataDir);
  if (formattedAs !== undefined && formattedAs !== n) {
    throw new ConfigError(
      `the Kafka data dir ${layout.dataDir} holds a ${formattedAs}-node cluster, not ${n}: use --nodes ${formattedAs}, ` +
        'or another localBroker.dataDir (or stop it and delete the dir) for a new cluster',
    );
  }
  const userFile = join(layout.dataDir, SCRAM_USER_FILE);
  const formatted = layout.nodes.some((node) => existsSync(join(nodePaths(node.dir).logsDir, 'meta.properties')));
  if (formatted) {
    const user = existsSync(userFile) ? (await readFile(userFile, 'utf8')).trim() : undefined;
    if (user !== o.sasl?.username) {
      const had = user === undefined ? 'without SASL' : `with SCRAM user "${user}"`;
      throw new ConfigError(
        `the Kafka data dir ${layout.dataDir} was formatted ${had}; SCRAM credentials are set when the storage is formatted, ` +
          'so use another localBroker.dataDir (or stop it and delete the dir) to change localBroker.sasl',
      );
    }
  } else {
    await mkdir(layout.dataDir, { recursive: true });
    if (o.sasl) await writeFile(userFile, `${o.sasl.username}\n`);
    else await rm(userFile, { force: true });
  }
  if (n === 1) return undefined;
  if (recorded) return recorded.clusterId;
  const clusterId = newClusterId();
  await writeFile(clusterFile, `${JSON.stringify({ clusterId, nodes: n })}\n`);
  return clusterId;
}

async function checkPortsFree(node: NodeLayout): Promise<void> {
  const ports: [string, number | undefined][] = [
    ['port', node.port],
    ['sasl port', node.saslPort],
    ['tls port', node.tlsPort],
    ['controllerPort', node.controllerPort],
  ];
  for (const [setting, port] of ports) {
    if (port === undefined || (await portIsFree(port))) continue;
    throw new EnvironmentError(
      `port ${port} on ${HOST} (node ${node.id}'s ${setting}, from localBroker.port/controllerPort) is already in use by another process, ` +
        `not by the broker of ${node.dir}. Stop that process (perhaps a broker left over from an earlier run; ` +
        `\`ss -ltnp 'sport = :${port}'\` shows it) or choose another localBroker.port / controllerPort.`,
    );
  }
}

function exitedNode(
  layout: ClusterLayout,
  spawned: ReadonlyMap<number, { exit?: string }>,
  running: ReadonlyMap<number, number>,
): { reason: string; logFile: string } | undefined {
  for (const node of layout.nodes) {
    const paths = nodePaths(node.dir);
    const exit = spawned.get(node.id)?.exit;
    if (exit !== undefined) return { reason: layout.nodes.length === 1 ? exit : `node ${node.id}: ${exit}`, logFile: paths.logFile };
    const pid = running.get(node.id);
    if (pid !== undefined && !isBrokerProcess(pid, paths)) return { reason: `node ${node.id}: the process is gone`, logFile: paths.logFile };
  }
  return undefined;
}

async function stopSpawned(layout: ClusterLayout, spawned: ReadonlyMap<number, { pid: number }>): Promise<void> {
  await Promise.all(
    [...spawned].map(async ([id, { pid }]) => {
      const paths = nodePaths(layout.nodes.find((n) => n.id === id)!.dir);
      await terminate(pid, paths, 5_000).catch(() => undefined);
      await rm(paths.pidFile, { force: true });
    }),
  );
}
