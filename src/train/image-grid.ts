// Tiles a batch of images into one PNG, the usual way to look at what a generator produces.

import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { PNG } from 'pngjs';

import { writeFileAtomic } from './atomic-write.ts';

export interface ImageGridOptions {
  count: number;
  channels: 1 | 3;
  height: number;
  width: number;
  /** The values that map to black and to white, e.g. [-1, 1] for a tanh generator. */
  range: [number, number];
  /** Images per row; defaults to ceil(sqrt(count)), which gives a near-square grid. */
  columns?: number;
  /** Pixels of border around and between images; defaults to 2. */
  padding?: number;
}

const DEFAULT_PADDING = 2;
// Dark but not black, so the border stays visible around images with black backgrounds.
const BORDER_LEVEL = 40;
const NOT_A_NUMBER_LEVEL = 128;

const PNG_GRAYSCALE = 0;
const PNG_RGB = 2;

/**
 * Encodes `images` ([count, channels, height, width], NCHW) as a PNG grid. Values are mapped
 * linearly from `range` onto 0..255 and clamped; NaN is drawn mid-grey so it stands out against
 * a mostly black or white sample. One channel gives a grayscale PNG, three give RGB.
 */
export function encodeImageGrid(images: Float32Array, options: ImageGridOptions): Buffer {
  const { count, channels, height, width } = options;
  const [low, high] = options.range;
  const padding = options.padding ?? DEFAULT_PADDING;
  const columns = options.columns ?? Math.ceil(Math.sqrt(count));
  checkGridOptions(images, options, columns, padding);

  const rows = Math.ceil(count / columns);
  const gridWidth = columns * width + (columns + 1) * padding;
  const gridHeight = rows * height + (rows + 1) * padding;
  const pixels = Buffer.alloc(gridWidth * gridHeight * channels, BORDER_LEVEL);
  const scale = 255 / (high - low);
  const imageSize = height * width;

  for (let image = 0; image < count; image++) {
    const left = padding + (image % columns) * (width + padding);
    const top = padding + Math.floor(image / columns) * (height + padding);
    for (let channel = 0; channel < channels; channel++) {
      const planeStart = (image * channels + channel) * imageSize;
      for (let row = 0; row < height; row++) {
        for (let column = 0; column < width; column++) {
          const value = images[planeStart + row * width + column];
          const gridPixel = (top + row) * gridWidth + left + column;
          pixels[gridPixel * channels + channel] = toByte(value, low, scale);
        }
      }
    }
  }

  const png = new PNG();
  png.width = gridWidth;
  png.height = gridHeight;
  png.data = pixels;
  const colorType = channels === 1 ? PNG_GRAYSCALE : PNG_RGB;
  // Input and output share a colour type, so pngjs writes the bytes without converting.
  return PNG.sync.write(png, { colorType, inputColorType: colorType, inputHasAlpha: false });
}

function toByte(value: number, low: number, scale: number): number {
  if (Number.isNaN(value)) return NOT_A_NUMBER_LEVEL;
  const level = Math.round((value - low) * scale);
  return level < 0 ? 0 : level > 255 ? 255 : level;
}

function checkGridOptions(
  images: Float32Array,
  options: ImageGridOptions,
  columns: number,
  padding: number,
): void {
  const { count, channels, height, width, range } = options;
  for (const [name, value] of Object.entries({ count, height, width, columns })) {
    if (!Number.isInteger(value) || value < 1) {
      throw new RangeError(`An image grid needs a positive integer ${name}, got ${value}.`);
    }
  }
  if (channels !== 1 && channels !== 3) {
    throw new RangeError(`An image grid needs 1 or 3 channels, got ${channels}.`);
  }
  if (!Number.isInteger(padding) || padding < 0) {
    throw new RangeError(`An image grid needs a padding of 0 or more pixels, got ${padding}.`);
  }
  if (!(Number.isFinite(range[0]) && Number.isFinite(range[1]) && range[0] < range[1])) {
    throw new RangeError(
      `An image grid needs a range [low, high] with low < high, got ` + `[${range.join(', ')}].`,
    );
  }
  const expectedLength = count * channels * height * width;
  if (images.length !== expectedLength) {
    throw new RangeError(
      `${count} images of ${channels}x${height}x${width} need ` +
        `${expectedLength} values, got ${images.length}.`,
    );
  }
}

/** Writes the PNG grid to `path` atomically, creating the folder it goes in. */
export function writeImageGrid(
  path: string,
  images: Float32Array,
  options: ImageGridOptions,
): void {
  const png = encodeImageGrid(images, options);
  mkdirSync(dirname(path), { recursive: true });
  writeFileAtomic(path, [png]);
}
