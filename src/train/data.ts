// Training images kept as bytes on the CPU, resized once to the model's image size, and served
// as float batches in a seeded order that depends only on (seed, epoch), so a resumed run sees
// exactly the batches it would have seen.
import { DataError } from '../errors.ts';
import { loadImageSet } from './idx.ts';
import { shuffledIndices } from './random.ts';

export class ImageDataset {
  private order: Uint32Array | null = null;
  private orderEpoch = -1;

  /** `pixels` is [count, size, size] bytes, one channel. */
  constructor(
    readonly pixels: Uint8Array,
    readonly count: number,
    readonly size: number,
    readonly labels: Uint8Array | null,
  ) {}

  /** Loads the IDX training split from `directory`, resized to `size` x `size`. */
  static load(directory: string, size: number): ImageDataset {
    const set = loadImageSet(directory, 'train');
    const pixels =
      set.height === size && set.width === size
        ? set.images
        : resizeImages(set.images, set.count, set.height, set.width, size, Uint8Array);
    return new ImageDataset(pixels, set.count, size, set.labels ?? null);
  }

  batchesPerEpoch(batchSize: number): number {
    const batches = Math.floor(this.count / batchSize);
    if (batches === 0) {
      throw new DataError(
        `the data set has ${this.count} images, fewer than one batch of ${batchSize}; ` +
          'use a smaller --batch',
      );
    }
    return batches;
  }

  /** The data set's indices of the images of batch `step` (counted from the start). */
  private batchIndices(step: number, batchSize: number, seed: number): Uint32Array {
    const perEpoch = this.batchesPerEpoch(batchSize);
    const epoch = Math.floor(step / perEpoch);
    if (epoch !== this.orderEpoch) {
      this.order = shuffledIndices(this.count, seed, epoch);
      this.orderEpoch = epoch;
    }
    const first = (step % perEpoch) * batchSize;
    return (this.order as Uint32Array).subarray(first, first + batchSize);
  }

  /**
   * The images of batch `step` (counted from the start of training) as floats in NCHW with
   * `channels` copies of the gray channel, mapped from 0..255 onto `range`.
   */
  batch(
    step: number,
    batchSize: number,
    seed: number,
    channels: number,
    range: [number, number] = [-1, 1],
  ): Float32Array {
    const indices = this.batchIndices(step, batchSize, seed);
    const [low, high] = range;
    const factor = (high - low) / 255;
    const plane = this.size * this.size;
    const out = new Float32Array(batchSize * channels * plane);
    for (let item = 0; item < batchSize; item += 1) {
      const source = indices[item] * plane;
      for (let channel = 0; channel < channels; channel += 1) {
        const target = (item * channels + channel) * plane;
        for (let pixel = 0; pixel < plane; pixel += 1) {
          out[target + pixel] = this.pixels[source + pixel] * factor + low;
        }
      }
    }
    return out;
  }

  /** The class labels of batch `step`, as floats, in the order of batch(). */
  batchLabels(step: number, batchSize: number, seed: number): Float32Array {
    if (this.labels === null) {
      throw new DataError('the data set has no labels file (train-labels-idx1-ubyte)');
    }
    const labels = this.labels;
    return Float32Array.from(this.batchIndices(step, batchSize, seed), (index) => labels[index]);
  }
}

/**
 * Bilinear resize of `count` one-channel images to `size` x `size`, into a new array of the
 * given type; byte outputs are rounded to the nearest level.
 */
export function resizeImages<Out extends Uint8Array | Float32Array>(
  images: ArrayLike<number>,
  count: number,
  height: number,
  width: number,
  size: number,
  type: new (length: number) => Out,
): Out {
  const out = new type(count * size * size);
  const round = out instanceof Uint8Array;
  const scaleY = height / size;
  const scaleX = width / size;
  for (let image = 0; image < count; image += 1) {
    const source = image * height * width;
    const target = image * size * size;
    for (let row = 0; row < size; row += 1) {
      const y = Math.min(height - 1, Math.max(0, (row + 0.5) * scaleY - 0.5));
      const y0 = Math.floor(y);
      const y1 = Math.min(height - 1, y0 + 1);
      const fy = y - y0;
      for (let column = 0; column < size; column += 1) {
        const x = Math.min(width - 1, Math.max(0, (column + 0.5) * scaleX - 0.5));
        const x0 = Math.floor(x);
        const x1 = Math.min(width - 1, x0 + 1);
        const fx = x - x0;
        const top =
          images[source + y0 * width + x0] * (1 - fx) + images[source + y0 * width + x1] * fx;
        const bottom =
          images[source + y1 * width + x0] * (1 - fx) + images[source + y1 * width + x1] * fx;
        const value = top * (1 - fy) + bottom * fy;
        out[target + row * size + column] = round ? Math.round(value) : value;
      }
    }
  }
  return out;
}
