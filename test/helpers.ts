// Shared test helpers: seeded random inputs, float64 comparisons and finite differences.
import { Tensor } from '../src/autograd/tensor.ts';
import type { Gpu } from '../src/kernels/gpu.ts';
import { getGpu } from '../src/kernels/gpu.ts';
import type { GanConfig } from '../src/train/gan.ts';
import { RADFORD_RECIPE, type ModelConfig } from '../src/train/models.ts';
import { NO_TRICKS, type TrainingRecipe } from '../src/train/recipe.ts';

export function testGpu(): Promise<Gpu> {
  return getGpu();
}

/** Deterministic uniform values in [low, high) from a small integer seed. */
export function randomArray(count: number, seed: number, low = -1, high = 1): Float64Array {
  let state = (seed * 2654435761) >>> 0 || 1;
  const values = new Float64Array(count);
  for (let index = 0; index < count; index += 1) {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    values[index] = low + ((state >>> 0) / 4294967296) * (high - low);
  }
  return values;
}

/** Values 0, 1, 2, ... scaled, so a failing index is easy to read. */
export function rangeArray(count: number, step = 1, start = 0): Float64Array {
  return Float64Array.from({ length: count }, (_, index) => start + index * step);
}

export function tensorOf(
  gpu: Gpu,
  values: ArrayLike<number>,
  shape: number[],
  requiresGrad = false,
): Tensor {
  return Tensor.fromArray(gpu, Float32Array.from(values), shape, requiresGrad);
}

/** Largest |a - b| / max(1, |b|): absolute near zero, relative for large values. */
export function maxError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  if (actual.length !== expected.length) {
    throw new Error(`length ${actual.length} differs from expected ${expected.length}`);
  }
  let worst = 0;
  for (let index = 0; index < actual.length; index += 1) {
    const error =
      Math.abs(actual[index] - expected[index]) / Math.max(1, Math.abs(expected[index]));
    worst = Math.max(worst, Number.isNaN(error) ? Infinity : error);
  }
  return worst;
}

/**
 * Central finite differences of a scalar float64 function: the gradient used to check every
 * backward rule.
 */
export function numericGradient(
  f: (x: Float64Array) => number,
  at: Float64Array,
  step = 1e-5,
): Float64Array {
  const gradient = new Float64Array(at.length);
  const probe = Float64Array.from(at);
  for (let index = 0; index < at.length; index += 1) {
    probe[index] = at[index] + step;
    const plus = f(probe);
    probe[index] = at[index] - step;
    const minus = f(probe);
    probe[index] = at[index];
    gradient[index] = (plus - minus) / (2 * step);
  }
  return gradient;
}

/**
 * Largest error of `actual` against central differences at a spread of entries only: for cases
 * too big to probe every entry with numericGradient.
 */
export function sampledGradientError(
  f: (x: Float64Array) => number,
  at: Float64Array,
  actual: Float32Array,
  samples = 6,
  step = 1e-3,
): number {
  const probe = Float64Array.from(at);
  let worst = 0;
  for (let sample = 0; sample < samples; sample += 1) {
    const index = Math.floor(((sample + 0.5) / samples) * at.length);
    probe[index] = at[index] + step;
    const plus = f(probe);
    probe[index] = at[index] - step;
    const minus = f(probe);
    probe[index] = at[index];
    const expected = (plus - minus) / (2 * step);
    worst = Math.max(worst, maxError([actual[index]], [expected]));
  }
  return worst;
}

/** The values of a gradient that a backward rule must have computed (not left null). */
export async function gradientValues(tensor: Tensor | null | undefined): Promise<Float32Array> {
  if (!tensor) throw new Error('expected a gradient tensor');
  return tensor.toArray();
}

/** sum(x * weights): a scalar whose gradient with respect to x is `weights`. */
export function weightedSum(values: ArrayLike<number>, weights: ArrayLike<number>): number {
  let total = 0;
  for (let index = 0; index < values.length; index += 1) total += values[index] * weights[index];
  return total;
}

/**
 * A 28x28 DCGAN of width 4, noise 8 and batch 8: small enough to train a few steps in a test.
 * Recipe fields default to Radford's, training options to none.
 */
export function smallGanConfig(options: {
  seed: number;
  lr?: number;
  model?: Partial<ModelConfig>;
  training?: Partial<TrainingRecipe>;
}): GanConfig {
  return {
    model: {
      architecture: 'dcgan',
      imageSize: 28,
      channels: 1,
      width: 4,
      noiseSize: 8,
      ...RADFORD_RECIPE,
      ...options.model,
    },
    optimizer: { lr: options.lr ?? 2e-3, beta1: 0.5, beta2: 0.999 },
    batchSize: 8,
    seed: options.seed,
    training: { ...NO_TRICKS, ...options.training },
  };
}
