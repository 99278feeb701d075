// shadergan against TensorFlow.js on the same WebGPU adapter: single ops at DCGAN shapes and
// the full training step. See `npm run bench -- --help` and the README's Benchmarks section.
//
// Method: both engines get identical inputs and their outputs are cross-checked before any
// timing (a case whose results differ by more than the tolerance is FAILED, whatever its
// speed); each engine is warmed up; then the engines take turns, one sample each, so that a
// noisy moment of the machine hits all of them alike; the clock stops only when the device
// has finished the work (for the training step: when the losses are back on the CPU).
import { cpus } from 'node:os';
import { dirname, resolve } from 'node:path';
import { accessSync, constants, existsSync, mkdirSync, statSync } from 'node:fs';

import { formatHelp, parseFlags, type CommandSpec } from '../src/cli/args.ts';
import { ShaderganError } from '../src/errors.ts';
import { getGpu, type Backend } from '../src/kernels/gpu.ts';
import { writeFileAtomic } from '../src/train/atomic-write.ts';
import {
  benchOp,
  benchTraining,
  ENGINES,
  LOSS_TOLERANCE,
  MODELS,
  OP_TOLERANCE,
  targetsOf,
  TFJS_BACKEND,
  type Engine,
  type Settings,
} from './measure.ts';
import { allOpCases } from './op-cases.ts';
import {
  notes,
  opTable,
  targetList,
  trainingTable,
  type OpRow,
  type TrainingRow,
} from './report.ts';
import { loadTensorflow } from './tfjs.ts';

const spec = {
  name: 'bench',
  summary:
    'Times shadergan against TensorFlow.js 4.22 (webgpu, wasm and cpu backends) on the same ' +
    'Dawn adapter: matmul, DCGAN convolutions and their gradients, batch norm, and the full ' +
    'training step. Outputs are cross-checked; prints Markdown and writes JSON.',
  usage: 'npm run bench -- [flags]',
  invocation: 'npm run bench --',
  flags: {
    quick: {
      type: 'bool',
      help: 'every case at tiny sizes, 2 samples: checks that the bench runs and that results agree, not speed',
    },
    samples: {
      type: 'int',
      min: 1,
      placeholder: 'N',
      help: 'timed samples per engine and case (default 5, --quick 2)',
    },
    warmup: {
      type: 'int',
      min: 0,
      default: 1,
      placeholder: 'N',
      help: 'untimed runs per engine after the cross-check run',
    },
    only: {
      type: 'string',
      placeholder: 'TEXT',
      help: "run only cases whose name contains TEXT (any case), e.g. 'filter grad' or 'training'",
    },
    engines: {
      type: 'string',
      default: ENGINES.join(','),
      placeholder: 'LIST',
      help: 'comma-separated engines to run; shadergan is always run',
    },
    models: {
      type: 'string',
      default: 'default,radford',
      placeholder: 'LIST',
      help: 'training-step models: default (28x28, width 32), radford (32x32x3, width 64), tf-tutorial',
    },
    backend: {
      type: 'string',
      choices: ['auto', 'vulkan', 'opengl'],
      placeholder: 'NAME',
      help: "Dawn backend for both engines (default: SHADERGAN_BACKEND, else auto, which is what 'train' uses)",
    },
    json: {
      type: 'string',
      default: 'bench-results.json',
      placeholder: 'FILE',
      help: 'where to write the results as JSON (its folder is created if missing)',
    },
  },
  examples: [
    'npm run bench                          # everything, about 30 minutes on 2 cores',
    'npm run bench -- --quick               # smoke test: tiny sizes, seconds',
    "npm run bench -- --only 'conv2d 16x16' --engines shadergan,tfjs-webgpu",
  ],
} as const satisfies CommandSpec;

function readSettings(): Settings | null {
  const outcome = parseFlags(spec, process.argv.slice(2));
  if (outcome.helpRequested) {
    console.log(formatHelp(spec));
    return null;
  }
  const { flags } = outcome;
  const engines = flags.engines.split(',').map((name) => name.trim());
  for (const name of engines) {
    if (!(ENGINES as readonly string[]).includes(name)) {
      throw new ShaderganError(
        `--engines: unknown engine '${name}'; choose from ${ENGINES.join(', ')}`,
      );
    }
  }
  const models = flags.models
    .split(',')
    .map((name) => name.trim())
    .filter(Boolean);
  for (const name of models) {
    if (!(name in MODELS)) {
      throw new ShaderganError(
        `--models: unknown model '${name}'; choose from ${Object.keys(MODELS).join(', ')}`,
      );
    }
  }
  const backend = (flags.backend ?? process.env.SHADERGAN_BACKEND ?? 'auto') as Backend;
  const json = resolve(flags.json);
  checkJsonPath(json);
  for (const name of ['SHADERGAN_PROFILE', 'SHADERGAN_DEBUG']) {
    // Both time every dispatch in a pass of its own (and pick Vulkan): not the engine as used.
    if ((process.env[name] ?? '').trim() !== '') {
      throw new ShaderganError(
        `unset ${name} first: it changes how shadergan runs and would skew the times`,
      );
    }
  }
  return {
    quick: flags.quick,
    samples: flags.samples ?? (flags.quick ? 2 : 5),
    warmup: flags.warmup,
    only: flags.only,
    engines: ['shadergan', ...(engines as Engine[]).filter((name) => name !== 'shadergan')],
    models,
    backend,
    json,
  };
}

/** Fails before any work, so that a long run never ends unable to save its results. */
function checkJsonPath(path: string): void {
  if (existsSync(path) && statSync(path).isDirectory()) {
    throw new ShaderganError(`--json: ${path} is a folder; give a file name`);
  }
  try {
    mkdirSync(dirname(path), { recursive: true });
    accessSync(dirname(path), constants.W_OK);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new ShaderganError(`--json: cannot write to the folder of ${path}: ${reason}`);
  }
}

// ---------------------------------------------------------------------------- main

async function main(): Promise<number> {
  const settings = readSettings();
  if (!settings) return 0;
  const selected = (name: string) =>
    !settings.only || name.toLowerCase().includes(settings.only.toLowerCase());
  const cases = allOpCases(settings.quick).filter((opCase) => selected(opCase.name));
  const models = settings.models.filter((key) => selected(`training ${MODELS[key].name}`));
  if (cases.length === 0 && models.length === 0) {
    throw new ShaderganError(
      `--only '${settings.only}' matches no case (try 'matmul', 'filter grad' or 'training')`,
    );
  }
  process.env.SHADERGAN_BACKEND = settings.backend;
  const gpu = await getGpu();
  const backend = gpu.report.backend === 'default' ? 'vulkan' : gpu.report.backend;
  const wanted = settings.engines
    .filter((engine) => engine !== 'shadergan')
    .map((engine) => TFJS_BACKEND[engine as Exclude<Engine, 'shadergan'>]);
  const tfjs = wanted.length
    ? await loadTensorflow(gpu.report.backend === 'auto' ? 'default' : gpu.report.backend, wanted)
    : null;

  const adapter = gpu.report.description || gpu.report.device || gpu.report.vendor;
  const header = [
    `# shadergan vs TensorFlow.js ${settings.quick ? '(--quick: tiny sizes, not a speed measurement)' : ''}`.trim(),
    '',
    `- adapter: ${adapter} (${gpu.report.software ? 'software device' : 'hardware'}), Dawn ${backend} backend, both engines`,
    `- CPU: ${cpus()[0]?.model ?? 'unknown'} x${cpus().length}; Node ${process.version}`,
    `- tfjs 4.22: ${[...(tfjs?.available ?? [])].join(', ') || 'not run'}` +
      (tfjs?.available.has('wasm')
        ? ` (wasm on ${tfjs.wasmThreads} thread: tfjs disables wasm threads under Node)`
        : ''),
    `- up to ${settings.samples} timed sample(s) per engine and case after ${settings.warmup} warm-up run(s), fewer for runs over a few seconds (the JSON has each count); engines interleaved; times are median (min–max); a sample ends when the device is idle`,
    `- speed-up = tfjs-webgpu time / shadergan time; a case is FAILED when the results differ by more than ${OP_TOLERANCE} relative to the largest magnitude`,
    '',
  ].join('\n');
  console.log(header);

  const ops: OpRow[] = [];
  for (const [index, opCase] of cases.entries()) {
    process.stderr.write(`[${index + 1}/${cases.length}] ${opCase.name}\n`);
    ops.push(await benchOp(gpu, tfjs, settings, opCase));
  }
  if (ops.length) console.log(`${opTable(ops)}\n`);

  const training: TrainingRow[] = [];
  for (const key of models) {
    process.stderr.write(`[training] ${MODELS[key].name}\n`);
    training.push(await benchTraining(gpu, tfjs, settings, key));
  }
  if (training.length) {
    console.log(`${trainingTable(training)}\n`);
    if (settings.engines.includes('tfjs-wasm')) {
      console.log(
        'tfjs-wasm has no conv filter-gradient kernel; for its training column the bench supplies one ' +
          'written with tfjs ops (a dilated convolution, see bench/tfjs-dcgan.ts).\n',
      );
    }
  }

  const targets = settings.quick ? [] : targetsOf(ops, training);
  if (targets.length) {
    const why = targets.some((target) => !target.met)
      ? "\nWhy some targets are missed, and what was tried: README.md, 'Where a target is not met, and why'.\n"
      : '';
    console.log(`## Targets\n\n${targetList(targets)}\n${why}`);
  }
  const remarks = notes([...ops, ...training]);
  if (remarks) console.log(`## Notes\n\n${remarks}\n`);

  const failed = [...ops, ...training].filter((row) => !row.passed);
  if (failed.length) console.log(`FAILED cross-check: ${failed.map((row) => row.name).join('; ')}`);

  const result = {
    date: new Date().toISOString(),
    command: ['npm', 'run', 'bench', '--', ...process.argv.slice(2)],
    adapter: gpu.report,
    backend,
    cpu: { model: cpus()[0]?.model, count: cpus().length },
    node: process.version,
    tfjs: {
      version: '4.22.0',
      backends: [...(tfjs?.available ?? [])],
      wasmThreads: tfjs?.wasmThreads ?? 0,
    },
    settings,
    tolerance: { ops: OP_TOLERANCE, losses: LOSS_TOLERANCE },
    ops,
    training,
    targets,
  };
  mkdirSync(dirname(settings.json), { recursive: true });
  writeFileAtomic(settings.json, [
    new TextEncoder().encode(`${JSON.stringify(result, null, 2)}\n`),
  ]);
  console.log(`results written to ${settings.json}`);
  return failed.length ? 1 : 0;
}

try {
  process.exit(await main());
} catch (error) {
  console.error(error instanceof ShaderganError ? `bench: ${error.message}` : error);
  process.exit(1);
}
