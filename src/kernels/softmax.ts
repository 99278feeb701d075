// Wrappers for shaders/softmax.wgsl: softmax cross-entropy over the rows of a logits matrix
// with one u32 class label per row.
import type { Gpu, PooledBuffer } from './gpu.ts';
import { grid1d, kernel } from './kernel.ts';
import { finishSum, partialCountFor } from './reduce.ts';

const FILE = 'softmax.wgsl';
const WORKGROUP_SIZE = 64;

export interface CrossEntropyShape {
  rows: number;
  classes: number;
}

function paramsOf({ rows, classes }: CrossEntropyShape): Record<string, number> {
  return { rows, classes, partialCount: partialCountFor(rows), inverseRows: 1 / rows };
}

/**
 * loss[0] = mean over rows of logSumExp(logits[row]) - logits[row, labels[row]]; each row's
 * log-sum-exp goes to `logSumExp` ([rows]) for the backward pass.
 */
export function crossEntropyForward(
  gpu: Gpu,
  buffers: {
    logits: PooledBuffer;
    labels: PooledBuffer;
    logSumExp: PooledBuffer;
    loss: PooledBuffer;
  },
  shape: CrossEntropyShape,
): void {
  const label = `cross_entropy [${shape.rows},${shape.classes}]`;
  const params = paramsOf(shape);
  const partials = gpu.pool.acquire(params.partialCount * 4, 'cross entropy partials');
  kernel(gpu, FILE, 'cross_entropy_partials').dispatch({
    buffers: {
      logits: buffers.logits,
      labels: buffers.labels,
      logSumExpOut: buffers.logSumExp,
      partialsOut: partials,
    },
    params,
    workgroups: grid1d(params.partialCount, WORKGROUP_SIZE),
    label: `${label} partials`,
  });
  finishSum(gpu, partials, buffers.loss, params.partialCount, params.inverseRows, label);
  // Released while the dispatches that use it are only recorded: queue order keeps it safe.
  gpu.pool.release(partials);
}

/** gradLogits = gradLoss[0] * (softmax(logits) - onehot(labels)) / rows. */
export function crossEntropyBackward(
  gpu: Gpu,
  buffers: {
    logits: PooledBuffer;
    labels: PooledBuffer;
    logSumExp: PooledBuffer;
    gradLoss: PooledBuffer;
    gradLogits: PooledBuffer;
  },
  shape: CrossEntropyShape,
): void {
  kernel(gpu, FILE, 'cross_entropy_backward').dispatch({
    buffers,
    params: paramsOf(shape),
    workgroups: grid1d(shape.rows * shape.classes, WORKGROUP_SIZE),
    label: `cross_entropy backward [${shape.rows},${shape.classes}]`,
  });
}
