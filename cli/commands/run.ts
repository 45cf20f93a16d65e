/** `modestream run`: every role in one process by default; SIGTERM/SIGINT finish the chunk in flight, commit, close. */
import type { Command } from 'commander';
import { createLogger, loadConfig, type GlobalOptions } from '../context.js';
import { Role } from '../../src/config.js';
import { intOption } from '../options.js';

interface RunFlags {
  roles?: string;
  httpPort?: number;
}

export function registerRun(program: Command): void {
  program
    .command('run')
    .description('consume pairs, route them, shard them durably in LMDB, bootstrap centers, serve /status')
    .option('--roles <list>', `roles to run, comma-separated: ${Role.options.join(',')} (roles)`)
    .option('--http-port <port>', 'HTTP port for /healthz and /status.json; 0 picks a free one (http.port)', intOption)
    .action(async (flags: RunFlags, cmd: Command) => {
      const config = loadConfig(cmd.optsWithGlobals<GlobalOptions>(), { roles: flags.roles, 'http.port': flags.httpPort });
      const logger = createLogger(config);
      const { startApp } = await import('../../app/run.js');
      const app = await startApp({ config, logger });
      logger.info({ roles: config.roles, backend: app.backend.name, status: app.httpUrl && `${app.httpUrl}/status.json` }, 'modestream running');
      await new Promise<void>((resolve) => {
        let signals = 0;
        const onSignal = (signal: NodeJS.Signals) => {
          if (++signals > 1) {
            logger.warn({ signal }, 'second signal: exiting without a clean shutdown');
            process.exit(130);
          }
          logger.info({ signal }, 'shutting down: finishing the chunk in flight');
          app.stop().then(resolve, (err: unknown) => {
            logger.error({ err: String(err) }, 'shutdown failed');
            process.exitCode = 1;
            resolve();
          });
        };
        process.on('SIGINT', onSignal);
        process.on('SIGTERM', onSignal);
      });
      logger.info('stopped');
    });
}
