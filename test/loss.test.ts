import { beforeAll, describe, expect, it } from 'vitest';

import { backward } from '../src/autograd/elementwise.ts';
import { bceWithLogits } from '../src/autograd/loss.ts';
import { noGrad } from '../src/autograd/tape.ts';
import { ShaderganError } from '../src/errors.ts';
import type { Gpu } from '../src/kernels/gpu.ts';
import { maxError, numericGradient, randomArray, tensorOf, testGpu } from './helpers.ts';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await testGpu();
});

/** PyTorch's BCEWithLogitsLoss (mean) in float64. */
function referenceLoss(logits: ArrayLike<number>, target: number | ArrayLike<number>): number {
  let total = 0;
  for (let index = 0; index < logits.length; index += 1) {
    const x = logits[index];
    const t = typeof target === 'number' ? target : target[index];
    total += Math.max(x, 0) - x * t + Math.log1p(Math.exp(-Math.abs(x)));
  }
  return total / logits.length;
}

interface Case {
  name: string;
  shape: number[];
  /** A number, or 'tensor' for random targets in [0, 1]. */
  target: number | 'tensor';
  /** Logits drawn from [-spread, spread). */
  spread: number;
}

const cases: Case[] = [
  { name: 'one logit, real label', shape: [1], target: 1, spread: 3 },
  { name: 'batch 1 of [1,1,1]', shape: [1, 1, 1, 1], target: 0, spread: 3 },
  { name: '65 logits, fake label', shape: [65], target: 0, spread: 4 },
  { name: '65 logits, smoothed label 0.9', shape: [65, 1], target: 0.9, spread: 4 },
  { name: '130 logits, tensor target', shape: [13, 10], target: 'tensor', spread: 6 },
  { name: '1000 logits, wide spread', shape: [1000], target: 'tensor', spread: 30 },
  { name: '100003 logits, real label', shape: [100_003], target: 1, spread: 8 },
];

describe.each(cases)('bceWithLogits: $name', ({ shape, target, spread }) => {
  const count = shape.reduce((product, dimension) => product * dimension, 1);
  const logits = randomArray(count, count + 11, -spread, spread);
  const targets = target === 'tensor' ? randomArray(count, count + 12, 0, 1) : target;
  // Compare with the float32 values the GPU actually sees.
  const logits32 = Float64Array.from(Float32Array.from(logits));
  const targets32 =
    typeof targets === 'number' ? targets : Float64Array.from(Float32Array.from(targets));

  const targetFor = (): number | ReturnType<typeof tensorOf> =>
    typeof targets === 'number' ? targets : tensorOf(gpu, targets, shape, true);

  it('matches the float64 loss', async () => {
    const loss = noGrad(() => bceWithLogits(tensorOf(gpu, logits, shape), targetFor()));
    expect(loss.shape).toEqual([1]);
    const expected = referenceLoss(logits32, targets32);
    expect(Math.abs((await loss.item()) - expected)).toBeLessThan(2e-6 * Math.max(1, expected));
  });

  it('has the gradients of finite differences', async () => {
    if (count > 1000) return; // finite differences cost count^2
    const logitsTensor = tensorOf(gpu, logits, shape, true);
    const targetTensor = targetFor();
    const loss = bceWithLogits(logitsTensor, targetTensor);
    const upstream = 1.5;
    const gradients = loss.creator!.backward(tensorOf(gpu, [upstream], [1]));
    expect(gradients).toHaveLength(typeof targets === 'number' ? 1 : 2);
    const [gradLogits, gradTargets] = gradients;

    const expectedLogits = numericGradient((x) => upstream * referenceLoss(x, targets32), logits32);
    // The gradients are of order 1 / count: compare relative to that scale.
    const gpuLogits = Array.from(await gradLogits!.toArray(), (value) => value * count);
    expect(
      maxError(
        gpuLogits,
        expectedLogits.map((value) => value * count),
      ),
    ).toBeLessThan(1e-4);

    if (typeof targets32 === 'number') return;
    const expectedTargets = numericGradient(
      (t) => upstream * referenceLoss(logits32, t),
      targets32,
    );
    const gpuTargets = Array.from(await gradTargets!.toArray(), (value) => value * count);
    expect(
      maxError(
        gpuTargets,
        expectedTargets.map((value) => value * count),
      ),
    ).toBeLessThan(1e-4);
  });
});

describe('bceWithLogits at saturated logits', () => {
  const logits = [100, -100, 1e4, -1e4, 88.8, -88.8, 0];

  it.each([0, 1, 0.9])('gives finite loss and gradient for target %s', async (target) => {
    const logitsTensor = tensorOf(gpu, logits, [logits.length], true);
    const loss = bceWithLogits(logitsTensor, target);
    const [gradLogits] = loss.creator!.backward(tensorOf(gpu, [1], [1]));

    const value = await loss.item();
    expect(Number.isFinite(value)).toBe(true);
    expect(value).toBeCloseTo(referenceLoss(logits, target), 1);
    const gradient = await gradLogits!.toArray();
    const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));
    logits.forEach((x, index) => {
      expect(Number.isFinite(gradient[index])).toBe(true);
      expect(gradient[index]).toBeCloseTo((sigmoid(x) - target) / logits.length, 6);
    });
  });

  it('is exactly 0 for confident correct logits and 1e4 for confident wrong ones', async () => {
    expect(await bceWithLogits(tensorOf(gpu, [1e4], [1]), 1).item()).toBe(0);
    expect(await bceWithLogits(tensorOf(gpu, [-1e4], [1]), 0).item()).toBe(0);
    expect(await bceWithLogits(tensorOf(gpu, [1e4], [1]), 0).item()).toBe(1e4);
    expect(await bceWithLogits(tensorOf(gpu, [-100], [1]), 1).item()).toBe(100);
  });
});

describe('bceWithLogits in a graph', () => {
  it('back-propagates (sigmoid(x) - t) / count into .grad', async () => {
    const logits = tensorOf(gpu, [0, 0, 0, 0], [4], true);
    backward(bceWithLogits(logits, 1));
    expect([...(await logits.grad!.toArray())]).toEqual([-0.125, -0.125, -0.125, -0.125]);
  });

  it('gives the new loss for a second target with logits of the same shape', async () => {
    const logits = tensorOf(gpu, [0, 0], [2]);
    expect(await bceWithLogits(logits, 1).item()).toBeCloseTo(Math.log(2), 6);
    logits.write(Float32Array.of(2, -2));
    const target = tensorOf(gpu, [1, 0], [2]);
    expect(await bceWithLogits(logits, target).item()).toBeCloseTo(Math.log1p(Math.exp(-2)), 6);
  });

  it('rejects a target of another shape and a target that is not a number', () => {
    const logits = tensorOf(gpu, [0, 0, 0, 0], [4]);
    expect(() => bceWithLogits(logits, tensorOf(gpu, [0, 0, 0, 0], [2, 2]))).toThrow(
      ShaderganError,
    );
    expect(() => bceWithLogits(logits, Number.NaN)).toThrow(/finite/);
  });
});
