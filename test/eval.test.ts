// shadergan eval on a tiny labelled fixture: the floor of a set against itself is zero, the
// numbers are finite and reproducible, and the CLI writes eval.json into a run folder.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { beforeAll, describe, expect, it } from 'vitest';

import { buildClassifier, saveClassifier } from '../src/classify/classifier.ts';
import { evaluateCheckpoint, toClassifierInput } from '../src/eval/evaluate.ts';
import type { Gpu } from '../src/kernels/gpu.ts';
import { saveCheckpoint } from '../src/train/checkpoint.ts';
import { Gan, type GanConfig } from '../src/train/gan.ts';
import { writeIdx } from '../src/train/idx.ts';
import { maxError, smallGanConfig, testGpu } from './helpers.ts';

const BIN = join(import.meta.dirname, '..', 'bin', 'shadergan.js');
const COUNT = 60;

let gpu: Gpu;
let data: string;
let work: string;
let classifierPath: string;

function ganConfig(classes: number): GanConfig {
  return smallGanConfig({ seed: 3, lr: 2e-4, model: { classes } });
}

async function checkpointOf(classes: number, name: string): Promise<string> {
  const gan = new Gan(gpu, ganConfig(classes));
  const path = join(work, `${name}.safetensors`);
  await saveCheckpoint(path, gan);
  gan.dispose();
  return path;
}

beforeAll(async () => {
  gpu = await testGpu();
  data = mkdtempSync(join(tmpdir(), 'shadergan-eval-data-'));
  work = mkdtempSync(join(tmpdir(), 'shadergan-eval-'));
  // The same images in both splits: the floor compares a set with itself.
  const pixels = Uint8Array.from({ length: COUNT * 784 }, (_, i) => (i * 31 + (i >> 9)) % 256);
  const labels = Uint8Array.from({ length: COUNT }, (_, i) => i % 10);
  for (const split of ['train', 't10k']) {
    writeIdx(join(data, `${split}-images-idx3-ubyte`), [COUNT, 28, 28], pixels);
    writeIdx(join(data, `${split}-labels-idx1-ubyte`), [COUNT], labels);
  }
  classifierPath = join(work, 'classifier.safetensors');
  const classifier = buildClassifier(gpu, 1);
  await saveClassifier(classifierPath, classifier, {});
  classifier.dispose();
});

describe('evaluateCheckpoint', () => {
  it('scores an unconditional checkpoint; the floor of a set against itself is 0', async () => {
    const checkpoint = await checkpointOf(0, 'plain');
    const settings = {
      checkpoint,
      classifier: classifierPath,
      dataDir: data,
      count: COUNT,
      seed: 1,
    };
    const result = await evaluateCheckpoint(gpu, settings);
    expect(result.floor).toBeLessThan(1e-6);
    expect(result.fid).toBeGreaterThan(1e-3);
    expect(Number.isFinite(result.fid)).toBe(true);
    expect(result.classAccuracy).toBeNull();
    expect(result).toMatchObject({ step: 0, count: COUNT, testCount: COUNT, featureSize: 128 });
    // The same seed draws the same images, so the same number.
    expect((await evaluateCheckpoint(gpu, settings)).fid).toBe(result.fid);
  });

  it('gives a conditional checkpoint its class accuracy, overall and per class', async () => {
    const checkpoint = await checkpointOf(10, 'conditional');
    const result = await evaluateCheckpoint(gpu, {
      checkpoint,
      classifier: classifierPath,
      dataDir: data,
      count: 40,
      seed: 1,
    });
    expect(result.perClassAccuracy).toHaveLength(10);
    const mean = (result.perClassAccuracy as number[]).reduce((a, b) => a + b, 0) / 10;
    // Every class is asked for equally often (4 times), so the overall share is their mean.
    expect(result.classAccuracy).toBeCloseTo(mean, 10);
  });

  it('refuses fewer samples than a conditional model has classes', async () => {
    const checkpoint = await checkpointOf(10, 'conditional2');
    const settings = { checkpoint, classifier: classifierPath, dataDir: data, count: 5, seed: 0 };
    await expect(evaluateCheckpoint(gpu, settings)).rejects.toThrow(
      /--count 5 cannot ask for each of the model's 10 classes/,
    );
  });

  it('refuses more samples than the floor has training images', async () => {
    const checkpoint = await checkpointOf(0, 'plain2');
    await expect(
      evaluateCheckpoint(gpu, {
        checkpoint,
        classifier: classifierPath,
        dataDir: data,
        count: COUNT + 1,
        seed: 0,
      }),
    ).rejects.toThrow(/more than the 60 training images/);
  });
});

describe('toClassifierInput', () => {
  it('maps a sigmoid model to [-1, 1] and averages colour channels', () => {
    const sigmoid = toClassifierInput(Float32Array.of(0, 0.5, 1, 1), 1, {
      channels: 1,
      imageSize: 2 as 28,
      scale: 'sigmoid',
    });
    // A 2x2 image is resized to 28x28; its corners keep their values.
    expect(sigmoid.length).toBe(784);
    expect([sigmoid[0], sigmoid[27], sigmoid[783]]).toEqual([-1, 0, 1]);
    const colour = toClassifierInput(new Float32Array(3 * 784).fill(0).fill(1, 0, 784), 1, {
      channels: 3,
      imageSize: 28,
      scale: 'tanh',
    });
    expect(maxError(colour, new Float32Array(784).fill(1 / 3))).toBeLessThan(1e-6);
  });
});

describe('shadergan eval', () => {
  function shadergan(...args: string[]): { status: number | null; output: string } {
    const result = spawnSync(process.execPath, [BIN, ...args], {
      encoding: 'utf8',
      env: { ...process.env, XDG_RUNTIME_DIR: '/tmp' },
    });
    return { status: result.status, output: result.stdout + result.stderr };
  }

  it('evaluates a run folder, writes eval.json and puts it in report.html', () => {
    const run = join(work, 'run');
    const train = shadergan(
      'train',
      '--data',
      data,
      '--steps',
      '1',
      '--batch',
      '8',
      '--width',
      '4',
      '--out',
      run,
    );
    expect(train.status).toBe(0);
    const evaluated = shadergan(
      'eval',
      '--checkpoint',
      run,
      '--classifier',
      classifierPath,
      '--data',
      data,
      '--count',
      '20',
    );
    expect(evaluated.output).toMatch(/domain FID, 20 generated vs 60 test images: +\d+\.\d\d/);
    expect(evaluated.output).toMatch(/floor, 20 training vs 60 test images: +\d+\.\d\d/);
    expect(evaluated.status).toBe(0);
    const saved = JSON.parse(readFileSync(join(run, 'eval.json'), 'utf8'));
    expect(saved).toMatchObject({ step: 1, count: 20 });
    expect(readFileSync(join(run, 'report.html'), 'utf8')).toContain(
      `<td>${saved.fid.toFixed(2)} (20 generated vs test images)</td>`,
    );
  });

  it('explains a missing classifier and a missing checkpoint in one line', () => {
    const missing = shadergan(
      'eval',
      '--checkpoint',
      join(work, 'plain.safetensors'),
      '--classifier',
      join(work, 'none.safetensors'),
      '--data',
      data,
    );
    expect(missing.status).toBe(1);
    expect(missing.output).toContain('shadergan classify train');
    const checkpoint = join(work, 'plain.safetensors');
    const notJson = shadergan('eval', '--checkpoint', checkpoint, '--json', checkpoint);
    expect(notJson.status).toBe(1);
    expect(notJson.output).toContain("--json must name a .json file, got '");
    expect(readFileSync(checkpoint).subarray(8, 9).toString()).toBe('{');
    const noCheckpoint = shadergan('eval', '--checkpoint', join(work, 'nowhere'));
    expect(noCheckpoint.status).toBe(1);
    expect(noCheckpoint.output).toContain('no checkpoint at');
    expect(existsSync(join(work, 'eval.json'))).toBe(false);
  });
});
