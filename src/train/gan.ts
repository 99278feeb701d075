// One GAN training step, as in PyTorch's DCGAN example: update D on a real batch (target 1)
// and on detached fakes (target 0), then update G with the non-saturating loss, D(G(z)) -> 1.
// Recipes add augmentation of everything D sees, a smoothed real target, and class labels.
import { add, backward } from '../autograd/elementwise.ts';
import { augmentImages } from '../autograd/images.ts';
import { bceWithLogits } from '../autograd/loss.ts';
import { randn } from '../autograd/random.ts';
import { asyncScope, noGrad } from '../autograd/tape.ts';
import { ShaderganError } from '../errors.ts';
import { Tensor } from '../autograd/tensor.ts';
import type { Gpu } from '../kernels/gpu.ts';
import { Adam } from '../nn/adam.ts';
import { initDcgan } from '../nn/init.ts';
import { BatchNorm2d } from '../nn/layers.ts';
import type { Module } from '../nn/module.ts';
import {
  buildDiscriminator,
  buildGenerator,
  type Discriminator,
  type Generator,
  pixelRange,
  RADFORD_RECIPE,
  type ModelConfig,
  validateModelConfig,
} from './models.ts';
import { mixWords, SeededRandom } from './random.ts';
import {
  augmentTransforms,
  NO_TRICKS,
  type TrainingRecipe,
  validateTrainingRecipe,
} from './recipe.ts';

export interface OptimizerConfig {
  lr: number;
  beta1: number;
  beta2: number;
}

export interface GanConfig {
  model: ModelConfig;
  optimizer: OptimizerConfig;
  batchSize: number;
  seed: number;
  training: TrainingRecipe;
  /** The preset the recipe started from, for reports; the fields above are what counts. */
  preset?: string;
}

export interface StepLosses {
  discriminator: number;
  generator: number;
}

/** Throws a ShaderganError naming the first setting that cannot train. */
export function validateGanConfig(config: GanConfig): void {
  if (typeof config !== 'object' || config === null) throw new ShaderganError('no config');
  validateModelConfig(config.model);
  const { lr, beta1, beta2 } = config.optimizer ?? {};
  if (typeof lr !== 'number' || !(lr > 0) || !Number.isFinite(lr)) {
    throw new ShaderganError(`the learning rate must be a positive number, got ${lr}`);
  }
  for (const [name, beta] of [
    ['beta1', beta1],
    ['beta2', beta2],
  ] as const) {
    if (typeof beta !== 'number' || !(beta >= 0 && beta < 1)) {
      throw new ShaderganError(`Adam's ${name} must be in [0, 1), got ${beta}`);
    }
  }
  if (!Number.isInteger(config.batchSize) || config.batchSize < 2) {
    throw new ShaderganError(
      `the batch size must be an integer of at least 2 (batch norm needs two images), ` +
        `got ${config.batchSize}`,
    );
  }
  if (!Number.isSafeInteger(config.seed)) {
    throw new ShaderganError(`the seed must be an integer, got ${config.seed}`);
  }
  if (typeof config.training !== 'object' || config.training === null) {
    throw new ShaderganError('no training recipe (augment, realTarget) in the config');
  }
  validateTrainingRecipe(config.training);
}

/**
 * A config as stored by any version: fields that older checkpoints lack take the values
 * those checkpoints were trained with (Radford's recipe, no augmentation, target 1).
 */
export function completeGanConfig(stored: GanConfig): GanConfig {
  if (typeof stored !== 'object' || stored === null) return stored;
  return {
    ...stored,
    model: { ...RADFORD_RECIPE, ...stored.model },
    training: { ...NO_TRICKS, ...stored.training },
  };
}

// Separate random streams, so changing one use of randomness leaves the others as they were.
const NOISE_STREAM = 0x6e6f6973;
const FIXED_NOISE_STREAM = 0x66697865;
const LABEL_STREAM = 0x6c61626c;
/** Which augmentation draw in a step: real and fake images get independent transforms. */
const AUGMENT_REAL = 0;
const AUGMENT_FAKE = 1;

export class Gan {
  readonly generator: Generator;
  readonly discriminator: Discriminator;
  readonly optimizerG: Adam;
  readonly optimizerD: Adam;
  /** Training steps completed; also selects the batch and the noise of the next step. */
  step = 0;

  constructor(
    readonly gpu: Gpu,
    readonly config: GanConfig,
  ) {
    validateGanConfig(config);
    this.generator = buildGenerator(gpu, config.model);
    this.discriminator = buildDiscriminator(gpu, config.model);
    initDcgan(this.generator, config.seed);
    initDcgan(this.discriminator, config.seed + 1);
    const { lr, beta1, beta2 } = config.optimizer;
    this.optimizerG = new Adam(this.generator.namedParameters(), { lr, beta1, beta2 });
    this.optimizerD = new Adam(this.discriminator.namedParameters(), { lr, beta1, beta2 });
  }

  /** Noise for training step `step`: a pure function of the seed and the step. */
  noiseFor(step: number, count: number): Tensor {
    const { noiseSize } = this.config.model;
    const offset = (step * count * noiseSize) >>> 0;
    return randn(this.gpu, [count, noiseSize], (this.config.seed ^ NOISE_STREAM) >>> 0, offset);
  }

  /** The fixed noise behind sample grids, so grids over time show the same latent points. */
  fixedNoise(count: number): Tensor {
    const seed = (this.config.seed ^ FIXED_NOISE_STREAM) >>> 0;
    return randn(this.gpu, [count, this.config.model.noiseSize], seed, 0);
  }

  /**
   * The classes of the fakes of training step `step` (conditional models): uniform over the
   * classes, a pure function of the seed and the step. Null for an unconditional model.
   */
  labelsFor(step: number, count: number): Float32Array | null {
    const { classes } = this.config.model;
    if (classes === 0) return null;
    const random = new SeededRandom(mixWords([this.config.seed >>> 0, LABEL_STREAM, step >>> 0]));
    return Float32Array.from({ length: count }, () => random.nextInt(classes));
  }

  /** The labels of sample grids: one row of `perClass` images per class, in class order. */
  sampleLabels(perClass: number): Float32Array {
    return classRows(this.config.model.classes, perClass);
  }

  /** Class indices on the GPU, for a conditional model's forward passes. */
  private classTensor(labels: Float32Array | null | undefined): Tensor | undefined {
    return labels ? Tensor.fromArray(this.gpu, labels, [labels.length]) : undefined;
  }

  /**
   * What D sees of a batch in this step's `use`: the images themselves, or their augmented
   * copies, with the use's transforms drawn and uploaded once.
   */
  private discriminatorView(use: number): (images: Tensor) => Tensor {
    const { training, model, seed, batchSize } = this.config;
    if (training.augment.length === 0) return (images) => images;
    const values = augmentTransforms(
      training.augment,
      model.imageSize,
      batchSize,
      seed,
      this.step,
      use,
    );
    const transforms = Tensor.fromArray(this.gpu, values, [batchSize, 3]);
    const background = pixelRange(model.scale)[0];
    return (images) => augmentImages(images, transforms, background);
  }

  /**
   * Runs one step on `realImages` ([batch, channels, size, size] in the pixel range of the
   * model's scale), with their class indices `realLabels` for a conditional model. The whole
   * step is recorded before anything is read back; the two losses are the only values that
   * come back.
   */
  async trainStep(realImages: Float32Array, realLabels?: Float32Array): Promise<StepLosses> {
    const { batchSize, model, training } = this.config;
    const shape = [batchSize, model.channels, model.imageSize, model.imageSize];
    if (model.classes > 0 !== (realLabels !== undefined)) {
      throw new ShaderganError(
        model.classes > 0
          ? 'a conditional GAN trains on labelled images: the data set has no labels'
          : 'this GAN is not conditional; it trains without labels',
      );
    }

    const losses = await asyncScope(async () => {
      this.generator.train();
      this.discriminator.train();
      const real = Tensor.fromArray(this.gpu, realImages, shape);
      const realClasses = this.classTensor(realLabels);
      const fakeClasses = this.classTensor(this.labelsFor(this.step, batchSize));
      const fake = this.generator.forward(this.noiseFor(this.step, batchSize), fakeClasses);
      // Augmented once: D's step sees it detached, G's step back-propagates through it.
      const fakeSeen = this.discriminatorView(AUGMENT_FAKE)(fake);
      const realSeen = this.discriminatorView(AUGMENT_REAL)(real);

      const lossReal = bceWithLogits(
        this.discriminator.forward(realSeen, realClasses),
        training.realTarget,
      );
      const lossFake = bceWithLogits(this.discriminator.forward(fakeSeen.detach(), fakeClasses), 0);
      const lossD = add(lossReal, lossFake);
      backward(lossD);
      this.optimizerD.step();

      // D is frozen while G learns: its weight gradients would be computed only to be dropped.
      // G's target stays 1: label smoothing is one-sided, for D's real images only.
      const lossG = withFrozen(this.discriminator, () => {
        const loss = bceWithLogits(this.discriminator.forward(fakeSeen, fakeClasses), 1);
        backward(loss);
        return loss;
      });
      this.optimizerG.step();

      const discriminator = await lossD.item('training step');
      return { discriminator, generator: await lossG.item() };
    });
    this.step += 1;
    return losses;
  }

  /**
   * Generator output for `noise` (and class indices `labels`, for a conditional model) with
   * batch norm in inference mode; nothing is recorded.
   */
  async generate(noise: Tensor, labels?: Float32Array): Promise<Float32Array> {
    return asyncScope(async () => {
      this.generator.eval();
      const classes = this.classTensor(labels);
      const images = noGrad(() => this.generator.forward(noise, classes));
      this.generator.train();
      return images.toArray();
    });
  }

  /** Every tensor a checkpoint holds, by name. */
  namedTensors(): Array<[string, Tensor]> {
    return [
      ...prefixed('generator.', this.generator.stateDict()),
      ...prefixed('discriminator.', this.discriminator.stateDict()),
      ...prefixed('optimizer.generator.', new Map(this.optimizerG.namedState())),
      ...prefixed('optimizer.discriminator.', new Map(this.optimizerD.namedState())),
    ];
  }

  /** Batch-norm batch counters by state_dict name (`...num_batches_tracked`). */
  batchCounters(): Array<[string, BatchNorm2d]> {
    return [
      ...countersOf('generator.', this.generator),
      ...countersOf('discriminator.', this.discriminator),
    ];
  }

  dispose(): void {
    this.generator.dispose();
    this.discriminator.dispose();
    this.optimizerG.dispose();
    this.optimizerD.dispose();
  }
}

/** Class indices 0, 0, ..., 1, 1, ...: `perClass` of each class, a grid row per class. */
export function classRows(classes: number, perClass: number): Float32Array {
  return Float32Array.from({ length: classes * perClass }, (_, index) =>
    Math.floor(index / perClass),
  );
}

/**
 * Runs `body` (a forward and its backward) with the module's parameters marked as not needing
 * gradients, so the backward rules skip their weight-gradient kernels.
 */
function withFrozen<T>(module: Module, body: () => T): T {
  const parameters = module.parameters();
  for (const parameter of parameters) parameter.requiresGrad = false;
  try {
    return body();
  } finally {
    for (const parameter of parameters) parameter.requiresGrad = true;
  }
}

function prefixed(prefix: string, named: Map<string, Tensor>): Array<[string, Tensor]> {
  return [...named].map(([name, tensor]) => [prefix + name, tensor]);
}

function countersOf(prefix: string, model: Module): Array<[string, BatchNorm2d]> {
  return model
    .namedModules()
    .filter((entry): entry is [string, BatchNorm2d] => entry[1] instanceof BatchNorm2d)
    .map(([name, module]) => [`${prefix}${name}.num_batches_tracked`, module]);
}
