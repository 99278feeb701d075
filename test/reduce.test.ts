import { beforeAll, describe, expect, it } from 'vitest';

import { backward } from '../src/autograd/elementwise.ts';
import { mean, sum } from '../src/autograd/reduce.ts';
import { Tensor } from '../src/autograd/tensor.ts';
import { ShaderganError } from '../src/errors.ts';
import type { Gpu } from '../src/kernels/gpu.ts';
import {
  maxError,
  numericGradient,
  randomArray,
  rangeArray,
  tensorOf,
  testGpu,
  weightedSum,
} from './helpers.ts';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await testGpu();
});

const reference = {
  sum: (values: ArrayLike<number>): number => {
    let total = 0;
    for (let index = 0; index < values.length; index += 1) total += values[index];
    return total;
  },
  mean: (values: ArrayLike<number>): number => reference.sum(values) / values.length,
};

const ops = { sum, mean };

// Sizes around the workgroup (64), the minimum partial length (32) and the partial cap (1024
// partials of 32), plus a large prime that makes every partial loop run a different length.
const sizes = [1, 2, 31, 63, 64, 65, 1000, 32 * 1024 + 1, 100_003];

/** Rounding of float32 sums grows with sum(|x|), not with the (possibly cancelling) result. */
function tolerance(values: ArrayLike<number>, factor: number): number {
  let absoluteSum = 0;
  for (let index = 0; index < values.length; index += 1) absoluteSum += Math.abs(values[index]);
  return 1e-6 * absoluteSum * factor + 1e-7;
}

describe.each(['sum', 'mean'] as const)('%s', (op) => {
  it.each(sizes)('matches the float64 reference for %i random values', async (size) => {
    const values = randomArray(size, size);
    const input = tensorOf(gpu, values, [size]);
    const output = ops[op](input);
    expect(output.shape).toEqual([1]);

    const expected = reference[op](values);
    const factor = op === 'mean' ? 1 / size : 1;
    expect(Math.abs((await output.item()) - expected)).toBeLessThan(tolerance(values, factor));
    input.dispose();
    output.dispose();
  });

  it('reduces a multi-dimensional tensor of readable values', async () => {
    const values = rangeArray(2 * 3 * 5, 1, 1); // 1 .. 30: sum 465, mean 15.5
    const input = tensorOf(gpu, values, [2, 3, 5]);
    // The mean multiplies by float32(1 / 30), which is not exact.
    expect(await ops[op](input).item()).toBeCloseTo(op === 'sum' ? 465 : 15.5, 5);
  });

  it.each([1, 65, 300])('has the gradient of finite differences for %i values', async (size) => {
    const values = randomArray(size, 7 + size);
    const input = tensorOf(gpu, values, [size], true);
    const output = ops[op](input);
    const upstream = 0.75;

    const [gradInput] = output.creator!.backward(tensorOf(gpu, [upstream], [1]));
    const expected = numericGradient((x) => weightedSum([reference[op](x)], [upstream]), values);
    expect(maxError(await gradInput!.toArray(), expected)).toBeLessThan(1e-6);
  });

  it('broadcasts the gradient over 100003 values', async () => {
    const size = 100_003;
    const input = tensorOf(gpu, randomArray(size, 3), [size], true);
    const [gradInput] = ops[op](input).creator!.backward(tensorOf(gpu, [2], [1]));
    const expected = op === 'sum' ? 2 : 2 / size;
    const gradient = await gradInput!.toArray();
    expect(gradient.every((value) => Math.abs(value - expected) <= 1e-7 * expected)).toBe(true);
  });
});

describe('reductions in a graph', () => {
  it('back-propagate into .grad through backward()', async () => {
    const input = tensorOf(gpu, [1, 2, 3, 4], [2, 2], true);
    backward(mean(input));
    expect([...(await input.grad!.toArray())]).toEqual([0.25, 0.25, 0.25, 0.25]);
  });

  it('sum an empty tensor to 0 and refuse its mean', async () => {
    const empty = Tensor.empty(gpu, [0]);
    expect(await sum(empty).item()).toBe(0);
    expect(() => mean(empty)).toThrow(ShaderganError);
  });

  it('give the new result when dispatched again on new data of the same shape', async () => {
    const input = tensorOf(gpu, [1, 2, 3], [3]);
    expect(await sum(input).item()).toBe(6);
    input.write(Float32Array.of(10, 20, 30));
    expect(await sum(input).item()).toBe(60);
  });
});
