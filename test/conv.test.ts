// conv2d against a float64 reference; gradients against finite differences of that reference.
import { beforeAll, describe, expect, it } from 'vitest';

import { conv2d } from '../src/autograd/conv.ts';
import { scope } from '../src/autograd/tape.ts';
import { ShaderganError } from '../src/errors.ts';
import type { Gpu } from '../src/kernels/gpu.ts';
import {
  caseName,
  type ConvCase,
  type ConvUnderTest,
  expectCaseMatchesReference,
  expectGradientMatches,
  runConv,
} from './conv-helpers.ts';
import { randomArray, tensorOf, testGpu } from './helpers.ts';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await testGpu();
});

const cases: ConvCase[] = [
  {
    batch: 1,
    inChannels: 1,
    outChannels: 1,
    kernel: [3, 3],
    stride: [1, 1],
    padding: [0, 0],
    height: 5,
    width: 5,
    bias: true,
    gradients: 'full',
    ranges: true,
  },
  {
    batch: 2,
    inChannels: 3,
    outChannels: 4,
    kernel: [3, 3],
    stride: [1, 1],
    padding: [1, 1],
    height: 6,
    width: 7,
    bias: true,
    gradients: 'full',
  },
  {
    batch: 1,
    inChannels: 2,
    outChannels: 3,
    kernel: [5, 5],
    stride: [1, 1],
    padding: [2, 2],
    height: 6,
    width: 6,
    bias: false,
    gradients: 'full',
  },
  {
    batch: 2,
    inChannels: 3,
    outChannels: 2,
    kernel: [3, 3],
    stride: [2, 2],
    padding: [0, 0],
    height: 7,
    width: 9,
    bias: true,
    gradients: 'full',
  },
  {
    batch: 2,
    inChannels: 2,
    outChannels: 3,
    kernel: [4, 4],
    stride: [2, 2],
    padding: [1, 1],
    height: 8,
    width: 8,
    bias: true,
    gradients: 'full',
  },
  {
    batch: 1,
    inChannels: 3,
    outChannels: 5,
    kernel: [2, 3],
    stride: [2, 1],
    padding: [0, 2],
    height: 7,
    width: 5,
    bias: true,
    gradients: 'full',
  },
  {
    batch: 3,
    inChannels: 5,
    outChannels: 6,
    kernel: [1, 1],
    stride: [1, 1],
    padding: [0, 0],
    height: 3,
    width: 4,
    bias: true,
    gradients: 'full',
  },
  {
    batch: 3,
    inChannels: 5,
    outChannels: 7,
    kernel: [3, 2],
    stride: [1, 2],
    padding: [1, 0],
    height: 9,
    width: 11,
    bias: true,
    gradients: 'full',
  },
  {
    batch: 1,
    inChannels: 37,
    outChannels: 3,
    kernel: [3, 3],
    stride: [1, 1],
    padding: [1, 1],
    height: 4,
    width: 5,
    bias: true,
    gradients: 'full',
  },
  // The window covers the whole image (a discriminator's logit layer): no im2col pass.
  {
    batch: 3,
    inChannels: 4,
    outChannels: 5,
    kernel: [4, 3],
    stride: [1, 1],
    padding: [0, 0],
    height: 4,
    width: 3,
    bias: true,
    gradients: 'full',
  },
  // The DCGAN discriminator's convolutions (28x28x1 -> 64, 14x14x64 -> 128), small batch.
  {
    batch: 2,
    inChannels: 1,
    outChannels: 64,
    kernel: [4, 4],
    stride: [2, 2],
    padding: [1, 1],
    height: 28,
    width: 28,
    bias: true,
    gradients: 'sampled',
  },
  {
    batch: 2,
    inChannels: 64,
    outChannels: 128,
    kernel: [4, 4],
    stride: [2, 2],
    padding: [1, 1],
    height: 14,
    width: 14,
    bias: true,
    gradients: 'sampled',
  },
];

function outputSize(c: ConvCase): [number, number] {
  return [
    Math.floor((c.height + 2 * c.padding[0] - c.kernel[0]) / c.stride[0]) + 1,
    Math.floor((c.width + 2 * c.padding[1] - c.kernel[1]) / c.stride[1]) + 1,
  ];
}

/** out[n,o,y,x] = bias[o] + sum over (i, ky, kx) of input[n,i,y*s-p+ky,x*s-p+kx] * w[o,i,ky,kx]. */
function referenceConv2d(
  c: ConvCase,
  input: ArrayLike<number>,
  weight: ArrayLike<number>,
  bias: ArrayLike<number> | null,
): Float64Array {
  const [outHeight, outWidth] = outputSize(c);
  const [kernelHeight, kernelWidth] = c.kernel;
  const out = new Float64Array(c.batch * c.outChannels * outHeight * outWidth);
  let index = 0;
  for (let image = 0; image < c.batch; image += 1) {
    for (let outChannel = 0; outChannel < c.outChannels; outChannel += 1) {
      for (let outRow = 0; outRow < outHeight; outRow += 1) {
        for (let outColumn = 0; outColumn < outWidth; outColumn += 1) {
          let sum = bias ? bias[outChannel] : 0;
          for (let inChannel = 0; inChannel < c.inChannels; inChannel += 1) {
            for (let kernelRow = 0; kernelRow < kernelHeight; kernelRow += 1) {
              const row = outRow * c.stride[0] - c.padding[0] + kernelRow;
              if (row < 0 || row >= c.height) continue;
              for (let kernelColumn = 0; kernelColumn < kernelWidth; kernelColumn += 1) {
                const column = outColumn * c.stride[1] - c.padding[1] + kernelColumn;
                if (column < 0 || column >= c.width) continue;
                const inputIndex = ((image * c.inChannels + inChannel) * c.height + row) * c.width;
                const weightIndex =
                  ((outChannel * c.inChannels + inChannel) * kernelHeight + kernelRow) *
                  kernelWidth;
                sum += input[inputIndex + column] * weight[weightIndex + kernelColumn];
              }
            }
          }
          out[index] = sum;
          index += 1;
        }
      }
    }
  }
  return out;
}

/** conv2d on the case's settings, beside its float64 reference. */
function conv2dUnderTest(c: ConvCase): ConvUnderTest {
  return {
    weightShape: [c.outChannels, c.inChannels, ...c.kernel],
    outputShape: [c.batch, c.outChannels, ...outputSize(c)],
    forward: (input, weight, bias) =>
      conv2d(input, weight, bias, { stride: c.stride, padding: c.padding }),
    reference: (args) => referenceConv2d(c, args.input, args.weight, args.bias),
  };
}

describe('conv2d', () => {
  it.each(cases.map((c) => [caseName(c), c] as const))('%s', async (_name, c) => {
    await expectCaseMatchesReference(gpu, c, conv2dUnderTest(c), 11);
  });

  it('returns the new result when run again with new inputs of the same shape', async () => {
    const c = cases[4];
    const op = conv2dUnderTest(c);
    for (const seed of [21, 31]) {
      const run = await runConv(gpu, c, op, seed);
      await expectGradientMatches(op, run, 'input');
    }
  });

  it('allocates no new GPU buffers after the first forward and backward pass', async () => {
    const c = cases[10];
    const step = (): void =>
      scope(() => {
        const shape = [c.batch, 64, 14, 14];
        const input = tensorOf(gpu, randomArray(c.batch * 64 * 14 * 14, 1), shape, true);
        const weight = tensorOf(gpu, randomArray(128 * 64 * 16, 2), [128, 64, 4, 4], true);
        const bias = tensorOf(gpu, randomArray(128, 3), [128], true);
        const output = conv2d(input, weight, bias, { stride: 2, padding: 1 });
        const upstream = tensorOf(gpu, randomArray(output.size, 4), [...output.shape]);
        for (const gradient of output.creator!.backward(upstream)) gradient?.dispose();
      });
    step();
    await gpu.sync();
    const allocations = gpu.pool.allocations;
    step();
    step();
    await gpu.sync();
    expect(gpu.pool.allocations).toBe(allocations);
  });

  it('rejects shapes that do not fit, naming the op and every shape', () => {
    const input = tensorOf(gpu, randomArray(2 * 3 * 8 * 8, 1), [2, 3, 8, 8]);
    const weight = tensorOf(gpu, randomArray(4 * 5 * 9, 2), [4, 5, 3, 3]);
    expect(() => conv2d(input, weight, null, {})).toThrow(ShaderganError);
    expect(() => conv2d(input, weight, null, {})).toThrow(
      /conv2d: input \[2,3,8,8\], weight \[4,5,3,3\].*3 channels.*expects 5/,
    );

    const goodWeight = tensorOf(gpu, randomArray(4 * 3 * 81, 3), [4, 3, 9, 9]);
    expect(() => conv2d(input, goodWeight, null, { padding: 0 })).toThrow(/output would be/);
    const smallWeight = tensorOf(gpu, randomArray(4 * 3 * 9, 3), [4, 3, 3, 3]);
    const badBias = tensorOf(gpu, [1, 2, 3], [3]);
    expect(() => conv2d(input, smallWeight, badBias, {})).toThrow(/bias \[3\].*4 values/);
    expect(() => conv2d(input, smallWeight, null, { stride: 0 })).toThrow(/stride/);
    expect(() => conv2d(input, smallWeight, null, { padding: -1 })).toThrow(/padding/);
    const flat = tensorOf(gpu, randomArray(64, 4), [8, 8]);
    expect(() => conv2d(flat, smallWeight, null, {})).toThrow(/input must be/);
  });
});
