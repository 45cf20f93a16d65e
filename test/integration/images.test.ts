/**
 * Web images through a real broker and a real `modestream run`: JPEG (baseline, progressive, CMYK), PNG
 * (palette, 16-bit), WebP, GIF and AVIF files made here with sharp are decoded once, at ingestion, to the
 * experts' input size; the routed records carry those pixels and the file byte for byte. A truncated
 * file and a decode bomb are refused by their headers, a PNG whose data is corrupt by the decoder: all
 * three dead-lettered with a reason. Status and metrics count the decodes.
 */
import { crc32 } from 'node:zlib';
import { Kafka, logLevel } from 'kafkajs';
import sharp from 'sharp';
import { afterAll, describe, expect, inject, test } from 'vitest';
import { encodePairMessage } from '../../src/contract/pair.js';
import { decodeRouted, type RoutedRecord } from '../../src/contract/routed.js';
import type { StatusReport } from '../../src/status.js';
import { DLQ_HEADERS } from '../../streams/messages.js';
import { startProcessor, stopProcessor, testDeployment, type Processor } from '../support/processor.js';
import { readTopic } from '../support/topics.js';
import { waitFor } from '../support/waits.js';

const brokers = inject('brokers');
const kafka = new Kafka({ brokers: brokers.split(','), logLevel: logLevel.NOTHING });

const photo = () => sharp({ create: { width: 400, height: 300, channels: 3, background: '#808080', noise: { type: 'gaussian', mean: 128, sigma: 50 } } });

async function files(): Promise<Record<string, { bytes: Buffer; format: string }>> {
  const base = await photo().png().toBuffer();
  const from = () => sharp(base);
  return {
    'jpeg-baseline': { bytes: await from().jpeg({ quality: 85 }).toBuffer(), format: 'jpeg' },
    'jpeg-progressive': { bytes: await from().jpeg({ quality: 85, progressive: true }).toBuffer(), format: 'jpeg' },
    'jpeg-cmyk': { bytes: await from().toColourspace('cmyk').jpeg().toBuffer(), format: 'jpeg' },
    'png-palette': { bytes: await from().png({ palette: true }).toBuffer(), format: 'png' },
    'png-16bit': { bytes: await from().toColourspace('rgb16').png().toBuffer(), format: 'png' },
    webp: { bytes: await from().webp().toBuffer(), format: 'webp' },
    gif: { bytes: await from().gif().toBuffer(), format: 'gif' },
    avif: { bytes: await from().avif().toBuffer(), format: 'avif' },
  };
}

/** A PNG whose compressed data is garbage under a correct CRC: only a real decode can tell. */
async function corruptPng(): Promise<Buffer> {
  const png = Buffer.from(await sharp({ create: { width: 64, height: 64, channels: 3, background: '#3366cc' } }).png().toBuffer());
  const idat = png.indexOf('IDAT');
  const length = png.readUInt32BE(idat - 4);
  png.fill(0xff, idat + 6, idat + 4 + length);
  png.writeUInt32BE(crc32(png.subarray(idat, idat + 4 + length)), idat + 4 + length);
  return png;
}


describe('web images at ingestion', () => {
  const deployment = testDeployment(brokers, {
    MODESTREAM_ROLES: 'router,sharder,http',
    MODESTREAM_EXPERTS__IMAGE_INPUT: '{"width": 32, "height": 32, "channels": 3}',
    MODESTREAM_LIMITS__MAX_MESSAGE_BYTES: String(2 * 2 ** 20),
    MODESTREAM_LIMITS__MAX_IMAGE_PIXELS: '1000000',
  });
  let processor: Processor | undefined;
  afterAll(() => stopProcessor(processor));

  test('every format decodes once to the experts input; broken files are dead-lettered with a reason', async () => {
    const good = await files();
    const bomb = await sharp({ create: { width: 4096, height: 4096, channels: 4, background: { r: 0, g: 0, b: 0, alpha: 0 } } }).png({ compressionLevel: 9 }).toBuffer();
    const jpeg = good['jpeg-baseline']!.bytes;
    const bad = { truncated: jpeg.subarray(0, Math.floor(jpeg.length / 2)), bomb, corrupt: await corruptPng() };
    processor = await startProcessor(deployment);
    const url = /"status":"(http:\/\/[^"]+)\/status\.json"/.exec(processor.output())?.[1];
    expect(url, 'the processor logs its HTTP address').toBeDefined();

    const producer = kafka.producer();
    await producer.connect();
    const entries = [...Object.entries(good).map(([id, f]) => [id, f.bytes] as const), ...Object.entries(bad)];
    await producer.send({ topic: deployment.topics.pairs, acks: -1, messages: entries.map(([id, bytes]) => ({ key: id, value: encodePairMessage({ id, caption: `a product photo ${id}`, image: { kind: 'encoded', bytes } }) })) });
    await producer.disconnect();

    const routed = (await readTopic(kafka, deployment.topics.routed, Object.keys(good).length)).map((m) => {
      const decoded = decodeRouted(m.value);
      if (!decoded.ok) throw new Error(decoded.detail);
      return decoded.record;
    });
    const byId = new Map<string, RoutedRecord>(routed.map((r) => [r.id, r]));
    expect([...byId.keys()].sort()).toEqual(Object.keys(good).sort());
    for (const [id, { bytes, format }] of Object.entries(good)) {
      const record = byId.get(id)!;
      expect(record.image, id).toMatchObject({ kind: 'pixels', width: 32, height: 32, channels: 3 });
      expect(record.image.kind === 'pixels' && record.image.data.length, id).toBe(32 * 32 * 3);
      expect(record.original?.format, id).toBe(format);
      expect(Buffer.compare(Buffer.from(record.original!.bytes), bytes), `${id}: the file as received`).toBe(0);
    }

    const dead = await readTopic(kafka, deployment.topics.dlq, 3);
    const details = Object.fromEntries(dead.map((m) => [m.key, m.headers[DLQ_HEADERS.detail]]));
    expect(dead.map((m) => m.headers[DLQ_HEADERS.reason])).toEqual(['invalid-image', 'invalid-image', 'invalid-image']);
    expect(details.truncated).toMatch(/^image\.encoded: JPEG truncated/);
    expect(details.bomb).toBe('image.encoded: PNG is 4096x4096 = 16777216 pixels, over maxImagePixels 1000000');
    expect(details.corrupt).toMatch(/^image\.encoded: undecodable PNG \(/);

    const status = await waitFor('the decodes in /status.json', async () => {
      const report = (await (await fetch(`${url}/status.json`)).json()) as StatusReport;
      return report.images && report.images.decoded + report.images.failed === Object.keys(good).length + 1 ? report : undefined;
    }, { timeoutMs: 30_000, intervalMs: 500 });
    expect(status.images).toMatchObject({ decoded: Object.keys(good).length, failed: 1, decoder: expect.stringMatching(/^sharp /) });
    expect(status.images!.meanDecodeMs).toBeGreaterThan(0);
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toContain(`modestream_image_decodes_total{result="ok"} ${Object.keys(good).length}`);
    expect(metrics).toContain('modestream_image_decodes_total{result="failed"} 1');
  }, 180_000);
});
