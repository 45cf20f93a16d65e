/**
 * Crawls as data teams hold them, through a real broker: a WebDataset shard written by Python's tarfile
 * (real JPEG and PNG members, a sample without a caption, one with a BMP, one with a truncated JPEG) and
 * a caption/path TSV are produced with `modestream produce --from webdataset|tsv`; a running router
 * routes every good sample exactly once, the truncated JPEG is dead-lettered by the router, and
 * `produce` reports what it skipped and why.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import sharp from 'sharp';
import { afterAll, describe, expect, inject, test } from 'vitest';
import { decodeRouted } from '../../src/contract/routed.js';
import { DLQ_HEADERS } from '../../streams/messages.js';
import { cli, startProcessor, stopProcessor, testDeployment, type Processor } from '../support/processor.js';
import { readTopic } from '../support/topics.js';

const brokers = inject('brokers');
const kafka = new Kafka({ brokers: brokers.split(','), logLevel: logLevel.NOTHING });


describe('produce --from webdataset | tsv', () => {
  const dir = mkdtempSync(join(tmpdir(), 'modestream-wds-'));
  const deployment = testDeployment(brokers, { MODESTREAM_ROLES: 'router', MODESTREAM_LIMITS__MAX_MESSAGE_BYTES: String(2 * 2 ** 20) });
  let router: Processor | undefined;
  afterAll(async () => {
    await stopProcessor(router);
    rmSync(dir, { recursive: true, force: true });
  });

  test('every good sample is routed exactly once; the broken ones are reported or dead-lettered', async () => {
    const photo = sharp({ create: { width: 320, height: 240, channels: 3, background: '#808080', noise: { type: 'gaussian', mean: 128, sigma: 40 } } });
    const jpeg = await photo.clone().jpeg({ quality: 80 }).toBuffer();
    const png = await photo.clone().png().toBuffer();
    const members: [string, Buffer][] = [];
    const good: string[] = [];
    for (let i = 0; i < 12; i++) {
      const key = `00000${String(i).padStart(3, '0')}`;
      members.push([`${key}.${i % 2 ? 'png' : 'jpg'}`, i % 2 ? png : jpeg], [`${key}.txt`, Buffer.from(`a product photo number ${i}`)], [`${key}.json`, Buffer.from(JSON.stringify({ url: `https://example.com/${i}`, key }))]);
      good.push(key);
    }
    // Caption only in the .json (img2dataset's "caption" field).
    members.push(['00000100.jpg', jpeg], ['00000100.json', Buffer.from('{"caption": "a caption from the json"}')]);
    good.push('00000100');
    members.push(['00000200.jpg', jpeg], ['00000200.json', Buffer.from('{"url": "https://example.com/x"}')]); // no caption
    members.push(['00000300.bmp', Buffer.from('BM not supported')], ['00000300.txt', Buffer.from('a bitmap')]);
    members.push(['00000400.jpg', jpeg.subarray(0, jpeg.length >> 1)], ['00000400.txt', Buffer.from('a truncated photo')]);
    const files = members.map(([name, bytes], i) => {
      const file = join(dir, `m${i}`);
      writeFileSync(file, bytes);
      return [name, file];
    });
    // Python's tarfile writes the shard: an independent writer, as img2dataset's output would be.
    const script = 'import json,sys,tarfile\nt=tarfile.open(sys.argv[1],"w")\nfor name,path in json.loads(sys.argv[2]): t.add(path, arcname=name)\nt.close()';
    const tar = join(dir, 'shard-00000.tar');
    const made = spawnSync('python3', ['-c', script, tar, JSON.stringify(files)], { encoding: 'utf8' });
    expect(made.status, made.stderr).toBe(0);

    router = await startProcessor(deployment);
    const produced = await cli(['produce', '--from', 'webdataset', tar, '--no-progress'], deployment.env);
    expect(produced.code, produced.output).toBe(0);
    expect(produced.stdout).toMatch(/produced 14 messages/);
    expect(produced.stdout).toMatch(/skipped 2 samples/);
    expect(produced.stdout).toMatch(/missing-caption: 1\n\s+shard-00000\.tar: 00000200:/);
    expect(produced.stdout).toMatch(/unknown-image-type: 1\n\s+shard-00000\.tar: 00000300: .*\.bmp/);

    // The TSV: two local files, one missing.
    writeFileSync(join(dir, 'a.jpg'), jpeg);
    writeFileSync(join(dir, 'b.png'), png);
    writeFileSync(join(dir, 'pairs.tsv'), 'caption\tpath\nred sneakers\ta.jpg\nblue scarf\tb.png\ngreen hat\tmissing.jpg\n');
    const fromTsv = await cli(['produce', '--from', 'tsv', join(dir, 'pairs.tsv'), '--no-progress'], deployment.env);
    expect(fromTsv.code, fromTsv.output).toBe(0);
    expect(fromTsv.stdout).toMatch(/produced 2 messages/);
    expect(fromTsv.stdout).toMatch(/missing-image: 1\n\s+pairs\.tsv:4: cannot read missing\.jpg/);

    const expected = [...good, 'a', 'b'];
    const routed = (await readTopic(kafka, deployment.topics.routed, expected.length, { settleMs: 2000 })).map((m) => {
      const decoded = decodeRouted(m.value);
      if (!decoded.ok) throw new Error(decoded.detail);
      return decoded.record;
    });
    expect(routed.map((r) => r.id).sort()).toEqual([...expected].sort());
    const byId = new Map(routed.map((r) => [r.id, r]));
    expect(byId.get('00000100')?.caption).toBe('a caption from the json');
    expect(byId.get('00000001')).toMatchObject({ caption: 'a product photo number 1', source: 'shard-00000.tar', meta: { url: 'https://example.com/1' }, original: { format: 'png' } });
    expect(Buffer.compare(Buffer.from(byId.get('00000000')!.original!.bytes), jpeg)).toBe(0);
    expect(byId.get('b')).toMatchObject({ caption: 'blue scarf', source: 'pairs.tsv', original: { format: 'png' } });

    const dead = await readTopic(kafka, deployment.topics.dlq, 1, { settleMs: 2000 });
    expect(dead.map((m) => [m.key, m.headers[DLQ_HEADERS.reason]])).toEqual([['00000400', 'invalid-image']]);
    expect(dead[0]!.headers[DLQ_HEADERS.detail]).toMatch(/^image\.encoded: JPEG truncated/);
  }, 240_000);

  test('bad arguments: a clear message and exit code 2, nothing produced', async () => {
    const missing = await cli(['produce', '--from', 'webdataset', join(dir, 'nope-*.tar')], deployment.env);
    expect(missing.code).toBe(2);
    expect(missing.output).toMatch(/no file matches .*nope-\*\.tar/);
    const field = await cli(['produce', '--caption-field', 'alt', join(dir, 'x.jsonl')], deployment.env);
    expect(field.code).toBe(2);
    expect(field.output).toMatch(/--caption-field: only applies to --from webdataset/);
  });
});
