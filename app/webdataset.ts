/**
 * Feeds for `modestream produce --from webdataset|tsv`: WebDataset tar shards read as streams (one
 * sample in memory at a time, never a whole shard), and CC3M/CC12M-style TSV files of caption + local
 * image path. Each yields pair messages for produceAll and reports what it skips, with a reason,
 * through `onSkip` (src/contract/webdataset.ts says what a sample must hold).
 */
import { createReadStream, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, extname, join, relative, resolve } from 'node:path';
import { extract } from 'tar-stream';
import { IMAGE_EXTENSIONS, samplePair, splitMemberName, type SampleOptions, type SkipReason, type WebDatasetSample } from '../src/contract/webdataset.js';
import { encodePairMessage } from '../src/contract/pair.js';
import { ConfigError } from '../src/errors.js';
import { linesOf, type ProduceItem } from './produce.js';

export interface Skip {
  reason: SkipReason | 'missing-image';
  detail: string;
}

const GLOB = /[*?[]/;

/**
 * Tar files from arguments: files as given, every `*.tar` of a directory (sorted), and a glob in the
 * last path segment (`shards/0000*.tar`; shells expand the rest, braces included).
 */
export function resolveTarPaths(args: readonly string[]): string[] {
  if (args.length === 0) throw new ConfigError('produce --from webdataset: give one or more tar files, globs or directories');
  return args.flatMap((arg) => {
    if (GLOB.test(basename(arg))) {
      const dir = dirname(arg);
      const pattern = globToRegExp(basename(arg));
      const found = listDir(dir, arg).filter((name) => pattern.test(name)).sort().map((name) => join(dir, name));
      if (found.length === 0) throw new ConfigError(`produce: no file matches ${arg}`);
      return found;
    }
    let stat;
    try {
      stat = statSync(arg);
    } catch {
      throw new ConfigError(`produce: cannot read ${arg}: no such file or directory`);
    }
    if (!stat.isDirectory()) return [arg];
    const tars = listDir(arg, arg).filter((name) => name.endsWith('.tar')).sort().map((name) => join(arg, name));
    if (tars.length === 0) throw new ConfigError(`produce: no .tar file in directory ${arg}`);
    return tars;
  });
}

function listDir(dir: string, arg: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    throw new ConfigError(`produce: cannot read ${arg}: no such directory ${dir}`);
  }
}

function globToRegExp(glob: string): RegExp {
  const body = glob.replace(/[.+^${}()|\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]');
  return new RegExp(`^${body}$`);
}

/** Total bytes of the tars (the progress bar's total). */
export const totalBytes = (paths: readonly string[]) => paths.reduce((sum, p) => sum + statSync(p).size, 0);

/**
 * The pairs of the tars, in order. Members of one key must be adjacent (as WebDataset writers put
 * them); a key seen again later starts a new sample. `position` is the bytes read so far.
 */
export async function* webDatasetItems(paths: readonly string[], options: Omit<SampleOptions, 'source'>, onSkip: (skip: Skip) => void): AsyncGenerator<ProduceItem> {
  let done = 0;
  for (const path of paths) {
    const size = statSync(path).size;
    const source = basename(path);
    const tar = extract();
    const input = createReadStream(path);
    let read = 0;
    input.on('data', (chunk) => (read += chunk.length));
    input.on('error', (err) => tar.destroy(err));
    input.pipe(tar);
    let sample: WebDatasetSample | undefined;
    const finish = function* (s: WebDatasetSample | undefined): Generator<ProduceItem> {
      if (!s) return;
      const result = samplePair(s, { ...options, source });
      if (result.ok) yield { key: result.id, value: result.value, position: done + read };
      else onSkip({ reason: result.reason, detail: `${source}: ${result.detail}` });
    };
    for await (const entry of tar) {
      const chunks: Buffer[] = [];
      for await (const chunk of entry) chunks.push(chunk as Buffer);
      if (entry.header.type !== 'file') continue;
      const parts = splitMemberName(entry.header.name);
      if (!parts) continue;
      if (sample && sample.key !== parts.key) {
        yield* finish(sample);
        sample = undefined;
      }
      sample ??= { key: parts.key, members: new Map() };
      sample.members.set(parts.ext, Buffer.concat(chunks));
    }
    yield* finish(sample);
    done += size;
  }
}

/**
 * CC3M/CC12M-style TSV: `caption<TAB>image path` per line, paths relative to the file's directory; a
 * first line whose first column is `caption` is a header. The id is the image path without extension.
 */
export async function* tsvItems(file: string, options: { maxMessageBytes: number }, onSkip: (skip: Skip) => void): AsyncGenerator<ProduceItem> {
  const root = dirname(resolve(file));
  let line = 0;
  for await (const { value, position } of linesOf(createReadStream(file))) {
    line++;
    const [caption = '', path = ''] = value.toString('utf8').split('\t').map((c) => c.trim());
    if (line === 1 && caption.toLowerCase() === 'caption') continue;
    const where = `${basename(file)}:${line}`;
    if (!caption) {
      onSkip({ reason: 'missing-caption', detail: `${where}: empty caption` });
      continue;
    }
    const ext = extname(path).slice(1).toLowerCase();
    if (!(IMAGE_EXTENSIONS as readonly string[]).includes(ext)) {
      onSkip({ reason: path ? 'unknown-image-type' : 'no-image', detail: `${where}: ${path ? `"${path}" is not a JPEG, PNG, WebP, GIF or AVIF file name` : 'no image path'}` });
      continue;
    }
    const full = resolve(root, path);
    let bytes: Buffer;
    try {
      bytes = readFileSync(full);
    } catch {
      onSkip({ reason: 'missing-image', detail: `${where}: cannot read ${path}` });
      continue;
    }
    const id = relative(root, full).slice(0, -(ext.length + 1));
    const message = encodePairMessage({ id, caption, image: { kind: 'encoded', bytes }, source: basename(file) });
    if (message.length > options.maxMessageBytes) {
      onSkip({ reason: 'oversized', detail: `${where}: ${message.length} bytes as a message, over maxMessageBytes ${options.maxMessageBytes}` });
      continue;
    }
    yield { key: id, value: message, position };
  }
}
