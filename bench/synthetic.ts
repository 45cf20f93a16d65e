/**
 * Synthetic web-crawl-like pairs for benchmarks: captions drawn from a few product families with
 * attribute and distractor words, and a 28x28 grey image (Fashion-MNIST sized), as JSON messages.
 */
const FAMILIES = [
  ['t-shirt', 'tee', 'top', 'shirt', 'cotton', 'sleeve', 'crew', 'neck'],
  ['trousers', 'pants', 'jeans', 'denim', 'slim', 'leg', 'waist', 'chino'],
  ['pullover', 'sweater', 'jumper', 'knit', 'wool', 'warm', 'cardigan', 'hoodie'],
  ['dress', 'gown', 'skirt', 'floral', 'midi', 'summer', 'evening', 'silk'],
  ['coat', 'jacket', 'parka', 'trench', 'hooded', 'rain', 'padded', 'zip'],
  ['sandal', 'flip-flop', 'strap', 'open', 'toe', 'beach', 'flat', 'slide'],
  ['shirt', 'button', 'collar', 'oxford', 'flannel', 'blouse', 'check', 'formal'],
  ['sneaker', 'trainer', 'running', 'lace', 'mesh', 'sport', 'shoe', 'rubber'],
  ['bag', 'handbag', 'tote', 'purse', 'backpack', 'leather', 'shoulder', 'clutch'],
  ['boot', 'ankle', 'heel', 'chelsea', 'leather', 'suede', 'winter', 'lace-up'],
];
const ATTRIBUTES = ['black', 'white', 'red', 'navy', 'grey', 'beige', 'green', 'small', 'large', 'vintage', 'new', 'classic', 'modern'];
const DISTRACTORS = ['free shipping', 'best price', 'click here', 'sale', 'limited offer', 'in stock', 'img_2041.jpg', 'shop now'];

export function createSyntheticFeed(seed = 7, prefix = 'syn') {
  let s = seed >>> 0;
  const rand = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const pixels = Buffer.alloc(28 * 28);
  let i = 0;
  return {
    next(): { key: string; value: Buffer } {
      const family = pick(FAMILIES);
      const words = [pick(ATTRIBUTES), pick(family), pick(family), pick(family)];
      if (rand() < 0.3) words.push(pick(DISTRACTORS));
      for (let p = 0; p < pixels.length; p += 4) pixels.writeUInt32LE((rand() * 4294967296) >>> 0, p);
      const id = `${prefix}-${i++}`;
      return { key: id, value: Buffer.from(JSON.stringify({ id, caption: words.join(' '), image: { pixels: pixels.toString('base64'), width: 28, height: 28, channels: 1 } })) };
    },
  };
}
