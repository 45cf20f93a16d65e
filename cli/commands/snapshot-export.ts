/**
 * `modestream snapshot export --format onnx --out DIR [--snapshot-version V] [--dir SNAPSHOTS]`: a published
 * snapshot (the latest, or version V) as ONNX models, each model's image and text tower, plus
 * DIR/manifest.json and the fine centers (app/onnx-export.ts). Reads the snapshot directory only.
 *
 * The version flag is `--snapshot-version`, not `--version`: the program's own `-V, --version` is
 * recognised anywhere on the command line (commander without positional options) and would print the
 * program version instead.
 */
import type { Command } from 'commander';
import { snapshotsDirOf } from '../../src/config.js';
import { ConfigError } from '../../src/errors.js';
import { QUIET, loadConfig, type GlobalOptions } from '../context.js';
import { intOption } from '../options.js';

interface SnapshotExportFlags {
  format?: string;
  out?: string;
  snapshotVersion?: number;
  dir?: string;
  json?: boolean;
}

/** Kept here so that `--help` and bad flags never load the exporter (and tfjs). */
const FORMATS = ['onnx'];

/** Adds `export` under the `snapshot` command. */
export function registerSnapshotExport(snapshot: Command): void {
  snapshot
    .command('export')
    .description("export a snapshot's models as ONNX (each model's image and text tower) plus manifest.json with the routing data, for ONNX Runtime")
    .option('--format <format>', 'output format; only "onnx" for now (required)')
    .option('--out <dir>', 'output directory (created if missing; files in it are replaced) (required)')
    .option('--snapshot-version <n>', 'snapshot version to export (default: the latest)', intOption)
    .option('--dir <dir>', 'snapshot directory (snapshots.dir, default <stateDir>/snapshots)')
    .option('--json', 'print the export manifest')
    .action(async (flags: SnapshotExportFlags, cmd: Command) => {
      if (flags.format === undefined) throw new ConfigError('snapshot export: --format is required; supported: onnx');
      if (!FORMATS.includes(flags.format)) throw new ConfigError(`snapshot export: --format ${flags.format} is not supported; supported: ${FORMATS.join(', ')}`);
      if (!flags.out) throw new ConfigError('snapshot export: --out <dir> is required');
      if (flags.snapshotVersion !== undefined && flags.snapshotVersion < 1) throw new ConfigError(`snapshot export: --snapshot-version must be positive, got ${flags.snapshotVersion}`);
      const config = loadConfig(cmd.optsWithGlobals<GlobalOptions>(), { 'snapshots.dir': flags.dir }, QUIET);
      const { exportSnapshotOnnx } = await import('../../app/onnx-export.js');
      const manifest = await exportSnapshotOnnx({
        snapshotsDir: snapshotsDirOf(config),
        outDir: flags.out,
        ...(flags.snapshotVersion !== undefined ? { version: flags.snapshotVersion } : {}),
      });
      if (flags.json) process.stdout.write(`${JSON.stringify(manifest, null, 2)}\n`);
      else {
        const models = new Set([manifest.seed?.files.image, ...manifest.experts.map((e) => e.files.image)].filter(Boolean)).size;
        process.stdout.write(
          `snapshot v${manifest.version}: ${models} models (${manifest.experts.length} experts${manifest.seed ? ', seed' : ''}) as ONNX opset ${manifest.opset}, ` +
            `${manifest.fineCenters.shape[0]} fine centers, manifest.json in ${flags.out}\n`,
        );
      }
    });
}
