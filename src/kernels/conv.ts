// 2-D convolution as im2col + one matrix product, and its two gradients. A transposed
// convolution is the same three computations in another order (see src/autograd/conv.ts), so
// everything here is phrased for an ordinary convolution:
//
//   input [batch, inChannels, inHeight, inWidth]  --conv-->  output [batch, outChannels, ...]
//   weight [outChannels, inChannels, kernelHeight, kernelWidth]
//
// In matrix form, with P = batch * outHeight * outWidth grid pixels and
// K = inChannels * kernelHeight * kernelWidth patch values:
//
//   output[outChannels, P]  = weight[outChannels, K] · cols[K, P]
//   gradCols[K, P]          = weightᵀ[K, outChannels] · gradOutput[outChannels, P]; col2im
//   gradWeight[outChannels, K] = gradOutput[outChannels, P] · colsᵀ[P, K]
import { GpuError } from '../errors.ts';
import type { Gpu, PooledBuffer } from './gpu.ts';
import { grid1d, kernel } from './kernel.ts';
import {
  channelsByPixels,
  matmulPacked,
  operand,
  paddedDepth,
  pixelsByChannels,
  rowMajor,
  transposedOf,
} from './matmul.ts';

const FILE = 'conv.wgsl';
const WORKGROUP_SIZE = 64;
const MAX_WORKGROUPS = 65535;

/** The shapes of one convolution; output sizes are given, not derived (see autograd/conv.ts). */
export interface ConvGeometry {
  batch: number;
  inChannels: number;
  inHeight: number;
  inWidth: number;
  outChannels: number;
  outHeight: number;
  outWidth: number;
  kernelHeight: number;
  kernelWidth: number;
  strideY: number;
  strideX: number;
  padY: number;
  padX: number;
}

function describe(g: ConvGeometry): string {
  return (
    `[${g.batch},${g.inChannels},${g.inHeight},${g.inWidth}]->` +
    `[${g.batch},${g.outChannels},${g.outHeight},${g.outWidth}] ` +
    `k${g.kernelHeight}x${g.kernelWidth} s${g.strideY},${g.strideX} p${g.padY},${g.padX}`
  );
}

function gridPixels(g: ConvGeometry): number {
  return g.batch * g.outHeight * g.outWidth;
}

function patchSize(g: ConvGeometry): number {
  return g.inChannels * g.kernelHeight * g.kernelWidth;
}

/** The parameters that im2col and col2im share: the image side and the window. */
function windowParams(g: ConvGeometry): Record<string, number> {
  return {
    batch: g.batch,
    channels: g.inChannels,
    height: g.inHeight,
    width: g.inWidth,
    gridHeight: g.outHeight,
    gridWidth: g.outWidth,
    kernelHeight: g.kernelHeight,
    kernelWidth: g.kernelWidth,
    strideY: g.strideY,
    strideX: g.strideX,
    padY: g.padY,
    padX: g.padX,
  };
}

/**
 * Writes the patches of `image` into a pooled buffer that the caller releases:
 * [pixels, paddedDepth(patch)] when `pixelsMajor`, else [patch, paddedDepth(pixels)], zero
 * padded, as the matmul kernel reads its operands.
 */
function im2col(
  gpu: Gpu,
  image: PooledBuffer,
  g: ConvGeometry,
  pixelsMajor: boolean,
  label: string,
): PooledBuffer {
  const pixels = gridPixels(g);
  const patch = patchSize(g);
  const paddedPixels = pixelsMajor ? pixels : paddedDepth(pixels);
  const paddedPatch = pixelsMajor ? paddedDepth(patch) : patch;
  const cols = gpu.pool.acquire(paddedPixels * paddedPatch * 4, 'im2col');
  const pixelGroups = Math.ceil(paddedPixels / WORKGROUP_SIZE);
  if (pixelGroups > MAX_WORKGROUPS || g.inChannels > MAX_WORKGROUPS) {
    // Limitation: im2col handles at most 65535 * 64 grid pixels and 65535 channels per call.
    throw new GpuError(`im2col ${label}: ${describe(g)} is too large for one dispatch`);
  }
  kernel(gpu, FILE, 'im2col').dispatch({
    buffers: { image, cols },
    params: {
      ...windowParams(g),
      colsPixelStride: pixelsMajor ? paddedPatch : 1,
      colsPatchStride: pixelsMajor ? 1 : paddedPixels,
      paddedPixels,
      paddedPatch,
    },
    workgroups: [pixelGroups, g.inChannels],
    label: `im2col ${label} ${describe(g)}`,
  });
  return cols;
}

export interface ConvForwardCall {
  input: PooledBuffer;
  weight: PooledBuffer;
  bias: PooledBuffer | null;
  output: PooledBuffer;
  geometry: ConvGeometry;
  label: string;
}

/** output = conv(input, weight) + bias. */
export function conv2dForward(gpu: Gpu, call: ConvForwardCall): void {
  const g = call.geometry;
  const cols = im2col(gpu, call.input, g, true, call.label);
  const weight = operand(gpu, call.weight, g.outChannels, patchSize(g), rowMajor(patchSize(g)), 'weight');

  matmulPacked(gpu, {
    a: weight.buffer,
    b: cols,
    rows: g.outChannels,
    columns: gridPixels(g),
    depth: patchSize(g),
    out: call.output,
    // Result row = output channel, column = (image, pixel): exactly NCHW.
    outLayout: channelsByPixels(g.outChannels, g.outHeight * g.outWidth),
    bias: call.bias ? { buffer: call.bias, along: 'rows' } : undefined,
    label: `conv forward ${call.label} ${describe(g)}`,
  });

  weight.release();
  gpu.pool.release(cols);
}

export interface ConvGradInputCall {
  gradOutput: PooledBuffer;
  weight: PooledBuffer;
  gradInput: PooledBuffer;
  /** Added per input channel; a transposed convolution's forward pass uses this. */
  bias?: PooledBuffer | null;
  geometry: ConvGeometry;
  label: string;
}

/** gradInput = col2im(weightᵀ · gradOutput) (+ bias per input channel). */
export function conv2dGradInput(gpu: Gpu, call: ConvGradInputCall): void {
  const g = call.geometry;
  const pixels = gridPixels(g);
  const patch = patchSize(g);
  const outPlane = g.outHeight * g.outWidth;
  // Both operands have the output channels as their depth.
  const weightT = operand(gpu, call.weight, patch, g.outChannels, transposedOf(patch), 'weightᵀ');
  const gradOutput = operand(
    gpu,
    call.gradOutput,
    pixels,
    g.outChannels,
    pixelsByChannels(g.outChannels, outPlane),
    'gradOutput',
  );
  const gradCols = gpu.pool.acquire(patch * pixels * 4, 'gradCols'); // [patch, pixels]
  matmulPacked(gpu, {
    a: weightT.buffer,
    b: gradOutput.buffer,
    rows: patch,
    columns: pixels,
    depth: g.outChannels,
    out: gradCols,
    label: `conv gradInput ${call.label} ${describe(g)}`,
  });
  weightT.release();
  gradOutput.release();

  kernel(gpu, FILE, 'col2im').dispatch({
    buffers: { patches: gradCols, bias: call.bias ?? gpu.placeholder, summed: call.gradInput },
    params: {
      ...windowParams(g),
      colsPixelStride: 1,
      colsPatchStride: pixels,
      hasBias: call.bias ? 1 : 0,
    },
    // One invocation per image row.
    workgroups: grid1d(g.batch * g.inChannels * g.inHeight, WORKGROUP_SIZE),
    label: `col2im ${call.label} ${describe(g)}`,
  });
  gpu.pool.release(gradCols);
}

export interface ConvGradWeightCall {
  input: PooledBuffer;
  gradOutput: PooledBuffer;
  gradWeight: PooledBuffer;
  geometry: ConvGeometry;
  label: string;
}

/** gradWeight = gradOutput · colsᵀ: the sum over every grid pixel of the whole batch. */
export function conv2dGradWeight(gpu: Gpu, call: ConvGradWeightCall): void {
  const g = call.geometry;
  const pixels = gridPixels(g);
  // Both operands have the grid pixels as their depth.
  const cols = im2col(gpu, call.input, g, false, call.label);
  const gradOutput = operand(
    gpu,
    call.gradOutput,
    g.outChannels,
    pixels,
    channelsByPixels(g.outChannels, g.outHeight * g.outWidth),
    'gradOutput',
  );
  matmulPacked(gpu, {
    a: gradOutput.buffer,
    b: cols,
    rows: g.outChannels,
    columns: patchSize(g),
    depth: pixels,
    out: call.gradWeight,
    label: `conv gradWeight ${call.label} ${describe(g)}`,
  });
  gradOutput.release();
  gpu.pool.release(cols);
}
