// Measuring one case: the cross-check run, warm-up, then interleaved timed samples per engine.
import type { Backend, Gpu } from '../src/kernels/gpu.ts';
import { Gan } from '../src/train/gan.ts';
import type { ModelConfig } from '../src/train/models.ts';
import { SeededRandom } from '../src/train/random.ts';
import { relativeDifference } from './layouts.ts';
import { tfjsSupports, type OpCase, type Runner } from './op-cases.ts';
import { summarise, type Cell, type OpRow, type Target, type TrainingRow } from './report.ts';
import { mirrorGan, type TfjsGanStep } from './tfjs-dcgan.ts';
import type { TfBackendName, TfEngine } from './tfjs.ts';

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
    model: { architecture: 'dcgan', imageSize: 28, channels: 1, width: 32, noiseSize: 100 },
  },
  radford: {
    name: 'Radford DCGAN 32x32x3 (width 64)',
    model: { architecture: 'dcgan', imageSize: 32, channels: 3, width: 64, noiseSize: 100 },
  },
  'tf-tutorial': {
    name: 'TensorFlow tutorial DCGAN 28x28',
    model: { architecture: 'tf-tutorial', imageSize: 28, channels: 1, width: 64, noiseSize: 100 },
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

/**
 * Warm-up runs absorb shader compilation and pool growth; an engine whose first run took
 * longer than SLOW_RUN_SECONDS has nothing comparable left to absorb and skips them.
 */
function warmupRuns(settings: Settings, engine: Engine, firstSeconds: Map<Engine, number>): number {
  const seconds = firstSeconds.get(engine)!;
  const runs = seconds > SLOW_RUN_SECONDS ? 0 : settings.warmup;
  const samples = sampleCount(settings, seconds);
  const plan = samples === 0 ? 'it is the only sample' : `${runs} warm-up, ${samples} timed`;
  process.stderr.write(`  ${engine}: first run ${seconds.toFixed(2)} s; ${plan}\n`);
  return runs;
}

/**
 * The timed samples: engines take turns, one sample each per round, so that a slow moment of
 * the machine falls on all of them alike. `firstSeconds` (each engine's first run) sets how
 * many samples a slow engine can afford.
 */
async function interleavedSamples(
  tfjs: TfEngine | null,
  settings: Settings,
  samplers: Map<Engine, () => Promise<number>>,
  firstSeconds: Map<Engine, number>,
  firstSamples: Map<Engine, number>,
): Promise<Map<Engine, number[]>> {
  const counts = new Map(
    [...samplers.keys()].map((engine) => [
      engine,
      sampleCount(settings, firstSeconds.get(engine)!),
    ]),
  );
  const samples = new Map(
    [...samplers.keys()].map((engine) => [
      engine,
      counts.get(engine) === 0 ? [firstSamples.get(engine)!] : [],
    ]),
  );
  const rounds = Math.max(0, ...counts.values());
  for (let round = 0; round < rounds; round += 1) {
    for (const [engine, sample] of samplers) {
      if (round >= counts.get(engine)!) continue;
      await activate(tfjs, engine);
      samples.get(engine)!.push(await sample());
    }
  }
  return samples;
}

// ---------------------------------------------------------------------------- single ops

async function timeRun(runner: Runner): Promise<number> {
  const started = performance.now();
  runner.run();
  await runner.finish();
  return performance.now() - started;
}

export async function benchOp(
  gpu: Gpu,
  tfjs: TfEngine | null,
  settings: Settings,
  opCase: OpCase,
): Promise<OpRow> {
  const cells: Record<string, Cell> = {};
  const runners = new Map<Engine, Runner>();
  let reference: Float32Array[] = [];
  const firstRun = new Map<Engine, number>();
  const firstSample = new Map<Engine, number>();

  for (const engine of OP_ENGINES) {
    if (!settings.engines.includes(engine)) continue;
    if (engine !== 'shadergan') {
      const backend = TFJS_BACKEND[engine];
      if (!tfjs?.available.has(backend)) {
        cells[engine] = { status: 'error', reason: tfjs?.failures.get(backend) ?? 'not loaded' };
        continue;
      }
      if (!tfjsSupports(tfjs.tf, backend, opCase)) {
        cells[engine] = {
          status: 'not supported',
          reason: `tfjs-backend-${backend} registers no ${opCase.tfjsKernels.join('/')} kernel`,
        };
        continue;
      }
    }
    try {
      await activate(tfjs, engine);
      const runner =
        engine === 'shadergan'
          ? opCase.shadergan(gpu)
          : opCase.tfjs(tfjs!.tf, TFJS_BACKEND[engine]);
      runners.set(engine, runner);
      const milliseconds = await timeRun(runner);
      firstRun.set(engine, milliseconds / 1000);
      firstSample.set(engine, milliseconds);
      const outputs = await runner.outputs();
      let difference: number | null = null;
      if (engine === 'shadergan') reference = outputs;
      else
        difference = Math.max(
          ...outputs.map((output, i) => relativeDifference(reference[i], output)),
        );
      cells[engine] = { status: 'ok', summary: summarise([0]), difference };
      const warmups = warmupRuns(settings, engine, firstRun);
      for (let i = 0; i < warmups; i += 1) await timeRun(runner);
    } catch (error) {
      if (engine === 'shadergan') throw error;
      cells[engine] = { status: 'error', reason: errorText(error) };
      runners.get(engine)?.dispose();
      runners.delete(engine);
    }
  }

  const samplers = new Map([...runners].map(([engine, runner]) => [engine, () => timeRun(runner)]));
  const times = await interleavedSamples(tfjs, settings, samplers, firstRun, firstSample);
  for (const [engine, runner] of runners) {
    const cell = cells[engine];
    if (cell.status === 'ok') cell.summary = summarise(times.get(engine)!);
    await activate(tfjs, engine);
    runner.dispose();
  }

  const passed = Object.values(cells).every(
    (cell) => cell.status !== 'ok' || cell.difference === null || cell.difference <= OP_TOLERANCE,
  );
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
  const ordered = new Map<Engine, () => Promise<[number, number]>>([
    [
      'shadergan',
      async () => {
        const losses = await gan.trainStep(real);
        return [losses.discriminator, losses.generator];
      },
    ],
    ...steppers,
  ]);

  const firstStep = new Map<Engine, number>();
  const firstSample = new Map<Engine, number>();
  let reference: [number, number] = [0, 0];
  for (const [engine, step] of ordered) {
    try {
      await activate(tfjs, engine);
      const started = performance.now();
      const losses = await step();
      const seconds = (performance.now() - started) / 1000;
      firstStep.set(engine, seconds);
      firstSample.set(engine, batchSize / seconds);
      let difference: number | null = null;
      if (engine === 'shadergan') reference = losses;
      else difference = relativeDifference(Float32Array.from(reference), Float32Array.from(losses));
      cells[engine] = { status: 'ok', summary: summarise([0]), difference };
      const warmups = warmupRuns(settings, engine, firstStep);
      for (let i = 0; i < warmups; i += 1) await step();
    } catch (error) {
      if (engine === 'shadergan') throw error;
      cells[engine] = { status: 'error', reason: errorText(error) };
      ordered.delete(engine);
    }
  }
  const samplers = new Map(
    [...ordered].map(([engine, step]) => [
      engine,
      async () => {
        const started = performance.now();
        await step();
        return batchSize / ((performance.now() - started) / 1000);
      },
    ]),
  );
  const times = await interleavedSamples(tfjs, settings, samplers, firstStep, firstSample);
  for (const [engine] of ordered) {
    const cell = cells[engine];
    if (cell.status === 'ok') cell.summary = summarise(times.get(engine)!);
  }
  for (const mirror of mirrors) mirror.dispose();
  gan.dispose();

  const passed = Object.values(cells).every(
    (cell) => cell.status !== 'ok' || cell.difference === null || cell.difference <= LOSS_TOLERANCE,
  );
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
