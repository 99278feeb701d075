// The GPU layer: WebGPU errors become thrown errors that name the op, device loss is reported.
import { describe, expect, it } from 'vitest';

import { GpuError } from '../src/errors.ts';
import { Gpu } from '../src/kernels/gpu.ts';
import { kernel } from '../src/kernels/kernel.ts';

describe('Gpu', () => {
  it('turns a validation error into a GpuError naming the op and its shapes', async () => {
    const gpu = await Gpu.open();
    const shared = gpu.pool.acquire(64, 'aliased');
    // One buffer bound as both read-only and writable storage is invalid in WebGPU.
    kernel(gpu, 'elementwise.wgsl', 'add').dispatch({
      buffers: { a: shared, b: shared, out: shared },
      params: { count: 16, alpha: 0, beta: 0 },
      workgroups: [1],
      label: 'add [16] (deliberately aliased)',
    });
    await expect(gpu.sync()).rejects.toThrow(GpuError);
    gpu.destroy();
  });

  it('names the op in the message', async () => {
    const gpu = await Gpu.open();
    const shared = gpu.pool.acquire(64, 'aliased');
    kernel(gpu, 'elementwise.wgsl', 'mul').dispatch({
      buffers: { a: shared, b: shared, out: shared },
      params: { count: 16, alpha: 0, beta: 0 },
      workgroups: [1],
      label: 'mul [16] (deliberately aliased)',
    });
    await expect(gpu.sync()).rejects.toThrow(/mul \[16\] \(deliberately aliased\)/);
    gpu.destroy();
  });

  it('rejects missing buffers and parameters before touching the GPU', async () => {
    const gpu = await Gpu.open();
    const buffer = gpu.pool.acquire(64, 'x');
    const add = kernel(gpu, 'elementwise.wgsl', 'add');
    const call = { workgroups: [1] as const, label: 'add [16]' };
    expect(() =>
      add.dispatch({ ...call, buffers: { a: buffer, b: buffer }, params: { count: 16 } }),
    ).toThrow(/parameter 'alpha' missing/);
    expect(() =>
      add.dispatch({ ...call, buffers: { a: buffer }, params: { count: 1, alpha: 0, beta: 0 } }),
    ).toThrow(/buffer '(b|out)' not given/);
    gpu.destroy();
  });

  it('reports the adapter with its features and limits', async () => {
    const gpu = await Gpu.open();
    expect(gpu.report.limits.maxStorageBufferBindingSize).toBeGreaterThan(0);
    expect(Array.isArray(gpu.report.features)).toBe(true);
    gpu.destroy();
  });
});
