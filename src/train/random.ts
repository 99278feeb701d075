// A small seeded random number generator whose whole state is four numbers, so a checkpoint can
// store it and a resumed run draws exactly what an uninterrupted one would have.
//
// The generator is xoshiro128** (Blackman and Vigna): 128 bits of state, period 2^128 - 1, and
// good statistical quality for noise vectors and shuffles. Seeds are spread over the state with
// splitmix32, so nearby seeds such as 1 and 2 still start from unrelated states.

import { CheckpointError } from '../errors.ts';

const TWO_TO_THE_32 = 2 ** 32;
const GOLDEN_RATIO_INCREMENT = 0x9e3779b9;

/** One splitmix32 step: returns the next output and the advanced counter. */
function splitmix32(counter: number): { output: number; counter: number } {
  const advanced = (counter + GOLDEN_RATIO_INCREMENT) | 0;
  let mixed = advanced;
  mixed = Math.imul(mixed ^ (mixed >>> 16), 0x85ebca6b);
  mixed = Math.imul(mixed ^ (mixed >>> 13), 0xc2b2ae35);
  return { output: (mixed ^ (mixed >>> 16)) >>> 0, counter: advanced };
}

/** Hashes several 32-bit words into one, order-sensitive, for deriving per-purpose seeds. */
export function mixWords(words: readonly number[]): number {
  let hash = 0;
  for (const word of words) hash = splitmix32(hash ^ word).output;
  return hash;
}

function rotateLeft(value: number, bits: number): number {
  return (value << bits) | (value >>> (32 - bits));
}

/** Splits a safe integer (negative allowed) into its low and high 32-bit words. */
function integerWords(value: number, what: string): [number, number] {
  if (!Number.isSafeInteger(value)) {
    throw new RangeError(`The ${what} must be an integer, got ${value}.`);
  }
  return [value >>> 0, Math.floor(value / TWO_TO_THE_32) >>> 0];
}

export class SeededRandom {
  private readonly state = new Uint32Array(4);

  /** Any safe integer is a valid seed; equal seeds give equal sequences on every platform. */
  constructor(seed: number) {
    let counter = mixWords(integerWords(seed, 'random seed'));
    for (let word = 0; word < 4; word++) {
      const step = splitmix32(counter);
      this.state[word] = step.output;
      counter = step.counter;
    }
    // xoshiro is stuck at zero forever from an all-zero state; splitmix makes this
    // astronomically unlikely, and this keeps it impossible.
    if (this.state.every((word) => word === 0)) this.state[0] = GOLDEN_RATIO_INCREMENT;
  }

  /** A uniformly distributed unsigned 32-bit integer. */
  nextUint32(): number {
    const state = this.state;
    const result = Math.imul(rotateLeft(Math.imul(state[1], 5), 7), 9) >>> 0;
    const shifted = state[1] << 9;

    state[2] ^= state[0];
    state[3] ^= state[1];
    state[1] ^= state[2];
    state[0] ^= state[3];
    state[2] ^= shifted;
    state[3] = rotateLeft(state[3], 11);

    return result;
  }

  /** A uniform number in [0, 1), with 32 bits of resolution. */
  next(): number {
    return this.nextUint32() / TWO_TO_THE_32;
  }

  /** A uniform integer in [0, bound), without the bias that `% bound` alone would add. */
  nextInt(bound: number): number {
    if (!Number.isInteger(bound) || bound < 1 || bound > TWO_TO_THE_32) {
      throw new RangeError(`nextInt needs an integer bound from 1 to 2^32, got ${bound}.`);
    }
    // Values below `threshold` would make the low residues slightly more likely; redraw them.
    const threshold = (TWO_TO_THE_32 - bound) % bound;
    for (;;) {
      const value = this.nextUint32();
      if (value >= threshold) return value % bound;
    }
  }

  /** A standard normal sample (mean 0, standard deviation 1), by the Box-Muller transform. */
  normal(): number {
    // 1 - next() lies in (0, 1], so the logarithm is always finite. The second Box-Muller
    // value is dropped rather than cached, so the state stays the four words of getState().
    const radius = Math.sqrt(-2 * Math.log(1 - this.next()));
    return radius * Math.cos(2 * Math.PI * this.next());
  }

  /** The four state words; `SeededRandom.fromState` continues the sequence from here. */
  getState(): number[] {
    return Array.from(this.state);
  }

  static fromState(state: readonly number[]): SeededRandom {
    const valid =
      state.length === 4 &&
      state.every((word) => Number.isInteger(word) && word >= 0 && word < TWO_TO_THE_32) &&
      state.some((word) => word !== 0);
    if (!valid) {
      throw new CheckpointError(
        `A saved random generator state must be four unsigned 32-bit ` +
          `integers, not all zero; found [${state.join(', ')}].`,
      );
    }
    const random = new SeededRandom(0);
    random.state.set(state);
    return random;
  }
}

/**
 * The order in which to visit `count` examples during `epoch`: a Fisher-Yates shuffle that
 * depends only on (seed, epoch), so a run resumed mid-training sees the same order again.
 */
export function shuffledIndices(count: number, seed: number, epoch: number): Uint32Array {
  if (!Number.isInteger(count) || count < 0 || count > TWO_TO_THE_32) {
    throw new RangeError(`shuffledIndices needs a count from 0 to 2^32, got ${count}.`);
  }
  const epochSeed = mixWords([
    ...integerWords(seed, 'shuffle seed'),
    ...integerWords(epoch, 'epoch'),
  ]);
  const random = new SeededRandom(epochSeed);

  const indices = new Uint32Array(count);
  for (let index = 0; index < count; index++) indices[index] = index;
  for (let last = count - 1; last > 0; last--) {
    const swapWith = random.nextInt(last + 1);
    const kept = indices[last];
    indices[last] = indices[swapWith];
    indices[swapWith] = kept;
  }
  return indices;
}
