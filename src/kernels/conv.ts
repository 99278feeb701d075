// 2-D convolution as im2col + one matrix product, and its two gradients. A transposed
// convolution is the same three computations in another order (see src/autograd/conv.ts), so
// everything here is phrased for an ordinary convolution:
//
//   input [batch, inChannels, inHeight, inWidth]  --conv-->  output [batch, outChannels, ...]
//   weight [outChannels, inChannels, kernelHeight, kernelWidth]
//
// In matrix form, with P = batch * outHeight * outWidth grid pixels, K = inChannels *
// kernelHeight * kernelWidth patch values and cols [P, K] the patches that im2col gathers:
//
//   output [outChannels, P]      = weight [outChannels, K] · colsᵀ
//   gradCols [K, P]              = weightᵀ [K, outChannels] · gradOutput [outChannels, P]
//   gradInput                    = col2im(gradCols)
//   gradWeight [outChannels, K]  = gradOutput [outChannels, P] · cols
//
// The matmul kernel reads its second operand in place through strides (an NCHW tensor is one
// more layout to it) and packs its first, so cols and gradCols are the only other
// temporaries.
import { GpuError } from '../errors.ts';
import type { Gpu, PooledBuffer } from './gpu.ts';
import { grid1d, kernel } from './kernel.ts';
import { channelsByPixels, multiply, pixelsByChannels, rowMajor, transposedOf } from './matmul.ts';

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
 * Whether the window covers the whole unpadded image at one position (a DCGAN's first
 * transposed convolution from 1x1 noise, or a discriminator's last layer). Then the one patch
 * of each image is the image itself in NCHW order: cols [batch, C*H*W] is the image buffer,
 * and im2col and col2im have nothing to do.
 */
function isWholeImageWindow(g: ConvGeometry): boolean {
  return (
    g.outHeight === 1 &&
    g.outWidth === 1 &&
    g.padY === 0 &&
    g.padX === 0 &&
    g.kernelHeight === g.inHeight &&
    g.kernelWidth === g.inWidth
  );
}

/** cols [P, K] of an image, with `release` for when the last product that reads it is recorded. */
export interface Patches {
  cols: PooledBuffer;
  release: () => void;
}

/**
 * The patches of `image` for convolution `g`. Computations that take an `input` accept them
 * ready-made, so that two which read the same image (a transposed convolution's input and
 * weight gradients both read its output gradient) gather it once.
 */
export function patchesOf(gpu: Gpu, image: PooledBuffer, g: ConvGeometry, label: string): Patches {
  if (isWholeImageWindow(g)) return { cols: image, release: () => {} };
  const cols = im2col(gpu, image, g, label);
  return { cols, release: () => gpu.pool.release(cols) };
}

/** The caller's patches of `input` (its to release), else ones gathered here. */
function inputPatches(
  gpu: Gpu,
  call: { input: PooledBuffer; patches?: Patches; geometry: ConvGeometry; label: string },
): Patches {
  if (call.patches) return { cols: call.patches.cols, release: () => {} };
  return patchesOf(gpu, call.input, call.geometry, call.label);
}

/** Gathers the patches of `image` into a pooled buffer cols [P, K] that the caller releases. */
function im2col(gpu: Gpu, image: PooledBuffer, g: ConvGeometry, label: string): PooledBuffer {
  const pixels = gridPixels(g);
  const cols = gpu.pool.acquire(pixels * patchSize(g) * 4, 'im2col');
  const pixelGroups = Math.ceil(pixels / WORKGROUP_SIZE);
  if (pixelGroups > MAX_WORKGROUPS || g.inChannels > MAX_WORKGROUPS) {
    // Limitation: im2col handles at most 65535 * 64 grid pixels and 65535 channels per call.
    throw new GpuError(`im2col ${label}: ${describe(g)} is too large for one dispatch`);
  }
  kernel(gpu, FILE, 'im2col').dispatch({
    buffers: { image, cols },
    params: windowParams(g),
    workgroups: [pixelGroups, g.inChannels],
    label: `im2col ${label} ${describe(g)}`,
  });
  return cols;
}

export interface ConvForwardCall {
  input: PooledBuffer;
  /** patchesOf(input), when the caller has them; the caller releases them. */
  patches?: Patches;
  weight: PooledBuffer;
  bias: PooledBuffer | null;
  output: PooledBuffer;
  geometry: ConvGeometry;
  label: string;
}

/** output = conv(input, weight) + bias. */
export function conv2dForward(gpu: Gpu, call: ConvForwardCall): void {
  const g = call.geometry;
  const patch = patchSize(g);
  const { cols, release } = inputPatches(gpu, call);
  multiply(gpu, {
    a: { buffer: call.weight, layout: rowMajor(patch) },
    b: { buffer: cols, layout: rowMajor(patch) },
    rows: g.outChannels,
    columns: gridPixels(g),
    depth: patch,
    out: call.output,
    // Result row = output channel, column = (image, pixel): exactly NCHW.
    outLayout: channelsByPixels(g.outChannels, g.outHeight * g.outWidth),
    bias: call.bias ? { buffer: call.bias, along: 'rows' } : undefined,
    label: `conv forward ${call.label} ${describe(g)}`,
  });
  release();
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
  // gradCols [pixels, patch] is gradInput itself for a whole-image window (see patchesOf);
  // a bias per input channel still needs col2im's pass.
  const direct = isWholeImageWindow(g) && !call.bias;
  const gradCols = direct ? call.gradInput : gpu.pool.acquire(pixels * patch * 4, 'gradCols');
  multiply(gpu, {
    a: { buffer: call.weight, layout: transposedOf(patch) },
    b: { buffer: call.gradOutput, layout: pixelsByChannels(g.outChannels, outPlane) },
    rows: patch,
    columns: pixels,
    depth: g.outChannels,
    out: gradCols,
    // Written as [pixels, patch], the layout col2im reads.
    outLayout: transposedOf(patch),
    label: `conv gradInput ${call.label} ${describe(g)}`,
  });
  if (direct) return;

  kernel(gpu, FILE, 'col2im').dispatch({
    buffers: { patches: gradCols, bias: call.bias ?? gpu.placeholder, summed: call.gradInput },
    params: { ...windowParams(g), hasBias: call.bias ? 1 : 0 },
    // One invocation per image row.
    workgroups: grid1d(g.batch * g.inChannels * g.inHeight, WORKGROUP_SIZE),
    label: `col2im ${call.label} ${describe(g)}`,
  });
  gpu.pool.release(gradCols);
}

export interface ConvGradWeightCall {
  input: PooledBuffer;
  /** patchesOf(input), when the caller has them; the caller releases them. */
  patches?: Patches;
  gradOutput: PooledBuffer;
  gradWeight: PooledBuffer;
  geometry: ConvGeometry;
  label: string;
}

/** gradWeight = gradOutput · cols: a sum over every grid pixel of the whole batch. */
export function conv2dGradWeight(gpu: Gpu, call: ConvGradWeightCall): void {
  const g = call.geometry;
  const patch = patchSize(g);
  const outPlane = g.outHeight * g.outWidth;
  const { cols, release } = inputPatches(gpu, call);
  multiply(gpu, {
    a: { buffer: call.gradOutput, layout: channelsByPixels(g.outChannels, outPlane) },
    b: { buffer: cols, layout: transposedOf(patch) },
    rows: g.outChannels,
    columns: patch,
    depth: gridPixels(g),
    out: call.gradWeight,
    label: `conv gradWeight ${call.label} ${describe(g)}`,
  });
  release();
}
