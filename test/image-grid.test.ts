import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { encodeImageGrid, writeImageGrid, type ImageGridOptions } from '../src/train/image-grid.ts';

let folder: string;

beforeEach(() => {
  folder = mkdtempSync(join(tmpdir(), 'shadergan-grid-'));
});

afterEach(() => {
  rmSync(folder, { recursive: true, force: true });
});

/** Decodes to RGBA, whatever colour type was written, and reads one pixel. */
function pixelAt(png: PNG, x: number, y: number): number[] {
  const start = (y * png.width + x) * 4;
  return Array.from(png.data.subarray(start, start + 4));
}

describe('encodeImageGrid', () => {
  it('lays out 10 images of 28x28 in 4 columns with 2-pixel borders', () => {
    const png = PNG.sync.read(
      encodeImageGrid(new Float32Array(10 * 28 * 28), {
        count: 10,
        channels: 1,
        height: 28,
        width: 28,
        range: [-1, 1],
        columns: 4,
      }),
    );
    // 4 columns and 3 rows of 28 pixels, with 5 and 4 borders of 2 pixels.
    expect(png.width).toBe(4 * 28 + 5 * 2);
    expect(png.height).toBe(3 * 28 + 4 * 2);
  });

  it('defaults to a near-square grid', () => {
    const png = PNG.sync.read(
      encodeImageGrid(new Float32Array(10 * 4), {
        count: 10,
        channels: 1,
        height: 2,
        width: 2,
        range: [0, 1],
        padding: 0,
      }),
    );
    // ceil(sqrt(10)) = 4 columns, so 3 rows.
    expect([png.width, png.height]).toEqual([8, 6]);
  });

  it('maps the range onto 0..255, clamps outside it, and draws NaN mid-grey', () => {
    // One 2x3 image: [[-1, 0, 1], [-7, 7, NaN]].
    const image = Float32Array.of(-1, 0, 1, -7, 7, NaN);
    const encoded = encodeImageGrid(image, {
      count: 1,
      channels: 1,
      height: 2,
      width: 3,
      range: [-1, 1],
      padding: 1,
    });
    const png = PNG.sync.read(encoded);
    expect(png.colorType).toBe(0);
    expect([png.width, png.height]).toEqual([5, 4]);

    const gray = (x: number, y: number) => pixelAt(png, x, y)[0];
    expect([gray(1, 1), gray(2, 1), gray(3, 1)]).toEqual([0, 128, 255]);
    expect([gray(1, 2), gray(2, 2), gray(3, 2)]).toEqual([0, 255, 128]);

    // The border is dark but not black, so it shows around black backgrounds.
    const border = gray(0, 0);
    expect(border).toBeGreaterThan(0);
    expect(border).toBeLessThan(80);
  });

  it('writes three channels as RGB from NCHW planes', () => {
    // Two 1x2 images. Image 0: red then green; image 1: blue then white.
    const images = Float32Array.of(
      1,
      0,
      /* G */ 0,
      1,
      /* B */ 0,
      0,
      0,
      1,
      /* G */ 0,
      1,
      /* B */ 1,
      1,
    );
    const png = PNG.sync.read(
      encodeImageGrid(images, {
        count: 2,
        channels: 3,
        height: 1,
        width: 2,
        range: [0, 1],
        columns: 2,
        padding: 0,
      }),
    );
    expect(png.colorType).toBe(2);
    expect([png.width, png.height]).toEqual([4, 1]);
    expect([0, 1, 2, 3].map((x) => pixelAt(png, x, 0).slice(0, 3))).toEqual([
      [255, 0, 0],
      [0, 255, 0],
      [0, 0, 255],
      [255, 255, 255],
    ]);
  });

  it('fills the unused cells of the last row with the border colour', () => {
    const png = PNG.sync.read(
      encodeImageGrid(Float32Array.of(1, 1, 1), {
        count: 3,
        channels: 1,
        height: 1,
        width: 1,
        range: [0, 1],
        columns: 2,
        padding: 1,
      }),
    );
    expect(pixelAt(png, 1, 3)[0]).toBe(255);
    expect(pixelAt(png, 3, 3)[0]).toBe(pixelAt(png, 0, 0)[0]);
  });

  it.each([
    { problem: 'too few values', values: 3, options: {}, message: /need 4 values, got 3/ },
    { problem: 'an empty range', values: 4, options: { range: [1, 1] }, message: /low < high/ },
    { problem: 'zero columns', values: 4, options: { columns: 0 }, message: /columns, got 0/ },
  ] satisfies Array<{
    problem: string;
    values: number;
    options: Partial<ImageGridOptions>;
    message: RegExp;
  }>)('refuses $problem', ({ values, options, message }) => {
    const encode = () =>
      encodeImageGrid(new Float32Array(values), {
        count: 1,
        channels: 1,
        height: 2,
        width: 2,
        range: [0, 1],
        ...options,
      });
    expect(encode).toThrow(message);
  });
});

describe('writeImageGrid', () => {
  it('creates the folder and writes a readable PNG without leftovers', () => {
    const path = join(folder, 'samples', 'nested', 'step-100.png');
    writeImageGrid(path, new Float32Array(4 * 9), {
      count: 4,
      channels: 1,
      height: 3,
      width: 3,
      range: [-1, 1],
    });
    expect(existsSync(path)).toBe(true);
    expect(PNG.sync.read(readFileSync(path)).width).toBe(2 * 3 + 3 * 2);
    expect(readdirSync(join(folder, 'samples', 'nested'))).toEqual(['step-100.png']);
  });
});
