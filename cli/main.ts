/**
 * `modestream` command line. Each command parses its flags, resolves the Config (file < env < flags)
 * and calls into app/. Exit codes: 0 done, 1 runtime failure, 2 bad input (flags, config) — printed as
 * one line naming the key.
 */
import { Command, CommanderError, Option } from 'commander';
import { ConfigError, EnvironmentError, errorMessage } from '../src/errors.js';
import { registerBootstrap } from './commands/bootstrap.js';
import { registerBroker } from './commands/broker.js';
import { registerDemo } from './commands/demo.js';
import { registerEmbed } from './commands/embed.js';
import { registerEval } from './commands/eval.js';
import { registerExport } from './commands/export.js';
import { registerModels } from './commands/models.js';
import { registerProduce } from './commands/produce.js';
import { registerRoute } from './commands/route.js';
import { registerRun } from './commands/run.js';
import { registerSnapshot } from './commands/snapshot.js';
import { registerStatus } from './commands/status.js';
import { registerTrain } from './commands/train.js';

export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

export function buildProgram(): Command {
  const program = new Command('modestream')
    .description('MoDE (CLIP Data Experts via Clustering) on a live Kafka stream')
    .version('0.1.0')
    .addOption(new Option('-c, --config <file>', 'JSON config file (default: ./modestream.config.json if present, or $MODESTREAM_CONFIG)'))
    .addOption(new Option('--set <key=value...>', 'override any config key, e.g. --set clustering.fine=256'))
    .addOption(new Option('--brokers <list>', 'Kafka bootstrap servers, comma-separated (kafka.brokers)'))
    .addOption(new Option('--state-dir <dir>', 'state directory holding the LMDB environment (stateDir)'))
    .addOption(new Option('--log-level <level>', 'log level (log.level)'))
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  for (const register of [registerDemo, registerBroker, registerRun, registerProduce, registerStatus, registerBootstrap, registerTrain, registerSnapshot, registerExport, registerEval, registerModels, registerEmbed, registerRoute]) register(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return process.exitCode === undefined ? 0 : Number(process.exitCode);
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version also end here, with exit code 0.
      return err.exitCode === 0 ? 0 : EXIT_USAGE;
    }
    if (err instanceof ConfigError) {
      process.stderr.write(`modestream: ${err.message}\n`);
      return EXIT_USAGE;
    }
    process.stderr.write(`modestream: ${errorMessage(err)}\n`);
    if (!(err instanceof EnvironmentError) && process.env.MODESTREAM_DEBUG) process.stderr.write(`${(err as Error).stack ?? ''}\n`);
    return EXIT_FAILURE;
  }
}
