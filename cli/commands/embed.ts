/**
 * `modestream embed`: captions on stdin (one per line, UTF-8, blank lines skipped) -> one JSON line per
 * caption on stdout, `{"caption": ..., "embedding": [...]}`, with the configured embedder: the vectors
 * are exactly those that routing clusters, so they can be inspected or compared with other tools.
 *
 * Streaming: lines are embedded in batches as they arrive (a batch closes when it is full or when the
 * input pauses), and reading pauses while batches wait, so memory stays bounded on endless input.
 */
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import type { Command } from 'commander';
import { createEmbedder, type CaptionEmbedder } from '../../src/embed/embedder.js';
import { ConfigError } from '../../src/errors.js';
import { QUIET, loadConfig, type GlobalOptions } from '../context.js';
import { intOption } from '../options.js';

interface EmbedFlags {
  batch: number;
  fingerprint?: boolean;
  dimOnly?: boolean;
}

/** One embed call per this many lines: large enough to amortise model calls, small enough to stream. */
const DEFAULT_BATCH = 256;
/** Batches waiting for the embedder before reading pauses. */
const MAX_QUEUED_BATCHES = 2;

export function registerEmbed(program: Command): void {
  program
    .command('embed')
    .description('embed captions from stdin (one per line) with the configured embedder; one JSON line each on stdout')
    .option('--batch <n>', 'captions per embed call', intOption, DEFAULT_BATCH)
    .option('--fingerprint', "print the embedder's fingerprint (what centroid epochs store) and exit")
    .option('--dim-only', "print the embedder's dimension and exit")
    .action(async (flags: EmbedFlags, cmd: Command) => {
      if (flags.batch < 1) throw new ConfigError(`--batch must be at least 1, got ${flags.batch}`);
      const config = loadConfig(cmd.optsWithGlobals<GlobalOptions>(), {}, QUIET);
      const embedder = await createEmbedder(config.embedder, { modelsDir: config.modelsDir });
      try {
        if (flags.fingerprint) process.stdout.write(`${embedder.fingerprint}\n`);
        else if (flags.dimOnly) process.stdout.write(`${embedder.dim}\n`);
        else await embedLines({ input: process.stdin, output: process.stdout, embedder, batch: flags.batch });
      } finally {
        embedder.dispose();
      }
    });
}

export interface EmbedLinesOptions {
  input: Readable;
  output: Writable;
  embedder: CaptionEmbedder;
  batch: number;
}

/** Resolves once every line is written; rejects with the first embedding or write failure. */
export async function embedLines({ input, output, embedder, batch }: EmbedLinesOptions): Promise<number> {
  const rl = createInterface({ input, crlfDelay: Infinity });
  let pending: string[] = [];
  let queued = 0;
  let written = 0;
  let failure: unknown;
  let chain: Promise<void> = Promise.resolve();
  let idle: NodeJS.Immediate | undefined;
  let closed = false;
  rl.once('close', () => (closed = true));

  const writeBatch = async (captions: string[]) => {
    const vectors = await embedder.embed(captions);
    const dim = embedder.dim;
    const text = captions
      .map((caption, i) => JSON.stringify({ caption, embedding: toNumbers(vectors.subarray(i * dim, (i + 1) * dim)) }))
      .join('\n');
    if (!output.write(`${text}\n`)) await once(output, 'drain');
    written += captions.length;
  };

  const flush = () => {
    if (idle) clearImmediate(idle);
    idle = undefined;
    if (pending.length === 0) return;
    const captions = pending;
    pending = [];
    queued++;
    if (queued >= MAX_QUEUED_BATCHES && !closed) rl.pause();
    chain = chain
      .then(() => (failure === undefined ? writeBatch(captions) : undefined))
      .catch((err: unknown) => {
        // Stop reading: nothing after a failed batch may be written out of order.
        failure ??= err;
        if (!closed) rl.close();
      })
      .finally(() => {
        queued--;
        if (queued < MAX_QUEUED_BATCHES && !closed) rl.resume();
      });
  };

  rl.on('line', (line) => {
    if (line.trim() === '') return;
    pending.push(line);
    if (pending.length >= batch) flush();
    // All lines of one input chunk arrive in one go; a batch that is not full closes when they are
    // done, so an interactive or slow producer gets its vectors without waiting for a full batch.
    else idle ??= setImmediate(flush);
  });
  // A consumer that stops reading (`| head`) closes the pipe: stop quietly, like other line tools.
  const onOutputError = (err: unknown) => {
    failure ??= err;
    if (!closed) rl.close();
  };
  output.on('error', onOutputError);
  try {
    await once(rl, 'close');
    flush();
    await chain;
  } finally {
    output.off('error', onOutputError);
  }
  if (failure !== undefined && (failure as NodeJS.ErrnoException).code !== 'EPIPE') throw failure;
  return written;
}

/**
 * Nine significant digits always round-trip to the same float32, and print shorter than the double
 * the float32 widens to (0.123456791 rather than 0.12345679104328156).
 */
function toNumbers(row: Float32Array): number[] {
  return Array.from(row, (v) => Number(v.toPrecision(9)));
}
