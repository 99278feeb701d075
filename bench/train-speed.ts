// Training-step throughput of shadergan's models, in images per second: warm-up steps first
// (shader compilation, pool growth), then timed steps; the clock stops only after each step's
// losses are back on the CPU, so all GPU work of the step is included.
//
//   npm run bench:train                      # default model and TensorFlow's tutorial model
//   npm run bench:train -- --steps 40 --batch 64
import { getGpu } from '../src/kernels/gpu.ts';
import { Gan, type GanConfig } from '../src/train/gan.ts';
import type { ModelConfig } from '../src/train/models.ts';

interface Case {
  name: string;
  model: ModelConfig;
}

const cases: Case[] = [
  {
    name: 'default DCGAN 28x28 (width 32)',
    model: { architecture: 'dcgan', imageSize: 28, channels: 1, width: 32, noiseSize: 100 },
  },
  {
    name: 'TensorFlow DCGAN tutorial 28x28',
    model: { architecture: 'tf-tutorial', imageSize: 28, channels: 1, width: 64, noiseSize: 100 },
  },
  {
    name: 'Radford DCGAN 32x32 (width 64)',
    model: { architecture: 'dcgan', imageSize: 32, channels: 3, width: 64, noiseSize: 100 },
  },
];

function flag(name: string, fallback: number): number {
  const index = process.argv.indexOf(`--${name}`);
  return index === -1 ? fallback : Number(process.argv[index + 1]);
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

const batchSize = flag('batch', 64);
const timedSteps = flag('steps', 20);
const warmupSteps = 3;
const gpu = await getGpu();
const adapter = gpu.report.description || gpu.report.device || gpu.report.vendor;
console.log(`adapter: ${adapter} (${gpu.report.backend} backend), batch ${batchSize}\n`);
console.log('| model | images/s (median) | min | max | ms/step |');
console.log('|---|---|---|---|---|');

for (const { name, model } of cases) {
  const config: GanConfig = {
    model,
    optimizer: { lr: 2e-4, beta1: 0.5, beta2: 0.999 },
    batchSize,
    seed: 1,
  };
  const gan = new Gan(gpu, config);
  const plane = model.channels * model.imageSize * model.imageSize;
  const batch = Float32Array.from({ length: batchSize * plane }, (_, i) => Math.sin(i) * 0.9);

  for (let step = 0; step < warmupSteps; step += 1) await gan.trainStep(batch);
  const rates: number[] = [];
  for (let step = 0; step < timedSteps; step += 1) {
    const started = performance.now();
    await gan.trainStep(batch);
    rates.push(batchSize / ((performance.now() - started) / 1000));
  }
  gan.dispose();

  const middle = median(rates);
  console.log(
    `| ${name} | ${middle.toFixed(1)} | ${Math.min(...rates).toFixed(1)} | ` +
      `${Math.max(...rates).toFixed(1)} | ${((1000 * batchSize) / middle).toFixed(0)} |`,
  );
}
process.exit(0);
