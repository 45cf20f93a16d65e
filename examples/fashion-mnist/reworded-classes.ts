/**
 * Held-out wordings of the ten Fashion-MNIST classes, for a second zero-shot pass (paper.ts).
 *
 * Why: the canonical prompt names (t-shirt, trousers...) are also the caption generator's most frequent
 * nouns, and every other synonym or hypernym it knows shows up in training captions too. Zero-shot with
 * those names partly measures whether the text tower memorised the generator's words. These names are
 * what a person might call the same garments, none of which the generator ever writes, so only the
 * caption embedder's (MiniLM's) knowledge of the words can carry them to the right class.
 *
 * Invariant (test/unit/reworded-classes.test.ts): no word of a name here is a word (singular or plural)
 * of the generator's vocabulary (captions.ts, classes.ts), and no class or family word hides inside one
 * (no "raincoat", which would carry "coat"). The test also catches an edit of the generator that starts
 * using one of them.
 *
 * The names were chosen once, before any run, for what they mean; several are imperfect because the
 * everyday names are all taken by the generator: "polo" is a kind of short-sleeved top, "kaftan" a loose
 * dress, "chukka" one kind of ankle boot, "tennies" informal US for sneakers, "holdall" a large bag.
 */

/** By Fashion-MNIST label 0..9, in the same form as `promptName` (lower case, one noun phrase). */
export const REWORDED_CLASS_NAMES: readonly string[] = [
  'polo', // 0 T-shirt/top
  'khakis', // 1 Trouser
  'cardigan', // 2 Pullover
  'kaftan', // 3 Dress
  'mackintosh', // 4 Coat
  'espadrille', // 5 Sandal
  'tunic', // 6 Shirt
  'tennies', // 7 Sneaker
  'holdall', // 8 Bag
  'chukka', // 9 Ankle boot
];

export function rewordedName(label: number): string {
  const name = Number.isInteger(label) ? REWORDED_CLASS_NAMES[label] : undefined;
  if (name === undefined) throw new RangeError(`Fashion-MNIST label must be an integer 0..9, got ${label}`);
  return name;
}

/**
 * Everyday alternative names, by label: what a shopper or an evaluator types when not copying the
 * dataset's names (tee, pants, sweater...). Unlike REWORDED_CLASS_NAMES these may also occur in crawled
 * captions (the feed's synonyms include several), as they would on the web; they test that a task worded
 * differently from the canonical prompt names still routes and classifies, while the held-out names above
 * test words the training captions never contain.
 */
export const EVERYDAY_CLASS_NAMES: readonly string[] = [
  'tee', // 0 T-shirt/top
  'pants', // 1 Trouser
  'sweater', // 2 Pullover
  'gown', // 3 Dress
  'jacket', // 4 Coat
  'flip-flops', // 5 Sandal
  'button-down shirt', // 6 Shirt
  'trainers', // 7 Sneaker
  'handbag', // 8 Bag
  'boots', // 9 Ankle boot
];
