/** `modestream broker start|stop|status`: the local single-node Kafka (deploy/kafka). */
import type { Command } from 'commander';
import { localKafkaStatus, startLocalKafka, stopLocalKafka } from '../../deploy/kafka/local-kafka.js';
import { QUIET, createLogger, loadConfig, type GlobalOptions } from '../context.js';
import { intOption } from '../options.js';

interface BrokerFlags {
  port?: number;
  controllerPort?: number;
  dataDir?: string;
  json?: boolean;
}

function brokerOptions(cmd: Command, flags: BrokerFlags) {
  const config = loadConfig(cmd.optsWithGlobals<GlobalOptions>(), {
    'localBroker.port': flags.port,
    'localBroker.controllerPort': flags.controllerPort,
    'localBroker.dataDir': flags.dataDir,
  }, QUIET);
  return { ...config.localBroker, logger: createLogger(config, 'broker') };
}

export function registerBroker(program: Command): void {
  const broker = program.command('broker').description('run a local single-node Apache Kafka (KRaft, loopback only)');
  const common = (c: Command) =>
    c
      .option('--port <port>', 'client port (localBroker.port, default 9092)', intOption)
      .option('--controller-port <port>', 'KRaft controller port (localBroker.controllerPort, default 9093)', intOption)
      .option('--data-dir <dir>', 'data directory (localBroker.dataDir, default .modestream/kafka)');

  common(broker.command('start').description('start the broker (idempotent) and wait until it serves consumer groups')).action(
    async (flags: BrokerFlags, cmd: Command) => {
      const result = await startLocalKafka(brokerOptions(cmd, flags));
      process.stdout.write(`${result.alreadyRunning ? 'already running' : 'started'}: ${result.bootstrap} (pid ${result.pid})\n`);
    },
  );
  common(broker.command('stop').description('stop the broker (SIGTERM, then SIGKILL after 30 s)')).action(async (flags: BrokerFlags, cmd: Command) => {
    const result = await stopLocalKafka(brokerOptions(cmd, flags));
    process.stdout.write(result.wasRunning ? `stopped (pid ${result.pid})\n` : 'not running\n');
  });
  common(broker.command('status').description('is the broker running and ready?'))
    .option('--json', 'print JSON')
    .action(async (flags: BrokerFlags, cmd: Command) => {
      const status = await localKafkaStatus(brokerOptions(cmd, flags));
      if (flags.json) process.stdout.write(`${JSON.stringify(status, null, 2)}\n`);
      else process.stdout.write(status.running ? `running: ${status.bootstrap} (pid ${status.pid}, ${status.ready ? 'ready' : 'not ready'})\n` : 'not running\n');
      if (!status.running) process.exitCode = 3;
    });
}
