// Measuring one case: the cross-check run, warm-up, then interleaved timed samples per engine.
import type { Backend, Gpu } from '../src/kernels/gpu.ts';
import { Gan } from '../src/train/gan.ts';
import { RADFORD_RECIPE, type ModelConfig } from '../src/train/models.ts';
import { NO_TRICKS } from '../src/train/recipe.ts';
import { SeededRandom } from '../src/train/random.ts';
import { relativeDifference } from './layouts.ts';
import type { OpCase, Runner } from './op-cases.ts';
import { summarise, type Cell, type OpRow, type Target, type TrainingRow } from './report.ts';
import { mirrorGan, type TfjsGanStep } from './tfjs-dcgan.ts';
import { hasKernels, type TfBackendName, type TfEngine } from './tfjs.ts';

export const ENGINES = ['shadergan', 'tfjs-webgpu', 'tfjs-wasm', 'tfjs-cpu'] as const;
export type Engine = (typeof ENGINES)[number];
export const TFJS_BACKEND: Record<Exclude<Engine, 'shadergan'>, TfBackendName> = {
  'tfjs-webgpu': 'webgpu',
  'tfjs-wasm': 'wasm',
  'tfjs-cpu': 'cpu',
};
/** The CPU backend is a column of the training step only, as its single ops say little. */
const OP_ENGINES: readonly Engine[] = ['shadergan', 'tfjs-webgpu', 'tfjs-wasm'];

/** float32 results of different summation orders; far above rounding, far below a bug. */
export const OP_TOLERANCE = 1e-3;
export const LOSS_TOLERANCE = 1e-3;
/** Slow engines (tfjs-cpu training) take fewer samples so that a run ends in minutes. */
const SECONDS_PER_ENGINE_AND_CASE = 60;
const SLOW_RUN_SECONDS = 10;

export const MODELS: Record<string, { name: string; model: ModelConfig }> = {
  default: {
    name: 'default DCGAN 28x28 (width 32)',
    model: {
      architecture: 'dcgan',
      imageSize: 28,
      channels: 1,
      width: 32,
      noiseSize: 100,
      ...RADFORD_RECIPE,
    },
  },
  radford: {
    name: 'Radford DCGAN 32x32x3 (width 64)',
    model: {
      architecture: 'dcgan',
      imageSize: 32,
      channels: 3,
      width: 64,
      noiseSize: 100,
      ...RADFORD_RECIPE,
    },
  },
  'tf-tutorial': {
    name: 'TensorFlow tutorial DCGAN 28x28',
    model: {
      architecture: 'tf-tutorial',
      imageSize: 28,
      channels: 1,
      width: 64,
      noiseSize: 100,
      ...RADFORD_RECIPE,
    },
  },
};

export interface Settings {
  quick: boolean;
  samples: number;
  warmup: number;
  only: string | undefined;
  engines: Engine[];
  models: string[];
  backend: Backend;
  json: string;
}

function errorText(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.split('\n')[0].slice(0, 300);
}

/** Engine name -> what it needs before each of its runs (tfjs: switching to its backend). */
async function activate(tfjs: TfEngine | null, engine: Engine): Promise<void> {
  if (engine !== 'shadergan') await tfjs!.tf.setBackend(TFJS_BACKEND[engine]);
}

/**
 * Timed samples an engine can afford; 0 for one so slow (tfjs-cpu training) that its
 * cross-check run, which compiles nothing, serves as its only sample.
 */
function sampleCount(settings: Settings, secondsPerRun: number): number {
  if (secondsPerRun > SECONDS_PER_ENGINE_AND_CASE) return 0;
  const affordable = Math.floor(SECONDS_PER_ENGINE_AND_CASE / Math.max(secondsPerRun, 1e-3));
  return Math.max(1, Math.min(settings.samples, affordable));
}

/** One engine's part in a case: a timed run, and the results of the latest run. */
interface Contestant {
  run(): Promise<void>;
  results(): Promise<Float32Array[]>;
}

/**
 * Measures the contestants of one case into `cells`, shadergan first:
 * 1. a first run of each, whose results are compared with shadergan's;
 * 2. warm-up runs, which absorb shader compilation and pool growth (skipped after a first run
 *    over SLOW_RUN_SECONDS: nothing comparable is left to absorb);
 * 3. the timed samples, the engines taking turns, one sample each per round, so that a slow
 *    moment of the machine falls on all of them alike. A run's seconds become a sample through
 *    `toSample` (milliseconds, or images per second).
 * A peer that throws gets an error cell; shadergan throwing ends the bench.
 */
async function measureContestants(
  tfjs: TfEngine | null,
  settings: Settings,
  contestants: Map<Engine, Contestant>,
  toSample: (seconds: number) => number,
  cells: Record<string, Cell>,
): Promise<void> {
  const timed = async (contestant: Contestant): Promise<number> => {
    const started = performance.now();
    await contestant.run();
    return (performance.now() - started) / 1000;
  };

  const measured = new Map<
    Engine,
    { difference: number | null; samples: number[]; count: number }
  >();
  let reference: Float32Array[] = [];
  for (const [engine, contestant] of contestants) {
    try {
      await activate(tfjs, engine);
      const seconds = await timed(contestant);
      const results = await contestant.results();
      let difference: number | null = null;
      if (engine === 'shadergan') reference = results;
      else
        difference = Math.max(
          ...results.map((result, i) => relativeDifference(reference[i], result)),
        );

      const warmups = seconds > SLOW_RUN_SECONDS ? 0 : settings.warmup;
      const count = sampleCount(settings, seconds);
      const plan = count === 0 ? 'it is the only sample' : `${warmups} warm-up, ${count} timed`;
      process.stderr.write(`  ${engine}: first run ${seconds.toFixed(2)} s; ${plan}\n`);
      for (let i = 0; i < warmups; i += 1) await contestant.run();
      measured.set(engine, { difference, samples: count === 0 ? [toSample(seconds)] : [], count });
    } catch (error) {
      if (engine === 'shadergan') throw error;
      cells[engine] = { status: 'error', reason: errorText(error) };
    }
  }

  const rounds = Math.max(0, ...[...measured.values()].map(({ count }) => count));
  for (let round = 0; round < rounds; round += 1) {
    for (const [engine, { samples, count }] of measured) {
      if (round >= count) continue;
      await activate(tfjs, engine);
      samples.push(toSample(await timed(contestants.get(engine)!)));
    }
  }
  for (const [engine, { difference, samples }] of measured) {
    cells[engine] = { status: 'ok', summary: summarise(samples), difference };
  }
}

function passedWithin(cells: Record<string, Cell>, tolerance: number): boolean {
  return Object.values(cells).every(
    (cell) => cell.status !== 'ok' || cell.difference === null || cell.difference <= tolerance,
  );
}

// ---------------------------------------------------------------------------- single ops

export async function benchOp(
  gpu: Gpu,
  tfjs: TfEngine | null,
  settings: Settings,
  opCase: OpCase,
): Promise<OpRow> {
  const cells: Record<string, Cell> = {};
  const runners = new Map<Engine, Runner>();
  for (const engine of OP_ENGINES) {
    if (!settings.engines.includes(engine)) continue;
    if (engine !== 'shadergan') {
      const backend = TFJS_BACKEND[engine];
      if (!tfjs?.available.has(backend)) {
        cells[engine] = { status: 'error', reason: tfjs?.failures.get(backend) ?? 'not loaded' };
        continue;
      }
      if (!hasKernels(tfjs.tf, backend, opCase.tfjsKernels)) {
        cells[engine] = {
          status: 'not supported',
          reason: `tfjs-backend-${backend} registers no ${opCase.tfjsKernels.join('/')} kernel`,
        };
        continue;
      }
    }
    try {
      await activate(tfjs, engine);
      runners.set(
        engine,
        engine === 'shadergan'
          ? opCase.shadergan(gpu)
          : opCase.tfjs(tfjs!.tf, TFJS_BACKEND[engine]),
      );
    } catch (error) {
      if (engine === 'shadergan') throw error;
      cells[engine] = { status: 'error', reason: errorText(error) };
    }
  }

  const contestants = new Map(
    [...runners].map(([engine, runner]): [Engine, Contestant] => [
      engine,
      {
        run: async () => {
          runner.run();
          await runner.finish();
        },
        results: () => runner.outputs(),
      },
    ]),
  );
  await measureContestants(tfjs, settings, contestants, (seconds) => seconds * 1000, cells);
  for (const [engine, runner] of runners) {
    await activate(tfjs, engine);
    runner.dispose();
  }

  const passed = passedWithin(cells, OP_TOLERANCE);
  return {
    name: opCase.name,
    group: opCase.group,
    flops: opCase.flops,
    cells,
    speedup: speedupOf(cells, 'time'),
    passed,
  };
}

function speedupOf(cells: Record<string, Cell>, kind: 'time' | 'rate'): number | null {
  const ours = cells.shadergan;
  const theirs = cells['tfjs-webgpu'];
  if (ours?.status !== 'ok' || theirs?.status !== 'ok') return null;
  return kind === 'time'
    ? theirs.summary.median / ours.summary.median
    : ours.summary.median / theirs.summary.median;
}

// ---------------------------------------------------------------------------- training step

function randomImages(count: number, seed: number): Float32Array {
  const random = new SeededRandom(seed);
  return Float32Array.from({ length: count }, () => random.next() * 2 - 1);
}

export async function benchTraining(
  gpu: Gpu,
  tfjs: TfEngine | null,
  settings: Settings,
  key: string,
): Promise<TrainingRow> {
  const { name, model: full } = MODELS[key];
  const model = settings.quick && full.architecture === 'dcgan' ? { ...full, width: 8 } : full;
  const batchSize = settings.quick ? 4 : 64;
  const gan = new Gan(gpu, {
    model,
    optimizer: { lr: 2e-4, beta1: 0.5, beta2: 0.999 },
    batchSize,
    seed: 1,
    training: NO_TRICKS,
  });
  const real = randomImages(batchSize * model.channels * model.imageSize * model.imageSize, 5);
  const noiseTensor = gan.noiseFor(0, batchSize);
  const noise = await noiseTensor.toArray();
  noiseTensor.dispose();

  const cells: Record<string, Cell> = {};
  const steppers = new Map<Engine, () => Promise<[number, number]>>();
  const mirrors: TfjsGanStep[] = [];
  // Mirrors are built before shadergan's first step, so that all start from the same weights.
  for (const engine of settings.engines) {
    if (engine === 'shadergan') continue;
    const backend = TFJS_BACKEND[engine];
    if (!tfjs?.available.has(backend)) {
      cells[engine] = { status: 'error', reason: tfjs?.failures.get(backend) ?? 'not loaded' };
      continue;
    }
    try {
      await activate(tfjs, engine);
      const mirror = await mirrorGan(tfjs.tf, backend, gan, real, noise);
      mirrors.push(mirror);
      steppers.set(engine, () => mirror.step());
    } catch (error) {
      cells[engine] = { status: 'error', reason: errorText(error) };
    }
  }
  const stepOf = new Map<Engine, () => Promise<[number, number]>>([
    [
      'shadergan',
      async () => {
        const losses = await gan.trainStep(real);
        return [losses.discriminator, losses.generator];
      },
    ],
    ...steppers,
  ]);
  const contestants = new Map(
    [...stepOf].map(([engine, step]): [Engine, Contestant] => {
      let losses: [number, number] = [NaN, NaN];
      return [
        engine,
        {
          run: async () => {
            losses = await step();
          },
          results: async () => [Float32Array.from(losses)],
        },
      ];
    }),
  );
  await measureContestants(tfjs, settings, contestants, (seconds) => batchSize / seconds, cells);
  for (const mirror of mirrors) mirror.dispose();
  gan.dispose();

  const passed = passedWithin(cells, LOSS_TOLERANCE);
  // --quick shrinks the model; the row says what actually ran.
  const label =
    model.width === full.width
      ? name
      : `${name.replace(/ \(width \d+\)/, '')} (width ${model.width})`;
  return { name: label, batchSize, cells, speedup: speedupOf(cells, 'rate'), passed };
}

// ---------------------------------------------------------------------------- targets

export function targetsOf(ops: readonly OpRow[], training: readonly TrainingRow[]): Target[] {
  const targets: Target[] = [];
  const convs = ops.filter((row) => row.group.startsWith('conv2d') && row.speedup !== null);
  if (convs.length) {
    const slowest = convs.reduce((a, b) => (a.speedup! <= b.speedup! ? a : b));
    const below = convs.filter((row) => row.speedup! < 4);
    targets.push({
      description: 'every conv2d / transposed conv2d kernel at least 4x tfjs-webgpu',
      measured:
        `${convs.length - below.length} of ${convs.length} cases; lowest ${slowest.speedup!.toFixed(1)}x (${slowest.name})` +
        (below.length
          ? `; below 4x: ${below.map((row) => `${row.name} ${row.speedup!.toFixed(1)}x`).join(', ')}`
          : ''),
      met: below.length === 0,
    });
  }
  const big = ops.find((row) => row.name.startsWith('matmul 1024x1024'));
  if (big?.cells.shadergan?.status === 'ok') {
    const rate = big.flops / (big.cells.shadergan.summary.median / 1000) / 1e9;
    targets.push({
      description: 'matmul 1024^3 at least 20 GFLOP/s',
      measured: `${rate.toFixed(1)} GFLOP/s`,
      met: rate >= 20,
    });
  }
  for (const row of training) {
    if (row.speedup !== null) {
      targets.push({
        description: `${row.name} training step at least 8x tfjs-webgpu`,
        measured: `${row.speedup.toFixed(1)}x`,
        met: row.speedup >= 8,
      });
    }
    const ours = row.cells.shadergan;
    const wasm = row.cells['tfjs-wasm'];
    if (ours?.status === 'ok' && wasm?.status === 'ok') {
      const ratio = ours.summary.median / wasm.summary.median;
      targets.push({
        description: `${row.name} training step faster than tfjs-wasm`,
        measured: `${ratio.toFixed(1)}x`,
        met: ratio > 1,
      });
    }
  }
  return targets;
}
