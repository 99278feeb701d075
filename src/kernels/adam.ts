// Wrapper for shaders/adam.wgsl: one dispatch per parameter tensor per step.
import { ShaderganError } from '../errors.ts';
import type { Gpu, PooledBuffer } from './gpu.ts';
import { grid1d, kernel } from './kernel.ts';

const FILE = 'adam.wgsl';
const WORKGROUP_SIZE = 64;

export interface AdamBuffers {
  param: PooledBuffer;
  grad: PooledBuffer;
  /** First moment (exp_avg), updated in place. */
  m: PooledBuffer;
  /** Second moment (exp_avg_sq), updated in place. */
  v: PooledBuffer;
}

export interface AdamStepSettings {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  /** 1 for the first update: the step count after incrementing it, as in PyTorch. */
  step: number;
  /** L2 penalty added to the gradient (torch.optim.Adam's weight_decay); 0 by default. */
  weightDecay?: number;
}

/**
 * The settings buffer of each device and what it holds now. An optimizer updates all its
 * parameters with the same settings, so the buffer is written once per step, not per tensor.
 */
const settingsBuffers = new WeakMap<Gpu, { buffer: PooledBuffer; contents: string }>();

function settingsBuffer(gpu: Gpu, settings: AdamStepSettings): PooledBuffer {
  const { lr, beta1, beta2, eps, step, weightDecay = 0 } = settings;
  // Double precision here, as PyTorch computes these on the CPU from Python floats.
  const values = Float32Array.of(
    beta1,
    1 - beta1,
    beta2,
    1 - beta2,
    eps,
    weightDecay,
    lr / (1 - beta1 ** step),
    Math.sqrt(1 - beta2 ** step),
  );
  const contents = values.join(',');

  let held = settingsBuffers.get(gpu);
  if (!held) {
    held = { buffer: gpu.pool.acquire(values.byteLength, 'adam settings'), contents: '' };
    settingsBuffers.set(gpu, held);
  }
  // gpu.write submits the updates already recorded first, so they still see the old settings.
  if (held.contents !== contents) {
    gpu.write(held.buffer, values);
    held.contents = contents;
  }
  return held.buffer;
}

function checkSettings(buffers: AdamBuffers, count: number, settings: AdamStepSettings): void {
  const { lr, beta1, beta2, eps, step, weightDecay = 0 } = settings;
  const problems: string[] = [];
  if (!Number.isInteger(step) || step < 1) problems.push(`step must be 1 or more, got ${step}`);
  if (!(lr >= 0 && Number.isFinite(lr))) problems.push(`lr must be >= 0, got ${lr}`);
  if (!(beta1 >= 0 && beta1 < 1)) problems.push(`beta1 must be in [0, 1), got ${beta1}`);
  if (!(beta2 >= 0 && beta2 < 1)) problems.push(`beta2 must be in [0, 1), got ${beta2}`);
  if (!(eps > 0 && Number.isFinite(eps))) problems.push(`eps must be > 0, got ${eps}`);
  if (!(weightDecay >= 0 && Number.isFinite(weightDecay))) {
    problems.push(`weightDecay must be >= 0, got ${weightDecay}`);
  }
  for (const [name, buffer] of Object.entries(buffers)) {
    if (buffer.size < count * 4) problems.push(`${name} holds fewer than ${count} values`);
  }
  const ids = new Set(Object.values(buffers).map((buffer) => buffer.id));
  if (ids.size !== 4) problems.push('param, grad, m and v must be four different buffers');
  if (problems.length > 0) throw new ShaderganError(`adamUpdate: ${problems.join('; ')}`);
}

/**
 * One torch.optim.Adam step over `count` values, in place on param, m and v.
 *
 * Limitation: PyTorch's amsgrad, maximize and decoupled (AdamW) weight decay are not supported.
 */
export function adamUpdate(
  gpu: Gpu,
  buffers: AdamBuffers,
  count: number,
  settings: AdamStepSettings,
): void {
  checkSettings(buffers, count, settings);
  kernel(gpu, FILE, 'adam_update').dispatch({
    buffers: { settings: settingsBuffer(gpu, settings), ...buffers },
    params: { count },
    workgroups: grid1d(count, WORKGROUP_SIZE),
    label: `adam step ${settings.step} [${count}]`,
  });
}
