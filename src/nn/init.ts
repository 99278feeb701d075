// DCGAN initialisation (Radford et al. 2015): every convolution and linear weight from
// N(0, 0.02), batch-norm scale from N(1, 0.02). Biases and shifts are created as zero.
import { affine } from '../autograd/elementwise.ts';
import { randn } from '../autograd/random.ts';
import { noGrad, scope } from '../autograd/tape.ts';
import type { Tensor } from '../autograd/tensor.ts';
import { BatchNorm2d, Conv2d, ConvTranspose2d, Linear } from './layers.ts';
import type { Module } from './module.ts';

const STANDARD_DEVIATION = 0.02;

/** Deterministic for a given seed: the k-th initialised tensor draws from stream k. */
export function initDcgan(model: Module, seed: number): void {
  let stream = 0;
  const drawNormal = (target: Tensor, mean: number): void => {
    stream += 1;
    scope(() =>
      noGrad(() => {
        const streamSeed = (Math.imul(seed, 1000003) + stream) >>> 0;
        const noise = randn(target.gpu, [...target.shape], streamSeed, 0);
        target.assign(affine(noise, STANDARD_DEVIATION, mean));
      }),
    );
  };

  for (const [, module] of model.namedModules()) {
    if (module instanceof Conv2d || module instanceof ConvTranspose2d) drawNormal(module.weight, 0);
    else if (module instanceof Linear) drawNormal(module.weight, 0);
    else if (module instanceof BatchNorm2d) drawNormal(module.weight, 1);
  }
}
