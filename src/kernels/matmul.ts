// Wrappers for shaders/matmul.wgsl: the matrix product, the packing of its first operand, and
// the bias gradient. Buffers and shapes only; temporaries come from the pool and go back to it
// before the function returns (queue order keeps that safe).
import { GpuError } from '../errors.ts';
import type { Gpu, PooledBuffer } from './gpu.ts';
import { grid1d, kernel } from './kernel.ts';

const FILE = 'matmul.wgsl';
/** Packed rows are padded with zeros to whole vec4s. */
const VEC4 = 4;
/** A workgroup computes 16 rows x 64 columns: 8 invocations of 8 columns each. */
const ROWS_PER_WORKGROUP = 16;
const COLUMNS_PER_WORKGROUP = 64;
/** A reaches the kernel 64 KiB at a time, through a uniform binding of exactly that size. */
const CHUNK_BYTES = 65536;
const CHUNK_VEC4S = CHUNK_BYTES / 16;
/** The longest share of the depth for which a workgroup's 16 rows of A fit in a chunk. */
const MAX_SHARE_DEPTH = (CHUNK_VEC4S / ROWS_PER_WORKGROUP) * VEC4;
/**
 * Below this many values between splits of B's depth, B is packed instead (see multiply).
 * Measured: for 14x14 images (shares of 196) packing B once beat a pack of A and a dispatch
 * per share; for 16x16 images (256) the pack cost more than it saved (conv filter gradient
 * 32x32x3 -> 64: 28 ms packed, 19 ms not).
 */
const MIN_SHARE_DEPTH = 256;
const MAX_WORKGROUPS = 65535;
/** A group size larger than any index: the index is never split. */
const UNSPLIT = 0xffffffff;

/**
 * Where element (row, column) of a logical matrix lives in a flat buffer. An index may be split
 * in two: row r sits at (r / rowGroup) * rowGroupStride + (r % rowGroup) * rowStride, and the
 * same for columns. That describes transposes and NCHW tensors seen as matrices alike.
 */
export interface MatrixLayout {
  rowStride: number;
  columnStride: number;
  rowGroup?: number;
  rowGroupStride?: number;
  columnGroup?: number;
  columnGroupStride?: number;
}

/** A plain [rows, columns] matrix. */
export function rowMajor(columns: number): MatrixLayout {
  return { rowStride: columns, columnStride: 1 };
}

/** The transpose of a stored [columns, rows] matrix. */
export function transposedOf(rows: number): MatrixLayout {
  return { rowStride: 1, columnStride: rows };
}

/** An NCHW tensor as the matrix [channels, batch * pixels]. */
export function channelsByPixels(channels: number, pixels: number): MatrixLayout {
  return {
    rowStride: pixels,
    columnStride: 1,
    columnGroup: pixels,
    columnGroupStride: channels * pixels,
  };
}

/** An NCHW tensor as the matrix [batch * pixels, channels]. */
export function pixelsByChannels(channels: number, pixels: number): MatrixLayout {
  return transposedLayout(channelsByPixels(channels, pixels));
}

/** The same elements seen with rows and columns exchanged. */
function transposedLayout(layout: MatrixLayout): MatrixLayout {
  return {
    rowStride: layout.columnStride,
    rowGroup: layout.columnGroup,
    rowGroupStride: layout.columnGroupStride,
    columnStride: layout.rowStride,
    columnGroup: layout.rowGroup,
    columnGroupStride: layout.rowGroupStride,
  };
}

/** A layout as shader parameters: `rowStride`, ... or, with a prefix, `outRowStride`, ... */
function layoutParams(layout: MatrixLayout, prefix = ''): Record<string, number> {
  const fields: Record<string, number> = {
    rowStride: layout.rowStride,
    rowGroup: layout.rowGroup ?? UNSPLIT,
    rowGroupStride: layout.rowGroupStride ?? 0,
    columnStride: layout.columnStride,
    columnGroup: layout.columnGroup ?? UNSPLIT,
    columnGroupStride: layout.columnGroupStride ?? 0,
  };
  if (!prefix) return fields;
  const prefixed: Record<string, number> = {};
  for (const [name, value] of Object.entries(fields)) {
    prefixed[prefix + name[0].toUpperCase() + name.slice(1)] = value;
  }
  return prefixed;
}

/** The depth that packed rows hold: rounded up to a whole number of vec4s. */
export function paddedDepth(depth: number): number {
  return Math.ceil(depth / VEC4) * VEC4;
}

export interface PackCall {
  source: PooledBuffer;
  /** Where element (row, column) of the view sits in `source`. */
  layout: MatrixLayout;
  rows: number;
  /** Columns firstColumn .. firstColumn + columns of the view are copied. */
  columns: number;
  firstColumn?: number;
  /** Receives [rows, paddedDepth(columns)], zero beyond `columns`. */
  target: PooledBuffer;
  label: string;
}

/** Copies a view of a buffer into packed form: row-major, rows padded to whole vec4s. */
export function pack(gpu: Gpu, call: PackCall): void {
  const paddedColumns = paddedDepth(call.columns);
  // One workgroup spans part of one row: narrow rows get narrow workgroups, not idle lanes.
  const workgroupSize = paddedColumns >= 64 ? 64 : 8;
  const rowGroupsY = Math.min(call.rows, MAX_WORKGROUPS);
  const rowGroupsZ = Math.ceil(call.rows / MAX_WORKGROUPS);
  kernel(gpu, FILE, 'pack', { WORKGROUP_SIZE: workgroupSize }).dispatch({
    buffers: { source: call.source, packed: call.target },
    params: {
      rows: call.rows,
      columns: call.columns,
      paddedColumns,
      firstColumn: call.firstColumn ?? 0,
      ...layoutParams(call.layout),
    },
    workgroups: [Math.ceil(paddedColumns / workgroupSize), rowGroupsY, rowGroupsZ],
    label: `pack ${call.label} [${call.rows},${call.columns}]`,
  });
}

/** A matrix operand: a buffer and where each element of the logical matrix sits in it. */
export interface Operand {
  buffer: PooledBuffer;
  layout: MatrixLayout;
}

export interface Product {
  /** [rows, depth]. */
  a: Operand;
  /** [columns, depth]: the second factor, transposed. */
  b: Operand;
  rows: number;
  columns: number;
  depth: number;
  out: PooledBuffer;
  /** Where result element (row, column) goes; row-major [rows, columns] when omitted. */
  outLayout?: MatrixLayout;
  /** A bias added to every element of a row (`along: 'rows'`) or of a column. */
  bias?: { buffer: PooledBuffer; along: 'rows' | 'columns' };
  label: string;
}

/**
 * out = A · Bᵀ (+ bias), for operands in any layout.
 *
 * A reaches the kernel packed, through a 64 KiB uniform binding: its rows go in chunks, one
 * dispatch each, and a depth too long for a workgroup's rows to fit in a chunk is cut into
 * shares whose products are added up in `out`, in order (the result does not depend on
 * timing). B is read in place; where its depth index is split (pixels of an NCHW tensor, by
 * image), shares end at the splits so that within each one B's depth has a fixed stride.
 * The kernel spreads columns over the lanes of a workgroup and takes rows a chunk at a time,
 * so a product with more rows than columns is computed as its transpose (the output layout
 * swaps with it): a generator's first layer, [6272 x 100] · [100 x 64], took 40 dispatches
 * and a pack of its weight that way round, and 1 dispatch the other.
 */
export function multiply(gpu: Gpu, product: Product): void {
  const swap = product.rows > product.columns;
  const call = swap ? transposedProduct(product) : product;
  const { rows, columns, depth } = call;
  if (rows === 0 || columns === 0) return;
  if (gpu.device.limits.maxUniformBufferBindingSize < CHUNK_BYTES) {
    // Limitation: the matmul kernel needs 64 KiB uniform bindings (WebGPU's default limit, which
    // some compatibility-mode adapters do not reach).
    throw new GpuError(`${call.label}: the device's uniform bindings are smaller than 64 KiB`);
  }
  const columnGroups = Math.ceil(columns / COLUMNS_PER_WORKGROUP);
  if (columnGroups > MAX_WORKGROUPS) {
    // Limitation: a product has at most 65535 * 64 columns (rows are unlimited).
    throw new GpuError(`${call.label}: ${columns} columns exceed the matmul kernel's limit`);
  }

  // Short runs between splits would make many small dispatches: packing B is cheaper then.
  const depthGroup = call.b.layout.columnGroup;
  const packedB =
    depthGroup !== undefined && depthGroup < MIN_SHARE_DEPTH && depthGroup < depth
      ? packed(gpu, call.b, columns, depth)
      : null;
  const b = packedB ?? call.b;
  const shares = depthShares(depth, b.layout.columnGroup ?? Infinity);
  const label = `matmul ${call.label} [${rows}x${depth}]·[${depth}x${columns}]`;

  shares.forEach((share, shareIndex) => {
    const steps = paddedDepth(share.length) / VEC4;
    const rowsPerChunk =
      steps === 0
        ? Math.ceil(rows / ROWS_PER_WORKGROUP) * ROWS_PER_WORKGROUP
        : Math.floor(CHUNK_VEC4S / steps / ROWS_PER_WORKGROUP) * ROWS_PER_WORKGROUP;
    const a = packedShare(gpu, call, share, rowsPerChunk);
    // Where the share starts in B: a fixed offset added to every column.
    const { columnGroup, columnGroupStride = 0, columnStride } = b.layout;
    const bOffset =
      columnGroup === undefined
        ? share.start * columnStride
        : Math.floor(share.start / columnGroup) * columnGroupStride +
          (share.start % columnGroup) * columnStride;

    for (let chunkFirstRow = 0; chunkFirstRow < rows; chunkFirstRow += rowsPerChunk) {
      const chunkRows = Math.min(rowsPerChunk, rows - chunkFirstRow);
      kernel(gpu, FILE, 'matmul').dispatch({
        buffers: {
          aChunk: { pooled: a.buffer, offset: chunkFirstRow * steps * 16, size: CHUNK_BYTES },
          b: b.buffer,
          bias: call.bias?.buffer ?? gpu.placeholder,
          out: call.out,
        },
        params: {
          rows,
          columns,
          chunkFirstRow,
          chunkRows,
          shareDepth: share.length,
          steps,
          bOffset,
          bColumnStride: b.layout.rowStride,
          bColumnGroup: b.layout.rowGroup ?? UNSPLIT,
          bColumnGroupStride: b.layout.rowGroupStride ?? 0,
          bDepthStride: b.layout.columnStride,
          accumulate: shareIndex > 0 ? 1 : 0,
          biasMode: call.bias && shareIndex === 0 ? (call.bias.along === 'rows' ? 1 : 2) : 0,
          ...layoutParams(call.outLayout ?? rowMajor(columns), 'out'),
        },
        workgroups: [columnGroups, Math.ceil(chunkRows / ROWS_PER_WORKGROUP)],
        label: shares.length > 1 ? `${label} share ${shareIndex + 1}/${shares.length}` : label,
      });
    }
    a.release();
  });
  packedB?.release();
}

interface Share {
  start: number;
  length: number;
}

/** Cuts the depth into shares of at most MAX_SHARE_DEPTH that never cross a multiple of `group`. */
function depthShares(depth: number, group: number): Share[] {
  if (depth === 0) return [{ start: 0, length: 0 }];
  const shares: Share[] = [];
  for (let groupStart = 0; groupStart < depth; groupStart += group) {
    const groupEnd = Math.min(depth, groupStart + group);
    for (let start = groupStart; start < groupEnd; start += MAX_SHARE_DEPTH) {
      shares.push({ start, length: Math.min(MAX_SHARE_DEPTH, groupEnd - start) });
    }
  }
  return shares;
}

/** An operand copied into packed form in a pooled buffer, with `release` to return it. */
function packed(
  gpu: Gpu,
  operand: Operand,
  rows: number,
  depth: number,
): Operand & { release: () => void } {
  const target = gpu.pool.acquire(rows * paddedDepth(depth) * 4, 'packed operand');
  const { buffer: source, layout } = operand;
  pack(gpu, { source, layout, rows, columns: depth, target, label: 'B' });
  return {
    buffer: target,
    layout: rowMajor(paddedDepth(depth)),
    release: () => gpu.pool.release(target),
  };
}

/**
 * The rows of A restricted to one share of the depth, packed, in a buffer long enough for a
 * full 64 KiB binding at its last chunk. That is A itself when A is already so; otherwise a
 * pooled copy that `release` returns.
 */
function packedShare(
  gpu: Gpu,
  call: Product,
  share: Share,
  rowsPerChunk: number,
): { buffer: PooledBuffer; release: () => void } {
  const rows = call.rows;
  const rowBytes = paddedDepth(share.length) * 4;
  const lastChunkRow = Math.floor((rows - 1) / rowsPerChunk) * rowsPerChunk;
  const neededBytes = Math.max(rows * rowBytes, lastChunkRow * rowBytes + CHUNK_BYTES);
  const layout = call.a.layout;
  const isPacked =
    share.length === call.depth &&
    share.length % VEC4 === 0 &&
    layout.columnStride === 1 &&
    layout.rowStride === share.length &&
    layout.rowGroup === undefined &&
    layout.columnGroup === undefined;
  if (isPacked && call.a.buffer.size >= neededBytes) {
    return { buffer: call.a.buffer, release: () => {} };
  }

  const target = gpu.pool.acquire(neededBytes, 'matmul A');
  pack(gpu, {
    source: call.a.buffer,
    layout,
    rows,
    columns: share.length,
    firstColumn: share.start,
    target,
    label: 'A',
  });
  return { buffer: target, release: () => gpu.pool.release(target) };
}

/** Bᵀ·Aᵀ written through the transposed output layout: the same result, axes swapped. */
function transposedProduct(product: Product): Product {
  const along = product.bias?.along === 'rows' ? 'columns' : 'rows';
  return {
    ...product,
    a: product.b,
    b: product.a,
    rows: product.columns,
    columns: product.rows,
    outLayout: transposedLayout(product.outLayout ?? rowMajor(product.columns)),
    bias: product.bias && { buffer: product.bias.buffer, along },
  };
}

export interface MatmulCall {
  a: PooledBuffer;
  b: PooledBuffer;
  out: PooledBuffer;
  /** out is [m, n]; op(A) is [m, k] and op(B) is [k, n]. */
  m: number;
  n: number;
  k: number;
  /** A is stored [k, m] rather than [m, k]. */
  transposeA?: boolean;
  /** B is stored [n, k] rather than [k, n]. */
  transposeB?: boolean;
  bias?: { buffer: PooledBuffer; along: 'rows' | 'columns' };
  label: string;
}

/** out = op(A) · op(B) (+ bias) for row-major matrices; a transpose is a change of strides. */
export function matmul(gpu: Gpu, call: MatmulCall): void {
  const { m, n, k } = call;
  multiply(gpu, {
    a: { buffer: call.a, layout: call.transposeA ? transposedOf(m) : rowMajor(k) },
    // The kernel wants B as [n, k]: B itself when transposed, else its transpose.
    b: { buffer: call.b, layout: call.transposeB ? rowMajor(k) : transposedOf(n) },
    rows: m,
    columns: n,
    depth: k,
    out: call.out,
    bias: call.bias,
    label: call.label,
  });
}

export interface BiasGradientCall {
  /** Viewed as [outer, channels, inner]: [batch, channels, pixels] or [batch, features, 1]. */
  gradOutput: PooledBuffer;
  outer: number;
  channels: number;
  inner: number;
  /** Receives [channels]. */
  gradBias: PooledBuffer;
  label: string;
}

/** gradBias[c] = sum of gradOutput over everything but the channel axis. */
export function biasGradient(gpu: Gpu, call: BiasGradientCall): void {
  kernel(gpu, FILE, 'bias_gradient').dispatch({
    buffers: { gradOutput: call.gradOutput, gradBias: call.gradBias },
    params: { outer: call.outer, channels: call.channels, inner: call.inner },
    workgroups: grid1d(call.channels, 1),
    label: `bias gradient ${call.label} [${call.outer},${call.channels},${call.inner}]`,
  });
}
