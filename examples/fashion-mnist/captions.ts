/**
 * Web-crawl-like captions for Fashion-MNIST images: alt texts, shop titles, file names, hashtags, SEO
 * keyword lists. Deterministic for a given Rng state. Each caption is one of three kinds:
 * - clean: names the image's class (a synonym) or at least its family (a hypernym), wrapped in attribute
 *   words (tones that make sense in greyscale, patterns, materials, style, fit, season) and noise;
 * - wrong: a clean caption generated for another class, chosen uniformly (crawled alt texts that belong
 *   to a neighbouring image on the page);
 * - uninformative: no class information at all ("IMG_4411.jpg", "click here", "product 4411").
 * The kind and the label the caption was written for come back with the text, so the evaluation can
 * measure how noisy the stream is; training never sees them.
 *
 * Noise words are chosen so that no class word or hypernym appears in them as a whole word (no "add to
 * bag", no "top seller"): otherwise uninformative captions would carry labels. A unit test checks it.
 */
import { z } from 'zod';
import type { Rng } from '../../src/cluster/rng.js';
import { ConfigError } from '../../src/errors.js';
import { FASHION_FAMILIES, FASHION_MNIST_CLASSES, fashionClass, type FamilyId, type FashionClass } from './classes.js';

export const CaptionOptionsSchema = z
  .object({
    /** Share of captions written for another class. */
    wrongShare: z.number().min(0).max(1).default(0.1),
    /** Share of captions with no class information. */
    uninformativeShare: z.number().min(0).max(1).default(0.05),
  })
  .strict()
  .refine((o) => o.wrongShare + o.uninformativeShare <= 1, { message: 'wrongShare + uninformativeShare must be at most 1' });

export type CaptionOptions = z.infer<typeof CaptionOptionsSchema>;
export type CaptionOptionsInput = z.input<typeof CaptionOptionsSchema>;

export function resolveCaptionOptions(input: CaptionOptionsInput = {}): CaptionOptions {
  const parsed = CaptionOptionsSchema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue && issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
    throw new ConfigError(`caption options: ${where}${issue?.message ?? 'invalid'}`);
  }
  return parsed.data;
}

export type CaptionKind = 'clean' | 'wrong' | 'uninformative';

export interface GeneratedCaption {
  caption: string;
  kind: CaptionKind;
  /** The class the text was written for: the image's label when clean, another when wrong, null when uninformative. */
  captionLabel: number | null;
}

export interface CaptionRequest {
  /** The image's class, 0..9. */
  label: number;
  rng: Rng;
  /** Defaults 0.1 wrong, 0.05 uninformative. Parsed on every call (microseconds); ConfigError when invalid. */
  options?: CaptionOptionsInput;
}

export function captionFor({ label, rng, options }: CaptionRequest): GeneratedCaption {
  fashionClass(label); // range check before any rng draw
  const { wrongShare, uninformativeShare } = resolveCaptionOptions(options);
  const u = rng.next();
  if (u < uninformativeShare) return { caption: uninformativeCaption(rng), kind: 'uninformative', captionLabel: null };
  if (u < uninformativeShare + wrongShare) {
    // Uniform over the other nine classes: shift past the image's own label.
    const drawn = rng.nextInt(FASHION_MNIST_CLASSES.length - 1);
    const other = drawn >= label ? drawn + 1 : drawn;
    return { caption: cleanCaption({ label: other, rng }), kind: 'wrong', captionLabel: other };
  }
  return { caption: cleanCaption({ label, rng }), kind: 'clean', captionLabel: label };
}

// ---------------------------------------------------------------------------------------------------
// Vocabulary.

interface ClassWords {
  materials: readonly string[];
  details: readonly string[];
}

const CLASS_WORDS: Readonly<Record<number, ClassWords>> = {
  0: {
    materials: ['cotton', 'organic cotton', 'jersey', 'linen', 'modal', 'bamboo', 'cotton blend'],
    details: ['crew neck', 'v-neck', 'short sleeves', 'sleeveless', 'logo print', 'round neck', 'rolled sleeves', 'raw hem'],
  },
  1: {
    materials: ['denim', 'cotton twill', 'wool', 'linen', 'corduroy', 'stretch cotton', 'fleece'],
    details: ['high waist', 'straight leg', 'wide leg', 'tapered leg', 'drawstring waist', 'pleated front', 'cuffed hem', 'five pockets'],
  },
  2: {
    materials: ['wool', 'merino', 'cashmere', 'fleece', 'cotton', 'chunky knit', 'mohair'],
    details: ['ribbed cuffs', 'cable knit', 'roll neck', 'long sleeves', 'dropped shoulders', 'hooded', 'kangaroo pocket', 'brushed inside'],
  },
  3: {
    materials: ['silk', 'satin', 'chiffon', 'cotton', 'jersey', 'lace', 'linen', 'velvet'],
    details: ['sleeveless', 'a-line', 'wrap style', 'belted waist', 'spaghetti straps', 'knee length', 'floor length', 'puff sleeves'],
  },
  4: {
    materials: ['wool', 'down', 'leather', 'faux fur', 'nylon', 'tweed', 'gabardine', 'wool blend'],
    details: ['double-breasted', 'hooded', 'belted', 'zip-up', 'padded', 'quilted', 'notch lapel', 'storm flap'],
  },
  5: {
    materials: ['leather', 'suede', 'rubber', 'cork', 'faux leather', 'woven raffia'],
    details: ['open toe', 'ankle strap', 'buckle fastening', 'flat sole', 'platform sole', 'cork footbed', 'toe post', 'cross straps'],
  },
  6: {
    materials: ['cotton', 'linen', 'flannel', 'poplin', 'denim', 'silk', 'chambray', 'oxford cloth'],
    details: ['button-down collar', 'long sleeves', 'chest pocket', 'spread collar', 'roll-up sleeves', 'curved hem', 'mother-of-pearl buttons'],
  },
  7: {
    materials: ['canvas', 'leather', 'mesh', 'suede', 'knit', 'synthetic', 'recycled materials'],
    details: ['lace-up', 'rubber sole', 'cushioned', 'low profile', 'breathable upper', 'retro runner', 'padded collar', 'slip-on'],
  },
  8: {
    materials: ['leather', 'faux leather', 'canvas', 'nylon', 'straw', 'suede', 'vegan leather', 'quilted leather'],
    details: ['zip closure', 'adjustable strap', 'carry handles', 'gold-tone hardware', 'detachable strap', 'multiple pockets', 'magnetic snap', 'chain strap'],
  },
  9: {
    materials: ['leather', 'suede', 'faux suede', 'patent leather', 'nubuck', 'shearling-lined'],
    details: ['side zip', 'block heel', 'pull tab', 'lug sole', 'pointed toe', 'elastic side panels', 'stacked heel', 'almond toe'],
  },
};

/** Tones a greyscale photo can show, and patterns. */
const TONES = [
  'black', 'white', 'grey', 'gray', 'charcoal', 'off-white', 'cream', 'ivory', 'dark', 'light', 'pale', 'jet black',
  'heather grey', 'dark grey', 'light grey', 'silver', 'graphite', 'slate', 'stone', 'bone', 'washed black', 'monochrome',
  'black and white',
];
const PATTERNS = ['striped', 'plain', 'printed', 'patterned', 'checked', 'plaid', 'polka dot', 'houndstooth', 'two-tone', 'colour-block', 'floral', 'textured'];
const STYLES = [
  'casual', 'classic', 'vintage', 'retro', 'minimalist', 'basic', 'essential', 'premium', 'everyday', 'streetwear', 'sporty',
  'elegant', 'chic', 'boho', 'preppy', 'office', 'party', 'festival', 'designer', 'luxury', 'handmade', 'timeless',
];
const FITS: Readonly<Record<FamilyId, readonly string[]>> = {
  tops: ['slim fit', 'regular fit', 'relaxed fit', 'loose', 'fitted', 'tailored', 'oversized', 'cropped', 'boxy'],
  dresses: ['fitted', 'loose', 'flowy', 'bodycon', 'relaxed fit', 'tailored'],
  bottoms: ['slim fit', 'regular fit', 'relaxed fit', 'skinny', 'straight', 'loose', 'tailored', 'baggy'],
  footwear: ['wide fit', 'narrow fit', 'true to size', 'lightweight', 'chunky'],
  bags: ['mini', 'small', 'medium', 'large', 'oversized', 'compact', 'roomy'],
};
const SEASONS = ['summer', 'winter', 'autumn', 'fall', 'spring', 'all-season', 'holiday', 'back-to-school', 'resort'];
const WHO = ['men', 'women', 'kids', 'girls', 'boys', 'him', 'her', 'teens', 'ladies', 'adults', 'everyone'];
const WHO_FEMALE = ['women', 'girls', 'her', 'ladies', 'teens'];
const POSSESSIVE = ["men's", "women's", "kids'", "girls'", "boys'", "ladies'", 'unisex', 'mens', 'womens'];
const POSSESSIVE_FEMALE = ["women's", "girls'", "ladies'", 'womens'];
const PERSON = ['woman', 'man', 'girl', 'boy', 'model', 'teenager', 'young woman', 'young man', 'person'];

export const SHOP_NOISE: readonly string[] = [
  'free shipping', 'best price', 'sale', 'limited offer', 'new arrival', 'in stock', 'ships in 24h', 'official store',
  'buy now', 'shop now', 'order online', 'hot deal', 'clearance', 'exclusive', 'bestseller', 'trending now', 'free returns',
  'high quality', 'wholesale', 'cheap', 'authentic', 'outlet', 'gift idea', '2 for 1', 'last pieces', 'express delivery',
  'pay later', 'members save more', 'as seen on instagram', 'limited edition', 'fast dispatch', 'click & collect',
  'low prices every day', 'lowest price guaranteed', 'satisfaction guaranteed', 'secure checkout', 'worldwide delivery',
];
export const BRANDS: readonly string[] = [
  'Nordvik', 'Halden', 'Mira & Co', 'URBNLINE', 'Kessler', 'Lumo', 'Avenue 9', 'Oakridge', 'Tessa Lane', 'Brightwell',
  'Saltmarsh', 'Vero Nord', 'Kaito', 'Marlow & Finch', 'Elmstead', 'Polaris Studio', 'Juniper Row', 'Quill', 'Hartmann',
  'Sable Street', 'Northbound', 'Casa Lira', 'Odette', 'Fjellro', 'Kinto Lab',
];
export const SHOPS: readonly string[] = ['StyleHub', 'DealZone', 'MegaMart', 'ShopRight', 'TrendyDeals', 'Closet Corner', 'Wardrobe Direct', 'Looksy', 'Moda Market', 'Cartly'];
/** Broken or placeholder alt texts found in real crawls. */
export const PLACEHOLDERS: readonly string[] = [
  'image', 'photo', 'picture', 'img', 'click here', 'view larger image', 'zoom', 'thumbnail', 'sold out', 'new arrival',
  'see details', 'no description available', 'default alt text', 'placeholder', 'main image', 'front view', 'back view',
  'alt', 'null', 'undefined', '[object Object]', 'untitled', 'image not found', 'loading...', 'product image', 'gallery',
];
const EMOJI = ['😍', '🔥', '✨', '💯', '🛍️', '❤️', '👌'];
const DECADES = ['70s', '80s', '90s', 'y2k', '2000s'];

// ---------------------------------------------------------------------------------------------------
// Helpers.

function pick<T>(rng: Rng, items: readonly T[]): T {
  return items[rng.nextInt(items.length)]!;
}

function chance(rng: Rng, p: number): boolean {
  return rng.next() < p;
}

function between(rng: Rng, lo: number, hi: number): number {
  return lo + rng.nextInt(hi - lo + 1);
}

/** Plural of a caption noun; words that only exist in the plural (jeans, kicks) end in a single s. */
export function pluralOf(noun: string): string {
  if (/ss$|x$|ch$|sh$/.test(noun)) return `${noun}es`;
  if (/s$/.test(noun)) return noun;
  return `${noun}s`;
}

function isPluralOnly(noun: string): boolean {
  return pluralOf(noun) === noun;
}

/** "a"/"an", none before a plural, "a pair of" before plural-only nouns ("a pair of jeans"). */
function withArticle(phrase: string, { noun, plural }: { noun: string; plural: boolean }): string {
  if (isPluralOnly(noun)) return `a pair of ${phrase}`;
  if (plural) return phrase;
  return `${/^[aeiou]/i.test(phrase) ? 'an' : 'a'} ${phrase}`;
}

function titleCase(text: string): string {
  return text.replace(/(^|[\s\-/(])([a-z])/g, (_, sep: string, ch: string) => sep + ch.toUpperCase());
}

function slug(text: string): string {
  return text
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-|-$/g, '');
}

function tag(text: string): string {
  return text.toLowerCase().replace(/[^a-z0-9]+/g, '');
}

function price(rng: Rng): string {
  const whole = between(rng, 5, 299);
  switch (rng.nextInt(6)) {
    case 0:
      return `$${whole}.99`;
    case 1:
      return `€${whole},95`;
    case 2:
      return `£${whole}`;
    case 3:
      return `USD ${whole}.00`;
    case 4:
      return `only ${whole}.99`;
    default:
      return `${whole} EUR`;
  }
}

function size(rng: Rng, family: FamilyId): string {
  switch (family) {
    case 'footwear':
      return pick(rng, [`EU ${between(rng, 35, 46)}`, `US ${between(rng, 5, 13)}`, `UK ${between(rng, 3, 12)}`, `size ${between(rng, 5, 12)}`]);
    case 'bags':
      return pick(rng, ['one size', `${between(rng, 18, 45)} x ${between(rng, 12, 35)} cm`, `${between(rng, 8, 30)}L`]);
    case 'bottoms':
      return chance(rng, 0.4) ? `W${between(rng, 26, 40)} L${pick(rng, [30, 32, 34, 36])}` : garmentSize(rng);
    default:
      return garmentSize(rng);
  }
}

function garmentSize(rng: Rng): string {
  return pick(rng, ['XS', 'S', 'M', 'L', 'XL', 'XXL', `size ${pick(rng, ['S', 'M', 'L', 'XL'])}`, `UK ${between(rng, 4, 20)}`, `EU ${between(rng, 32, 54)}`, 'one size']);
}

function fileName(rng: Rng): string {
  const n = between(rng, 1, 99_999);
  switch (rng.nextInt(7)) {
    case 0:
      return `IMG_${String(n % 10_000).padStart(4, '0')}.jpg`;
    case 1:
      return `DSC${String(n).padStart(5, '0')}.JPG`;
    case 2:
      return `product_${n}_main.png`;
    case 3:
      return `photo-${n}.webp`;
    case 4:
      return `image (${between(rng, 1, 12)}).jpg`;
    case 5:
      return `P${n}_front.jpg`;
    default:
      return `thumb_${n}.jpg`;
  }
}

/** A file named after what it shows, as shops' CMSs do: black_leather_ankle_boot_0231.jpg. */
function descriptiveFileName(rng: Rng, phrase: string): string {
  const stem = slug(phrase).replace(/-/g, pick(rng, ['_', '-']));
  return `${stem}_${String(between(rng, 1, 9999)).padStart(4, '0')}.${pick(rng, ['jpg', 'jpeg', 'png', 'webp'])}`;
}

function sku(rng: Rng): string {
  return `${between(rng, 10_000, 99_999)}-${String(between(rng, 1, 99)).padStart(2, '0')}`;
}

function brand(rng: Rng): string {
  return pick(rng, BRANDS);
}

function shopNoise(rng: Rng): string {
  return chance(rng, 0.3) ? pick(rng, SHOPS) : pick(rng, SHOP_NOISE);
}

/** Mixed casing as crawled: mostly as written, some Title Case, a few shouted or flattened. */
function casing(rng: Rng, text: string): string {
  const u = rng.next();
  if (u < 0.7) return text;
  if (u < 0.86) return titleCase(text);
  if (u < 0.93) return text.toUpperCase();
  return text.toLowerCase();
}

// ---------------------------------------------------------------------------------------------------
// Clean captions.

interface Slots {
  cls: FashionClass;
  family: FamilyId;
  noun: string;
  /** The noun, plural some of the time. */
  nounN: string;
  plural: boolean;
  /** Attribute words + nounN, e.g. "oversized charcoal wool coat". */
  phrase: string;
  tone: string;
  material: string;
  detail: string;
  style: string;
  season: string;
  /** Most specific hypernym (tops, footwear...) or, sometimes, the department word. */
  hyper: string;
  who: string;
  possessive: string;
}

/** The canonical noun (the zero-shot prompt name) a third of the time, any synonym otherwise. */
function pickNoun(rng: Rng, cls: FashionClass): string {
  return chance(rng, 0.3) ? cls.promptName : pick(rng, cls.synonyms);
}

function pickOtherNoun(rng: Rng, cls: FashionClass, not: string): string {
  const others = cls.synonyms.filter((s) => s !== not);
  return others.length > 0 ? pick(rng, others) : not;
}

function slotsFor(rng: Rng, cls: FashionClass): Slots {
  const family = cls.family;
  const words = CLASS_WORDS[cls.label]!;
  const noun = pickNoun(rng, cls);
  const plural = chance(rng, 0.25);
  const nounN = plural ? pluralOf(noun) : noun;
  const tone = pick(rng, TONES);
  const material = pick(rng, words.materials);
  const style = pick(rng, STYLES);
  // Attribute order as shops write it: style/fit, tone, pattern, material.
  const attrs: string[] = [];
  if (chance(rng, 0.3)) attrs.push(chance(rng, 0.5) ? style : pick(rng, FITS[family]));
  if (chance(rng, 0.6)) attrs.push(tone);
  if (chance(rng, 0.15)) attrs.push(pick(rng, PATTERNS));
  if (chance(rng, 0.4)) attrs.push(material);
  const hypernyms = FASHION_FAMILIES[family].hypernyms;
  const female = family === 'dresses';
  return {
    cls,
    family,
    noun,
    nounN,
    plural,
    phrase: [...attrs, nounN].join(' '),
    tone,
    material,
    detail: pick(rng, words.details),
    style,
    season: pick(rng, SEASONS),
    hyper: chance(rng, 0.7) ? hypernyms[0]! : pick(rng, hypernyms),
    who: pick(rng, female ? WHO_FEMALE : WHO),
    possessive: pick(rng, female ? POSSESSIVE_FEMALE : POSSESSIVE),
  };
}

type Template = (s: Slots, rng: Rng) => string;

/** Each names the class (a synonym) or its family (a hypernym); the rest is attributes and noise. */
const CLEAN_TEMPLATES: readonly Template[] = [
  (s) => s.phrase,
  (s) => `${s.phrase} for ${s.who}`,
  (s) => `${s.possessive} ${s.phrase}`,
  (s, r) => `buy ${pluralOf(s.noun)} online - ${shopNoise(r)}`,
  (s, r) => `${brand(r)} ${s.phrase} | ${pick(r, SHOPS)}`,
  (s, r) => `${fileName(r)} ${s.noun}`,
  (s, r) => descriptiveFileName(r, s.phrase),
  (s) => `new season ${s.hyper}: ${s.phrase}`,
  (s) => `Home > ${titleCase(s.hyper)} > ${titleCase(pluralOf(s.noun))} > ${s.phrase}`,
  (s, r) => `${s.phrase} ${size(r, s.family)} ${price(r)}`,
  (s, r) => `${s.phrase}, ${size(r, s.family)}, ${price(r)} - ${shopNoise(r)}`,
  (s, r) => `${brand(r)} ${s.noun} in ${s.tone}`,
  (s, r) => `#${tag(s.noun)} #${tag(FASHION_FAMILIES[s.family].hypernyms[0]!)} #${tag(s.style)} #ootd${chance(r, 0.4) ? ` ${pick(r, EMOJI)}` : ''}`,
  (s, r) => `my new ${s.noun}${pick(r, ['!!', '!', ' :)', ' <3', ''])} ${pick(r, EMOJI)}`,
  (s, r) => `new in: ${s.tone} ${s.hyper} ${size(r, s.family)}`,
  (s, r) => `${s.style} ${s.hyper} ${r.nextInt(2) === 0 ? 'sale' : 'collection'} ${between(r, 2015, 2025)}`,
  (s, r) => {
    const second = pickOtherNoun(r, s.cls, s.noun);
    return `${s.noun}, ${second}, ${s.phrase}, ${s.who}, ${s.style}, ${shopNoise(r)}, ${pick(r, SHOP_NOISE)}`;
  },
  (s, r) => `Product: ${titleCase(s.noun)} | Colour: ${s.tone} | Material: ${s.material} | Size: ${size(r, s.family)}`,
  (s, r) => `${brand(r)} - ${s.phrase} - SKU ${sku(r)}`,
  (s) => `${breadcrumb(s)} / ${s.noun}`,
  (s, r) => `${s.noun} (${s.who}, ${s.season} ${between(r, 2015, 2025)})`,
  (s, r) => `vintage ${pick(r, DECADES)} ${s.phrase}`,
  (s) => `${withArticle(s.phrase, s)} on a white background`,
  (s) => `photo of ${withArticle(s.phrase, s)}`,
  (s) => `close-up of ${withArticle(s.noun, { noun: s.noun, plural: false })}, ${s.detail}`,
  (s, r) => `${pick(r, PERSON)} ${FASHION_FAMILIES[s.family].verb} ${withArticle(s.phrase, s)}`,
  (s, r) => `${s.noun} sale ${between(r, 1, 7) * 10}% off`,
  (s, r) => `${size(r, s.family)} ${s.phrase} ${price(r)} free shipping`,
  (s, r) => `${slug(`${s.phrase} ${s.who}`)}-${between(r, 100, 99_999)}`,
  (s) => `${s.phrase} - ${s.detail}`,
  (s, r) => `${s.hyper} | ${s.phrase} | ${brand(r)}`,
  (s, r) => `${s.phrase} with ${s.detail}. ${titleCase(shopNoise(r))}!`,
  (s, r) => `lot of ${between(r, 2, 12)} ${pluralOf(s.noun)} ${price(r)}`,
  (s, r) => `${s.phrase} ${s.who} ${size(r, s.family)} ${between(r, 2015, 2025)} new`,
  (s, r) => `[${brand(r)}] ${s.season} ${s.phrase}`,
  (s) => `${s.season} ${s.hyper}: ${s.detail}, ${s.material}`,
  (s, r) => `${s.material} ${s.noun}, ${s.detail}, ${s.tone} - ${price(r)}`,
  (s, r) => `${brand(r).toUpperCase()} ${s.noun.toUpperCase()} ${s.tone.toUpperCase()} ${size(r, s.family)}`,
];

/** "clothing / tops" when the slot holds the family word, the department word alone otherwise. */
function breadcrumb(s: Slots): string {
  const hypernyms = FASHION_FAMILIES[s.family].hypernyms;
  return s.hyper === hypernyms[0] ? `${hypernyms[hypernyms.length - 1]!} / ${s.hyper}` : s.hyper;
}

/** A caption that names `label` (a synonym) or its family (a hypernym), among attribute words and noise. */
export function cleanCaption({ label, rng }: { label: number; rng: Rng }): string {
  const slots = slotsFor(rng, fashionClass(label));
  return casing(rng, pick(rng, CLEAN_TEMPLATES)(slots, rng));
}

// ---------------------------------------------------------------------------------------------------
// Uninformative captions.

const UNINFORMATIVE_TEMPLATES: readonly ((r: Rng) => string)[] = [
  (r) => pick(r, PLACEHOLDERS),
  (r) => fileName(r),
  (r) => `product ${between(r, 100, 99_999)}`,
  (r) => `item #${between(r, 100, 99_999)}`,
  (r) => `untitled-${between(r, 1, 999)}`,
  (r) => `image ${between(r, 1, 500)}`,
  (r) => `picture ${between(r, 1, 8)} of ${between(r, 8, 12)}`,
  (r) => `SKU ${sku(r)}`,
  (r) => brand(r),
  (r) => `${brand(r)} official store`,
  (r) => `${brand(r)} | ${shopNoise(r)}`,
  (r) => shopNoise(r),
  (r) => `${pick(r, SHOP_NOISE)} - ${price(r)}`,
  (r) => price(r),
  (r) => `${pick(r, PLACEHOLDERS)} ${between(r, 1, 99)}`,
  (r) => `${pick(r, SHOPS)} - ${fileName(r)}`,
];

/** No class, family or class-specific attribute: placeholders, file names, shop noise, prices. */
export function uninformativeCaption(rng: Rng): string {
  return casing(rng, pick(rng, UNINFORMATIVE_TEMPLATES)(rng));
}
