// Layers with PyTorch's names, parameter layouts and defaults. Parameters start at zero;
// src/nn/init.ts fills them (DCGAN initialisation) once the model is built.
import { batchNorm2d } from '../autograd/batchnorm.ts';
import { conv2d, convTranspose2d } from '../autograd/conv.ts';
import { leakyRelu, relu, reshape, sigmoid, tanh } from '../autograd/elementwise.ts';
import { linear } from '../autograd/matmul.ts';
import { Tensor } from '../autograd/tensor.ts';
import type { Gpu } from '../kernels/gpu.ts';
import { Module } from './module.ts';

export class Conv2d extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;

  constructor(
    gpu: Gpu,
    readonly inChannels: number,
    readonly outChannels: number,
    readonly kernelSize: number,
    readonly options: { stride?: number; padding?: number; bias?: boolean } = {},
  ) {
    super();
    const shape = [outChannels, inChannels, kernelSize, kernelSize];
    this.weight = this.addParameter('weight', Tensor.zeros(gpu, shape));
    this.bias = options.bias === false ? null : this.addParameter('bias', zeros(gpu, outChannels));
  }

  forward(input: Tensor): Tensor {
    const { stride = 1, padding = 0 } = this.options;
    return conv2d(input, this.weight, this.bias, { stride, padding });
  }

  describe(): string {
    const { stride = 1, padding = 0 } = this.options;
    return (
      `Conv2d(${this.inChannels}, ${this.outChannels}, kernel_size=${this.kernelSize}, ` +
      `stride=${stride}, padding=${padding}, bias=${this.bias !== null})`
    );
  }
}

export class ConvTranspose2d extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;

  constructor(
    gpu: Gpu,
    readonly inChannels: number,
    readonly outChannels: number,
    readonly kernelSize: number,
    readonly options: {
      stride?: number;
      padding?: number;
      outputPadding?: number;
      bias?: boolean;
    } = {},
  ) {
    super();
    // PyTorch stores transposed convolution weights as [in, out, kh, kw].
    const shape = [inChannels, outChannels, kernelSize, kernelSize];
    this.weight = this.addParameter('weight', Tensor.zeros(gpu, shape));
    this.bias = options.bias === false ? null : this.addParameter('bias', zeros(gpu, outChannels));
  }

  forward(input: Tensor): Tensor {
    const { stride = 1, padding = 0, outputPadding = 0 } = this.options;
    return convTranspose2d(input, this.weight, this.bias, { stride, padding, outputPadding });
  }

  describe(): string {
    const { stride = 1, padding = 0, outputPadding = 0 } = this.options;
    return (
      `ConvTranspose2d(${this.inChannels}, ${this.outChannels}, kernel_size=${this.kernelSize}, ` +
      `stride=${stride}, padding=${padding}, output_padding=${outputPadding}, ` +
      `bias=${this.bias !== null})`
    );
  }
}

export class BatchNorm2d extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor;
  readonly runningMean: Tensor;
  readonly runningVar: Tensor;
  /** Counted on the CPU; saved as `num_batches_tracked` like PyTorch. */
  batchesTracked = 0;

  constructor(
    gpu: Gpu,
    readonly channels: number,
    readonly eps = 1e-5,
    readonly momentum = 0.1,
  ) {
    super();
    this.weight = this.addParameter('weight', Tensor.full(gpu, [channels], 1));
    this.bias = this.addParameter('bias', zeros(gpu, channels));
    this.runningMean = this.addBuffer('running_mean', zeros(gpu, channels));
    this.runningVar = this.addBuffer('running_var', Tensor.full(gpu, [channels], 1));
  }

  forward(input: Tensor): Tensor {
    if (this.training) this.batchesTracked += 1;
    return batchNorm2d(
      input,
      this.weight,
      this.bias,
      { mean: this.runningMean, variance: this.runningVar },
      { training: this.training, momentum: this.momentum, eps: this.eps },
    );
  }

  describe(): string {
    return `BatchNorm2d(${this.channels}, eps=${this.eps}, momentum=${this.momentum})`;
  }
}

export class Linear extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;

  constructor(
    gpu: Gpu,
    readonly inFeatures: number,
    readonly outFeatures: number,
    options: { bias?: boolean } = {},
  ) {
    super();
    this.weight = this.addParameter('weight', Tensor.zeros(gpu, [outFeatures, inFeatures]));
    this.bias = options.bias === false ? null : this.addParameter('bias', zeros(gpu, outFeatures));
  }

  forward(input: Tensor): Tensor {
    return linear(input, this.weight, this.bias);
  }

  describe(): string {
    return `Linear(${this.inFeatures}, ${this.outFeatures}, bias=${this.bias !== null})`;
  }
}

export class ReLU extends Module {
  forward(input: Tensor): Tensor {
    return relu(input);
  }
  describe(): string {
    return 'ReLU()';
  }
}

export class LeakyReLU extends Module {
  constructor(readonly negativeSlope = 0.01) {
    super();
  }
  forward(input: Tensor): Tensor {
    return leakyRelu(input, this.negativeSlope);
  }
  describe(): string {
    return `LeakyReLU(${this.negativeSlope})`;
  }
}

export class Tanh extends Module {
  forward(input: Tensor): Tensor {
    return tanh(input);
  }
  describe(): string {
    return 'Tanh()';
  }
}

export class Sigmoid extends Module {
  forward(input: Tensor): Tensor {
    return sigmoid(input);
  }
  describe(): string {
    return 'Sigmoid()';
  }
}

/** Reshapes each sample to `shape`, keeping the batch dimension: [N, ...] -> [N, ...shape]. */
export class Reshape extends Module {
  constructor(readonly shape: readonly number[]) {
    super();
  }
  forward(input: Tensor): Tensor {
    return reshape(input, [input.shape[0], ...this.shape]);
  }
  describe(): string {
    return `Reshape(${this.shape.join(', ')})`;
  }
}

/** Runs children in order; they are named '0', '1', ... as in torch.nn.Sequential. */
export class Sequential extends Module {
  private readonly layers: Module[];

  constructor(...layers: Module[]) {
    super();
    this.layers = layers;
    layers.forEach((layer, index) => this.addChild(String(index), layer));
  }

  forward(input: Tensor): Tensor {
    return this.layers.reduce((value, layer) => layer.forward(value), input);
  }

  describe(): string {
    return 'Sequential';
  }
}

function zeros(gpu: Gpu, count: number): Tensor {
  return Tensor.zeros(gpu, [count]);
}
