/** `modestream demo [--once]`: the whole story locally (the README's first quick-start command). */
import type { Command } from 'commander';
import { createLogger, loadConfig, type GlobalOptions } from '../context.js';
import { intOption } from '../options.js';

interface DemoFlags {
  once?: boolean;
  before: number;
  after: number;
}

/** Demo-sized settings, under whatever the config file, environment and flags say. */
const DEMO_DEFAULTS = {
  log: { level: 'warn' },
  // The novelty judgement's threshold was measured with 256-1024 fine clusters from 6k-20k captions;
  // coarser centers (64 from 4k) let the first families' own tail pass for a new group.
  clustering: { fine: 256, experts: 3, sample: 6000 },
  experts: { training: { seedSteps: 600, steps: 250 } },
  controller: {
    seedMinRecords: 4000,
    tickMs: 1000,
    retrain: { pendingRecords: 1500, minRecords: 300 },
    drift: { newClusters: 6, minClusterSize: 20 },
  },
};

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('the whole story locally: Kafka, a Fashion-MNIST feed, routing, bootstrap, training, drift, snapshots, evaluation')
    .option('--once', 'exit after the second evaluation instead of serving until Ctrl-C')
    .option('--before <n>', 'pairs of tops, bottoms and dresses fed first', intOption, 12_000)
    .option('--after <n>', 'pairs of footwear and bags fed after (the drift)', intOption, 6_000)
    .action(async (flags: DemoFlags, cmd: Command) => {
      const config = loadConfig(cmd.optsWithGlobals<GlobalOptions>(), {}, { defaults: DEMO_DEFAULTS });
      const { runDemo } = await import('../../examples/demo.js');
      await runDemo({ config, logger: createLogger(config, 'demo'), before: flags.before, after: flags.after, once: flags.once === true });
    });
}
