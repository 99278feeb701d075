// Softmax cross-entropy against float64 and finite differences, and the Fashion-MNIST
// classifier: training on real images, save and load, classifyImages, and the CLI's errors.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { beforeAll, describe, expect, it } from 'vitest';

import { backward } from '../src/autograd/elementwise.ts';
import { softmaxCrossEntropy } from '../src/autograd/softmax.ts';
import { noGrad, tapeLength } from '../src/autograd/tape.ts';
import { Tensor } from '../src/autograd/tensor.ts';
import {
  buildClassifier,
  classifyImages,
  countCorrect,
  imagesFromBytes,
  loadClassifier,
  saveClassifier,
} from '../src/classify/classifier.ts';
import {
  ClassifierTrainer,
  learningRateAt,
  loadLabeledImages,
  trainingBatch,
  type LabeledImages,
} from '../src/classify/train.ts';
import { ShaderganError } from '../src/errors.ts';
import type { Gpu } from '../src/kernels/gpu.ts';
import { BatchNorm2d } from '../src/nn/layers.ts';
import { DEFAULT_DATA_DIR } from '../src/train/idx.ts';
import { writeSafetensors } from '../src/train/safetensors.ts';
import { maxError, numericGradient, randomArray, tensorOf, testGpu } from './helpers.ts';

let gpu: Gpu;
let work: string;
beforeAll(async () => {
  gpu = await testGpu();
  work = mkdtempSync(join(tmpdir(), 'shadergan-classifier-'));
});

/** PyTorch's CrossEntropyLoss (mean, class-index targets) in float64. */
function referenceLoss(
  logits: ArrayLike<number>,
  labels: ArrayLike<number>,
  classes: number,
): number {
  let total = 0;
  for (let row = 0; row < labels.length; row += 1) {
    const values = Array.from({ length: classes }, (_, column) => logits[row * classes + column]);
    const largest = Math.max(...values);
    const logSumExp = largest + Math.log(values.reduce((s, x) => s + Math.exp(x - largest), 0));
    total += logSumExp - values[labels[row]];
  }
  return total / labels.length;
}

function labelsFor(rows: number, classes: number, seed: number): Uint32Array {
  return Uint32Array.from(randomArray(rows, seed, 0, classes), (value) => Math.floor(value));
}

interface LossCase {
  name: string;
  rows: number;
  classes: number;
  /** Logits drawn from [-spread, spread). */
  spread: number;
}

const lossCases: LossCase[] = [
  { name: 'one row, one class', rows: 1, classes: 1, spread: 3 },
  { name: 'one row of 10', rows: 1, classes: 10, spread: 3 },
  { name: '7 rows of 3', rows: 7, classes: 3, spread: 4 },
  { name: '33 rows of 10 (two partial sums)', rows: 33, classes: 10, spread: 5 },
  { name: '100 rows of 10, wide spread', rows: 100, classes: 10, spread: 30 },
  { name: '5000 rows of 10', rows: 5000, classes: 10, spread: 8 },
];

describe.each(lossCases)('softmaxCrossEntropy: $name', ({ rows, classes, spread }) => {
  const count = rows * classes;
  const logits = randomArray(count, count + 21, -spread, spread);
  const labels = labelsFor(rows, classes, rows + 22);
  // Compare with the float32 values the GPU actually sees.
  const logits32 = Float64Array.from(Float32Array.from(logits));

  it('matches the float64 loss', async () => {
    const loss = noGrad(() => softmaxCrossEntropy(tensorOf(gpu, logits, [rows, classes]), labels));
    expect(loss.shape).toEqual([1]);
    const expected = referenceLoss(logits32, labels, classes);
    expect(Math.abs((await loss.item()) - expected)).toBeLessThan(2e-6 * Math.max(1, expected));
  });

  it('has the gradient of finite differences', async () => {
    if (count > 1000) return; // finite differences cost count^2
    const logitsTensor = tensorOf(gpu, logits, [rows, classes], true);
    const loss = softmaxCrossEntropy(logitsTensor, labels);
    const upstream = 1.5;
    const [gradLogits] = loss.creator!.backward(tensorOf(gpu, [upstream], [1]));

    const expected = numericGradient((x) => upstream * referenceLoss(x, labels, classes), logits32);
    // The gradients are of order 1 / rows: compare relative to that scale.
    const actual = Array.from(await gradLogits!.toArray(), (value) => value * rows);
    expect(
      maxError(
        actual,
        Array.from(expected, (value) => value * rows),
      ),
    ).toBeLessThan(1e-4);
  });
});

describe('softmaxCrossEntropy at large logits', () => {
  // Rows whose label holds the largest, the smallest and a middle logit of ±80 and ±1e4.
  const logits = [80, -80, 0, -80, 80, 0, 0, 80, -80, 1e4, -1e4, 0, -1e4, 1e4, 0];
  const labels = [0, 0, 1, 0, 0];
  const rows = 5;
  const classes = 3;

  it('gives a finite loss and gradient equal to float64', async () => {
    const logitsTensor = tensorOf(gpu, logits, [rows, classes], true);
    const loss = softmaxCrossEntropy(logitsTensor, labels);
    const [gradLogits] = loss.creator!.backward(tensorOf(gpu, [1], [1]));

    const value = await loss.item();
    expect(Number.isFinite(value)).toBe(true);
    expect(value).toBeCloseTo(referenceLoss(logits, labels, classes), 3);

    const gradient = await gradLogits!.toArray();
    for (let row = 0; row < rows; row += 1) {
      const values = logits.slice(row * classes, (row + 1) * classes);
      const largest = Math.max(...values);
      const total = values.reduce((s, x) => s + Math.exp(x - largest), 0);
      for (let column = 0; column < classes; column += 1) {
        const probability = Math.exp(values[column] - largest) / total;
        const expected = (probability - (column === labels[row] ? 1 : 0)) / rows;
        const actual = gradient[row * classes + column];
        expect(Number.isFinite(actual)).toBe(true);
        expect(actual).toBeCloseTo(expected, 6);
      }
    }
  });

  it('keeps the precision of a tiny loss when the label is confidently right', async () => {
    // log(1 + 2 exp(-20)) = 4.1e-9, which log(sum) - x would round to 0.
    const loss = await softmaxCrossEntropy(tensorOf(gpu, [20, 0, 0], [1, 3]), [0]).item();
    const expected = Math.log1p(2 * Math.exp(-20));
    expect(Math.abs(loss - expected) / expected).toBeLessThan(1e-5);
  });
});

describe('softmaxCrossEntropy in a graph', () => {
  it('back-propagates (softmax - onehot) / rows into .grad', async () => {
    const logits = tensorOf(gpu, [0, 0, 0, 0, 0, 0, 0, 0], [2, 4], true);
    backward(softmaxCrossEntropy(logits, Uint8Array.of(1, 3)));
    const third = 0.25 / 2;
    expect([...(await logits.grad!.toArray())]).toEqual([
      third,
      third - 0.5,
      third,
      third,
      third,
      third,
      third,
      third - 0.5,
    ]);
  });

  it('records nothing without gradients', () => {
    const before = tapeLength();
    noGrad(() => softmaxCrossEntropy(tensorOf(gpu, [1, 2], [1, 2], true), [1]));
    softmaxCrossEntropy(tensorOf(gpu, [1, 2], [1, 2]), [1]);
    expect(tapeLength()).toBe(before);
  });

  it('rejects labels that are out of range, fractional or miscounted, and 1-D logits', () => {
    const logits = tensorOf(gpu, [0, 0, 0, 0, 0, 0], [2, 3]);
    expect(() => softmaxCrossEntropy(logits, [0, 3])).toThrow(/label 3 of row 1/);
    expect(() => softmaxCrossEntropy(logits, [0, -1])).toThrow(ShaderganError);
    expect(() => softmaxCrossEntropy(logits, [0.5, 1])).toThrow(/not a class index/);
    expect(() => softmaxCrossEntropy(logits, [0])).toThrow(/1 labels given/);
    expect(() => softmaxCrossEntropy(tensorOf(gpu, [0, 0], [2]), [0, 0])).toThrow(
      /\[rows, classes\]/,
    );
  });
});

describe('training helpers', () => {
  it('decays the learning rate along half a cosine to 0', () => {
    expect(learningRateAt(0, 100, 2e-3)).toBe(2e-3);
    expect(learningRateAt(50, 100, 2e-3)).toBeCloseTo(1e-3, 12);
    expect(learningRateAt(100, 100, 2e-3)).toBeCloseTo(0, 12);
  });

  it('builds batches in [-1, 1] and mirrors an image left to right when flipped', () => {
    const plane = 28 * 28;
    const pixels = Uint8Array.from({ length: 2 * plane }, (_, index) => index % 256);
    const data: LabeledImages = { pixels, labels: Uint8Array.of(4, 7), count: 2 };
    const order = Uint32Array.of(1, 0);
    const plain = trainingBatch(data, order, 0, 2, null);
    expect([...plain.labels]).toEqual([7, 4]);
    expect(plain.images[0]).toBeCloseTo(pixels[plane] / 127.5 - 1, 6);

    const flipsEverything = { next: (): number => 0 };
    const flipped = trainingBatch(data, order, 0, 2, flipsEverything);
    for (const row of [0, 13, 27]) {
      for (const column of [0, 5, 27]) {
        expect(flipped.images[row * 28 + column]).toBe(plain.images[row * 28 + (27 - column)]);
      }
    }
  });
});

const haveData = existsSync(DEFAULT_DATA_DIR);

describe.runIf(haveData)('the classifier on real Fashion-MNIST', () => {
  let train: LabeledImages;
  beforeAll(() => {
    train = loadLabeledImages(DEFAULT_DATA_DIR, 'train');
  });

  it('lowers the loss over a few steps on a small slice', async () => {
    const classifier = buildClassifier(gpu, 1);
    const trainer = new ClassifierTrainer(classifier, 2e-3);
    const order = Uint32Array.from({ length: 128 }, (_, index) => index);
    const passLosses: number[] = [];
    for (let pass = 0; pass < 3; pass += 1) {
      let total = 0;
      for (let index = 0; index < 4; index += 1) {
        const batch = trainingBatch(train, order, index, 32, null);
        total += (await trainer.step(batch.images, batch.labels, 2e-3)).loss;
      }
      passLosses.push(total / 4);
    }
    // Chance is log(10) = 2.3.
    expect(passLosses[0]).toBeGreaterThan(1);
    expect(passLosses[2]).toBeLessThan(0.6 * passLosses[0]);
    trainer.dispose();
    classifier.dispose();
  });

  it('saves and loads to identical logits, statistics and info', async () => {
    const classifier = buildClassifier(gpu, 3);
    const trainer = new ClassifierTrainer(classifier, 1e-3);
    const order = Uint32Array.from({ length: 64 }, (_, index) => 64 + index);
    for (let index = 0; index < 2; index += 1) {
      const batch = trainingBatch(train, order, index, 32, null);
      await trainer.step(batch.images, batch.labels, 1e-3);
    }
    const path = join(work, 'round-trip.safetensors');
    await saveClassifier(path, classifier, { testAccuracy: '0.5', seed: '3' });

    const images = imagesFromBytes(train.pixels.subarray(0, 20 * 784));
    const before = await classifyImages(classifier, images, 20);
    const { classifier: loaded, info } = loadClassifier(gpu, path);
    const after = await classifyImages(loaded, images, 20);
    expect(info).toEqual({ testAccuracy: '0.5', seed: '3' });
    expect(loaded.training).toBe(false);
    expect(after.logits).toEqual(before.logits);
    expect(after.features).toEqual(before.features);
    const counters = (model: typeof classifier): number[] =>
      model
        .namedModules()
        .flatMap(([, module]) => (module instanceof BatchNorm2d ? [module.batchesTracked] : []));
    expect(counters(loaded)).toEqual([2, 2, 2]);
    expect(counters(loaded)).toEqual(counters(classifier));
    trainer.dispose();
    classifier.dispose();
    loaded.dispose();
  });

  it('classifyImages gives what forward and features give in eval mode, by chunks', async () => {
    const classifier = buildClassifier(gpu, 5);
    const count = 7;
    const images = imagesFromBytes(train.pixels.subarray(0, count * 784));
    const { logits, features } = await classifyImages(classifier, images, count, { chunk: 3 });
    expect(classifier.training).toBe(true);
    expect(logits.length).toBe(count * 10);
    expect(features.length).toBe(count * classifier.featureSize);

    classifier.eval();
    const input = Tensor.fromArray(gpu, images, [count, 1, 28, 28]);
    const direct = noGrad(() => classifier.forward(input));
    const directFeatures = noGrad(() => classifier.features(input));
    expect(maxError(logits, await direct.toArray())).toBeLessThan(1e-5);
    expect(maxError(features, await directFeatures.toArray())).toBeLessThan(1e-5);
    expect(Math.min(...features)).toBeGreaterThanOrEqual(0); // after a ReLU
    expect(countCorrect(logits, train.labels)).toBeLessThanOrEqual(count);
    for (const tensor of [input, direct, directFeatures]) tensor.dispose();

    await expect(classifyImages(classifier, images, count + 1)).rejects.toThrow(/not 8 images/);
    expect((await classifyImages(classifier, new Float32Array(0), 0)).logits.length).toBe(0);
    classifier.dispose();
  });
});

describe('loadClassifier errors', () => {
  it('names the command that makes a classifier when the file is missing or not one', () => {
    expect(() => loadClassifier(gpu, join(work, 'none.safetensors'))).toThrow(
      /no classifier at .*shadergan classify train/,
    );
    const junk = join(work, 'junk.safetensors');
    writeFileSync(junk, 'not a safetensors file');
    expect(() => loadClassifier(gpu, junk)).toThrow(/not a valid checkpoint.*classify train/);
    const other = join(work, 'other.safetensors');
    writeSafetensors(other, [], { format: 'shadergan-dcgan-1' });
    expect(() => loadClassifier(gpu, other)).toThrow(
      /not a shadergan classifier \(it has format 'shadergan-dcgan-1'.*classify train/,
    );
  });
});

describe('shadergan classify CLI errors', () => {
  const BIN = join(import.meta.dirname, '..', 'bin', 'shadergan.js');
  const shadergan = (...args: string[]): { status: number | null; stderr: string } => {
    const result = spawnSync(process.execPath, [BIN, ...args], {
      encoding: 'utf8',
      env: { ...process.env, XDG_RUNTIME_DIR: '/tmp' },
    });
    return { status: result.status, stderr: result.stderr };
  };

  it('refuses a missing data folder before training', () => {
    const result = shadergan('classify', 'train', '--data', join(work, 'no-data'));
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/data folder .*no-data does not exist/);
  });

  it('refuses an --out that is a folder or not a .safetensors file', () => {
    const folder = shadergan('classify', 'train', '--out', work + '/x.safetensors/..');
    expect(folder.status).toBe(1);
    expect(folder.stderr).toMatch(/must name a \.safetensors file/);
    const dir = join(work, 'dir.safetensors');
    mkdirSync(dir);
    const isFolder = shadergan('classify', 'train', '--out', dir);
    expect(isFolder.status).toBe(1);
    expect(isFolder.stderr).toMatch(/is a folder/);
  });

  it('refuses to replace a file that is not a classifier, and leaves it as it was', () => {
    const other = join(work, 'checkpoint.safetensors');
    writeFileSync(other, 'a GAN checkpoint, say');
    const result = shadergan('classify', 'train', '--out', other);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('exists and is not a classifier');
    expect(readFileSync(other, 'utf8')).toBe('a GAN checkpoint, say');
  });

  it('names classify train when testing a classifier that is not there', () => {
    const result = shadergan('classify', 'test', '--checkpoint', join(work, 'gone.safetensors'));
    expect(result.status).toBe(1);
    expect(result.stderr).toContain("train one with 'shadergan classify train'");
  });
});
