/**
 * `modestream train --seed | --expert ID | --all`: trains in this process (separate from `run`, so
 * ingestion never stalls), with a progress bar; a killed job resumes from its checkpoint when started
 * again with the same settings.
 */
import type { Command } from 'commander';
import { SingleBar, Presets } from 'cli-progress';
import { ConfigError } from '../../src/errors.js';
import { QUIET, createLogger, loadConfig, type GlobalOptions } from '../context.js';
import { intOption } from '../options.js';

interface TrainFlags {
  seed?: boolean;
  expert?: number;
  all?: boolean;
  steps?: number;
  batch?: number;
  backend?: string;
  progress?: boolean;
}

export function registerTrain(program: Command): void {
  program
    .command('train')
    .description('train the seed model (all shards) or experts (their shard, warm-started from the seed)')
    .option('--seed', 'train the shared seed model on a sample of all shards')
    .option('--expert <id>', 'train one expert on its shard', intOption)
    .option('--all', 'the seed model, then every expert that has records')
    .option('--steps <n>', 'optimizer steps (experts.training.steps / seedSteps)', intOption)
    .option('--batch <n>', 'batch size (experts.training.batch)', intOption)
    .option('--backend <name>', 'tensor backend: auto, tensorflow-gpu, webgpu, tensorflow, wasm, cpu (backend)')
    .option('--no-progress', 'no progress bar')
    .action(async (flags: TrainFlags, cmd: Command) => {
      const chosen = [flags.seed, flags.expert !== undefined, flags.all].filter(Boolean).length;
      if (chosen !== 1) throw new ConfigError('train: give exactly one of --seed, --expert ID, --all');
      if (flags.steps !== undefined && flags.steps < 1) throw new ConfigError('--steps: must be at least 1');
      if (flags.batch !== undefined && flags.batch < 2) throw new ConfigError('--batch: must be at least 2');
      const config = loadConfig(cmd.optsWithGlobals<GlobalOptions>(), { backend: flags.backend }, QUIET);
      const logger = createLogger(config, 'train');
      const [{ runTrainingJob }, { openCore }, { UNROUTED }] = await Promise.all([import('../../training/job.js'), import('../../app/core.js'), import('../../src/contract/routed.js')]);
      const core = await openCore(config, logger);
      const abort = new AbortController();
      // First Ctrl-C or SIGTERM: stop after the current step (the last checkpoint stays); second: exit now.
      const stop = () => {
        abort.abort();
        process.once('SIGINT', () => process.exit(130));
        process.once('SIGTERM', () => process.exit(143));
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      try {
        process.stderr.write(`backend: ${core.backend.name}${core.backend.adapter ? ` (${core.backend.adapter})` : ''}\n`);
        const targets = flags.all
          ? [{ kind: 'seed' as const }, ...core.store.expertStats().filter((s) => s.expert !== UNROUTED && s.records > 0).map((s) => ({ kind: 'expert' as const, expert: s.expert }))]
          : flags.seed
            ? [{ kind: 'seed' as const }]
            : [{ kind: 'expert' as const, expert: flags.expert! }];
        for (const target of targets) {
          const label = target.kind === 'seed' ? 'seed' : `expert ${target.expert}`;
          const bar = flags.progress !== false && process.stderr.isTTY ? new SingleBar({ format: ` ${label} {bar} {value}/{total} | loss {loss} | {sps} samples/s`, stream: process.stderr, hideCursor: true }, Presets.shades_classic) : undefined;
          let started = false;
          const result = await runTrainingJob({
            config,
            logger,
            core,
            target,
            steps: flags.steps,
            batch: flags.batch,
            signal: abort.signal,
            onProgress: (p) => {
              if (!started) {
                started = true;
                if (p.resumedFrom !== undefined) process.stderr.write(`${label}: resuming from checkpoint at step ${p.resumedFrom}\n`);
                bar?.start(p.totalSteps, p.step, { loss: '-', sps: '-' });
              }
              bar?.update(p.step, { loss: p.loss.toFixed(4), sps: Math.round(p.samplesPerSecond) });
            },
          });
          bar?.stop();
          if (result.stopped) {
            process.stdout.write(`${label}: stopped at step ${result.steps}; run the same command again to resume\n`);
            // Interrupted, not done: the conventional 128 + SIGINT.
            process.exitCode = 130;
            return;
          }
          process.stdout.write(
            `${label}: v${result.version} after ${result.steps} steps${result.resumedFrom !== undefined ? ` (resumed at ${result.resumedFrom})` : ''}, ` +
              `loss ${result.loss.toFixed(4)}, ${Math.round(result.samplesPerSecond)} samples/s on ${core.backend.name}\n`,
          );
        }
      } finally {
        await core.close();
      }
    });
}
