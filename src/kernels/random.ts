// Wrapper for shaders/random.wgsl: fills a buffer with uniform or normal random numbers that
// depend only on (seed, offset + index).
import { ShaderganError } from '../errors.ts';
import type { Gpu, PooledBuffer } from './gpu.ts';
import { grid1d, kernel } from './kernel.ts';

const FILE = 'random.wgsl';
const WORKGROUP_SIZE = 64;
const TWO_TO_THE_32 = 2 ** 32;

export type Distribution = 'uniform' | 'normal';

function splitWords(name: string, value: number): [number, number] {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new ShaderganError(`random: ${name} must be an integer from 0 to 2^53 - 1, got ${value}`);
  }
  return [value % TWO_TO_THE_32, Math.floor(value / TWO_TO_THE_32)];
}

/**
 * Writes `count` values to `output`: element i comes from Philox4x32-10 with key `seed` and
 * counter `offset + i`, so a draw of n values at offset k continues one that stopped at k.
 */
export function randomFill(
  gpu: Gpu,
  distribution: Distribution,
  output: PooledBuffer,
  count: number,
  seed: number,
  offset = 0,
): void {
  const [seedLow, seedHigh] = splitWords('seed', seed);
  const [offsetLow, offsetHigh] = splitWords('offset', offset);
  if (offset + count > Number.MAX_SAFE_INTEGER) {
    throw new ShaderganError(`random: offset ${offset} + ${count} values passes 2^53`);
  }

  // Seed and offset change with every draw, so they travel in a small storage buffer written
  // through the queue: as uniform parameters each draw would leave a uniform buffer behind.
  const stream = gpu.pool.acquire(16, 'random stream');
  gpu.write(stream, Uint32Array.of(seedLow, seedHigh, offsetLow, offsetHigh));
  kernel(gpu, FILE, distribution === 'uniform' ? 'uniform_fill' : 'normal_fill').dispatch({
    buffers: { stream, output },
    params: { count },
    workgroups: grid1d(count, WORKGROUP_SIZE),
    label: `${distribution} random [${count}] seed ${seed} offset ${offset}`,
  });
  gpu.pool.release(stream);
}
