/**
 * Where each node of the local Kafka cluster lives: its node id, ports and directory (pure). The port scheme
 * (README.md "Local Kafka"):
 *
 * - client ports are consecutive from localBroker.port: PLAINTEXT on port .. port+N-1, then, with
 *   localBroker.sasl, SASL_PLAINTEXT on the next N ports, then, with localBroker.tls, SSL on the next N;
 * - controller ports are consecutive from localBroker.controllerPort, moved up to just past the client
 *   ports when the two ranges would overlap (the defaults 9092/9093 with 3 nodes: clients 9092-9094,
 *   controllers 9095-9097), so one node keeps today's 9092/9093.
 *
 * One node keeps the data dir itself as its directory (the layout of the single-node broker); N > 1 nodes
 * live in <dataDir>/node-<id>.
 */
import { join, resolve } from 'node:path';
import { ConfigError } from '../../src/errors.js';

export const HOST = '127.0.0.1';

export interface NodeLayout {
  /** KRaft node.id, 1..N. */
  id: number;
  dir: string;
  port: number;
  /** The SASL_PLAINTEXT (SCRAM-SHA-256) listener, when localBroker.sasl is set. */
  saslPort?: number;
  /** The SSL listener, when localBroker.tls is set. */
  tlsPort?: number;
  controllerPort: number;
}

export interface ClusterLayout {
  dataDir: string;
  nodes: NodeLayout[];
  /** host:port,host:port,... of the PLAINTEXT listeners. */
  bootstrap: string;
  saslBootstrap?: string;
  tlsBootstrap?: string;
  /** controller.quorum.voters, the same on every node. */
  voters: string;
}

export function clusterLayout(o: { dataDir: string; port: number; controllerPort: number; nodes?: number; sasl?: boolean; tls?: boolean }): ClusterLayout {
  const n = o.nodes ?? 1;
  if (!Number.isInteger(n) || n < 1) throw new ConfigError(`localBroker.nodes must be a positive integer, got ${n}`);
  const dataDir = resolve(o.dataDir);
  const saslBase = o.port + n;
  const tlsBase = saslBase + (o.sasl ? n : 0);
  const clientPorts = tlsBase + (o.tls ? n : 0) - o.port;
  const overlaps = o.controllerPort < o.port + clientPorts && o.port < o.controllerPort + n;
  const firstController = overlaps ? o.port + clientPorts : o.controllerPort;
  const nodes = Array.from({ length: n }, (_, i): NodeLayout => ({
    id: i + 1,
    dir: n === 1 ? dataDir : join(dataDir, `node-${i + 1}`),
    port: o.port + i,
    ...(o.sasl ? { saslPort: saslBase + i } : {}),
    ...(o.tls ? { tlsPort: tlsBase + i } : {}),
    controllerPort: firstController + i,
  }));
  // Port 0 (tests: "any port") passes through; a range running past 65535 is bad input.
  const highest = Math.max(...nodes.flatMap((node) => [node.port, node.saslPort ?? 0, node.tlsPort ?? 0, node.controllerPort]));
  if (highest > 65535) {
    throw new ConfigError(
      `localBroker.port ${o.port} / controllerPort ${o.controllerPort} leave no room for ${n} node(s): port ${highest} is above 65535`,
    );
  }
  return {
    dataDir,
    nodes,
    bootstrap: nodes.map((node) => `${HOST}:${node.port}`).join(','),
    ...(o.sasl ? { saslBootstrap: nodes.map((node) => `${HOST}:${node.saslPort}`).join(',') } : {}),
    ...(o.tls ? { tlsBootstrap: nodes.map((node) => `${HOST}:${node.tlsPort}`).join(',') } : {}),
    voters: quorumVoters(nodes),
  };
}

/** `1@127.0.0.1:9095,2@127.0.0.1:9096,...`: KRaft's static controller quorum. */
export function quorumVoters(nodes: readonly Pick<NodeLayout, 'id' | 'controllerPort'>[]): string {
  return nodes.map((node) => `${node.id}@${HOST}:${node.controllerPort}`).join(',');
}

/** The files of one node, all in its directory. */
export interface NodePaths {
  dir: string;
  /** Kafka's log.dirs (formatted once). */
  logsDir: string;
  propsFile: string;
  log4jFile: string;
  pidFile: string;
  /** The JVM's stdout and stderr. */
  logFile: string;
}

export function nodePaths(dir: string): NodePaths {
  return {
    dir,
    logsDir: join(dir, 'logs'),
    propsFile: join(dir, 'server.properties'),
    log4jFile: join(dir, 'log4j.properties'),
    pidFile: join(dir, 'broker.pid'),
    logFile: join(dir, 'broker.log'),
  };
}
