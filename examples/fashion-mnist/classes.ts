/**
 * The Fashion-MNIST label set as words: canonical names, the synonyms a web crawl uses for each class,
 * the families (hypernyms) above them, and the zero-shot prompts the evaluation embeds for each class.
 *
 * Families. Dress gets a family of its own ("dresses") rather than joining tops: a dress covers torso and
 * legs, shops list it as its own department, and putting it under tops would make "tops" a noisier
 * hypernym for the four upper-body classes. Coat joins tops (upper-body garment, the same silhouette).
 * Clothing families share the department words (clothing, apparel); footwear and bags have their own.
 *
 * Vocabulary invariant (tested): every word here is a whole word or phrase that names the class or its
 * family; the caption noise vocabulary must never contain one of them, or "uninformative" captions
 * would leak labels.
 */

export const FAMILY_IDS = ['tops', 'dresses', 'bottoms', 'footwear', 'bags'] as const;
export type FamilyId = (typeof FAMILY_IDS)[number];

export interface FashionFamily {
  id: FamilyId;
  /** Hypernyms, most specific first; department words (clothing, accessories) come last. */
  hypernyms: readonly string[];
  /** How a person uses it in a caption: "woman wearing a coat", "man carrying a tote". */
  verb: 'wearing' | 'carrying';
}

const CLOTHING = ['clothing', 'apparel', 'clothes', 'garments'] as const;

export const FASHION_FAMILIES: Readonly<Record<FamilyId, FashionFamily>> = {
  tops: { id: 'tops', hypernyms: ['tops', 'topwear', 'upper-body wear', ...CLOTHING], verb: 'wearing' },
  dresses: { id: 'dresses', hypernyms: ['dresses', 'one-pieces', 'womenswear', ...CLOTHING], verb: 'wearing' },
  bottoms: { id: 'bottoms', hypernyms: ['bottoms', 'legwear', ...CLOTHING], verb: 'wearing' },
  footwear: { id: 'footwear', hypernyms: ['footwear', 'shoes'], verb: 'wearing' },
  bags: { id: 'bags', hypernyms: ['bags', 'accessories', 'leather goods'], verb: 'carrying' },
};

export interface FashionClass {
  /** The dataset label, 0..9. */
  label: number;
  /** The dataset's own class name. */
  name: string;
  /** The class name as the zero-shot prompts say it (lower case, one noun phrase). */
  promptName: string;
  family: FamilyId;
  /** Nouns a caption may use for it, singular unless the word only exists in the plural; promptName first. */
  synonyms: readonly string[];
}

export const FASHION_MNIST_CLASSES: readonly FashionClass[] = [
  {
    label: 0,
    name: 'T-shirt/top',
    promptName: 't-shirt',
    family: 'tops',
    synonyms: ['t-shirt', 'tee', 'top', 'tshirt', 't shirt', 'tee shirt', 'tank top', 'crew neck tee', 'graphic tee', 'short-sleeve top', 'camisole'],
  },
  {
    label: 1,
    name: 'Trouser',
    promptName: 'trousers',
    family: 'bottoms',
    synonyms: ['trousers', 'pants', 'jeans', 'slacks', 'chinos', 'joggers', 'leggings', 'sweatpants', 'cargo pants', 'trouser'],
  },
  {
    label: 2,
    name: 'Pullover',
    promptName: 'pullover',
    family: 'tops',
    synonyms: ['pullover', 'sweater', 'jumper', 'sweatshirt', 'hoodie', 'knit sweater', 'turtleneck', 'crewneck jumper'],
  },
  {
    label: 3,
    name: 'Dress',
    promptName: 'dress',
    family: 'dresses',
    synonyms: ['dress', 'gown', 'frock', 'sundress', 'maxi dress', 'midi dress', 'shift dress', 'slip dress', 'evening gown'],
  },
  {
    label: 4,
    name: 'Coat',
    promptName: 'coat',
    family: 'tops',
    synonyms: ['coat', 'jacket', 'parka', 'overcoat', 'trench coat', 'blazer', 'anorak', 'puffer jacket', 'windbreaker'],
  },
  {
    label: 5,
    name: 'Sandal',
    promptName: 'sandal',
    family: 'footwear',
    synonyms: ['sandal', 'flip-flop', 'slide', 'strappy sandal', 'gladiator sandal', 'wedge sandal', 'slingback', 'thong sandal'],
  },
  {
    label: 6,
    name: 'Shirt',
    promptName: 'shirt',
    family: 'tops',
    synonyms: ['shirt', 'button-down shirt', 'blouse', 'flannel shirt', 'oxford shirt', 'dress shirt', 'long-sleeve shirt', 'button-up'],
  },
  {
    label: 7,
    name: 'Sneaker',
    promptName: 'sneaker',
    family: 'footwear',
    synonyms: ['sneaker', 'trainer', 'running shoe', 'tennis shoe', 'kicks', 'athletic shoe', 'court sneaker', 'plimsoll'],
  },
  {
    label: 8,
    name: 'Bag',
    promptName: 'bag',
    family: 'bags',
    synonyms: ['bag', 'handbag', 'purse', 'tote', 'backpack', 'shoulder bag', 'clutch', 'satchel', 'crossbody bag'],
  },
  {
    label: 9,
    name: 'Ankle boot',
    promptName: 'ankle boot',
    family: 'footwear',
    synonyms: ['ankle boot', 'boot', 'bootie', 'chelsea boot', 'combat boot', 'heeled boot', 'lace-up boot'],
  },
];

export const FASHION_MNIST_LABELS: readonly number[] = FASHION_MNIST_CLASSES.map((c) => c.label);

/** Labels per family, e.g. footwear -> [5, 7, 9] (drift schedules introduce a whole family). */
export function labelsOfFamily(family: FamilyId): number[] {
  return FASHION_MNIST_CLASSES.filter((c) => c.family === family).map((c) => c.label);
}

export function fashionClass(label: number): FashionClass {
  const c = Number.isInteger(label) ? FASHION_MNIST_CLASSES[label] : undefined;
  if (!c) throw new RangeError(`Fashion-MNIST label must be an integer 0..9, got ${label}`);
  return c;
}

/**
 * Zero-shot prompt templates, CLIP style ("{}" is the class name). The photos are 28x28 greyscale product
 * shots, hence the black-and-white and low-resolution variants. `a {}` becomes `an {}` before a vowel.
 */
export const ZERO_SHOT_TEMPLATES: readonly string[] = [
  'a photo of a {}.',
  'a product photo of a {}.',
  'a black and white photo of a {}.',
  'a low resolution photo of a {}.',
  'a photo of the {}.',
  'a close-up photo of a {}.',
  'a cropped photo of a {}.',
  'a {} on a plain background.',
];

/** Fills one template with a name, fixing the article ("a ankle boot" -> "an ankle boot"). */
export function fillTemplate(template: string, name: string): string {
  const article = /^[aeiou]/i.test(name) ? 'an' : 'a';
  return template.replace(/\ba \{\}/g, `${article} {}`).replaceAll('{}', name);
}

/** The prompts whose embeddings, averaged, stand for the class in zero-shot classification. */
export function zeroShotPrompts(label: number, templates: readonly string[] = ZERO_SHOT_TEMPLATES): string[] {
  const { promptName } = fashionClass(label);
  return templates.map((t) => fillTemplate(t, promptName));
}
