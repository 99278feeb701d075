// A training run on disk: config, progress, sample grids, checkpoints and metrics under one
// folder, resumable from its checkpoint with the same batches and noise it would have seen.
import { appendFileSync, existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { ShaderganError } from '../errors.ts';
import type { Gpu } from '../kernels/gpu.ts';
import { loadCheckpoint, readCheckpointInfo, saveCheckpoint } from './checkpoint.ts';
import { ImageDataset } from './data.ts';
import { Gan, type GanConfig } from './gan.ts';
import { writeImageGrid } from './image-grid.ts';
import { ProgressBar, type ProgressStream } from './progress.ts';

export const CHECKPOINT_FILE = 'checkpoint.safetensors';
const SAMPLE_COUNT = 64;

export interface RunOptions {
  gpu: Gpu;
  config: GanConfig;
  dataDir: string;
  outDir: string;
  /** Stop after this many steps in total; null = from `epochs`. */
  steps: number | null;
  epochs: number;
  sampleEvery: number;
  checkpointEvery: number;
  /** A checkpoint file or a run folder holding one. */
  resume: string | null;
  /** Progress output; the library prints nothing else. */
  stream: ProgressStream;
  /** Set by a signal handler: finish the current step, save, and return. */
  stopRequested?: () => boolean;
}

export interface RunResult {
  outDir: string;
  step: number;
  totalSteps: number;
  imagesPerSecond: number;
  losses: { discriminator: number; generator: number } | null;
  stoppedEarly: boolean;
}

export function resolveCheckpointPath(path: string): string {
  if (existsSync(path) && statSync(path).isDirectory()) return join(path, CHECKPOINT_FILE);
  return path;
}

export async function runTraining(options: RunOptions): Promise<RunResult> {
  const { gpu, outDir, stream } = options;

  let gan: Gan;
  if (options.resume) {
    const checkpointPath = resolveCheckpointPath(options.resume);
    if (!existsSync(checkpointPath)) {
      throw new ShaderganError(`--resume: no checkpoint at ${checkpointPath}`);
    }
    readCheckpointInfo(checkpointPath);
    gan = loadCheckpoint(gpu, checkpointPath).gan;
    stream.write(`Resuming from ${checkpointPath} at step ${gan.step}\n`);
  } else {
    gan = new Gan(gpu, options.config);
  }

  try {
    return await trainLoop(gan, options, outDir);
  } finally {
    gan.dispose();
  }
}

async function trainLoop(gan: Gan, options: RunOptions, outDir: string): Promise<RunResult> {
  const { config } = gan;
  const { model, batchSize, seed } = config;
  const data = ImageDataset.load(options.dataDir, model.imageSize);
  const perEpoch = data.batchesPerEpoch(batchSize);
  const totalSteps = options.steps ?? options.epochs * perEpoch;

  mkdirSync(join(outDir, 'samples'), { recursive: true });
  writeFileSync(join(outDir, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
  const metricsPath = join(outDir, 'metrics.jsonl');
  const checkpointPath = join(outDir, CHECKPOINT_FILE);
  const fixedNoise = gan.fixedNoise(SAMPLE_COUNT).keep();

  const writeSamples = async (): Promise<void> => {
    const images = await gan.generate(fixedNoise);
    const gridOptions = {
      count: SAMPLE_COUNT,
      channels: model.channels === 3 ? (3 as const) : (1 as const),
      height: model.imageSize,
      width: model.imageSize,
      range: [-1, 1] as [number, number],
    };
    const name = `step-${String(gan.step).padStart(6, '0')}.png`;
    writeImageGrid(join(outDir, 'samples', name), images, gridOptions);
    writeImageGrid(join(outDir, 'samples', 'latest.png'), images, gridOptions);
  };
  const writeCheckpoint = (): Promise<void> =>
    saveCheckpoint(checkpointPath, gan, { totalSteps: String(totalSteps) });

  const progress = new ProgressBar({ total: totalSteps, stream: options.stream });
  const started = performance.now();
  const firstStep = gan.step;
  let losses: RunResult['losses'] = null;
  let stoppedEarly = false;
  let imagesPerSecond = 0;

  if (gan.step === 0) await writeSamples();
  while (gan.step < totalSteps) {
    if (options.stopRequested?.()) {
      stoppedEarly = true;
      break;
    }
    const real = data.batch(gan.step, batchSize, seed, model.channels);
    losses = await gan.trainStep(real);
    if (!Number.isFinite(losses.discriminator) || !Number.isFinite(losses.generator)) {
      throw new ShaderganError(
        `training diverged at step ${gan.step}: D loss ${losses.discriminator}, ` +
          `G loss ${losses.generator}; the last checkpoint is ${checkpointPath}`,
      );
    }

    const seconds = (performance.now() - started) / 1000;
    imagesPerSecond = ((gan.step - firstStep) * batchSize) / seconds;
    const epoch = Math.floor((gan.step - 1) / perEpoch) + 1;
    progress.update({
      step: gan.step,
      epoch,
      imagesPerSecond,
      values: { D: losses.discriminator, G: losses.generator },
    });
    appendFileSync(
      metricsPath,
      `${JSON.stringify({
        step: gan.step,
        epoch,
        lossD: losses.discriminator,
        lossG: losses.generator,
        imagesPerSecond,
        seconds: Math.round(seconds * 10) / 10,
      })}\n`,
    );

    const epochEnded = gan.step % perEpoch === 0;
    if (gan.step % options.sampleEvery === 0 || epochEnded) await writeSamples();
    if (gan.step % options.checkpointEvery === 0) await writeCheckpoint();
  }

  await writeSamples();
  await writeCheckpoint();
  fixedNoise.dispose();
  progress.finish();
  return { outDir, step: gan.step, totalSteps, imagesPerSecond, losses, stoppedEarly };
}
