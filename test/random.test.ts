import { describe, expect, it } from 'vitest';

import { CheckpointError } from '../src/errors.ts';
import { SeededRandom, shuffledIndices } from '../src/train/random.ts';

function draw(random: SeededRandom, count: number): number[] {
  return Array.from({ length: count }, () => random.nextUint32());
}

describe('SeededRandom', () => {
  it('gives the same sequence for the same seed', () => {
    expect(draw(new SeededRandom(42), 100)).toEqual(draw(new SeededRandom(42), 100));
  });

  it('gives unrelated sequences for neighbouring seeds', () => {
    const fromOne = draw(new SeededRandom(1), 100);
    const fromTwo = draw(new SeededRandom(2), 100);
    const equalPositions = fromOne.filter((value, index) => value === fromTwo[index]).length;
    expect(equalPositions).toBe(0);
  });

  it('uses the high bits of large and negative seeds', () => {
    const low = draw(new SeededRandom(5), 10);
    expect(draw(new SeededRandom(5 + 2 ** 32), 10)).not.toEqual(low);
    expect(draw(new SeededRandom(-5), 10)).not.toEqual(low);
    expect(() => new SeededRandom(1.5)).toThrow(RangeError);
  });

  it('produces unsigned 32-bit integers and uniforms in [0, 1)', () => {
    const random = new SeededRandom(7);
    let sum = 0;
    for (let draw = 0; draw < 10_000; draw++) {
      const integer = random.nextUint32();
      expect(Number.isInteger(integer) && integer >= 0 && integer < 2 ** 32).toBe(true);
      const uniform = random.next();
      expect(uniform >= 0 && uniform < 1).toBe(true);
      sum += uniform;
    }
    expect(sum / 10_000).toBeCloseTo(0.5, 1);
  });

  it('draws bounded integers that cover the whole range evenly', () => {
    const random = new SeededRandom(3);
    const counts = new Array<number>(6).fill(0);
    for (let draw = 0; draw < 60_000; draw++) counts[random.nextInt(6)]++;
    for (const count of counts) expect(Math.abs(count - 10_000)).toBeLessThan(500);
    expect(() => random.nextInt(0)).toThrow(RangeError);
  });

  it('draws normals with mean about 0 and standard deviation about 1', () => {
    const random = new SeededRandom(2024);
    const count = 100_000;
    let sum = 0;
    let sumOfSquares = 0;
    let nonFinite = 0;
    for (let draw = 0; draw < count; draw++) {
      const value = random.normal();
      if (!Number.isFinite(value)) nonFinite++;
      sum += value;
      sumOfSquares += value * value;
    }
    expect(nonFinite).toBe(0);
    const mean = sum / count;
    const std = Math.sqrt(sumOfSquares / count - mean * mean);
    expect(Math.abs(mean)).toBeLessThan(0.02);
    expect(Math.abs(std - 1)).toBeLessThan(0.02);
  });

  it('continues identically after a state round trip', () => {
    const original = new SeededRandom(99);
    draw(original, 37);
    original.normal();

    const saved = JSON.parse(JSON.stringify(original.getState())) as number[];
    const restored = SeededRandom.fromState(saved);
    expect(draw(restored, 50)).toEqual(draw(original, 50));
    expect(restored.normal()).toBe(original.normal());
  });

  it.each([
    { problem: 'three words', state: [1, 2, 3] },
    { problem: 'all zero', state: [0, 0, 0, 0] },
    { problem: 'a negative word', state: [1, -2, 3, 4] },
    { problem: 'a word beyond 32 bits', state: [1, 2, 3, 2 ** 32] },
  ])('rejects a saved state with $problem', ({ state }) => {
    expect(() => SeededRandom.fromState(state)).toThrow(CheckpointError);
  });
});

describe('shuffledIndices', () => {
  it('depends only on seed and epoch', () => {
    expect(shuffledIndices(1000, 5, 3)).toEqual(shuffledIndices(1000, 5, 3));
  });

  it('gives a different order in a different epoch or with a different seed', () => {
    const reference = Array.from(shuffledIndices(1000, 5, 3));
    expect(Array.from(shuffledIndices(1000, 5, 4))).not.toEqual(reference);
    expect(Array.from(shuffledIndices(1000, 6, 3))).not.toEqual(reference);
  });

  it('is a permutation of 0..count-1', () => {
    const indices = shuffledIndices(60_000, 1, 0);
    const sorted = Array.from(indices).sort((a, b) => a - b);
    expect(sorted).toEqual(Array.from({ length: 60_000 }, (_, index) => index));
    expect(Array.from(indices.subarray(0, 20))).not.toEqual(sorted.slice(0, 20));
  });

  it('handles empty and single-element sets', () => {
    expect(Array.from(shuffledIndices(0, 1, 0))).toEqual([]);
    expect(Array.from(shuffledIndices(1, 1, 0))).toEqual([0]);
  });

  it('puts each element in each position about equally often', () => {
    // 3 elements, 6000 epochs: each (element, position) pair should appear about 2000 times.
    const counts = [
      [0, 0, 0],
      [0, 0, 0],
      [0, 0, 0],
    ];
    for (let epoch = 0; epoch < 6000; epoch++) {
      shuffledIndices(3, 11, epoch).forEach((element, position) => counts[element][position]++);
    }
    for (const count of counts.flat()) expect(Math.abs(count - 2000)).toBeLessThan(200);
  });
});
