// Wrappers for shaders/loss.wgsl. The target is either a buffer of `count` values or one number
// for every element; a number costs no buffer at all.
import type { Gpu, PooledBuffer } from './gpu.ts';
import { grid1d, kernel } from './kernel.ts';
import { finishSum, partialCountFor } from './reduce.ts';

const FILE = 'loss.wgsl';
const WORKGROUP_SIZE = 64;

export type BceTarget = number | PooledBuffer;

interface LossCall {
  targets: PooledBuffer;
  params: {
    count: number;
    partialCount: number;
    inverseCount: number;
    scalarTarget: number;
    targetIsTensor: number;
  };
}

function lossCall(gpu: Gpu, count: number, target: BceTarget): LossCall {
  const shared = { count, partialCount: partialCountFor(count), inverseCount: 1 / count };
  if (typeof target === 'number') {
    return {
      targets: gpu.placeholder,
      params: { ...shared, scalarTarget: target, targetIsTensor: 0 },
    };
  }
  return { targets: target, params: { ...shared, scalarTarget: 0, targetIsTensor: 1 } };
}

/** loss[0] = mean over `count` elements of the binary cross-entropy of sigmoid(logits). */
export function bceWithLogitsForward(
  gpu: Gpu,
  logits: PooledBuffer,
  target: BceTarget,
  loss: PooledBuffer,
  count: number,
): void {
  const label = `bce_with_logits [${count}]`;
  const { targets, params } = lossCall(gpu, count, target);
  const partials = gpu.pool.acquire(params.partialCount * 4, 'bce partials');
  kernel(gpu, FILE, 'bce_partials').dispatch({
    buffers: { logits, targets, partialsOut: partials },
    params,
    workgroups: grid1d(params.partialCount, WORKGROUP_SIZE),
    label: `${label} partials`,
  });
  finishSum(gpu, partials, loss, params.partialCount, params.inverseCount, label);
  gpu.pool.release(partials);
}

/** gradLogits = gradLoss[0] * (sigmoid(logits) - target) / count. */
export function bceWithLogitsBackwardLogits(
  gpu: Gpu,
  logits: PooledBuffer,
  target: BceTarget,
  gradLoss: PooledBuffer,
  gradLogits: PooledBuffer,
  count: number,
): void {
  const { targets, params } = lossCall(gpu, count, target);
  kernel(gpu, FILE, 'bce_backward_logits').dispatch({
    buffers: { logits, targets, gradLoss, gradLogits },
    params,
    workgroups: grid1d(count, WORKGROUP_SIZE),
    label: `bce_with_logits backward [${count}]`,
  });
}

/** gradTargets = -gradLoss[0] * logits / count, for a target that itself needs a gradient. */
export function bceWithLogitsBackwardTargets(
  gpu: Gpu,
  logits: PooledBuffer,
  gradLoss: PooledBuffer,
  gradTargets: PooledBuffer,
  count: number,
): void {
  const { params } = lossCall(gpu, count, 0);
  kernel(gpu, FILE, 'bce_backward_targets').dispatch({
    buffers: { logits, gradLoss, gradTargets },
    params,
    workgroups: grid1d(count, WORKGROUP_SIZE),
    label: `bce_with_logits target backward [${count}]`,
  });
}
