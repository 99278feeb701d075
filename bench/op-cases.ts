// The single-op cases: matrix products, the three computations of each DCGAN convolution and
// transposed convolution, and batch norm. Each case builds the same inputs for both engines
// and a runner per engine that records the op, waits for it, and hands back the outputs in
// shadergan's layouts for the cross-check.
import { Tensor } from '../src/autograd/tensor.ts';
import { batchNormBackward, batchNormForward } from '../src/kernels/batchnorm.ts';
import {
  conv2dForward,
  conv2dGradInput,
  conv2dGradWeight,
  type ConvGeometry,
} from '../src/kernels/conv.ts';
import type { Gpu } from '../src/kernels/gpu.ts';
import { matmul } from '../src/kernels/matmul.ts';
import { SeededRandom } from '../src/train/random.ts';
import { HWIO_TO_OIHW, NCHW_TO_NHWC, NHWC_TO_NCHW, OIHW_TO_HWIO, permute } from './layouts.ts';
import { finishTfjs, type Tf, type TfBackendName, type TfTensor } from './tfjs.ts';

type Tensor4D = import('@tensorflow/tfjs').Tensor4D;

/** One engine's prepared case. */
export interface Runner {
  /** Records (or, on the synchronous tfjs backends, computes) the op once. */
  run(): void;
  /** Resolves once the device has finished everything recorded so far. */
  finish(): Promise<void>;
  /** The results of the last run, in shadergan's layouts, in a fixed order. */
  outputs(): Promise<Float32Array[]>;
  dispose(): void;
}

export interface OpCase {
  name: string;
  group: string;
  /** Floating-point operations of one run; 0 where a rate means little (batch norm). */
  flops: number;
  shadergan(gpu: Gpu): Runner;
  /** The tfjs kernels the case needs: a backend without one shows "not supported". */
  tfjsKernels: readonly string[];
  tfjs(tf: Tf, backend: TfBackendName): Runner;
}

interface Input {
  shape: number[];
  data: Float32Array;
}

function randomInput(shape: number[], seed: number): Input {
  const random = new SeededRandom(seed);
  const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < data.length; i += 1) data[i] = random.normal();
  return { shape, data };
}

let runnerCount = 0;

function ourRunner(
  gpu: Gpu,
  inputs: Input[],
  outputShapes: number[][],
  record: (inputs: Tensor[], outputs: Tensor[]) => void,
): Runner {
  const tensors = inputs.map(({ data, shape }) => Tensor.fromArray(gpu, data, shape));
  const outputs = outputShapes.map((shape) => Tensor.empty(gpu, shape, 'bench output'));
  runnerCount += 1;
  const waitKey = `bench runner ${runnerCount}`;
  return {
    run: () => record(tensors, outputs),
    // Recurring, so the wait sleeps through most of the expected time instead of polling.
    finish: () => gpu.sync(waitKey),
    outputs: () => Promise.all(outputs.map((tensor) => tensor.toArray())),
    dispose: () => [...tensors, ...outputs].forEach((tensor) => tensor.dispose()),
  };
}

/** `inputs` are tfjs tensors made by `makeInputs`; `compute` returns outputs already in our layouts' axis order after `convert`. */
function tfjsRunner(
  tf: Tf,
  backend: TfBackendName,
  makeInputs: () => TfTensor[],
  compute: (inputs: TfTensor[]) => TfTensor[],
  convert: (index: number, data: Float32Array, shape: number[]) => Float32Array,
): Runner {
  const inputs = makeInputs();
  let outputs: TfTensor[] = [];
  runnerCount += 1;
  const waitKey = `tfjs runner ${runnerCount}`;
  return {
    run: () => {
      outputs.forEach((tensor) => tensor.dispose());
      outputs = compute(inputs);
    },
    finish: () => finishTfjs(tf, backend, waitKey),
    outputs: async () => {
      const arrays = await Promise.all(outputs.map((tensor) => tensor.data<'float32'>()));
      return arrays.map((data, index) => convert(index, data, outputs[index].shape));
    },
    dispose: () => [...inputs, ...outputs].forEach((tensor) => tensor.dispose()),
  };
}

function tfTensor(tf: Tf, input: Input, order?: readonly number[]): TfTensor {
  const { data, shape } = order ? permute(input.data, input.shape, order) : input;
  return tf.tensor(data, shape, 'float32');
}

// ---------------------------------------------------------------------------- matmul

export function matmulCase(m: number, k: number, n: number): OpCase {
  const a = randomInput([m, k], 1);
  const b = randomInput([k, n], 2);
  return {
    name: `matmul ${m}x${k} · ${k}x${n}`,
    group: 'matmul',
    flops: 2 * m * n * k,
    shadergan: (gpu) =>
      ourRunner(gpu, [a, b], [[m, n]], ([ta, tb], [out]) =>
        matmul(gpu, { a: ta.buffer, b: tb.buffer, out: out.buffer, m, n, k, label: 'bench' }),
      ),
    tfjsKernels: ['BatchMatMul'],
    tfjs: (tf, backend) =>
      tfjsRunner(
        tf,
        backend,
        () => [tfTensor(tf, a), tfTensor(tf, b)],
        ([ta, tb]) => [tf.matMul(ta, tb)],
        (_, data) => data,
      ),
  };
}

// ---------------------------------------------------------------------------- convolutions

/** An ordinary convolution with square images and kernels, in DCGAN terms. */
export interface ConvSpec {
  batch: number;
  inChannels: number;
  inSize: number;
  outChannels: number;
  kernel: number;
  stride: number;
  padding: number;
}

function geometryOf(spec: ConvSpec): ConvGeometry {
  const outSize = Math.floor((spec.inSize + 2 * spec.padding - spec.kernel) / spec.stride) + 1;
  return {
    batch: spec.batch,
    inChannels: spec.inChannels,
    inHeight: spec.inSize,
    inWidth: spec.inSize,
    outChannels: spec.outChannels,
    outHeight: outSize,
    outWidth: outSize,
    kernelHeight: spec.kernel,
    kernelWidth: spec.kernel,
    strideY: spec.stride,
    strideX: spec.stride,
    padY: spec.padding,
    padX: spec.padding,
  };
}

/** The three computations of an ordinary convolution; see src/kernels/conv.ts. */
type Computation = 'forward' | 'gradInput' | 'gradWeight';

const TFJS_KERNEL: Record<Computation, string> = {
  forward: 'Conv2D',
  gradInput: 'Conv2DBackpropInput',
  gradWeight: 'Conv2DBackpropFilter',
};

/**
 * A transposed convolution is the backward pass of the ordinary convolution it stands for
 * (src/autograd/conv.ts): its forward is that convolution's gradInput, its input gradient is
 * that convolution's forward, and its filter gradient is the same filter gradient. So every
 * case below is one computation of an ordinary convolution, named the way a user knows it.
 */
function convolutionCase(
  name: string,
  group: string,
  spec: ConvSpec,
  computation: Computation,
): OpCase {
  const g = geometryOf(spec);
  const imageShape = [g.batch, g.inChannels, g.inHeight, g.inWidth];
  const gridShape = [g.batch, g.outChannels, g.outHeight, g.outWidth];
  const weightShape = [g.outChannels, g.inChannels, g.kernelHeight, g.kernelWidth];
  const image = randomInput(imageShape, 11);
  const grid = randomInput(gridShape, 12);
  const weight = randomInput(weightShape, 13);
  const flops =
    2 *
    g.batch *
    g.outChannels *
    g.outHeight *
    g.outWidth *
    g.inChannels *
    g.kernelHeight *
    g.kernelWidth;
  const stride: [number, number] = [g.strideY, g.strideX];
  const pad = spec.padding;
  const label = 'bench';

  const ours = (gpu: Gpu): Runner => {
    switch (computation) {
      case 'forward':
        return ourRunner(gpu, [image, weight], [gridShape], ([input, w], [output]) =>
          conv2dForward(gpu, {
            input: input.buffer,
            weight: w.buffer,
            bias: null,
            output: output.buffer,
            geometry: g,
            label,
          }),
        );
      case 'gradInput':
        return ourRunner(gpu, [grid, weight], [imageShape], ([gradOutput, w], [gradInput]) =>
          conv2dGradInput(gpu, {
            gradOutput: gradOutput.buffer,
            weight: w.buffer,
            gradInput: gradInput.buffer,
            geometry: g,
            label,
          }),
        );
      case 'gradWeight':
        return ourRunner(gpu, [image, grid], [weightShape], ([input, gradOutput], [gradWeight]) =>
          conv2dGradWeight(gpu, {
            input: input.buffer,
            gradOutput: gradOutput.buffer,
            gradWeight: gradWeight.buffer,
            geometry: g,
            label,
          }),
        );
    }
  };

  const theirs = (tf: Tf, backend: TfBackendName): Runner => {
    const as4d = (input: Input, order: readonly number[]) => tfTensor(tf, input, order) as Tensor4D;
    const toNchw = (_: number, data: Float32Array, shape: number[]) =>
      permute(data, shape, NHWC_TO_NCHW).data;
    const runner = (
      inputs: [Input, readonly number[]][],
      compute: (x: Tensor4D, y: Tensor4D) => TfTensor,
      convert = toNchw,
    ) =>
      tfjsRunner(
        tf,
        backend,
        () => inputs.map(([input, order]) => as4d(input, order)),
        ([x, y]) => [compute(x as Tensor4D, y as Tensor4D)],
        convert,
      );
    switch (computation) {
      case 'forward':
        return runner(
          [
            [image, NCHW_TO_NHWC],
            [weight, OIHW_TO_HWIO],
          ],
          (x, filter) => tf.conv2d(x, filter, stride, pad),
        );
      case 'gradInput': {
        const inputShape: [number, number, number, number] = [
          g.batch,
          g.inHeight,
          g.inWidth,
          g.inChannels,
        ];
        return runner(
          [
            [grid, NCHW_TO_NHWC],
            [weight, OIHW_TO_HWIO],
          ],
          (dy, filter) => tf.conv2dTranspose(dy, filter, inputShape, stride, pad),
        );
      }
      case 'gradWeight': {
        // tfjs has no public op for the filter gradient alone; its kernel is called directly.
        const attributes = {
          strides: stride,
          pad,
          dataFormat: 'NHWC',
          filterShape: [g.kernelHeight, g.kernelWidth, g.inChannels, g.outChannels],
        };
        return runner(
          [
            [image, NCHW_TO_NHWC],
            [grid, NCHW_TO_NHWC],
          ],
          (x, dy) =>
            tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, attributes) as TfTensor,
          (_, data, shape) => permute(data, shape, HWIO_TO_OIHW).data,
        );
      }
    }
  };

  return {
    name,
    group,
    flops,
    shadergan: ours,
    tfjsKernels: [TFJS_KERNEL[computation]],
    tfjs: theirs,
  };
}

function describeConv(spec: ConvSpec): string {
  const g = geometryOf(spec);
  return (
    `${g.inHeight}x${g.inWidth}x${g.inChannels}->${g.outHeight}x${g.outWidth}x${g.outChannels} ` +
    `k${spec.kernel} s${spec.stride}`
  );
}

/** conv2d forward, input gradient and filter gradient of one layer. */
export function conv2dCases(spec: ConvSpec): OpCase[] {
  const shape = describeConv(spec);
  return [
    convolutionCase(`conv2d ${shape} forward`, 'conv2d', spec, 'forward'),
    convolutionCase(`conv2d ${shape} input grad`, 'conv2d', spec, 'gradInput'),
    convolutionCase(`conv2d ${shape} filter grad`, 'conv2d', spec, 'gradWeight'),
  ];
}

/** A transposed conv2d layer (inSize -> outSize) with its forward and both gradients. */
export interface ConvTransposeSpec {
  batch: number;
  inChannels: number;
  inSize: number;
  outChannels: number;
  outSize: number;
  kernel: number;
  stride: number;
  padding: number;
}

export function convTransposeCases(spec: ConvTransposeSpec): OpCase[] {
  // The ordinary convolution maps the transposed layer's output back to its input.
  const ordinary: ConvSpec = {
    batch: spec.batch,
    inChannels: spec.outChannels,
    inSize: spec.outSize,
    outChannels: spec.inChannels,
    kernel: spec.kernel,
    stride: spec.stride,
    padding: spec.padding,
  };
  const produced = geometryOf(ordinary).outHeight;
  if (produced !== spec.inSize) {
    throw new Error(
      `transposed conv case ${spec.inSize}->${spec.outSize}: geometry gives ${produced}`,
    );
  }
  const shape =
    `${spec.inSize}x${spec.inSize}x${spec.inChannels}->` +
    `${spec.outSize}x${spec.outSize}x${spec.outChannels} k${spec.kernel} s${spec.stride}`;
  const group = 'conv2d transposed';
  return [
    convolutionCase(`conv2d-transpose ${shape} forward`, group, ordinary, 'gradInput'),
    convolutionCase(`conv2d-transpose ${shape} input grad`, group, ordinary, 'forward'),
    convolutionCase(`conv2d-transpose ${shape} filter grad`, group, ordinary, 'gradWeight'),
  ];
}

// ---------------------------------------------------------------------------- batch norm

const BN_EPS = 1e-5;

/**
 * Batch norm in training mode over [batch, channels, size, size]: forward alone, and forward
 * followed by backward (tfjs computes gradients with the forward pass, so that pair is what
 * both engines run). Outputs: y; or gradInput, gradWeight, gradBias.
 */
export function batchNormCases(batch: number, channels: number, size: number): OpCase[] {
  const shape = [batch, channels, size, size];
  const x = randomInput(shape, 21);
  const gradY = randomInput(shape, 22);
  const gamma = randomInput([channels], 23);
  const beta = randomInput([channels], 24);
  const settings = { training: true, momentum: 0.1, eps: BN_EPS };
  const bnShape = { batch, channels, spatial: size * size };
  const describe = `${batch}x${channels}x${size}x${size}`;

  const ours = (gpu: Gpu, withBackward: boolean): Runner => {
    const running = [Tensor.zeros(gpu, [channels]), Tensor.full(gpu, [channels], 1)];
    const stats = Tensor.empty(gpu, [2, channels], 'bench stats');
    // With backward, the forward output is an intermediate: its buffer is reused every run.
    const forwardOutput = withBackward ? Tensor.empty(gpu, shape, 'bench y') : null;
    const outputShapes = withBackward ? [shape, [channels], [channels]] : [shape];
    const runner = ourRunner(gpu, [x, gamma, beta, gradY], outputShapes, (inputs, outputs) => {
      const [input, weight, bias, gradOutput] = inputs;
      const y = forwardOutput ?? outputs[0];
      batchNormForward(
        gpu,
        {
          input: input.buffer,
          weight: weight.buffer,
          bias: bias.buffer,
          runningMean: running[0].buffer,
          runningVar: running[1].buffer,
          stats: stats.buffer,
          output: y.buffer,
        },
        bnShape,
        settings,
      );
      if (!withBackward) return;
      batchNormBackward(
        gpu,
        {
          input: input.buffer,
          gradOutput: gradOutput.buffer,
          weight: weight.buffer,
          stats: stats.buffer,
          gradInput: outputs[0].buffer,
          gradWeight: outputs[1].buffer,
          gradBias: outputs[2].buffer,
        },
        bnShape,
        settings,
      );
    });
    return {
      ...runner,
      dispose: () => {
        runner.dispose();
        [...running, stats, forwardOutput].forEach((tensor) => tensor?.dispose());
      },
    };
  };

  const theirs = (tf: Tf, backend: TfBackendName, withBackward: boolean): Runner => {
    const normalise = (input: TfTensor, scale: TfTensor, offset: TfTensor): TfTensor => {
      const { mean, variance } = tf.moments(input, [0, 1, 2]);
      return tf.batchNorm(input, mean, variance, offset, scale, BN_EPS);
    };
    const toNchw = (index: number, data: Float32Array, outShape: number[]) =>
      index === 0 ? permute(data, outShape, NHWC_TO_NCHW).data : data;
    return tfjsRunner(
      tf,
      backend,
      () => [
        tfTensor(tf, x, NCHW_TO_NHWC),
        tfTensor(tf, gamma),
        tfTensor(tf, beta),
        tfTensor(tf, gradY, NCHW_TO_NHWC),
      ],
      ([input, scale, offset, dy]) => {
        if (!withBackward) return [tf.tidy(() => normalise(input, scale, offset))];
        return tf.tidy(() => tf.grads(normalise)([input, scale, offset], dy));
      },
      toNchw,
    );
  };

  const kernels = ['FusedBatchNorm', 'Mean', 'SquaredDifference'];
  return [
    {
      name: `batch norm ${describe} forward`,
      group: 'batch norm',
      flops: 0,
      shadergan: (gpu) => ours(gpu, false),
      tfjsKernels: kernels,
      tfjs: (tf, backend) => theirs(tf, backend, false),
    },
    {
      name: `batch norm ${describe} forward + backward`,
      group: 'batch norm',
      flops: 0,
      shadergan: (gpu) => ours(gpu, true),
      tfjsKernels: kernels,
      tfjs: (tf, backend) => theirs(tf, backend, true),
    },
  ];
}

// ---------------------------------------------------------------------------- the list

/**
 * DCGAN layer shapes at batch 64. `quick` keeps every case but shrinks batch and channels,
 * for a smoke test of the bench itself.
 */
export function allOpCases(quick: boolean): OpCase[] {
  const batch = quick ? 2 : 64;
  const c = (channels: number) => (quick ? Math.max(1, channels / 16) : channels);
  const m = (size: number) => (quick ? size / 16 : size);
  // [input size, input channels, output channels, kernel, padding]; every stride is 2.
  const convs: Array<[number, number, number, number, number]> = [
    [32, 3, c(64), 4, 1],
    [16, c(64), c(128), 4, 1],
    [8, c(128), c(256), 4, 1],
    [28, 1, c(64), 5, 2],
    [14, c(64), c(128), 5, 2],
  ];
  // [input size, input channels, output size, output channels, kernel, padding]
  const transposed: Array<[number, number, number, number, number, number]> = [
    [4, c(256), 8, c(128), 4, 1],
    [8, c(128), 16, c(64), 4, 1],
    [16, c(64), 32, 3, 4, 1],
    [7, c(128), 14, c(64), 5, 2],
  ];
  return [
    matmulCase(m(256), m(256), m(256)),
    matmulCase(m(1024), m(1024), m(1024)),
    ...convs.flatMap(([inSize, inChannels, outChannels, kernel, padding]) =>
      conv2dCases({ batch, inChannels, inSize, outChannels, kernel, stride: 2, padding }),
    ),
    ...transposed.flatMap(([inSize, inChannels, outSize, outChannels, kernel, padding]) =>
      convTransposeCases({
        batch,
        inChannels,
        inSize,
        outChannels,
        outSize,
        kernel,
        stride: 2,
        padding,
      }),
    ),
    ...batchNormCases(batch, c(128), 16),
  ];
}
