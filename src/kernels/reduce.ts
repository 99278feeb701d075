// Wrappers for shaders/reduce.wgsl: the sum of a whole buffer in two dispatches, and the
// broadcast that is its backward rule. Other kernels that produce per-invocation partial sums
// (the loss, for one) finish them with `finishSum`.
import type { Gpu, PooledBuffer } from './gpu.ts';
import { grid1d, kernel } from './kernel.ts';

const FILE = 'reduce.wgsl';
const WORKGROUP_SIZE = 64;

/** Enough partial sums to keep every lane busy, few enough for one invocation to add them. */
const MAX_PARTIALS = 1024;
/** Below this many elements per partial, a second dispatch costs more than it saves. */
const MIN_ELEMENTS_PER_PARTIAL = 32;

/** How many partial sums the first stage of a reduction over `count` elements produces. */
export function partialCountFor(count: number): number {
  return Math.max(1, Math.min(MAX_PARTIALS, Math.ceil(count / MIN_ELEMENTS_PER_PARTIAL)));
}

/** output[0] = factor * (sum of the first `count` values of `input`). */
export function sumToScalar(
  gpu: Gpu,
  input: PooledBuffer,
  output: PooledBuffer,
  count: number,
  factor: number,
  label = `sum [${count}]`,
): void {
  const partialCount = partialCountFor(count);
  const partials = gpu.pool.acquire(partialCount * 4, 'sum partials');
  kernel(gpu, FILE, 'sum_partials').dispatch({
    buffers: { input, partialsOut: partials },
    params: { count, partialCount, factor },
    workgroups: grid1d(partialCount, WORKGROUP_SIZE),
    label: `${label} partials`,
  });
  finishSum(gpu, partials, output, partialCount, factor, label);
  // Released while the dispatches that use it are only recorded: queue order keeps it safe.
  gpu.pool.release(partials);
}

/** output[0] = factor * (sum of the first `partialCount` values of `partials`). */
export function finishSum(
  gpu: Gpu,
  partials: PooledBuffer,
  output: PooledBuffer,
  partialCount: number,
  factor: number,
  label: string,
): void {
  kernel(gpu, FILE, 'sum_finalize').dispatch({
    buffers: { partials, output },
    params: { count: partialCount, partialCount, factor },
    workgroups: [1],
    label: `${label} finalize`,
  });
}

/** output[i] = factor * scalar[0] for the first `count` elements. */
export function broadcastScalar(
  gpu: Gpu,
  scalar: PooledBuffer,
  output: PooledBuffer,
  count: number,
  factor: number,
): void {
  kernel(gpu, FILE, 'broadcast_scalar').dispatch({
    buffers: { scalar, output },
    params: { count, partialCount: 0, factor },
    workgroups: grid1d(count, WORKGROUP_SIZE),
    label: `broadcast [${count}]`,
  });
}
