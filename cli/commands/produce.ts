/** `modestream produce [file]`: JSONL (file or stdin) into the pairs topic, with pacing and a progress bar. */
import { createReadStream, statSync } from 'node:fs';
import type { Command } from 'commander';
import { SingleBar, Presets } from 'cli-progress';
import { linesOf, produceAll, type ProduceItem } from '../../app/produce.js';
import { ConfigError } from '../../src/errors.js';
import { createKafka, createProducer, ensureTopics } from '../../streams/kafka.js';
import { QUIET, createLogger, loadConfig, type GlobalOptions } from '../context.js';
import { intOption, positiveNumberOption } from '../options.js';

interface ProduceFlags {
  topic?: string;
  rate?: number;
  batch?: number;
  progress?: boolean;
}

export function registerProduce(program: Command): void {
  program
    .command('produce')
    .description('send JSON lines (one pair per line) from a file or stdin to the pairs topic; the key is the pair id')
    .argument('[file]', 'JSONL file; "-" or absent reads stdin')
    .option('-t, --topic <topic>', 'target topic (default: topics.pairs)')
    .option('-r, --rate <n>', 'messages per second (default: as fast as the broker acknowledges)', positiveNumberOption)
    .option('-b, --batch <n>', 'messages per produce request', intOption, 500)
    .option('--no-progress', 'no progress bar')
    .action(async (file: string | undefined, flags: ProduceFlags, cmd: Command) => {
      const config = loadConfig(cmd.optsWithGlobals<GlobalOptions>(), {}, QUIET);
      const logger = createLogger(config, 'produce');
      if (flags.batch !== undefined && flags.batch < 1) throw new ConfigError('--batch: must be at least 1');
      const fromStdin = file === undefined || file === '-';
      let total: number | undefined;
      if (!fromStdin) {
        try {
          total = statSync(file).size;
        } catch {
          throw new ConfigError(`produce: cannot read ${file}: no such file`);
        }
      }
      const kafka = createKafka({ settings: config.kafka, logger });
      const admin = kafka.admin();
      await admin.connect();
      await ensureTopics({ admin, topics: config.topics, logger });
      await admin.disconnect();
      const producer = createProducer(kafka);
      await producer.connect();

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
        const source: AsyncIterable<Buffer | string> = fromStdin ? process.stdin : createReadStream(file);
        const items: AsyncIterable<ProduceItem> = linesOf(source);
        const { sent } = await produceAll({
          producer,
          topic: flags.topic ?? config.topics.pairs,
          items,
          rate: flags.rate,
          batchSize: flags.batch,
          signal: abort.signal,
          onProgress: ({ sent, position }) => {
            const rate = Math.round(sent / ((performance.now() - started) / 1000));
            bar?.update(total && position !== undefined ? position : sent, { sent, rate });
          },
        });
        bar?.stop();
        const seconds = (performance.now() - started) / 1000;
        process.stdout.write(`produced ${sent} messages to ${flags.topic ?? config.topics.pairs} in ${seconds.toFixed(1)} s (${Math.round(sent / Math.max(seconds, 1e-3))}/s)\n`);
      } finally {
        bar?.stop();
        process.off('SIGINT', onSigint);
        await producer.disconnect();
      }
    });
}
