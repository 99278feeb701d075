// Batch normalisation with PyTorch's semantics: in training, normalise with the batch mean and
// biased variance and move the running statistics towards the batch's (the running variance
// takes the unbiased one); in evaluation, normalise with the running statistics.
import { ShaderganError } from '../errors.ts';
import * as kernels from '../kernels/batchnorm.ts';
import { record } from './tape.ts';
import { formatShape, Tensor } from './tensor.ts';

export interface RunningStatistics {
  /** [channels], updated in place in training mode. */
  mean: Tensor;
  /** [channels], updated in place in training mode. */
  variance: Tensor;
}

export interface BatchNormOptions {
  training: boolean;
  /** Weight of the new batch statistics in the running ones (PyTorch's default is 0.1). */
  momentum: number;
  eps: number;
}

/**
 * y = (x - mean) / sqrt(variance + eps) * weight + bias per channel of an
 * [batch, channels, height, width] input. The running statistics are updated on the GPU during
 * the forward pass, also when no gradient is recorded, as in PyTorch.
 *
 * Limitation: the backward rule is not itself differentiable (no second derivatives).
 */
export function batchNorm2d(
  input: Tensor,
  weight: Tensor,
  bias: Tensor,
  running: RunningStatistics,
  options: BatchNormOptions,
): Tensor {
  const shape = checkShapes(input, weight, bias, running, options);
  const gpu = input.gpu;
  const settings = { training: options.training, momentum: options.momentum, eps: options.eps };

  // [2, channels]: the mean and inverse standard deviation this forward pass normalised with.
  const stats = Tensor.empty(gpu, [2, shape.channels], 'batch norm statistics');
  const output = Tensor.empty(gpu, input.shape, 'batch norm output');
  kernels.batchNormForward(
    gpu,
    {
      input: input.buffer,
      weight: weight.buffer,
      bias: bias.buffer,
      runningMean: running.mean.buffer,
      runningVar: running.variance.buffer,
      stats: stats.buffer,
      output: output.buffer,
    },
    shape,
    settings,
  );

  const recorded = record({
    op: 'batch_norm2d',
    inputs: [input, weight, bias],
    output,
    detail:
      `${options.training ? 'training' : 'eval'}, momentum=${options.momentum}, ` +
      `eps=${options.eps}`,
    backward: (gradOutput) => {
      const gradInput = Tensor.empty(gpu, input.shape, 'batch norm input gradient');
      const gradWeight = Tensor.empty(gpu, weight.shape, 'batch norm weight gradient');
      const gradBias = Tensor.empty(gpu, bias.shape, 'batch norm bias gradient');
      kernels.batchNormBackward(
        gpu,
        {
          input: input.buffer,
          gradOutput: gradOutput.buffer,
          weight: weight.buffer,
          stats: stats.buffer,
          gradInput: gradInput.buffer,
          gradWeight: gradWeight.buffer,
          gradBias: gradBias.buffer,
        },
        shape,
        settings,
      );
      return [gradInput, gradWeight, gradBias];
    },
  });
  // Without a tape entry nothing will read the statistics again.
  if (!recorded.creator) stats.dispose();
  return recorded;
}

function checkShapes(
  input: Tensor,
  weight: Tensor,
  bias: Tensor,
  running: RunningStatistics,
  options: BatchNormOptions,
): kernels.BatchNormShape {
  if (input.shape.length !== 4) {
    throw new ShaderganError(
      `batchNorm2d: expected an input [batch, channels, height, width], got ` +
        formatShape(input.shape),
    );
  }
  const [batch, channels, height, width] = input.shape;
  const perChannel: Array<[string, Tensor]> = [
    ['weight', weight],
    ['bias', bias],
    ['running mean', running.mean],
    ['running variance', running.variance],
  ];
  for (const [name, tensor] of perChannel) {
    if (tensor.shape.length !== 1 || tensor.shape[0] !== channels) {
      throw new ShaderganError(
        `batchNorm2d: ${name} has shape ${formatShape(tensor.shape)}, expected [${channels}] ` +
          `for input ${formatShape(input.shape)}`,
      );
    }
  }
  if (input.size === 0) {
    throw new ShaderganError(`batchNorm2d: the input ${formatShape(input.shape)} is empty`);
  }
  if (options.training && batch * height * width < 2) {
    throw new ShaderganError(
      `batchNorm2d: training needs more than one value per channel to estimate a variance, ` +
        `got input ${formatShape(input.shape)}`,
    );
  }
  if (!(options.momentum >= 0 && options.momentum <= 1)) {
    throw new ShaderganError(`batchNorm2d: momentum must be in [0, 1], got ${options.momentum}`);
  }
  if (!(options.eps > 0) || !Number.isFinite(options.eps)) {
    throw new ShaderganError(`batchNorm2d: eps must be a positive number, got ${options.eps}`);
  }
  return { batch, channels, spatial: height * width };
}
