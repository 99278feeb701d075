// Wrappers for the image-layout kernels: shaders/pool.wgsl (global average pooling),
// shaders/augment.wgsl (flip and shift) and shaders/onehot.wgsl (class channels). Every
// buffer is NCHW float32 and owned by the caller.
import type { Gpu, PooledBuffer } from './gpu.ts';
import { grid1d, kernel } from './kernel.ts';

const WORKGROUP_SIZE = 64;

export interface ImageShape {
  batch: number;
  channels: number;
  height: number;
  width: number;
}

/** out[n, c] = mean of input[n, c, :, :]. */
export function meanPlanes(
  gpu: Gpu,
  input: PooledBuffer,
  out: PooledBuffer,
  planes: number,
  planeSize: number,
): void {
  kernel(gpu, 'pool.wgsl', 'mean_planes').dispatch({
    buffers: { input, out },
    params: { count: planes, planeSize, inverse: 1 / planeSize },
    workgroups: grid1d(planes, WORKGROUP_SIZE),
    label: `mean_planes [${planes}x${planeSize}]`,
  });
}

/** gradInput[n, c, y, x] = gradOutput[n, c] / planeSize. */
export function meanPlanesBackward(
  gpu: Gpu,
  gradOutput: PooledBuffer,
  gradInput: PooledBuffer,
  planes: number,
  planeSize: number,
): void {
  const count = planes * planeSize;
  kernel(gpu, 'pool.wgsl', 'mean_planes_backward').dispatch({
    buffers: { gradOutput, out: gradInput },
    params: { count, planeSize, inverse: 1 / planeSize },
    workgroups: grid1d(count, WORKGROUP_SIZE),
    label: `mean_planes backward [${planes}x${planeSize}]`,
  });
}

function sizeOf(shape: ImageShape): number {
  return shape.batch * shape.channels * shape.height * shape.width;
}

function augmentParams(shape: ImageShape, background: number): Record<string, number> {
  const { channels, height, width } = shape;
  return { count: sizeOf(shape), channels, height, width, background };
}

/** `transforms` holds (flip, dx, dy) per image; see shaders/augment.wgsl. */
export function augment(
  gpu: Gpu,
  input: PooledBuffer,
  transforms: PooledBuffer,
  out: PooledBuffer,
  shape: ImageShape,
  background: number,
): void {
  const params = augmentParams(shape, background);
  kernel(gpu, 'augment.wgsl', 'augment').dispatch({
    buffers: { input, transforms, out },
    params,
    workgroups: grid1d(params.count, WORKGROUP_SIZE),
    label: `augment [${params.count}]`,
  });
}

export function augmentBackward(
  gpu: Gpu,
  transforms: PooledBuffer,
  gradOutput: PooledBuffer,
  gradInput: PooledBuffer,
  shape: ImageShape,
): void {
  const params = augmentParams(shape, 0);
  kernel(gpu, 'augment.wgsl', 'augment_backward').dispatch({
    buffers: { transforms, gradOutput, out: gradInput },
    params,
    workgroups: grid1d(params.count, WORKGROUP_SIZE),
    label: `augment backward [${params.count}]`,
  });
}

export interface OneHotShape {
  batch: number;
  channels: number;
  classes: number;
  planeSize: number;
}

/** [N, C, P] plus one-hot class channels -> [N, C + K, P]. */
export function appendOneHot(
  gpu: Gpu,
  input: PooledBuffer,
  labels: PooledBuffer,
  out: PooledBuffer,
  shape: OneHotShape,
): void {
  const { batch, channels, classes, planeSize } = shape;
  const count = batch * (channels + classes) * planeSize;
  kernel(gpu, 'onehot.wgsl', 'append_one_hot').dispatch({
    buffers: { input, labels, out },
    params: { count, channels, classes, planeSize },
    workgroups: grid1d(count, WORKGROUP_SIZE),
    label: `append_one_hot [${batch}x${channels}+${classes}x${planeSize}]`,
  });
}

export function dropOneHot(
  gpu: Gpu,
  gradOutput: PooledBuffer,
  gradInput: PooledBuffer,
  shape: OneHotShape,
): void {
  const { batch, channels, classes, planeSize } = shape;
  const count = batch * channels * planeSize;
  kernel(gpu, 'onehot.wgsl', 'drop_one_hot').dispatch({
    buffers: { gradOutput, out: gradInput },
    params: { count, channels, classes, planeSize },
    workgroups: grid1d(count, WORKGROUP_SIZE),
    label: `drop_one_hot [${batch}x${channels}+${classes}x${planeSize}]`,
  });
}
