/**
 * The held-out class names of the reworded zero-shot pass must be words the caption generator never
 * writes, or the pass would measure memorised vocabulary again instead of the embedder's knowledge.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { REWORDED_CLASS_NAMES, rewordedName } from '../../examples/fashion-mnist/reworded-classes.js';
import { createRng } from '../../src/cluster/rng.js';
import { captionFor, pluralOf } from '../../examples/fashion-mnist/captions.js';
import { FASHION_FAMILIES, FASHION_MNIST_CLASSES } from '../../examples/fashion-mnist/classes.js';

const words = (text: string): string[] => text.toLowerCase().split(/[^a-z0-9]+/).filter(Boolean);

/** A word and the forms the generator could turn it into or derive it from (plural, singular). */
const forms = (word: string): string[] => [word, pluralOf(word), word.replace(/e?s$/, '')];

/** Whole words of the class and family vocabulary: names, prompt names, synonyms, hypernyms. */
const classWords = new Set(
  [
    ...FASHION_MNIST_CLASSES.flatMap((c) => [c.name, c.promptName, ...c.synonyms]),
    ...Object.values(FASHION_FAMILIES).flatMap((f) => f.hypernyms),
  ].flatMap(words),
);

/** Every word the generator actually writes, from many captions of every class and kind. */
function generatedWords(): Set<string> {
  const rng = createRng(2024);
  const seen = new Set<string>();
  for (let i = 0; i < 100_000; i++) for (const w of words(captionFor({ label: i % 10, rng }).caption)) seen.add(w);
  return seen;
}

/** Every word in the generator's source: its word lists, including entries too rare to be sampled. */
const sourceWords = new Set(['examples/fashion-mnist/captions.ts', 'examples/fashion-mnist/classes.ts'].flatMap((path) => words(readFileSync(path, 'utf8'))));

describe('reworded class names', () => {
  test('one per class, none canonical, all distinct', () => {
    expect(REWORDED_CLASS_NAMES).toHaveLength(FASHION_MNIST_CLASSES.length);
    expect(new Set(REWORDED_CLASS_NAMES).size).toBe(REWORDED_CLASS_NAMES.length);
    FASHION_MNIST_CLASSES.forEach((c) => expect(rewordedName(c.label)).not.toBe(c.promptName));
    expect(() => rewordedName(10)).toThrow(RangeError);
  });

  test('no word of a reworded name is in the caption generator vocabulary, in any form', () => {
    const generated = generatedWords();
    const clashes = REWORDED_CLASS_NAMES.flatMap(words).filter((w) => forms(w).some((f) => classWords.has(f) || generated.has(f) || sourceWords.has(f)));
    expect(clashes).toEqual([]);
  });

  test('no class or family word hides inside a reworded name (compounds such as "raincoat")', () => {
    const long = [...classWords].filter((w) => w.length >= 3);
    const hidden = REWORDED_CLASS_NAMES.flatMap((name) => long.filter((w) => name.replace(/[^a-z]/g, '').includes(w)).map((w) => `${name} ⊃ ${w}`));
    expect(hidden).toEqual([]);
  });

  test('the checks would catch a generator word', () => {
    // Guards the test itself: the first words a person reaches for ("tee", "jumper", "slacks") are all synonyms there.
    for (const w of ['tee', 'jumper', 'slacks', 'jerseys']) expect(forms(w).some((f) => classWords.has(f) || sourceWords.has(f))).toBe(true);
    expect([...classWords].some((w) => w.length >= 3 && 'raincoat'.includes(w))).toBe(true);
  });
});
