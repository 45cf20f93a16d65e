/**
 * `modestream bootstrap`: clusters the reservoir sample now and publishes a new centroid epoch through
 * the control topic (app/control.ts), under the newest controller claim. Every node's follower applies
 * it and routers pick it up on their next chunk; records already stored keep the route (and the epoch)
 * they were stored with.
 */
import type { Command } from 'commander';
import { EnvironmentError } from '../../src/errors.js';
import { QUIET, createLogger, loadConfig, type GlobalOptions } from '../context.js';
import { intOption } from '../options.js';

interface BootstrapFlags {
  sample?: number;
  fine?: number;
  experts?: number;
  oneStage?: boolean;
  plain?: boolean;
  json?: boolean;
}

export function registerBootstrap(program: Command): void {
  program
    .command('bootstrap')
    .description('cluster the reservoir sample into fine centers and experts; publish it as the next centroid epoch')
    .option('--sample <n>', 'use at most n sampled caption embeddings (default: the whole reservoir)', intOption)
    .option('--fine <m>', 'fine clusters m (clustering.fine)', intOption)
    .option('--experts <n>', 'experts n (clustering.experts)', intOption)
    .option('--one-stage', 'cluster the sample straight into the experts (ablation; clustering.oneStage)')
    .option('--plain', 'plain nearest-center assignment instead of balanced (clustering.balanced=false)')
    .option('--json', 'print the new epoch summary as JSON')
    .action(async (flags: BootstrapFlags, cmd: Command) => {
      const config = loadConfig(cmd.optsWithGlobals<GlobalOptions>(), {
        'clustering.fine': flags.fine,
        'clustering.experts': flags.experts,
        'clustering.oneStage': flags.oneStage,
        'clustering.balanced': flags.plain ? false : undefined,
      }, QUIET);
      const logger = createLogger(config, 'bootstrap');
      const [{ openCore }, { openControl }, { clusterTopics }, { clusterSample }] = await Promise.all([
        import('../../app/core.js'),
        import('../../app/control.js'),
        import('../../app/roles/registry.js'),
        import('../../src/cluster/bootstrap.js'),
      ]);
      const core = await openCore(config, logger);
      let control: Awaited<ReturnType<typeof openControl>> | undefined;
      try {
        // Caught up with the log first: the epoch number and the previous centers are the cluster's newest.
        control = await openControl(config, logger, core.centroids, clusterTopics(config));
        const { embeddings } = core.store.reservoirSample();
        const sample = flags.sample !== undefined ? embeddings.slice(0, flags.sample) : embeddings;
        if (sample.length === 0) throw new EnvironmentError(`no caption embeddings sampled yet in ${config.stateDir}: feed pairs through \`modestream run\` first`);
        const previous = core.centroids.latest();
        const started = performance.now();
        const model = await clusterSample({ sample, epoch: (previous?.epoch ?? 0) + 1, settings: config.clustering, embedder: core.embedder.fingerprint, previous });
        // The leading controller may publish a refined epoch meanwhile: take the next free number.
        for (let attempt = 0; !(await control.publish(model)); attempt++) {
          if (attempt >= 5) throw new EnvironmentError(`could not publish: epoch numbers kept being taken by other processes`);
          model.epoch = core.centroids.latestEpoch() + 1;
        }
        const summary = {
          epoch: model.epoch,
          sample: sample.length,
          fine: model.fineIds.length,
          experts: model.experts.length,
          inertia: model.stats.inertia,
          fineSpread: model.stats.fineSpread,
          expertSpread: model.stats.expertSpread,
          balanced: model.stats.balanced,
          oneStage: model.stats.oneStage,
          backend: core.backend.name,
          seconds: (performance.now() - started) / 1000,
        };
        if (flags.json) process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
        else {
          process.stdout.write(
            `epoch ${summary.epoch}: ${summary.sample} sampled captions -> ${summary.fine} fine clusters -> ${summary.experts} experts ` +
              `(${summary.oneStage ? 'one-stage' : 'two-stage'}, ${summary.balanced ? 'balanced' : 'plain'}) in ${summary.seconds.toFixed(1)} s on ${summary.backend}\n` +
              `inertia ${summary.inertia.toFixed(4)}; fine sizes ${summary.fineSpread.min}..${summary.fineSpread.max} (cv ${summary.fineSpread.cv.toFixed(3)}); ` +
              `expert sizes ${summary.expertSpread.min}..${summary.expertSpread.max} (cv ${summary.expertSpread.cv.toFixed(3)})\n`,
          );
        }
      } finally {
        await control?.close();
        await core.close();
      }
    });
}
