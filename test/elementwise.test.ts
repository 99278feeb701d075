import { beforeAll, describe, expect, it } from 'vitest';

import {
  add,
  affine,
  backward,
  leakyRelu,
  mul,
  relu,
  scale,
  sigmoid,
  tanh,
} from '../src/autograd/elementwise.ts';
import { sum } from '../src/autograd/reduce.ts';
import { noGrad } from '../src/autograd/tape.ts';
import type { Tensor } from '../src/autograd/tensor.ts';
import { ShaderganError } from '../src/errors.ts';
import type { Gpu } from '../src/kernels/gpu.ts';
import {
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

interface Case {
  name: string;
  /** The op on GPU tensors, one or two inputs. */
  forward: (...inputs: Tensor[]) => Tensor;
  /** The same op on one element of each input, in float64. */
  reference: (...inputs: number[]) => number;
  arity: 1 | 2;
  /** Inputs are drawn from [-spread, spread). */
  spread: number;
}

const sigmoid64 = (x: number): number => 1 / (1 + Math.exp(-x));

const cases: Case[] = [
  { name: 'add', arity: 2, spread: 3, forward: add, reference: (a, b) => a + b },
  { name: 'mul', arity: 2, spread: 3, forward: mul, reference: (a, b) => a * b },
  {
    name: 'scale(-1.5)',
    arity: 1,
    spread: 3,
    forward: (x) => scale(x, -1.5),
    reference: (x) => -1.5 * x,
  },
  {
    name: 'affine(0.5, 2)',
    arity: 1,
    spread: 3,
    forward: (x) => affine(x, 0.5, 2),
    reference: (x) => 0.5 * x + 2,
  },
  { name: 'relu', arity: 1, spread: 3, forward: relu, reference: (x) => Math.max(x, 0) },
  {
    name: 'leakyRelu(0.2)',
    arity: 1,
    spread: 3,
    forward: (x) => leakyRelu(x, 0.2),
    reference: (x) => (x > 0 ? x : 0.2 * x),
  },
  { name: 'tanh', arity: 1, spread: 4, forward: tanh, reference: Math.tanh },
  { name: 'sigmoid', arity: 1, spread: 6, forward: sigmoid, reference: sigmoid64 },
];

const shapes = [[1], [63], [5, 13], [1000]];

/**
 * Random inputs rounded to float32 (what the GPU sees), kept 1e-3 away from 0 so that finite
 * differences never straddle the kink of relu and leaky relu.
 */
function inputValues(count: number, seed: number, spread: number): Float64Array {
  const values = randomArray(count, seed, -spread, spread).map((value) =>
    Math.abs(value) < 1e-3 ? value + 0.01 : value,
  );
  return Float64Array.from(Float32Array.from(values));
}

function applyReference(testCase: Case, inputs: Float64Array[]): Float64Array {
  return inputs[0].map((_, index) => testCase.reference(...inputs.map((input) => input[index])));
}

describe.each(cases)('$name', (testCase) => {
  describe.each(shapes)('shape [%s]', (...shape) => {
    const count = shape.reduce((product, dimension) => product * dimension, 1);
    const inputs = Array.from({ length: testCase.arity }, (_, position) =>
      inputValues(count, count * 10 + position, testCase.spread),
    );
    const upstream = randomArray(count, count + 5);

    it('forward matches float64', async () => {
      const tensors = inputs.map((values) => tensorOf(gpu, values, shape));
      const output = testCase.forward(...tensors);
      expect(output.shape).toEqual(shape);
      expect(maxError(await output.toArray(), applyReference(testCase, inputs))).toBeLessThan(2e-6);
    });

    it('backward matches central finite differences', async () => {
      const tensors = inputs.map((values) => tensorOf(gpu, values, shape, true));
      const output = testCase.forward(...tensors);
      const gradients = output.creator!.backward(tensorOf(gpu, upstream, shape));
      expect(gradients).toHaveLength(testCase.arity);

      for (let position = 0; position < testCase.arity; position += 1) {
        const expected = numericGradient((changed) => {
          const probe = inputs.map((values, other) => (other === position ? changed : values));
          return weightedSum(applyReference(testCase, probe), upstream);
        }, inputs[position]);
        const actual = await gradients[position]!.toArray();
        expect(maxError(actual, expected), `gradient of input ${position}`).toBeLessThan(1e-5);
      }
    });
  });
});

describe('saturating activations', () => {
  const extremes = [-100, -40, 100, 40, 0];

  it.each([
    ['tanh', tanh, Math.tanh],
    ['sigmoid', sigmoid, sigmoid64],
  ] as const)('%s is finite with finite gradients at +-100', async (_, op, reference) => {
    const input = tensorOf(gpu, extremes, [extremes.length], true);
    const output = op(input);
    const values = await output.toArray();
    expect(values.every(Number.isFinite)).toBe(true);
    expect(maxError(values, extremes.map(reference))).toBeLessThan(1e-6);

    const [gradInput] = output.creator!.backward(tensorOf(gpu, [1, 1, 1, 1, 1], [5]));
    const gradient = await gradInput!.toArray();
    expect(gradient.every(Number.isFinite)).toBe(true);
    // Saturated: the derivative at +-100 is 0 to float32 precision.
    expect(Math.abs(gradient[0])).toBeLessThan(1e-6);
    expect(Math.abs(gradient[2])).toBeLessThan(1e-6);
  });
});

describe('gradients on the tape', () => {
  it('accumulate when a tensor is used twice', async () => {
    const x = tensorOf(gpu, [1, -2, 3], [3], true);
    backward(sum(add(mul(x, x), x))); // d/dx (x^2 + x) = 2x + 1
    expect([...(await x.grad!.toArray())]).toEqual([3, -3, 7]);
  });

  it('accumulate over two backward() calls', async () => {
    const x = tensorOf(gpu, [1, 2], [2], true);
    backward(sum(scale(x, 3)));
    backward(sum(scale(x, 4)));
    expect([...(await x.grad!.toArray())]).toEqual([7, 7]);
  });

  it('stop at detach()', async () => {
    const x = tensorOf(gpu, [1, -2, 3], [3], true);
    backward(sum(mul(x.detach(), x))); // only the second factor is on the tape
    expect([...(await x.grad!.toArray())]).toEqual([1, -2, 3]);
  });

  it('are not recorded inside noGrad()', async () => {
    const x = tensorOf(gpu, [1, 2], [2], true);
    const y = noGrad(() => mul(x, x));
    expect(y.requiresGrad).toBe(false);
    expect(y.creator).toBeNull();
    expect([...(await y.toArray())]).toEqual([1, 4]);
    expect(() => backward(sum(y))).toThrow(ShaderganError);
  });
});

describe('repeated dispatches', () => {
  it('give the new result for new inputs of the same shape', async () => {
    const first = add(tensorOf(gpu, [1, 2, 3], [3]), tensorOf(gpu, [10, 20, 30], [3]));
    const second = add(tensorOf(gpu, [4, 5, 6], [3]), tensorOf(gpu, [40, 50, 60], [3]));
    expect([...(await second.toArray())]).toEqual([44, 55, 66]);
    expect([...(await first.toArray())]).toEqual([11, 22, 33]);
  });

  it('give the new result after new data is written into the same tensor', async () => {
    const x = tensorOf(gpu, [0, 0], [2]);
    expect([...(await tanh(x).toArray())]).toEqual([0, 0]);
    x.write(Float32Array.of(1, -1));
    expect(maxError(await tanh(x).toArray(), [Math.tanh(1), -Math.tanh(1)])).toBeLessThan(1e-6);
  });

  it('give the new result for a new parameter value', async () => {
    const x = tensorOf(gpu, [1, -1], [2]);
    expect([...(await scale(x, 2).toArray())]).toEqual([2, -2]);
    expect([...(await scale(x, 3).toArray())]).toEqual([3, -3]);
  });
});
