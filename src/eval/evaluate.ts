// `shadergan eval`: a domain FID for a GAN checkpoint. The features are the penultimate
// activations of the Fashion-MNIST classifier (src/classify), not Inception's, so the number
// is comparable only between runs measured with the same classifier file; the floor (training
// images against test images) says how low it can usefully go.
import { randn } from '../autograd/random.ts';
import {
  checkClassifierFile,
  CLASS_COUNT,
  classifyImages,
  IMAGE_SIZE,
  imagesFromBytes,
  loadClassifier,
  countCorrect,
  predictedClasses,
} from '../classify/classifier.ts';
import { loadClassifierImages } from '../classify/train.ts';
import { ShaderganError } from '../errors.ts';
import type { Gpu } from '../kernels/gpu.ts';
import { loadCheckpoint } from '../train/checkpoint.ts';
import { resizeImages } from '../train/data.ts';
import type { Gan } from '../train/gan.ts';
import { pixelRange, type ModelConfig } from '../train/models.ts';
import { shuffledIndices } from '../train/random.ts';
import { featureStatistics, frechetDistance } from './fid.ts';

export const DEFAULT_EVAL_COUNT = 10_000;
const GENERATE_CHUNK = 500;
/** Noise of evaluation samples: a stream of its own, apart from training and sample grids. */
const EVAL_NOISE_STREAM = 0x6576616c;

export interface EvalSettings {
  checkpoint: string;
  classifier: string;
  dataDir: string;
  /** Generated images, and real images on each side of the floor. */
  count: number;
  seed: number;
  /** Says what is being done, one line per phase. */
  log?: (line: string) => void;
}

export interface EvalResult {
  checkpoint: string;
  step: number;
  classifier: string;
  /**
   * Of the classifier on the whole test split: how much its features can be trusted. Null
   * when the test split has no labels.
   */
  classifierTestAccuracy: number | null;
  count: number;
  testCount: number;
  featureSize: number;
  /** Generated images against the test split. */
  fid: number;
  /** `count` training images against the test split: what a perfect generator would score. */
  floor: number;
  /** Conditional models: the share of samples classified as the class they were drawn for. */
  classAccuracy: number | null;
  perClassAccuracy: number[] | null;
  seed: number;
  seconds: number;
}

export async function evaluateCheckpoint(gpu: Gpu, settings: EvalSettings): Promise<EvalResult> {
  const started = performance.now();
  const log = settings.log ?? ((): void => undefined);
  const { count, seed } = settings;
  if (!Number.isInteger(count) || count < 2) {
    throw new ShaderganError(`the sample count must be an integer of at least 2, got ${count}`);
  }
  // Missing files are reported before the data sets take seconds to load.
  checkClassifierFile(settings.classifier);
  const test = loadClassifierImages(settings.dataDir, 't10k');
  const train = loadClassifierImages(settings.dataDir, 'train');
  if (count > train.count) {
    throw new ShaderganError(
      `--count ${count} is more than the ${train.count} training images the floor compares with`,
    );
  }
  const { classifier } = loadClassifier(gpu, settings.classifier);
  const { gan, info } = loadCheckpoint(gpu, settings.checkpoint);
  try {
    const model = gan.config.model;
    const conditional = model.classes > 0;
    if (conditional && model.classes !== CLASS_COUNT) {
      throw new ShaderganError(
        `the model is conditional on ${model.classes} classes; the classifier knows ${CLASS_COUNT}`,
      );
    }
    if (conditional && count < model.classes) {
      throw new ShaderganError(
        `--count ${count} cannot ask for each of the model's ${model.classes} classes`,
      );
    }

    log(`features of the ${test.count} test images`);
    const testOutputs = await classifyImages(classifier, imagesFromBytes(test.images), test.count);
    const testStats = featureStatistics(testOutputs.features, test.count, classifier.featureSize);
    const testLabels = test.labels;
    const testAccuracy = testLabels
      ? countCorrect(testOutputs.logits, testLabels) / test.count
      : null;

    log(`features of ${count} training images (the floor)`);
    const trainSample = pickImages(train.images, shuffledIndices(train.count, seed, 0), count);
    const trainOutputs = await classifyImages(classifier, imagesFromBytes(trainSample), count);
    const floor = frechetDistance(
      featureStatistics(trainOutputs.features, count, classifier.featureSize),
      testStats,
    );

    log(`generating ${count} images from step ${info.step}`);
    const requested = conditional
      ? Float32Array.from({ length: count }, (_, index) => index % model.classes)
      : undefined;
    const generated = await generateForClassifier(gan, count, seed, requested);
    const outputs = await classifyImages(classifier, generated, count);
    const fid = frechetDistance(
      featureStatistics(outputs.features, count, classifier.featureSize),
      testStats,
    );

    let classAccuracy: number | null = null;
    let perClassAccuracy: number[] | null = null;
    if (requested) {
      const predicted = predictedClasses(outputs.logits);
      classAccuracy = countCorrect(outputs.logits, requested) / count;
      perClassAccuracy = Array.from({ length: model.classes }, (_, label) => {
        let asked = 0;
        let hit = 0;
        requested.forEach((want, index) => {
          if (want !== label) return;
          asked += 1;
          if (predicted[index] === label) hit += 1;
        });
        return hit / asked;
      });
    }
    return {
      checkpoint: settings.checkpoint,
      step: info.step,
      classifier: settings.classifier,
      classifierTestAccuracy: testAccuracy,
      count,
      testCount: test.count,
      featureSize: classifier.featureSize,
      fid,
      floor,
      classAccuracy,
      perClassAccuracy,
      seed,
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    gan.dispose();
    classifier.dispose();
  }
}

function pickImages(pixels: Uint8Array, order: Uint32Array, count: number): Uint8Array {
  const plane = IMAGE_SIZE * IMAGE_SIZE;
  const picked = new Uint8Array(count * plane);
  for (let index = 0; index < count; index += 1) {
    picked.set(pixels.subarray(order[index] * plane, (order[index] + 1) * plane), index * plane);
  }
  return picked;
}

/**
 * `count` generated images in the classifier's input format: one channel (the mean of the
 * model's channels), 28x28 (bilinear), values in [-1, 1] whatever the model's scale.
 */
async function generateForClassifier(
  gan: Gan,
  count: number,
  seed: number,
  labels: Float32Array | undefined,
): Promise<Float32Array> {
  const model = gan.config.model;
  const plane = IMAGE_SIZE * IMAGE_SIZE;
  const out = new Float32Array(count * plane);
  const noiseSeed = (seed ^ EVAL_NOISE_STREAM) >>> 0;
  for (let first = 0; first < count; first += GENERATE_CHUNK) {
    const size = Math.min(GENERATE_CHUNK, count - first);
    const noise = randn(gan.gpu, [size, model.noiseSize], noiseSeed, first * model.noiseSize);
    const images = await gan.generate(noise, labels?.subarray(first, first + size));
    noise.dispose();
    const broken = images.findIndex((value) => !Number.isFinite(value));
    if (broken !== -1) {
      throw new ShaderganError(
        `the generator drew a non-finite pixel (${images[broken]}) in image ` +
          `${first + Math.floor(broken / (images.length / size))}; the checkpoint is broken`,
      );
    }
    out.set(toClassifierInput(images, size, model), first * plane);
  }
  return out;
}

/** Model output [count, channels, size, size] in the model's range to [count, 1, 28, 28]. */
export function toClassifierInput(
  images: Float32Array,
  count: number,
  model: Pick<ModelConfig, 'channels' | 'imageSize' | 'scale'>,
): Float32Array {
  const { channels, imageSize } = model;
  const [low, high] = pixelRange(model.scale);
  const plane = imageSize * imageSize;
  const gray = new Float32Array(count * plane);
  for (let image = 0; image < count; image += 1) {
    for (let pixel = 0; pixel < plane; pixel += 1) {
      let total = 0;
      for (let channel = 0; channel < channels; channel += 1) {
        total += images[(image * channels + channel) * plane + pixel];
      }
      // Clamped: a sigmoid never leaves its range, but the classifier never saw values
      // outside [-1, 1] either way.
      const unit = (total / channels - low) / (high - low);
      gray[image * plane + pixel] = Math.min(1, Math.max(-1, unit * 2 - 1));
    }
  }
  if (imageSize === IMAGE_SIZE) return gray;
  return resizeImages(gray, count, imageSize, imageSize, IMAGE_SIZE, Float32Array);
}
