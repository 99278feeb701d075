// The `shadergan` command: train, sample, info. Output is for people: progress, where files
// went, and one clear line when something is wrong.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';

import { randn } from '../autograd/random.ts';
import { ShaderganError } from '../errors.ts';
import { getGpu, type Gpu } from '../kernels/gpu.ts';
import {
  formatProfile,
  missingTimestampsMessage,
  OpTimes,
  summarizeProfile,
} from '../kernels/profiler.ts';
import { loadCheckpoint } from '../train/checkpoint.ts';
import { ImageDataset } from '../train/data.ts';
import { classCount, DEFAULT_DATA_DIR } from '../train/idx.ts';
import { writeImageGrid } from '../train/image-grid.ts';
import {
  ACTIVATIONS,
  GENERATOR_LEAKY_SLOPE,
  HEADS,
  IMAGE_SIZES,
  pixelRange,
  SCALES,
  type Activation,
  type Architecture,
  type Head,
  type ImageSize,
  type Scale,
  RADFORD_RECIPE,
} from '../train/models.ts';
import {
  DEFAULT_PRESET,
  parseAugment,
  PRESET_NAMES,
  PRESETS,
  type Preset,
  type PresetName,
} from '../train/recipe.ts';
import { classRows, Gan, validateGanConfig, type GanConfig } from '../train/gan.ts';
import {
  DEFAULT_RUN_SETTINGS,
  resolveCheckpointPath,
  runFolderOf,
  runTraining,
  type RunSettings,
  type RunStart,
} from '../train/run.ts';
import { formatHelp, parseFlags, type CommandSpec, type ParsedFlags } from './args.ts';
import { classify, classifySpec } from './classify.ts';
import { evalSpec, evaluate } from './eval.ts';

const trainSpec = {
  name: 'train',
  summary:
    'Train a DCGAN on Fashion-MNIST (or any MNIST-format IDX files). Writes sample grids,\n' +
    'checkpoints, metrics and report.html (open it in a browser) under the run folder.\n' +
    'The model recipe flags (--scale to --conditional) do not apply to --model tf-tutorial.\n' +
    'Ctrl-C saves a checkpoint and stops,\n' +
    '--resume continues exactly where it left off. --profile instead times each GPU kernel\n' +
    'over a few steps of the same model and prints a table; it writes no files.',
  flags: {
    data: {
      type: 'string',
      default: DEFAULT_DATA_DIR,
      placeholder: 'DIR',
      help: 'folder with train-images-idx3-ubyte[.gz] (and labels)',
    },
    epochs: {
      type: 'int',
      default: DEFAULT_RUN_SETTINGS.epochs,
      min: 1,
      help: 'passes over the training set',
    },
    steps: { type: 'int', min: 1, placeholder: 'N', help: 'total steps; overrides --epochs' },
    batch: { type: 'int', default: 64, min: 2, help: 'images per step' },
    lr: { type: 'float', default: 2e-4, help: 'Adam learning rate (both nets)' },
    beta1: { type: 'float', default: 0.5, help: "Adam's beta1" },
    beta2: { type: 'float', default: 0.999, help: "Adam's beta2" },
    seed: { type: 'int', default: 1, help: 'seed for weights, noise and batch order' },
    'image-size': {
      type: 'int',
      default: 28,
      choices: IMAGE_SIZES.map(String),
      help: 'image side; data are resized to it',
    },
    width: {
      type: 'int',
      default: 32,
      min: 1,
      help: "base channel count: D's first layer has it, deeper layers double it",
    },
    noise: { type: 'int', default: 100, min: 1, help: 'size of the noise vector z' },
    model: {
      type: 'string',
      default: 'dcgan',
      choices: ['dcgan', 'tf-tutorial'],
      help: "architecture: Radford's DCGAN, or TensorFlow's DCGAN tutorial model (28x28)",
    },
    preset: {
      type: 'string',
      default: DEFAULT_PRESET,
      choices: PRESET_NAMES,
      help: 'named recipe (see Presets below); the recipe flags that follow override it',
    },
    scale: {
      type: 'string',
      choices: SCALES,
      placeholder: 'tanh|sigmoid',
      help:
        'pixels in [-1, 1] with a tanh output, or in [0, 1] with a sigmoid output ' +
        '(default: tanh)',
    },
    batchnorm: {
      type: 'string',
      choices: ['on', 'off'],
      placeholder: 'on|off',
      help: 'batch norm in both nets; without it, layers get biases (default: from --preset)',
    },
    'g-activation': {
      type: 'string',
      choices: ACTIVATIONS,
      placeholder: 'relu|leaky',
      help:
        `G's hidden activation; leaky is LeakyReLU(${GENERATOR_LEAKY_SLOPE}) ` +
        '(default: from --preset)',
    },
    'd-slope': {
      type: 'float',
      placeholder: 'F',
      help: "negative slope of D's LeakyReLUs, in [0, 1) (default: 0.2)",
    },
    'd-head': {
      type: 'string',
      choices: HEADS,
      placeholder: 'dense|gap',
      help:
        "D's last layer: dense over the last feature map, or global average pooling + dense " +
        '(default: from --preset)',
    },
    augment: {
      type: 'string',
      placeholder: 'none|flip|translate|flip,translate',
      help:
        'augment real and fake images alike, on the GPU, before D sees them (translate: up to ' +
        'an eighth of the image side); differentiable, so G learns through it (default: from ' +
        '--preset)',
    },
    'label-smoothing': {
      type: 'float',
      placeholder: 'F',
      help:
        "D's target for real images, in (0.5, 1], e.g. 0.9; one-sided: fakes stay 0 " +
        '(default: from --preset; 1 is none)',
    },
    conditional: {
      type: 'bool',
      help:
        "condition G and D on the data set's class labels (one-hot code on the noise, one-hot " +
        'maps on the images)',
    },
    out: { type: 'string', placeholder: 'DIR', help: 'run folder (default runs/<date-time>)' },
    'sample-every': {
      type: 'int',
      default: DEFAULT_RUN_SETTINGS.sampleEvery,
      min: 1,
      help: 'steps between sample grids',
    },
    'checkpoint-every': {
      type: 'int',
      default: DEFAULT_RUN_SETTINGS.checkpointEvery,
      min: 1,
      help: 'steps between checkpoints',
    },
    resume: {
      type: 'string',
      placeholder: 'PATH',
      help: 'continue from a checkpoint file or a run folder; its config wins',
    },
    profile: {
      type: 'bool',
      help:
        'print the GPU time of each kernel per training step (timestamp queries) instead of ' +
        'training; creates no run folder',
    },
    'profile-steps': {
      type: 'int',
      default: 5,
      min: 1,
      placeholder: 'N',
      help: 'steps --profile times, after one untimed warm-up step',
    },
  },
  sections: [
    {
      title: 'Presets (--preset)',
      lines: PRESET_NAMES.map((name) => `${name.padEnd(9)} ${PRESETS[name].summary}`),
    },
  ],
  examples: [
    'shadergan train                         # Fashion-MNIST, 28x28, into runs/<date-time>/',
    'shadergan train --steps 2000 --out runs/short',
    'shadergan train --resume runs/short --steps 4000',
    'shadergan train --image-size 32 --width 64',
    'shadergan train --preset full --steps 3000',
    'shadergan train --preset baseline --batchnorm on --d-head gap',
    'shadergan train --conditional           # one class per row in the sample grids',
    'shadergan train --profile               # GPU time per kernel; writes no files',
  ],
} satisfies CommandSpec;

const sampleSpec = {
  name: 'sample',
  summary: 'Draw a grid of generated images from a checkpoint into a PNG file.',
  flags: {
    checkpoint: {
      type: 'string',
      placeholder: 'FILE',
      help: 'required: a checkpoint file, or a run folder holding checkpoint.safetensors',
    },
    out: { type: 'string', default: 'grid.png', placeholder: 'FILE', help: 'PNG to write' },
    n: {
      type: 'int',
      default: 64,
      min: 1,
      help:
        'number of images; a conditional model without --class draws one row per class, ' +
        'n/classes wide',
    },
    seed: { type: 'int', default: 0, help: 'noise seed' },
    class: {
      type: 'int',
      min: 0,
      placeholder: 'K',
      help: 'conditional models: draw every image of class K (0-based)',
    },
  },
  examples: [
    'shadergan sample --checkpoint runs/short --out grid.png --n 64',
    'shadergan sample --checkpoint runs/cond --class 3 --out dresses.png',
  ],
} satisfies CommandSpec;

const infoSpec = {
  name: 'info',
  summary: 'Print the WebGPU backend, adapter, features and limits shadergan will use.',
  flags: {},
  examples: ['shadergan info', 'SHADERGAN_BACKEND=opengl shadergan info'],
} satisfies CommandSpec;

const commands = [trainSpec, sampleSpec, evalSpec, infoSpec, classifySpec];
const SAMPLE_CHUNK = 256;

const SHORT_SUMMARIES: Record<string, string> = {
  train: 'train a DCGAN; writes sample grids, checkpoints and metrics',
  sample: 'draw a grid of generated images from a checkpoint',
  info: 'show the WebGPU backend, adapter, features and limits',
  eval: "score a checkpoint: domain FID, its floor, and conditional models' class accuracy",
  classify: 'train or test the Fashion-MNIST classifier (features for a domain FID)',
};

function mainHelp(): string {
  return [
    'Usage: shadergan <command> [flags]',
    '',
    'A DCGAN engine whose every numeric operation is a hand-written WGSL compute shader.',
    '',
    'Commands:',
    ...commands.map((spec) => `  ${spec.name.padEnd(8)} ${SHORT_SUMMARIES[spec.name]}`),
    '',
    "Run 'shadergan <command> --help' for the flags of a command.",
    '',
    'Environment:',
    '  SHADERGAN_BACKEND=auto|vulkan|opengl      Dawn backend; auto (the default) takes Vulkan,',
    '                                            or OpenGL when the device is software llvmpipe',
    '  SHADERGAN_DEBUG=kernels                   print every kernel dispatch',
    '  SHADERGAN_DEBUG=wgsl                      print every shader as it is compiled',
    '  SHADERGAN_PROFILE=1                       print a per-kernel GPU time table at exit',
  ].join('\n');
}

/** Flags that shape the model or optimizer: fixed by the checkpoint on --resume. */
const CONFIG_FLAGS = [
  'batch',
  'lr',
  'beta1',
  'beta2',
  'seed',
  'image-size',
  'width',
  'noise',
  'model',
  'preset',
  'scale',
  'batchnorm',
  'g-activation',
  'd-slope',
  'd-head',
  'augment',
  'label-smoothing',
  'conditional',
];

/** Flags that shape the model's layers, which the tf-tutorial model has fixed. */
const MODEL_RECIPE_FLAGS = [
  'scale',
  'batchnorm',
  'g-activation',
  'd-slope',
  'd-head',
  'conditional',
] as const;

/** Flags about a run folder or a run's length, which --profile has neither of. */
const NOT_WITH_PROFILE = ['resume', 'out', 'steps', 'epochs', 'sample-every', 'checkpoint-every'];

type TrainFlags = ParsedFlags<typeof trainSpec>;

async function train(argv: string[]): Promise<number> {
  const parsed = parseFlags(trainSpec, argv);
  if (parsed.helpRequested) {
    console.log(formatHelp(trainSpec));
    return 0;
  }
  const flags = parsed.flags;
  for (const name of ['resume', 'out', 'data'] as const) {
    if (flags[name] === '') throw new ShaderganError(`--${name} expects a path, got ''`);
  }
  // Recorded in checkpoints, so a resume from another working folder finds the same data.
  flags.data = resolve(flags.data);
  const given = new Set(
    argv.filter((arg) => arg.startsWith('--')).map((arg) => arg.slice(2).split('=')[0]),
  );
  if (flags.profile) {
    const clashing = NOT_WITH_PROFILE.filter((name) => given.has(name));
    if (clashing.length > 0) {
      throw new ShaderganError(
        `--profile writes no run folder and times --profile-steps steps; drop ` +
          clashing.map((name) => `--${name}`).join(', '),
      );
    }
    return profileTraining(flags);
  }
  if (given.has('profile-steps')) {
    throw new ShaderganError('--profile-steps only applies with --profile');
  }

  let start: RunStart;
  if (flags.resume) {
    const ignored = CONFIG_FLAGS.filter((name) => given.has(name));
    if (ignored.length > 0) {
      process.stderr.write(
        `shadergan: note: ${ignored.map((name) => `--${name}`).join(', ')} ignored: ` +
          'a resumed run keeps the model, optimizer and recipe settings of its checkpoint\n',
      );
    }
    const overrides: Partial<RunSettings> = {};
    if (given.has('data')) overrides.dataDir = flags.data;
    if (given.has('steps')) overrides.steps = flags.steps ?? null;
    if (given.has('epochs')) {
      overrides.epochs = flags.epochs;
      if (!given.has('steps')) overrides.steps = null;
    }
    if (given.has('sample-every')) overrides.sampleEvery = flags['sample-every'];
    if (given.has('checkpoint-every')) overrides.checkpointEvery = flags['checkpoint-every'];
    start = { kind: 'resume', checkpoint: flags.resume, overrides };
  } else {
    // Wrong settings are reported before the GPU starts or any file is written.
    const config = ganConfigOf(flags);
    const settings: RunSettings = {
      dataDir: flags.data,
      steps: flags.steps ?? null,
      epochs: flags.epochs,
      sampleEvery: flags['sample-every'],
      checkpointEvery: flags['checkpoint-every'],
    };
    start = { kind: 'new', config, settings };
  }
  if (given.has('data') || !flags.resume) checkDataFolder(flags.data);

  const outDir = flags.out ?? (flags.resume ? runFolderOf(flags.resume) : defaultRunFolder());
  const gpu = await getGpu();
  let stopRequested = false;
  const onSignal = (): void => {
    if (stopRequested) process.exit(130);
    stopRequested = true;
    process.stderr.write(
      '\nStopping after this step and saving a checkpoint (Ctrl-C again to abort)\n',
    );
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  let result;
  try {
    console.log(`shadergan: training on ${describeAdapter(gpu)}; run folder ${outDir}`);
    if (start.kind === 'new' && start.config.model.classes > 0) {
      const { classes } = start.config.model;
      console.log(`shadergan: conditional on the ${classes} classes of the training labels`);
    }
    result = await runTraining({
      gpu,
      outDir,
      start,
      stream: process.stderr,
      stopRequested: () => stopRequested,
    });
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }

  if (result.stepsTrained === 0 && !result.stoppedEarly) {
    console.log(
      `The run was already at its last step, ${result.step}; nothing to train. Give --steps ` +
        `or --epochs beyond it to continue.\n  report:     ${join(outDir, 'report.html')}`,
    );
    return 0;
  }
  const verb = result.stoppedEarly ? 'Stopped' : 'Finished';
  console.log(
    `${verb} at step ${result.step}/${result.totalSteps}, ` +
      `${result.imagesPerSecond.toFixed(1)} images/s.\n` +
      `  report:     ${join(outDir, 'report.html')}\n` +
      `  samples:    ${join(outDir, 'samples')}/\n` +
      `  checkpoint: ${join(outDir, 'checkpoint.safetensors')}` +
      (result.stoppedEarly ? `\n  continue:   npx shadergan train --resume ${outDir}` : ''),
  );
  // An interrupted run exits as an interrupted process would, so scripts can tell.
  return result.stoppedEarly ? 130 : 0;
}

/** The model and optimizer that the train flags ask for, validated. */
function ganConfigOf(flags: TrainFlags): GanConfig {
  const preset = PRESETS[flags.preset as PresetName];
  let recipe: Preset['model'] = preset.model;
  if (flags.model === 'tf-tutorial') {
    const given = MODEL_RECIPE_FLAGS.filter(
      (name) => flags[name] !== undefined && flags[name] !== false,
    );
    if (given.length > 0) {
      throw new ShaderganError(
        "the tf-tutorial model mirrors TensorFlow's tutorial and takes no model recipe flags; " +
          `drop ${given.map((name) => `--${name}`).join(', ')} or use --model dcgan`,
      );
    }
    // A preset's training options (augmentation, label smoothing) still apply.
    recipe = RADFORD_RECIPE;
  }
  if (flags.conditional) checkDataFolder(flags.data);
  const config: GanConfig = {
    model: {
      architecture: flags.model as Architecture,
      imageSize: flags['image-size'] as ImageSize,
      channels: 1,
      width: flags.width,
      noiseSize: flags.noise,
      scale: (flags.scale as Scale | undefined) ?? recipe.scale,
      batchNorm: flags.batchnorm === undefined ? recipe.batchNorm : flags.batchnorm === 'on',
      generatorActivation:
        (flags['g-activation'] as Activation | undefined) ?? recipe.generatorActivation,
      discriminatorSlope: flags['d-slope'] ?? recipe.discriminatorSlope,
      discriminatorHead: (flags['d-head'] as Head | undefined) ?? recipe.discriminatorHead,
      classes: flags.conditional ? classCount(flags.data) : 0,
    },
    optimizer: { lr: flags.lr, beta1: flags.beta1, beta2: flags.beta2 },
    batchSize: flags.batch,
    seed: flags.seed,
    training: {
      augment:
        flags.augment === undefined ? [...preset.training.augment] : parseAugment(flags.augment),
      realTarget: flags['label-smoothing'] ?? preset.training.realTarget,
    },
    preset: flags.preset,
  };
  validateGanConfig(config);
  return config;
}

/**
 * `train --profile`: the model, optimizer and batches of a new run with the same flags, one
 * untimed step to compile shaders and fill the buffer pool, then the timed steps. Nothing
 * is written to disk.
 */
async function profileTraining(flags: TrainFlags): Promise<number> {
  const config = ganConfigOf(flags);
  checkDataFolder(flags.data);
  const steps = flags['profile-steps'];
  const gpu = await getGpu({ timestamps: true });
  const data = ImageDataset.load(flags.data, config.model.imageSize);
  const { batchSize, seed, model } = config;
  const range = pixelRange(model.scale);
  const step = (): Promise<unknown> =>
    gan.trainStep(
      data.batch(gan.step, batchSize, seed, model.channels, range),
      model.classes > 0 ? data.batchLabels(gan.step, batchSize, seed) : undefined,
    );

  const gan = new Gan(gpu, config);
  try {
    process.stderr.write(
      `shadergan: profiling ${steps} training step${steps === 1 ? '' : 's'} ` +
        `on ${describeAdapter(gpu)}\n`,
    );
    await step();

    const times = new OpTimes();
    const timed = gpu.enableProfiling((time) => times.add(time));
    const started = performance.now();
    for (let done = 0; done < steps; done += 1) await step();
    const wallMilliseconds = (performance.now() - started) / steps;
    await gpu.sync();

    const what =
      `${model.architecture} ${model.imageSize}x${model.imageSize}, width ${model.width}, ` +
      `batch ${batchSize}`;
    if (!timed) {
      process.stderr.write(`shadergan: note: ${missingTimestampsMessage(gpu.report.backend)}\n`);
      console.log(
        `Training step (${what}): wall clock ${wallMilliseconds.toFixed(3)} ms/step, ` +
          `mean of ${steps} after 1 warm-up step\nadapter: ${describeAdapter(gpu)}`,
      );
      return 0;
    }
    const title =
      `GPU time per training step by op (${what}): mean of ${steps} ` +
      `step${steps === 1 ? '' : 's'} after 1 warm-up step`;
    process.stdout.write(
      formatProfile(summarizeProfile(times.ops(), steps), {
        title,
        wallMilliseconds,
        adapter: describeAdapter(gpu),
      }),
    );
    return 0;
  } finally {
    gan.dispose();
  }
}

/** Fails early, before the GPU starts, when the data folder is missing. */
function checkDataFolder(directory: string): void {
  if (existsSync(directory) && !statSync(directory).isDirectory()) {
    throw new ShaderganError(`--data ${directory} is a file; it takes the folder of IDX files`);
  }
  if (!existsSync(directory)) {
    throw new ShaderganError(
      `the data folder ${directory} does not exist: run 'npm run setup' (installs Debian's ` +
        'dataset-fashion-mnist into /usr/share/datasets/fashion-mnist) or pass --data DIR ' +
        'with the IDX files',
    );
  }
}

async function sample(argv: string[]): Promise<void> {
  const parsed = parseFlags(sampleSpec, argv);
  if (parsed.helpRequested) return void console.log(formatHelp(sampleSpec));
  const flags = parsed.flags;
  if (!flags.checkpoint) {
    throw new ShaderganError("sample needs --checkpoint FILE (see 'shadergan sample --help')");
  }
  const path = resolveCheckpointPath(flags.checkpoint);
  if (!existsSync(path)) throw new ShaderganError(`no checkpoint at ${path}`);
  if (!flags.out.toLowerCase().endsWith('.png')) {
    throw new ShaderganError(`--out must name a .png file, got '${flags.out}'`);
  }

  const gpu = await getGpu();
  const { gan, info } = loadCheckpoint(gpu, path);
  try {
    const model = info.config.model;
    const { imageSize, channels, noiseSize, classes } = model;
    const layout = sampleLayout(flags.n, classes, flags.class, path);
    // Generated in chunks so that a large grid stays within the device's buffer limits.
    const plane = channels * imageSize * imageSize;
    const images = new Float32Array(layout.count * plane);
    for (let first = 0; first < layout.count; first += SAMPLE_CHUNK) {
      const count = Math.min(SAMPLE_CHUNK, layout.count - first);
      const noise = randn(gpu, [count, noiseSize], flags.seed >>> 0, first * noiseSize);
      const labels = layout.labels?.subarray(first, first + count);
      images.set(await gan.generate(noise, labels), first * plane);
      noise.dispose();
    }
    writeImageGrid(flags.out, images, {
      count: layout.count,
      channels: channels === 3 ? 3 : 1,
      height: imageSize,
      width: imageSize,
      range: pixelRange(model.scale),
      columns: layout.columns,
    });
    console.log(
      `Wrote ${layout.count} sample${layout.count === 1 ? '' : 's'}${layout.what} from step ` +
        `${info.step} to ${flags.out}`,
    );
  } finally {
    gan.dispose();
  }
}

/** How many images `sample` draws, of which classes, and how the grid is laid out. */
function sampleLayout(
  n: number,
  classes: number,
  chosen: number | undefined,
  path: string,
): { count: number; labels?: Float32Array; columns?: number; what: string } {
  if (classes === 0) {
    if (chosen !== undefined) {
      throw new ShaderganError(`--class needs a conditional model; ${path} is not one`);
    }
    return { count: n, what: '' };
  }
  if (chosen !== undefined) {
    if (chosen >= classes) {
      throw new ShaderganError(`--class ${chosen}: the model knows classes 0 to ${classes - 1}`);
    }
    return { count: n, labels: new Float32Array(n).fill(chosen), what: ` of class ${chosen}` };
  }
  const columns = Math.max(1, Math.round(n / classes));
  const labels = classRows(classes, columns);
  return { count: labels.length, labels, columns, what: `, one row per class` };
}

async function info(argv: string[]): Promise<void> {
  const parsed = parseFlags(infoSpec, argv);
  if (parsed.helpRequested) return void console.log(formatHelp(infoSpec));
  const gpu = await getGpu();
  const report = gpu.report;
  const chosen = process.env.SHADERGAN_BACKEND
    ? 'set by SHADERGAN_BACKEND'
    : 'chosen automatically';
  console.log(`backend:      ${report.backend} (${chosen})`);
  console.log(`adapter:      ${describeAdapter(gpu)}`);
  console.log(`features:     ${report.features.join(', ') || '(none)'}`);
  if (report.software) {
    console.log('device:       software (Mesa llvmpipe: shaders run on the CPU cores)');
  }
  console.log('limits:');
  for (const [name, value] of Object.entries(report.limits)) {
    console.log(`  ${name.padEnd(36)} ${value}`);
  }
}

function describeAdapter(gpu: Gpu): string {
  const { vendor, architecture, device, description } = gpu.report;
  const parts = [description || device, vendor, architecture].filter((part) => part);
  return `${parts.join(' / ') || 'unknown adapter'} (${gpu.report.backend} backend)`;
}

function defaultRunFolder(): string {
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return join('runs', stamp);
}

function isFileSystemError(error: unknown): error is NodeJS.ErrnoException {
  return (
    error instanceof Error &&
    typeof (error as NodeJS.ErrnoException).code === 'string' &&
    typeof (error as NodeJS.ErrnoException).syscall === 'string'
  );
}

function packageVersion(): string {
  const packageJson = new URL('../../package.json', import.meta.url);
  return (JSON.parse(readFileSync(packageJson, 'utf8')) as { version: string }).version;
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'train':
        return await train(rest);
      case 'sample':
        await sample(rest);
        break;
      case 'eval':
        return await evaluate(rest);
      case 'classify':
        return await classify(rest);
      case 'info':
        await info(rest);
        break;
      case '--version':
      case '-v':
        console.log(`shadergan ${packageVersion()}`);
        break;
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        console.log(mainHelp());
        break;
      default:
        throw new ShaderganError(
          `unknown command '${command}'; commands are ${commands.map((s) => s.name).join(', ')}`,
        );
    }
    return 0;
  } catch (error) {
    if (error instanceof ShaderganError) {
      process.stderr.write(`shadergan: ${error.message}\n`);
      return 1;
    }
    if (isFileSystemError(error)) {
      // ENOSPC, EACCES, ENOTDIR and the like: Node's message names the operation and the path.
      process.stderr.write(`shadergan: ${error.message}\n`);
      return 1;
    }
    throw error;
  }
}
