// A short training run on a small synthetic image set, through the whole stack.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { beforeAll, describe, expect, it } from 'vitest';

import type { Gpu } from '../src/kernels/gpu.ts';
import { loadCheckpoint, saveCheckpoint } from '../src/train/checkpoint.ts';
import { Gan, type GanConfig } from '../src/train/gan.ts';
import { writeIdx } from '../src/train/idx.ts';
import { readSafetensors } from '../src/train/safetensors.ts';
import { runTraining } from '../src/train/run.ts';
import { maxError, smallGanConfig, testGpu } from './helpers.ts';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await testGpu();
});

const config: GanConfig = smallGanConfig({ seed: 7 });

/** Bright squares of varying size and place on a dark background: easy to tell apart. */
function syntheticImages(count: number, seed: number): Float32Array {
  const images = new Float32Array(count * 28 * 28).fill(-1);
  for (let image = 0; image < count; image += 1) {
    const side = 6 + ((image * 7 + seed) % 10);
    const top = (image * 3 + seed) % (28 - side);
    const left = (image * 5) % (28 - side);
    for (let row = top; row < top + side; row += 1) {
      for (let column = left; column < left + side; column += 1) {
        images[image * 784 + row * 28 + column] = 1;
      }
    }
  }
  return images;
}

function writeFixture(directory: string, count: number): void {
  const floats = syntheticImages(count, 3);
  const bytes = Uint8Array.from(floats, (value) => Math.round((value + 1) * 127.5));
  writeIdx(join(directory, 'train-images-idx3-ubyte.gz'), [count, 28, 28], bytes, { gzip: true });
  const labels = Uint8Array.from({ length: count }, (_, index) => index % 10);
  writeIdx(join(directory, 'train-labels-idx1-ubyte.gz'), [count], labels, { gzip: true });
}

const silent = { write: (): boolean => true, isTTY: false };

describe('GAN training', () => {
  it('changes losses and generator output; allocates nothing after step 1, reads back only the losses', async () => {
    const gan = new Gan(gpu, config);
    const noise = gan.fixedNoise(4).keep();
    const before = await gan.generate(noise);

    const first = await gan.trainStep(syntheticImages(8, 0));
    const allocationsAfterFirstStep = gpu.pool.allocations;
    let last = first;
    const readsBefore = gpu.readCount;
    for (let step = 1; step < 6; step += 1) last = await gan.trainStep(syntheticImages(8, step));
    // Two values per step, the losses the progress bar shows; nothing else leaves the GPU.
    expect(gpu.readCount - readsBefore).toBe(2 * 5);
    const after = await gan.generate(noise);

    expect(gpu.pool.allocations).toBe(allocationsAfterFirstStep);
    // Both optimizers consumed their gradients; none is left to leak into the next step.
    const parameters = [...gan.generator.parameters(), ...gan.discriminator.parameters()];
    expect(parameters.every((parameter) => parameter.grad === null)).toBe(true);
    expect(parameters.every((parameter) => parameter.requiresGrad)).toBe(true);
    expect(Number.isFinite(first.discriminator) && Number.isFinite(first.generator)).toBe(true);
    expect(last.discriminator).not.toBeCloseTo(first.discriminator, 4);
    expect(last.generator).not.toBeCloseTo(first.generator, 4);
    expect(maxError(after, before)).toBeGreaterThan(1e-3);
    expect(gan.step).toBe(6);
    noise.dispose();
    gan.dispose();
  });

  it('reloads a checkpoint to identical outputs and PyTorch state_dict names', async () => {
    const directory = mkdtempSync(join(tmpdir(), 'shadergan-ckpt-'));
    const path = join(directory, 'checkpoint.safetensors');
    const gan = new Gan(gpu, config);
    await gan.trainStep(syntheticImages(8, 1));
    await saveCheckpoint(path, gan);

    const { gan: reloaded, info } = loadCheckpoint(gpu, path);
    expect(info.step).toBe(1);
    expect(reloaded.optimizerG.stepCount).toBe(1);
    const noise = gan.fixedNoise(4).keep();
    expect(await reloaded.generate(noise)).toEqual(await gan.generate(noise));

    const names = [...readSafetensors(path).tensors.keys()];
    expect(names).toContain('generator.main.0.weight');
    expect(names).toContain('generator.main.1.running_mean');
    expect(names).toContain('generator.main.1.num_batches_tracked');
    expect(names).toContain('discriminator.main.2.weight');
    expect(names).toContain('optimizer.generator.main.0.weight.exp_avg_sq');
    const stored = readSafetensors(path).tensors;
    // Transposed convolution weights are [in, out, kh, kw]; convolution weights [out, in, kh, kw].
    expect(stored.get('generator.main.0.weight')?.shape).toEqual([8, 16, 7, 7]);
    expect(stored.get('discriminator.main.0.weight')?.shape).toEqual([4, 1, 4, 4]);
    noise.dispose();
    gan.dispose();
    reloaded.dispose();
  });

  it('resumes exactly: 2 + 2 steps equal 4 uninterrupted steps', async () => {
    const data = mkdtempSync(join(tmpdir(), 'shadergan-data-'));
    writeFixture(data, 40);
    const settings = { dataDir: data, epochs: 1, sampleEvery: 100, checkpointEvery: 100 };
    const common = { gpu, stream: silent };
    const straight = mkdtempSync(join(tmpdir(), 'shadergan-run-'));
    await runTraining({
      ...common,
      outDir: straight,
      start: { kind: 'new', config, settings: { ...settings, steps: 4 } },
    });
    const split = mkdtempSync(join(tmpdir(), 'shadergan-run-'));
    await runTraining({
      ...common,
      outDir: split,
      start: { kind: 'new', config, settings: { ...settings, steps: 2 } },
    });
    const resumed = await runTraining({
      ...common,
      outDir: split,
      start: { kind: 'resume', checkpoint: split, overrides: { steps: 4 } },
    });

    expect(resumed.step).toBe(4);
    const a = readSafetensors(join(straight, 'checkpoint.safetensors'));
    const b = readSafetensors(join(split, 'checkpoint.safetensors'));
    expect(b.metadata.step).toBe('4');
    for (const [name, tensor] of a.tensors) {
      const other = b.tensors.get(name)?.data;
      if (tensor.data instanceof Float32Array) {
        expect(maxError(other as Float32Array, tensor.data), name).toBeLessThan(1e-6);
      } else {
        expect(other, name).toEqual(tensor.data);
      }
    }
    const metrics = readFileSync(join(split, 'metrics.jsonl'), 'utf8').trim().split('\n');
    expect(metrics.map((line) => JSON.parse(line).step)).toEqual([1, 2, 3, 4]);
  });

  it('rejects a corrupt checkpoint with a clear message', () => {
    const directory = mkdtempSync(join(tmpdir(), 'shadergan-bad-'));
    const path = join(directory, 'broken.safetensors');
    writeFileSync(path, Buffer.from('this is not a checkpoint at all'));
    expect(() => loadCheckpoint(gpu, path)).toThrow(/broken\.safetensors/);
  });

  it('has no tensors left over after a step beyond parameters and optimizer state', async () => {
    const gan = new Gan(gpu, config);
    await gan.trainStep(syntheticImages(8, 2));
    const inUse = gpu.pool.bytesInUse;
    await gan.trainStep(syntheticImages(8, 3));
    expect(gpu.pool.bytesInUse).toBe(inUse);
    gan.dispose();
  });
});
