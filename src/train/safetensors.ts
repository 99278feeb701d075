// Reads and writes the safetensors format, so checkpoints open in other tools too:
//
//   [8 bytes]  little-endian u64 N, the length of the JSON header
//   [N bytes]  JSON: { "<name>": { dtype, shape, data_offsets: [begin, end] }, ...,
//                      "__metadata__": { "<key>": "<string>", ... } },
//              padded with spaces so the data section starts at a multiple of 8
//   [rest]     raw little-endian tensor data; offsets are relative to the start of this section
//
// Limitation: tensor bytes are copied as they are, which assumes a little-endian host. Every
// platform Node's webgpu package ships for is little-endian.

import { readFileSync } from 'node:fs';

import { CheckpointError } from '../errors.ts';
import { writeFileAtomic } from './atomic-write.ts';

export type SafetensorsDtype = 'F32' | 'I32' | 'I64';
export type TensorData = Float32Array | Int32Array | BigInt64Array;

/** A tensor to write; `data` must hold exactly product(shape) values of the matching type. */
export interface NamedTensor {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  data: TensorData;
}

/** A tensor as read back: `data` is a fresh, aligned array that the caller owns. */
export interface StoredTensor {
  dtype: SafetensorsDtype;
  shape: number[];
  data: TensorData;
}

export interface SafetensorsFile {
  tensors: Map<string, StoredTensor>;
  metadata: Record<string, string>;
}

const HEADER_LENGTH_BYTES = 8;
const HEADER_ALIGNMENT = 8;
const METADATA_KEY = '__metadata__';

const BYTES_PER_ELEMENT: Record<SafetensorsDtype, number> = { F32: 4, I32: 4, I64: 8 };

// Names of dtypes that the safetensors format defines but this reader does not load, so the
// error can say "unsupported" rather than "unknown".
const OTHER_SAFETENSORS_DTYPES = new Set([
  'BOOL',
  'U8',
  'I8',
  'F8_E5M2',
  'F8_E4M3',
  'I16',
  'U16',
  'F16',
  'BF16',
  'U32',
  'F64',
  'U64',
]);

/** Writes tensors and string metadata to `path` as a safetensors file, atomically. */
export function writeSafetensors(
  path: string,
  tensors: readonly NamedTensor[],
  metadata: Record<string, string> = {},
): void {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header[METADATA_KEY] = { ...metadata };

  const dataChunks: Uint8Array[] = [];
  let offset = 0;
  for (const tensor of tensors) {
    checkTensorToWrite(path, tensor, header);
    const byteLength = tensor.data.byteLength;
    header[tensor.name] = {
      dtype: tensor.dtype,
      shape: tensor.shape,
      data_offsets: [offset, offset + byteLength],
    };
    dataChunks.push(new Uint8Array(tensor.data.buffer, tensor.data.byteOffset, byteLength));
    offset += byteLength;
  }

  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const paddedLength = Math.ceil(json.byteLength / HEADER_ALIGNMENT) * HEADER_ALIGNMENT;
  const headerBytes = Buffer.alloc(paddedLength, ' ');
  json.copy(headerBytes);
  const lengthPrefix = Buffer.alloc(HEADER_LENGTH_BYTES);
  lengthPrefix.writeBigUInt64LE(BigInt(paddedLength));

  writeFileAtomic(path, [lengthPrefix, headerBytes, ...dataChunks]);
}

function checkTensorToWrite(
  path: string,
  tensor: NamedTensor,
  headerSoFar: Record<string, unknown>,
): void {
  const refuse = (problem: string): never => {
    throw new CheckpointError(`Cannot write checkpoint ${path}: ${problem}.`);
  };

  if (tensor.name === '' || tensor.name === METADATA_KEY) {
    refuse(`'${tensor.name}' is not allowed as a tensor name`);
  }
  if (Object.hasOwn(headerSoFar, tensor.name)) {
    refuse(`the tensor name '${tensor.name}' appears twice`);
  }
  if (!tensor.shape.every((size) => Number.isSafeInteger(size) && size >= 0)) {
    refuse(`tensor '${tensor.name}' has shape [${tensor.shape}], which is not a list of sizes`);
  }
  if (!dataMatchesDtype(tensor.data, tensor.dtype)) {
    refuse(
      `tensor '${tensor.name}' is declared ${tensor.dtype} but holds a ` +
        `${tensor.data.constructor.name}`,
    );
  }
  const expectedCount = product(tensor.shape);
  if (tensor.data.length !== expectedCount) {
    refuse(
      `tensor '${tensor.name}' has shape [${tensor.shape}] (${expectedCount} values) ` +
        `but its data holds ${tensor.data.length} values`,
    );
  }
}

function dataMatchesDtype(data: TensorData, dtype: SafetensorsDtype): boolean {
  switch (dtype) {
    case 'F32':
      return data instanceof Float32Array;
    case 'I32':
      return data instanceof Int32Array;
    case 'I64':
      return data instanceof BigInt64Array;
  }
}

/** Reads a safetensors file, checking every header field against the file before trusting it. */
export function readSafetensors(path: string): SafetensorsFile {
  let file: Buffer;
  try {
    file = readFileSync(path);
  } catch (error) {
    throw new CheckpointError(`Cannot read checkpoint ${path}: ${describeFsError(error)}.`);
  }
  const invalid = (problem: string): CheckpointError =>
    new CheckpointError(`${path} is not a valid checkpoint: ${problem}.`);

  if (file.byteLength < HEADER_LENGTH_BYTES) {
    throw invalid(
      `the file is ${file.byteLength} bytes long, shorter than the 8-byte ` +
        `header length that starts every safetensors file`,
    );
  }
  const declaredHeaderLength = file.readBigUInt64LE(0);
  const bytesAfterPrefix = file.byteLength - HEADER_LENGTH_BYTES;
  if (declaredHeaderLength > BigInt(bytesAfterPrefix)) {
    throw invalid(
      `the header claims ${declaredHeaderLength} bytes but only ` +
        `${bytesAfterPrefix} bytes follow the length prefix (the file may be truncated)`,
    );
  }
  const headerLength = Number(declaredHeaderLength);
  const dataStart = HEADER_LENGTH_BYTES + headerLength;
  const dataSection = file.subarray(dataStart);

  let header: unknown;
  try {
    const headerText = new TextDecoder('utf-8', { fatal: true }).decode(
      file.subarray(HEADER_LENGTH_BYTES, dataStart),
    );
    header = JSON.parse(headerText);
  } catch {
    throw invalid('the header is not valid UTF-8 JSON');
  }
  if (!isPlainObject(header)) {
    throw invalid('the header is not a JSON object');
  }

  const metadata = readMetadata(header[METADATA_KEY], invalid);
  const tensors = new Map<string, StoredTensor>();
  const occupiedRanges: Array<{ name: string; begin: number; end: number }> = [];

  for (const [name, entry] of Object.entries(header)) {
    if (name === METADATA_KEY) continue;
    const { dtype, shape, begin, end } = readTensorEntry(
      name,
      entry,
      dataSection.byteLength,
      invalid,
    );
    occupiedRanges.push({ name, begin, end });
    tensors.set(name, { dtype, shape, data: copyTensorData(dataSection, dtype, begin, end) });
  }

  occupiedRanges.sort((a, b) => a.begin - b.begin || a.end - b.end);
  for (let index = 1; index < occupiedRanges.length; index++) {
    const previous = occupiedRanges[index - 1];
    const current = occupiedRanges[index];
    if (current.begin < previous.end) {
      throw invalid(
        `tensors '${previous.name}' and '${current.name}' overlap ` +
          `(bytes ${previous.begin}..${previous.end} and ${current.begin}..${current.end})`,
      );
    }
  }

  return { tensors, metadata };
}

function readMetadata(
  value: unknown,
  invalid: (problem: string) => CheckpointError,
): Record<string, string> {
  if (value === undefined) return {};
  if (!isPlainObject(value)) throw invalid('"__metadata__" is not a JSON object');
  const metadata: Record<string, string> = {};
  for (const [key, entry] of Object.entries(value)) {
    if (typeof entry !== 'string') {
      throw invalid(
        `metadata entry '${key}' is a ${typeof entry}, but metadata values must ` + 'be strings',
      );
    }
    metadata[key] = entry;
  }
  return metadata;
}

function readTensorEntry(
  name: string,
  entry: unknown,
  dataSectionLength: number,
  invalid: (problem: string) => CheckpointError,
): { dtype: SafetensorsDtype; shape: number[]; begin: number; end: number } {
  if (!isPlainObject(entry)) throw invalid(`the entry for tensor '${name}' is not a JSON object`);

  const { dtype, shape, data_offsets: offsets } = entry;
  if (typeof dtype !== 'string' || !(dtype in BYTES_PER_ELEMENT)) {
    const kind =
      typeof dtype === 'string' && OTHER_SAFETENSORS_DTYPES.has(dtype)
        ? 'a dtype this program does not load (it reads F32, I32 and I64)'
        : 'not a known dtype (expected F32, I32 or I64)';
    throw invalid(`tensor '${name}' has dtype ${JSON.stringify(dtype)}, ${kind}`);
  }
  const knownDtype = dtype as SafetensorsDtype;

  if (!Array.isArray(shape) || !shape.every(isNonNegativeInteger)) {
    throw invalid(
      `tensor '${name}' has shape ${JSON.stringify(shape)}, which is not a list ` +
        'of non-negative integers',
    );
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isNonNegativeInteger)) {
    throw invalid(
      `tensor '${name}' has data_offsets ${JSON.stringify(offsets)}, expected ` +
        '[begin, end] with non-negative integers',
    );
  }

  const [begin, end] = offsets as [number, number];
  if (begin > end || end > dataSectionLength) {
    throw invalid(
      `tensor '${name}' has data_offsets [${begin}, ${end}], outside the ` +
        `${dataSectionLength} bytes of tensor data in the file (it may be truncated)`,
    );
  }
  const numericShape = shape as number[];
  const expectedBytes = product(numericShape) * BYTES_PER_ELEMENT[knownDtype];
  if (end - begin !== expectedBytes) {
    throw invalid(
      `tensor '${name}' (${knownDtype}, shape [${numericShape}]) needs ` +
        `${expectedBytes} bytes but its data_offsets span ${end - begin}`,
    );
  }
  return { dtype: knownDtype, shape: numericShape, begin, end };
}

/** Copies into a fresh buffer, because a slice of the file need not be aligned for the type. */
function copyTensorData(
  dataSection: Buffer,
  dtype: SafetensorsDtype,
  begin: number,
  end: number,
): TensorData {
  const count = (end - begin) / BYTES_PER_ELEMENT[dtype];
  const data =
    dtype === 'F32'
      ? new Float32Array(count)
      : dtype === 'I32'
        ? new Int32Array(count)
        : new BigInt64Array(count);
  new Uint8Array(data.buffer).set(dataSection.subarray(begin, end));
  return data;
}

/**
 * Returns tensor values as plain numbers. I64 values are converted exactly, and a value outside
 * the range a number holds exactly (±2^53) is an error rather than a silent rounding.
 */
export function tensorValuesAsNumbers(data: TensorData): number[] {
  if (!(data instanceof BigInt64Array)) return Array.from(data);
  return Array.from(data, (value) => {
    const asNumber = Number(value);
    if (!Number.isSafeInteger(asNumber)) {
      throw new CheckpointError(
        `The I64 value ${value} is beyond ±2^53, so it cannot be ` +
          'represented exactly as a JavaScript number.',
      );
    }
    return asNumber;
  });
}

function product(sizes: readonly number[]): number {
  return sizes.reduce((total, size) => total * size, 1);
}

function isNonNegativeInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describeFsError(error: unknown): string {
  if (error instanceof Error && 'code' in error && error.code === 'ENOENT') {
    return 'the file does not exist';
  }
  return error instanceof Error ? error.message : String(error);
}
