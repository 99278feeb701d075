// What the conv2d and convTranspose2d tests share: the settings of a case-table row, and the
// check of an op's output and its gradInput, gradWeight and gradBias against a float64
// reference and finite differences of that reference.
import { expect } from 'vitest';

import type { Tensor } from '../src/autograd/tensor.ts';
import type { Gpu } from '../src/kernels/gpu.ts';
import {
  gradientValues,
  maxError,
  numericGradient,
  randomArray,
  rangeArray,
  sampledGradientError,
  tensorOf,
  weightedSum,
} from './helpers.ts';

/** One row of a convolution's case table. */
export interface ConvCase {
  batch: number;
  inChannels: number;
  outChannels: number;
  kernel: [number, number];
  stride: [number, number];
  padding: [number, number];
  height: number;
  width: number;
  bias: boolean;
  /** 'full' checks every gradient entry; 'sampled' a spread of entries (big cases). */
  gradients: 'full' | 'sampled';
  /** Inputs 0, 0.01, 0.02, ... instead of random values, so a failure is easy to read. */
  ranges?: boolean;
}

/** Every setting of the case, so a failing test names the case that broke. */
export function caseName(c: ConvCase & { outputPadding?: [number, number] }): string {
  const outputPadding = c.outputPadding ? `outputPadding=${c.outputPadding} ` : '';
  return (
    `batch=${c.batch} in=${c.inChannels} out=${c.outChannels} kernel=${c.kernel} ` +
    `stride=${c.stride} padding=${c.padding} ${outputPadding}` +
    `size=${c.height}x${c.width} bias=${c.bias}`
  );
}

/** A convolution's arguments as float64 values: what its reference takes. */
export interface ConvArguments {
  input: Float64Array; // [batch, inChannels, height, width]
  weight: Float64Array; // in the op's own layout: ConvUnderTest.weightShape
  bias: Float64Array | null; // [outChannels]
}

/** An op on one case: its GPU forward, its float64 reference and the shapes it works in. */
export interface ConvUnderTest {
  weightShape: number[];
  outputShape: number[];
  forward: (input: Tensor, weight: Tensor, bias: Tensor | null) => Tensor;
  reference: (args: ConvArguments) => Float64Array;
}

/** The op run forward and backward on one set of arguments. */
export interface ConvRun {
  args: ConvArguments;
  output: Tensor;
  /** The loss is sum(output * upstream), so upstream is its gradient at the output. */
  upstream: Float64Array;
  /** [gradInput, gradWeight, gradBias] as the op's backward rule computed them. */
  gradients: Array<Tensor | null>;
}

const argumentOrder = ['input', 'weight', 'bias'] as const;
const gradientNames = { input: 'gradInput', weight: 'gradWeight', bias: 'gradBias' } as const;

/**
 * Runs the op on the case's arguments (seeds `seed`, `seed + 1`, `seed + 2` unless the case
 * asks for ranges), checks its output against the reference, then runs its backward rule from
 * a random upstream gradient (seed `seed + 3`).
 */
export async function runConv(
  gpu: Gpu,
  c: ConvCase,
  op: ConvUnderTest,
  seed: number,
): Promise<ConvRun> {
  const inputShape = [c.batch, c.inChannels, c.height, c.width];
  const inputCount = c.batch * c.inChannels * c.height * c.width;
  const weightCount = op.weightShape.reduce((product, size) => product * size, 1);
  const args: ConvArguments = {
    input: c.ranges ? rangeArray(inputCount, 0.01) : randomArray(inputCount, seed),
    weight: c.ranges ? rangeArray(weightCount, 0.1) : randomArray(weightCount, seed + 1),
    bias: c.bias ? randomArray(c.outChannels, seed + 2) : null,
  };
  const output = op.forward(
    tensorOf(gpu, args.input, inputShape, true),
    tensorOf(gpu, args.weight, op.weightShape, true),
    args.bias ? tensorOf(gpu, args.bias, [c.outChannels], true) : null,
  );
  const expected = op.reference(args);
  expect(maxError(await output.toArray(), expected)).toBeLessThan(1e-5);

  const upstream = randomArray(expected.length, seed + 3);
  const gradients = output.creator!.backward(tensorOf(gpu, upstream, [...output.shape]));
  return { args, output, upstream, gradients };
}

/**
 * Checks the GPU gradient of sum(output * upstream) with respect to one argument against
 * central differences of the float64 reference: at every entry ('full'), or at a spread of
 * entries ('sampled') where the case is too big to probe them all.
 */
export async function expectGradientMatches(
  op: ConvUnderTest,
  run: ConvRun,
  wrt: keyof ConvArguments,
  mode: ConvCase['gradients'] = 'full',
): Promise<void> {
  const at = run.args[wrt];
  if (!at) throw new Error(`the case has no ${wrt}`);
  const loss = (x: Float64Array): number =>
    weightedSum(op.reference({ ...run.args, [wrt]: x }), run.upstream);
  const actual = await gradientValues(run.gradients[argumentOrder.indexOf(wrt)]);
  const error =
    mode === 'full'
      ? maxError(actual, numericGradient(loss, at))
      : sampledGradientError(loss, at, actual);
  expect(error, gradientNames[wrt]).toBeLessThan(2e-4);
}

/** The case-table test: output shape and values, then every gradient the case has. */
export async function expectCaseMatchesReference(
  gpu: Gpu,
  c: ConvCase,
  op: ConvUnderTest,
  seed: number,
): Promise<void> {
  const run = await runConv(gpu, c, op, seed);
  expect(run.output.shape).toEqual(op.outputShape);

  await expectGradientMatches(op, run, 'input', c.gradients);
  await expectGradientMatches(op, run, 'weight', c.gradients);
  if (c.bias) await expectGradientMatches(op, run, 'bias', c.gradients);
  else expect(run.gradients[2]).toBeNull();
}
