import { beforeAll, describe, expect, it } from 'vitest';

import { rand, randn } from '../src/autograd/random.ts';
import { ShaderganError } from '../src/errors.ts';
import type { Gpu } from '../src/kernels/gpu.ts';
import { testGpu } from './helpers.ts';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await testGpu();
});

// ---- Philox4x32-10 in plain TypeScript, checked against the Random123 known answers ----

const MASK = 0xffffffffn;

function philox4x32(counter: readonly number[], key: readonly number[]): number[] {
  let [c0, c1, c2, c3] = counter.map(BigInt);
  let [k0, k1] = key.map(BigInt);
  for (let round = 0; round < 10; round += 1) {
    if (round > 0) {
      k0 = (k0 + 0x9e3779b9n) & MASK;
      k1 = (k1 + 0xbb67ae85n) & MASK;
    }
    const product0 = 0xd2511f53n * c0;
    const product1 = 0xcd9e8d57n * c2;
    [c0, c1, c2, c3] = [
      (product1 >> 32n) ^ c1 ^ k0,
      product1 & MASK,
      (product0 >> 32n) ^ c3 ^ k1,
      product0 & MASK,
    ];
  }
  return [c0, c1, c2, c3].map(Number);
}

/** Element `index` of rand(seed, offset) as the shader computes it. */
function referenceUniform(seed: number, offset: number, index: number): number {
  const counter = offset + index;
  const words = philox4x32(
    [counter % 2 ** 32, Math.floor(counter / 2 ** 32), 0, 0],
    [seed % 2 ** 32, Math.floor(seed / 2 ** 32)],
  );
  return Math.floor(words[0] / 256) * 2 ** -24;
}

describe('the Philox4x32-10 reference', () => {
  it('reproduces the Random123 known-answer vectors', () => {
    const hex = (words: number[]): string[] => words.map((word) => word.toString(16));
    expect(hex(philox4x32([0, 0, 0, 0], [0, 0]))).toEqual([
      '6627e8d5',
      'e169c58d',
      'bc57ac4c',
      '9b00dbd8',
    ]);
    const ones = 0xffffffff;
    expect(hex(philox4x32([ones, ones, ones, ones], [ones, ones]))).toEqual([
      '408f276d',
      '41c83b0e',
      'a20bc7c6',
      '6d5451fd',
    ]);
  });
});

// ---- the GPU generator ----

interface Moments {
  mean: number;
  variance: number;
}

function moments(values: Float32Array): Moments {
  let total = 0;
  for (const value of values) total += value;
  const mean = total / values.length;
  let squares = 0;
  for (const value of values) squares += (value - mean) ** 2;
  return { mean, variance: squares / values.length };
}

describe('rand', () => {
  it('matches the Philox reference bit for bit, for sizes off the workgroup size', async () => {
    for (const [size, seed, offset] of [
      [1, 0, 0],
      [65, 42, 0],
      [300, 7, 123_456],
      // A counter that crosses 2^32 inside the draw, and a seed above 2^32.
      [100, 2 ** 32 + 5, 2 ** 32 - 50],
    ]) {
      const values = await rand(gpu, [size], seed, offset).toArray();
      const expected = Array.from({ length: size }, (_, index) =>
        referenceUniform(seed, offset, index),
      );
      expect(Array.from(values)).toEqual(expected);
    }
  });

  it('fills [0, 1) with mean 1/2 and variance 1/12 over 1e5 values', async () => {
    const values = await rand(gpu, [100, 1000], 3).toArray();
    expect(values.every((value) => value >= 0 && value < 1)).toBe(true);
    const { mean, variance } = moments(values);
    expect(Math.abs(mean - 0.5)).toBeLessThan(0.01);
    expect(Math.abs(variance - 1 / 12)).toBeLessThan(0.005);
  });
});

describe('randn', () => {
  it('has mean 0 and standard deviation 1 over 1e5 values, all finite', async () => {
    const values = await randn(gpu, [100_003], 1234).toArray();
    expect(values.every(Number.isFinite)).toBe(true);
    const { mean, variance } = moments(values);
    expect(Math.abs(mean)).toBeLessThan(0.02);
    expect(Math.abs(Math.sqrt(variance) - 1)).toBeLessThan(0.02);
    // Tails: about 4.6% of a normal lies beyond 2 standard deviations.
    const beyondTwo = values.filter((value) => Math.abs(value) > 2).length / values.length;
    expect(Math.abs(beyondTwo - 0.0455)).toBeLessThan(0.005);
  });

  it('is deterministic for a seed and offset, and differs across seeds and offsets', async () => {
    const draw = (seed: number, offset = 0): Promise<Float32Array> =>
      randn(gpu, [4, 3, 5], seed, offset).toArray();
    const first = await draw(9);
    expect(await draw(9)).toEqual(first);

    const equalCount = (other: Float32Array): number =>
      other.filter((value, index) => value === first[index]).length;
    expect(equalCount(await draw(10))).toBe(0);
    expect(equalCount(await draw(9, 1000))).toBe(0);
  });

  it('continues a draw when the offset counts the values drawn before', async () => {
    const whole = await randn(gpu, [10], 77, 0).toArray();
    const tail = await randn(gpu, [7], 77, 3).toArray();
    expect(Array.from(tail)).toEqual(Array.from(whole.subarray(3)));
  });

  it('rejects seeds and offsets that are not non-negative integers', () => {
    expect(() => randn(gpu, [2], -1)).toThrow(ShaderganError);
    expect(() => randn(gpu, [2], 1.5)).toThrow(/seed/);
    expect(() => rand(gpu, [2], 1, Number.NaN)).toThrow(/offset/);
  });
});
