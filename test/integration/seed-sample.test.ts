/** The seed sample store on a real LMDB environment: a bounded reservoir, redeliveries stored once, records read back whole. */
import { describe, expect, test } from 'vitest';
import { encodeRouted, type RoutedRecord } from '../../src/contract/routed.js';
import { createSeedSample } from '../../state/seed-sample.js';
import { freshStateEnvs } from '../support/state-env.js';

const freshEnv = freshStateEnvs('modestream-seed-sample-');

function record(i: number): { id: string; bytes: Buffer } {
  const r: RoutedRecord = {
    id: `pair-${i}`,
    caption: `caption ${i}`,
    ts: 1_700_000_000_000 + i,
    image: { kind: 'pixels', width: 2, height: 2, channels: 1, data: Uint8Array.from([i & 255, 2, 3, 4]) },
    embedding: Float32Array.from([1, 0, 0, i / 1000]),
    route: { epoch: 1, fine: i % 7, expert: i % 3, dist2: 0.1 },
    origin: { topic: 'pairs', partition: 0, offset: String(i) },
  };
  return { id: r.id, bytes: encodeRouted(r) };
}

describe('seed sample', () => {
  test('holds at most `size` distinct records, a uniform reservoir over what it was offered', async () => {
    const sample = createSeedSample(freshEnv(), { size: 100, seed: 3 });
    const offered = Array.from({ length: 1000 }, (_, i) => record(i));
    for (let i = 0; i < offered.length; i += 250) await sample.offer(offered.slice(i, i + 250));
    expect(sample.size()).toBe(100);
    expect(sample.seen()).toBe(1000);
    const held = Array.from({ length: 100 }, (_, slot) => sample.get(slot)!);
    expect(new Set(held.map((r) => r.id)).size).toBe(100);
    // Uniform over the stream: a reservoir that kept only the first 100 offers would fail this.
    const late = held.filter((r) => Number(r.id.slice('pair-'.length)) >= 500).length;
    expect(late).toBeGreaterThan(30);
    expect(late).toBeLessThan(70);
    expect(held[0]!.caption).toMatch(/^caption \d+$/);
  });

  test('a redelivered chunk changes nothing', async () => {
    const sample = createSeedSample(freshEnv(), { size: 50, seed: 1 });
    const chunk = Array.from({ length: 40 }, (_, i) => record(i));
    await sample.offer(chunk);
    await sample.offer(chunk);
    expect(sample.size()).toBe(40);
    expect(sample.seen()).toBe(40);
  });
});
