// `shadergan eval`: domain FID of a GAN checkpoint against the Fashion-MNIST test split, the
// floor a perfect generator would reach, and for conditional models how often the classifier
// agrees with the class a sample was drawn for.
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

import { DEFAULT_CLASSIFIER_PATH } from '../classify/classifier.ts';
import { percent } from '../classify/train.ts';
import { DEFAULT_EVAL_COUNT, evaluateCheckpoint, type EvalResult } from '../eval/evaluate.ts';
import { ShaderganError } from '../errors.ts';
import { getGpu } from '../kernels/gpu.ts';
import { writeFileAtomic } from '../train/atomic-write.ts';
import { DEFAULT_DATA_DIR } from '../train/idx.ts';
import { writeRunReport } from '../train/report.ts';
import { resolveCheckpointPath } from '../train/run.ts';
import { formatHelp, parseFlags, type CommandSpec } from './args.ts';

export const evalSpec = {
  name: 'eval',
  summary:
    'Generate images from a checkpoint and score them: a domain FID on the penultimate\n' +
    "features of 'shadergan classify train's classifier, generated images against the test\n" +
    'split (means and covariances in float64); the floor, training images against test\n' +
    'images, which a perfect generator would match; and, for a conditional model, the share of\n' +
    'samples the classifier puts in the class they were drawn for. In a run folder it writes\n' +
    'eval.json and adds the numbers to report.html. FIDs from different classifier files are\n' +
    'not comparable.',
  flags: {
    checkpoint: {
      type: 'string',
      placeholder: 'FILE',
      help: 'required: a checkpoint file, or a run folder holding checkpoint.safetensors',
    },
    classifier: {
      type: 'string',
      default: DEFAULT_CLASSIFIER_PATH,
      placeholder: 'FILE',
      help: "the feature extractor, written by 'shadergan classify train'",
    },
    data: {
      type: 'string',
      default: DEFAULT_DATA_DIR,
      placeholder: 'DIR',
      help: 'folder with the train-* and t10k-* IDX images and labels',
    },
    count: {
      type: 'int',
      default: DEFAULT_EVAL_COUNT,
      min: 2,
      help: 'images generated, and training images for the floor',
    },
    seed: { type: 'int', default: 0, help: "seed of the noise and of the floor's training images" },
    json: {
      type: 'string',
      placeholder: 'FILE',
      help: 'write the results here (default: eval.json in the run folder, if it is one)',
    },
  },
  examples: [
    'shadergan eval --checkpoint runs/short',
    'shadergan eval --checkpoint runs/cond/checkpoint.safetensors --json cond-eval.json',
  ],
} satisfies CommandSpec;

export async function evaluate(argv: string[]): Promise<number> {
  const parsed = parseFlags(evalSpec, argv);
  if (parsed.helpRequested) {
    console.log(formatHelp(evalSpec));
    return 0;
  }
  const flags = parsed.flags;
  if (!flags.checkpoint) {
    throw new ShaderganError("eval needs --checkpoint FILE (see 'shadergan eval --help')");
  }
  const checkpoint = resolveCheckpointPath(flags.checkpoint);
  if (!existsSync(checkpoint) || !statSync(checkpoint).isFile()) {
    throw new ShaderganError(`no checkpoint at ${checkpoint}`);
  }
  const runFolder = dirname(checkpoint);
  const isRunFolder = existsSync(join(runFolder, 'config.json'));
  const jsonPath = flags.json ?? (isRunFolder ? join(runFolder, 'eval.json') : null);
  if (flags.json !== undefined) checkJsonPath(flags.json);

  const gpu = await getGpu();
  // Absolute paths, so eval.json says which files were compared wherever it is read.
  const result = await evaluateCheckpoint(gpu, {
    checkpoint: resolve(checkpoint),
    classifier: resolve(flags.classifier),
    dataDir: flags.data,
    count: flags.count,
    seed: flags.seed,
    log: (line) => process.stderr.write(`shadergan: ${line}\n`),
  });
  console.log(formatEval(result));
  if (jsonPath !== null) {
    writeFileAtomic(jsonPath, [Buffer.from(`${JSON.stringify(result, null, 2)}\n`)]);
    if (isRunFolder && flags.json === undefined) writeRunReport(runFolder);
    console.log(`Wrote ${jsonPath}`);
  }
  return 0;
}

/** Checked before minutes of evaluation: a .json path that is not a folder. */
function checkJsonPath(path: string): void {
  if (!path.toLowerCase().endsWith('.json')) {
    throw new ShaderganError(`--json must name a .json file, got '${path}'`);
  }
  if (existsSync(path) && statSync(path).isDirectory()) {
    throw new ShaderganError(`--json ${path} is a folder`);
  }
  mkdirSync(dirname(resolve(path)), { recursive: true });
}

export function formatEval(result: EvalResult): string {
  const count = result.count.toLocaleString('en-US');
  const test = result.testCount.toLocaleString('en-US');
  const lines = [
    `Checkpoint ${result.checkpoint} (step ${result.step})`,
    `Classifier ${result.classifier} (` +
      (result.classifierTestAccuracy === null
        ? 'the test split has no labels to measure its accuracy'
        : `test accuracy ${percent(result.classifierTestAccuracy)}`) +
      `, ${result.featureSize} features)`,
    `  domain FID, ${count} generated vs ${test} test images:   ${result.fid.toFixed(2)}`,
    `  floor, ${count} training vs ${test} test images:         ${result.floor.toFixed(2)}`,
  ];
  if (result.classAccuracy !== null && result.perClassAccuracy !== null) {
    lines.push(
      `  class accuracy (classified as the class asked for):  ${percent(result.classAccuracy)}`,
      '  per class: ' +
        result.perClassAccuracy.map((share, label) => `${label}: ${percent(share)}`).join(', '),
    );
  }
  lines.push(`  (${result.seconds.toFixed(0)} s)`);
  return lines.join('\n');
}
