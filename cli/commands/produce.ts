/**
 * `modestream produce [file]`: JSONL (file or stdin) into the pairs topic, with pacing and a progress bar.
 * `--from fashion-mnist` generates the evaluation feed instead (images + web-crawl-like captions);
 * `--from webdataset <tars...>` and `--from tsv <file>` read crawls as data teams keep them
 * (app/webdataset.ts), and say at the end what they skipped and why.
 */
import { createReadStream, statSync } from 'node:fs';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { SingleBar, Presets } from 'cli-progress';
import { linesOf, openProducer, produceAll, type ProduceItem } from '../../app/produce.js';
import { resolveTarPaths, totalBytes, tsvItems, webDatasetItems, type Skip } from '../../app/webdataset.js';
import type { Config } from '../../src/config.js';
import { ConfigError } from '../../src/errors.js';
import { QUIET, createLogger, loadConfig, type GlobalOptions } from '../context.js';
import { intOption, positiveNumberOption } from '../options.js';

interface ProduceFlags {
  topic?: string;
  rate?: number;
  batch?: number;
  progress?: boolean;
  from?: 'fashion-mnist' | 'webdataset' | 'tsv';
  captionField?: string;
  split?: 'train' | 'test';
  classes?: string;
  count?: number;
  schedule?: string;
  seed?: number;
  wrongShare?: number;
  uninformativeShare?: number;
}

/** Flags that only mean something with --from (flag name, key in ProduceFlags). */
const FEED_FLAGS = [
  ['--split', 'split'],
  ['--classes', 'classes'],
  ['--count', 'count'],
  ['--schedule', 'schedule'],
  ['--seed', 'seed'],
  ['--wrong-share', 'wrongShare'],
  ['--uninformative-share', 'uninformativeShare'],
] as const;

function shareOption(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0 || n > 1) throw new InvalidArgumentError(`expected a share between 0 and 1, got "${value}"`);
  return n;
}

interface Source {
  items: AsyncIterable<ProduceItem>;
  /** Progress bar total: bytes of a file, messages of a generated feed; undefined for stdin. */
  total?: number;
}

/** The generated feed; imported lazily so that `--help` and plain JSONL runs never load the dataset code. */
async function feedSource(flags: ProduceFlags): Promise<Source> {
  const feed = await import('../../examples/fashion-mnist/feed.js');
  const { resolveFashionMnistDir } = await import('../../examples/fashion-mnist/dataset.js');
  const { resolveCaptionOptions } = await import('../../examples/fashion-mnist/captions.js');
  if (flags.count !== undefined && flags.count < 1) throw new ConfigError('--count: must be at least 1');
  if (flags.schedule !== undefined && (flags.classes !== undefined || flags.count !== undefined)) {
    throw new ConfigError('--schedule: cannot be combined with --classes or --count (the schedule names both per phase)');
  }
  const schedule =
    flags.schedule !== undefined
      ? feed.parseScheduleText(flags.schedule)
      : [{ classes: flags.classes === undefined ? feed.DEFAULT_SCHEDULE[0]!.classes : feed.parseClassList(flags.classes, '--classes'), count: flags.count }];
  const captionOptions = resolveCaptionOptions({ wrongShare: flags.wrongShare, uninformativeShare: flags.uninformativeShare });
  const options = { seed: flags.seed ?? 1, split: flags.split ?? 'train', schedule, captionOptions, packageDir: resolveFashionMnistDir() };
  // Planning up front rejects an impossible schedule before any broker connection, and sizes the bar.
  const total = feed.planFashionMnistFeed(options).length;
  async function* items(): AsyncGenerator<ProduceItem> {
    let position = 0;
    for await (const message of feed.fashionMnistPairs(options)) yield { ...message, position: ++position };
  }
  return { items: items(), total };
}

export function registerProduce(program: Command): void {
  program
    .command('produce')
    .description('send pairs to the pairs topic: JSON lines (one pair per line) from a file or stdin, WebDataset tars or a caption/path TSV (--from webdataset|tsv), or a generated feed (--from fashion-mnist); the key is the pair id')
    .argument('[files...]', 'JSONL file ("-" or absent: stdin); with --from webdataset: tar files, directories of them, or a glob; with --from tsv: the TSV file')
    .option('-t, --topic <topic>', 'target topic (default: topics.pairs)')
    .option('-r, --rate <n>', 'messages per second (default: as fast as the broker acknowledges)', positiveNumberOption)
    .option('-b, --batch <n>', 'messages per produce request', intOption, 500)
    .option('--no-progress', 'no progress bar')
    .addOption(new Option('--from <source>', 'instead of JSONL: fashion-mnist (generated Fashion-MNIST pairs with web-crawl-like captions), webdataset (<key>.jpg|png|webp + .txt + .json samples in tars, as img2dataset writes), tsv (caption<TAB>image path lines)').choices(['fashion-mnist', 'webdataset', 'tsv']))
    .option('--caption-field <name>', '--from webdataset: the .json field read when a sample has no .txt (default: caption)')
    .addOption(new Option('--split <split>', '--from: dataset split (default: train)').choices(['train', 'test']))
    .option('--classes <list>', '--from: labels 0..9 and/or families (tops, dresses, bottoms, footwear, bags), comma-separated (default: all)')
    .option('--count <n>', '--from: pairs to send (default: every image of the chosen classes)', intOption)
    .option('--schedule <phases>', '--from: drift schedule, phases "classes[:count]" separated by "/", e.g. "tops,bottoms,dresses:20000/footwear:8000"')
    .option('--seed <n>', '--from: seed for order and captions (default: 1)', intOption)
    .option('--wrong-share <x>', '--from: share of captions written for another class (default: 0.1)', shareOption)
    .option('--uninformative-share <x>', '--from: share of captions without class information (default: 0.05)', shareOption)
    .action(async (files: string[], flags: ProduceFlags, cmd: Command) => {
      const config = loadConfig(cmd.optsWithGlobals<GlobalOptions>(), {}, QUIET);
      const logger = createLogger(config, 'produce');
      if (flags.batch !== undefined && flags.batch < 1) throw new ConfigError('--batch: must be at least 1');
      const stray = FEED_FLAGS.find(([, key]) => flags[key] !== undefined);
      if (stray && flags.from !== 'fashion-mnist') throw new ConfigError(`${stray[0]}: only applies to a generated feed (add --from fashion-mnist)`);
      if (flags.captionField !== undefined && flags.from !== 'webdataset') throw new ConfigError('--caption-field: only applies to --from webdataset');
      const skips: Skip[] = [];
      let source: Source;
      if (flags.from === 'fashion-mnist') {
        if (files.length) throw new ConfigError(`produce: give either a file or --from fashion-mnist, not both (got "${files.join(' ')}")`);
        source = await feedSource(flags);
      } else if (flags.from === 'webdataset' || flags.from === 'tsv') {
        source = crawlSource(flags, files, config, (skip) => skips.push(skip));
      } else {
        if (files.length > 1) throw new ConfigError(`produce: one JSONL file at a time (got ${files.length}); WebDataset shards take --from webdataset`);
        source = jsonlSource(files[0]);
      }
      const { total } = source;
      const producer = await openProducer(config, logger);

      const showBar = flags.progress !== false && process.stderr.isTTY;
      const bar = showBar
        ? new SingleBar(
            { format: total ? ' {bar} {percentage}% | {sent} sent | {rate}/s' : ' {sent} sent | {rate}/s', stream: process.stderr, hideCursor: true },
            Presets.shades_classic,
          )
        : undefined;
      bar?.start(total ?? 1, 0, { sent: 0, rate: 0 });
      const abort = new AbortController();
      const onSigint = () => abort.abort();
      process.once('SIGINT', onSigint);
      const started = performance.now();
      try {
        const { sent } = await produceAll({
          producer,
          topic: flags.topic ?? config.topics.pairs,
          items: source.items,
          rate: flags.rate,
          batchSize: flags.batch,
          maxBatchBytes: config.kafka.maxBatchBytes,
          signal: abort.signal,
          onProgress: ({ sent, position }) => {
            const rate = Math.round(sent / ((performance.now() - started) / 1000));
            bar?.update(total && position !== undefined ? position : sent, { sent, rate });
          },
        });
        bar?.stop();
        const seconds = (performance.now() - started) / 1000;
        process.stdout.write(`produced ${sent} messages to ${flags.topic ?? config.topics.pairs} in ${seconds.toFixed(1)} s (${Math.round(sent / Math.max(seconds, 1e-3))}/s)\n`);
        if (skips.length) process.stdout.write(skipReport(skips));
      } finally {
        bar?.stop();
        process.off('SIGINT', onSigint);
        await producer.disconnect();
      }
    });
}

function jsonlSource(file: string | undefined): Source {
  if (file === undefined || file === '-') return { items: linesOf(process.stdin) };
  let total: number;
  try {
    total = statSync(file).size;
  } catch {
    throw new ConfigError(`produce: cannot read ${file}: no such file`);
  }
  return { items: linesOf(readLazily(file)), total };
}

/** Opens the file when the first line is pulled, i.e. after the broker connection succeeded. */
async function* readLazily(file: string): AsyncGenerator<Buffer> {
  yield* createReadStream(file) as AsyncIterable<Buffer>;
}

/** WebDataset tars or a TSV: paths checked before any broker connection, skips collected for the report. */
function crawlSource(flags: ProduceFlags, files: string[], config: Config, onSkip: (skip: Skip) => void): Source {
  const { maxMessageBytes } = config.limits;
  if (flags.from === 'tsv') {
    if (files.length !== 1) throw new ConfigError(`produce --from tsv: give exactly one TSV file (got ${files.length})`);
    const [file] = files as [string];
    let total: number;
    try {
      total = statSync(file).size;
    } catch {
      throw new ConfigError(`produce: cannot read ${file}: no such file`);
    }
    return { items: tsvItems(file, { maxMessageBytes }, onSkip), total };
  }
  const tars = resolveTarPaths(files);
  return { items: webDatasetItems(tars, { captionField: flags.captionField ?? 'caption', maxMessageBytes }, onSkip), total: totalBytes(tars) };
}

/** Skipped samples by reason, with the first few of each. */
function skipReport(skips: readonly Skip[]): string {
  const byReason = new Map<string, string[]>();
  for (const s of skips) byReason.set(s.reason, [...(byReason.get(s.reason) ?? []), s.detail]);
  const lines = [`skipped ${skips.length} samples:`];
  for (const [reason, details] of byReason) {
    lines.push(`  ${reason}: ${details.length}`);
    for (const d of details.slice(0, 3)) lines.push(`    ${d}`);
    if (details.length > 3) lines.push(`    ... ${details.length - 3} more`);
  }
  return `${lines.join('\n')}\n`;
}
