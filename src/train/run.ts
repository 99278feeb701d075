// A training run on disk: config, progress, sample grids, checkpoints and metrics under one
// folder, resumable from its checkpoint with the same batches and noise it would have seen.
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';

import { ShaderganError } from '../errors.ts';
import type { Gpu } from '../kernels/gpu.ts';
import { writeFileAtomic } from './atomic-write.ts';
import { loadCheckpoint, saveCheckpoint } from './checkpoint.ts';
import { ImageDataset } from './data.ts';
import { pixelRange } from './models.ts';
import { Gan, type GanConfig } from './gan.ts';
import { writeImageGrid } from './image-grid.ts';
import { ProgressBar, type ProgressStream } from './progress.ts';
import { writeRunReport } from './report.ts';

export const CHECKPOINT_FILE = 'checkpoint.safetensors';
const LOCK_FILE = '.lock';
const SETTINGS_KEY = 'run.settings';
const SAMPLE_COUNT = 64;
/** A conditional model's grids have one row per class, this many images wide. */
const SAMPLES_PER_CLASS = 8;
/** Used for what neither the command line nor an older checkpoint gives. */
export const DEFAULT_RUN_SETTINGS = {
  steps: null,
  epochs: 5,
  sampleEvery: 100,
  checkpointEvery: 500,
} as const;

/** How a run trains, apart from the model: stored in each checkpoint so --resume can reuse it. */
export interface RunSettings {
  dataDir: string;
  /** Total steps; null means `epochs` passes over the data. */
  steps: number | null;
  epochs: number;
  sampleEvery: number;
  checkpointEvery: number;
}

export type RunStart =
  | { kind: 'new'; config: GanConfig; settings: RunSettings }
  /** Settings come from the checkpoint; `overrides` are the ones the user gave again. */
  | { kind: 'resume'; checkpoint: string; overrides: Partial<RunSettings> };

export interface RunOptions {
  gpu: Gpu;
  outDir: string;
  start: RunStart;
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
  /** Steps this call trained: 0 when a resumed run was already at its last step. */
  stepsTrained: number;
}

/** A run folder holding checkpoint.safetensors, or a checkpoint file itself. */
export function resolveCheckpointPath(path: string): string {
  if (existsSync(path) && statSync(path).isDirectory()) return join(path, CHECKPOINT_FILE);
  return path;
}

/** The run folder a --resume path belongs to. */
export function runFolderOf(resume: string): string {
  return existsSync(resume) && statSync(resume).isFile() ? dirname(resume) : resume;
}

export async function runTraining(options: RunOptions): Promise<RunResult> {
  const { gpu, outDir, start, stream } = options;
  const resumeFrom = start.kind === 'resume' ? resolveCheckpointPath(start.checkpoint) : null;
  if (resumeFrom !== null && !(existsSync(resumeFrom) && statSync(resumeFrom).isFile())) {
    throw new ShaderganError(`--resume: no checkpoint at ${resumeFrom}`);
  }
  checkRunFolder(outDir, resumeFrom);
  // The checkpoint and the data are checked before the run folder is made, so a run that
  // cannot start leaves nothing behind.
  let gan: Gan;
  let settings: RunSettings;
  if (resumeFrom !== null && start.kind === 'resume') {
    const loaded = loadCheckpoint(gpu, resumeFrom);
    gan = loaded.gan;
    try {
      settings = mergeSettings(loaded.info.extra, start.overrides, resumeFrom);
    } catch (error) {
      gan.dispose();
      throw error;
    }
  } else if (start.kind === 'new') {
    gan = new Gan(gpu, start.config);
    settings = start.settings;
  } else {
    throw new ShaderganError('--resume needs a checkpoint');
  }
  try {
    const data = ImageDataset.load(settings.dataDir, gan.config.model.imageSize);
    const totalSteps = checkRun(gan, settings, data);
    const releaseFolder = claimRunFolder(outDir);
    try {
      if (resumeFrom !== null) stream.write(`Resuming from ${resumeFrom} at step ${gan.step}\n`);
      return await trainLoop(gan, { ...settings, steps: totalSteps }, data, options);
    } finally {
      releaseFolder();
    }
  } finally {
    gan.dispose();
  }
}

/** The run's total step count, after checking that the data can train this model that long. */
function checkRun(gan: Gan, settings: RunSettings, data: ImageDataset): number {
  const perEpoch = data.batchesPerEpoch(gan.config.batchSize);
  checkLabels(data, gan.config.model.classes, settings.dataDir);
  const totalSteps = settings.steps ?? settings.epochs * perEpoch;
  if (totalSteps < gan.step) {
    throw new ShaderganError(
      `the run is already at step ${gan.step}; ask for more steps (--steps above ${gan.step})`,
    );
  }
  return totalSteps;
}

/**
 * The settings a checkpoint recorded, with the ones given again on the command line on top.
 * Checkpoints written before settings were recorded need --data given again.
 */
function mergeSettings(
  metadata: Record<string, string>,
  overrides: Partial<RunSettings>,
  path: string,
): RunSettings {
  let stored: Partial<RunSettings> = {};
  try {
    stored = JSON.parse(metadata[SETTINGS_KEY] ?? '{}') as Partial<RunSettings>;
  } catch {
    throw new ShaderganError(`${path}: its recorded run settings are not valid JSON`);
  }
  const settings = { ...DEFAULT_RUN_SETTINGS, ...stored, ...overrides };
  if (typeof settings.dataDir !== 'string' || settings.dataDir === '') {
    throw new ShaderganError(`${path} does not record its data folder; give --data DIR`);
  }
  const positive = (value: unknown): boolean => Number.isInteger(value) && (value as number) > 0;
  if (!(settings.steps === null || positive(settings.steps)) || !positive(settings.epochs)) {
    throw new ShaderganError(`${path}: its recorded step count is not a positive integer`);
  }
  if (!positive(settings.sampleEvery) || !positive(settings.checkpointEvery)) {
    throw new ShaderganError(`${path}: its recorded sample or checkpoint interval is invalid`);
  }
  return settings as RunSettings;
}

/** Refuses an --out that is a file, or a folder holding a run other than the one resumed. */
function checkRunFolder(outDir: string, resumeFrom: string | null): void {
  if (existsSync(outDir) && !statSync(outDir).isDirectory()) {
    throw new ShaderganError(`--out ${outDir} is a file, not a folder`);
  }
  const existing = join(outDir, CHECKPOINT_FILE);
  if (existsSync(existing) && (resumeFrom === null || !samePath(existing, resumeFrom))) {
    throw new ShaderganError(
      `${outDir} already holds a training run; continue that one with ` +
        `'npx shadergan train --resume ${outDir}', or choose another --out`,
    );
  }
}

/**
 * Makes `outDir` this process's run folder: refuses a folder another live run holds (a lock
 * file with its pid). Returns the release.
 */
function claimRunFolder(outDir: string): () => void {
  mkdirSync(join(outDir, 'samples'), { recursive: true });
  const lockPath = join(outDir, LOCK_FILE);
  takeLock(lockPath, outDir);

  // Only the lock holder writes here, so temporary files left by a killed run are stale.
  for (const folder of [outDir, join(outDir, 'samples')]) {
    for (const name of readdirSync(folder)) {
      if (name.includes('.tmp-')) rmSync(join(folder, name), { force: true });
    }
  }
  return () => rmSync(lockPath, { force: true });
}

/** Creates the lock file exclusively; a lock whose process is gone is taken over. */
function takeLock(lockPath: string, outDir: string): void {
  for (let attempt = 0; attempt < 2; attempt += 1) {
    try {
      writeFileSync(lockPath, String(process.pid), { flag: 'wx' });
      return;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const pid = Number(readFileSync(lockPath, 'utf8'));
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid)) {
      throw new ShaderganError(
        `another shadergan run (pid ${pid}) is writing to ${outDir}; if no such run is ` +
          `going on, delete ${lockPath}`,
      );
    }
    rmSync(lockPath, { force: true });
  }
  throw new ShaderganError(`another shadergan run is starting in ${outDir}`);
}

function samePath(a: string, b: string): boolean {
  return realpathSync(a) === realpathSync(b);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Drops metric lines past `step`, written by a run that stopped before its next checkpoint. */
function truncateMetrics(path: string, step: number): void {
  if (!existsSync(path)) return;
  const kept = readFileSync(path, 'utf8')
    .split('\n')
    .filter((line) => {
      try {
        return (JSON.parse(line) as { step: number }).step <= step;
      } catch {
        return false; // a line cut short by a crash or a full disk
      }
    });
  writeFileAtomic(path, [Buffer.from(kept.map((line) => `${line}\n`).join(''))]);
}

/** A conditional run needs labels in [0, classes) for every training image. */
function checkLabels(data: ImageDataset, classes: number, dataDir: string): void {
  if (classes === 0) return;
  if (data.labels === null) {
    throw new ShaderganError(
      `this run is conditional, but ${dataDir} has no train-labels-idx1-ubyte[.gz]`,
    );
  }
  const largest = data.labels.reduce((most, label) => Math.max(most, label), 0);
  if (largest >= classes) {
    throw new ShaderganError(
      `this run is conditional on ${classes} classes, but ${dataDir} has label ${largest}`,
    );
  }
}

/** `settings.steps` is the run's total step count. */
async function trainLoop(
  gan: Gan,
  settings: RunSettings & { steps: number },
  data: ImageDataset,
  options: RunOptions,
): Promise<RunResult> {
  const { outDir } = options;
  const { config } = gan;
  const { model, batchSize, seed } = config;
  const perEpoch = data.batchesPerEpoch(batchSize);
  const totalSteps = settings.steps;

  writeFileAtomic(join(outDir, 'config.json'), [
    Buffer.from(`${JSON.stringify({ ...config, run: settings }, null, 2)}\n`),
  ]);
  const metricsPath = join(outDir, 'metrics.jsonl');
  truncateMetrics(metricsPath, gan.step);
  const checkpointPath = join(outDir, CHECKPOINT_FILE);
  const conditional = model.classes > 0;
  const sampleCount = conditional ? model.classes * SAMPLES_PER_CLASS : SAMPLE_COUNT;
  const sampleLabels = conditional ? gan.sampleLabels(SAMPLES_PER_CLASS) : undefined;
  const fixedNoise = gan.fixedNoise(sampleCount).keep();
  const range = pixelRange(model.scale);

  const writeSamples = async (): Promise<void> => {
    const images = await gan.generate(fixedNoise, sampleLabels);
    const gridOptions = {
      count: sampleCount,
      channels: model.channels === 3 ? (3 as const) : (1 as const),
      height: model.imageSize,
      width: model.imageSize,
      range,
      columns: conditional ? SAMPLES_PER_CLASS : undefined,
    };
    const name = `step-${String(gan.step).padStart(6, '0')}.png`;
    writeImageGrid(join(outDir, 'samples', name), images, gridOptions);
    writeImageGrid(join(outDir, 'samples', 'latest.png'), images, gridOptions);
    // Rebuilt from the files on disk, so it shows every grid and metric written so far.
    writeRunReport(outDir);
  };
  const writeCheckpoint = (): Promise<void> =>
    saveCheckpoint(checkpointPath, gan, { [SETTINGS_KEY]: JSON.stringify(settings) });

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
    const real = data.batch(gan.step, batchSize, seed, model.channels, range);
    const labels = conditional ? data.batchLabels(gan.step, batchSize, seed) : undefined;
    losses = await gan.trainStep(real, labels);
    if (!Number.isFinite(losses.discriminator) || !Number.isFinite(losses.generator)) {
      const last = existsSync(checkpointPath)
        ? `the last checkpoint is ${checkpointPath}`
        : 'no checkpoint was written yet';
      throw new ShaderganError(
        `training diverged at step ${gan.step}: D loss ${losses.discriminator}, ` +
          `G loss ${losses.generator} (try a lower --lr); ${last}`,
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
    if (gan.step % settings.sampleEvery === 0 || epochEnded) await writeSamples();
    if (gan.step % settings.checkpointEvery === 0) await writeCheckpoint();
  }

  await writeSamples();
  await writeCheckpoint();
  fixedNoise.dispose();
  progress.finish();
  const stepsTrained = gan.step - firstStep;
  return {
    outDir,
    step: gan.step,
    totalSteps,
    imagesPerSecond,
    losses,
    stoppedEarly,
    stepsTrained,
  };
}
