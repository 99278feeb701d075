// The CLI end to end, as a user runs it, on a tiny IDX fixture made here.
import { spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { PNG } from 'pngjs';
import { beforeAll, describe, expect, it } from 'vitest';

import { writeIdx } from '../src/train/idx.ts';

const BIN = join(import.meta.dirname, '..', 'bin', 'shadergan.js');

interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

function shadergan(...args: string[]): CliResult {
  return shaderganWith({}, ...args);
}

/** Runs the CLI in `cwd` with `env` added to this process's environment. */
function shaderganWith(
  options: { cwd?: string; env?: Record<string, string> },
  ...args: string[]
): CliResult {
  const result = spawnSync(process.execPath, [BIN, ...args], {
    encoding: 'utf8',
    cwd: options.cwd,
    env: { ...process.env, XDG_RUNTIME_DIR: '/tmp', ...options.env },
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

let data: string;
let work: string;
beforeAll(() => {
  data = mkdtempSync(join(tmpdir(), 'shadergan-cli-data-'));
  work = mkdtempSync(join(tmpdir(), 'shadergan-cli-run-'));
  const count = 32;
  const pixels = new Uint8Array(count * 28 * 28);
  for (let index = 0; index < pixels.length; index += 1) pixels[index] = (index * 37) % 256;
  writeIdx(join(data, 'train-images-idx3-ubyte.gz'), [count, 28, 28], pixels, { gzip: true });
  writeIdx(join(data, 'train-labels-idx1-ubyte'), [count], new Uint8Array(count));
});

describe('shadergan CLI', () => {
  it('trains 2 steps, then samples a grid from the checkpoint', () => {
    const out = join(work, 'run');
    const train = shadergan(
      'train',
      '--data',
      data,
      '--steps',
      '2',
      '--batch',
      '8',
      '--width',
      '4',
      '--out',
      out,
    );
    expect(train.stderr + train.stdout).toContain('Finished at step 2/2');
    expect(train.status).toBe(0);
    expect(existsSync(join(out, 'checkpoint.safetensors'))).toBe(true);
    expect(existsSync(join(out, 'samples', 'step-000002.png'))).toBe(true);

    const grid = join(work, 'grid.png');
    const sample = shadergan('sample', '--checkpoint', out, '--out', grid, '--n', '10');
    expect(sample.status).toBe(0);
    const png = PNG.sync.read(readFileSync(grid));
    // 10 images -> 4 columns x 3 rows of 28 pixels with 2-pixel borders.
    expect([png.width, png.height]).toEqual([4 * 28 + 5 * 2, 3 * 28 + 4 * 2]);
  });

  it('resumes with the data folder and step count the run was started with', () => {
    const out = join(work, 'resumable');
    const first = shadergan(
      'train',
      '--data',
      data,
      '--steps',
      '3',
      '--batch',
      '8',
      '--width',
      '4',
      '--out',
      out,
    );
    expect(first.status).toBe(0);
    // Continue to a higher step count, giving neither --data nor the model flags again.
    const more = shadergan('train', '--resume', out, '--steps', '5');
    expect(more.stderr + more.stdout).toContain('Finished at step 5/5');
    const again = shadergan('train', '--resume', join(out, 'checkpoint.safetensors'));
    expect(again.status).toBe(0);
    expect(again.stdout).toContain('already at its last step, 5; nothing to train');
    const steps = readFileSync(join(out, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line).step);
    expect(steps).toEqual([1, 2, 3, 4, 5]);

    // A metrics line cut short by a crash is dropped on resume, not fatal.
    writeFileSync(join(out, 'metrics.jsonl'), '{"step":6,"lo', { flag: 'a' });
    const afterCrash = shadergan('train', '--resume', out, '--steps', '6');
    expect(afterCrash.status).toBe(0);

    const fewer = shadergan('train', '--resume', out, '--steps', '2');
    expect(fewer.status).toBe(1);
    expect(fewer.stderr).toContain('already at step 6');
  });

  it('refuses to start a new run over an existing one, or beside a live one', () => {
    const out = join(work, 'taken');
    const args = ['train', '--data', data, '--steps', '1', '--batch', '8', '--width', '4'];
    expect(shadergan(...args, '--out', out).status).toBe(0);
    const again = shadergan(...args, '--out', out);
    expect(again.status).toBe(1);
    expect(again.stderr).toContain('--resume');

    // Resuming one run must not write into another run's folder either.
    const other = join(work, 'other');
    expect(shadergan(...args, '--out', other).status).toBe(0);
    const crossed = shadergan('train', '--resume', other, '--steps', '2', '--out', out);
    expect(crossed.status).toBe(1);
    expect(crossed.stderr).toContain('already holds a training run');

    const busy = join(work, 'busy');
    mkdirSync(busy);
    writeFileSync(join(busy, '.lock'), String(process.pid));
    const blocked = shadergan(...args, '--out', busy);
    expect(blocked.status).toBe(1);
    expect(blocked.stderr).toContain(`pid ${process.pid}`);
  });

  it('rejects impossible optimizer settings before starting', () => {
    const result = shadergan('train', '--data', data, '--lr', '-1', '--out', join(work, 'lr'));
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('learning rate');
    expect(existsSync(join(work, 'lr'))).toBe(false);
  });

  it('explains a missing data directory and names the set-up command', () => {
    const result = shadergan('train', '--data', join(work, 'nowhere'), '--steps', '1');
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('npm run setup');
    expect(result.stderr).not.toContain('    at ');
  });

  it('rejects a truncated IDX file', () => {
    const broken = mkdtempSync(join(tmpdir(), 'shadergan-cli-broken-'));
    const full = readFileSync(join(data, 'train-images-idx3-ubyte.gz'));
    writeFileSync(join(broken, 'train-images-idx3-ubyte'), Buffer.from([0, 0, 8, 3, 0, 0, 0, 9]));
    expect(full.length).toBeGreaterThan(8);
    const result = shadergan('train', '--data', broken, '--steps', '1', '--out', join(work, 'x'));
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/train-images-idx3-ubyte/);
    expect(result.stderr).not.toContain('    at ');
  });

  it('rejects a wrongly-magicked IDX file', () => {
    const broken = mkdtempSync(join(tmpdir(), 'shadergan-cli-magic-'));
    writeFileSync(join(broken, 'train-images-idx3-ubyte'), Buffer.from('PK\u0003\u0004 not idx'));
    const result = shadergan('train', '--data', broken, '--steps', '1', '--out', join(work, 'y'));
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/magic|not an IDX/i);
  });

  it('rejects a corrupt checkpoint', () => {
    const path = join(work, 'corrupt.safetensors');
    writeFileSync(path, Buffer.alloc(100, 7));
    const result = shadergan('sample', '--checkpoint', path, '--out', join(work, 'z.png'));
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('corrupt.safetensors');
    expect(existsSync(join(work, 'z.png'))).toBe(false);
  });

  it('writes sample grids only to .png files', () => {
    const result = shadergan('sample', '--checkpoint', join(work, 'run'), '--out', 'x.safetensors');
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('.png');
  });

  it('reports file-system errors in one line', () => {
    const file = join(work, 'plain-file');
    writeFileSync(file, 'not a folder');
    const out = join(file, 'run');
    const result = shadergan('train', '--data', data, '--steps', '1', '--batch', '8', '--out', out);
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/ENOTDIR|not a folder/);
    expect(result.stderr).not.toContain('    at ');
  });

  it('rejects unknown flags and suggests the closest', () => {
    const result = shadergan('train', '--step', '3');
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('--step');
    expect(result.stderr).toContain('--steps');
  });

  it('prints help for every command', () => {
    for (const command of ['train', 'sample', 'info']) {
      const result = shadergan(command, '--help');
      expect(result.status).toBe(0);
      expect(result.stdout).toContain(`shadergan ${command}`);
    }
    expect(shadergan('--help').stdout).toContain('Commands:');
  });

  it('profiles training steps into a per-kernel table without a run folder', () => {
    const cwd = mkdtempSync(join(tmpdir(), 'shadergan-cli-profile-'));
    const small = ['--data', data, '--batch', '8', '--width', '4'];
    // Unset, SHADERGAN_BACKEND is auto, which must pick a backend with timestamp queries.
    const env = { SHADERGAN_BACKEND: 'auto' };
    const result = shaderganWith(
      { cwd, env },
      'train',
      '--profile',
      '--profile-steps',
      '2',
      ...small,
    );
    expect(result.stderr).not.toContain('    at ');
    expect(result.status).toBe(0);
    const row = (name: string): RegExp =>
      new RegExp(`^\\s+\\d+\\.\\d{3}\\s+\\d+\\.\\d%\\s+\\d+\\.\\d%\\s+[\\d.]+\\s+${name} `, 'm');
    expect(result.stdout).toMatch(row('matmul'));
    expect(result.stdout).toMatch(row('im2col'));
    expect(result.stdout).toContain('mean of 2 steps after 1 warm-up step');
    expect(result.stdout).toMatch(/matmul\.wgsl:matmul$/m);
    expect(result.stdout).toMatch(/GPU time [\d.]+ ms\/step .*; wall clock [\d.]+ ms\/step/);
    expect(result.stdout).toMatch(/^adapter: .*\(vulkan backend\)$/m);
    expect(readdirSync(cwd)).toEqual([]);
  });

  it('profiles without timestamp queries: says how to get them, still gives the wall clock', () => {
    const cwd = mkdtempSync(join(tmpdir(), 'shadergan-cli-profile-gl-'));
    const env = { SHADERGAN_BACKEND: 'opengl' };
    const args = [
      '--profile',
      '--profile-steps',
      '1',
      '--data',
      data,
      '--batch',
      '8',
      '--width',
      '4',
    ];
    const result = shaderganWith({ cwd, env }, 'train', ...args);
    expect(result.status).toBe(0);
    expect(result.stderr).toMatch(
      /^shadergan: note: per-kernel GPU times need timestamp queries.*SHADERGAN_BACKEND=vulkan/m,
    );
    expect(result.stdout).toMatch(/wall clock [\d.]+ ms\/step/);
    expect(result.stdout).toContain('(opengl backend)');
    expect(readdirSync(cwd)).toEqual([]);
  });

  it('rejects flags that make no sense with --profile, in one line', () => {
    const cwd = mkdtempSync(join(tmpdir(), 'shadergan-cli-profile-flags-'));
    const resumed = shaderganWith({ cwd }, 'train', '--profile', '--resume', join(work, 'run'));
    expect(resumed.status).toBe(1);
    expect(resumed.stderr.trim().split('\n')).toHaveLength(1);
    expect(resumed.stderr).toContain('--resume');
    const out = shaderganWith({ cwd }, 'train', '--profile', '--out', 'somewhere', '--steps', '3');
    expect(out.status).toBe(1);
    expect(out.stderr).toContain('--out, --steps');
    const alone = shaderganWith({ cwd }, 'train', '--profile-steps', '3');
    expect(alone.status).toBe(1);
    expect(alone.stderr).toContain('--profile');
    expect(readdirSync(cwd)).toEqual([]);
    expect(shadergan('train', '--help').stdout).toContain('--profile-steps N');
  });

  it('prints the kernel time table at exit with SHADERGAN_PROFILE=1', () => {
    const env = { SHADERGAN_PROFILE: '1', SHADERGAN_BACKEND: 'auto' };
    const out = join(work, 'profiled');
    const args = ['--data', data, '--steps', '1', '--batch', '8', '--width', '4', '--out', out];
    const result = shaderganWith({ env }, 'train', ...args);
    expect(result.status).toBe(0);
    expect(result.stderr).toContain('GPU time by op (SHADERGAN_PROFILE)');
    expect(result.stderr).toMatch(/matmul\.wgsl:matmul$/m);
    expect(result.stderr).toMatch(/^adapter: .*\(vulkan backend\)$/m);
  });

  it('reports the adapter', () => {
    const result = shadergan('info');
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/adapter:/);
    expect(result.stdout).toMatch(/maxStorageBufferBindingSize/);
  });
});
