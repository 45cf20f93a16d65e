/**
 * `modestream export --format webdataset` (app/export.ts, cli/commands/export.ts) over a real LMDB shard
 * store in a temp dir, no Kafka. Every tar is read back by an independent reader (Python's tarfile):
 * the ids, captions and original image bytes come back exactly once each, in seq order; raw pixels come
 * back as PNGs that decode to the same pixels; the manifest's sha256, sizes and counts match the files.
 * A resumed export keeps the tars the manifest lists untouched, clears an interrupted run's leftovers,
 * picks up records appended since, and refuses another shard size.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { PNG } from 'pngjs';
import sharp from 'sharp';
import { afterEach, describe, expect, test, vi } from 'vitest';
import { expertsWithRecords, exportWebDataset, sampleKey, type ExportManifest, type ExportStart, type ExportedTar } from '../../app/export.js';
import { registerExport } from '../../cli/commands/export.js';
import { UNROUTED, encodeRouted, type RoutedRecord } from '../../src/contract/routed.js';
import { ConfigError } from '../../src/errors.js';
import { openStateEnv } from '../../state/env.js';
import { createShardStore, type ShardStore } from '../../state/shards.js';
import { freshStateEnvs } from '../support/state-env.js';

const freshEnv = freshStateEnvs('modestream-export-');

const outDirs: string[] = [];
afterEach(() => {
  for (const dir of outDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  vi.restoreAllMocks();
});
function freshOut(): string {
  const dir = mkdtempSync(join(tmpdir(), 'modestream-export-out-'));
  outDirs.push(dir);
  return dir;
}

/** Expert 1 with `records` records in a fresh store, exported once into a fresh directory in tars of 3. */
async function exportedExpertOne(records: number) {
  const store = createShardStore({ env: freshEnv(), reservoirSize: 0 });
  await append(store, await recordsOf(1, 0, records));
  const out = freshOut();
  await exportWebDataset({ store, experts: [1], outDir: out, shardSize: 3 });
  return { store, out, dir: join(out, 'expert-1') };
}

type Kind = 'jpeg' | 'png' | 'pixels1' | 'pixels3' | 'embedding';
const KINDS: Kind[] = ['jpeg', 'pixels3', 'png', 'embedding', 'pixels1'];
const TS = Date.UTC(2024, 4, 17, 12, 30, 0);

/** A small image with content that depends on `n` (so every file differs). */
function pixels(n: number, width: number, height: number, channels: 1 | 3): Uint8Array {
  const data = new Uint8Array(width * height * channels);
  for (let i = 0; i < data.length; i++) data[i] = (i * 7 + n * 31) % 256;
  return data;
}

async function makeRecord(n: number, expert: number | null, kind: Kind): Promise<RoutedRecord> {
  const width = 5 + (n % 4);
  const height = 4 + (n % 3);
  const base = {
    id: `pair-${n}`,
    // Non-ASCII and a newline: the .txt member is the caption's UTF-8, as it is.
    caption: n % 2 ? `a photo of thing ${n} — café ☕` : `thing ${n}\nsecond line`,
    ts: TS + n * 1000,
    embedding: new Float32Array([1, 0, 0, n / 100]),
    route: expert === null ? null : { epoch: 2, fine: expert * 10 + (n % 3), expert, dist2: 0.25 },
    origin: { topic: 'pairs', partition: 0, offset: String(n) },
    ...(n % 3 === 0 ? { source: `crawl-${n}.tar` } : {}),
    ...(n % 4 === 1 ? { meta: { url: `https://example.com/${n}.jpg`, nsfw: false, size: [width, height] } } : {}),
  };
  const small: RoutedRecord['image'] = { kind: 'pixels', width: 2, height: 2, channels: 3, data: pixels(n, 2, 2, 3) };
  switch (kind) {
    case 'jpeg':
    case 'png': {
      const raw = sharp(Buffer.from(pixels(n, width, height, 3)), { raw: { width, height, channels: 3 } });
      const bytes = await (kind === 'jpeg' ? raw.jpeg({ quality: 80 }) : raw.png()).toBuffer();
      return { ...base, image: small, original: { format: kind, bytes: new Uint8Array(bytes) } };
    }
    case 'pixels1':
    case 'pixels3': {
      const channels = kind === 'pixels1' ? 1 : 3;
      return { ...base, image: { kind: 'pixels', width, height, channels, data: pixels(n, width, height, channels) } };
    }
    case 'embedding':
      return { ...base, image: { kind: 'embedding', values: new Float32Array([0.5, -0.5]) } };
  }
}

let offset = 0;
async function append(store: ShardStore, records: RoutedRecord[]): Promise<void> {
  offset += records.length;
  await store.append(
    records.map((record) => ({ record, bytes: encodeRouted(record) })),
    { topic: 'routed', partition: 0, nextOffset: offset },
  );
}

/** Records n in [from, to) of one expert, image kinds in rotation. */
const recordsOf = (expert: number | null, from: number, to: number) => Promise.all(Array.from({ length: to - from }, (_, i) => makeRecord(from + i, expert, KINDS[(from + i) % KINDS.length]!)));

interface TarMember {
  name: string;
  size: number;
  type: string;
  sha256: string;
  text?: string;
  json?: Record<string, unknown>;
  b64?: string;
}
interface ReadTar {
  path: string;
  size: number;
  sha256: string;
  members: TarMember[];
}

/** Reads tars with Python's tarfile (an independent reader): every member, in order. */
const READER = `
import base64, hashlib, json, os, sys, tarfile
out = []
for path in sys.argv[1:]:
    with open(path, 'rb') as f:
        whole = f.read()
    members = []
    with tarfile.open(path, 'r:') as tar:
        for m in tar.getmembers():
            data = tar.extractfile(m).read() if m.isfile() else b''
            item = {'name': m.name, 'size': m.size, 'type': 'file' if m.isfile() else str(m.type), 'sha256': hashlib.sha256(data).hexdigest()}
            if m.name.endswith('.txt'):
                item['text'] = data.decode('utf-8')
            elif m.name.endswith('.json'):
                item['json'] = json.loads(data.decode('utf-8'))
            elif m.name.endswith('.png'):
                item['b64'] = base64.b64encode(data).decode('ascii')
            members.append(item)
    out.append({'path': path, 'size': os.path.getsize(path), 'sha256': hashlib.sha256(whole).hexdigest(), 'members': members})
print(json.dumps(out))
`;

function readTars(paths: string[]): ReadTar[] {
  const run = spawnSync('python3', ['-c', READER, ...paths], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (run.status !== 0) throw new Error(`python3 tar reader failed (${run.status}): ${run.stderr || run.error}`);
  return JSON.parse(run.stdout) as ReadTar[];
}

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
const manifestOf = (dir: string) => JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as ExportManifest;
const tarFiles = (dir: string) => readdirSync(dir).filter((n) => n.endsWith('.tar')).sort();

interface ExportedSample {
  key: string;
  names: string[];
  json: Record<string, unknown>;
  text: string;
  image?: TarMember;
}

/**
 * Checks an expert directory against its manifest and the records expected in it (seq order), reading
 * every tar independently; returns the samples found.
 */
async function checkExpertDir(dir: string, expert: number, expected: { seq: number; record: RoutedRecord }[], shardSize: number): Promise<ExportedSample[]> {
  const manifest = manifestOf(dir);
  expect(manifest).toMatchObject({ expert, format: 'webdataset', shardSize, complete: true });
  expect(readdirSync(dir).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  expect(tarFiles(dir)).toEqual(manifest.shards.map((s) => s.file));
  const tars = readTars(manifest.shards.map((s) => join(dir, s.file)));

  const samples: ExportedSample[] = [];
  tars.forEach((tar, i) => {
    const entry = manifest.shards[i]!;
    // The manifest describes the file as it is.
    expect(entry.sha256).toBe(tar.sha256);
    expect(entry.bytes).toBe(tar.size);
    const before = samples.length;
    for (const m of tar.members) {
      expect(m.type).toBe('file');
      expect(m.name).not.toContain('/');
      const key = m.name.slice(0, m.name.indexOf('.'));
      let sample = samples[samples.length - 1];
      if (samples.length === before || sample!.key !== key) samples.push((sample = { key, names: [], json: {}, text: '' }));
      sample!.names.push(m.name);
      if (m.json) sample!.json = m.json;
      else if (m.text !== undefined) sample!.text = m.text;
      else sample!.image = m;
    }
    expect(samples.length - before).toBe(entry.samples);
    expect(entry.samples).toBeLessThanOrEqual(shardSize);
    expect(samples[before]!.key).toBe(sampleKey(expert, entry.firstSeq));
    expect(samples[samples.length - 1]!.key).toBe(sampleKey(expert, entry.lastSeq));
  });
  expect(manifest.samples).toBe(samples.length);

  expect(samples.map((s) => s.key)).toEqual(expected.map((e) => sampleKey(expert, e.seq)));
  expect(samples.map((s) => s.json.id)).toEqual(expected.map((e) => e.record.id));
  for (const [i, sample] of samples.entries()) {
    const { record } = expected[i]!;
    // Members in order: image (if any), caption, metadata; all with the sample's key.
    const ext = record.original ? (record.original.format === 'jpeg' ? 'jpg' : record.original.format) : record.image.kind === 'pixels' ? 'png' : undefined;
    expect(sample.names).toEqual([...(ext ? [`${sample.key}.${ext}`] : []), `${sample.key}.txt`, `${sample.key}.json`]);
    expect(sample.text).toBe(record.caption);
    const json: Record<string, unknown> = { id: record.id, fine: record.route!.fine, expert, epoch: record.route!.epoch, ts: new Date(record.ts).toISOString() };
    if (record.source !== undefined) json.source = record.source;
    if (record.meta !== undefined) json.meta = record.meta;
    expect(sample.json).toEqual(json);
    expect(Object.keys(sample.json)).toEqual(['id', 'fine', 'expert', 'epoch', ...(record.source ? ['source'] : []), 'ts', ...(record.meta ? ['meta'] : [])]);
    if (record.original) {
      expect(sample.image!.sha256).toBe(sha256(record.original.bytes));
      expect(sample.image!.size).toBe(record.original.bytes.byteLength);
    } else if (record.image.kind === 'pixels') {
      const png = Buffer.from(sample.image!.b64!, 'base64');
      const meta = await sharp(png).metadata();
      expect(meta).toMatchObject({ format: 'png', width: record.image.width, height: record.image.height, channels: record.image.channels });
      // Decoded by another decoder (pngjs, RGBA out): the same pixels, grey kept grey (colour type 0).
      const decoded = PNG.sync.read(png);
      expect(decoded.colorType).toBe(record.image.channels === 1 ? 0 : 2);
      const { channels, data } = record.image;
      const back = new Uint8Array(data.length);
      for (let p = 0; p < record.image.width * record.image.height; p++) for (let c = 0; c < channels; c++) back[p * channels + c] = decoded.data[p * 4 + c]!;
      expect(back).toEqual(data);
    } else {
      expect(sample.image).toBeUndefined();
    }
  }
  return samples;
}

/** The records of one expert's shard as stored, in seq order. */
const storedOf = (store: ShardStore, expert: number) => [...store.read(expert)];

describe('export --format webdataset', () => {
  test('every record of every expert exactly once, originals byte for byte, pixels as PNG; the manifest matches the files', async () => {
    const store = createShardStore({ env: freshEnv(), reservoirSize: 0 });
    await append(store, [...(await recordsOf(1, 0, 9)), ...(await recordsOf(2, 100, 102)), ...(await recordsOf(null, 200, 202))]);
    // A record moved to expert 2 leaves a gap in expert 1's seqs (seq 4), which the export skips.
    expect(await store.relocate([{ id: 'pair-4', route: { epoch: 3, fine: 21, expert: 2, dist2: 0 } }])).toBe(1);
    expect(store.shardSize(1)).toEqual({ records: 8, nextSeq: 9 });
    expect(store.get(1, 4)).toBeUndefined();
    expect(store.unroutedCount()).toBe(2);

    const experts = expertsWithRecords(store);
    expect(experts).toEqual([1, 2]);
    const out = freshOut();
    const tars: ExportedTar[] = [];
    const result = await exportWebDataset({ store, experts, outDir: out, shardSize: 3, onTar: (t) => tars.push(t) });

    const expert1 = storedOf(store, 1);
    const expert2 = storedOf(store, 2);
    expect(expert1.map((e) => e.seq)).toEqual([0, 1, 2, 3, 5, 6, 7, 8]);
    const withoutImage = (records: typeof expert1) => records.filter((e) => !e.record.original && e.record.image.kind === 'embedding').length;
    expect(result.experts).toEqual([
      { expert: 1, dir: join(out, 'expert-1'), samples: 8, tars: 3, withoutImage: withoutImage(expert1), totalSamples: 8, totalTars: 3, throughSeq: 9 },
      { expert: 2, dir: join(out, 'expert-2'), samples: 3, tars: 1, withoutImage: withoutImage(expert2), totalSamples: 3, totalTars: 1, throughSeq: 3 },
    ]);
    expect(withoutImage(expert1)).toBeGreaterThan(0);
    // Unrouted records are not an expert's.
    expect(readdirSync(out).sort()).toEqual(['expert-1', 'expert-2']);

    const samples1 = await checkExpertDir(join(out, 'expert-1'), 1, expert1, 3);
    const samples2 = await checkExpertDir(join(out, 'expert-2'), 2, expert2, 3);
    // Every routed pair once, across the experts.
    const ids = [...samples1, ...samples2].map((s) => s.json.id as string).sort();
    expect(ids).toEqual([...Array.from({ length: 9 }, (_, i) => `pair-${i}`), 'pair-100', 'pair-101'].sort());
    // The moved record is exported with its new expert and route.
    expect(samples2.find((s) => s.json.id === 'pair-4')?.json).toMatchObject({ expert: 2, fine: 21, epoch: 3 });

    const manifest = manifestOf(join(out, 'expert-1'));
    expect(manifest.throughSeq).toBe(9);
    expect(manifest.shards.map((s) => [s.file, s.samples, s.firstSeq, s.lastSeq])).toEqual([
      ['shard-000000.tar', 3, 0, 2],
      ['shard-000001.tar', 3, 3, 6],
      ['shard-000002.tar', 2, 7, 8],
    ]);
    // What onTar reported is what the manifest lists.
    expect(tars.filter((t) => t.expert === 1).map(({ expert: _e, path: _p, ...entry }) => entry)).toEqual(manifest.shards);
    expect(tars.map((t) => t.path)).toEqual([0, 1, 2].map((i) => join(out, 'expert-1', `shard-00000${i}.tar`)).concat(join(out, 'expert-2', 'shard-000000.tar')));

    // The same records export to the same bytes (member mtimes are the records' event times).
    const again = freshOut();
    await exportWebDataset({ store, experts: [1], outDir: again, shardSize: 3 });
    expect(manifestOf(join(again, 'expert-1')).shards.map((s) => s.sha256)).toEqual(manifest.shards.map((s) => s.sha256));
  });

  test('an expert with no records exports an empty, complete manifest', async () => {
    const store = createShardStore({ env: freshEnv(), reservoirSize: 0 });
    const out = freshOut();
    const result = await exportWebDataset({ store, experts: [7], outDir: out, shardSize: 3 });
    expect(result.experts).toEqual([{ expert: 7, dir: join(out, 'expert-7'), samples: 0, tars: 0, withoutImage: 0, totalSamples: 0, totalTars: 0, throughSeq: 0 }]);
    expect(manifestOf(join(out, 'expert-7'))).toEqual({ expert: 7, format: 'webdataset', shardSize: 3, throughSeq: 0, shards: [], samples: 0, complete: true });
    expect(tarFiles(join(out, 'expert-7'))).toEqual([]);
  });

  test('resume: an interrupted run continues after the last listed tar, keeps it untouched, clears leftovers and picks up new records', async () => {
    const { store, out, dir } = await exportedExpertOne(7);
    expect(tarFiles(dir)).toEqual(['shard-000000.tar', 'shard-000001.tar', 'shard-000002.tar']);

    // Simulate a run killed while writing its third tar, after the second was renamed into place but
    // before the manifest listed it: the manifest lists the first tar only.
    const full = manifestOf(dir);
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify({ ...full, shards: full.shards.slice(0, 1), samples: 3, complete: false }));
    unlinkSync(join(dir, 'shard-000002.tar'));
    writeFileSync(join(dir, 'shard-000002.tar.tmp'), 'half a tar');
    writeFileSync(join(dir, 'manifest.json.tmp'), '{"half":');
    const first = join(dir, 'shard-000000.tar');
    const firstStat = statSync(first);
    const firstSha = sha256(readFileSync(first));

    await append(store, await recordsOf(1, 7, 9));
    const starts: ExportStart[] = [];
    const tars: ExportedTar[] = [];
    const resumed = await exportWebDataset({ store, experts: [1], outDir: out, shardSize: 3, onStart: (s) => starts.push(s), onTar: (t) => tars.push(t) });
    expect(starts).toEqual([
      { expert: 1, dir, throughSeq: 9, fromSeq: 3, keptTars: 1, keptSamples: 3, removed: ['manifest.json.tmp', 'shard-000001.tar', 'shard-000002.tar.tmp'] },
    ]);
    expect(tars.map((t) => t.file)).toEqual(['shard-000001.tar', 'shard-000002.tar']);
    expect(resumed.experts[0]).toMatchObject({ samples: 6, tars: 2, totalSamples: 9, totalTars: 3, throughSeq: 9 });

    // The listed tar was not rewritten.
    const after = statSync(first);
    expect([after.ino, after.mtimeMs, after.size]).toEqual([firstStat.ino, firstStat.mtimeMs, firstStat.size]);
    expect(sha256(readFileSync(first))).toBe(firstSha);
    // All nine records once, in seq order.
    await checkExpertDir(dir, 1, storedOf(store, 1), 3);

    // A complete export resumed: nothing is rewritten, the records appended since go into a new tar.
    const before = new Map(tarFiles(dir).map((f) => [f, statSync(join(dir, f)).mtimeMs]));
    const shas = manifestOf(dir).shards.map((s) => s.sha256);
    await append(store, await recordsOf(1, 9, 11));
    const more = await exportWebDataset({ store, experts: [1], outDir: out, shardSize: 3 });
    expect(more.experts[0]).toMatchObject({ samples: 2, tars: 1, totalSamples: 11, totalTars: 4, throughSeq: 11 });
    for (const [file, mtime] of before) expect(statSync(join(dir, file)).mtimeMs).toBe(mtime);
    expect(manifestOf(dir).shards.map((s) => s.sha256).slice(0, 3)).toEqual(shas);
    expect(manifestOf(dir).shards[3]).toMatchObject({ file: 'shard-000003.tar', samples: 2, firstSeq: 9, lastSeq: 10 });
    const samples = await checkExpertDir(dir, 1, storedOf(store, 1), 3);
    expect(new Set(samples.map((s) => s.json.id)).size).toBe(11);

    // Nothing new: nothing written, still complete.
    const idle = await exportWebDataset({ store, experts: [1], outDir: out, shardSize: 3 });
    expect(idle.experts[0]).toMatchObject({ samples: 0, tars: 0, totalSamples: 11, totalTars: 4 });
    expect(manifestOf(dir).complete).toBe(true);
  });

  test('resuming with another shard size is refused and changes nothing; a listed tar gone missing is reported', async () => {
    const { store, out, dir } = await exportedExpertOne(5);
    const manifestText = readFileSync(join(dir, 'manifest.json'), 'utf8');

    const refused = exportWebDataset({ store, experts: [1], outDir: out, shardSize: 4 });
    await expect(refused).rejects.toThrow(ConfigError);
    await expect(refused).rejects.toThrow(`${dir} was exported with --shard-size 3, not 4: pass --shard-size 3 to resume it, or export into a new --out`);
    expect(readFileSync(join(dir, 'manifest.json'), 'utf8')).toBe(manifestText);
    expect(tarFiles(dir)).toEqual(['shard-000000.tar', 'shard-000001.tar']);

    unlinkSync(join(dir, 'shard-000001.tar'));
    await expect(exportWebDataset({ store, experts: [1], outDir: out, shardSize: 3 })).rejects.toThrow(/shard-000001\.tar is listed in manifest\.json \(\d+ bytes\) but is missing/);
    await expect(exportWebDataset({ store, experts: [-1], outDir: out, shardSize: 3 })).rejects.toThrow(ConfigError);
    await expect(exportWebDataset({ store, experts: [1], outDir: freshOut(), shardSize: 0 })).rejects.toThrow(ConfigError);
  });
});

describe('modestream export (the command)', () => {
  /** A program with the global flags the command reads, and the command. */
  function program(): Command {
    const p = new Command('modestream').exitOverride().option('--state-dir <dir>').option('--log-level <level>');
    p.configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
    registerExport(p);
    return p;
  }
  const run = (...args: string[]) => program().parseAsync(['node', 'modestream', ...args]);

  test('bad flags are ConfigErrors (exit 2) with one clear line', async () => {
    const cases: [string[], string][] = [
      [['--expert', '1', '--out', 'x'], 'export: --format is required; supported: webdataset'],
      [['--expert', '1', '--format', 'parquet', '--out', 'x'], 'export: --format parquet is not supported; supported for now: webdataset'],
      [['--format', 'webdataset', '--out', 'x'], 'export: give --expert N or --all'],
      [['--expert', '1', '--all', '--format', 'webdataset', '--out', 'x'], 'export: give either --expert N or --all, not both'],
      [['--expert', '1', '--format', 'webdataset'], 'export: --out DIR is required'],
      [['--expert', '1', '--format', 'webdataset', '--out', 'x', '--shard-size', '0'], 'export: --shard-size must be at least 1, got 0'],
    ];
    for (const [args, message] of cases) {
      const err = await run('export', ...args).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err, args.join(' ')).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toBe(message);
    }
  });

  test('--all exports from the state directory and prints a summary per expert; a resume with another --shard-size is refused', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'modestream-export-state-'));
    outDirs.push(stateDir);
    const env = openStateEnv({ dir: stateDir });
    try {
      const store = createShardStore({ env, reservoirSize: 0 });
      await append(store, [...(await recordsOf(0, 0, 4)), ...(await recordsOf(3, 10, 12)), ...(await recordsOf(null, 20, 21))]);
      expect(store.shardSize(UNROUTED).records).toBe(1);
    } finally {
      await env.close();
    }
    const out = freshOut();
    const stdout: string[] = [];
    const stderr: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => (stdout.push(String(chunk)), true));
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => (stderr.push(String(chunk)), true));

    await run('--state-dir', stateDir, 'export', '--all', '--format', 'webdataset', '--out', out, '--shard-size', '3');
    // Records 0..3 of expert 0 (kinds jpeg, pixels3, png, embedding), 10..11 of expert 3 (jpeg, pixels3).
    expect(stdout.join('')).toBe(
      `exported 4 samples of expert 0 into 2 tars in ${join(out, 'expert-0')} (1 without an image)\n` +
        `exported 2 samples of expert 3 into 1 tars in ${join(out, 'expert-3')} (0 without an image)\n`,
    );
    expect(stderr.join('')).toMatch(new RegExp(`^expert 0: ${join(out, 'expert-0', 'shard-000000.tar')}: 3 samples \\(seqs 0-2\\), [\\d.]+ KiB\n`));
    expect(stderr).toHaveLength(3);
    expect(readdirSync(out).sort()).toEqual(['expert-0', 'expert-3']);

    stdout.length = 0;
    await run('--state-dir', stateDir, 'export', '--expert', '0', '--format', 'webdataset', '--out', out, '--shard-size', '3');
    expect(stdout.join('')).toBe(`exported 0 samples of expert 0 into 0 tars in ${join(out, 'expert-0')} (0 without an image)\n`);
    await expect(run('--state-dir', stateDir, 'export', '--expert', '0', '--format', 'webdataset', '--out', out)).rejects.toThrow(
      `${join(out, 'expert-0')} was exported with --shard-size 3, not 10000: pass --shard-size 3 to resume it, or export into a new --out`,
    );
    expect(existsSync(join(out, 'expert-0', 'manifest.json'))).toBe(true);
  });
});
