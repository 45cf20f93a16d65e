/**
 * `modestream eval --snapshot latest|URL|DIR --task zeroshot|retrieval`: loads a snapshot with the client
 * (verifying every file) and evaluates it on the Fashion-MNIST test split.
 */
import type { Command } from 'commander';
import { snapshotsDirOf } from '../../src/config.js';
import { ConfigError } from '../../src/errors.js';
import { QUIET, loadConfig, type GlobalOptions } from '../context.js';
import { intOption } from '../options.js';

interface EvalFlags {
  snapshot: string;
  task: string;
  formula?: string;
  expert?: number;
  classes?: string;
  perClass: number;
  pairs: number;
  json?: boolean;
  embedderDir?: string;
}

export function registerEval(program: Command): void {
  program
    .command('eval')
    .description('evaluate an ensemble snapshot on Fashion-MNIST test images: zero-shot top-1, retrieval R@1')
    .option('-s, --snapshot <where>', '"latest" (snapshots.dir), a snapshot URL (http://host:8080) or directory', 'latest')
    .option('-t, --task <task>', 'zeroshot, retrieval or both', 'both')
    .option('--formula <formula>', 'routing weights: code (default in snapshots), paper, uniform, single')
    .option('--expert <id>', 'with --formula single: the expert to use alone', intOption)
    .option('--classes <labels>', 'zero-shot among these labels only, e.g. 5,7,9')
    .option('--per-class <n>', 'test images per class', intOption, 1000)
    .option('--pairs <n>', 'retrieval pairs', intOption, 1000)
    .option('--embedder-dir <dir>', 'for snapshots made with an onnx or tfjs-graph embedder: its local directory')
    .option('--json', 'print JSON')
    .action(async (flags: EvalFlags, cmd: Command) => {
      if (!['zeroshot', 'retrieval', 'both'].includes(flags.task)) throw new ConfigError(`--task: expected zeroshot, retrieval or both, got "${flags.task}"`);
      if (flags.formula && !['code', 'paper', 'uniform', 'single'].includes(flags.formula)) throw new ConfigError(`--formula: expected code, paper, uniform or single, got "${flags.formula}"`);
      if (flags.formula === 'single' && flags.expert === undefined) throw new ConfigError('--formula single needs --expert ID');
      const classes = flags.classes?.split(',').map((c) => {
        const n = Number(c);
        if (!Number.isInteger(n) || n < 0 || n > 9) throw new ConfigError(`--classes: "${c}" is not a Fashion-MNIST label 0..9`);
        return n;
      });
      const config = loadConfig(cmd.optsWithGlobals<GlobalOptions>(), {}, QUIET);
      const [{ initBackend }, { loadSnapshot }, evals] = await Promise.all([import('../../src/tensor/backend.js'), import('../../client/index.js'), import('../../examples/fashion-mnist/eval.js')]);
      const backend = await initBackend(config.backend);
      const where = flags.snapshot === 'latest' ? snapshotsDirOf(config) : flags.snapshot;
      // A server with http.token: MODESTREAM_SNAPSHOT_TOKEN (not a flag, which `ps` would show), else this config's own http.token.
      const token = process.env.MODESTREAM_SNAPSHOT_TOKEN || config.http.token;
      const snapshot = await loadSnapshot(where, { modelsDir: config.modelsDir, ...(flags.embedderDir ? { embedderDir: flags.embedderDir } : {}), ...(token ? { token } : {}) });
      const choice = flags.formula ? { formula: flags.formula as 'code', ...(flags.expert !== undefined ? { expert: flags.expert } : {}) } : undefined;
      try {
        const test = await evals.fashionMnistTestSet({ perClass: flags.perClass });
        const zeroShot = flags.task === 'retrieval' ? undefined : await evals.zeroShotReport({ ensemble: snapshot.ensemble, test, ...(classes ? { classes } : {}), ...(choice ? { choice } : {}) });
        const retrieval = flags.task === 'zeroshot' ? undefined : await evals.retrievalReport({ ensemble: snapshot.ensemble, test, pairs: flags.pairs, ...(choice ? { choice } : {}) });
        const formula = choice?.formula ?? snapshot.manifest.routing.formula;
        if (flags.json) {
          process.stdout.write(`${JSON.stringify({ snapshot: snapshot.manifest.version, source: snapshot.source, backend: backend.name, formula, zeroShot, retrieval }, null, 2)}\n`);
          return;
        }
        const lines = [`snapshot v${snapshot.manifest.version} (${snapshot.source}), epoch ${snapshot.manifest.centroids.epoch}, ${snapshot.manifest.experts.length} experts, routing weights: ${formula}, backend ${backend.name}`];
        if (zeroShot) {
          lines.push(`zero-shot top-1: ${(100 * zeroShot.top1).toFixed(2)}% on ${test.images.length} images; p(c|T): ${Object.entries(zeroShot.weights).map(([e, w]) => `${e}=${w.toFixed(2)}`).join(' ')}`);
          for (const c of zeroShot.perClass) lines.push(`  ${String(c.label).padStart(2)} ${c.name.padEnd(12)} ${(100 * c.top1).toFixed(1)}%`);
        }
        if (retrieval) lines.push(`retrieval on ${retrieval.pairs} pairs: R@1 image->text ${(100 * retrieval.imageToTextR1).toFixed(2)}%, text->image ${(100 * retrieval.textToImageR1).toFixed(2)}%`);
        process.stdout.write(`${lines.join('\n')}\n`);
      } finally {
        snapshot.dispose();
      }
    });
}
