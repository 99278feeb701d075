import * as fs from 'node:fs';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { CheckpointError } from '../src/errors.ts';
import {
  readSafetensors,
  tensorValuesAsNumbers,
  writeSafetensors,
  type NamedTensor,
} from '../src/train/safetensors.ts';

// renameSync is wrapped so a test can make it fail, standing in for a crash between writing
// the temporary file and moving it into place.
vi.mock('node:fs', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:fs')>();
  return { ...actual, renameSync: vi.fn(actual.renameSync) };
});

let folder: string;

beforeEach(() => {
  folder = mkdtempSync(join(tmpdir(), 'shadergan-safetensors-'));
});

afterEach(() => {
  rmSync(folder, { recursive: true, force: true });
});

const sampleTensors: NamedTensor[] = [
  { name: 'conv.weight', dtype: 'F32', shape: [2, 3], data: Float32Array.of(0, 1, 2, 3, 4, -5.5) },
  { name: 'step', dtype: 'I64', shape: [], data: BigInt64Array.of(123456789012n) },
  { name: 'labels', dtype: 'I32', shape: [3], data: Int32Array.of(-1, 0, 7) },
  { name: 'empty', dtype: 'F32', shape: [0, 4], data: new Float32Array(0) },
];

/** Builds a file by hand, so each corruption can be exactly the one a test is about. */
function handMadeFile(header: unknown, data: Uint8Array = new Uint8Array(0)): Buffer {
  const json = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header));
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(json.byteLength));
  return Buffer.concat([prefix, json, data]);
}

function expectInvalid(bytes: Uint8Array, problem: RegExp): void {
  const path = join(folder, 'broken.safetensors');
  writeFileSync(path, bytes);
  expect(() => readSafetensors(path)).toThrow(CheckpointError);
  expect(() => readSafetensors(path)).toThrow(`${path} is not a valid checkpoint: `);
  expect(() => readSafetensors(path)).toThrow(problem);
}

describe('writeSafetensors and readSafetensors', () => {
  it('round-trips F32, I32 and I64 tensors with metadata', () => {
    const path = join(folder, 'model.safetensors');
    writeSafetensors(path, sampleTensors, { format: 'shadergan', epoch: '3' });

    const { tensors, metadata } = readSafetensors(path);
    expect(metadata).toEqual({ format: 'shadergan', epoch: '3' });
    expect([...tensors.keys()]).toEqual(sampleTensors.map((tensor) => tensor.name));
    for (const written of sampleTensors) {
      const read = tensors.get(written.name);
      expect(read?.dtype).toBe(written.dtype);
      expect(read?.shape).toEqual(written.shape);
      expect(read?.data).toEqual(written.data);
    }
    expect(tensorValuesAsNumbers(tensors.get('step')?.data ?? new Int32Array())).toEqual([
      123456789012,
    ]);
  });

  it('writes a header padded to a multiple of 8 with spaces', () => {
    const path = join(folder, 'model.safetensors');
    writeSafetensors(path, sampleTensors.slice(0, 1), {});
    const bytes = readFileSync(path);
    const headerLength = Number(bytes.readBigUInt64LE(0));
    expect(headerLength % 8).toBe(0);
    const header = bytes.subarray(8, 8 + headerLength).toString('utf8');
    expect(header).toMatch(/^\{.*\} *$/);
    expect(JSON.parse(header)).toEqual({
      'conv.weight': { dtype: 'F32', shape: [2, 3], data_offsets: [0, 24] },
    });
    expect(bytes.byteLength).toBe(8 + headerLength + 24);
  });

  it('copies a tensor that is a view into a larger buffer', () => {
    const path = join(folder, 'view.safetensors');
    const backing = Float32Array.of(9, 9, 1, 2, 9);
    writeSafetensors(path, [{ name: 'w', dtype: 'F32', shape: [2], data: backing.subarray(2, 4) }]);
    expect(readSafetensors(path).tensors.get('w')?.data).toEqual(Float32Array.of(1, 2));
  });

  it.each([
    {
      problem: 'data that does not match the shape',
      tensor: { name: 'w', dtype: 'F32', shape: [4], data: new Float32Array(3) },
      message: /shape \[4\] \(4 values\) but its data holds 3/,
    },
    {
      problem: 'data of another type than the dtype',
      tensor: { name: 'w', dtype: 'I32', shape: [2], data: new Float32Array(2) },
      message: /declared I32 but holds a Float32Array/,
    },
    {
      problem: 'the reserved metadata name',
      tensor: { name: '__metadata__', dtype: 'F32', shape: [1], data: new Float32Array(1) },
      message: /'__metadata__' is not allowed/,
    },
  ] satisfies Array<{ problem: string; tensor: NamedTensor; message: RegExp }>)(
    'refuses to write $problem',
    ({ tensor, message }) => {
      const path = join(folder, 'refused.safetensors');
      expect(() => writeSafetensors(path, [tensor])).toThrow(message);
      expect(existsSync(path)).toBe(false);
    },
  );

  it('refuses duplicate tensor names', () => {
    const twice = [sampleTensors[0], sampleTensors[0]];
    expect(() => writeSafetensors(join(folder, 'x'), twice)).toThrow(/appears twice/);
  });
});

describe('a crash while writing', () => {
  it('leaves the previous checkpoint intact and no temporary file behind', () => {
    const path = join(folder, 'model.safetensors');
    writeSafetensors(path, sampleTensors, { epoch: '1' });
    const before = readFileSync(path);

    vi.mocked(fs.renameSync).mockImplementationOnce(() => {
      throw new Error('simulated crash before the rename');
    });
    const replacement = [{ ...sampleTensors[0], data: Float32Array.of(6, 6, 6, 6, 6, 6) }];
    expect(() => writeSafetensors(path, replacement, { epoch: '2' })).toThrow('simulated crash');

    expect(readFileSync(path).equals(before)).toBe(true);
    expect(readSafetensors(path).metadata).toEqual({ epoch: '1' });
    expect(readdirSync(folder)).toEqual(['model.safetensors']);
  });

  it('only creates the final file by renaming the fully written temporary one', () => {
    const path = join(folder, 'fresh.safetensors');
    const temporaryPath = `${path}.tmp-${process.pid}`;
    let seenAtRename: { temporaryExists: boolean; finalExists: boolean } | undefined;
    vi.mocked(fs.renameSync).mockImplementationOnce((from, to) => {
      seenAtRename = { temporaryExists: existsSync(temporaryPath), finalExists: existsSync(path) };
      expect(from).toBe(temporaryPath);
      expect(to).toBe(path);
      // The temporary file must already hold the complete, readable checkpoint.
      expect(readSafetensors(temporaryPath).tensors.size).toBe(sampleTensors.length);
      fs.writeFileSync(path, fs.readFileSync(temporaryPath));
      fs.unlinkSync(temporaryPath);
    });

    writeSafetensors(path, sampleTensors, {});
    expect(seenAtRename).toEqual({ temporaryExists: true, finalExists: false });
    expect(readSafetensors(path).tensors.size).toBe(sampleTensors.length);
  });
});

describe('readSafetensors rejects', () => {
  const validEntry = { dtype: 'F32', shape: [2], data_offsets: [0, 8] };
  const eightBytes = new Uint8Array(8);

  it('a missing file, naming it', () => {
    const path = join(folder, 'absent.safetensors');
    expect(() => readSafetensors(path)).toThrow(
      `Cannot read checkpoint ${path}: the file does not exist.`,
    );
  });

  it('a file shorter than 8 bytes', () => {
    expectInvalid(Buffer.from([1, 2, 3]), /3 bytes long, shorter than the 8-byte header length/);
  });

  it('a header length beyond the end of the file', () => {
    const bytes = handMadeFile({ w: validEntry }, eightBytes);
    bytes.writeBigUInt64LE(10_000n, 0);
    expectInvalid(bytes, /header claims 10000 bytes but only \d+ bytes follow/);
  });

  it('a header length too large for any file', () => {
    const bytes = Buffer.alloc(16);
    bytes.writeBigUInt64LE(2n ** 64n - 1n, 0);
    expectInvalid(bytes, /header claims 18446744073709551615 bytes/);
  });

  it('a header that is not JSON', () => {
    expectInvalid(handMadeFile('{"w": {"dtype": '), /header is not valid UTF-8 JSON/);
  });

  it('a header that is JSON but not an object', () => {
    expectInvalid(handMadeFile('[1, 2, 3]'), /header is not a JSON object/);
  });

  it('metadata that is not all strings', () => {
    expectInvalid(handMadeFile({ __metadata__: { epoch: 3 } }), /'epoch' is a number/);
  });

  it('an unknown dtype', () => {
    expectInvalid(
      handMadeFile({ w: { ...validEntry, dtype: 'Q7' } }, eightBytes),
      /tensor 'w' has dtype "Q7", not a known dtype/,
    );
  });

  it('a safetensors dtype this program does not load', () => {
    expectInvalid(
      handMadeFile({ w: { ...validEntry, dtype: 'F16' } }, eightBytes),
      /dtype "F16", a dtype this program does not load/,
    );
  });

  it('a malformed shape', () => {
    expectInvalid(
      handMadeFile({ w: { ...validEntry, shape: [2.5] } }, eightBytes),
      /shape \[2.5\], which is not a list of non-negative integers/,
    );
  });

  it('malformed data_offsets', () => {
    expectInvalid(
      handMadeFile({ w: { ...validEntry, data_offsets: [0] } }, eightBytes),
      /data_offsets \[0\], expected \[begin, end\]/,
    );
  });

  it('offsets past the end of the data', () => {
    expectInvalid(
      handMadeFile({ w: { ...validEntry, data_offsets: [8, 16] } }, eightBytes),
      /data_offsets \[8, 16\], outside the 8 bytes of tensor data/,
    );
  });

  it('offsets that run backwards', () => {
    expectInvalid(
      handMadeFile({ w: { ...validEntry, data_offsets: [8, 0] } }, eightBytes),
      /data_offsets \[8, 0\]/,
    );
  });

  it('offsets whose span does not match shape and dtype', () => {
    const entry = { dtype: 'I64', shape: [2], data_offsets: [0, 8] };
    expectInvalid(
      handMadeFile({ w: entry }, eightBytes),
      /tensor 'w' \(I64, shape \[2\]\) needs 16 bytes but its data_offsets span 8/,
    );
  });

  it('overlapping tensors', () => {
    const header = {
      first: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
      second: { dtype: 'F32', shape: [2], data_offsets: [4, 12] },
    };
    expectInvalid(handMadeFile(header, new Uint8Array(12)), /tensors 'first' and 'second' overlap/);
  });
});

describe('tensorValuesAsNumbers', () => {
  it('refuses I64 values a number cannot hold exactly', () => {
    expect(() => tensorValuesAsNumbers(BigInt64Array.of(2n ** 60n))).toThrow(CheckpointError);
    expect(tensorValuesAsNumbers(BigInt64Array.of(-(2n ** 52n)))).toEqual([-(2 ** 52)]);
  });
});
