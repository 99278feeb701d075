import { beforeAll, describe, expect, it } from 'vitest';

import { backward, mul } from '../src/autograd/elementwise.ts';
import { appendOneHot, augmentImages, globalAvgPool } from '../src/autograd/images.ts';
import { sum } from '../src/autograd/reduce.ts';
import type { Tensor } from '../src/autograd/tensor.ts';
import { ShaderganError } from '../src/errors.ts';
import type { Gpu } from '../src/kernels/gpu.ts';
import {
  gradientValues,
  maxError,
  numericGradient,
  randomArray,
  tensorOf,
  testGpu,
  weightedSum,
} from './helpers.ts';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await testGpu();
});

/**
 * Runs `op` on a random input, checks the output against `reference` (float64, CPU) and the
 * input gradient of sum(output * weights) against central differences of the reference.
 */
async function checkOp(
  shape: number[],
  op: (input: Tensor) => Tensor,
  reference: (input: Float64Array) => Float64Array,
): Promise<void> {
  const input = randomArray(
    shape.reduce((a, b) => a * b, 1),
    7,
    -2,
    2,
  );
  const expected = reference(input);
  const weights = randomArray(expected.length, 11);
  const x = tensorOf(gpu, input, shape, true);
  const output = op(x);
  expect(output.size).toBe(expected.length);
  expect(maxError(await output.toArray(), expected)).toBeLessThan(1e-6);

  backward(sum(mul(output, tensorOf(gpu, weights, [...output.shape]))));
  const numeric = numericGradient((at) => weightedSum(reference(at), weights), input);
  expect(maxError(await gradientValues(x.grad), numeric)).toBeLessThan(1e-4);
}

describe('globalAvgPool', () => {
  it('averages each plane, and spreads the gradient evenly over it', async () => {
    const [n, c, h, w] = [2, 3, 4, 5];
    await checkOp([n, c, h, w], globalAvgPool, (input) => {
      const out = new Float64Array(n * c);
      for (let plane = 0; plane < n * c; plane += 1) {
        for (let i = 0; i < h * w; i += 1) out[plane] += input[plane * h * w + i] / (h * w);
      }
      return out;
    });
  });

  it('refuses a tensor that is not a batch of images', () => {
    expect(() => globalAvgPool(tensorOf(gpu, [1, 2, 3, 4], [2, 2]))).toThrow(ShaderganError);
  });
});

describe('augmentImages', () => {
  const [n, c, h, w] = [4, 2, 5, 6];
  // Image 0 untouched, 1 mirrored, 2 shifted right 2 and up 1, 3 mirrored and shifted left 3.
  const transforms = [0, 0, 0, 1, 0, 0, 0, 2, -1, 1, -3, 2];
  const background = -1;

  function reference(input: Float64Array): Float64Array {
    const out = new Float64Array(input.length);
    for (let image = 0; image < n; image += 1) {
      const [flip, dx, dy] = transforms.slice(image * 3, image * 3 + 3);
      for (let channel = 0; channel < c; channel += 1) {
        const plane = (image * c + channel) * h * w;
        for (let y = 0; y < h; y += 1) {
          for (let x = 0; x < w; x += 1) {
            const sourceX = (flip ? w - 1 - x : x) - dx;
            const sourceY = y - dy;
            const inside = sourceX >= 0 && sourceX < w && sourceY >= 0 && sourceY < h;
            out[plane + y * w + x] = inside ? input[plane + sourceY * w + sourceX] : background;
          }
        }
      }
    }
    return out;
  }

  it('mirrors and shifts each image by its own transform, with a gradient', async () => {
    const transformTensor = tensorOf(gpu, transforms, [n, 3]);
    await checkOp([n, c, h, w], (x) => augmentImages(x, transformTensor, background), reference);
  });

  it('an image whose transform is the identity comes back unchanged', async () => {
    const input = randomArray(n * c * h * w, 3);
    const out = await augmentImages(
      tensorOf(gpu, input, [n, c, h, w]),
      tensorOf(gpu, new Array(n * 3).fill(0), [n, 3]),
      background,
    ).toArray();
    expect(maxError(out, Float32Array.from(input))).toBe(0);
  });

  it('refuses transforms of the wrong shape', () => {
    const images = tensorOf(gpu, new Array(n * c * h * w).fill(0), [n, c, h, w]);
    expect(() => augmentImages(images, tensorOf(gpu, [0, 0, 0], [1, 3]), 0)).toThrow(
      /transforms must be \[4, 3\]/,
    );
  });
});

describe('appendOneHot', () => {
  it('appends one-hot class maps to images, and passes the gradient to the images only', async () => {
    const [n, c, h, w, classes] = [3, 2, 3, 2, 4];
    const labels = [2, 0, 3];
    await checkOp(
      [n, c, h, w],
      (x) => appendOneHot(x, tensorOf(gpu, labels, [n]), classes),
      (input) => {
        const plane = h * w;
        const out = new Float64Array(n * (c + classes) * plane);
        for (let sample = 0; sample < n; sample += 1) {
          for (let channel = 0; channel < c + classes; channel += 1) {
            for (let p = 0; p < plane; p += 1) {
              out[(sample * (c + classes) + channel) * plane + p] =
                channel < c
                  ? input[(sample * c + channel) * plane + p]
                  : Number(channel - c === labels[sample]);
            }
          }
        }
        return out;
      },
    );
  });

  it('appends a one-hot code to noise vectors', async () => {
    const noise = tensorOf(gpu, [0.5, -0.5, 1.5, 2.5], [2, 2]);
    const out = appendOneHot(noise, tensorOf(gpu, [1, 2], [2]), 3);
    expect(out.shape).toEqual([2, 5]);
    expect([...(await out.toArray())]).toEqual([0.5, -0.5, 0, 1, 0, 1.5, 2.5, 0, 0, 1]);
  });

  it('refuses labels that do not match the batch', () => {
    const noise = tensorOf(gpu, [0, 0, 0, 0], [2, 2]);
    expect(() => appendOneHot(noise, tensorOf(gpu, [1], [1]), 3)).toThrow(/labels \[batch\]/);
  });
});
