// The tape itself: what it records, what backward() consumes, and buffer ownership.
import { beforeAll, describe, expect, it } from 'vitest';

import { add, backward, mul, scale, tanh } from '../src/autograd/elementwise.ts';
import { formatTape, noGrad, scope, tapeLength } from '../src/autograd/tape.ts';
import { Tensor } from '../src/autograd/tensor.ts';
import type { Gpu } from '../src/kernels/gpu.ts';
import { testGpu } from './helpers.ts';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await testGpu();
});

describe('tape', () => {
  it('records ops on tensors that need gradients, and prints them', () => {
    scope(() => {
      const x = Tensor.fromArray(gpu, [1, 2], [2], true);
      x.name = 'x';
      const constant = Tensor.fromArray(gpu, [3, 4], [2]);
      const start = tapeLength();
      noGrad(() => mul(x, x));
      mul(constant, constant);
      expect(tapeLength()).toBe(start);
      tanh(scale(mul(x, constant), 0.5));
      expect(tapeLength()).toBe(start + 3);
      expect(formatTape()).toMatch(/mul\(x\[2\], t\d\[2\]\) -> t\d\[2\]/);
      expect(formatTape()).toContain('scale(');
    });
  });

  it('drops the entries a scope recorded when the scope ends', () => {
    const before = tapeLength();
    scope(() => {
      const x = Tensor.fromArray(gpu, [1], [1], true);
      mul(x, x);
    });
    expect(tapeLength()).toBe(before);
  });

  it('backward through a detached branch leaves the other branch on the tape', async () => {
    const x = Tensor.fromArray(gpu, [0.5], [1], true);
    const hidden = mul(x, x); // d(hidden)/dx = 2x = 1
    const lossA = scale(hidden.detach(), 3);
    expect(lossA.requiresGrad).toBe(false);
    const weight = Tensor.fromArray(gpu, [2], [1], true);
    backward(mul(hidden.detach(), weight)); // reaches only weight
    expect(await weight.grad!.item()).toBeCloseTo(0.25, 6);
    expect(x.grad).toBeNull();
    backward(scale(hidden, 3)); // the hidden = x*x entry is still there
    expect(await x.grad!.item()).toBeCloseTo(3, 6);
  });

  it('accumulates into .grad across two backward() calls, like PyTorch', async () => {
    const x = Tensor.fromArray(gpu, [2], [1], true);
    backward(mul(x, x));
    backward(add(x, x));
    expect(await x.grad!.item()).toBeCloseTo(4 + 2, 6);
  });
});

describe('tensor buffers', () => {
  it('returns buffers to the pool when a scope ends', () => {
    const inUse = gpu.pool.bytesInUse;
    const kept = scope(() => {
      const a = Tensor.fromArray(gpu, new Float32Array(1000), [1000]);
      const b = scale(a, 2);
      return add(a, b);
    });
    expect(gpu.pool.bytesInUse).toBeGreaterThan(inUse);
    kept.dispose();
    expect(gpu.pool.bytesInUse).toBe(inUse);
  });

  it('views share a buffer that lives until the last view is disposed', async () => {
    const a = Tensor.fromArray(gpu, [1, 2, 3, 4], [2, 2]);
    const flat = a.view([4]);
    a.dispose();
    expect(await flat.toArray()).toEqual(Float32Array.of(1, 2, 3, 4));
    flat.dispose();
    expect(() => flat.buffer).toThrow(/after dispose/);
  });

  it('reuses pooled buffers instead of allocating', () => {
    scope(() => {
      Tensor.zeros(gpu, [300]);
    });
    const allocations = gpu.pool.allocations;
    scope(() => {
      Tensor.zeros(gpu, [300]);
    });
    expect(gpu.pool.allocations).toBe(allocations);
  });

  it('rejects data that does not fill the shape', () => {
    expect(() => Tensor.fromArray(gpu, [1, 2, 3], [2, 2])).toThrow(/3 values do not fill/);
  });
});
