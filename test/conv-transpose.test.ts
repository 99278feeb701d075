// convTranspose2d against a float64 reference written as a scatter (the textbook definition,
// independent of the gather the GPU runs); gradients against finite differences of it.
import { beforeAll, describe, expect, it } from 'vitest';

import { convTranspose2d } from '../src/autograd/conv.ts';
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
import { maxError, randomArray, rangeArray, tensorOf, testGpu } from './helpers.ts';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await testGpu();
});

interface ConvTransposeCase extends ConvCase {
  outputPadding: [number, number];
}

const cases: ConvTransposeCase[] = [
  // From 1x1 inputs (a generator's first layer): the product is the output, no col2im pass...
  {
    batch: 3,
    inChannels: 5,
    outChannels: 4,
    kernel: [4, 3],
    stride: [1, 1],
    padding: [0, 0],
    outputPadding: [0, 0],
    height: 1,
    width: 1,
    bias: false,
    gradients: 'full',
  },
  // ...unless a bias per output channel needs col2im's pass.
  {
    batch: 2,
    inChannels: 3,
    outChannels: 2,
    kernel: [3, 3],
    stride: [2, 2],
    padding: [0, 0],
    outputPadding: [0, 0],
    height: 1,
    width: 1,
    bias: true,
    gradients: 'full',
  },
  {
    batch: 1,
    inChannels: 1,
    outChannels: 1,
    kernel: [3, 3],
    stride: [1, 1],
    padding: [0, 0],
    outputPadding: [0, 0],
    height: 3,
    width: 3,
    bias: true,
    gradients: 'full',
    ranges: true,
  },
  {
    batch: 2,
    inChannels: 3,
    outChannels: 2,
    kernel: [4, 4],
    stride: [2, 2],
    padding: [1, 1],
    outputPadding: [0, 0],
    height: 4,
    width: 5,
    bias: true,
    gradients: 'full',
  },
  {
    batch: 2,
    inChannels: 2,
    outChannels: 3,
    kernel: [3, 3],
    stride: [2, 2],
    padding: [1, 1],
    outputPadding: [1, 1],
    height: 4,
    width: 4,
    bias: true,
    gradients: 'full',
  },
  {
    batch: 1,
    inChannels: 3,
    outChannels: 4,
    kernel: [3, 2],
    stride: [2, 3],
    padding: [1, 0],
    outputPadding: [1, 2],
    height: 3,
    width: 4,
    bias: true,
    gradients: 'full',
  },
  {
    batch: 2,
    inChannels: 4,
    outChannels: 5,
    kernel: [5, 5],
    stride: [1, 1],
    padding: [2, 2],
    outputPadding: [0, 0],
    height: 5,
    width: 5,
    bias: false,
    gradients: 'full',
  },
  {
    batch: 3,
    inChannels: 5,
    outChannels: 7,
    kernel: [2, 3],
    stride: [1, 2],
    padding: [0, 1],
    outputPadding: [0, 1],
    height: 9,
    width: 6,
    bias: true,
    gradients: 'full',
  },
  {
    batch: 1,
    inChannels: 6,
    outChannels: 37,
    kernel: [1, 1],
    stride: [1, 1],
    padding: [0, 0],
    outputPadding: [0, 0],
    height: 3,
    width: 5,
    bias: true,
    gradients: 'full',
  },
  // The DCGAN generator's transposed convolutions (7x7x128 -> 14x14x64 -> 28x28x1), small batch.
  {
    batch: 2,
    inChannels: 128,
    outChannels: 64,
    kernel: [4, 4],
    stride: [2, 2],
    padding: [1, 1],
    outputPadding: [0, 0],
    height: 7,
    width: 7,
    bias: true,
    gradients: 'sampled',
  },
  {
    batch: 2,
    inChannels: 64,
    outChannels: 1,
    kernel: [4, 4],
    stride: [2, 2],
    padding: [1, 1],
    outputPadding: [0, 0],
    height: 14,
    width: 14,
    bias: true,
    gradients: 'sampled',
  },
];

function outputSize(c: ConvTransposeCase): [number, number] {
  return [
    (c.height - 1) * c.stride[0] - 2 * c.padding[0] + c.kernel[0] + c.outputPadding[0],
    (c.width - 1) * c.stride[1] - 2 * c.padding[1] + c.kernel[1] + c.outputPadding[1],
  ];
}

/**
 * Every input value x[n,i,y,x] adds x * w[i,o,ky,kx] to out[n,o,y*s-p+ky,x*s-p+kx] where that
 * lies inside the output; then bias[o] is added everywhere.
 */
function referenceConvTranspose2d(
  c: ConvTransposeCase,
  input: ArrayLike<number>,
  weight: ArrayLike<number>,
  bias: ArrayLike<number> | null,
): Float64Array {
  const [outHeight, outWidth] = outputSize(c);
  const [kernelHeight, kernelWidth] = c.kernel;
  const out = new Float64Array(c.batch * c.outChannels * outHeight * outWidth);
  for (let image = 0; image < c.batch; image += 1) {
    for (let inChannel = 0; inChannel < c.inChannels; inChannel += 1) {
      for (let inRow = 0; inRow < c.height; inRow += 1) {
        for (let inColumn = 0; inColumn < c.width; inColumn += 1) {
          const inputIndex =
            ((image * c.inChannels + inChannel) * c.height + inRow) * c.width + inColumn;
          const value = input[inputIndex];
          for (let outChannel = 0; outChannel < c.outChannels; outChannel += 1) {
            for (let kernelRow = 0; kernelRow < kernelHeight; kernelRow += 1) {
              const outRow = inRow * c.stride[0] - c.padding[0] + kernelRow;
              if (outRow < 0 || outRow >= outHeight) continue;
              for (let kernelColumn = 0; kernelColumn < kernelWidth; kernelColumn += 1) {
                const outColumn = inColumn * c.stride[1] - c.padding[1] + kernelColumn;
                if (outColumn < 0 || outColumn >= outWidth) continue;
                const weightIndex =
                  ((inChannel * c.outChannels + outChannel) * kernelHeight + kernelRow) *
                    kernelWidth +
                  kernelColumn;
                const outIndex =
                  ((image * c.outChannels + outChannel) * outHeight + outRow) * outWidth +
                  outColumn;
                out[outIndex] += value * weight[weightIndex];
              }
            }
          }
        }
      }
    }
  }
  if (bias) {
    const plane = outHeight * outWidth;
    for (let index = 0; index < out.length; index += 1) {
      out[index] += bias[Math.floor(index / plane) % c.outChannels];
    }
  }
  return out;
}

function optionsOf(c: ConvTransposeCase) {
  return { stride: c.stride, padding: c.padding, outputPadding: c.outputPadding };
}

/** convTranspose2d on the case's settings, beside its float64 reference. */
function convTranspose2dUnderTest(c: ConvTransposeCase): ConvUnderTest {
  return {
    weightShape: [c.inChannels, c.outChannels, ...c.kernel],
    outputShape: [c.batch, c.outChannels, ...outputSize(c)],
    forward: (input, weight, bias) => convTranspose2d(input, weight, bias, optionsOf(c)),
    reference: (args) => referenceConvTranspose2d(c, args.input, args.weight, args.bias),
  };
}

describe('convTranspose2d', () => {
  it.each(cases.map((c) => [caseName(c), c] as const))('%s', async (_name, c) => {
    await expectCaseMatchesReference(gpu, c, convTranspose2dUnderTest(c), 41);
  });

  it('computes the rows and columns that output padding adds', async () => {
    // 3x3 input, kernel 3, stride 2, padding 1: 5x5 without output padding, 6x6 with it. The
    // added last row and column are covered by kernel row/column 2 of the last input pixel.
    const c: ConvTransposeCase = {
      batch: 1,
      inChannels: 2,
      outChannels: 2,
      kernel: [3, 3],
      stride: [2, 2],
      padding: [1, 1],
      outputPadding: [1, 1],
      height: 3,
      width: 3,
      bias: false,
      gradients: 'full',
    };
    const inputValues = rangeArray(18, 0.1, 0.1); // all positive
    const weightValues = rangeArray(36, 0.05, 0.05);
    const output = convTranspose2d(
      tensorOf(gpu, inputValues, [1, 2, 3, 3]),
      tensorOf(gpu, weightValues, [2, 2, 3, 3]),
      tensorOf(gpu, [0, 0], [2]),
      optionsOf(c),
    );
    expect(output.shape).toEqual([1, 2, 6, 6]);
    const actual = await output.toArray();
    const expected = referenceConvTranspose2d(c, inputValues, weightValues, null);
    for (let channel = 0; channel < 2; channel += 1) {
      for (let position = 0; position < 6; position += 1) {
        // Odd positions of the last row/column are reached from the last input row/column.
        const lastRow = (channel * 6 + 5) * 6 + position;
        const lastColumn = (channel * 6 + position) * 6 + 5;
        for (const index of [lastRow, lastColumn]) {
          expect(actual[index]).toBeCloseTo(expected[index], 5);
          if (position % 2 === 1) expect(actual[index]).toBeGreaterThan(0);
        }
      }
    }
    expect(maxError(actual, expected)).toBeLessThan(1e-5);
  });

  it('returns the new result when run again with new inputs of the same shape', async () => {
    const c = cases[2];
    const op = convTranspose2dUnderTest(c);
    for (const seed of [51, 61]) {
      const run = await runConv(gpu, c, op, seed);
      await expectGradientMatches(op, run, 'weight');
    }
  });

  it('rejects shapes and options that do not fit, naming the op and every shape', () => {
    const input = tensorOf(gpu, randomArray(2 * 3 * 4 * 4, 1), [2, 3, 4, 4]);
    const weight = tensorOf(gpu, randomArray(5 * 2 * 9, 2), [5, 2, 3, 3]);
    expect(() => convTranspose2d(input, weight, null, {})).toThrow(ShaderganError);
    expect(() => convTranspose2d(input, weight, null, {})).toThrow(
      /convTranspose2d: input \[2,3,4,4\], weight \[5,2,3,3\].*3 channels.*expects 5/,
    );

    const goodWeight = tensorOf(gpu, randomArray(3 * 2 * 9, 3), [3, 2, 3, 3]);
    expect(() => convTranspose2d(input, goodWeight, null, { stride: 2, outputPadding: 2 })).toThrow(
      /outputPadding \(2,2\) must be smaller than stride \(2,2\)/,
    );
    expect(() => convTranspose2d(input, goodWeight, null, { outputPadding: 1 })).toThrow(
      ShaderganError,
    );
    expect(() => convTranspose2d(input, goodWeight, null, { padding: 4 })).toThrow(
      /output would be/,
    );
    const badBias = tensorOf(gpu, [1, 2, 3], [3]);
    expect(() => convTranspose2d(input, goodWeight, badBias, {})).toThrow(/2 values/);
  });
});
