/**
 * Embeds the Fashion-MNIST feed's captions once for bench/novelty.ts and caches them, so choosing the
 * novelty rule does not re-run the encoder (~300 captions/s per core) on every variant:
 *   node dist/bench/novelty-embed.js [--dir .modestream/models/minilm-l6] [--out /tmp/novelty-cache] [--kind onnx|hashed]
 * Writes <out>/<kind>.f32 (row-major n x dim), <kind>.json ({dim, labels, families, ids}).
 * The stream: 30,000 stationary pairs (tops, bottoms, dresses), then 6,000 footwear, then 3,000 bags, in
 * the feed's own seeded order (captions depend on seed, label and index only).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fashionMnistFeed } from '../examples/fashion-mnist/feed.js';
import type { EmbedderSettings } from '../src/config.js';
import { createEmbedder } from '../src/embed/embedder.js';
import { FASHION_MNIST_CLASSES } from '../examples/fashion-mnist/classes.js';

const { values } = parseArgs({
  options: {
    dir: { type: 'string', default: '.modestream/models/minilm-l6' },
    out: { type: 'string', default: '/tmp/novelty-cache' },
    kind: { type: 'string', default: 'onnx' },
    seed: { type: 'string', default: '1' },
  },
});

const schedule = [
  { classes: [0, 1, 2, 3, 4, 6], count: 30_000 },
  { classes: [5, 7, 9], count: 6_000 },
  { classes: [8], count: 3_000 },
];
const captions: string[] = [];
const labels: number[] = [];
const ids: string[] = [];
for await (const pair of fashionMnistFeed({ seed: Number(values.seed), schedule })) {
  captions.push(pair.caption);
  labels.push(pair.meta.label);
  ids.push(pair.id);
}
const embedder =
  values.kind === 'hashed'
    ? await createEmbedder({ kind: 'hashed' } as EmbedderSettings, { modelsDir: '/tmp/models' })
    : await createEmbedder({ kind: 'onnx', dir: values.dir, maxTokens: 128, pooling: 'mean', threads: 1 } as EmbedderSettings, { modelsDir: '/tmp/models' });
// Identical captions embed identically: embed each distinct text once.
const distinct = [...new Set(captions)];
const started = performance.now();
const rows = new Map<string, Float32Array>();
for (let i = 0; i < distinct.length; i += 256) {
  const batch = distinct.slice(i, i + 256);
  const out = await embedder.embed(batch);
  batch.forEach((c, j) => rows.set(c, out.slice(j * embedder.dim, (j + 1) * embedder.dim)));
  if (i % 2560 === 0) console.error(`${i + batch.length}/${distinct.length} distinct captions, ${((i + batch.length) / ((performance.now() - started) / 1000)).toFixed(0)}/s`);
}
const flat = new Float32Array(captions.length * embedder.dim);
captions.forEach((c, i) => flat.set(rows.get(c)!, i * embedder.dim));
await mkdir(values.out, { recursive: true });
await writeFile(join(values.out, `${values.kind}.f32`), Buffer.from(flat.buffer));
await writeFile(
  join(values.out, `${values.kind}.json`),
  JSON.stringify({ dim: embedder.dim, fingerprint: embedder.fingerprint, labels, families: labels.map((l) => FASHION_MNIST_CLASSES[l]!.family), ids }),
);
console.error(`embedded ${captions.length} captions (${distinct.length} distinct) in ${((performance.now() - started) / 1000).toFixed(0)} s`);
embedder.dispose();
