import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { DataError } from '../src/errors.ts';
import { DEFAULT_DATA_DIR, loadImageSet, readIdx, writeIdx } from '../src/train/idx.ts';

let folder: string;

beforeEach(() => {
  folder = mkdtempSync(join(tmpdir(), 'shadergan-idx-'));
});

afterEach(() => {
  rmSync(folder, { recursive: true, force: true });
});

/** Counting bytes 0, 1, 2, ... so a misplaced byte shows up in the diff. */
function countingBytes(length: number): Uint8Array {
  return Uint8Array.from({ length }, (_, index) => index % 256);
}

function rawIdx(header: number[], payloadLength: number): Buffer {
  return Buffer.concat([Buffer.from(header), Buffer.from(countingBytes(payloadLength))]);
}

describe('readIdx', () => {
  it.each([
    { compression: 'plain', gzip: false },
    { compression: 'gzip', gzip: true },
  ])('round-trips a $compression file', ({ gzip }) => {
    const path = join(folder, 'images');
    const data = countingBytes(3 * 4 * 5);
    writeIdx(path, [3, 4, 5], data, { gzip });

    const loaded = readIdx(path);
    expect(loaded.dims).toEqual([3, 4, 5]);
    expect(Array.from(loaded.data)).toEqual(Array.from(data));
  });

  it('detects gzip by its magic bytes, whatever the file is called', () => {
    const path = join(folder, 'labels-without-gz-suffix');
    writeIdx(path, [7], countingBytes(7), { gzip: true });
    expect(readIdx(path).dims).toEqual([7]);
  });

  it('reports a truncated payload with expected and found byte counts', () => {
    const path = join(folder, 'truncated');
    // Dimensions [2, 3] need 6 bytes; only 4 follow the header.
    writeFileSync(path, rawIdx([0, 0, 0x08, 2, 0, 0, 0, 2, 0, 0, 0, 3], 4));
    expect(() => readIdx(path)).toThrow(DataError);
    expect(() => readIdx(path)).toThrow(/truncated.*\[2, 3\].*6 bytes.*found 4/);
    expect(() => readIdx(path)).toThrow(path);
  });

  it('reports a truncated gzip file', () => {
    const path = join(folder, 'truncated.gz');
    const compressed = gzipSync(rawIdx([0, 0, 0x08, 1, 0, 0, 0, 100], 100));
    writeFileSync(path, compressed.subarray(0, compressed.byteLength - 12));
    expect(() => readIdx(path)).toThrow(/does not decompress/);
  });

  it('reports a header cut short inside the dimensions', () => {
    const path = join(folder, 'short-header');
    writeFileSync(path, Buffer.from([0, 0, 0x08, 3, 0, 0, 0, 2]));
    expect(() => readIdx(path)).toThrow(/declares 3 dimensions \(16 header bytes\).*only 8/);
  });

  it('rejects trailing bytes after the payload', () => {
    const path = join(folder, 'too-long');
    writeFileSync(path, rawIdx([0, 0, 0x08, 1, 0, 0, 0, 2], 5));
    expect(() => readIdx(path)).toThrow(/trailing bytes.*2 bytes.*found 5/);
  });

  it('rejects a wrong magic number', () => {
    const path = join(folder, 'not-idx');
    writeFileSync(path, Buffer.from('PK\x03\x04 a zip file, say'));
    expect(() => readIdx(path)).toThrow(DataError);
    expect(() => readIdx(path)).toThrow(/not an IDX file.*two zero bytes.*0x50 0x4b/);
  });

  it.each([
    { typeCode: 0x0d, expected: /0x0d \(float\).*only unsigned bytes/ },
    { typeCode: 0x0c, expected: /0x0c \(int\)/ },
    { typeCode: 0x42, expected: /0x42, which is not an IDX type/ },
  ])('rejects element type $typeCode', ({ typeCode, expected }) => {
    const path = join(folder, 'typed');
    writeFileSync(path, rawIdx([0, 0, typeCode, 1, 0, 0, 0, 4], 16));
    expect(() => readIdx(path)).toThrow(DataError);
    expect(() => readIdx(path)).toThrow(expected);
  });

  it('rejects zero dimensions and tiny files', () => {
    const zeroDims = join(folder, 'zero-dims');
    writeFileSync(zeroDims, Buffer.from([0, 0, 0x08, 0]));
    expect(() => readIdx(zeroDims)).toThrow(/zero dimensions/);

    const tiny = join(folder, 'tiny');
    writeFileSync(tiny, Buffer.from([0, 0]));
    expect(() => readIdx(tiny)).toThrow(/2 bytes long/);
  });

  it('names a missing file', () => {
    const path = join(folder, 'absent');
    expect(() => readIdx(path)).toThrow(`Cannot read IDX file ${path}: the file does not exist.`);
  });
});

describe('writeIdx', () => {
  it('refuses data that does not match the dimensions', () => {
    expect(() => writeIdx(join(folder, 'x'), [2, 2], countingBytes(3))).toThrow(/need 4 bytes/);
  });

  it('leaves no temporary file behind', () => {
    writeIdx(join(folder, 'x'), [2], countingBytes(2), { gzip: true });
    expect(existsSync(join(folder, `x.tmp-${process.pid}`))).toBe(false);
  });
});

describe('loadImageSet', () => {
  function writeSplit(split: 'train' | 't10k', count: number, labelCount: number | undefined) {
    writeIdx(
      join(folder, `${split}-images-idx3-ubyte.gz`),
      [count, 2, 3],
      countingBytes(count * 6),
      { gzip: true },
    );
    if (labelCount !== undefined) {
      writeIdx(join(folder, `${split}-labels-idx1-ubyte`), [labelCount], countingBytes(labelCount));
    }
  }

  it('loads images and labels, compressed or not', () => {
    writeSplit('t10k', 4, 4);
    const set = loadImageSet(folder, 't10k');
    expect(set).toMatchObject({ count: 4, height: 2, width: 3 });
    expect(set.images.length).toBe(24);
    expect(Array.from(set.labels ?? [])).toEqual([0, 1, 2, 3]);
  });

  it('treats labels as optional', () => {
    writeSplit('train', 2, undefined);
    const set = loadImageSet(folder, 'train');
    expect(set.count).toBe(2);
    expect(set.labels).toBeUndefined();
  });

  it('rejects a label count that differs from the image count', () => {
    writeSplit('train', 5, 4);
    expect(() => loadImageSet(folder, 'train')).toThrow(DataError);
    expect(() => loadImageSet(folder, 'train')).toThrow(/expected 5 labels, found 4/);
  });

  it('rejects an images file that is not three-dimensional', () => {
    writeIdx(join(folder, 'train-images-idx3-ubyte'), [6], countingBytes(6));
    expect(() => loadImageSet(folder, 'train')).toThrow(/\[count, height, width\].*1 dimensions/);
  });

  it('explains how to get the data when the folder is missing', () => {
    const missing = join(folder, 'no-such-folder');
    const load = () => loadImageSet(missing, 'train');
    expect(load).toThrow(DataError);
    expect(load).toThrow(`The data folder ${missing} does not exist.`);
    expect(load).toThrow(
      "run `npm run setup` (installs Debian's dataset-fashion-mnist into " +
        '/usr/share/datasets/fashion-mnist) or pass --data DIR with the IDX files',
    );
  });

  it('explains how to get the data when the images file is missing', () => {
    mkdirSync(join(folder, 'empty'));
    const load = () => loadImageSet(join(folder, 'empty'), 't10k');
    expect(load).toThrow(/has no t10k-images-idx3-ubyte or t10k-images-idx3-ubyte\.gz/);
    expect(load).toThrow(/npm run setup/);
  });

  it.runIf(existsSync(DEFAULT_DATA_DIR))('loads the installed Fashion-MNIST training set', () => {
    const set = loadImageSet(DEFAULT_DATA_DIR, 'train');
    expect([set.count, set.height, set.width]).toEqual([60000, 28, 28]);
    expect(set.images.length).toBe(60000 * 28 * 28);
    expect(set.labels?.length).toBe(60000);
    const classesSeen = new Set(set.labels);
    expect([...classesSeen].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });
});
