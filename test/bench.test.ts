// The benchmark's own machinery: layout conversions, the cross-check, the filter gradient it
// gives tfjs-wasm, and `npm run bench -- --quick` end to end (which is how CI runs the bench).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { beforeAll, describe, expect, it } from 'vitest';

import {
  HWIO_TO_OIHW,
  NCHW_TO_NHWC,
  NHWC_TO_NCHW,
  OIHW_TO_HWIO,
  permute,
  relativeDifference,
} from '../bench/layouts.ts';
import { benchOp, type Settings } from '../bench/measure.ts';
import type { OpCase, Runner } from '../bench/op-cases.ts';
import { summarise } from '../bench/report.ts';
import { wasmConvOps } from '../bench/tfjs-dcgan.ts';
import { loadTensorflow, type TfEngine, type TfTensor } from '../bench/tfjs.ts';
import { getGpu } from '../src/kernels/gpu.ts';
import { SeededRandom } from '../src/train/random.ts';

const ROOT = join(import.meta.dirname, '..');

function randomArray(length: number, seed: number): Float32Array {
  const random = new SeededRandom(seed);
  return Float32Array.from({ length }, () => random.normal());
}

describe('bench layouts', () => {
  it('moves an NCHW element to where NHWC keeps it, and back', () => {
    const shape = [2, 3, 4, 5];
    const data = Float32Array.from({ length: 120 }, (_, i) => i);
    const nhwc = permute(data, shape, NCHW_TO_NHWC);
    expect(nhwc.shape).toEqual([2, 4, 5, 3]);
    // element (n=1, c=2, h=3, w=4) of NCHW
    const value = data[((1 * 3 + 2) * 4 + 3) * 5 + 4];
    expect(nhwc.data[((1 * 4 + 3) * 5 + 4) * 3 + 2]).toBe(value);
    expect(Array.from(permute(nhwc.data, nhwc.shape, NHWC_TO_NCHW).data)).toEqual(Array.from(data));
  });

  it('turns [out, in, kh, kw] weights into [kh, kw, in, out] filters and back', () => {
    const shape = [4, 3, 2, 5];
    const data = Float32Array.from({ length: 120 }, (_, i) => i);
    const hwio = permute(data, shape, OIHW_TO_HWIO);
    expect(hwio.shape).toEqual([2, 5, 3, 4]);
    // weight (o=3, i=1, y=1, x=2)
    expect(hwio.data[((1 * 5 + 2) * 3 + 1) * 4 + 3]).toBe(data[((3 * 3 + 1) * 2 + 1) * 5 + 2]);
    expect(Array.from(permute(hwio.data, hwio.shape, HWIO_TO_OIHW).data)).toEqual(Array.from(data));
  });

  it('measures differences against the largest magnitude and refuses non-finite results', () => {
    const a = Float32Array.from([10, -20, 0.001]);
    expect(relativeDifference(a, a)).toBe(0);
    expect(relativeDifference(a, Float32Array.from([10, -20.2, 0.001]))).toBeCloseTo(0.2 / 20.2, 6);
    expect(relativeDifference(a, Float32Array.from([10, NaN, 0]))).toBe(Infinity);
    expect(relativeDifference(a, Float32Array.from([10, -20]))).toBe(Infinity);
  });

  it('summarises samples by median, minimum and maximum', () => {
    expect(summarise([5, 1, 3])).toEqual({ median: 3, min: 1, max: 5, count: 3 });
    expect(summarise([4, 1, 3, 2]).median).toBe(2.5);
  });
});

describe('bench engines', () => {
  let tfjs: TfEngine;
  beforeAll(async () => {
    tfjs = await loadTensorflow('default', ['cpu', 'wasm']);
  });

  // tfjs-wasm cannot train without it, and its numbers go into the wasm training column.
  it.each([
    { name: 'k4 s2 p1, 16 -> 8', size: 16, kernel: 4, pad: 1 },
    { name: 'k5 s2 p2, 14 -> 7', size: 14, kernel: 5, pad: 2 },
  ])(
    'gives tfjs-wasm conv filter gradients equal to tfjs-cpu ($name)',
    async ({ size, kernel, pad }) => {
      const { tf } = tfjs;
      await tf.setBackend('cpu');
      const x = tf.tensor4d(randomArray(2 * size * size * 3, 1), [2, size, size, 3]);
      const filter = tf.tensor4d(randomArray(kernel * kernel * 3 * 5, 2), [kernel, kernel, 3, 5]);
      const outSize = Math.floor((size + 2 * pad - kernel) / 2) + 1;
      const dy = tf.tensor4d(randomArray(2 * outSize * outSize * 5, 3), [2, outSize, outSize, 5]);
      const ops = wasmConvOps(tf);

      type Tensor4D = typeof x;
      const loss =
        (conv: typeof ops.conv2d) =>
        (...inputs: TfTensor[]) =>
          tf.sum(tf.mul(conv(inputs[0] as Tensor4D, inputs[1] as Tensor4D, 2, pad), dy));
      const transposedLoss =
        (conv: typeof ops.conv2dTranspose) =>
        (...inputs: TfTensor[]) =>
          tf.sum(
            tf.mul(
              conv(inputs[0] as Tensor4D, inputs[1] as Tensor4D, [2, size, size, 3], 2, pad),
              x,
            ),
          );
      const pairs = [
        [
          tf.grads(loss((a, b, s, p) => tf.conv2d(a, b, s, p)))([x, filter]),
          tf.grads(loss(ops.conv2d))([x, filter]),
        ],
        [
          tf.grads(transposedLoss((a, b, shape, s, p) => tf.conv2dTranspose(a, b, shape, s, p)))([
            dy,
            filter,
          ]),
          tf.grads(transposedLoss(ops.conv2dTranspose))([dy, filter]),
        ],
      ];
      for (const [native, supplied] of pairs) {
        for (const index of [0, 1]) {
          const expected = await native[index].data<'float32'>();
          const actual = await supplied[index].data<'float32'>();
          expect(relativeDifference(actual, expected)).toBeLessThan(1e-5);
        }
      }
    },
  );

  it('marks a case FAILED when the peer disagrees, and "not supported" when it lacks a kernel', async () => {
    const gpu = await getGpu();
    const runner = (values: number[]): Runner => ({
      run: () => {},
      finish: async () => {},
      outputs: async () => [Float32Array.from(values)],
      dispose: () => {},
    });
    const settings: Settings = {
      quick: true,
      samples: 2,
      warmup: 0,
      only: undefined,
      engines: ['shadergan', 'tfjs-wasm'],
      models: [],
      backend: 'auto',
      json: '',
    };
    const fakeCase = (theirs: number[], kernels: string[]): OpCase => ({
      name: 'fake',
      group: 'conv2d',
      flops: 100,
      shadergan: () => runner([1, 2, 3]),
      tfjsKernels: kernels,
      tfjs: () => runner(theirs),
    });

    const agreeing = await benchOp(gpu, tfjs, settings, fakeCase([1, 2, 3.000001], []));
    expect(agreeing.passed).toBe(true);
    const wrong = await benchOp(gpu, tfjs, settings, fakeCase([1, 2, 3.1], []));
    expect(wrong.passed).toBe(false);
    expect(wrong.cells['tfjs-wasm']).toMatchObject({ status: 'ok' });
    const missing = await benchOp(gpu, tfjs, settings, fakeCase([9], ['Conv2DBackpropFilter']));
    expect(missing.cells['tfjs-wasm']).toMatchObject({ status: 'not supported' });
    expect(missing.passed).toBe(true);
  });
});

function bench(args: string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, [join(ROOT, 'bin', 'run-ts.js'), 'bench/bench.ts', ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, XDG_RUNTIME_DIR: '/tmp', ...env },
  });
}

describe('npm run bench refuses bad settings before any work', () => {
  it.each([
    { args: ['--only', 'no such case'], message: /--only 'no such case' matches no case/ },
    { args: ['--json', tmpdir()], message: /--json: .* is a folder/ },
    { args: ['--engines', 'tfjs-gpu'], message: /unknown engine 'tfjs-gpu'/ },
    { args: ['--models', 'huge'], message: /unknown model 'huge'/ },
    { args: ['--frobnicate'], message: /see 'npm run bench -- --help'/ },
  ])('$args', ({ args, message }) => {
    const result = bench(['--quick', ...args]);
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(message);
    expect(result.stderr).not.toMatch(/\n\s+at /);
    expect(result.stdout).not.toContain('| case |');
  });

  it('refuses to time a profiled engine', () => {
    const result = bench(['--quick'], { SHADERGAN_PROFILE: '1' });
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/unset SHADERGAN_PROFILE first/);
  });
});

describe('npm run bench -- --quick', () => {
  it('runs every case at tiny sizes with all results agreeing, and writes the JSON', () => {
    const json = join(mkdtempSync(join(tmpdir(), 'shadergan-bench-')), 'results.json');
    const result = spawnSync(
      process.execPath,
      [join(ROOT, 'bin', 'run-ts.js'), 'bench/bench.ts', '--quick', '--json', json],
      { cwd: ROOT, encoding: 'utf8', env: { ...process.env, XDG_RUNTIME_DIR: '/tmp' } },
    );
    expect(result.stderr).not.toMatch(/Error|FAILED/);
    expect(result.status).toBe(0);
    expect(result.stdout).toContain('| case | shadergan ms');
    expect(result.stdout).toContain('| training step | shadergan img/s');

    interface Row {
      name: string;
      passed: boolean;
      cells: Record<string, { status: string }>;
    }
    const saved = JSON.parse(readFileSync(json, 'utf8')) as { ops: Row[]; training: Row[] };
    expect(saved.ops).toHaveLength(31);
    expect(saved.training).toHaveLength(2);
    for (const row of [...saved.ops, ...saved.training]) {
      expect(row.passed, row.name).toBe(true);
      expect(row.cells.shadergan.status, row.name).toBe('ok');
      expect(row.cells['tfjs-webgpu'].status, row.name).toBe('ok');
    }
    const filterGradients = saved.ops.filter((row) => row.name.endsWith('filter grad'));
    expect(filterGradients).toHaveLength(9);
    for (const row of filterGradients) expect(row.cells['tfjs-wasm'].status).toBe('not supported');
    for (const row of saved.training) {
      expect(row.cells['tfjs-wasm'].status).toBe('ok');
      expect(row.cells['tfjs-cpu'].status).toBe('ok');
    }
  }, 600_000);
});
