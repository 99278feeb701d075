// GAN recipes: the training choices beyond the model (augmentation, label smoothing), the
// named presets users compare, and the defaults that older checkpoints are read with.
import { ShaderganError } from '../errors.ts';
import { RADFORD_RECIPE, type ModelConfig } from './models.ts';
import { mixWords, SeededRandom } from './random.ts';

export const AUGMENTATIONS = ['flip', 'translate'] as const;
export type Augmentation = (typeof AUGMENTATIONS)[number];

/** How D is trained, apart from the optimizer. */
export interface TrainingRecipe {
  /** Applied to real and fake images alike before D sees them; empty for none. */
  augment: Augmentation[];
  /** D's target for real images: 1, or e.g. 0.9 for one-sided label smoothing. */
  realTarget: number;
}

export const NO_TRICKS: TrainingRecipe = { augment: [], realTarget: 1 };

type ModelRecipe = Pick<
  ModelConfig,
  'scale' | 'batchNorm' | 'generatorActivation' | 'discriminatorSlope' | 'discriminatorHead'
>;

export interface Preset {
  summary: string;
  model: ModelRecipe;
  training: TrainingRecipe;
}

export const PRESETS = {
  baseline: {
    summary: 'plain DCGAN without batch norm: ReLU in G, LeakyReLU(0.2) in D, dense head',
    model: { ...RADFORD_RECIPE, batchNorm: false },
    training: NO_TRICKS,
  },
  radford: {
    summary: 'Radford et al.: batch norm in both nets, otherwise as baseline (the default)',
    model: { ...RADFORD_RECIPE },
    training: NO_TRICKS,
  },
  full: {
    summary:
      'every recipe trick on: batch norm, LeakyReLU in G, global-average-pooling head, ' +
      'flip and translate augmentation, real targets 0.9',
    model: {
      ...RADFORD_RECIPE,
      generatorActivation: 'leaky',
      discriminatorHead: 'gap',
    },
    training: { augment: ['flip', 'translate'], realTarget: 0.9 },
  },
} as const satisfies Record<string, Preset>;

export type PresetName = keyof typeof PRESETS;
export const PRESET_NAMES = Object.keys(PRESETS) as PresetName[];
export const DEFAULT_PRESET: PresetName = 'radford';

/** Parses `none`, `flip`, `translate` or `flip,translate` (any order, no repeats). */
export function parseAugment(text: string): Augmentation[] {
  if (text === 'none') return [];
  const parts = text.split(',').map((part) => part.trim());
  for (const part of parts) {
    if (!AUGMENTATIONS.includes(part as Augmentation)) {
      throw new ShaderganError(
        `--augment takes none, flip, translate or flip,translate; got '${text}'`,
      );
    }
  }
  const repeated = parts.find((part, index) => parts.indexOf(part) !== index);
  if (repeated !== undefined) {
    throw new ShaderganError(`--augment names '${repeated}' twice in '${text}'`);
  }
  return AUGMENTATIONS.filter((kind) => parts.includes(kind));
}

export function formatAugment(augment: readonly Augmentation[]): string {
  return augment.length === 0 ? 'none' : augment.join(',');
}

export function validateTrainingRecipe(recipe: TrainingRecipe): void {
  if (!Array.isArray(recipe.augment) || recipe.augment.some((k) => !AUGMENTATIONS.includes(k))) {
    throw new ShaderganError(
      `augment must list some of ${AUGMENTATIONS.join(', ')}, ` +
        `got ${JSON.stringify(recipe.augment)}`,
    );
  }
  const target = recipe.realTarget;
  if (typeof target !== 'number' || !(target > 0.5 && target <= 1)) {
    throw new ShaderganError(
      `the real-image target (--label-smoothing) must be in (0.5, 1], got ${target}`,
    );
  }
}

/** The largest shift of `translate`: an eighth of the image side, in whole pixels. */
export function maxShift(imageSize: number): number {
  return Math.floor(imageSize / 8);
}

/**
 * The (flip, dx, dy) of each of `count` images for one use of augmentation in one step: a pure
 * function of the seed, the step and the use, so a resumed run augments as an unbroken one.
 */
export function augmentTransforms(
  augment: readonly Augmentation[],
  imageSize: number,
  count: number,
  seed: number,
  step: number,
  use: number,
): Float32Array {
  const random = new SeededRandom(mixWords([seed >>> 0, AUGMENT_STREAM, step >>> 0, use]));
  const shift = maxShift(imageSize);
  const transforms = new Float32Array(count * 3);
  for (let image = 0; image < count; image += 1) {
    if (augment.includes('flip')) transforms[image * 3] = random.nextInt(2);
    if (augment.includes('translate')) {
      transforms[image * 3 + 1] = random.nextInt(2 * shift + 1) - shift;
      transforms[image * 3 + 2] = random.nextInt(2 * shift + 1) - shift;
    }
  }
  return transforms;
}

const AUGMENT_STREAM = 0x61756720;
