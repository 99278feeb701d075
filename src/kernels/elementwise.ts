// Wrappers for shaders/elementwise.wgsl. Each takes buffers of `count` floats and records one
// dispatch; the caller owns every buffer.
import type { Gpu, PooledBuffer } from './gpu.ts';
import { grid1d, kernel } from './kernel.ts';

const FILE = 'elementwise.wgsl';
const WORKGROUP_SIZE = 64;

export type BinaryOp = 'add' | 'mul';
export type UnaryOp = 'affine' | 'leaky_relu' | 'tanh_forward' | 'sigmoid_forward';
export type BackwardOp = 'leaky_relu_backward' | 'tanh_backward' | 'sigmoid_backward';

interface ElementwiseCall {
  entry: string;
  a: PooledBuffer;
  b: PooledBuffer;
  out: PooledBuffer;
  count: number;
  alpha?: number;
  beta?: number;
  label: string;
}

function run(gpu: Gpu, call: ElementwiseCall): void {
  kernel(gpu, FILE, call.entry).dispatch({
    buffers: { a: call.a, b: call.b, out: call.out },
    params: { count: call.count, alpha: call.alpha ?? 0, beta: call.beta ?? 0 },
    workgroups: grid1d(call.count, WORKGROUP_SIZE),
    label: call.label,
  });
}

export function binary(
  gpu: Gpu,
  op: BinaryOp,
  a: PooledBuffer,
  b: PooledBuffer,
  out: PooledBuffer,
  count: number,
): void {
  run(gpu, { entry: op, a, b, out, count, label: `[${count}]` });
}

/** `alpha` is the factor of affine and the negative slope of leaky_relu; `beta` the shift. */
export function unary(
  gpu: Gpu,
  op: UnaryOp,
  input: PooledBuffer,
  out: PooledBuffer,
  count: number,
  alpha = 0,
  beta = 0,
): void {
  run(gpu, { entry: op, a: input, b: input, out, count, alpha, beta, label: `[${count}]` });
}

/** `saved` is the forward input (leaky_relu) or output (tanh, sigmoid). */
export function unaryBackward(
  gpu: Gpu,
  op: BackwardOp,
  saved: PooledBuffer,
  gradOutput: PooledBuffer,
  gradInput: PooledBuffer,
  count: number,
  alpha = 0,
): void {
  run(gpu, {
    entry: op,
    a: saved,
    b: gradOutput,
    out: gradInput,
    count,
    alpha,
    label: `[${count}]`,
  });
}

export function fill(gpu: Gpu, out: PooledBuffer, count: number, value: number): void {
  const placeholder = gpu.placeholder;
  const label = `[${count}]`;
  run(gpu, { entry: 'fill', a: placeholder, b: placeholder, out, count, alpha: value, label });
}
