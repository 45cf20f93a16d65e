/** server.properties and log4j.properties of a local Kafka node (pure builders). */
import { HOST, type NodeLayout } from './layout.js';

const MiB = 1024 * 1024;
/** Shared by server.properties and the readiness probe, which checks every __consumer_offsets partition. */
export const OFFSETS_PARTITIONS = 4;
export const SCRAM_MECHANISM = 'SCRAM-SHA-256';

export interface NodePropertiesOptions {
  node: NodeLayout;
  /** Nodes in the cluster (replication defaults follow it). */
  nodeCount: number;
  /** controller.quorum.voters, the same on every node. */
  voters: string;
  logsDir: string;
  /** The keystore of the SSL listener (node.tlsPort). */
  tls?: { keystore: string; keystorePassword: string };
}

export function kafkaServerProperties(o: NodePropertiesOptions): string {
  const { node } = o;
  const replicas = Math.min(3, o.nodeCount);
  // With 3 replicas, acks=all survives one broker down and still refuses to ack on a lone leader.
  const minIsr = o.nodeCount >= 3 ? 2 : 1;
  const sasl = node.saslPort !== undefined;
  const tls = node.tlsPort !== undefined && o.tls !== undefined ? o.tls : undefined;
  const clientListeners = [
    `PLAINTEXT://${HOST}:${node.port}`,
    ...(sasl ? [`SASL_PLAINTEXT://${HOST}:${node.saslPort}`] : []),
    ...(tls ? [`SSL://${HOST}:${node.tlsPort}`] : []),
  ];
  const lines = [
    '# Written by modestream (deploy/kafka) at every start; edits are overwritten.',
    o.nodeCount === 1
      ? '# Single node, KRaft combined mode: this process is both the broker and the metadata quorum.'
      : `# Node ${node.id} of ${o.nodeCount}, KRaft combined mode: every node is a broker and a voter of the metadata quorum.`,
    `node.id=${node.id}`,
    'process.roles=broker,controller',
    `controller.quorum.voters=${o.voters}`,
    'controller.listener.names=CONTROLLER',
    '# Loopback only: a development broker must not be reachable from the network.',
    `listeners=${[...clientListeners, `CONTROLLER://${HOST}:${node.controllerPort}`].join(',')}`,
    `advertised.listeners=${clientListeners.join(',')}`,
    '# Brokers and controllers talk PLAINTEXT on loopback; only clients may be asked for credentials.',
    'inter.broker.listener.name=PLAINTEXT',
    `listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT${sasl ? ',SASL_PLAINTEXT:SASL_PLAINTEXT' : ''}${tls ? ',SSL:SSL' : ''}`,
    ...(sasl
      ? [
          '# SCRAM credentials live in the cluster metadata (added when the storage was formatted).',
          `sasl.enabled.mechanisms=${SCRAM_MECHANISM}`,
          `listener.name.sasl_plaintext.${SCRAM_MECHANISM.toLowerCase()}.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;`,
        ]
      : []),
    ...(tls
      ? [
          '# Server-side TLS only (no client certificates), with the CA and keystore of deploy/kafka/tls.ts.',
          'listener.name.ssl.ssl.keystore.type=PKCS12',
          `listener.name.ssl.ssl.keystore.location=${escapeProperty(tls.keystore)}`,
          `listener.name.ssl.ssl.keystore.password=${tls.keystorePassword}`,
          'listener.name.ssl.ssl.client.auth=none',
        ]
      : []),
    `log.dirs=${escapeProperty(o.logsDir)}`,
    '',
    `# Replication for ${o.nodeCount} node(s): the defaults (3) cannot be met by fewer nodes, and without`,
    '# these the group coordinator never becomes available.',
    `default.replication.factor=${replicas}`,
    `min.insync.replicas=${minIsr}`,
    `offsets.topic.replication.factor=${replicas}`,
    `transaction.state.log.replication.factor=${replicas}`,
    `transaction.state.log.min.isr=${minIsr}`,
    '# Fewer internal partitions (default 50) make the first consumer group start in seconds on 2 cores.',
    `offsets.topic.num.partitions=${OFFSETS_PARTITIONS}`,
    `transaction.state.log.num.partitions=${OFFSETS_PARTITIONS}`,
    '# No 3 s wait for more members before the first rebalance: there is one consumer per group in tests.',
    'group.initial.rebalance.delay.ms=0',
    '# Tests use short sessions so a group recovers quickly from a kill -9 (broker default minimum: 6 s).',
    'group.min.session.timeout.ms=1000',
    '# Topics are created explicitly with their intended partition counts; a typo must fail, not create one.',
    'auto.create.topics.enable=false',
    `# Room for large records (image-caption pairs with inline images). Consumers' maxBytesPerPartition must match.`,
    `message.max.bytes=${16 * MiB}`,
    `replica.fetch.max.bytes=${16 * MiB}`,
    '',
    '# Sized for a small machine: the defaults (3 network, 8 I/O threads) only add contention on 2 cores.',
    'num.network.threads=2',
    'num.io.threads=4',
    '# The log cleaner (compacted control topic) allocates this buffer up front; 128 MiB is a quarter of a 512 MiB heap.',
    `log.cleaner.dedupe.buffer.size=${32 * MiB}`,
  ];
  return `${lines.join('\n')}\n`;
}

/** Console logging at INFO (the JVM's stdout goes to broker.log), minus the per-request chatter. */
export function kafkaLog4jProperties(): string {
  return [
    'log4j.rootLogger=INFO, stdout',
    'log4j.appender.stdout=org.apache.log4j.ConsoleAppender',
    'log4j.appender.stdout.layout=org.apache.log4j.PatternLayout',
    'log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n',
    'log4j.logger.kafka.request.logger=WARN',
    'log4j.logger.state.change.logger=WARN',
    // Config dumps of the broker's internal clients, hundreds of lines at each start.
    'log4j.logger.org.apache.kafka.clients=WARN',
    '',
  ].join('\n');
}

/** StorageTool's --add-scram argument: the credential goes into the metadata log at format time. */
export function scramCredentialArg(sasl: { username: string; password: string }): string {
  return `${SCRAM_MECHANISM}=[name=${sasl.username},password=${sasl.password}]`;
}

/** The client port in a server.properties, i.e. the one the running node was started with. */
export function configuredPort(serverProperties: string): number | undefined {
  const match = /^listeners=PLAINTEXT:\/\/[^,\n]*:(\d+)/m.exec(serverProperties);
  return match?.[1] === undefined ? undefined : Number(match[1]);
}

/** Java properties treat backslash as an escape (Windows paths). */
function escapeProperty(value: string): string {
  return value.replace(/\\/g, '\\\\');
}
