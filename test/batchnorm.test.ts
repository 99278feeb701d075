import { beforeAll, describe, expect, it } from 'vitest';

import { batchNorm2d } from '../src/autograd/batchnorm.ts';
import { noGrad } from '../src/autograd/tape.ts';
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

interface Shape {
  batch: number;
  channels: number;
  height: number;
  width: number;
}

interface Statistics {
  mean: Float64Array;
  variance: Float64Array;
}

// ---- float64 reference (PyTorch's BatchNorm2d) ----

function forEachInChannel(shape: Shape, channel: number, visit: (address: number) => void): void {
  const spatial = shape.height * shape.width;
  for (let image = 0; image < shape.batch; image += 1) {
    const planeStart = (image * shape.channels + channel) * spatial;
    for (let position = 0; position < spatial; position += 1) visit(planeStart + position);
  }
}

function batchStatistics(
  x: ArrayLike<number>,
  shape: Shape,
): Statistics & { unbiased: Float64Array } {
  const count = shape.batch * shape.height * shape.width;
  const mean = new Float64Array(shape.channels);
  const variance = new Float64Array(shape.channels);
  const unbiased = new Float64Array(shape.channels);
  for (let channel = 0; channel < shape.channels; channel += 1) {
    let total = 0;
    forEachInChannel(shape, channel, (address) => (total += x[address]));
    mean[channel] = total / count;
    let squares = 0;
    forEachInChannel(shape, channel, (address) => (squares += (x[address] - mean[channel]) ** 2));
    variance[channel] = squares / count;
    unbiased[channel] = squares / (count - 1);
  }
  return { mean, variance, unbiased };
}

function normalise(
  x: ArrayLike<number>,
  shape: Shape,
  statistics: Statistics,
  weight: ArrayLike<number>,
  bias: ArrayLike<number>,
  eps: number,
): Float64Array {
  const output = new Float64Array(x.length);
  for (let channel = 0; channel < shape.channels; channel += 1) {
    const inverseStd = 1 / Math.sqrt(statistics.variance[channel] + eps);
    forEachInChannel(shape, channel, (address) => {
      const normalised = (x[address] - statistics.mean[channel]) * inverseStd;
      output[address] = normalised * weight[channel] + bias[channel];
    });
  }
  return output;
}

interface Inputs {
  x: Float64Array;
  weight: Float64Array;
  bias: Float64Array;
  running: Statistics;
}

function referenceOutput(inputs: Inputs, shape: Shape, training: boolean, eps: number) {
  const statistics = training ? batchStatistics(inputs.x, shape) : inputs.running;
  return normalise(inputs.x, shape, statistics, inputs.weight, inputs.bias, eps);
}

/** The running statistics after one training step, as PyTorch updates them. */
function referenceRunning(inputs: Inputs, shape: Shape, momentum: number): Statistics {
  const batch = batchStatistics(inputs.x, shape);
  const blend = (old: Float64Array, fresh: Float64Array): Float64Array =>
    old.map((value, channel) => (1 - momentum) * value + momentum * fresh[channel]);
  return {
    mean: blend(inputs.running.mean, batch.mean),
    variance: blend(inputs.running.variance, batch.unbiased),
  };
}

/** The closed-form gradients with batch statistics, for cases too big for finite differences. */
function referenceTrainingGradients(inputs: Inputs, gradOutput: Float64Array, shape: Shape) {
  const eps = 1e-5;
  const count = shape.batch * shape.height * shape.width;
  const { mean, variance } = batchStatistics(inputs.x, shape);
  const gradInput = new Float64Array(inputs.x.length);
  const gradWeight = new Float64Array(shape.channels);
  const gradBias = new Float64Array(shape.channels);
  for (let channel = 0; channel < shape.channels; channel += 1) {
    const inverseStd = 1 / Math.sqrt(variance[channel] + eps);
    const normalised = (address: number): number =>
      (inputs.x[address] - mean[channel]) * inverseStd;
    forEachInChannel(shape, channel, (address) => {
      gradBias[channel] += gradOutput[address];
      gradWeight[channel] += gradOutput[address] * normalised(address);
    });
    forEachInChannel(shape, channel, (address) => {
      const centred =
        gradOutput[address] -
        (gradBias[channel] + normalised(address) * gradWeight[channel]) / count;
      gradInput[address] = inputs.weight[channel] * inverseStd * centred;
    });
  }
  return { gradInput, gradWeight, gradBias };
}

// ---- helpers ----

function sizeOf(shape: Shape): number {
  return shape.batch * shape.channels * shape.height * shape.width;
}

function dimensions(shape: Shape): number[] {
  return [shape.batch, shape.channels, shape.height, shape.width];
}

/** Random inputs whose channels have different means (up to `offset`) and spreads. */
function makeInputs(shape: Shape, seed: number, offset = 3): Inputs {
  const x = randomArray(sizeOf(shape), seed, -2, 2);
  for (let channel = 0; channel < shape.channels; channel += 1) {
    const shift = offset * (channel % 2 === 0 ? 1 : -0.5) + channel * 0.1;
    const spread = 0.5 + channel * 0.25;
    forEachInChannel(shape, channel, (address) => (x[address] = shift + spread * x[address]));
  }
  // Rounded to float32 so that the reference sees exactly what the GPU sees.
  const asFloat32 = (values: Float64Array): Float64Array =>
    Float64Array.from(Float32Array.from(values));
  return {
    x: asFloat32(x),
    weight: asFloat32(randomArray(shape.channels, seed + 1, 0.5, 1.5)),
    bias: asFloat32(randomArray(shape.channels, seed + 2, -1, 1)),
    running: {
      mean: asFloat32(randomArray(shape.channels, seed + 3, -0.5, 0.5)),
      variance: asFloat32(randomArray(shape.channels, seed + 4, 0.5, 2)),
    },
  };
}

interface GpuInputs {
  x: Tensor;
  weight: Tensor;
  bias: Tensor;
  running: { mean: Tensor; variance: Tensor };
}

function upload(inputs: Inputs, shape: Shape): GpuInputs {
  return {
    x: tensorOf(gpu, inputs.x, dimensions(shape), true),
    weight: tensorOf(gpu, inputs.weight, [shape.channels], true),
    bias: tensorOf(gpu, inputs.bias, [shape.channels], true),
    running: {
      mean: tensorOf(gpu, inputs.running.mean, [shape.channels]),
      variance: tensorOf(gpu, inputs.running.variance, [shape.channels]),
    },
  };
}

function dispose(tensors: GpuInputs): void {
  for (const tensor of [tensors.x, tensors.weight, tensors.bias]) tensor.dispose();
  tensors.running.mean.dispose();
  tensors.running.variance.dispose();
}

const momentum = 0.1;
const eps = 1e-5;

// ---- cases ----

interface Case extends Shape {
  name: string;
}

const cases: Case[] = [
  { name: 'small', batch: 2, channels: 3, height: 4, width: 5 },
  { name: 'batch 1', batch: 1, channels: 2, height: 3, width: 3 },
  { name: '1x1 images', batch: 4, channels: 3, height: 1, width: 1 },
  { name: 'two values per channel', batch: 2, channels: 1, height: 1, width: 1 },
  { name: 'odd sizes', batch: 5, channels: 7, height: 3, width: 1 },
  // 297 values per channel: five slices of 64, the last short, slices crossing images.
  { name: 'several slices', batch: 3, channels: 2, height: 9, width: 11 },
];

describe.each(cases)('batchNorm2d $name [$batch,$channels,$height,$width]', (shape) => {
  const size = sizeOf(shape);
  const inputs = makeInputs(shape, size + shape.channels);
  const upstream = randomArray(size, size + 99);

  it.each([true, false])('forward with training=%s matches float64', async (training) => {
    const tensors = upload(inputs, shape);
    const output = noGrad(() =>
      batchNorm2d(tensors.x, tensors.weight, tensors.bias, tensors.running, {
        training,
        momentum,
        eps,
      }),
    );
    expect(output.shape).toEqual(dimensions(shape));
    const expected = referenceOutput(inputs, shape, training, eps);
    expect(maxError(await output.toArray(), expected)).toBeLessThan(2e-5);

    const running = training ? referenceRunning(inputs, shape, momentum) : inputs.running;
    expect(maxError(await tensors.running.mean.toArray(), running.mean)).toBeLessThan(1e-6);
    expect(maxError(await tensors.running.variance.toArray(), running.variance)).toBeLessThan(1e-5);
    output.dispose();
    dispose(tensors);
  });

  it.each([true, false])(
    'backward with training=%s matches finite differences',
    async (training) => {
      const tensors = upload(inputs, shape);
      const output = batchNorm2d(tensors.x, tensors.weight, tensors.bias, tensors.running, {
        training,
        momentum,
        eps,
      });
      const [gradInput, gradWeight, gradBias] = output.creator!.backward(
        tensorOf(gpu, upstream, dimensions(shape)),
      );

      const loss = (changed: Partial<Inputs>): number =>
        weightedSum(referenceOutput({ ...inputs, ...changed }, shape, training, eps), upstream);
      const expectedInput = numericGradient((x) => loss({ x }), inputs.x);
      const expectedWeight = numericGradient((weight) => loss({ weight }), inputs.weight);
      const expectedBias = numericGradient((bias) => loss({ bias }), inputs.bias);

      expect(maxError(await gradInput!.toArray(), expectedInput)).toBeLessThan(2e-4);
      expect(maxError(await gradWeight!.toArray(), expectedWeight)).toBeLessThan(2e-4);
      expect(maxError(await gradBias!.toArray(), expectedBias)).toBeLessThan(2e-4);
      dispose(tensors);
    },
  );
});

describe('batchNorm2d on a DCGAN-sized layer', () => {
  // 12544 values per channel: 64 slices of 196; channel means far from 0.
  const shape: Shape = { batch: 16, channels: 4, height: 28, width: 28 };
  const inputs = makeInputs(shape, 5, 50);
  const upstream = randomArray(sizeOf(shape), 6);

  it('matches the float64 forward, running update and closed-form gradients', async () => {
    const tensors = upload(inputs, shape);
    const output = batchNorm2d(tensors.x, tensors.weight, tensors.bias, tensors.running, {
      training: true,
      momentum,
      eps,
    });
    expect(
      maxError(await output.toArray(), referenceOutput(inputs, shape, true, eps)),
    ).toBeLessThan(1e-4);
    const running = referenceRunning(inputs, shape, momentum);
    expect(maxError(await tensors.running.mean.toArray(), running.mean)).toBeLessThan(1e-5);
    expect(maxError(await tensors.running.variance.toArray(), running.variance)).toBeLessThan(1e-4);

    const [gradInput, gradWeight, gradBias] = output.creator!.backward(
      tensorOf(gpu, upstream, dimensions(shape)),
    );
    const expected = referenceTrainingGradients(inputs, upstream, shape);
    // Sums over 12544 float32 products: compare relative to their size.
    expect(maxError(await gradInput!.toArray(), expected.gradInput)).toBeLessThan(1e-4);
    const scaleOf = (values: Float64Array): number => Math.sqrt(values.length) * 100;
    const relative = (values: Float32Array, reference: Float64Array): number =>
      maxError(
        values.map((value) => value / scaleOf(reference)),
        reference.map((value) => value / scaleOf(reference)),
      );
    expect(relative(await gradWeight!.toArray(), expected.gradWeight)).toBeLessThan(1e-5);
    expect(relative(await gradBias!.toArray(), expected.gradBias)).toBeLessThan(1e-5);
    dispose(tensors);
  });
});

describe('batchNorm2d running statistics', () => {
  const shape: Shape = { batch: 3, channels: 2, height: 2, width: 2 };

  it('follow PyTorch over two training steps, then serve evaluation unchanged', async () => {
    const first = makeInputs(shape, 1);
    const second = { ...makeInputs(shape, 2), weight: first.weight, bias: first.bias };
    const tensors = upload(first, shape);
    const options = { training: true, momentum: 0.3, eps };

    noGrad(() => batchNorm2d(tensors.x, tensors.weight, tensors.bias, tensors.running, options));
    const afterFirst = referenceRunning(first, shape, 0.3);
    const nextX = tensorOf(gpu, second.x, dimensions(shape));
    noGrad(() => batchNorm2d(nextX, tensors.weight, tensors.bias, tensors.running, options));
    const afterSecond = referenceRunning({ ...second, running: afterFirst }, shape, 0.3);
    expect(maxError(await tensors.running.mean.toArray(), afterSecond.mean)).toBeLessThan(1e-6);
    expect(maxError(await tensors.running.variance.toArray(), afterSecond.variance)).toBeLessThan(
      1e-5,
    );

    const evaluation = { ...options, training: false };
    const output = batchNorm2d(
      tensors.x,
      tensors.weight,
      tensors.bias,
      tensors.running,
      evaluation,
    );
    const expected = referenceOutput({ ...first, running: afterSecond }, shape, false, eps);
    expect(maxError(await output.toArray(), expected)).toBeLessThan(2e-5);
    expect(maxError(await tensors.running.mean.toArray(), afterSecond.mean)).toBeLessThan(1e-6);
  });

  it('normalise readable values to the expected z-scores', async () => {
    // One channel holding 1..4: mean 2.5, biased variance 1.25, unbiased 5/3.
    const x = tensorOf(gpu, rangeArray(4, 1, 1), [2, 1, 1, 2]);
    const running = { mean: tensorOf(gpu, [0], [1]), variance: tensorOf(gpu, [1], [1]) };
    const output = batchNorm2d(x, tensorOf(gpu, [1], [1]), tensorOf(gpu, [0], [1]), running, {
      training: true,
      momentum: 1,
      eps: 1e-5,
    });
    const inverseStd = 1 / Math.sqrt(1.25 + 1e-5);
    const expected = [-1.5, -0.5, 0.5, 1.5].map((value) => value * inverseStd);
    expect(maxError(await output.toArray(), expected)).toBeLessThan(1e-6);
    expect(await running.mean.item()).toBe(2.5);
    expect(await running.variance.item()).toBeCloseTo(5 / 3, 6);
  });

  it('refuse training with one value per channel but allow evaluation', async () => {
    const shape1: Shape = { batch: 1, channels: 3, height: 1, width: 1 };
    const tensors = upload(makeInputs(shape1, 8), shape1);
    const call = (training: boolean): Tensor =>
      batchNorm2d(tensors.x, tensors.weight, tensors.bias, tensors.running, {
        training,
        momentum,
        eps,
      });
    expect(() => call(true)).toThrow(ShaderganError);
    expect(() => call(true)).toThrow(/more than one value per channel/);
    expect((await call(false).toArray()).every(Number.isFinite)).toBe(true);
  });

  it('reject parameters whose size is not the channel count', () => {
    const tensors = upload(makeInputs(shape, 9), shape);
    const wrong = tensorOf(gpu, [1, 1, 1], [3]);
    const options = { training: true, momentum, eps };
    expect(() => batchNorm2d(tensors.x, wrong, tensors.bias, tensors.running, options)).toThrow(
      /weight has shape \[3\], expected \[2\]/,
    );
    expect(() =>
      batchNorm2d(tensors.weight, tensors.weight, tensors.bias, tensors.running, options),
    ).toThrow(ShaderganError);
  });

  it('keep no buffer when nothing is recorded', () => {
    const tensors = upload(makeInputs(shape, 10), shape);
    const before = gpu.pool.bytesInUse;
    noGrad(() =>
      batchNorm2d(tensors.x, tensors.weight, tensors.bias, tensors.running, {
        training: true,
        momentum,
        eps,
      }),
    ).dispose();
    expect(gpu.pool.bytesInUse).toBe(before);
  });
});
