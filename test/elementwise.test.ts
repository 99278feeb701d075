import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { add, backward, leakyRelu, mul, scale, sigmoid, tanh } from '../src/autograd/elementwise.ts';
import { scope } from '../src/autograd/tape.ts';
import { Tensor } from '../src/autograd/tensor.ts';
import type { Gpu } from '../src/kernels/gpu.ts';
import { getGpu } from '../src/kernels/gpu.ts';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await getGpu();
});

describe('elementwise', () => {
  it('adds', async () => {
    const a = Tensor.fromArray(gpu, [1, 2, 3], [3]);
    const b = Tensor.fromArray(gpu, [10, 20, 30], [3]);
    expect([...(await add(a, b).toArray())]).toEqual([11, 22, 33]);
  });
  it('backprops through reuse', async () => {
    const x = Tensor.fromArray(gpu, [1, -2, 3], [3], true);
    const y = mul(x, x);
    const s = tanh(scale(add(y, x), 0.1));
    // sum via reshape not yet available: use single element
    const one = Tensor.fromArray(gpu, [2], [1], true);
    const z = sigmoid(mul(one, one));
    backward(z);
    console.log(await one.grad!.toArray(), await s.toArray(), leakyRelu(x, 0.2).shape);
  });
});
