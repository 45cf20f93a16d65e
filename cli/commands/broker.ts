/** `modestream broker start|stop|status`: the local Kafka (deploy/kafka), one node or an N-node KRaft cluster. */
import type { Command } from 'commander';
import { localKafkaStatus, startLocalKafkaCluster, stopLocalKafka } from '../../deploy/kafka/local-kafka.js';
import { QUIET, createLogger, loadConfig, type GlobalOptions } from '../context.js';
import { intOption } from '../options.js';

interface BrokerFlags {
  port?: number;
  controllerPort?: number;
  dataDir?: string;
  nodes?: number;
  saslUser?: string;
  saslPassword?: string;
  tls?: boolean;
  json?: boolean;
}

function brokerOptions(cmd: Command, flags: BrokerFlags) {
  const config = loadConfig(cmd.optsWithGlobals<GlobalOptions>(), {
    'localBroker.port': flags.port,
    'localBroker.controllerPort': flags.controllerPort,
    'localBroker.dataDir': flags.dataDir,
    'localBroker.nodes': flags.nodes,
    'localBroker.sasl.username': flags.saslUser,
    'localBroker.sasl.password': flags.saslPassword,
    'localBroker.tls': flags.tls,
  }, QUIET);
  return { ...config.localBroker, logger: createLogger(config, 'broker') };
}

export function registerBroker(program: Command): void {
  const broker = program.command('broker').description('run a local Apache Kafka (KRaft, loopback only): one node, or a cluster with --nodes');
  const common = (c: Command) =>
    c
      .option('--port <port>', 'client port of node 1; node i listens on port+i-1 (localBroker.port, default 9092)', intOption)
      .option('--controller-port <port>', 'KRaft controller port of node 1 (localBroker.controllerPort, default 9093)', intOption)
      .option('--data-dir <dir>', 'data directory (localBroker.dataDir, default .modestream/kafka)')
      .option('--nodes <n>', 'KRaft nodes, each broker and controller (localBroker.nodes, default 1)', intOption)
      .option('--sasl-user <name>', 'add a SASL_PLAINTEXT listener with this SCRAM-SHA-256 user (localBroker.sasl.username)')
      .option('--sasl-password <secret>', 'its password; prefer MODESTREAM_LOCAL_BROKER__SASL__PASSWORD (localBroker.sasl.password)')
      .option('--tls', 'add an SSL listener with a self-signed CA made in <data-dir>/tls (localBroker.tls)');

  common(broker.command('start').description('start every node not running (idempotent), wait until the cluster serves consumer groups; the last line is the bootstrap list')).action(
    async (flags: BrokerFlags, cmd: Command) => {
      const result = await startLocalKafkaCluster(brokerOptions(cmd, flags));
      for (const node of result.nodes) process.stdout.write(`node ${node.id}: ${node.alreadyRunning ? 'already running' : 'started'} (pid ${node.pid})\n`);
      if (result.saslBootstrap) process.stdout.write(`sasl (SCRAM-SHA-256): ${result.saslBootstrap}\n`);
      if (result.tlsBootstrap) process.stdout.write(`tls (CA ${result.caFile}): ${result.tlsBootstrap}\n`);
      process.stdout.write(`${result.bootstrap}\n`);
    },
  );
  common(broker.command('stop').description('stop every node (SIGTERM, then SIGKILL after 30 s)')).action(async (flags: BrokerFlags, cmd: Command) => {
    const result = await stopLocalKafka(brokerOptions(cmd, flags));
    if (!result.wasRunning) process.stdout.write('not running\n');
    for (const node of result.stopped ?? []) process.stdout.write(`node ${node.id}: stopped (pid ${node.pid})\n`);
  });
  common(broker.command('status').description('are the nodes running and ready? (exit code 3 unless all run)'))
    .option('--json', 'print JSON: {bootstrap, saslBootstrap?, brokers: [{id, port, controllerPort, pid, running, ready}], ...}')
    .action(async (flags: BrokerFlags, cmd: Command) => {
      const status = await localKafkaStatus(brokerOptions(cmd, flags));
      if (flags.json) process.stdout.write(`${JSON.stringify(status, null, 2)}\n`);
      else {
        for (const b of status.brokers) {
          process.stdout.write(`node ${b.id} 127.0.0.1:${b.port}: ${b.running ? `running (pid ${b.pid}, ${b.ready ? 'ready' : 'not ready'})` : 'not running'}\n`);
        }
        process.stdout.write(`bootstrap: ${status.bootstrap}${status.saslBootstrap ? `; sasl: ${status.saslBootstrap}` : ''}${status.tlsBootstrap ? `; tls: ${status.tlsBootstrap} (CA ${status.caFile})` : ''}\n`);
      }
      if (!status.running) process.exitCode = 3;
    });
}
