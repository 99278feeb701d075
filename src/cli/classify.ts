// `shadergan classify train|test`: the Fashion-MNIST classifier whose features a domain-specific
// Fréchet distance uses. Train writes one file; test reports the accuracy of such a file.
import { accessSync, constants, existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

import {
  checkClassifierFile,
  CLASSIFIER_FORMAT,
  DEFAULT_CLASSIFIER_PATH,
  loadClassifier,
} from '../classify/classifier.ts';
import { accuracyOn, loadLabeledImages, percent, trainClassifier } from '../classify/train.ts';
import { ShaderganError, UsageError } from '../errors.ts';
import { getGpu, type Gpu } from '../kernels/gpu.ts';
import { formatDuration } from '../train/progress.ts';
import { DEFAULT_DATA_DIR } from '../train/idx.ts';
import { readSafetensors } from '../train/safetensors.ts';
import { formatHelp, parseFlags, type CommandSpec } from './args.ts';

export const classifySpec = {
  name: 'classify',
  usage: 'shadergan classify <train|test> [flags]',
  summary:
    'A small CNN classifier for Fashion-MNIST (28x28 gray images, 10 classes), trained and run\n' +
    'by the same WGSL kernels as the GAN; its penultimate layer serves as the feature extractor\n' +
    'of a domain-specific Fréchet distance.\n\n' +
    'Subcommands:\n' +
    '  train   train it on the train split, test on t10k after every epoch, save it each time\n' +
    '  test    print the t10k accuracy of a saved classifier',
  flags: {},
  examples: [
    'shadergan classify train                 # writes runs/classifier.safetensors',
    'shadergan classify train --epochs 3 --out runs/quick.safetensors',
    'shadergan classify test --checkpoint runs/classifier.safetensors',
    "shadergan classify train --help           # a subcommand's flags",
  ],
} satisfies CommandSpec;

const trainSpec = {
  name: 'classify train',
  summary:
    'Train the classifier on the train split with Adam, a cosine learning-rate decay and\n' +
    'random horizontal flips. After every epoch it prints the accuracy on the t10k split and\n' +
    'writes the classifier to --out (atomically, replacing an earlier file there).',
  flags: {
    data: {
      type: 'string',
      default: DEFAULT_DATA_DIR,
      placeholder: 'DIR',
      help: 'folder with the train-* and t10k-* IDX images and labels',
    },
    epochs: { type: 'int', default: 4, min: 1, help: 'passes over the training split' },
    batch: { type: 'int', default: 128, min: 2, help: 'images per step' },
    lr: { type: 'float', default: 2e-3, help: 'initial Adam learning rate; decays to 0' },
    seed: { type: 'int', default: 1, help: 'seed for weights, batch order and flips' },
    out: {
      type: 'string',
      default: DEFAULT_CLASSIFIER_PATH,
      placeholder: 'FILE',
      help: 'the .safetensors file to write',
    },
  },
  examples: [
    'shadergan classify train',
    'shadergan classify train --epochs 3 --batch 64 --out runs/small.safetensors',
  ],
} satisfies CommandSpec;

const testSpec = {
  name: 'classify test',
  summary: 'Print the accuracy of a saved classifier on the t10k split.',
  flags: {
    checkpoint: {
      type: 'string',
      default: DEFAULT_CLASSIFIER_PATH,
      placeholder: 'FILE',
      help: "a classifier written by 'shadergan classify train'",
    },
    data: {
      type: 'string',
      default: DEFAULT_DATA_DIR,
      placeholder: 'DIR',
      help: 'folder with t10k-images-idx3-ubyte[.gz] and its labels',
    },
  },
  examples: ['shadergan classify test --checkpoint runs/classifier.safetensors'],
} satisfies CommandSpec;

/** Runs `shadergan classify <subcommand> ...`; `argv` starts after 'classify'. */
export async function classify(argv: string[]): Promise<number> {
  const [subcommand, ...rest] = argv;
  switch (subcommand) {
    case 'train':
      return classifyTrain(rest);
    case 'test':
      return classifyTest(rest);
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      console.log(formatHelp(classifySpec));
      return 0;
    default:
      throw new UsageError(
        `unknown subcommand 'classify ${subcommand}'; it is 'classify train' or ` +
          "'classify test' (see 'shadergan classify --help')",
      );
  }
}

async function classifyTrain(argv: string[]): Promise<number> {
  const parsed = parseFlags(trainSpec, argv);
  if (parsed.helpRequested) {
    console.log(formatHelp(trainSpec));
    return 0;
  }
  const flags = parsed.flags;
  if (!(flags.lr > 0)) throw new UsageError(`--lr must be above 0, got ${flags.lr}`);
  // Recorded in the file, so a later `classify test` from another folder finds the same data.
  const dataDir = resolve(checkDataFolder(flags.data));
  const outPath = prepareOutFile(flags.out);

  const gpu = await getGpu();
  console.log(
    `shadergan: training the classifier on ${describeAdapter(gpu)}: ${flags.epochs} ` +
      `epoch${flags.epochs === 1 ? '' : 's'}, batch ${flags.batch}, lr ${flags.lr}, ` +
      `seed ${flags.seed}; writes ${outPath}`,
  );
  const started = performance.now();
  const results = await trainClassifier(
    gpu,
    {
      dataDir,
      epochs: flags.epochs,
      batchSize: flags.batch,
      lr: flags.lr,
      seed: flags.seed,
      outPath,
    },
    process.stderr,
  );
  const last = results[results.length - 1];
  const seconds = (performance.now() - started) / 1000;
  const rate =
    results.reduce((total, result) => total + result.imagesPerSecond, 0) / results.length;
  console.log(
    `Finished ${results.length} epoch${results.length === 1 ? '' : 's'} in ` +
      `${formatDuration(seconds)} (${rate.toFixed(1)} training images/s): test accuracy ` +
      `${percent(last.testAccuracy)} on t10k.\n  classifier: ${outPath}`,
  );
  return 0;
}

async function classifyTest(argv: string[]): Promise<number> {
  const parsed = parseFlags(testSpec, argv);
  if (parsed.helpRequested) {
    console.log(formatHelp(testSpec));
    return 0;
  }
  const flags = parsed.flags;
  if (flags.checkpoint === '') throw new UsageError("--checkpoint expects a path, got ''");
  checkClassifierFile(flags.checkpoint);
  const dataDir = checkDataFolder(flags.data);
  const test = loadLabeledImages(dataDir, 't10k');

  const gpu = await getGpu();
  const { classifier, info } = loadClassifier(gpu, flags.checkpoint);
  try {
    const accuracy = await accuracyOn(classifier, test);
    const correct = Math.round(accuracy * test.count);
    const recorded =
      info.testAccuracy === undefined
        ? ''
        : `; recorded when saved: ${percent(Number(info.testAccuracy))}` +
          (info.epochs === undefined
            ? ''
            : ` after ${info.epochs} epoch${info.epochs === '1' ? '' : 's'}`);
    console.log(
      `Test accuracy of ${flags.checkpoint}: ${percent(accuracy)} ` +
        `(${correct}/${test.count} images of t10k in ${dataDir})${recorded}`,
    );
  } finally {
    classifier.dispose();
  }
  return 0;
}

/** Fails before the GPU starts when the data folder is missing; returns it. */
function checkDataFolder(directory: string): string {
  if (directory === '') throw new UsageError("--data expects a folder, got ''");
  if (!existsSync(directory)) {
    throw new ShaderganError(
      `the data folder ${directory} does not exist: run 'npm run setup' (installs Debian's ` +
        `dataset-fashion-mnist into ${DEFAULT_DATA_DIR}) or pass --data DIR with the IDX files`,
    );
  }
  if (!statSync(directory).isDirectory()) {
    throw new ShaderganError(`--data ${directory} is a file; it takes the folder of IDX files`);
  }
  return directory;
}

/**
 * Checks --out before any training, so that an hour of training never ends in a path that
 * cannot be written: a .safetensors name, not a folder, in a folder that exists (it is created)
 * and can be written.
 */
function prepareOutFile(path: string): string {
  if (path === '') throw new UsageError("--out expects a file path, got ''");
  if (!path.endsWith('.safetensors')) {
    throw new UsageError(`--out must name a .safetensors file, got '${path}'`);
  }
  if (existsSync(path) && statSync(path).isDirectory()) {
    throw new UsageError(
      `--out ${path} is a folder; give a file path such as ${path}/model.safetensors`,
    );
  }
  // Replacing an earlier classifier is what --out is for; replacing anything else (a GAN
  // checkpoint has the same extension) would destroy it.
  if (existsSync(path) && !isClassifierFile(path)) {
    throw new UsageError(
      `--out ${path} exists and is not a classifier (a GAN checkpoint?); choose another path`,
    );
  }
  const folder = dirname(path);
  try {
    mkdirSync(folder, { recursive: true });
    accessSync(folder, constants.W_OK);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new ShaderganError(`--out ${path}: cannot write into ${folder} (${reason})`);
  }
  return path;
}

function isClassifierFile(path: string): boolean {
  try {
    return readSafetensors(path).metadata.format === CLASSIFIER_FORMAT;
  } catch {
    return false;
  }
}

function describeAdapter(gpu: Gpu): string {
  const { vendor, device, description, backend } = gpu.report;
  const name = [description || device, vendor].filter((part) => part).join(' / ');
  return `${name || 'unknown adapter'} (${backend} backend)`;
}
