// DCGAN generator and discriminator (Radford et al. 2015): transposed convolutions up, strided
// convolutions down, no pooling, batch norm everywhere except the generator's output layer and
// the discriminator's input layer, ReLU in G, LeakyReLU(0.2) in D, tanh output. Layer indices
// inside `main` follow PyTorch's DCGAN example, so state_dict names match it.
import { reshape } from '../autograd/elementwise.ts';
import type { Tensor } from '../autograd/tensor.ts';
import { ShaderganError } from '../errors.ts';
import type { Gpu } from '../kernels/gpu.ts';
import {
  BatchNorm2d,
  Conv2d,
  ConvTranspose2d,
  LeakyReLU,
  Linear,
  ReLU,
  Reshape,
  Sequential,
  Tanh,
} from '../nn/layers.ts';
import { Module } from '../nn/module.ts';

export const ARCHITECTURES = ['dcgan', 'tf-tutorial'] as const;
export type Architecture = (typeof ARCHITECTURES)[number];
export const IMAGE_SIZES = [28, 32, 64] as const;
export type ImageSize = (typeof IMAGE_SIZES)[number];

export interface ModelConfig {
  architecture: Architecture;
  imageSize: ImageSize;
  channels: number;
  /** Channels of D's first layer; deeper layers double it (see the README for G). */
  width: number;
  noiseSize: number;
}

/** A network whose layers sit in one Sequential named `main`, as in PyTorch's DCGAN. */
abstract class DcganNetwork extends Module {
  readonly main: Sequential;

  constructor(
    readonly config: ModelConfig,
    layers: Module[],
  ) {
    super();
    this.main = new Sequential(...layers);
    this.addChild('main', this.main);
  }

  describe(): string {
    return `${this.constructor.name}(${describeConfig(this.config)})`;
  }
}

/** Maps noise [N, noiseSize] to images [N, channels, size, size] in [-1, 1]. */
export class Generator extends DcganNetwork {
  forward(noise: Tensor): Tensor {
    const [batch, noiseSize] = noise.shape;
    if (noise.shape.length !== 2 || noiseSize !== this.config.noiseSize) {
      throw new ShaderganError(
        `Generator expects noise [batch, ${this.config.noiseSize}], got [${noise.shape}]`,
      );
    }
    const input =
      this.config.architecture === 'dcgan' ? reshape(noise, [batch, noiseSize, 1, 1]) : noise;
    return this.main.forward(input);
  }
}

/** Maps images to one logit each, [N, 1]; the sigmoid lives in the loss (BCE with logits). */
export class Discriminator extends DcganNetwork {
  forward(images: Tensor): Tensor {
    const { channels, imageSize } = this.config;
    const [batch] = images.shape;
    const expected = [batch, channels, imageSize, imageSize];
    if (images.shape.length !== 4 || images.shape.some((d, i) => d !== expected[i])) {
      throw new ShaderganError(
        `Discriminator expects images [batch, ${channels}, ${imageSize}, ${imageSize}], ` +
          `got [${images.shape}]`,
      );
    }
    return reshape(this.main.forward(images), [batch, 1]);
  }
}

function describeConfig(config: ModelConfig): string {
  const { architecture, imageSize: size, channels, width, noiseSize } = config;
  return `${architecture}, ${size}x${size}x${channels}, width ${width}, noise ${noiseSize}`;
}

export function validateModelConfig(config: ModelConfig): void {
  if (typeof config !== 'object' || config === null) throw new ShaderganError('no model config');
  if (!ARCHITECTURES.includes(config.architecture)) {
    throw new ShaderganError(`architecture must be one of ${ARCHITECTURES.join(', ')}`);
  }
  if (!IMAGE_SIZES.includes(config.imageSize)) {
    throw new ShaderganError(`image size must be one of ${IMAGE_SIZES.join(', ')}`);
  }
  if (config.architecture === 'tf-tutorial' && (config.imageSize !== 28 || config.channels !== 1)) {
    throw new ShaderganError('the tf-tutorial model is defined for 28x28x1 images only');
  }
  for (const key of ['width', 'noiseSize', 'channels'] as const) {
    if (!Number.isInteger(config[key]) || config[key] < 1) {
      throw new ShaderganError(`model ${key} must be a positive integer, got ${config[key]}`);
    }
  }
}

export function buildGenerator(gpu: Gpu, config: ModelConfig): Generator {
  validateModelConfig(config);
  const { channels, width, noiseSize } = config;
  const up = (inC: number, outC: number): Module[] => [
    new ConvTranspose2d(gpu, inC, outC, 4, { stride: 2, padding: 1, bias: false }),
    new BatchNorm2d(gpu, outC),
    new ReLU(),
  ];
  const output = (inC: number): Module[] => [
    new ConvTranspose2d(gpu, inC, channels, 4, { stride: 2, padding: 1, bias: false }),
    new Tanh(),
  ];
  const project = (outC: number, size: number): Module[] => [
    new ConvTranspose2d(gpu, noiseSize, outC, size, { bias: false }),
    new BatchNorm2d(gpu, outC),
    new ReLU(),
  ];

  if (config.architecture === 'tf-tutorial')
    return new Generator(config, tfTutorialGenerator(gpu, config));
  switch (config.imageSize) {
    case 28: // 1 -> 7 -> 14 -> 28
      return new Generator(config, [
        ...project(width * 4, 7),
        ...up(width * 4, width * 2),
        ...output(width * 2),
      ]);
    case 32: // 1 -> 4 -> 8 -> 16 -> 32
      return new Generator(config, [
        ...project(width * 4, 4),
        ...up(width * 4, width * 2),
        ...up(width * 2, width),
        ...output(width),
      ]);
    case 64: // 1 -> 4 -> 8 -> 16 -> 32 -> 64, the PyTorch DCGAN example
      return new Generator(config, [
        ...project(width * 8, 4),
        ...up(width * 8, width * 4),
        ...up(width * 4, width * 2),
        ...up(width * 2, width),
        ...output(width),
      ]);
  }
}

export function buildDiscriminator(gpu: Gpu, config: ModelConfig): Discriminator {
  validateModelConfig(config);
  const { channels, width } = config;
  const first = (): Module[] => [
    new Conv2d(gpu, channels, width, 4, { stride: 2, padding: 1, bias: false }),
    new LeakyReLU(0.2),
  ];
  const down = (inC: number, outC: number): Module[] => [
    new Conv2d(gpu, inC, outC, 4, { stride: 2, padding: 1, bias: false }),
    new BatchNorm2d(gpu, outC),
    new LeakyReLU(0.2),
  ];
  const logit = (inC: number, size: number): Module[] => [
    new Conv2d(gpu, inC, 1, size, { bias: false }),
  ];

  if (config.architecture === 'tf-tutorial')
    return new Discriminator(config, tfTutorialDiscriminator(gpu));
  switch (config.imageSize) {
    case 28: // 28 -> 14 -> 7 -> 1
      return new Discriminator(config, [
        ...first(),
        ...down(width, width * 2),
        ...logit(width * 2, 7),
      ]);
    case 32: // 32 -> 16 -> 8 -> 4 -> 1
      return new Discriminator(config, [
        ...first(),
        ...down(width, width * 2),
        ...down(width * 2, width * 4),
        ...logit(width * 4, 4),
      ]);
    case 64: // 64 -> 32 -> 16 -> 8 -> 4 -> 1
      return new Discriminator(config, [
        ...first(),
        ...down(width, width * 2),
        ...down(width * 2, width * 4),
        ...down(width * 4, width * 8),
        ...logit(width * 8, 4),
      ]);
  }
}

/**
 * The generator of TensorFlow's DCGAN tutorial (Dense 7*7*256, then transposed convolutions
 * 5x5 to 128, 64 and 1 channels), kept for speed comparisons with TensorFlow.js. TensorFlow's
 * "same" padding of a 5x5 stride-2 transposed convolution equals padding 2, output padding 1.
 * Limitation: batch norm after the dense layer normalises per channel of the 256x7x7 map, not
 * per each of the 12,544 features as Keras does; the arithmetic cost is the same.
 */
function tfTutorialGenerator(gpu: Gpu, config: ModelConfig): Module[] {
  const slope = 0.3; // Keras LeakyReLU's default
  return [
    new Linear(gpu, config.noiseSize, 7 * 7 * 256, { bias: false }),
    new Reshape([256, 7, 7]),
    new BatchNorm2d(gpu, 256),
    new LeakyReLU(slope),
    new ConvTranspose2d(gpu, 256, 128, 5, { padding: 2, bias: false }),
    new BatchNorm2d(gpu, 128),
    new LeakyReLU(slope),
    new ConvTranspose2d(gpu, 128, 64, 5, { stride: 2, padding: 2, outputPadding: 1, bias: false }),
    new BatchNorm2d(gpu, 64),
    new LeakyReLU(slope),
    new ConvTranspose2d(gpu, 64, 1, 5, { stride: 2, padding: 2, outputPadding: 1, bias: false }),
    new Tanh(),
  ];
}

/**
 * The discriminator of TensorFlow's DCGAN tutorial: two 5x5 stride-2 convolutions (64, 128)
 * with LeakyReLU, then a dense logit. Limitation: its Dropout(0.3) layers are left out.
 */
function tfTutorialDiscriminator(gpu: Gpu): Module[] {
  const slope = 0.3;
  return [
    new Conv2d(gpu, 1, 64, 5, { stride: 2, padding: 2 }),
    new LeakyReLU(slope),
    new Conv2d(gpu, 64, 128, 5, { stride: 2, padding: 2 }),
    new LeakyReLU(slope),
    new Reshape([128 * 7 * 7]),
    new Linear(gpu, 128 * 7 * 7, 1),
  ];
}
