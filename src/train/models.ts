// DCGAN generator and discriminator (Radford et al. 2015): transposed convolutions up, strided
// convolutions down, no pooling, batch norm everywhere except the generator's output layer and
// the discriminator's input layer, ReLU in G, LeakyReLU(0.2) in D, tanh output. Layer indices
// inside `main` follow PyTorch's DCGAN example, so state_dict names match it. The recipe
// fields of ModelConfig vary this: no batch norm (layers then get biases), LeakyReLU in G, a
// sigmoid output, a global-average-pooling head in D, and class conditioning.
import { reshape } from '../autograd/elementwise.ts';
import { appendOneHot, globalAvgPool } from '../autograd/images.ts';
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
  Sigmoid,
  Tanh,
} from '../nn/layers.ts';
import { Module } from '../nn/module.ts';

export const ARCHITECTURES = ['dcgan', 'tf-tutorial'] as const;
export type Architecture = (typeof ARCHITECTURES)[number];
export const IMAGE_SIZES = [28, 32, 64] as const;
export type ImageSize = (typeof IMAGE_SIZES)[number];

export const SCALES = ['tanh', 'sigmoid'] as const;
/** Pixel range and G's output activation: tanh for [-1, 1], sigmoid for [0, 1]. */
export type Scale = (typeof SCALES)[number];
export const ACTIVATIONS = ['relu', 'leaky'] as const;
export type Activation = (typeof ACTIVATIONS)[number];
export const HEADS = ['dense', 'gap'] as const;
/** D's last layer: dense over the whole last feature map, or global average pooling + dense. */
export type Head = (typeof HEADS)[number];
/** The negative slope of G's LeakyReLU when generatorActivation is 'leaky'. */
export const GENERATOR_LEAKY_SLOPE = 0.2;

export interface ModelConfig {
  architecture: Architecture;
  imageSize: ImageSize;
  channels: number;
  /** Channels of D's first layer; deeper layers double it (see the README for G). */
  width: number;
  noiseSize: number;
  scale: Scale;
  batchNorm: boolean;
  generatorActivation: Activation;
  /** Negative slope of D's LeakyReLUs. */
  discriminatorSlope: number;
  discriminatorHead: Head;
  /** 0 for an unconditional GAN; otherwise G and D both see one of this many class labels. */
  classes: number;
}

/** Radford et al.'s recipe, and what checkpoints written before recipes existed were. */
export const RADFORD_RECIPE = {
  scale: 'tanh',
  batchNorm: true,
  generatorActivation: 'relu',
  discriminatorSlope: 0.2,
  discriminatorHead: 'dense',
  classes: 0,
} as const satisfies Partial<ModelConfig>;

/** The pixel range [low, high] of a scale. */
export function pixelRange(scale: Scale): [number, number] {
  return scale === 'tanh' ? [-1, 1] : [0, 1];
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

/**
 * Class labels as a tensor [N] of class indices (stored as floats), checked against the model:
 * given exactly when the model is conditional.
 */
function checkLabels(config: ModelConfig, batch: number, labels: Tensor | undefined): void {
  if (config.classes === 0) {
    if (labels) throw new ShaderganError('this model is not conditional; it takes no labels');
    return;
  }
  if (!labels || labels.shape.length !== 1 || labels.shape[0] !== batch) {
    throw new ShaderganError(
      `this model is conditional on ${config.classes} classes: it needs labels [${batch}]` +
        (labels ? `, got [${labels.shape}]` : ''),
    );
  }
}

/** Maps noise [N, noiseSize] (and labels [N]) to images [N, channels, size, size]. */
export class Generator extends DcganNetwork {
  forward(noise: Tensor, labels?: Tensor): Tensor {
    const [batch, noiseSize] = noise.shape;
    if (noise.shape.length !== 2 || noiseSize !== this.config.noiseSize) {
      throw new ShaderganError(
        `Generator expects noise [batch, ${this.config.noiseSize}], got [${noise.shape}]`,
      );
    }
    checkLabels(this.config, batch, labels);
    const code = labels ? appendOneHot(noise, labels, this.config.classes) : noise;
    const input =
      this.config.architecture === 'dcgan' ? reshape(code, [batch, code.shape[1], 1, 1]) : code;
    return this.main.forward(input);
  }
}

/** Maps images (and labels) to one logit each, [N, 1]; the sigmoid lives in the loss. */
export class Discriminator extends DcganNetwork {
  forward(images: Tensor, labels?: Tensor): Tensor {
    const { channels, imageSize } = this.config;
    const [batch] = images.shape;
    const expected = [batch, channels, imageSize, imageSize];
    if (images.shape.length !== 4 || images.shape.some((d, i) => d !== expected[i])) {
      throw new ShaderganError(
        `Discriminator expects images [batch, ${channels}, ${imageSize}, ${imageSize}], ` +
          `got [${images.shape}]`,
      );
    }
    checkLabels(this.config, batch, labels);
    const input = labels ? appendOneHot(images, labels, this.config.classes) : images;
    return reshape(this.main.forward(input), [batch, 1]);
  }
}

/** The mean of each feature map, [N, C, H, W] -> [N, C]. */
export class GlobalAvgPool extends Module {
  forward(input: Tensor): Tensor {
    return globalAvgPool(input);
  }
  describe(): string {
    return 'GlobalAvgPool()';
  }
}

function describeConfig(config: ModelConfig): string {
  const { architecture, imageSize: size, channels, width, noiseSize } = config;
  const recipe = [
    config.batchNorm ? 'batch norm' : 'no batch norm',
    `G ${config.generatorActivation}`,
    `D slope ${config.discriminatorSlope}`,
    `${config.discriminatorHead} head`,
    `${config.scale} output`,
    ...(config.classes > 0 ? [`conditional on ${config.classes} classes`] : []),
  ];
  return (
    `${architecture}, ${size}x${size}x${channels}, width ${width}, noise ${noiseSize}, ` +
    recipe.join(', ')
  );
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
  validateRecipe(config);
}

function validateRecipe(config: ModelConfig): void {
  const oneOf = (name: string, value: unknown, allowed: readonly string[]): void => {
    if (!allowed.includes(value as string)) {
      throw new ShaderganError(`${name} must be one of ${allowed.join(', ')}, got ${value}`);
    }
  };
  oneOf('the scale', config.scale, SCALES);
  oneOf("G's activation", config.generatorActivation, ACTIVATIONS);
  oneOf("D's head", config.discriminatorHead, HEADS);
  if (typeof config.batchNorm !== 'boolean') {
    throw new ShaderganError(`batchNorm must be true or false, got ${config.batchNorm}`);
  }
  const slope = config.discriminatorSlope;
  if (typeof slope !== 'number' || !(slope >= 0 && slope < 1)) {
    throw new ShaderganError(`D's LeakyReLU slope (--d-slope) must be in [0, 1), got ${slope}`);
  }
  if (!Number.isInteger(config.classes) || config.classes < 0 || config.classes > 1000) {
    throw new ShaderganError(`classes must be 0 (unconditional) to 1000, got ${config.classes}`);
  }
  if (config.architecture === 'tf-tutorial') {
    const differs = (Object.keys(RADFORD_RECIPE) as Array<keyof typeof RADFORD_RECIPE>).filter(
      (key) => config[key] !== RADFORD_RECIPE[key],
    );
    if (differs.length > 0) {
      throw new ShaderganError(
        `the tf-tutorial model mirrors TensorFlow's tutorial and takes no model recipe ` +
          `options (got ${differs.join(', ')}); use --model dcgan`,
      );
    }
  }
}

export function buildGenerator(gpu: Gpu, config: ModelConfig): Generator {
  validateModelConfig(config);
  const { channels, width, noiseSize, batchNorm, classes } = config;
  const activation = (): Module =>
    config.generatorActivation === 'relu' ? new ReLU() : new LeakyReLU(GENERATOR_LEAKY_SLOPE);
  // Without batch norm after it, a layer needs its own bias.
  const normalized = (conv: Module, outC: number): Module[] =>
    batchNorm ? [conv, new BatchNorm2d(gpu, outC), activation()] : [conv, activation()];
  const up = (inC: number, outC: number): Module[] =>
    normalized(
      new ConvTranspose2d(gpu, inC, outC, 4, { stride: 2, padding: 1, bias: !batchNorm }),
      outC,
    );
  const output = (inC: number): Module[] => [
    new ConvTranspose2d(gpu, inC, channels, 4, { stride: 2, padding: 1, bias: false }),
    config.scale === 'tanh' ? new Tanh() : new Sigmoid(),
  ];
  const project = (outC: number, size: number): Module[] =>
    normalized(
      new ConvTranspose2d(gpu, noiseSize + classes, outC, size, { bias: !batchNorm }),
      outC,
    );

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
  const { channels, width, batchNorm, classes } = config;
  const slope = config.discriminatorSlope;
  const first = (): Module[] => [
    new Conv2d(gpu, channels + classes, width, 4, { stride: 2, padding: 1, bias: false }),
    new LeakyReLU(slope),
  ];
  const down = (inC: number, outC: number): Module[] => {
    const conv = new Conv2d(gpu, inC, outC, 4, { stride: 2, padding: 1, bias: !batchNorm });
    return batchNorm
      ? [conv, new BatchNorm2d(gpu, outC), new LeakyReLU(slope)]
      : [conv, new LeakyReLU(slope)];
  };
  // `size` is the side of the last feature map: the dense head's kernel covers all of it.
  const logit = (inC: number, size: number): Module[] =>
    config.discriminatorHead === 'dense'
      ? [new Conv2d(gpu, inC, 1, size, { bias: false })]
      : [new GlobalAvgPool(), new Linear(gpu, inC, 1)];

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
