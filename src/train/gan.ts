// One GAN training step, as in PyTorch's DCGAN example: update D on a real batch (target 1)
// and on detached fakes (target 0), then update G with the non-saturating loss, D(G(z)) -> 1.
import { add, backward } from '../autograd/elementwise.ts';
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
  type ModelConfig,
  validateModelConfig,
} from './models.ts';

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
}

// Separate random streams, so changing one use of randomness leaves the others as they were.
const NOISE_STREAM = 0x6e6f6973;
const FIXED_NOISE_STREAM = 0x66697865;

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
   * Runs one step on `realImages` ([batch, channels, size, size] in [-1, 1]). The whole step is
   * recorded before anything is read back; the two losses are the only values that come back.
   */
  async trainStep(realImages: Float32Array): Promise<StepLosses> {
    const { batchSize, model } = this.config;
    const shape = [batchSize, model.channels, model.imageSize, model.imageSize];

    const losses = await asyncScope(async () => {
      this.generator.train();
      this.discriminator.train();
      const real = Tensor.fromArray(this.gpu, realImages, shape);
      const fake = this.generator.forward(this.noiseFor(this.step, batchSize));

      const lossReal = bceWithLogits(this.discriminator.forward(real), 1);
      const lossFake = bceWithLogits(this.discriminator.forward(fake.detach()), 0);
      const lossD = add(lossReal, lossFake);
      backward(lossD);
      this.optimizerD.step();

      // D is frozen while G learns: its weight gradients would be computed only to be dropped.
      const lossG = withFrozen(this.discriminator, () => {
        const loss = bceWithLogits(this.discriminator.forward(fake), 1);
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

  /** Generator output for `noise` with batch norm in inference mode; nothing is recorded. */
  async generate(noise: Tensor): Promise<Float32Array> {
    return asyncScope(async () => {
      this.generator.eval();
      const images = noGrad(() => this.generator.forward(noise));
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
