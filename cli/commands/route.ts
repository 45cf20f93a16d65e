/**
 * `modestream route "caption" ["caption"...]`: where would these captions go? Prints, per caption, the
 * nearest fine cluster of the newest centroid epoch, its expert, the squared L2 distance and the next two
 * nearest fine clusters (app/route.ts; read-only, safe next to a running `modestream run`).
 */
import type { Command } from 'commander';
import type { CaptionRoute, FineHit } from '../../app/route.js';
import { QUIET, loadConfig, type GlobalOptions } from '../context.js';

interface RouteFlags {
  json?: boolean;
}

export function registerRoute(program: Command): void {
  program
    .command('route')
    .description('show the fine cluster and expert each caption routes to (newest centroid epoch), with the next nearest clusters')
    .argument('<captions...>', 'captions to route')
    .option('--json', 'print one JSON line per caption')
    .action(async (captions: string[], flags: RouteFlags, cmd: Command) => {
      const config = loadConfig(cmd.optsWithGlobals<GlobalOptions>(), {}, QUIET);
      const { routeCaptions } = await import('../../app/route.js');
      const routes = await routeCaptions(config, captions);
      process.stdout.write(flags.json ? routes.map((r) => `${JSON.stringify(r)}\n`).join('') : formatRoutes(routes));
    });
}

function formatRoutes(routes: CaptionRoute[]): string {
  const hit = (h: FineHit) => `fine ${h.fine} (expert ${h.expert}, dist² ${h.dist2.toFixed(4)})`;
  return routes
    .map((r) => `${JSON.stringify(r.caption)}\n  epoch ${r.epoch}: ${hit(r)}\n  next: ${r.next.map(hit).join(', ') || '-'}\n`)
    .join('');
}
