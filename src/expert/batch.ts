/**
 * Records to model inputs: images to the image tower's shape (pixels scaled to [0, 1], resized
 * bilinearly and converted grey<->RGB when a record's image differs from the configured input), caption
 * embeddings as the text tower's input. A record the model cannot take (an embedding image for a
 * pixel tower, a caption embedding of another size) is skipped and reported, never guessed at.
 */
import type { DecodedImage } from '../contract/image.js';
import type { RoutedRecord } from '../contract/routed.js';
import type { ExpertArchitecture } from './model.js';
import type { TrainBatch } from './train.js';

export interface BatchResult {
  batch: TrainBatch;
  /** Why records were left out, by reason. */
  skipped: Record<string, number>;
}

export function imageSize(a: ExpertArchitecture): number {
  const input = a.imageInput;
  return input.kind === 'pixels' ? input.width * input.height * input.channels : input.dim;
}

/** Writes one image into `out` at `offset`; false when the tower cannot take this kind of image. */
export function writeImage(image: DecodedImage, a: ExpertArchitecture, out: Float32Array, offset: number): boolean {
  const input = a.imageInput;
  if (input.kind === 'embedding') {
    if (image.kind !== 'embedding' || image.values.length !== input.dim) return false;
    out.set(image.values, offset);
    return true;
  }
  if (image.kind !== 'pixels') return false;
  const { width: W, height: H, channels: C } = input;
  const { width: w, height: h, channels: c, data } = image;
  const sample = (x: number, y: number, ch: number) => data[(y * w + x) * c + ch]!;
  // Channel conversion: grey -> RGB repeats; RGB -> grey averages.
  const value = (x: number, y: number, ch: number) => (c === C ? sample(x, y, ch) : c === 1 ? sample(x, y, 0) : (sample(x, y, 0) + sample(x, y, 1) + sample(x, y, 2)) / 3);
  if (w === W && h === H) {
    for (let y = 0, o = offset; y < H; y++) for (let x = 0; x < W; x++) for (let ch = 0; ch < C; ch++) out[o++] = value(x, y, ch) / 255;
    return true;
  }
  // Bilinear, align-corners=false, as tf.image.resizeBilinear.
  const sx = w / W;
  const sy = h / H;
  for (let y = 0, o = offset; y < H; y++) {
    const fy = Math.max(0, (y + 0.5) * sy - 0.5);
    const y0 = Math.min(h - 1, Math.floor(fy));
    const y1 = Math.min(h - 1, y0 + 1);
    const ty = fy - y0;
    for (let x = 0; x < W; x++) {
      const fx = Math.max(0, (x + 0.5) * sx - 0.5);
      const x0 = Math.min(w - 1, Math.floor(fx));
      const x1 = Math.min(w - 1, x0 + 1);
      const tx = fx - x0;
      for (let ch = 0; ch < C; ch++) {
        const top = value(x0, y0, ch) * (1 - tx) + value(x1, y0, ch) * tx;
        const bottom = value(x0, y1, ch) * (1 - tx) + value(x1, y1, ch) * tx;
        out[o++] = (top * (1 - ty) + bottom * ty) / 255;
      }
    }
  }
  return true;
}

/** Why the model cannot take this record, or undefined when it can. */
export function unfitReason(r: RoutedRecord, a: ExpertArchitecture): string | undefined {
  if (r.embedding.length !== a.textDim) return `caption embedding of dim ${r.embedding.length} for a text tower of ${a.textDim}`;
  const input = a.imageInput;
  if (input.kind === 'pixels' && r.image.kind !== 'pixels') return 'embedding image for a pixel tower';
  if (input.kind === 'embedding' && (r.image.kind !== 'embedding' || r.image.values.length !== input.dim)) return `image that is not a ${input.dim}-d embedding`;
  return undefined;
}

export function toTrainBatch(records: readonly RoutedRecord[], a: ExpertArchitecture): BatchResult {
  const per = imageSize(a);
  const images = new Float32Array(records.length * per);
  const texts = new Float32Array(records.length * a.textDim);
  const skipped: Record<string, number> = {};
  let size = 0;
  for (const r of records) {
    const reason = unfitReason(r, a);
    if (reason) {
      skipped[reason] = (skipped[reason] ?? 0) + 1;
      continue;
    }
    writeImage(r.image, a, images, size * per);
    texts.set(r.embedding, size * a.textDim);
    size++;
  }
  return { batch: { images: images.subarray(0, size * per), texts: texts.subarray(0, size * a.textDim), size }, skipped };
}
