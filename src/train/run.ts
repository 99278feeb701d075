// A training run on disk: config, progress, sample grids, checkpoints and metrics under one
// folder, resumable from its checkpoint with the same batches and noise it would have seen.
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
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
import { Gan, type GanConfig } from './gan.ts';
import { writeImageGrid } from './image-grid.ts';
import { ProgressBar, type ProgressStream } from './progress.ts';

export const CHECKPOINT_FILE = 'checkpoint.safetensors';
const LOCK_FILE = '.lock';
const SETTINGS_KEY = 'run.settings';
const SAMPLE_COUNT = 64;

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
  const releaseFolder = claimRunFolder(outDir, start.kind === 'resume');
  try {
    let gan: Gan;
    let settings: RunSettings;
    if (start.kind === 'resume') {
      const checkpointPath = resolveCheckpointPath(start.checkpoint);
      if (!existsSync(checkpointPath)) {
        throw new ShaderganError(`--resume: no checkpoint at ${checkpointPath}`);
      }
      const loaded = loadCheckpoint(gpu, checkpointPath);
      gan = loaded.gan;
      settings = { ...storedSettings(loaded.info.extra, checkpointPath), ...start.overrides };
      stream.write(`Resuming from ${checkpointPath} at step ${gan.step}\n`);
    } else {
      gan = new Gan(gpu, start.config);
      settings = start.settings;
    }
    try {
      return await trainLoop(gan, settings, options);
    } finally {
      gan.dispose();
    }
  } finally {
    releaseFolder();
  }
}

function storedSettings(metadata: Record<string, string>, path: string): RunSettings {
  try {
    const settings = JSON.parse(metadata[SETTINGS_KEY] ?? '') as RunSettings;
    if (typeof settings.dataDir === 'string') return settings;
  } catch {
    // Reported below.
  }
  throw new ShaderganError(
    `${path} does not record how its run was trained (data folder, steps); it was not ` +
      'written by shadergan train',
  );
}

/**
 * Makes `outDir` this process's run folder: refuses a folder another live run holds (a lock
 * file with its pid) and, unless resuming, one that already holds a run. Returns the release.
 */
function claimRunFolder(outDir: string, resuming: boolean): () => void {
  if (existsSync(outDir) && !statSync(outDir).isDirectory()) {
    throw new ShaderganError(`--out ${outDir} is a file, not a folder`);
  }
  mkdirSync(join(outDir, 'samples'), { recursive: true });
  const lockPath = join(outDir, LOCK_FILE);
  if (existsSync(lockPath)) {
    const pid = Number(readFileSync(lockPath, 'utf8'));
    if (Number.isInteger(pid) && pid !== process.pid && isAlive(pid)) {
      throw new ShaderganError(`another shadergan run (pid ${pid}) is writing to ${outDir}`);
    }
  }
  if (!resuming && existsSync(join(outDir, CHECKPOINT_FILE))) {
    throw new ShaderganError(
      `${outDir} already holds a training run; continue it with ` +
        `'npx shadergan train --resume ${outDir}', or choose another --out`,
    );
  }
  writeFileSync(lockPath, String(process.pid));
  // Only the lock holder writes here, so temporary files left by a killed run are stale.
  for (const name of readdirSync(outDir)) {
    if (name.includes('.tmp-')) rmSync(join(outDir, name), { force: true });
  }
  return () => rmSync(lockPath, { force: true });
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
    .filter((line) => line.trim() !== '' && (JSON.parse(line) as { step: number }).step <= step);
  writeFileAtomic(path, [Buffer.from(kept.map((line) => `${line}\n`).join(''))]);
}

async function trainLoop(gan: Gan, settings: RunSettings, options: RunOptions): Promise<RunResult> {
  const { outDir } = options;
  const { config } = gan;
  const { model, batchSize, seed } = config;
  const data = ImageDataset.load(settings.dataDir, model.imageSize);
  const perEpoch = data.batchesPerEpoch(batchSize);
  const totalSteps = settings.steps ?? settings.epochs * perEpoch;
  if (totalSteps < gan.step) {
    throw new ShaderganError(
      `the run is already at step ${gan.step}; ask for more steps (--steps above ${gan.step})`,
    );
  }
  const stored: RunSettings = { ...settings, steps: totalSteps };

  writeFileAtomic(join(outDir, 'config.json'), [
    Buffer.from(`${JSON.stringify({ ...config, run: stored }, null, 2)}\n`),
  ]);
  const metricsPath = join(outDir, 'metrics.jsonl');
  truncateMetrics(metricsPath, gan.step);
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
    saveCheckpoint(checkpointPath, gan, { [SETTINGS_KEY]: JSON.stringify(stored) });

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
  return { outDir, step: gan.step, totalSteps, imagesPerSecond, losses, stoppedEarly };
}
