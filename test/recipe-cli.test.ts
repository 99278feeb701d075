// The recipe flags and conditional training through the CLI, on a tiny labelled IDX fixture.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { PNG } from 'pngjs';
import { beforeAll, describe, expect, it } from 'vitest';

import { writeIdx } from '../src/train/idx.ts';

const BIN = join(import.meta.dirname, '..', 'bin', 'shadergan.js');

function shadergan(...args: string[]): { status: number | null; output: string } {
  const result = spawnSync(process.execPath, [BIN, ...args], {
    encoding: 'utf8',
    env: { ...process.env, XDG_RUNTIME_DIR: '/tmp' },
  });
  return { status: result.status, output: result.stdout + result.stderr };
}

let labelled: string;
let unlabelled: string;
let work: string;
beforeAll(() => {
  labelled = mkdtempSync(join(tmpdir(), 'shadergan-recipe-data-'));
  unlabelled = mkdtempSync(join(tmpdir(), 'shadergan-recipe-nolabels-'));
  work = mkdtempSync(join(tmpdir(), 'shadergan-recipe-run-'));
  const count = 40;
  const pixels = Uint8Array.from({ length: count * 784 }, (_, i) => (i * 29) % 256);
  for (const folder of [labelled, unlabelled]) {
    writeIdx(join(folder, 'train-images-idx3-ubyte'), [count, 28, 28], pixels);
  }
  const labels = Uint8Array.from({ length: count }, (_, i) => i % 10);
  writeIdx(join(labelled, 'train-labels-idx1-ubyte'), [count], labels);
});

const small = ['--steps', '2', '--batch', '8', '--width', '4'];

describe('train recipe flags', () => {
  it('lists the presets in train --help', () => {
    const help = shadergan('train', '--help');
    expect(help.status).toBe(0);
    expect(help.output).toMatch(/Presets \(--preset\):\n\s+baseline .*\n\s+radford .*\n\s+full /);
    for (const flag of ['--scale', '--batchnorm', '--g-activation', '--d-slope', '--d-head']) {
      expect(help.output).toContain(flag);
    }
    expect(help.output).toContain('--label-smoothing');
    expect(help.output).toContain('--conditional');
  });

  it('a preset with overrides is what the run records', () => {
    const out = join(work, 'full');
    const run = shadergan(
      'train',
      '--data',
      labelled,
      ...small,
      '--preset',
      'full',
      '--batchnorm',
      'off',
      '--d-slope',
      '0.1',
      '--out',
      out,
    );
    expect(run.output).toContain('Finished at step 2/2');
    const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    expect(config.preset).toBe('full');
    expect(config.model).toMatchObject({
      batchNorm: false,
      generatorActivation: 'leaky',
      discriminatorHead: 'gap',
      discriminatorSlope: 0.1,
      scale: 'tanh',
      classes: 0,
    });
    expect(config.training).toEqual({ augment: ['flip', 'translate'], realTarget: 0.9 });
    // The run's page shows the recipe it was trained with.
    const report = readFileSync(join(out, 'report.html'), 'utf8');
    expect(report).toContain('id="loss-chart"');
    expect(report).toMatch(/training\.realTarget[\s\S]*0\.9/);

    // Resumed at its last step, the run says there is nothing to train.
    const again = shadergan('train', '--resume', out);
    expect(again.status).toBe(0);
    expect(again.output).toContain('already at its last step, 2; nothing to train');
  });

  it('trains a conditional sigmoid model; grids and samples have one row per class', () => {
    const out = join(work, 'conditional');
    const run = shadergan(
      'train',
      '--data',
      labelled,
      ...small,
      '--conditional',
      '--scale',
      'sigmoid',
      '--augment',
      'flip',
      '--out',
      out,
    );
    expect(run.status).toBe(0);
    const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    expect(config.model).toMatchObject({ classes: 10, scale: 'sigmoid' });
    // 8 images of 28 pixels and 2-pixel borders across, 10 rows down.
    const grid = PNG.sync.read(readFileSync(join(out, 'samples', 'latest.png')));
    expect([grid.width, grid.height]).toEqual([8 * 30 + 2, 10 * 30 + 2]);

    const rows = join(work, 'rows.png');
    const byClass = shadergan('sample', '--checkpoint', out, '--out', rows, '--n', '30');
    expect(byClass.output).toContain('Wrote 30 samples, one row per class');
    const one = join(work, 'one.png');
    const single = shadergan(
      'sample',
      '--checkpoint',
      out,
      '--class',
      '3',
      '--out',
      one,
      '--n',
      '4',
    );
    expect(single.output).toContain('Wrote 4 samples of class 3');
    expect(PNG.sync.read(readFileSync(one)).width).toBe(2 * 30 + 2);

    const tooHigh = shadergan('sample', '--checkpoint', out, '--class', '10', '--out', one);
    expect(tooHigh.status).toBe(1);
    expect(tooHigh.output).toContain('--class 10: the model knows classes 0 to 9');
  });

  it('refuses --class for an unconditional model', () => {
    const out = join(work, 'plain');
    expect(shadergan('train', '--data', labelled, ...small, '--out', out).status).toBe(0);
    const sample = shadergan(
      'sample',
      '--checkpoint',
      out,
      '--class',
      '1',
      '--out',
      join(work, 'x.png'),
    );
    expect(sample.status).toBe(1);
    expect(sample.output).toContain('--class needs a conditional model');
  });

  it('explains bad recipe values in one line, before any file is written', () => {
    const out = join(work, 'never');
    const cases: Array<[string[], RegExp]> = [
      [['--augment', 'rotate'], /--augment takes none, flip, translate or flip,translate/],
      [['--batchnorm', 'maybe'], /--batchnorm/],
      [['--label-smoothing', '0.2'], /\(--label-smoothing\) must be in \(0.5, 1\]/],
      [['--model', 'tf-tutorial', '--preset', 'full', '--scale', 'sigmoid'], /drop --scale or use/],
      [['--d-slope', '1'], /slope \(--d-slope\) must be in \[0, 1\)/],
      [['--model', 'tf-tutorial', '--d-head', 'gap'], /tf-tutorial model .* --model dcgan/],
      [['--preset', 'fancy'], /--preset/],
    ];
    for (const [flags, message] of cases) {
      const run = shadergan('train', '--data', labelled, ...small, ...flags, '--out', out);
      expect(run.status, flags.join(' ')).toBe(1);
      expect(run.output, flags.join(' ')).toMatch(message);
      expect(
        run.output
          .trim()
          .split('\n')
          .filter((l) => !l.startsWith('Warning')).length,
      ).toBe(1);
    }
    expect(existsSync(out)).toBe(false);
  });

  it('refuses --conditional when a class below the largest label has no images', () => {
    const gappy = mkdtempSync(join(tmpdir(), 'shadergan-recipe-gappy-'));
    writeIdx(join(gappy, 'train-images-idx3-ubyte'), [3, 28, 28], new Uint8Array(3 * 784));
    writeIdx(join(gappy, 'train-labels-idx1-ubyte'), [3], Uint8Array.of(0, 1, 12));
    const run = shadergan('train', '--data', gappy, ...small, '--conditional');
    expect(run.status).toBe(1);
    expect(run.output).toContain('has labels up to 12, but no image of class 2, 3, 4, 5, 6, ...');
  });

  it('a run that cannot start leaves no run folder behind', () => {
    const out = join(work, 'too-big');
    const run = shadergan('train', '--data', labelled, '--batch', '500', '--out', out);
    expect(run.status).toBe(1);
    expect(run.output).toContain('fewer than one batch of 500');
    expect(existsSync(out)).toBe(false);
  });

  it('refuses --conditional on a data set without labels', () => {
    const run = shadergan('train', '--data', unlabelled, ...small, '--conditional');
    expect(run.status).toBe(1);
    expect(run.output).toContain('--conditional needs class labels');
  });
});
