// 2-D convolution and transposed convolution (PyTorch semantics and weight layouts), each one
// tape entry with backward rules gradInput, gradWeight and gradBias.
//
// A transposed convolution is the backward pass of an ordinary one: its forward is the
// convolution's gradInput computation, its gradInput is the convolution's forward, and its
// gradWeight is the convolution's gradWeight with the roles of input and gradient swapped.
// Both ops therefore describe the ordinary convolution they stand for as one Convolution (a
// ConvGeometry with those three computations) and call them each in its own order.
import { ShaderganError } from '../errors.ts';
import * as kernels from '../kernels/conv.ts';
import type { ConvGeometry } from '../kernels/conv.ts';
import type { Gpu } from '../kernels/gpu.ts';
import { biasGradient } from '../kernels/matmul.ts';
import { record } from './tape.ts';
import { formatShape, Tensor } from './tensor.ts';

export type Pair = number | [number, number];

export interface Conv2dOptions {
  stride?: Pair;
  padding?: Pair;
}

export interface ConvTranspose2dOptions extends Conv2dOptions {
  /** Extra rows and columns on the bottom and right of the output; each below its stride. */
  outputPadding?: Pair;
}

/**
 * conv2d(input [N,Cin,H,W], weight [Cout,Cin,kh,kw], bias [Cout] | null) -> [N,Cout,Ho,Wo]
 * with Ho = floor((H + 2 * padding - kh) / stride) + 1, as torch.nn.functional.conv2d.
 */
export function conv2d(
  input: Tensor,
  weight: Tensor,
  bias: Tensor | null,
  options: Conv2dOptions = {},
): Tensor {
  const describe = describer('conv2d', input, weight, bias, options);
  const [strideY, strideX] = pair(options.stride ?? 1, 'stride', 1, describe);
  const [padY, padX] = pair(options.padding ?? 0, 'padding', 0, describe);
  checkRanks(input, weight, bias, describe);
  const [batch, inChannels, inHeight, inWidth] = input.shape;
  const [outChannels, weightInChannels, kernelHeight, kernelWidth] = weight.shape;
  checkChannels(inChannels, weightInChannels, describe);
  checkBias(bias, outChannels, describe);
  const outHeight = Math.floor((inHeight + 2 * padY - kernelHeight) / strideY) + 1;
  const outWidth = Math.floor((inWidth + 2 * padX - kernelWidth) / strideX) + 1;
  checkOutputSize(outHeight, outWidth, describe);

  const geometry: ConvGeometry = {
    batch,
    inChannels,
    inHeight,
    inWidth,
    outChannels,
    outHeight,
    outWidth,
    kernelHeight,
    kernelWidth,
    strideY,
    strideX,
    padY,
    padX,
  };
  const convolution = new Convolution(input.gpu, geometry, describe());
  const output = convolution.forward(input, weight, bias, 'conv2d');

  return record({
    op: 'conv2d',
    inputs: bias ? [input, weight, bias] : [input, weight],
    output,
    detail: `stride=${strideY},${strideX} padding=${padY},${padX}`,
    backward: (gradOutput) => {
      const gradInput = input.requiresGrad
        ? convolution.gradInput(gradOutput, weight, null, 'conv2d gradInput')
        : null;
      const gradWeight = weight.requiresGrad
        ? convolution.gradWeight(input, gradOutput, 'conv2d gradWeight')
        : null;
      const gradBias = bias?.requiresGrad ? channelSums(gradOutput, convolution.label) : null;
      return [gradInput, gradWeight, gradBias];
    },
  });
}

/**
 * convTranspose2d(input [N,Cin,H,W], weight [Cin,Cout,kh,kw], bias [Cout] | null)
 * -> [N,Cout,Ho,Wo] with Ho = (H - 1) * stride - 2 * padding + kh + outputPadding, as
 * torch.nn.functional.conv_transpose2d.
 */
export function convTranspose2d(
  input: Tensor,
  weight: Tensor,
  bias: Tensor | null,
  options: ConvTranspose2dOptions = {},
): Tensor {
  const describe = describer('convTranspose2d', input, weight, bias, options);
  const [strideY, strideX] = pair(options.stride ?? 1, 'stride', 1, describe);
  const [padY, padX] = pair(options.padding ?? 0, 'padding', 0, describe);
  const [extraY, extraX] = pair(options.outputPadding ?? 0, 'outputPadding', 0, describe);
  if (extraY >= strideY || extraX >= strideX) {
    throw new ShaderganError(
      `${describe()}: outputPadding (${extraY},${extraX}) must be smaller than stride ` +
        `(${strideY},${strideX})`,
    );
  }
  checkRanks(input, weight, bias, describe);
  const [batch, inChannels, inHeight, inWidth] = input.shape;
  const [weightInChannels, outChannels, kernelHeight, kernelWidth] = weight.shape;
  checkChannels(inChannels, weightInChannels, describe);
  checkBias(bias, outChannels, describe);
  const outHeight = (inHeight - 1) * strideY - 2 * padY + kernelHeight + extraY;
  const outWidth = (inWidth - 1) * strideX - 2 * padX + kernelWidth + extraX;
  checkOutputSize(outHeight, outWidth, describe);

  // The ordinary convolution whose backward pass this is: it maps the output back to the
  // input, and its weight [inChannels -> outChannels of that convolution] is `weight` as given.
  const geometry: ConvGeometry = {
    batch,
    inChannels: outChannels,
    inHeight: outHeight,
    inWidth: outWidth,
    outChannels: inChannels,
    outHeight: inHeight,
    outWidth: inWidth,
    kernelHeight,
    kernelWidth,
    strideY,
    strideX,
    padY,
    padX,
  };
  const convolution = new Convolution(input.gpu, geometry, describe());
  const output = convolution.gradInput(input, weight, bias, 'convTranspose2d');

  return record({
    op: 'convTranspose2d',
    inputs: bias ? [input, weight, bias] : [input, weight],
    output,
    detail:
      `stride=${strideY},${strideX} padding=${padY},${padX}` +
      (extraY || extraX ? ` outputPadding=${extraY},${extraX}` : ''),
    backward: (gradOutput) => {
      // gradOutput plays the ordinary convolution's input, and `input` its gradOutput. Both
      // gradients read gradOutput's patches, so they are gathered once for the two.
      const both = input.requiresGrad && weight.requiresGrad;
      const patches = both ? convolution.patches(gradOutput) : undefined;
      const gradInput = input.requiresGrad
        ? convolution.forward(gradOutput, weight, null, 'convTranspose2d gradInput', patches)
        : null;
      const gradWeight = weight.requiresGrad
        ? convolution.gradWeight(gradOutput, input, 'convTranspose2d gradWeight', patches)
        : null;
      patches?.release();
      const gradBias = bias?.requiresGrad ? channelSums(gradOutput, convolution.label) : null;
      return [gradInput, gradWeight, gradBias];
    },
  });
}

/**
 * The ordinary convolution a ConvGeometry describes, with its three computations, each into a
 * new tensor: conv2d runs them as forward, gradInput and gradWeight, and convTranspose2d runs
 * the same three in another order. `name` labels the new tensor's buffer.
 */
class Convolution {
  constructor(
    private readonly gpu: Gpu,
    readonly geometry: ConvGeometry,
    /** Names the op, its shapes and options in kernel labels. */
    readonly label: string,
  ) {}

  /** The patches of `image` (an input of this convolution), for forward and gradWeight. */
  patches(image: Tensor): kernels.Patches {
    return kernels.patchesOf(this.gpu, image.buffer, this.geometry, this.label);
  }

  /** input [N,Cin,H,W] -> output [N,Cout,Ho,Wo], plus bias per output channel. */
  forward(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | null,
    name: string,
    patches?: kernels.Patches,
  ): Tensor {
    const g = this.geometry;
    const output = Tensor.empty(this.gpu, [g.batch, g.outChannels, g.outHeight, g.outWidth], name);
    kernels.conv2dForward(this.gpu, {
      input: input.buffer,
      patches,
      weight: weight.buffer,
      bias: bias?.buffer ?? null,
      output: output.buffer,
      geometry: g,
      label: this.label,
    });
    return output;
  }

  /** gradOutput [N,Cout,Ho,Wo] -> gradInput [N,Cin,H,W], plus bias per input channel. */
  gradInput(gradOutput: Tensor, weight: Tensor, bias: Tensor | null, name: string): Tensor {
    const g = this.geometry;
    const gradInput = Tensor.empty(this.gpu, [g.batch, g.inChannels, g.inHeight, g.inWidth], name);
    kernels.conv2dGradInput(this.gpu, {
      gradOutput: gradOutput.buffer,
      weight: weight.buffer,
      gradInput: gradInput.buffer,
      bias: bias?.buffer ?? null,
      geometry: g,
      label: this.label,
    });
    return gradInput;
  }

  /** input [N,Cin,H,W] and gradOutput [N,Cout,Ho,Wo] -> gradWeight [Cout,Cin,kh,kw]. */
  gradWeight(input: Tensor, gradOutput: Tensor, name: string, patches?: kernels.Patches): Tensor {
    const g = this.geometry;
    const shape = [g.outChannels, g.inChannels, g.kernelHeight, g.kernelWidth];
    const gradWeight = Tensor.empty(this.gpu, shape, name);
    kernels.conv2dGradWeight(this.gpu, {
      input: input.buffer,
      patches,
      gradOutput: gradOutput.buffer,
      gradWeight: gradWeight.buffer,
      geometry: g,
      label: this.label,
    });
    return gradWeight;
  }
}

/** The bias gradient: gradOutput [N,C,H,W] summed over everything but C. */
function channelSums(gradOutput: Tensor, label: string): Tensor {
  const [batch, channels, height, width] = gradOutput.shape;
  const gradBias = Tensor.empty(gradOutput.gpu, [channels], 'gradBias');
  biasGradient(gradOutput.gpu, {
    gradOutput: gradOutput.buffer,
    outer: batch,
    channels,
    inner: height * width,
    gradBias: gradBias.buffer,
    label,
  });
  return gradBias;
}

// ---- validation ----------------------------------------------------------------------------

/** A function that names the op, every shape and the options, for error messages. */
function describer(
  op: string,
  input: Tensor,
  weight: Tensor,
  bias: Tensor | null,
  options: ConvTranspose2dOptions,
): () => string {
  return () => {
    const settings = Object.entries(options)
      .filter(([, value]) => value !== undefined)
      .map(([name, value]) => `${name} ${JSON.stringify(value)}`);
    return (
      `${op}: input ${formatShape(input.shape)}, weight ${formatShape(weight.shape)}, ` +
      `bias ${bias ? formatShape(bias.shape) : 'none'}` +
      (settings.length ? `, ${settings.join(', ')}` : '')
    );
  };
}

function pair(
  value: Pair,
  name: string,
  minimum: number,
  describe: () => string,
): [number, number] {
  const [y, x] = typeof value === 'number' ? [value, value] : value;
  if (!Number.isInteger(y) || !Number.isInteger(x) || y < minimum || x < minimum) {
    throw new ShaderganError(`${describe()}: ${name} must be whole numbers >= ${minimum}`);
  }
  return [y, x];
}

function checkRanks(
  input: Tensor,
  weight: Tensor,
  bias: Tensor | null,
  describe: () => string,
): void {
  if (input.shape.length !== 4) {
    throw new ShaderganError(`${describe()}: input must be [batch, channels, height, width]`);
  }
  if (weight.shape.length !== 4) {
    throw new ShaderganError(`${describe()}: weight must be 4-D`);
  }
  if (bias && bias.shape.length !== 1) {
    throw new ShaderganError(`${describe()}: bias must be 1-D`);
  }
}

function checkChannels(inChannels: number, weightInChannels: number, describe: () => string): void {
  if (weightInChannels !== inChannels) {
    throw new ShaderganError(
      `${describe()}: input has ${inChannels} channels but weight expects ${weightInChannels}`,
    );
  }
}

function checkBias(bias: Tensor | null, outChannels: number, describe: () => string): void {
  if (bias && bias.shape[0] !== outChannels) {
    throw new ShaderganError(`${describe()}: bias must have ${outChannels} values`);
  }
}

function checkOutputSize(outHeight: number, outWidth: number, describe: () => string): void {
  if (outHeight <= 0 || outWidth <= 0) {
    throw new ShaderganError(
      `${describe()}: the output would be ${outHeight}x${outWidth}; the kernel does not fit`,
    );
  }
}
