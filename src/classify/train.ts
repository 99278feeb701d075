// Trains the classifier on the IDX training split with Adam, a cosine learning-rate decay and
// random horizontal flips, measures accuracy on the test split after every epoch and saves the
// classifier then, so an interrupted run still leaves its last finished epoch behind.
import { backward } from '../autograd/elementwise.ts';
import { softmaxCrossEntropy } from '../autograd/softmax.ts';
import { asyncScope } from '../autograd/tape.ts';
import { Tensor } from '../autograd/tensor.ts';
import { DataError, ShaderganError } from '../errors.ts';
import type { Gpu } from '../kernels/gpu.ts';
import { Adam } from '../nn/adam.ts';
import { formatDuration, ProgressBar, type ProgressStream } from '../train/progress.ts';
import { loadImageSet, type ImageSet, type Split } from '../train/idx.ts';
import { SeededRandom, shuffledIndices } from '../train/random.ts';
import {
  buildClassifier,
  CLASS_COUNT,
  classifyImages,
  type Classifier,
  countCorrect,
  IMAGE_SIZE,
  imagesFromBytes,
  saveClassifier,
} from './classifier.ts';

export interface ClassifierTrainSettings {
  /** Folder with train-* and t10k-* IDX images and labels. */
  dataDir: string;
  epochs: number;
  batchSize: number;
  /** Adam's learning rate at the start; it decays to 0 along a cosine by the last step. */
  lr: number;
  /** Seeds the weights, the batch order and the flips. */
  seed: number;
  /** Where the classifier is written after every epoch. */
  outPath: string;
}

export interface EpochResult {
  epoch: number;
  /** Mean loss and accuracy over the epoch's training batches, as the weights moved. */
  trainLoss: number;
  trainAccuracy: number;
  testAccuracy: number;
  /** Training images per second of this epoch, not counting the test pass. */
  imagesPerSecond: number;
  /** Wall time of the epoch, test pass and save included. */
  seconds: number;
}

export interface StepResult {
  loss: number;
  /** Images of the batch whose largest logit was their label, before this step's update. */
  correct: number;
}

/** Images and labels of one IDX split, as loaded. */
export interface LabeledImages {
  /** [count, 28, 28] bytes. */
  pixels: Uint8Array;
  labels: Uint8Array;
  count: number;
}

// Adam with PyTorch's defaults, not the GAN's beta1 = 0.5: a classifier's gradients do not
// chase a moving opponent, and a longer momentum averages the batch noise.
const BETA1 = 0.9;
const BETA2 = 0.999;
/** A separate random stream for flips, so the batch order does not depend on them. */
const FLIP_STREAM = 0x666c6970;

/** Loads a split and checks that it holds the classifier's 28x28 images; labels may be absent. */
export function loadClassifierImages(dataDir: string, split: Split): ImageSet {
  const set = loadImageSet(dataDir, split);
  if (set.height !== IMAGE_SIZE || set.width !== IMAGE_SIZE) {
    throw new DataError(
      `the ${split} images in ${dataDir} are ${set.height}x${set.width}; the classifier takes ` +
        `${IMAGE_SIZE}x${IMAGE_SIZE}`,
    );
  }
  return set;
}

/** Loads a split and checks that it holds 28x28 images with labels of 10 classes. */
export function loadLabeledImages(dataDir: string, split: Split): LabeledImages {
  const set = loadClassifierImages(dataDir, split);
  if (!set.labels) {
    throw new DataError(
      `the data folder ${dataDir} has no ${split}-labels-idx1-ubyte[.gz]; training and testing ` +
        'a classifier need the labels',
    );
  }
  const outOfRange = set.labels.findIndex((label) => label >= CLASS_COUNT);
  if (outOfRange !== -1) {
    throw new DataError(
      `label ${set.labels[outOfRange]} of ${split} image ${outOfRange} is not one of the ` +
        `${CLASS_COUNT} classes`,
    );
  }
  return { pixels: set.images, labels: set.labels, count: set.count };
}

/** Adam's learning rate at `step` of `totalSteps`: half a cosine from `lr` down to 0. */
export function learningRateAt(step: number, totalSteps: number, lr: number): number {
  return (lr * (1 + Math.cos((Math.PI * step) / totalSteps))) / 2;
}

/**
 * Batch `index` of an epoch whose order is `order`: images in [-1, 1], each flipped left to
 * right when the next draw of `flips` says so (a garment mirrored is the same garment).
 */
export function trainingBatch(
  data: LabeledImages,
  order: Uint32Array,
  index: number,
  batchSize: number,
  flips: { next(): number } | null,
): { images: Float32Array; labels: Uint8Array } {
  const plane = IMAGE_SIZE * IMAGE_SIZE;
  const images = new Float32Array(batchSize * plane);
  const labels = new Uint8Array(batchSize);
  for (let item = 0; item < batchSize; item += 1) {
    const source = order[index * batchSize + item];
    labels[item] = data.labels[source];
    const mirror = flips !== null && flips.next() < 0.5;
    for (let row = 0; row < IMAGE_SIZE; row += 1) {
      const from = source * plane + row * IMAGE_SIZE;
      const to = item * plane + row * IMAGE_SIZE;
      for (let column = 0; column < IMAGE_SIZE; column += 1) {
        const sourceColumn = mirror ? IMAGE_SIZE - 1 - column : column;
        images[to + column] = data.pixels[from + sourceColumn] / 127.5 - 1;
      }
    }
  }
  return { images, labels };
}

/** One optimizer and the step that uses it; the loop below and the tests share it. */
export class ClassifierTrainer {
  readonly optimizer: Adam;

  constructor(
    readonly classifier: Classifier,
    lr: number,
  ) {
    this.optimizer = new Adam(classifier.namedParameters(), { lr, beta1: BETA1, beta2: BETA2 });
  }

  /**
   * One update on a batch of images ([batch, 1, 28, 28] in [-1, 1]) at learning rate `lr`.
   * The whole step is recorded before anything is read back; the logits (for the accuracy)
   * and the loss are the only values that come back.
   */
  async step(images: Float32Array, labels: ArrayLike<number>, lr: number): Promise<StepResult> {
    const gpu = this.classifier.head.weight.gpu;
    const batch = labels.length;
    return asyncScope(async () => {
      this.classifier.train();
      const input = Tensor.fromArray(gpu, images, [batch, 1, IMAGE_SIZE, IMAGE_SIZE]);
      const logits = this.classifier.forward(input);
      const loss = softmaxCrossEntropy(logits, labels);
      backward(loss);
      this.optimizer.settings.lr = lr;
      this.optimizer.step();
      const correct = countCorrect(await logits.toArray('classifier step'), labels);
      return { loss: await loss.item(), correct };
    });
  }

  dispose(): void {
    this.optimizer.dispose();
  }
}

/** Accuracy of `classifier` on labelled images, in evaluation mode. */
export async function accuracyOn(classifier: Classifier, data: LabeledImages): Promise<number> {
  const { logits } = await classifyImages(classifier, imagesFromBytes(data.pixels), data.count);
  return countCorrect(logits, data.labels) / data.count;
}

/**
 * Trains a new classifier as `settings` say, reporting progress and a line per epoch to
 * `stream`. Returns the result of every epoch; the file at `outPath` holds the last one.
 */
export async function trainClassifier(
  gpu: Gpu,
  settings: ClassifierTrainSettings,
  stream: ProgressStream,
): Promise<EpochResult[]> {
  const { dataDir, epochs, batchSize, lr, seed, outPath } = settings;
  const train = loadLabeledImages(dataDir, 'train');
  const test = loadLabeledImages(dataDir, 't10k');
  const testImages = imagesFromBytes(test.pixels);
  const perEpoch = Math.floor(train.count / batchSize);
  if (perEpoch === 0) {
    throw new ShaderganError(
      `the training split has ${train.count} images, fewer than one batch of ${batchSize}; ` +
        'use a smaller --batch',
    );
  }
  const totalSteps = epochs * perEpoch;

  const classifier = buildClassifier(gpu, seed);
  const trainer = new ClassifierTrainer(classifier, lr);
  const flips = new SeededRandom((seed ^ FLIP_STREAM) >>> 0);
  const progress = new ProgressBar({ total: totalSteps, stream });
  const results: EpochResult[] = [];
  let trainSeconds = 0;
  let step = 0;
  try {
    for (let epoch = 1; epoch <= epochs; epoch += 1) {
      const epochStarted = performance.now();
      const order = shuffledIndices(train.count, seed, epoch - 1);
      let lossTotal = 0;
      let correct = 0;
      for (let index = 0; index < perEpoch; index += 1) {
        const stepStarted = performance.now();
        const batch = trainingBatch(train, order, index, batchSize, flips);
        const result = await trainer.step(
          batch.images,
          batch.labels,
          learningRateAt(step, totalSteps, lr),
        );
        trainSeconds += (performance.now() - stepStarted) / 1000;
        step += 1;
        if (!Number.isFinite(result.loss)) {
          throw new ShaderganError(
            `training diverged at step ${step} (epoch ${epoch}): the loss is ${result.loss}; ` +
              'try a lower --lr',
          );
        }
        lossTotal += result.loss;
        correct += result.correct;
        progress.update({
          step,
          epoch,
          imagesPerSecond: (step * batchSize) / trainSeconds,
          values: { loss: lossTotal / (index + 1), acc: correct / ((index + 1) * batchSize) },
        });
      }
      const epochTrainSeconds = (performance.now() - epochStarted) / 1000;

      const { logits } = await classifyImages(classifier, testImages, test.count);
      const testAccuracy = countCorrect(logits, test.labels) / test.count;
      const result: EpochResult = {
        epoch,
        trainLoss: lossTotal / perEpoch,
        trainAccuracy: correct / (perEpoch * batchSize),
        testAccuracy,
        imagesPerSecond: (perEpoch * batchSize) / epochTrainSeconds,
        seconds: 0,
      };
      await saveClassifier(outPath, classifier, {
        testAccuracy: testAccuracy.toFixed(4),
        trainAccuracy: result.trainAccuracy.toFixed(4),
        epochs: String(epoch),
        epochsPlanned: String(epochs),
        seed: String(seed),
        dataDir,
        batchSize: String(batchSize),
        lr: String(lr),
      });
      result.seconds = (performance.now() - epochStarted) / 1000;
      results.push(result);
      progress.finish(
        `epoch ${epoch}/${epochs}: train loss ${result.trainLoss.toFixed(4)}, ` +
          `train accuracy ${percent(result.trainAccuracy)}, ` +
          `test accuracy ${percent(testAccuracy)} (t10k), ` +
          `${result.imagesPerSecond.toFixed(1)} img/s, ${formatDuration(result.seconds)}; ` +
          `saved ${outPath}`,
      );
    }
  } finally {
    trainer.dispose();
    classifier.dispose();
  }
  return results;
}

export function percent(fraction: number): string {
  return `${(fraction * 100).toFixed(2)}%`;
}
