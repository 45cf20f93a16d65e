/**
 * `modestream export (--expert N | --all) --format webdataset --out DIR [--shard-size K]`: this node's
 * shard records of one expert (or of every expert with records) as WebDataset tar shards, one directory
 * per expert, with a manifest; resumable (app/export.ts). Reads the state directory read-only, so it is
 * safe next to a running `modestream run`. A line per finished tar goes to stderr, a summary per expert
 * to stdout.
 */
import type { Command } from 'commander';
import type { ExportedTar, ExportStart, ExpertExportResult } from '../../app/export.js';
import { ConfigError } from '../../src/errors.js';
import { QUIET, loadConfig, type GlobalOptions } from '../context.js';
import { intOption } from '../options.js';

interface ExportFlags {
  expert?: number;
  all?: boolean;
  format?: string;
  out?: string;
  shardSize?: number;
}

/** Kept here too so that `--help` and bad flags never load the store modules. */
const FORMATS = ['webdataset'];
const DEFAULT_SHARD_SIZE = 10_000;

export function registerExport(program: Command): void {
  program
    .command('export')
    .description("export an expert's records (this node's shards) as WebDataset tar shards: DIR/expert-N/shard-000000.tar ... and manifest.json; resumable")
    .option('--expert <id>', 'the expert to export', intOption)
    .option('--all', 'export every expert with records (unrouted records excluded)')
    .option('--format <format>', 'output format; only "webdataset" for now (required)')
    .option('--out <dir>', 'output directory; a later run into the same directory resumes (required)')
    .option('--shard-size <samples>', `samples per tar (default ${DEFAULT_SHARD_SIZE}); a resume must use the same`, intOption)
    .action(async (flags: ExportFlags, cmd: Command) => {
      const { experts, out, shardSize } = checkFlags(flags);
      const config = loadConfig(cmd.optsWithGlobals<GlobalOptions>(), {}, QUIET);
      const { exportFromState } = await import('../../app/export.js');
      const { experts: results } = await exportFromState(config, {
        experts,
        format: 'webdataset',
        outDir: out,
        shardSize,
        onStart: (start) => {
          const line = describeStart(start);
          if (line) process.stderr.write(`${line}\n`);
        },
        onTar: (tar) => process.stderr.write(`${describeTar(tar)}\n`),
      });
      if (results.length === 0) process.stdout.write('exported nothing: no expert has records in this node\'s shards\n');
      for (const r of results) {
        if (r.totalTars > r.tars) process.stderr.write(`expert ${r.expert}: ${r.totalSamples} samples in ${r.totalTars} tars in all, earlier runs included\n`);
        process.stdout.write(`${summaryLine(r)}\n`);
      }
    });
}

function checkFlags(flags: ExportFlags): { experts: number[] | 'all'; out: string; shardSize: number } {
  if (flags.format === undefined) throw new ConfigError('export: --format is required; supported: webdataset');
  if (!FORMATS.includes(flags.format)) throw new ConfigError(`export: --format ${flags.format} is not supported; supported for now: ${FORMATS.join(', ')}`);
  if (flags.expert !== undefined && flags.all) throw new ConfigError('export: give either --expert N or --all, not both');
  if (flags.expert === undefined && !flags.all) throw new ConfigError('export: give --expert N or --all');
  if (flags.expert !== undefined && flags.expert < 0) throw new ConfigError(`export: --expert must be an expert id (0 or more), got ${flags.expert} (unrouted records are not exported)`);
  if (flags.out === undefined || flags.out.trim() === '') throw new ConfigError('export: --out DIR is required');
  const shardSize = flags.shardSize ?? DEFAULT_SHARD_SIZE;
  if (shardSize < 1) throw new ConfigError(`export: --shard-size must be at least 1, got ${shardSize}`);
  return { experts: flags.all ? 'all' : [flags.expert!], out: flags.out, shardSize };
}

function describeStart(s: ExportStart): string | undefined {
  const removed = s.removed.length ? `; removed leftovers ${s.removed.join(', ')}` : '';
  if (s.keptTars === 0 && !removed) return undefined;
  return `expert ${s.expert}: resuming ${s.dir} after ${s.keptTars} tars (${s.keptSamples} samples), from seq ${s.fromSeq} up to ${s.throughSeq}${removed}`;
}

function describeTar(t: ExportedTar): string {
  return `expert ${t.expert}: ${t.path}: ${t.samples} samples (seqs ${t.firstSeq}-${t.lastSeq}), ${formatBytes(t.bytes)}`;
}

/** `exported S samples of expert N into T tars in DIR/expert-N (W without an image)`: this run's counts (a resume's totals go to stderr). */
export function summaryLine(r: Pick<ExpertExportResult, 'expert' | 'samples' | 'tars' | 'dir' | 'withoutImage'>): string {
  return `exported ${r.samples} samples of expert ${r.expert} into ${r.tars} tars in ${r.dir} (${r.withoutImage} without an image)`;
}

function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = n / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}
