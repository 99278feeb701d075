// matmul and linear against a float64 reference, gradients against finite differences.
import { beforeAll, describe, expect, it } from 'vitest';

import { linear, matmul } from '../src/autograd/matmul.ts';
import type { Tensor } from '../src/autograd/tensor.ts';
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

/** op(A)·op(B) in float64; A is [m,k] or, transposed, [k,m]; B is [k,n] or [n,k]. */
function referenceMatmul(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  m: number,
  k: number,
  n: number,
  transposeA: boolean,
  transposeB: boolean,
): Float64Array {
  const out = new Float64Array(m * n);
  for (let row = 0; row < m; row += 1) {
    for (let column = 0; column < n; column += 1) {
      let sum = 0;
      for (let inner = 0; inner < k; inner += 1) {
        const aValue = transposeA ? a[inner * m + row] : a[row * k + inner];
        const bValue = transposeB ? b[column * k + inner] : b[inner * n + column];
        sum += aValue * bValue;
      }
      out[row * n + column] = sum;
    }
  }
  return out;
}

/** input·weightᵀ + bias in float64. */
function referenceLinear(
  input: ArrayLike<number>,
  weight: ArrayLike<number>,
  bias: ArrayLike<number> | null,
  batch: number,
  inFeatures: number,
  outFeatures: number,
): Float64Array {
  const out = referenceMatmul(input, weight, batch, inFeatures, outFeatures, false, true);
  if (bias) {
    for (let index = 0; index < out.length; index += 1) out[index] += bias[index % outFeatures];
  }
  return out;
}

async function values(tensor: Tensor | null | undefined): Promise<Float32Array> {
  if (!tensor) throw new Error('expected a gradient tensor');
  return tensor.toArray();
}

interface MatmulCase {
  m: number;
  k: number;
  n: number;
  transposeA: boolean;
  transposeB: boolean;
  /** Check gradients by finite differences (kept to small cases for speed). */
  gradients: boolean;
}

const matmulCases: MatmulCase[] = [
  { m: 1, k: 1, n: 1, transposeA: false, transposeB: false, gradients: true },
  { m: 5, k: 7, n: 3, transposeA: false, transposeB: false, gradients: true },
  { m: 5, k: 7, n: 3, transposeA: true, transposeB: false, gradients: true },
  { m: 5, k: 7, n: 3, transposeA: false, transposeB: true, gradients: true },
  { m: 5, k: 7, n: 3, transposeA: true, transposeB: true, gradients: true },
  { m: 4, k: 8, n: 32, transposeA: false, transposeB: true, gradients: true },
  { m: 33, k: 65, n: 17, transposeA: false, transposeB: false, gradients: true },
  { m: 33, k: 65, n: 17, transposeA: true, transposeB: true, gradients: false },
  { m: 17, k: 65, n: 33, transposeA: true, transposeB: false, gradients: false },
  { m: 70, k: 36, n: 100, transposeA: false, transposeB: true, gradients: false },
  { m: 3, k: 200, n: 2, transposeA: false, transposeB: false, gradients: false },
  // A depth longer than one 64 KiB chunk holds for 16 rows: summed in shares.
  { m: 37, k: 1100, n: 70, transposeA: false, transposeB: true, gradients: false },
  { m: 20, k: 2500, n: 3, transposeA: true, transposeB: false, gradients: false },
  // More rows than one chunk holds: several dispatches.
  { m: 1100, k: 4, n: 70, transposeA: false, transposeB: false, gradients: false },
];

const caseName = (c: MatmulCase): string =>
  `m=${c.m} k=${c.k} n=${c.n} transposeA=${c.transposeA} transposeB=${c.transposeB}`;

describe('matmul', () => {
  it.each(matmulCases.map((c) => [caseName(c), c] as const))('%s', async (_name, c) => {
    const { m, k, n, transposeA, transposeB } = c;
    const aShape = transposeA ? [k, m] : [m, k];
    const bShape = transposeB ? [n, k] : [k, n];
    const aValues = randomArray(m * k, 1 + m);
    const bValues = randomArray(k * n, 2 + n);
    const a = tensorOf(gpu, aValues, aShape, true);
    const b = tensorOf(gpu, bValues, bShape, true);

    const output = matmul(a, b, { transposeA, transposeB });
    expect(output.shape).toEqual([m, n]);
    const expected = referenceMatmul(aValues, bValues, m, k, n, transposeA, transposeB);
    expect(maxError(await output.toArray(), expected)).toBeLessThan(1e-5);
    if (!c.gradients) return;

    const upstream = randomArray(m * n, 3);
    const [gradA, gradB] = output.creator!.backward(tensorOf(gpu, upstream, [m, n]));
    const lossOfA = (x: Float64Array): number =>
      weightedSum(referenceMatmul(x, bValues, m, k, n, transposeA, transposeB), upstream);
    const lossOfB = (x: Float64Array): number =>
      weightedSum(referenceMatmul(aValues, x, m, k, n, transposeA, transposeB), upstream);
    expect(maxError(await values(gradA), numericGradient(lossOfA, aValues))).toBeLessThan(1e-4);
    expect(maxError(await values(gradB), numericGradient(lossOfB, bValues))).toBeLessThan(1e-4);
  });

  it('multiplies small integer ranges exactly', async () => {
    // [[0,1,2],[3,4,5]] · [[0,1],[2,3],[4,5]] = [[10,13],[28,40]]
    const a = tensorOf(gpu, rangeArray(6), [2, 3]);
    const b = tensorOf(gpu, rangeArray(6), [3, 2]);
    expect([...(await matmul(a, b).toArray())]).toEqual([10, 13, 28, 40]);
  });

  it('returns the new result when run again with new inputs of the same shape', async () => {
    const [m, k, n] = [9, 6, 11];
    for (const seed of [10, 20]) {
      const aValues = randomArray(m * k, seed);
      const bValues = randomArray(k * n, seed + 1);
      const output = matmul(tensorOf(gpu, aValues, [m, k]), tensorOf(gpu, bValues, [n, k]), {
        transposeB: true,
      });
      const expected = referenceMatmul(aValues, bValues, m, k, n, false, true);
      expect(maxError(await output.toArray(), expected)).toBeLessThan(1e-5);
    }
  });

  it('rejects shapes that do not fit, naming them', () => {
    const a = tensorOf(gpu, randomArray(6, 1), [2, 3]);
    const b = tensorOf(gpu, randomArray(8, 2), [4, 2]);
    expect(() => matmul(a, b)).toThrow(ShaderganError);
    expect(() => matmul(a, b)).toThrow(/\[2,3\].*\[4,2\].*3 and 4/);
    expect(() => matmul(a, tensorOf(gpu, [1, 2, 3], [3]))).toThrow(/2-D/);
  });
});

interface LinearCase {
  batch: number;
  inFeatures: number;
  outFeatures: number;
  bias: boolean;
}

const linearCases: LinearCase[] = [
  { batch: 1, inFeatures: 1, outFeatures: 1, bias: true },
  { batch: 3, inFeatures: 5, outFeatures: 7, bias: true },
  { batch: 4, inFeatures: 10, outFeatures: 1, bias: true },
  { batch: 6, inFeatures: 9, outFeatures: 35, bias: false },
  { batch: 2, inFeatures: 16, outFeatures: 3, bias: true },
  { batch: 2, inFeatures: 1030, outFeatures: 2, bias: true },
];

describe('linear', () => {
  const linearName = (c: LinearCase): string =>
    `batch=${c.batch} in=${c.inFeatures} out=${c.outFeatures} bias=${c.bias}`;
  it.each(linearCases.map((c) => [linearName(c), c] as const))('%s', async (_name, c) => {
    const { batch, inFeatures, outFeatures } = c;
    const inputValues = randomArray(batch * inFeatures, 4);
    const weightValues = randomArray(outFeatures * inFeatures, 5);
    const biasValues = c.bias ? randomArray(outFeatures, 6) : null;
    const input = tensorOf(gpu, inputValues, [batch, inFeatures], true);
    const weight = tensorOf(gpu, weightValues, [outFeatures, inFeatures], true);
    const bias = biasValues ? tensorOf(gpu, biasValues, [outFeatures], true) : null;

    const output = linear(input, weight, bias);
    expect(output.shape).toEqual([batch, outFeatures]);
    expect(output.creator?.op).toBe('linear');
    const reference = (x: ArrayLike<number>, w: ArrayLike<number>, b: ArrayLike<number> | null) =>
      referenceLinear(x, w, b, batch, inFeatures, outFeatures);
    expect(
      maxError(await output.toArray(), reference(inputValues, weightValues, biasValues)),
    ).toBeLessThan(1e-5);

    const upstream = randomArray(batch * outFeatures, 7);
    const [gradInput, gradWeight, gradBias] = output.creator!.backward(
      tensorOf(gpu, upstream, [batch, outFeatures]),
    );
    const expectedInput = numericGradient(
      (x) => weightedSum(reference(x, weightValues, biasValues), upstream),
      inputValues,
    );
    const expectedWeight = numericGradient(
      (w) => weightedSum(reference(inputValues, w, biasValues), upstream),
      weightValues,
    );
    expect(maxError(await values(gradInput), expectedInput)).toBeLessThan(1e-4);
    expect(maxError(await values(gradWeight), expectedWeight)).toBeLessThan(1e-4);
    if (biasValues) {
      const expectedBias = numericGradient(
        (b) => weightedSum(reference(inputValues, weightValues, b), upstream),
        biasValues,
      );
      expect(maxError(await values(gradBias), expectedBias)).toBeLessThan(1e-4);
    } else {
      expect(gradBias).toBeNull();
    }
  });

  it('rejects a weight of the wrong width and a bias of the wrong length', () => {
    const input = tensorOf(gpu, randomArray(6, 1), [2, 3]);
    const weight = tensorOf(gpu, randomArray(8, 2), [2, 4]);
    expect(() => linear(input, weight, null)).toThrow(/linear.*\[2,3\].*\[2,4\].*3 features/);
    const goodWeight = tensorOf(gpu, randomArray(6, 2), [2, 3]);
    const badBias = tensorOf(gpu, [1, 2, 3], [3]);
    expect(() => linear(input, goodWeight, badBias)).toThrow(ShaderganError);
  });
});
