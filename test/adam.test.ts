import { beforeAll, describe, expect, it } from 'vitest';

import { Tensor } from '../src/autograd/tensor.ts';
import { ShaderganError } from '../src/errors.ts';
import { adamUpdate, type AdamStepSettings } from '../src/kernels/adam.ts';
import type { Gpu } from '../src/kernels/gpu.ts';
import { maxError, randomArray, tensorOf, testGpu } from './helpers.ts';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await testGpu();
});

interface State {
  param: Float64Array;
  m: Float64Array;
  v: Float64Array;
}

/** torch.optim.Adam's single-tensor update, in float64. */
function referenceStep(state: State, grad: Float64Array, settings: AdamStepSettings): void {
  const { lr, beta1, beta2, eps, step, weightDecay = 0 } = settings;
  const stepSize = lr / (1 - beta1 ** step);
  const biasCorrection2Sqrt = Math.sqrt(1 - beta2 ** step);
  for (let index = 0; index < grad.length; index += 1) {
    const gradient = grad[index] + weightDecay * state.param[index];
    state.m[index] = beta1 * state.m[index] + (1 - beta1) * gradient;
    state.v[index] = beta2 * state.v[index] + (1 - beta2) * gradient * gradient;
    const denominator = Math.sqrt(state.v[index]) / biasCorrection2Sqrt + eps;
    state.param[index] -= (stepSize * state.m[index]) / denominator;
  }
}

interface Case {
  name: string;
  count: number;
  settings: Omit<AdamStepSettings, 'step'>;
}

const cases: Case[] = [
  { name: 'one value, DCGAN settings', count: 1, settings: dcgan() },
  { name: '63 values, DCGAN settings', count: 63, settings: dcgan() },
  { name: '1027 values, PyTorch defaults', count: 1027, settings: defaults() },
  { name: '200 values, weight decay', count: 200, settings: { ...defaults(), weightDecay: 0.01 } },
  { name: '65 values, large eps', count: 65, settings: { ...dcgan(), eps: 0.1 } },
];

function dcgan(): Omit<AdamStepSettings, 'step'> {
  return { lr: 2e-4, beta1: 0.5, beta2: 0.999, eps: 1e-8 };
}

function defaults(): Omit<AdamStepSettings, 'step'> {
  return { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8 };
}

describe.each(cases)('adamUpdate: $name', ({ count, settings }) => {
  it('follows the float64 reference for six steps', async () => {
    const initial = randomArray(count, count, -1, 1);
    const state: State = {
      param: Float64Array.from(Float32Array.from(initial)),
      m: new Float64Array(count),
      v: new Float64Array(count),
    };
    const param = tensorOf(gpu, state.param, [count]);
    const m = Tensor.zeros(gpu, [count]);
    const v = Tensor.zeros(gpu, [count]);

    for (let step = 1; step <= 6; step += 1) {
      // Gradients of changing sign and size, including some near 0.
      const grad = Float64Array.from(
        Float32Array.from(randomArray(count, 100 * count + step, -2, 2).map((g) => g ** 3)),
      );
      const gradTensor = tensorOf(gpu, grad, [count]);
      adamUpdate(
        gpu,
        { param: param.buffer, grad: gradTensor.buffer, m: m.buffer, v: v.buffer },
        count,
        { ...settings, step },
      );
      referenceStep(state, grad, { ...settings, step });
      gradTensor.dispose();
    }

    // Compare how far each parameter travelled, in units of the learning rate: that is what
    // Adam computes, and the parameter's own size would only hide errors in it.
    const travelled = (values: ArrayLike<number>): number[] =>
      Array.from(values, (value, index) => (value - Math.fround(initial[index])) / settings.lr);
    expect(maxError(travelled(await param.toArray()), travelled(state.param))).toBeLessThan(2e-3);
    expect(maxError(await m.toArray(), state.m)).toBeLessThan(1e-5);
    expect(maxError(await v.toArray(), state.v)).toBeLessThan(1e-5);
    for (const tensor of [param, m, v]) tensor.dispose();
  });
});

describe('adamUpdate', () => {
  it('moves every parameter by lr against the gradient sign on the first step', async () => {
    // On step 1, m / (1 - beta1) = g and sqrt(v / (1 - beta2)) = |g|: the step is lr * sign(g).
    const param = tensorOf(gpu, [1, 1, 1, 1], [4]);
    const grad = tensorOf(gpu, [3, -0.5, 1e-3, -40], [4]);
    const m = Tensor.zeros(gpu, [4]);
    const v = Tensor.zeros(gpu, [4]);
    adamUpdate(gpu, { param: param.buffer, grad: grad.buffer, m: m.buffer, v: v.buffer }, 4, {
      lr: 0.1,
      beta1: 0.9,
      beta2: 0.999,
      eps: 1e-8,
      step: 1,
    });
    expect(maxError(await param.toArray(), [0.9, 1.1, 0.9, 1.1])).toBeLessThan(1e-5);
  });

  it('updates several tensors with the same settings and then with new ones', async () => {
    // The settings buffer is shared: updates recorded before a change must keep the old values.
    const tensors = [0, 1].map(() => ({
      param: tensorOf(gpu, [0], [1]),
      grad: tensorOf(gpu, [1], [1]),
      m: Tensor.zeros(gpu, [1]),
      v: Tensor.zeros(gpu, [1]),
    }));
    const buffersOf = (index: number) => ({
      param: tensors[index].param.buffer,
      grad: tensors[index].grad.buffer,
      m: tensors[index].m.buffer,
      v: tensors[index].v.buffer,
    });
    const settings = { lr: 0.5, beta1: 0.9, beta2: 0.999, eps: 1e-8 };
    adamUpdate(gpu, buffersOf(0), 1, { ...settings, step: 1 });
    adamUpdate(gpu, buffersOf(1), 1, { ...settings, lr: 0.25, step: 1 });
    expect(await tensors[0].param.item()).toBeCloseTo(-0.5, 6);
    expect(await tensors[1].param.item()).toBeCloseTo(-0.25, 6);
  });

  it('rejects a bad step, bad settings and aliased buffers', () => {
    const a = Tensor.zeros(gpu, [4]);
    const b = Tensor.zeros(gpu, [4]);
    const c = Tensor.zeros(gpu, [4]);
    const d = Tensor.zeros(gpu, [4]);
    const buffers = { param: a.buffer, grad: b.buffer, m: c.buffer, v: d.buffer };
    const settings = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, step: 1 };
    expect(() => adamUpdate(gpu, buffers, 4, { ...settings, step: 0 })).toThrow(ShaderganError);
    expect(() => adamUpdate(gpu, buffers, 4, { ...settings, beta1: 1 })).toThrow(/beta1/);
    expect(() => adamUpdate(gpu, { ...buffers, m: a.buffer }, 4, settings)).toThrow(/different/);
    expect(() => adamUpdate(gpu, buffers, 1000, settings)).toThrow(/fewer than 1000/);
  });
});
