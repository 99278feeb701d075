// Recipe options and conditional GANs at the library level: what each option builds, that a
// step trains with it, and that every draw of randomness is reproducible.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { beforeAll, describe, expect, it } from 'vitest';

import { asyncScope, noGrad } from '../src/autograd/tape.ts';
import { Tensor } from '../src/autograd/tensor.ts';
import type { Gpu } from '../src/kernels/gpu.ts';
import { loadCheckpoint, saveCheckpoint } from '../src/train/checkpoint.ts';
import { ImageDataset } from '../src/train/data.ts';
import { completeGanConfig, Gan, type GanConfig } from '../src/train/gan.ts';
import { RADFORD_RECIPE, type ModelConfig } from '../src/train/models.ts';
import { augmentTransforms, maxShift, parseAugment, PRESETS } from '../src/train/recipe.ts';
import { smallGanConfig, testGpu } from './helpers.ts';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await testGpu();
});

const BATCH = 8;

function configWith(
  model: Partial<ModelConfig>,
  training: Partial<GanConfig['training']> = {},
): GanConfig {
  return smallGanConfig({ seed: 5, model, training });
}

/** Half-bright squares on the low end of `range`. */
function images(count: number, range: [number, number] = [-1, 1]): Float32Array {
  const out = new Float32Array(count * 28 * 28).fill(range[0]);
  for (let image = 0; image < count; image += 1) {
    for (let row = 4 + image; row < 16 + image; row += 1) {
      for (let column = 6; column < 20; column += 1)
        out[image * 784 + row * 28 + column] = range[1];
    }
  }
  return out;
}

const labels = (count: number): Float32Array =>
  Float32Array.from({ length: count }, (_, i) => i % 10);

function names(gan: Gan): string[] {
  return gan.namedTensors().map(([name]) => name);
}

describe('model recipe options', () => {
  it('batch norm off: no batch-norm layers, and the hidden layers get biases', () => {
    const gan = new Gan(gpu, configWith({ batchNorm: false }));
    const all = names(gan);
    expect(all.some((name) => name.includes('running_mean'))).toBe(false);
    expect(all).toContain('generator.main.0.bias');
    expect(all).toContain('discriminator.main.2.bias');
    // The output layers keep no bias, as in DCGAN.
    expect(all).not.toContain('discriminator.main.4.bias');
    gan.dispose();
  });

  it("describes G's LeakyReLU, D's slope and the GAP head in the layer list", () => {
    const gan = new Gan(
      gpu,
      configWith({
        generatorActivation: 'leaky',
        discriminatorSlope: 0.1,
        discriminatorHead: 'gap',
      }),
    );
    const layers = (model: Gan['generator'] | Gan['discriminator']): string[] =>
      model.namedModules().map(([, module]) => module.describe());
    expect(layers(gan.generator)).toContain('LeakyReLU(0.2)');
    expect(layers(gan.generator)).not.toContain('ReLU()');
    expect(layers(gan.discriminator)).toContain('LeakyReLU(0.1)');
    expect(layers(gan.discriminator)).toContain('GlobalAvgPool()');
    expect(layers(gan.discriminator)).toContain('Linear(8, 1, bias=true)');
    gan.dispose();
  });

  it('sigmoid scale: the generator draws pixels in [0, 1]', async () => {
    const gan = new Gan(gpu, configWith({ scale: 'sigmoid' }));
    const out = await gan.generate(gan.fixedNoise(16));
    expect(Math.min(...out)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...out)).toBeLessThanOrEqual(1);
    expect(Math.min(...out)).toBeLessThan(0.5);
    gan.dispose();
  });

  it('refuses recipe options the tf-tutorial model does not have', () => {
    const config = configWith({ architecture: 'tf-tutorial', discriminatorHead: 'gap' });
    expect(() => new Gan(gpu, config)).toThrow(/tf-tutorial model .* discriminatorHead/);
  });

  it('refuses impossible values with the field named', () => {
    expect(() => new Gan(gpu, configWith({ discriminatorSlope: 1.5 }))).toThrow(/slope/);
    expect(() => new Gan(gpu, configWith({}, { realTarget: 0.3 }))).toThrow(/--label-smoothing/);
    expect(() => new Gan(gpu, configWith({ classes: -1 }))).toThrow(/classes/);
  });

  it('reads a config written before recipes existed as the Radford recipe', () => {
    const old = configWith({});
    const stripped = JSON.parse(JSON.stringify(old)) as Record<string, unknown>;
    delete stripped.training;
    const model = stripped.model as Record<string, unknown>;
    for (const key of Object.keys(RADFORD_RECIPE)) delete model[key];
    expect(completeGanConfig(stripped as unknown as GanConfig)).toEqual(old);
  });
});

describe('training with recipes', () => {
  it('every preset trains: finite losses that move', async () => {
    for (const [name, preset] of Object.entries(PRESETS)) {
      const gan = new Gan(gpu, configWith(preset.model, preset.training));
      const first = await gan.trainStep(images(BATCH));
      let last = first;
      for (let step = 0; step < 3; step += 1) last = await gan.trainStep(images(BATCH));
      expect(Number.isFinite(last.discriminator) && Number.isFinite(last.generator), name).toBe(
        true,
      );
      expect(last.discriminator, name).not.toBe(first.discriminator);
      gan.dispose();
    }
  });

  it("one-sided label smoothing moves D's real term by (1 - target) * mean real logit", async () => {
    const smooth = new Gan(gpu, configWith({}, { realTarget: 0.9 }));
    const plain = new Gan(gpu, configWith({}));
    const real = images(BATCH);
    const meanLogit = await asyncScope(async () => {
      const logits = noGrad(() =>
        plain.discriminator.forward(Tensor.fromArray(gpu, real, [BATCH, 1, 28, 28])),
      );
      const values = await logits.toArray();
      return values.reduce((a, b) => a + b, 0) / values.length;
    });
    // The forward above ran D in training mode, as the step does; batch norm's running
    // statistics moved, but the step's losses use batch statistics only.
    const a = await smooth.trainStep(real);
    const b = await plain.trainStep(real);
    expect(a.discriminator - b.discriminator).toBeCloseTo(0.1 * meanLogit, 4);
    smooth.dispose();
    plain.dispose();
  });

  it('augmentation changes what D sees, reproducibly', async () => {
    const run = async (augment: GanConfig['training']['augment']): Promise<number> => {
      const gan = new Gan(gpu, configWith({}, { augment }));
      const losses = await gan.trainStep(images(BATCH));
      gan.dispose();
      return losses.discriminator;
    };
    const plain = await run([]);
    const augmented = await run(['flip', 'translate']);
    expect(augmented).not.toBeCloseTo(plain, 5);
    expect(await run(['flip', 'translate'])).toBe(augmented);
  });
});

describe('data for a recipe', () => {
  const pixels = Uint8Array.from({ length: 4 * 4 }, (_, i) => i * 17); // 4 images of 2x2
  const data = new ImageDataset(pixels, 4, 2, Uint8Array.of(7, 8, 9, 6));

  it('maps pixels onto the range of the scale', () => {
    const tanh = data.batch(0, 4, 1, 1);
    const sigmoid = data.batch(0, 4, 1, 1, [0, 1]);
    for (let i = 0; i < 16; i += 1) expect(sigmoid[i]).toBeCloseTo((tanh[i] + 1) / 2, 6);
    expect(Math.min(...sigmoid)).toBe(0);
    expect(Math.max(...sigmoid)).toBeCloseTo(1, 6);
  });

  it("gives each batch image's label, in the batch's order", () => {
    for (const step of [0, 1, 5]) {
      const images = data.batch(step, 2, 3, 1, [0, 255]);
      const labels = data.batchLabels(step, 2, 3);
      for (let item = 0; item < 2; item += 1) {
        const index = Math.round(images[item * 4]) / 68; // the first pixel of image k is 68k
        expect(labels[item]).toBe([7, 8, 9, 6][index]);
      }
    }
  });
});

describe('augmentation transforms', () => {
  it('flip draws 0 or 1 and no shift; translate stays within an eighth of the side', () => {
    const flips = augmentTransforms(['flip'], 28, 200, 1, 0, 0);
    const shifts = augmentTransforms(['translate'], 32, 200, 1, 0, 0);
    for (let image = 0; image < 200; image += 1) {
      expect([0, 1]).toContain(flips[image * 3]);
      expect(flips[image * 3 + 1]).toBe(0);
      expect(shifts[image * 3]).toBe(0);
      expect(Math.abs(shifts[image * 3 + 1])).toBeLessThanOrEqual(maxShift(32));
      expect(Math.abs(shifts[image * 3 + 2])).toBeLessThanOrEqual(4);
    }
    expect(new Set(shifts).size).toBeGreaterThan(5);
    expect(flips.filter((_, i) => i % 3 === 0).reduce((a, b) => a + b, 0)).toBeGreaterThan(60);
  });

  it('is a pure function of seed, step and use', () => {
    const draw = (seed: number, step: number, use: number): number[] => [
      ...augmentTransforms(['flip', 'translate'], 28, 16, seed, step, use),
    ];
    expect(draw(1, 5, 0)).toEqual(draw(1, 5, 0));
    expect(draw(1, 5, 0)).not.toEqual(draw(1, 6, 0));
    expect(draw(1, 5, 0)).not.toEqual(draw(1, 5, 1));
    expect(draw(1, 5, 0)).not.toEqual(draw(2, 5, 0));
  });

  it('parses the --augment values and refuses others', () => {
    expect(parseAugment('none')).toEqual([]);
    expect(parseAugment('translate,flip')).toEqual(['flip', 'translate']);
    expect(() => parseAugment('rotate')).toThrow(/none, flip, translate/);
    expect(() => parseAugment('flip,flip')).toThrow(/twice/);
  });
});

describe('conditional GAN', () => {
  const conditional = (): GanConfig => configWith({ classes: 10 });

  it('needs labels to train and to generate, and refuses them when unconditional', async () => {
    const gan = new Gan(gpu, conditional());
    await expect(gan.trainStep(images(BATCH))).rejects.toThrow(/labelled images/);
    await expect(gan.generate(gan.fixedNoise(4))).rejects.toThrow(/needs labels \[4\]/);
    gan.dispose();
    const plain = new Gan(gpu, configWith({}));
    await expect(plain.trainStep(images(BATCH), labels(BATCH))).rejects.toThrow(/not conditional/);
    plain.dispose();
  });

  it('the class changes the image drawn from the same noise', async () => {
    const gan = new Gan(gpu, conditional());
    for (let step = 0; step < 2; step += 1) await gan.trainStep(images(BATCH), labels(BATCH));
    const noise = gan.fixedNoise(4).keep();
    const zeros = await gan.generate(noise, new Float32Array(4).fill(0));
    const sevens = await gan.generate(noise, new Float32Array(4).fill(7));
    const again = await gan.generate(noise, new Float32Array(4).fill(7));
    expect([...sevens]).toEqual([...again]);
    const largest = zeros.reduce(
      (most, value, i) => Math.max(most, Math.abs(value - sevens[i])),
      0,
    );
    expect(largest).toBeGreaterThan(1e-3);
    noise.dispose();
    gan.dispose();
  });

  it('draws fake labels from every class, reproducibly, and lays grids out by class', () => {
    const gan = new Gan(gpu, conditional());
    const drawn = gan.labelsFor(3, 500) as Float32Array;
    expect(new Set(drawn).size).toBe(10);
    expect([...drawn]).toEqual([...(gan.labelsFor(3, 500) as Float32Array)]);
    expect([...gan.sampleLabels(2)]).toEqual([
      0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9,
    ]);
    gan.dispose();
  });

  it('a checkpoint keeps the classes and the recipe', async () => {
    const config = {
      ...configWith({ classes: 10, discriminatorHead: 'gap' }, { realTarget: 0.9 }),
    };
    const gan = new Gan(gpu, config);
    await gan.trainStep(images(BATCH), labels(BATCH));
    const path = join(mkdtempSync(join(tmpdir(), 'shadergan-recipe-')), 'c.safetensors');
    await saveCheckpoint(path, gan);
    const noise = gan.fixedNoise(3).keep();
    const before = await gan.generate(noise, Float32Array.of(1, 2, 3));
    const loaded = loadCheckpoint(gpu, path);
    expect(loaded.info.config).toEqual(config);
    expect([...(await loaded.gan.generate(noise, Float32Array.of(1, 2, 3)))]).toEqual([...before]);
    noise.dispose();
    gan.dispose();
    loaded.gan.dispose();
  });
});
