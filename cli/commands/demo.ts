/** `modestream demo [--once]`: local broker, feed, routing, bootstrap, status (the README's first command). */
import type { Command } from 'commander';
import { createLogger, loadConfig, type GlobalOptions } from '../context.js';
import { intOption } from '../options.js';

interface DemoFlags {
  once?: boolean;
  pairs: number;
}

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('run the whole story locally: Kafka broker, a feed of pairs, routing, sharding, bootstrap, status')
    .option('--once', 'exit after the printout instead of serving until Ctrl-C')
    .option('--pairs <n>', 'pairs to feed', intOption, 30_000)
    .action(async (flags: DemoFlags, cmd: Command) => {
      // Demo-sized clustering unless the config says otherwise: 256 fine clusters from 10k sampled captions.
      const config = loadConfig(cmd.optsWithGlobals<GlobalOptions>(), {}, { defaults: { log: { level: 'warn' }, clustering: { fine: 256, sample: 10_000 } } });
      const { runDemo } = await import('../../app/demo.js');
      await runDemo({ config, logger: createLogger(config, 'demo'), pairs: flags.pairs, once: flags.once === true });
    });
}
