/** Routing-weight maths against values computed by hand (python, see the comments). */
import { describe, expect, test } from 'vitest';
import { codeConstants, mixLogits, routingWeights, softmax } from '../../src/ensemble/weights.js';

describe('routing weights p(c|T)', () => {
  test('official-code formula, fewer than 10 classes: a = exp(0.5 - sqrt|L|), kappa = 5', () => {
    // a = exp(0.5 - sqrt 3) = 0.2916938; W0 = e^{5(a-0.5)} + e^{5(a-0.7)} = 0.4827436; W1 = e^{5(a-0.4)} = 0.5818566
    const { kappa, a } = codeConstants(3);
    expect(kappa).toBe(5);
    expect(a).toBeCloseTo(0.2916938, 6);
    const p = routingWeights(
      [
        { expert: 0, distance: 0.5 },
        { expert: 0, distance: 0.7 },
        { expert: 1, distance: 0.4 },
      ],
      { formula: 'code', experts: 2 },
    );
    // softmax([W0/8, W1/8])
    expect(p[0]).toBeCloseTo(0.496902759, 8);
    expect(p[1]).toBeCloseTo(0.503097241, 8);
  });

  test('official-code formula, more than 200 classes: kappa = 5 log10(|L| - 200), a = 0', () => {
    // 250 classes: 200 nearest to expert 0 at 0.6, 50 to expert 1 at 0.3, none to expert 2.
    const task = [...Array.from({ length: 200 }, () => ({ expert: 0, distance: 0.6 })), ...Array.from({ length: 50 }, () => ({ expert: 1, distance: 0.3 }))];
    expect(codeConstants(250)).toEqual({ kappa: 5 * Math.log10(50), a: 0 });
    const p = routingWeights(task, { formula: 'code', experts: 3 });
    expect(p[0]).toBeCloseTo(0.306994498, 8);
    expect(p[1]).toBeCloseTo(0.429535515, 8);
    expect(p[2]).toBeCloseTo(0.263469987, 8);
  });

  test('between 10 and 210 classes the code formula uses kappa = 5 and a = 0', () => {
    expect(codeConstants(10)).toEqual({ kappa: 5, a: 0 });
    expect(codeConstants(210)).toEqual({ kappa: 5, a: 0 });
  });

  test("paper formula: A = exp(-d^2 / 0.2) for each class's nearest center, p proportional to exp(sum A)", () => {
    const p = routingWeights(
      [
        { expert: 0, distance: 0.5 },
        { expert: 1, distance: 0.2 },
        { expert: 1, distance: 0.9 },
      ],
      { formula: 'paper', experts: 3 },
    );
    expect(p[0]).toBeCloseTo(0.287065374, 8);
    expect(p[1]).toBeCloseTo(0.497381981, 8);
    expect(p[2]).toBeCloseTo(0.215552646, 8);
  });

  test('uniform and single-expert modes', () => {
    expect(routingWeights([{ expert: 1, distance: 0 }], { formula: 'uniform', experts: 4 })).toEqual([0.25, 0.25, 0.25, 0.25]);
    expect(routingWeights([], { formula: 'single', experts: 3, single: 2 })).toEqual([0, 0, 1]);
    expect(() => routingWeights([], { formula: 'single', experts: 3, single: 3 })).toThrow(RangeError);
  });

  test('weights sum to one and favour the experts the task lies in', () => {
    const p = routingWeights([{ expert: 2, distance: 0.1 }], { formula: 'code', experts: 4 });
    expect(p.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
    expect(p.indexOf(Math.max(...p))).toBe(2);
  });

  test('softmax is stable for large inputs and mixLogits is the weighted sum', () => {
    expect(softmax([1000, 1000])).toEqual([0.5, 0.5]);
    const mixed = mixLogits([0.25, 0.75], [Float32Array.from([1, 2]), Float32Array.from([3, 4])]);
    expect(Array.from(mixed)).toEqual([2.5, 3.5]);
  });
});
