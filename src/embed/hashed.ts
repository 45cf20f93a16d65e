/**
 * The default caption embedder: signed feature hashing of word, word n-gram and character n-gram
 * features. Needs no model or download, and gives the same vectors on every machine and run.
 *
 * Per caption:
 * 1. Read at most MAX_CHARS UTF-16 units, NFKC-normalise, lowercase (locale-independent).
 * 2. Tokens: runs of letters, digits and marks; each Han/Hiragana/Katakana character and each emoji
 *    is a token of its own (those scripts do not separate words with spaces). At most MAX_TOKENS tokens.
 * 3. Features, each hashed with MurmurHash3 x86_32 over its code points as 32-bit words (that is,
 *    murmur3 of the UTF-32LE text), with a per-kind seed derived from `seed`:
 *    words; word n-grams (2..wordNgrams, hashing the words' hashes); character n-grams of each
 *    "<word>" (boundary marks, first MAX_TOKEN_CHARS code points) for each length in `charNgrams`.
 * 4. Per distinct feature weight 1 + ln(tf) (sublinear). Each kind is a block scaled to norm
 *    BLOCK_WEIGHT[kind], so the cosine of two captions is roughly a weighted mean of their word,
 *    phrase and char-gram cosines with weights 4:1:1: shared words dominate, char grams only add
 *    robustness to morphology and spelling ("tshirt" vs "t-shirt").
 * 5. Bucket = (h >>> 1) mod dim, sign = lowest bit of h; the row is L2-normalised.
 */
import { HashedEmbedderConfig } from '../config.js';
import type { EmbedderSettings } from '../config.js';
import { ConfigError, StateError } from '../errors.js';
import type { CaptionEmbedder } from './types.js';

export type HashedEmbedderSettings = Extract<EmbedderSettings, { kind: 'hashed' }>;

/** Caption prefix that is read at all (UTF-16 units): bounds normalisation work on huge captions. */
export const MAX_CHARS = 16_384;
/** Tokens used per caption; the rest of a very long caption is ignored. */
export const MAX_TOKENS = 256;
/** Code points of one token that feed its character n-grams (URLs, hashes and junk runs are long). */
export const MAX_TOKEN_CHARS = 64;
const BLOCK_WEIGHT = { word: 1, phrase: 0.5, char: 0.5 } as const;
/** Bump when any step above changes: the fingerprint must change with the embedding space. */
const ALGORITHM = 'hashed-v1';
/** Embed calls yield to the event loop this often, so Kafka heartbeats keep flowing on huge batches. */
const YIELD_EVERY = 4096;

const BOW = 0x3c; // '<' and '>' never occur inside a token, so they mark word boundaries unambiguously
const EOW = 0x3e;

const NO_SPACE_SCRIPTS = '\\p{Script=Han}\\p{Script=Hiragana}\\p{Script=Katakana}\\p{Extended_Pictographic}';
// The v flag gives class subtraction; built with the constructor because tsc only allows it for ES2024.
const TOKEN = new RegExp(`[${NO_SPACE_SCRIPTS}]|[[\\p{L}\\p{N}\\p{M}]--[${NO_SPACE_SCRIPTS}]]+`, 'gv');

export function createHashedEmbedder(settings: HashedEmbedderSettings): CaptionEmbedder {
  const parsed = HashedEmbedderConfig.safeParse(settings);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || 'embedder'}: ${i.message}`).join('; ');
    throw new ConfigError(`invalid hashed embedder settings: ${problems}`);
  }
  const { dim, seed, wordNgrams } = parsed.data;
  const charNgrams = [...new Set(parsed.data.charNgrams)].sort((a, b) => a - b);
  const featurize = createFeaturizer({ seed, wordNgrams, charNgrams });
  const fingerprint =
    `${ALGORITHM}(dim=${dim},seed=${seed},wordNgrams=${wordNgrams},charNgrams=${charNgrams.join('+') || 'none'},` +
    `maxChars=${MAX_CHARS},maxTokens=${MAX_TOKENS},maxTokenChars=${MAX_TOKEN_CHARS},` +
    `weights=${BLOCK_WEIGHT.word}/${BLOCK_WEIGHT.phrase}/${BLOCK_WEIGHT.char})`;
  let disposed = false;

  return {
    dim,
    fingerprint,
    async embed(captions) {
      if (disposed) throw new StateError('hashed embedder used after dispose()');
      const out = new Float32Array(captions.length * dim);
      for (let i = 0; i < captions.length; i++) {
        if (i > 0 && i % YIELD_EVERY === 0) await new Promise((resolve) => setImmediate(resolve));
        featurize(captions[i] ?? '', out.subarray(i * dim, (i + 1) * dim));
      }
      return out;
    },
    dispose() {
      disposed = true;
    },
  };
}

interface FeaturizerOptions {
  seed: number;
  wordNgrams: number;
  charNgrams: readonly number[];
}

/** Returns a function that writes one caption's normalised vector into `row` (zeroed on entry). */
function createFeaturizer({ seed, wordNgrams, charNgrams }: FeaturizerOptions) {
  const lo = seed >>> 0;
  const hi = Math.floor(seed / 2 ** 32) >>> 0;
  const kindSeed = (kind: number) => murmurWords([kind, lo, hi], 0x9747b28c);
  const wordSeed = kindSeed(1);
  const charSeed = kindSeed(2);
  const phraseSeeds = Array.from({ length: wordNgrams + 1 }, (_, n) => kindSeed(10 + n));

  // Scratch buffers, reused across captions (sized for the worst case the bounds above allow).
  const words = new Uint32Array(MAX_TOKENS);
  const phrases = new Uint32Array(MAX_TOKENS * Math.max(1, wordNgrams - 1));
  const gramsPerToken = charNgrams.reduce((sum, n) => sum + Math.max(0, MAX_TOKEN_CHARS + 3 - n), 0);
  const chars = new Uint32Array(MAX_TOKENS * gramsPerToken);
  const cps = new Int32Array(MAX_TOKEN_CHARS + 2);
  const minGram = charNgrams.length ? Math.min(...charNgrams) : Infinity;
  const maxGram = charNgrams.length ? Math.max(...charNgrams) : 0;
  const gramLength = new Uint8Array(maxGram + 1);
  for (const n of charNgrams) gramLength[n] = 1;

  return function featurize(caption: string, row: Float32Array): void {
    let text = caption.length > MAX_CHARS ? caption.slice(0, MAX_CHARS) : caption;
    text = text.normalize('NFKC').toLowerCase();

    let nWords = 0;
    let nChars = 0;
    TOKEN.lastIndex = 0;
    for (let m = TOKEN.exec(text); m !== null && nWords < MAX_TOKENS; m = TOKEN.exec(text)) {
      const token = m[0];
      // Code points of "<token>" (bounded); the word hash covers the whole token.
      let len = 0;
      let h = wordSeed;
      let count = 0;
      cps[len++] = BOW;
      for (let i = 0; i < token.length; i++) {
        const cp = token.codePointAt(i)!;
        if (cp > 0xffff) i++;
        h = mix(h, cp);
        count++;
        if (len <= MAX_TOKEN_CHARS) cps[len++] = cp;
      }
      cps[len++] = EOW;
      words[nWords++] = fmix(h, count * 4);
      // murmur3 is sequential, so all n-grams starting at `start` share one running state.
      for (let start = 0; start + minGram <= len; start++) {
        let g = charSeed;
        const end = Math.min(len, start + maxGram);
        for (let k = start; k < end; k++) {
          g = mix(g, cps[k]!);
          const n = k - start + 1;
          if (gramLength[n] === 1) chars[nChars++] = fmix(g, n * 4);
        }
      }
    }

    let nPhrases = 0;
    for (let n = 2; n <= wordNgrams; n++) {
      for (let start = 0; start + n <= nWords; start++) {
        let g = phraseSeeds[n]!;
        for (let k = start; k < start + n; k++) g = mix(g, words[k]!);
        phrases[nPhrases++] = fmix(g, n * 4);
      }
    }

    row.fill(0);
    addBlock(row, words.subarray(0, nWords), BLOCK_WEIGHT.word);
    addBlock(row, phrases.subarray(0, nPhrases), BLOCK_WEIGHT.phrase);
    addBlock(row, chars.subarray(0, nChars), BLOCK_WEIGHT.char);
    normalize(row);
  };
}

/** Adds one feature block, sublinear tf, scaled so that the block (collisions aside) has norm `weight`. */
function addBlock(row: Float32Array, hashes: Uint32Array, weight: number): void {
  if (hashes.length === 0) return;
  hashes.sort(); // equal features become runs: tf without a hash map
  let sumSq = 0;
  for (let i = 0; i < hashes.length; ) {
    let j = i + 1;
    while (j < hashes.length && hashes[j] === hashes[i]) j++;
    const w = sublinear(j - i);
    sumSq += w * w;
    i = j;
  }
  const scale = weight / Math.sqrt(sumSq);
  const dim = row.length;
  for (let i = 0; i < hashes.length; ) {
    const h = hashes[i]!;
    let j = i + 1;
    while (j < hashes.length && hashes[j] === h) j++;
    const w = sublinear(j - i) * scale;
    row[(h >>> 1) % dim]! += h & 1 ? -w : w;
    i = j;
  }
}

const SUBLINEAR = Float64Array.from({ length: 64 }, (_, tf) => (tf === 0 ? 0 : 1 + Math.log(tf)));

/** 1 + ln(tf): a word said five times is not five times as informative. */
function sublinear(tf: number): number {
  return tf < SUBLINEAR.length ? SUBLINEAR[tf]! : 1 + Math.log(tf);
}

function normalize(row: Float32Array): void {
  let sumSq = 0;
  for (let i = 0; i < row.length; i++) sumSq += row[i]! * row[i]!;
  if (sumSq === 0) return;
  const inv = 1 / Math.sqrt(sumSq);
  for (let i = 0; i < row.length; i++) row[i]! *= inv;
}

// MurmurHash3 x86_32, one 32-bit block at a time.
function mix(h: number, block: number): number {
  let k = Math.imul(block, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, 0x1b873593);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

function fmix(h: number, byteLength: number): number {
  h ^= byteLength;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function murmurWords(blocks: readonly number[], seed: number): number {
  let h = seed | 0;
  for (const b of blocks) h = mix(h, b | 0);
  return fmix(h, blocks.length * 4);
}
