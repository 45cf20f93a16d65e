/**
 * `modestream snapshot`: publishes the current ensemble (centroids, seed, newest expert versions) as the
 * next snapshot version; `snapshot export --format onnx` writes a snapshot's towers as ONNX models
 * (cli/commands/snapshot-export.ts). `modestream serve`: serves a snapshot directory over HTTP for evaluators.
 */
import type { Command } from 'commander';
import { snapshotsDirOf } from '../../src/config.js';
import { QUIET, createLogger, loadConfig, type GlobalOptions } from '../context.js';
import { intOption } from '../options.js';
import { registerSnapshotExport } from './snapshot-export.js';

export function registerSnapshot(program: Command): void {
  const snapshot = program
    .command('snapshot')
    .description('publish the current ensemble (newest centroid epoch, seed and expert versions) as the next snapshot')
    .option('--json', 'print the manifest')
    .action(async (flags: { json?: boolean }, cmd: Command) => {
      const config = loadConfig(cmd.optsWithGlobals<GlobalOptions>(), {}, QUIET);
      const [{ openCore }, { publishSnapshot }] = await Promise.all([import('../../app/core.js'), import('../../training/snapshot.js')]);
      const core = await openCore(config, createLogger(config, 'snapshot'));
      try {
        const manifest = await publishSnapshot({ config, core });
        if (flags.json) process.stdout.write(`${JSON.stringify(manifest, null, 2)}\n`);
        else {
          const ownModels = manifest.experts.filter((e) => e.files.json !== manifest.seed?.files.json).length;
          process.stdout.write(
            `snapshot v${manifest.version}: centroid epoch ${manifest.centroids.epoch}, ${manifest.experts.length} experts (${ownModels} with their own model), ` +
              `${manifest.files.length} files in ${snapshotsDirOf(config)}\n`,
          );
        }
      } finally {
        await core.close();
      }
    });
  registerSnapshotExport(snapshot);

  program
    .command('serve')
    .description('serve snapshots over HTTP: GET /snapshots, /snapshots/latest, /snapshots/:version/:file')
    .option('--dir <dir>', 'snapshot directory (snapshots.dir, default <stateDir>/snapshots)')
    .option('--port <port>', 'HTTP port (http.port)', intOption)
    .option('--host <host>', 'interface to listen on (http.host)')
    .action(async (flags: { dir?: string; port?: number; host?: string }, cmd: Command) => {
      const config = loadConfig(cmd.optsWithGlobals<GlobalOptions>(), { 'snapshots.dir': flags.dir, 'http.port': flags.port, 'http.host': flags.host });
      const logger = createLogger(config, 'serve');
      const { startSnapshotServer } = await import('../../app/serve.js');
      const server = await startSnapshotServer(config, logger);
      process.stdout.write(`serving ${snapshotsDirOf(config)} at ${server.url}/snapshots\n`);
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      await server.close();
    });
}
