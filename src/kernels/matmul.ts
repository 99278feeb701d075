// Wrappers for shaders/matmul.wgsl: the matrix product, the packing of operands into the form
// it reads, and the bias gradient. Buffers and shapes only; temporaries come from the pool and
// go back to it before the function returns (queue order keeps that safe).
import { GpuError } from '../errors.ts';
import type { Gpu, PooledBuffer } from './gpu.ts';
import { grid1d, kernel } from './kernel.ts';

const FILE = 'matmul.wgsl';
/** Outputs per invocation along each axis, and invocations per workgroup (all in the shader). */
const BLOCK = 4;
const MATMUL_WORKGROUP = 8;
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

/** An NCHW tensor as the matrix [channels, batch * pixels] (the layout conv works in). */
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

/** The depth that the matmul kernel reads: rounded up to a whole number of vec4s. */
export function paddedDepth(depth: number): number {
  return Math.ceil(depth / BLOCK) * BLOCK;
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

export interface PackCall {
  source: PooledBuffer;
  /** Where element (row, column) of the view sits in `source`. */
  layout: MatrixLayout;
  rows: number;
  columns: number;
  /** Receives [rows, paddedDepth(columns)], zero beyond `columns`. */
  target: PooledBuffer;
  label: string;
}

/** Copies a strided view into the padded row-major form that `matmulPacked` reads. */
export function pack(gpu: Gpu, call: PackCall): void {
  const paddedColumns = paddedDepth(call.columns);
  // One workgroup spans part of one row: narrow rows get narrow workgroups, not idle lanes.
  const workgroupSize = paddedColumns >= 64 ? 64 : 8;
  const [rowGroupsY, rowGroupsZ] = foldedRows(call.rows);
  kernel(gpu, FILE, 'pack', { WORKGROUP_SIZE: workgroupSize }).dispatch({
    buffers: { source: call.source, packed: call.target },
    params: {
      rows: call.rows,
      columns: call.columns,
      paddedColumns,
      ...layoutParams(call.layout),
    },
    workgroups: [Math.ceil(paddedColumns / workgroupSize), rowGroupsY, rowGroupsZ],
    label: `pack ${call.label} [${call.rows},${call.columns}]`,
  });
}

/** Workgroups along y and z for one per row (or row block): y holds at most 65535. */
function foldedRows(count: number): [number, number] {
  const y = Math.min(count, MAX_WORKGROUPS);
  return [y, Math.ceil(count / MAX_WORKGROUPS)];
}

export interface PackedProduct {
  /** [rows, depth] padded to [rows, paddedDepth(depth)], as `pack` writes it. */
  a: PooledBuffer;
  /** [columns, depth] padded the same way: the second operand already transposed. */
  b: PooledBuffer;
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
 * out = A · Bᵀ (+ bias) on packed operands. The kernel spreads columns over the lanes of a
 * workgroup, so a product with few columns and many rows is computed as its transpose (the
 * output layout swaps with it): both orders give the same values.
 */
export function matmulPacked(gpu: Gpu, product: PackedProduct): void {
  const lanesPerWorkgroup = BLOCK * MATMUL_WORKGROUP;
  const call = product.columns < lanesPerWorkgroup && product.rows > product.columns
    ? transposedProduct(product)
    : product;
  const outLayout = call.outLayout ?? rowMajor(call.columns);

  const columnBlocks = Math.ceil(call.columns / lanesPerWorkgroup);
  const rowBlocks = Math.ceil(call.rows / BLOCK);
  if (columnBlocks > MAX_WORKGROUPS) {
    // Limitation: a product has at most 65535 * 32 columns (rows are unlimited).
    throw new GpuError(`${call.label}: ${call.columns} columns exceed the matmul kernel's limit`);
  }
  const [rowGroupsY, rowGroupsZ] = foldedRows(rowBlocks);

  kernel(gpu, FILE, 'matmul').dispatch({
    buffers: { a: call.a, b: call.b, bias: call.bias?.buffer ?? gpu.placeholder, out: call.out },
    params: {
      rows: call.rows,
      columns: call.columns,
      depth4: paddedDepth(call.depth) / BLOCK,
      biasMode: call.bias ? (call.bias.along === 'rows' ? 1 : 2) : 0,
      ...layoutParams(outLayout, 'out'),
    },
    workgroups: [columnBlocks, rowGroupsY, rowGroupsZ],
    label: `matmul ${call.label} [${call.rows}x${call.depth}]·[${call.depth}x${call.columns}]`,
  });
}

/** Bᵀ·Aᵀ written through the transposed output layout: the same result, rows and columns swapped. */
function transposedProduct(product: PackedProduct): PackedProduct {
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

/** out = op(A) · op(B) (+ bias) for row-major matrices; packs whichever operand needs it. */
export function matmul(gpu: Gpu, call: MatmulCall): void {
  const { m, n, k } = call;
  const packedA = operand(gpu, call.a, m, k, call.transposeA ? transposedOf(m) : rowMajor(k), 'A');
  // The kernel wants B as [n, k]: that is B itself when transposed, else its transpose.
  const packedB = operand(gpu, call.b, n, k, call.transposeB ? rowMajor(k) : transposedOf(n), 'B');
  matmulPacked(gpu, {
    a: packedA.buffer,
    b: packedB.buffer,
    rows: m,
    columns: n,
    depth: k,
    out: call.out,
    bias: call.bias,
    label: call.label,
  });
  packedA.release();
  packedB.release();
}

/**
 * A [rows, depth] operand in packed form: the buffer itself when it is already row-major with a
 * depth that is a multiple of 4, otherwise a pooled copy that `release` returns.
 */
export function operand(
  gpu: Gpu,
  source: PooledBuffer,
  rows: number,
  depth: number,
  layout: MatrixLayout,
  name: string,
): { buffer: PooledBuffer; release: () => void } {
  const isPacked =
    layout.columnStride === 1 &&
    layout.rowStride === depth &&
    layout.rowGroup === undefined &&
    layout.columnGroup === undefined &&
    depth % BLOCK === 0;
  if (isPacked) return { buffer: source, release: () => {} };

  const target = gpu.pool.acquire(rows * paddedDepth(depth) * 4, `packed ${name}`);
  pack(gpu, { source, layout, rows, columns: depth, target, label: name });
  return { buffer: target, release: () => gpu.pool.release(target) };
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
