/**
 * `modestream export --format webdataset`, killed for real: a process exporting an expert's shard (2,000
 * records with their JPEG files, in tars of 100) is SIGKILLed once its first tars are in place; a second
 * run finishes the job. No torn tar is ever visible, every tar reads back with Python's tarfile, and
 * every record is in exactly one tar with its bytes and caption. No broker involved: the shard store is
 * written here, as a sharder would.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, describe, expect, test } from 'vitest';
import { encodeRouted, type RoutedRecord } from '../../src/contract/routed.js';
import { openStateEnv } from '../../state/env.js';
import { createShardStore } from '../../state/shards.js';
import { cli, runCli } from '../support/processor.js';
import { waitFor } from '../support/waits.js';

const RECORDS = 2000;
const EXPERT = 3;

describe('export, interrupted', () => {
  const root = mkdtempSync(join(tmpdir(), 'modestream-export-kill-'));
  const stateDir = join(root, 'state');
  const out = join(root, 'out');
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  test('SIGKILL mid-export, then a resumed run: no torn tar, every record exactly once', async () => {
    const files = await Promise.all(
      Array.from({ length: 16 }, (_, i) =>
        sharp({ create: { width: 160, height: 120, channels: 3, background: { r: i * 15, g: 100, b: 200 - i * 10 }, noise: { type: 'gaussian', mean: 128, sigma: 30 } } })
          .jpeg({ quality: 80 })
          .toBuffer(),
      ),
    );
    const env = openStateEnv({ dir: stateDir });
    const store = createShardStore({ env, reservoirSize: 0 });
    const records: RoutedRecord[] = Array.from({ length: RECORDS }, (_, n) => ({
      id: `crawl-${n}`,
      caption: `a product photo, number ${n}`,
      ts: Date.UTC(2026, 0, 1) + n,
      image: { kind: 'pixels', width: 2, height: 2, channels: 3, data: new Uint8Array(12).fill(n % 256) },
      original: { format: 'jpeg', bytes: new Uint8Array(files[n % files.length]!) },
      embedding: new Float32Array([1, 0]),
      route: { epoch: 1, fine: 7, expert: EXPERT, dist2: 0.1 },
      origin: { topic: 'pairs', partition: 0, offset: String(n) },
    }));
    for (let i = 0; i < RECORDS; i += 250) {
      const chunk = records.slice(i, i + 250).map((record) => ({ record, bytes: encodeRouted(record) }));
      await store.append(chunk, { topic: 'routed', partition: EXPERT, nextOffset: i + chunk.length });
    }
    await env.close();

    const args = ['export', '--expert', String(EXPERT), '--format', 'webdataset', '--out', out, '--shard-size', '100', '--state-dir', stateDir];
    const dir = join(out, `expert-${EXPERT}`);
    const tars = () => (existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.tar')) : []);
    const first = runCli(args, {});
    await waitFor('the first tars of the export', () => tars().length >= 2, { timeoutMs: 120_000, intervalMs: 20 });
    first.kill('SIGKILL');
    const killed = await first.exited;
    expect(killed.signal).toBe('SIGKILL');
    const before = tars().length;
    expect(before, 'killed before the end').toBeLessThan(RECORDS / 100);

    const resumed = await cli(args, {});
    expect(resumed.code, resumed.output).toBe(0);
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);

    // Python's tarfile reads every tar; a torn one would fail here.
    const script = [
      'import hashlib,json,sys,tarfile,glob,os',
      'out=[]',
      'for path in sorted(glob.glob(os.path.join(sys.argv[1], "*.tar"))):',
      '  with tarfile.open(path) as t:',
      '    for m in t.getmembers():',
      '      data=t.extractfile(m).read()',
      '      key,ext=m.name.split(".",1)',
      '      out.append({"key":key,"ext":ext,"sha":hashlib.sha256(data).hexdigest(),"text":data.decode() if ext in ("txt","json") else None})',
      'print(json.dumps(out))',
    ].join('\n');
    const read = spawnSync('python3', ['-c', script, dir], { encoding: 'utf8', maxBuffer: 256 * 2 ** 20 });
    expect(read.status, read.stderr).toBe(0);
    const members = JSON.parse(read.stdout) as { key: string; ext: string; sha: string; text: string | null }[];
    const ids = members.filter((m) => m.ext === 'json').map((m) => (JSON.parse(m.text!) as { id: string }).id);
    expect(ids).toHaveLength(RECORDS);
    expect(new Set(ids).size).toBe(RECORDS);
    const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    const byKey = new Map<string, Record<string, { sha: string; text: string | null }>>();
    for (const m of members) byKey.set(m.key, { ...byKey.get(m.key), [m.ext]: m });
    for (const sample of byKey.values()) {
      const { id } = JSON.parse(sample.json!.text!) as { id: string };
      const n = Number(id.slice('crawl-'.length));
      expect(sample.txt!.text).toBe(records[n]!.caption);
      expect(sample.jpg!.sha).toBe(sha(files[n % files.length]!));
    }
    const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as { samples: number; complete: boolean; shards: unknown[] };
    expect(manifest).toMatchObject({ samples: RECORDS, complete: true });
    expect(manifest.shards).toHaveLength(RECORDS / 100);
    console.info(`[export] killed after ${before} of ${RECORDS / 100} tars; the resumed run wrote the rest`);
  }, 300_000);
});
