// Wrappers for shaders/batchnorm.wgsl. Forward records three dispatches in training (slice
// statistics, per-channel statistics with the running update, normalisation) and two in
// evaluation; backward records three. Nothing is read back to the CPU.
import type { Gpu, PooledBuffer } from './gpu.ts';
import { grid1d, kernel } from './kernel.ts';

const FILE = 'batchnorm.wgsl';
const WORKGROUP_SIZE = 64;

/** Slices per channel at most: the finalize kernel adds them one after another. */
const MAX_SPLITS = 64;
/** Values per slice at least: shorter slices would make the partials cost more than the data. */
const MIN_SLICE_LENGTH = 64;

export interface BatchNormShape {
  batch: number;
  channels: number;
  /** height * width */
  spatial: number;
}

export interface BatchNormForwardBuffers {
  input: PooledBuffer;
  weight: PooledBuffer;
  bias: PooledBuffer;
  runningMean: PooledBuffer;
  runningVar: PooledBuffer;
  /** Receives [2, channels]: the mean and inverse standard deviation used, for backward. */
  stats: PooledBuffer;
  output: PooledBuffer;
}

export interface BatchNormBackwardBuffers {
  input: PooledBuffer;
  gradOutput: PooledBuffer;
  weight: PooledBuffer;
  /** What the forward pass wrote to its `stats`. */
  stats: PooledBuffer;
  gradInput: PooledBuffer;
  gradWeight: PooledBuffer;
  gradBias: PooledBuffer;
}

export interface BatchNormSettings {
  /** Batch statistics and a running update (true), or the running statistics (false). */
  training: boolean;
  momentum: number;
  eps: number;
}

interface Layout {
  params: Record<string, number>;
  /** (channel, slice) pairs: the invocations of the partial kernels. */
  partialCount: number;
  elementCount: number;
  label: string;
}

function layout(shape: BatchNormShape, settings: BatchNormSettings, op: string): Layout {
  const { batch, channels, spatial } = shape;
  const perChannel = batch * spatial;
  const sliceLength = Math.max(MIN_SLICE_LENGTH, Math.ceil(perChannel / MAX_SPLITS));
  const splits = Math.ceil(perChannel / sliceLength);
  return {
    params: {
      batch,
      channels,
      spatial,
      splits,
      sliceLength,
      momentum: settings.momentum,
      eps: settings.eps,
      training: settings.training ? 1 : 0,
    },
    partialCount: channels * splits,
    elementCount: batch * channels * spatial,
    label: `${op} [${batch},${channels},${spatial}] ${settings.training ? 'training' : 'eval'}`,
  };
}

export function batchNormForward(
  gpu: Gpu,
  buffers: BatchNormForwardBuffers,
  shape: BatchNormShape,
  settings: BatchNormSettings,
): void {
  const { params, partialCount, elementCount, label } = layout(shape, settings, 'batch_norm');
  const { input, runningMean, runningVar, stats } = buffers;

  if (settings.training) {
    const partials = gpu.pool.acquire(partialCount * 2 * 4, 'batch norm partials');
    kernel(gpu, FILE, 'stats_partials').dispatch({
      buffers: { input, partialsOut: partials },
      params,
      workgroups: grid1d(partialCount, WORKGROUP_SIZE),
      label: `${label} statistics`,
    });
    kernel(gpu, FILE, 'stats_finalize').dispatch({
      buffers: { partials, statsOut: stats, runningMean, runningVar },
      params,
      workgroups: grid1d(shape.channels, WORKGROUP_SIZE),
      label: `${label} running update`,
    });
    gpu.pool.release(partials);
  } else {
    kernel(gpu, FILE, 'stats_from_running').dispatch({
      buffers: { statsOut: stats, runningMean, runningVar },
      params,
      workgroups: grid1d(shape.channels, WORKGROUP_SIZE),
      label: `${label} statistics`,
    });
  }

  kernel(gpu, FILE, 'normalize_forward').dispatch({
    buffers: { input, stats, weight: buffers.weight, bias: buffers.bias, output: buffers.output },
    params,
    workgroups: grid1d(elementCount, WORKGROUP_SIZE),
    label,
  });
}

/** Gradients of input, weight and bias; `training` says which statistics the forward used. */
export function batchNormBackward(
  gpu: Gpu,
  buffers: BatchNormBackwardBuffers,
  shape: BatchNormShape,
  settings: BatchNormSettings,
): void {
  const { params, partialCount, elementCount, label } = layout(
    shape,
    settings,
    'batch_norm backward',
  );
  const { input, gradOutput, weight, stats, gradWeight, gradBias } = buffers;

  const partials = gpu.pool.acquire(partialCount * 2 * 4, 'batch norm gradient partials');
  kernel(gpu, FILE, 'grad_partials').dispatch({
    buffers: { input, gradOutput, stats, partialsOut: partials },
    params,
    workgroups: grid1d(partialCount, WORKGROUP_SIZE),
    label: `${label} partials`,
  });
  kernel(gpu, FILE, 'grad_finalize').dispatch({
    buffers: { partials, gradWeight, gradBias },
    params,
    workgroups: grid1d(shape.channels, WORKGROUP_SIZE),
    label: `${label} weight and bias`,
  });
  gpu.pool.release(partials);

  kernel(gpu, FILE, 'grad_input').dispatch({
    buffers: {
      input,
      gradOutput,
      weight,
      stats,
      sumGrad: gradBias,
      sumGradNormalised: gradWeight,
      gradInput: buffers.gradInput,
    },
    params,
    workgroups: grid1d(elementCount, WORKGROUP_SIZE),
    label: `${label} input`,
  });
}
