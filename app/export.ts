/**
 * `modestream export --format webdataset`: an expert's records, as this node's shard store holds them,
 * into WebDataset tar shards that training tools read directly (webdataset, img2dataset's layout):
 *
 *   OUT/expert-<N>/shard-000000.tar, shard-000001.tar, ...   up to `shardSize` samples each
 *   OUT/expert-<N>/manifest.json                               what is finished (schema: ExportManifest)
 *
 * A sample's key is `e<N>-<seq, 10 digits>` (no dot: WebDataset splits key and extension at the first
 * dot) and its members come in this order: the image file as received (`.jpg`, `.png`, `.webp`, `.gif`,
 * `.avif`), or raw pixels encoded as `.png`, or nothing for an embedding-only image; `.txt` the caption
 * (UTF-8); `.json` {id, fine, expert, epoch, source?, ts (ISO), meta?}.
 *
 * Guarantees:
 * - Records go out in seq order, up to the shard's `nextSeq` as read when the expert's export starts
 *   (`throughSeq`); records appended meanwhile wait for the next export. Gaps (records moved to another
 *   expert) are skipped.
 * - A tar is never visible half-written: it is written as `shard-XXXXXX.tar.tmp`, fsynced, renamed to
 *   `.tar`, and the directory fsynced; then the manifest is rewritten the same way (temp, fsync, rename,
 *   fsync), so a listed tar is always complete and its sha256 is that of the file.
 * - Resumable: a later run into the same directory keeps every tar the manifest lists (never rewritten),
 *   deletes leftovers (`.tmp` files, tars the manifest does not list) and continues after the last listed
 *   tar, up to the shard's new `nextSeq` (so it also picks up records appended since). Resuming with
 *   another shard size is refused (ConfigError): the tars would no longer line up.
 *
 * Not guarded: two exports running into the same directory at once. A record moved to another expert
 * after it was exported is exported again with that expert (each export is a view of the shards now).
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { pack, type Pack } from 'tar-stream';
import { z } from 'zod';
import type { Config } from '../src/config.js';
import { UNROUTED, type RoutedRecord } from '../src/contract/routed.js';
import { ConfigError, EnvironmentError, StateError, errorMessage } from '../src/errors.js';
import { fsyncPath, readOptionalText, writeFileAtomically } from '../state/artifacts.js';
import { openStateEnv } from '../state/env.js';
import { createShardStore, type ShardStore } from '../state/shards.js';

export const EXPORT_FORMATS = ['webdataset'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];
export const DEFAULT_SHARD_SIZE = 10_000;
export const MANIFEST_FILE = 'manifest.json';

/** Records read from LMDB per batch: bounded memory, no read transaction held across the writes. */
const READ_BATCH = 32;
/** tar's mtime field: 11 octal digits of seconds. */
const MAX_TAR_SECONDS = 8 ** 11 - 1;

const ShardEntrySchema = z.object({
  file: z.string().regex(/^shard-\d{6,}\.tar$/),
  samples: z.number().int().positive(),
  bytes: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  firstSeq: z.number().int().nonnegative(),
  lastSeq: z.number().int().nonnegative(),
  withoutImage: z.number().int().nonnegative().optional(),
});

const ManifestSchema = z.object({
  expert: z.number().int().nonnegative(),
  format: z.literal('webdataset'),
  /** Samples per tar (the last tar of each run may hold fewer). */
  shardSize: z.number().int().positive(),
  /** The shard's nextSeq this export targets: when complete, every record below it is in a listed tar. */
  throughSeq: z.number().int().nonnegative(),
  shards: z.array(ShardEntrySchema),
  samples: z.number().int().nonnegative(),
  complete: z.boolean(),
});

export type ExportShardEntry = z.infer<typeof ShardEntrySchema>;
export type ExportManifest = z.infer<typeof ManifestSchema>;

/** A tar just made visible (renamed into place and listed in the manifest). */
export interface ExportedTar extends ExportShardEntry {
  expert: number;
  /** Full path of the tar. */
  path: string;
}

/** An expert's export about to start: where it resumes from. */
export interface ExportStart {
  expert: number;
  dir: string;
  throughSeq: number;
  /** First seq read in this run. */
  fromSeq: number;
  /** Tars and samples kept from earlier runs (0 and 0 for a fresh export). */
  keptTars: number;
  keptSamples: number;
  /** Leftovers deleted (`.tmp` files, unlisted tars). */
  removed: string[];
}

export interface ExpertExportResult {
  expert: number;
  dir: string;
  /** Written by this run. */
  samples: number;
  tars: number;
  withoutImage: number;
  /** The directory's totals after this run (earlier runs' tars included). */
  totalSamples: number;
  totalTars: number;
  throughSeq: number;
}

export interface ExportResult {
  experts: ExpertExportResult[];
}

export interface ExportOptions {
  store: Pick<ShardStore, 'shardSize' | 'read'>;
  experts: readonly number[];
  outDir: string;
  shardSize: number;
  onTar?: (tar: ExportedTar) => void;
  onStart?: (start: ExportStart) => void;
}

export const expertDirName = (expert: number): string => `expert-${expert}`;
export const shardFileName = (index: number): string => `shard-${String(index).padStart(6, '0')}.tar`;
/** A sample's key: no dot (WebDataset's key ends at the first dot of the member name). */
export const sampleKey = (expert: number, seq: number): string => `e${expert}-${String(seq).padStart(10, '0')}`;

/** The experts `--all` exports: every one with records in this node's shards, UNROUTED excluded, in order. */
export function expertsWithRecords(store: Pick<ShardStore, 'expertStats'>): number[] {
  return store
    .expertStats()
    .filter((s) => s.expert !== UNROUTED && s.records > 0)
    .map((s) => s.expert)
    .sort((a, b) => a - b);
}

/** Exports each expert in turn (see the file comment); resolves once every tar and manifest is durable. */
export async function exportWebDataset({ store, experts, outDir, shardSize, onTar, onStart }: ExportOptions): Promise<ExportResult> {
  if (!Number.isInteger(shardSize) || shardSize < 1) throw new ConfigError(`--shard-size: expected a positive integer, got ${shardSize}`);
  for (const expert of experts) {
    if (!Number.isInteger(expert) || expert < 0) throw new ConfigError(`--expert: expected an expert id (a non-negative integer), got ${expert}`);
  }
  const results: ExpertExportResult[] = [];
  for (const expert of experts) results.push(await exportExpert(store, expert, outDir, shardSize, onTar, onStart));
  return { experts: results };
}

async function exportExpert(
  store: ExportOptions['store'],
  expert: number,
  outDir: string,
  shardSize: number,
  onTar: ExportOptions['onTar'],
  onStart: ExportOptions['onStart'],
): Promise<ExpertExportResult> {
  const dir = join(outDir, expertDirName(expert));
  await mkdir(dir, { recursive: true });
  const previous = await readManifest(dir, expert);
  if (previous && previous.shardSize !== shardSize) {
    throw new ConfigError(
      `${dir} was exported with --shard-size ${previous.shardSize}, not ${shardSize}: pass --shard-size ${previous.shardSize} to resume it, or export into a new --out`,
    );
  }
  const shards: ExportShardEntry[] = previous ? [...previous.shards] : [];
  await checkListedTars(dir, shards);
  const removed = await removeLeftovers(dir, shards);

  const { nextSeq: throughSeq } = store.shardSize(expert);
  // A complete manifest covers every seq below its throughSeq; an interrupted one ends at its last tar.
  const fromSeq = previous?.complete ? previous.throughSeq : shards.length ? shards[shards.length - 1]!.lastSeq + 1 : 0;
  const manifest = (complete: boolean): ExportManifest => ({
    expert,
    format: 'webdataset',
    shardSize,
    throughSeq,
    shards,
    samples: shards.reduce((sum, s) => sum + s.samples, 0),
    complete,
  });
  const kept = { tars: shards.length, samples: manifest(false).samples };
  onStart?.({ expert, dir, throughSeq, fromSeq, keptTars: kept.tars, keptSamples: kept.samples, removed });
  await writeManifest(dir, manifest(false));

  let written = { samples: 0, tars: 0, withoutImage: 0 };
  let tar: TarWriter | undefined;
  let inTar = { samples: 0, withoutImage: 0, firstSeq: 0, lastSeq: 0 };

  const finishTar = async (): Promise<void> => {
    if (!tar) return;
    const current = tar;
    tar = undefined;
    const { bytes, sha256 } = await current.finish().catch(async (err: unknown) => {
      await current.abort();
      throw err;
    });
    const entry: ExportShardEntry = { file: current.file, samples: inTar.samples, bytes, sha256, firstSeq: inTar.firstSeq, lastSeq: inTar.lastSeq, withoutImage: inTar.withoutImage };
    shards.push(entry);
    await writeManifest(dir, manifest(false));
    written = { samples: written.samples + inTar.samples, tars: written.tars + 1, withoutImage: written.withoutImage + inTar.withoutImage };
    onTar?.({ expert, path: join(dir, current.file), ...entry });
  };

  try {
    let from = fromSeq;
    while (from < throughSeq) {
      const read = [...store.read(expert, { fromSeq: from, limit: READ_BATCH })];
      if (read.length === 0) break;
      const batch = read.filter((r) => r.seq < throughSeq);
      // Images are encoded side by side (sharp's pool); written in seq order.
      const samples = await Promise.all(batch.map(({ seq, record }) => sampleMembers(expert, seq, record)));
      for (const sample of samples) {
        if (!tar) {
          tar = await TarWriter.open(dir, shardFileName(shards.length));
          inTar = { samples: 0, withoutImage: 0, firstSeq: sample.seq, lastSeq: sample.seq };
        }
        await tar.add(sample.members);
        inTar.samples++;
        inTar.lastSeq = sample.seq;
        if (!sample.hasImage) inTar.withoutImage++;
        if (inTar.samples >= shardSize) await finishTar();
      }
      if (batch.length < read.length) break;
      from = read[read.length - 1]!.seq + 1;
    }
    await finishTar();
  } catch (err) {
    await tar?.abort();
    throw err;
  }
  const final = manifest(true);
  await writeManifest(dir, final);
  return { expert, dir, ...written, totalSamples: final.samples, totalTars: final.shards.length, throughSeq };
}

interface Member {
  name: string;
  data: Buffer;
  mtime: Date;
}

interface Sample {
  seq: number;
  hasImage: boolean;
  members: Member[];
}

/** The image extension of an original file: `jpg` for JPEG, else the format's name. */
function imageExtension(format: string, where: string): string {
  const ext = format.toLowerCase() === 'jpeg' ? 'jpg' : format.toLowerCase();
  if (!/^[a-z0-9]+$/.test(ext)) throw new StateError(`${where}: original image format "${format}" cannot be a file extension`);
  return ext;
}

async function sampleMembers(expert: number, seq: number, record: RoutedRecord): Promise<Sample> {
  const key = sampleKey(expert, seq);
  const mtime = tarTime(record.ts);
  const members: Member[] = [];
  const { original, image } = record;
  if (original) {
    members.push({ name: `${key}.${imageExtension(original.format, `record ${record.id} at [${expert}, ${seq}]`)}`, data: asBuffer(original.bytes), mtime });
  } else if (image.kind === 'pixels') {
    const raw = sharp(asBuffer(image.data), { raw: { width: image.width, height: image.height, channels: image.channels } });
    // Grey stays grey: sharp would otherwise write a single-channel image as RGB.
    const png = await (image.channels === 1 ? raw.toColourspace('b-w') : raw)
      .png()
      .toBuffer()
      .catch((err: unknown) => {
        throw new StateError(`record ${record.id} at [${expert}, ${seq}]: its ${image.width}x${image.height}x${image.channels} pixels cannot be encoded as PNG: ${errorMessage(err)}`);
      });
    members.push({ name: `${key}.png`, data: png, mtime });
  }
  members.push({ name: `${key}.txt`, data: Buffer.from(record.caption, 'utf8'), mtime });
  members.push({ name: `${key}.json`, data: Buffer.from(JSON.stringify(sampleJson(expert, record), jsonSafe), 'utf8'), mtime });
  return { seq, hasImage: members.length === 3, members };
}

function sampleJson(expert: number, record: RoutedRecord): Record<string, unknown> {
  const date = new Date(record.ts);
  return {
    id: record.id,
    fine: record.route?.fine ?? null,
    expert: record.route?.expert ?? expert,
    epoch: record.route?.epoch ?? null,
    ...(record.source !== undefined ? { source: record.source } : {}),
    ts: Number.isFinite(date.getTime()) ? date.toISOString() : null,
    ...(record.meta !== undefined ? { meta: record.meta } : {}),
  };
}

/** JSON.stringify replacer for what msgpack may hand back in `meta`: 64-bit integers. */
function jsonSafe(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString();
  return value;
}

/** The member's mtime: the record's event time (so a re-export of the same records gives the same bytes). */
function tarTime(ts: number): Date {
  const seconds = Math.floor(ts / 1000);
  return new Date(Number.isFinite(seconds) ? Math.min(Math.max(seconds, 0), MAX_TAR_SECONDS) * 1000 : 0);
}

const asBuffer = (bytes: Uint8Array): Buffer => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);

/** One tar being written as `<file>.tmp`: hashed and counted as it streams to disk. */
class TarWriter {
  private readonly hash = createHash('sha256');
  private bytes = 0;
  private readonly consumed: Promise<void>;
  /** Rejects once the tar stream has ended or failed: what a waiting entry races against. */
  private readonly ended: Promise<never>;

  private constructor(
    readonly dir: string,
    readonly file: string,
    private readonly handle: FileHandle,
    private readonly packer: Pack,
  ) {
    this.consumed = this.consume();
    this.ended = this.consumed.then(() => Promise.reject(new StateError(`${this.tmpPath}: the tar stream ended early`)));
    // Failures surface through add/finish; these only keep an early one from being unhandled.
    this.consumed.catch(() => undefined);
    this.ended.catch(() => undefined);
  }

  static async open(dir: string, file: string): Promise<TarWriter> {
    const handle = await open(join(dir, `${file}.tmp`), 'w');
    return new TarWriter(dir, file, handle, pack());
  }

  private get tmpPath(): string {
    return join(this.dir, `${this.file}.tmp`);
  }

  private async consume(): Promise<void> {
    for await (const chunk of this.packer as AsyncIterable<Uint8Array>) {
      this.hash.update(chunk);
      this.bytes += chunk.byteLength;
      await this.handle.write(chunk);
    }
  }

  async add(members: readonly Member[]): Promise<void> {
    for (const { name, data, mtime } of members) {
      const entry = new Promise<void>((resolve, reject) => {
        this.packer.entry({ name, mtime, mode: 0o644, type: 'file' }, data, (err) => (err ? reject(err) : resolve()));
      });
      // The writer failing (disk full) must not leave an entry waiting forever on its drain.
      await Promise.race([entry, this.ended]);
    }
  }

  /** Ends the tar and makes it visible: fsync, rename to its final name, fsync the directory. */
  async finish(): Promise<{ bytes: number; sha256: string }> {
    this.packer.finalize();
    try {
      await this.consumed;
      await this.handle.sync();
    } finally {
      await this.handle.close();
    }
    await rename(this.tmpPath, join(this.dir, this.file));
    await fsyncPath(this.dir);
    return { bytes: this.bytes, sha256: this.hash.digest('hex') };
  }

  /** Drops the unfinished tar (a later run would delete the `.tmp` anyway). */
  async abort(): Promise<void> {
    this.packer.destroy();
    await this.consumed.catch(() => undefined);
    await this.handle.close().catch(() => undefined);
    await rm(this.tmpPath, { force: true });
  }
}

async function readManifest(dir: string, expert: number): Promise<ExportManifest | undefined> {
  const path = join(dir, MANIFEST_FILE);
  const text = await readOptionalText(path);
  if (text === undefined) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new StateError(`${path} is not valid JSON (${errorMessage(err)}); remove the directory or export into a new --out`);
  }
  const parsed = ManifestSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new StateError(`${path} is not a modestream WebDataset export manifest: ${issue?.path.join('.') || '(root)'}: ${issue?.message}`);
  }
  const manifest = parsed.data;
  if (manifest.expert !== expert) throw new StateError(`${path} is the manifest of expert ${manifest.expert}, not ${expert}`);
  manifest.shards.forEach((s, i) => {
    if (s.file !== shardFileName(i)) throw new StateError(`${path}: shard ${i} is listed as ${s.file}, expected ${shardFileName(i)}`);
  });
  return manifest;
}

/** Every listed tar must still be there with its size: they are kept as they are, never rewritten. */
async function checkListedTars(dir: string, shards: readonly ExportShardEntry[]): Promise<void> {
  for (const s of shards) {
    const path = join(dir, s.file);
    const size = await stat(path).then(
      (st) => st.size,
      () => undefined,
    );
    if (size !== s.bytes) {
      throw new StateError(
        `${path} is listed in ${MANIFEST_FILE} (${s.bytes} bytes) but ${size === undefined ? 'is missing' : `holds ${size} bytes`}; remove the directory or export into a new --out`,
      );
    }
  }
}

/** Deletes what an interrupted run left: temporary files (`*.tmp`, `.tmp-*`), and tars the manifest does not list (renamed, not yet listed). */
async function removeLeftovers(dir: string, shards: readonly ExportShardEntry[]): Promise<string[]> {
  const listed = new Set(shards.map((s) => s.file));
  const doomed = (await readdir(dir)).filter((name) => name.endsWith('.tmp') || name.startsWith('.tmp-') || (/^shard-\d{6,}\.tar$/.test(name) && !listed.has(name))).sort();
  for (const name of doomed) await rm(join(dir, name), { force: true });
  if (doomed.length) await fsyncPath(dir);
  return doomed;
}

/** Replaces `dir/manifest.json` atomically (state/artifacts.ts). */
async function writeManifest(dir: string, manifest: ExportManifest): Promise<void> {
  await writeFileAtomically(dir, MANIFEST_FILE, `${JSON.stringify(manifest, null, 2)}\n`);
}

export interface ExportCommandOptions {
  /** Expert ids, or every expert with records. */
  experts: readonly number[] | 'all';
  format: ExportFormat;
  outDir: string;
  shardSize: number;
  onTar?: (tar: ExportedTar) => void;
  onStart?: (start: ExportStart) => void;
}

/**
 * `modestream export`: opens the state directory read-only (safe next to a running `modestream run`)
 * and exports from this node's local shards.
 */
export async function exportFromState(config: Config, { experts, format, outDir, shardSize, onTar, onStart }: ExportCommandOptions): Promise<ExportResult> {
  if (format !== 'webdataset') throw new ConfigError(`--format: only "webdataset" is supported for now, got "${String(format)}"`);
  if (!existsSync(join(config.stateDir, 'lmdb'))) {
    throw new EnvironmentError(`no modestream state in ${config.stateDir} (set --state-dir, or start \`modestream run\` first)`);
  }
  const env = openStateEnv({ dir: config.stateDir, readOnly: true });
  try {
    const store = createShardStore({ env, reservoirSize: config.clustering.sample });
    const ids = experts === 'all' ? expertsWithRecords(store) : experts;
    return await exportWebDataset({ store, experts: ids, outDir, shardSize, ...(onTar ? { onTar } : {}), ...(onStart ? { onStart } : {}) });
  } finally {
    await env.close();
  }
}
