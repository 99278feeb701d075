// DCGAN models: output shapes for every image size, and parameter names and layouts that match
// PyTorch's DCGAN example (netG.main / netD.main), so checkpoints map one to one.
import { beforeAll, describe, expect, it } from 'vitest';

import { noGrad, scope } from '../src/autograd/tape.ts';
import { Tensor } from '../src/autograd/tensor.ts';
import type { Gpu } from '../src/kernels/gpu.ts';
import { initDcgan } from '../src/nn/init.ts';
import {
  buildDiscriminator,
  buildGenerator,
  type ImageSize,
  type ModelConfig,
  RADFORD_RECIPE,
} from '../src/train/models.ts';
import { testGpu } from './helpers.ts';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await testGpu();
});

const config = (imageSize: ImageSize, channels = 1): ModelConfig => ({
  architecture: 'dcgan',
  imageSize,
  channels,
  width: 4,
  noiseSize: 6,
  ...RADFORD_RECIPE,
});

function shapes(named: Array<[string, Tensor]>): Record<string, readonly number[]> {
  return Object.fromEntries(named.map(([name, tensor]) => [name, tensor.shape]));
}

describe('DCGAN models', () => {
  it.each([28, 32, 64] as const)(
    'maps noise to %i-pixel images and images to one logit',
    (size) => {
      scope(() =>
        noGrad(() => {
          const generator = buildGenerator(gpu, config(size, 3));
          const discriminator = buildDiscriminator(gpu, config(size, 3));
          const images = generator.forward(Tensor.zeros(gpu, [2, 6]));
          expect(images.shape).toEqual([2, 3, size, size]);
          expect(discriminator.forward(images).shape).toEqual([2, 1]);
          generator.dispose();
          discriminator.dispose();
        }),
      );
    },
  );

  it('names and shapes the 64x64 parameters as PyTorch DCGAN does', () => {
    const generator = buildGenerator(gpu, config(64, 3));
    const discriminator = buildDiscriminator(gpu, config(64, 3));
    const w = 4;
    expect(shapes(generator.namedParameters())).toEqual({
      'main.0.weight': [6, 8 * w, 4, 4],
      'main.1.weight': [8 * w],
      'main.1.bias': [8 * w],
      'main.3.weight': [8 * w, 4 * w, 4, 4],
      'main.4.weight': [4 * w],
      'main.4.bias': [4 * w],
      'main.6.weight': [4 * w, 2 * w, 4, 4],
      'main.7.weight': [2 * w],
      'main.7.bias': [2 * w],
      'main.9.weight': [2 * w, w, 4, 4],
      'main.10.weight': [w],
      'main.10.bias': [w],
      'main.12.weight': [w, 3, 4, 4],
    });
    expect(generator.namedBuffers().map(([name]) => name)).toContain('main.10.running_var');
    expect(shapes(discriminator.namedParameters())).toEqual({
      'main.0.weight': [w, 3, 4, 4],
      'main.2.weight': [2 * w, w, 4, 4],
      'main.3.weight': [2 * w],
      'main.3.bias': [2 * w],
      'main.5.weight': [4 * w, 2 * w, 4, 4],
      'main.6.weight': [4 * w],
      'main.6.bias': [4 * w],
      'main.8.weight': [8 * w, 4 * w, 4, 4],
      'main.9.weight': [8 * w],
      'main.9.bias': [8 * w],
      'main.11.weight': [1, 8 * w, 4, 4],
    });
    generator.dispose();
    discriminator.dispose();
  });

  it('initialises weights N(0, 0.02) and batch-norm scales N(1, 0.02)', async () => {
    const generator = buildGenerator(gpu, { ...config(28), width: 32, noiseSize: 100 });
    initDcgan(generator, 3);
    const stats = async (tensor: Tensor): Promise<[number, number]> => {
      const values = await tensor.toArray();
      const mean = values.reduce((sum, value) => sum + value, 0) / values.length;
      const variance = values.reduce((sum, value) => sum + (value - mean) ** 2, 0) / values.length;
      return [mean, Math.sqrt(variance)];
    };
    const parameters = new Map(generator.namedParameters());
    const [weightMean, weightStd] = await stats(parameters.get('main.0.weight')!);
    expect(Math.abs(weightMean)).toBeLessThan(0.002);
    expect(weightStd).toBeCloseTo(0.02, 3);
    const [scaleMean, scaleStd] = await stats(parameters.get('main.1.weight')!);
    expect(scaleMean).toBeCloseTo(1, 2);
    expect(scaleStd).toBeGreaterThan(0.01);
    expect(scaleStd).toBeLessThan(0.03);
    expect(await parameters.get('main.1.bias')!.toArray()).toEqual(new Float32Array(128));
    generator.dispose();
  });

  it('prints like a PyTorch model', () => {
    const generator = buildGenerator(gpu, config(28));
    const text = generator.toString();
    expect(text).toContain('(main): Sequential');
    expect(text).toContain('(0): ConvTranspose2d(6, 16, kernel_size=7');
    expect(text).toMatch(/parameters$/);
    generator.dispose();
  });

  it('rejects noise of the wrong size with the expected shape in the message', () => {
    const generator = buildGenerator(gpu, config(28));
    expect(() => scope(() => generator.forward(Tensor.zeros(gpu, [2, 5])))).toThrow(
      /noise \[batch, 6\]/,
    );
    generator.dispose();
  });
});
