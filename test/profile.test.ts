// The per-kernel time table: grouping, sorting and per-step sums from made-up kernel times, the
// text it renders, and the profiler on the real device.
import { describe, expect, it } from 'vitest';

import { Gpu } from '../src/kernels/gpu.ts';
import { kernel } from '../src/kernels/kernel.ts';
import {
  formatKernelProfile,
  formatProfile,
  missingTimestampsMessage,
  opLabel,
  OpTimes,
  processProfile,
  resetKernelProfile,
  shorten,
  summarizeProfile,
  type KernelTime,
} from '../src/kernels/profiler.ts';

const MATMUL = 'matmul.wgsl:matmul';
const IM2COL = 'conv.wgsl:im2col';
const ADAM = 'adam.wgsl:adam_update';
const LEAKY = 'elementwise.wgsl:leaky_relu';

/** Two identical steps: per step, matmul A 2 x 3 ms, matmul B 1 x 1 ms, im2col 2 ms, ... */
function twoSteps(): KernelTime[] {
  const times: KernelTime[] = [];
  for (let step = 1; step <= 2; step += 1) {
    times.push(
      {
        kernel: MATMUL,
        label: 'matmul conv forward layer1 [64x512]·[512x3136] share 1/2',
        milliseconds: 3,
      },
      {
        kernel: MATMUL,
        label: 'matmul conv forward layer1 [64x512]·[512x3136] share 2/2',
        milliseconds: 3,
      },
      { kernel: MATMUL, label: 'matmul linear [64x100]·[100x6272]', milliseconds: 1 },
      { kernel: IM2COL, label: 'im2col layer1 [64,1,28,28]', milliseconds: 2 },
      { kernel: ADAM, label: `adam step ${step} [627200]`, milliseconds: 0.5 },
      { kernel: ADAM, label: `adam step ${step} [64]`, milliseconds: 0.25 },
      { kernel: LEAKY, label: '[802816]', milliseconds: 0.25 },
    );
  }
  return times;
}

function totalsOf(times: KernelTime[]): OpTimes {
  const totals = new OpTimes();
  for (const time of times) totals.add(time);
  return totals;
}

describe('opLabel', () => {
  it.each([
    // [kernel, dispatch label, row label]
    [MATMUL, 'matmul linear [64x100]·[100x6272] share 3/4', 'matmul linear [64x100]·[100x6272]'],
    [ADAM, 'adam step 17 [627200]', 'adam_update adam [627200]'],
    [LEAKY, '[802816]', 'leaky_relu [802816]'],
    [IM2COL, 'im2col conv2d [64,1,28,28]', 'im2col conv2d [64,1,28,28]'],
    [
      'random.wgsl:normal_fill',
      'normal random [6400] seed 1315200371 offset 12800',
      'normal_fill normal random [6400]',
    ],
  ])('%s: %s', (kernelName, label, expected) => {
    expect(opLabel({ kernel: kernelName, label })).toBe(expected);
  });
});

describe('summarizeProfile', () => {
  it('groups calls of one op, sorts by time and divides by the steps', () => {
    const summary = summarizeProfile(totalsOf(twoSteps()).ops(), 2);

    expect(summary.ops.map((row) => [row.label, row.calls, row.milliseconds])).toEqual([
      ['matmul conv forward layer1 [64x512]·[512x3136]', 2, 6],
      ['im2col layer1 [64,1,28,28]', 1, 2],
      ['matmul linear [64x100]·[100x6272]', 1, 1],
      ['adam_update adam [627200]', 1, 0.5],
      ['adam_update adam [64]', 1, 0.25],
      ['leaky_relu [802816]', 1, 0.25],
    ]);
    expect(summary.milliseconds).toBe(10);
    expect(summary.dispatches).toBe(7);
    expect(summary.ops[0].share).toBeCloseTo(0.6, 12);
  });

  it('has shares that add up to 100% and a cumulative column that ends there', () => {
    const summary = summarizeProfile(totalsOf(twoSteps()).ops(), 2);
    for (const rows of [summary.ops, summary.kernels]) {
      const shares = rows.reduce((sum, row) => sum + row.share, 0);
      expect(shares).toBeCloseTo(1, 12);
      expect(rows[rows.length - 1].cumulative).toBeCloseTo(1, 12);
      for (let index = 1; index < rows.length; index += 1) {
        expect(rows[index].milliseconds).toBeLessThanOrEqual(rows[index - 1].milliseconds);
        expect(rows[index].cumulative).toBeGreaterThan(rows[index - 1].cumulative);
      }
    }
  });

  it('sums per kernel entry point', () => {
    const summary = summarizeProfile(totalsOf(twoSteps()).ops(), 2);
    expect(summary.kernels.map((row) => [row.label, row.calls, row.milliseconds])).toEqual([
      [MATMUL, 3, 7],
      [IM2COL, 1, 2],
      [ADAM, 2, 0.75],
      [LEAKY, 1, 0.25],
    ]);
  });

  it('gives totals without steps, and averages calls that not every step makes', () => {
    const times = twoSteps();
    times.push({ kernel: IM2COL, label: 'im2col layer1 [64,1,28,28]', milliseconds: 2 });
    const totals = summarizeProfile(totalsOf(times).ops());
    expect(totals.steps).toBeNull();
    expect(totals.milliseconds).toBe(22);
    const perStep = summarizeProfile(totalsOf(times).ops(), 2);
    expect(perStep.ops.find((row) => row.label.startsWith('im2col'))?.calls).toBe(1.5);
  });

  it('rejects a step count that is not a positive integer', () => {
    expect(() => summarizeProfile([], 0)).toThrow(/positive integer/);
    expect(() => summarizeProfile([], 1.5)).toThrow(/positive integer/);
  });
});

describe('formatProfile', () => {
  const summary = summarizeProfile(totalsOf(twoSteps()).ops(), 2);

  it('prints op rows slowest first, the kernel summary and the totals', () => {
    const text = formatProfile(summary, {
      title: 'Test profile',
      wallMilliseconds: 12.5,
      adapter: 'llvmpipe (vulkan backend)',
    });
    const lines = text.trimEnd().split('\n');
    expect(lines[0]).toBe('Test profile');
    expect(text).toContain('ms/step');
    expect(text).toContain('calls/step');

    const matmulRow = lines.findIndex((line) =>
      line.endsWith('matmul conv forward layer1 [64x512]·[512x3136]'),
    );
    const im2colRow = lines.findIndex((line) => line.endsWith('im2col layer1 [64,1,28,28]'));
    expect(matmulRow).toBeGreaterThan(0);
    expect(im2colRow).toBeGreaterThan(matmulRow);
    expect(lines[matmulRow]).toMatch(/^\s+6\.000\s+60\.0%\s+60\.0%\s+2\s+matmul/);
    expect(lines[im2colRow]).toMatch(/^\s+2\.000\s+20\.0%\s+80\.0%\s+1\s+im2col/);

    const kernelRow = lines.find((line) => line.endsWith(MATMUL));
    expect(kernelRow).toMatch(/^\s+7\.000\s+70\.0%\s+70\.0%\s+3\s+matmul\.wgsl:matmul$/);
    expect(text).toContain('GPU time 10.000 ms/step from timestamp queries (7 dispatches/step)');
    expect(text).toContain('wall clock 12.500 ms/step');
    expect(lines[lines.length - 1]).toBe('adapter: llvmpipe (vulkan backend)');
  });

  it('sums the ops past maxOps into one line', () => {
    const text = formatProfile(summary, { maxOps: 2 });
    expect(text).toMatch(/^\s+2\.000\s+20\.0%\s+100\.0%\s+4\s+\(4 more ops\)$/m);
    expect(text).not.toContain('leaky_relu [802816]');
  });

  it('shortens long labels to the width', () => {
    const long =
      'matmul conv gradWeight convTranspose2d: input [64,64,14,14], weight [64,1,4,4], bias ' +
      'none, stride 2, padding 1, outputPadding 0 [64,1,28,28]->[64,64,14,14] k4x4 s2,2 p1,1 ' +
      '[16x12544]·[12544x64]';
    const ops = [{ kernel: MATMUL, label: long, calls: 1, milliseconds: 1 }];
    const text = formatProfile(summarizeProfile(ops, 1), { width: 100 });
    const row = text.split('\n').find((line) => line.includes('gradWeight'));
    expect(row?.length).toBeLessThanOrEqual(100);
    expect(row).toContain('matmul conv gradWeight');
    expect(row).toContain('[16x12544]·[12544x64]');
    expect(row).toContain('…');
  });

  it('says per process totals without steps, and when nothing was timed', () => {
    const totals = formatProfile(summarizeProfile(totalsOf(twoSteps()).ops()));
    expect(totals).not.toContain('/step');
    expect(totals).toContain('GPU time 20.000 ms');
    expect(formatProfile(summarizeProfile([]))).toContain('No GPU time was recorded.');
  });
});

describe('shorten', () => {
  const label = 'one two three four five six seven eight nine ten eleven twelve';

  it('keeps whole words from both ends', () => {
    for (const width of [20, 30, 45]) {
      const short = shorten(label, width);
      expect(short.length).toBeLessThanOrEqual(width);
      expect(short.length).toBeGreaterThan(width - 8);
      expect(short).toMatch(/^one\b.* … .*\btwelve$/);
      const words = short.split(' ').filter((word) => word !== '…');
      for (const word of words) expect(label.split(' ')).toContain(word);
    }
  });

  it('leaves short labels alone and cuts a single long word by characters', () => {
    expect(shorten('short', 30)).toBe('short');
    const cut = shorten('x'.repeat(50), 20);
    expect(cut).toHaveLength(20);
    expect(cut).toContain('…');
  });
});

describe('the process-wide profile (SHADERGAN_PROFILE)', () => {
  it('formats what was added and starts over on reset', () => {
    resetKernelProfile();
    for (const time of twoSteps()) processProfile.add(time);
    const text = formatKernelProfile({ steps: 2 });
    expect(text).toContain('matmul conv forward layer1');
    expect(text).toContain('ms/step');
    resetKernelProfile();
    expect(formatKernelProfile()).toContain('No GPU time was recorded.');
  });

  it('tells how to get timestamp queries on OpenGL', () => {
    const message = missingTimestampsMessage('opengl');
    expect(message).toContain('timestamp queries');
    expect(message).toContain('SHADERGAN_BACKEND=vulkan');
  });
});

describe('Profiler on the device', () => {
  it('times each dispatch under its kernel and label, or says it cannot', async () => {
    const gpu = await Gpu.open({ backend: 'vulkan' });
    const times: KernelTime[] = [];
    const enabled = gpu.enableProfiling((time) => times.push(time));
    expect(enabled).toBe(gpu.hasTimestamps);

    const a = gpu.pool.acquire(4096, 'a');
    const out = gpu.pool.acquire(4096, 'out');
    for (let call = 0; call < 3; call += 1) {
      kernel(gpu, 'elementwise.wgsl', 'add').dispatch({
        buffers: { a, b: a, out },
        params: { count: 1024, alpha: 0, beta: 0 },
        workgroups: [16],
        label: 'add [1024]',
      });
    }
    await gpu.sync();
    if (enabled) {
      expect(times.map((time) => [time.kernel, time.label])).toEqual(
        Array(3).fill(['elementwise.wgsl:add', 'add [1024]']),
      );
      for (const time of times) expect(time.milliseconds).toBeGreaterThanOrEqual(0);
    }
    gpu.destroy();
  });

  it('reports that the OpenGL backend has no timestamp queries', async () => {
    const gpu = await Gpu.open({ backend: 'opengl' });
    expect(gpu.hasTimestamps).toBe(false);
    expect(gpu.enableProfiling(() => undefined)).toBe(false);
    expect(gpu.profiler).toBeNull();
    gpu.destroy();
  });
});
