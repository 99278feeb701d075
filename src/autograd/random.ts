// Random tensors drawn on the GPU. They are leaves: nothing is recorded on the tape.
import { randomFill, type Distribution } from '../kernels/random.ts';
import type { Gpu } from '../kernels/gpu.ts';
import { Tensor } from './tensor.ts';

function draw(
  gpu: Gpu,
  distribution: Distribution,
  shape: number[],
  seed: number,
  offset: number,
): Tensor {
  const output = Tensor.empty(gpu, shape, `${distribution} random`);
  randomFill(gpu, distribution, output.buffer, output.size, seed, offset);
  return output;
}

/**
 * Standard normal values (mean 0, standard deviation 1). Element i depends only on
 * (seed, offset + i): the same arguments give the same tensor, and a later draw can continue an
 * earlier one by passing offset = the number of values drawn before.
 *
 * Limitation: Box-Muller from 24-bit uniforms never yields |value| above 5.77, where a true
 * normal lands once in about 10^8 draws.
 */
export function randn(gpu: Gpu, shape: number[], seed: number, offset = 0): Tensor {
  return draw(gpu, 'normal', shape, seed, offset);
}

/** Uniform values in [0, 1), multiples of 2^-24; same seeding as randn. */
export function rand(gpu: Gpu, shape: number[], seed: number, offset = 0): Tensor {
  return draw(gpu, 'uniform', shape, seed, offset);
}
