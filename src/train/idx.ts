// Reads the IDX format that MNIST and Fashion-MNIST ship in:
//
//   [2 bytes]  zero
//   [1 byte]   element type (0x08 = unsigned byte, the only one these data sets use)
//   [1 byte]   number of dimensions D
//   [4*D]      each dimension as a big-endian u32
//   [rest]     the elements, row-major
//
// Files may be gzip-compressed as distributed; the gzip magic bytes decide, not the name.

import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';

import { DataError } from '../errors.ts';
import { writeFileAtomic } from './atomic-write.ts';

/** Where `npm run setup` installs Debian's dataset-fashion-mnist package. */
export const DEFAULT_DATA_DIR = '/usr/share/datasets/fashion-mnist';

const HOW_TO_GET_DATA =
  "run `npm run setup` (installs Debian's dataset-fashion-mnist into " +
  `${DEFAULT_DATA_DIR}) or pass --data DIR with the IDX files`;

const UNSIGNED_BYTE_TYPE = 0x08;
const OTHER_IDX_TYPES: Record<number, string> = {
  0x09: 'signed byte',
  0x0b: 'short',
  0x0c: 'int',
  0x0d: 'float',
  0x0e: 'double',
};

const GZIP_MAGIC = [0x1f, 0x8b];
const FIXED_HEADER_BYTES = 4;
const BYTES_PER_DIMENSION = 4;

export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

export interface ImageSet {
  /** [count, height, width], one byte per pixel, 0 = background. */
  images: Uint8Array;
  count: number;
  height: number;
  width: number;
  /** One class index per image, when the labels file is present. */
  labels?: Uint8Array;
}

export type Split = 'train' | 't10k';

/** Reads an unsigned-byte IDX file, gzip-compressed or plain. */
export function readIdx(path: string): IdxArray {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    const reason = isMissingFileError(error) ? 'the file does not exist' : String(error);
    throw new DataError(`Cannot read IDX file ${path}: ${reason}.`);
  }

  if (bytes[0] === GZIP_MAGIC[0] && bytes[1] === GZIP_MAGIC[1]) {
    try {
      bytes = gunzipSync(bytes);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new DataError(
        `${path} starts like a gzip file but does not decompress ` +
          `(${reason}); the download may be incomplete, so fetch it again.`,
      );
    }
  }
  return parseIdx(path, bytes);
}

function parseIdx(path: string, bytes: Buffer): IdxArray {
  const notIdx = (problem: string): DataError =>
    new DataError(`${path} is not an IDX file: ${problem}.`);

  if (bytes.byteLength < FIXED_HEADER_BYTES) {
    throw notIdx(`it is ${bytes.byteLength} bytes long, shorter than the 4-byte IDX header`);
  }
  if (bytes[0] !== 0 || bytes[1] !== 0) {
    throw notIdx(
      `expected the magic number to start with two zero bytes, found ` +
        `0x${hexByte(bytes[0])} 0x${hexByte(bytes[1])}`,
    );
  }

  const typeCode = bytes[2];
  if (typeCode !== UNSIGNED_BYTE_TYPE) {
    const typeName = OTHER_IDX_TYPES[typeCode];
    const found =
      typeName === undefined
        ? `0x${hexByte(typeCode)}, which is not an IDX type`
        : `0x${hexByte(typeCode)} (${typeName})`;
    throw new DataError(
      `${path} holds elements of type ${found}; only unsigned bytes (0x08), ` +
        'as in MNIST and Fashion-MNIST, are supported.',
    );
  }

  const dimensionCount = bytes[3];
  if (dimensionCount === 0) throw notIdx('its header declares zero dimensions');
  const headerBytes = FIXED_HEADER_BYTES + BYTES_PER_DIMENSION * dimensionCount;
  if (bytes.byteLength < headerBytes) {
    throw new DataError(
      `${path} is truncated: its header declares ${dimensionCount} ` +
        `dimensions (${headerBytes} header bytes) but the file has only ${bytes.byteLength} bytes.`,
    );
  }

  const dims: number[] = [];
  for (let dimension = 0; dimension < dimensionCount; dimension++) {
    dims.push(bytes.readUInt32BE(FIXED_HEADER_BYTES + BYTES_PER_DIMENSION * dimension));
  }

  const expectedBytes = dims.reduce((total, size) => total * size, 1);
  const foundBytes = bytes.byteLength - headerBytes;
  if (foundBytes !== expectedBytes) {
    const problem = foundBytes < expectedBytes ? 'is truncated' : 'has trailing bytes';
    throw new DataError(
      `${path} ${problem}: dimensions [${dims.join(', ')}] need ` +
        `${expectedBytes} bytes of data after the header, found ${foundBytes}.`,
    );
  }

  return { dims, data: bytes.subarray(headerBytes) };
}

/**
 * Loads `<split>-images-idx3-ubyte[.gz]` and, when present, the matching labels file from
 * `directory`.
 */
export function loadImageSet(directory: string, split: Split): ImageSet {
  if (!isDirectory(directory)) {
    const problem = existsSync(directory) ? 'is not a folder' : 'does not exist';
    throw new DataError(
      `The data folder ${directory} ${problem}. To get Fashion-MNIST, ` + `${HOW_TO_GET_DATA}.`,
    );
  }

  const imagesName = `${split}-images-idx3-ubyte`;
  const imagesPath = findWithOrWithoutGzip(directory, imagesName);
  if (imagesPath === undefined) {
    throw new DataError(
      `The data folder ${directory} has no ${imagesName} or ` +
        `${imagesName}.gz. To get Fashion-MNIST, ${HOW_TO_GET_DATA}.`,
    );
  }

  const images = readIdx(imagesPath);
  if (images.dims.length !== 3) {
    throw new DataError(
      `${imagesPath} should hold images as [count, height, width], but it ` +
        `has ${images.dims.length} dimensions [${images.dims.join(', ')}].`,
    );
  }
  const [count, height, width] = images.dims;
  const imageSet: ImageSet = { images: images.data, count, height, width };

  const labels = readLabels(directory, split);
  if (labels !== null) {
    if (labels.data.length !== count) {
      throw new DataError(
        `${labels.path} does not match ${imagesPath}: expected ${count} labels, ` +
          `found ${labels.data.length}.`,
      );
    }
    imageSet.labels = labels.data;
  }
  return imageSet;
}

/** The labels file of a split, or null when the folder has none. */
export function readLabels(
  directory: string,
  split: Split,
): { path: string; data: Uint8Array } | null {
  const path = findWithOrWithoutGzip(directory, `${split}-labels-idx1-ubyte`);
  if (path === undefined) return null;
  const labels = readIdx(path);
  if (labels.dims.length !== 1) {
    throw new DataError(
      `${path} should hold labels in one dimension, found [${labels.dims.join(', ')}].`,
    );
  }
  return { path, data: labels.data };
}

/**
 * The number of classes of a labelled training split: its largest label plus one, when every
 * class from 0 up to it has images (a gap is more likely a stray label than an empty class).
 */
export function classCount(directory: string): number {
  const labels = readLabels(directory, 'train');
  if (labels === null) {
    throw new DataError(
      `--conditional needs class labels, but ${directory} has no train-labels-idx1-ubyte[.gz]`,
    );
  }
  const count = labels.data.reduce((largest, label) => Math.max(largest, label), 0) + 1;
  if (count < 2) {
    throw new DataError(`${labels.path} holds a single class; nothing to condition on`);
  }
  const seen = new Set(labels.data);
  const empty = Array.from({ length: count }, (_, label) => label).filter((l) => !seen.has(l));
  if (empty.length > 0) {
    const listed = empty.length > 5 ? `${empty.slice(0, 5).join(', ')}, ...` : empty.join(', ');
    throw new DataError(
      `${labels.path} has labels up to ${count - 1}, but no image of class ${listed}; ` +
        '--conditional needs images of every class from 0 to the largest label',
    );
  }
  return count;
}

function findWithOrWithoutGzip(directory: string, baseName: string): string | undefined {
  for (const candidate of [baseName, `${baseName}.gz`]) {
    const path = join(directory, candidate);
    if (existsSync(path)) return path;
  }
  return undefined;
}

/** Writes an unsigned-byte IDX file atomically, gzip-compressed when asked. */
export function writeIdx(
  path: string,
  dims: readonly number[],
  data: Uint8Array,
  options: { gzip?: boolean } = {},
): void {
  const expectedBytes = dims.reduce((total, size) => total * size, 1);
  if (dims.length === 0 || dims.length > 255 || !dims.every(isUint32)) {
    throw new RangeError(
      `IDX dimensions must be 1 to 255 unsigned 32-bit sizes, got ` + `[${dims.join(', ')}].`,
    );
  }
  if (data.byteLength !== expectedBytes) {
    throw new RangeError(
      `IDX dimensions [${dims.join(', ')}] need ${expectedBytes} bytes of ` +
        `data, got ${data.byteLength}.`,
    );
  }

  const header = Buffer.alloc(FIXED_HEADER_BYTES + BYTES_PER_DIMENSION * dims.length);
  header[2] = UNSIGNED_BYTE_TYPE;
  header[3] = dims.length;
  dims.forEach((size, dimension) => {
    header.writeUInt32BE(size, FIXED_HEADER_BYTES + BYTES_PER_DIMENSION * dimension);
  });

  const chunks = options.gzip ? [gzipSync(Buffer.concat([header, data]))] : [header, data];
  writeFileAtomic(path, chunks);
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function isMissingFileError(error: unknown): boolean {
  return error instanceof Error && 'code' in error && error.code === 'ENOENT';
}

function isUint32(value: number): boolean {
  return Number.isInteger(value) && value >= 0 && value <= 0xffffffff;
}

function hexByte(value: number | undefined): string {
  return (value ?? 0).toString(16).padStart(2, '0');
}
