// Matrix multiplication and the two small kernels around it.
//
//   matmul          out = A · Bᵀ (+ bias) for A [rows, depth] and B [columns, depth]. A arrives
//                   packed (row-major, depth padded with zeros to whole vec4s) through a
//                   uniform binding; B is read in place from any layout with a fixed depth stride.
//   pack            copies any 2-D view of a buffer into that packed form.
//   bias_gradient   per-channel sums of a gradient, the backward rule of every bias add.
//
// A "layout" says where element (row, column) of a logical matrix lives in a flat buffer:
// at split(row, rowGroup, rowGroupStride, rowStride) + split(column, ...), where split(index,
// group, groupStride, stride) = (index / group) * groupStride + (index % group) * stride.
// A plain matrix never splits (its groups are 0xffffffff); an NCHW tensor seen as
// [channels, batch * pixels] splits its column index into (image, pixel). Transposes are just
// exchanged strides.

fn split(index: u32, group: u32, groupStride: u32, stride: u32) -> u32 {
  if (group == 0xffffffffu) { return index * stride; } // two integer divisions saved
  return (index / group) * groupStride + (index % group) * stride;
}

// ---- matmul ------------------------------------------------------------------------------

struct MatmulParams {
  // The whole product is [rows, columns]; one dispatch computes the rows held in `aChunk`.
  rows: u32,
  columns: u32,
  chunkFirstRow: u32,
  chunkRows: u32,
  // The share of the depth this dispatch covers, in values and in vec4 steps: aChunk holds
  // just that share of its rows (zero padded), and B the values from bOffset on.
  shareDepth: u32,
  steps: u32,
  // B element (column, depthIndex) of the share is at
  // b[bOffset + split(column, ...) + depthIndex * bDepthStride].
  bOffset: u32,
  bColumnStride: u32,
  bColumnGroup: u32,
  bColumnGroupStride: u32,
  bDepthStride: u32,
  // 1: add to what `out` holds (every share after the first); 0: overwrite.
  accumulate: u32,
  // 0: no bias; 1: bias[row] is added to every element of a row; 2: bias[column].
  biasMode: u32,
  outRowStride: u32,
  outRowGroup: u32,
  outRowGroupStride: u32,
  outColumnStride: u32,
  outColumnGroup: u32,
  outColumnGroupStride: u32,
}

// 64 KiB, the largest uniform binding that WebGPU guarantees.
const CHUNK_VEC4S = 4096u;

@group(0) @binding(0) var<uniform> params: MatmulParams;
@group(0) @binding(1) var<uniform> aChunk: array<vec4f, CHUNK_VEC4S>; // [chunkRows, steps]
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

// Four depth steps of one column of B. Past the depth it reads the last value again: A is zero
// there, and a finite value times zero adds nothing.
fn bColumn(columnOffset: u32, depthOffsets: vec4u) -> vec4f {
  return vec4f(
    b[columnOffset + depthOffsets.x],
    b[columnOffset + depthOffsets.y],
    b[columnOffset + depthOffsets.z],
    b[columnOffset + depthOffsets.w],
  );
}

// Eight columns of B at four depth steps, and one row of A times them.
struct Columns {
  c0: vec4f, c1: vec4f, c2: vec4f, c3: vec4f,
  c4: vec4f, c5: vec4f, c6: vec4f, c7: vec4f,
}

fn rowTimes(a: vec4f, b: Columns) -> mat2x4f {
  return mat2x4f(
    vec4f(dot(a, b.c0), dot(a, b.c1), dot(a, b.c2), dot(a, b.c3)),
    vec4f(dot(a, b.c4), dot(a, b.c5), dot(a, b.c6), dot(a, b.c7)),
  );
}

// Each invocation computes a 16 x 8 block of `out`; the 8 invocations of a workgroup share
// their 16 rows and take consecutive 8-column blocks.
//
// Why this shape (measured on llvmpipe, where an invocation is one lane of a CPU SIMD register
// and every storage-buffer load inside a loop is a scalar load with a bounds check per lane):
// A is read through a uniform binding at addresses that depend only on the workgroup, which
// llvmpipe turns into one load broadcast to all lanes; from a storage buffer the same read
// costs one load per lane. B must be read per lane anyway, so it may as well be read in place
// with any stride (a vec4 load is four scalar loads there too), and each value of B serves
// 16 rows. The 128 sums live in named mat2x4f accumulators (dynamic indexing would spill them
// to memory); the workgroup size equals the SIMD width (8). For 1024^3 on two cores this ran at
// about 30 GFLOP/s of CPU time, against 14 for 4x4 blocks with A in a storage buffer and 3.3
// for workgroup-memory tiling, the usual choice on real GPUs.
@compute @workgroup_size(8)
fn matmul(@builtin(workgroup_id) group: vec3u, @builtin(local_invocation_id) local: vec3u) {
  let p = params;
  let firstLocalRow = group.y * 16u;
  if (firstLocalRow >= p.chunkRows) { return; }
  let firstColumn = (group.x * 8u + local.x) * 8u;

  // Rows and columns past the end read the last valid one and are not stored: clamping keeps
  // every lane on the same instructions, and no early return makes A's address lane-dependent.
  let steps = p.steps;
  let lastRow = p.chunkRows - 1u;
  let a0 = min(firstLocalRow, lastRow) * steps;
  let a1 = min(firstLocalRow + 1u, lastRow) * steps;
  let a2 = min(firstLocalRow + 2u, lastRow) * steps;
  let a3 = min(firstLocalRow + 3u, lastRow) * steps;
  let a4 = min(firstLocalRow + 4u, lastRow) * steps;
  let a5 = min(firstLocalRow + 5u, lastRow) * steps;
  let a6 = min(firstLocalRow + 6u, lastRow) * steps;
  let a7 = min(firstLocalRow + 7u, lastRow) * steps;
  let a8 = min(firstLocalRow + 8u, lastRow) * steps;
  let a9 = min(firstLocalRow + 9u, lastRow) * steps;
  let a10 = min(firstLocalRow + 10u, lastRow) * steps;
  let a11 = min(firstLocalRow + 11u, lastRow) * steps;
  let a12 = min(firstLocalRow + 12u, lastRow) * steps;
  let a13 = min(firstLocalRow + 13u, lastRow) * steps;
  let a14 = min(firstLocalRow + 14u, lastRow) * steps;
  let a15 = min(firstLocalRow + 15u, lastRow) * steps;

  let lastColumn = p.columns - 1u;
  let b0 = bColumnOffset(min(firstColumn, lastColumn));
  let b1 = bColumnOffset(min(firstColumn + 1u, lastColumn));
  let b2 = bColumnOffset(min(firstColumn + 2u, lastColumn));
  let b3 = bColumnOffset(min(firstColumn + 3u, lastColumn));
  let b4 = bColumnOffset(min(firstColumn + 4u, lastColumn));
  let b5 = bColumnOffset(min(firstColumn + 5u, lastColumn));
  let b6 = bColumnOffset(min(firstColumn + 6u, lastColumn));
  let b7 = bColumnOffset(min(firstColumn + 7u, lastColumn));

  // sumN holds row firstLocalRow + N: columns 0-3 of the block in its first vec4, 4-7 in its
  // second.
  var sum0 = mat2x4f();
  var sum1 = mat2x4f();
  var sum2 = mat2x4f();
  var sum3 = mat2x4f();
  var sum4 = mat2x4f();
  var sum5 = mat2x4f();
  var sum6 = mat2x4f();
  var sum7 = mat2x4f();
  var sum8 = mat2x4f();
  var sum9 = mat2x4f();
  var sum10 = mat2x4f();
  var sum11 = mat2x4f();
  var sum12 = mat2x4f();
  var sum13 = mat2x4f();
  var sum14 = mat2x4f();
  var sum15 = mat2x4f();
  let lastDepth = p.shareDepth - 1u;
  for (var step = 0u; step < steps; step += 1u) {
    let depthIndex = step * 4u + vec4u(0u, 1u, 2u, 3u);
    let depthOffsets = min(depthIndex, vec4u(lastDepth)) * p.bDepthStride;
    let columns = Columns(
      bColumn(b0, depthOffsets), bColumn(b1, depthOffsets),
      bColumn(b2, depthOffsets), bColumn(b3, depthOffsets),
      bColumn(b4, depthOffsets), bColumn(b5, depthOffsets),
      bColumn(b6, depthOffsets), bColumn(b7, depthOffsets),
    );
    sum0 += rowTimes(aChunk[a0 + step], columns);
    sum1 += rowTimes(aChunk[a1 + step], columns);
    sum2 += rowTimes(aChunk[a2 + step], columns);
    sum3 += rowTimes(aChunk[a3 + step], columns);
    sum4 += rowTimes(aChunk[a4 + step], columns);
    sum5 += rowTimes(aChunk[a5 + step], columns);
    sum6 += rowTimes(aChunk[a6 + step], columns);
    sum7 += rowTimes(aChunk[a7 + step], columns);
    sum8 += rowTimes(aChunk[a8 + step], columns);
    sum9 += rowTimes(aChunk[a9 + step], columns);
    sum10 += rowTimes(aChunk[a10 + step], columns);
    sum11 += rowTimes(aChunk[a11 + step], columns);
    sum12 += rowTimes(aChunk[a12 + step], columns);
    sum13 += rowTimes(aChunk[a13 + step], columns);
    sum14 += rowTimes(aChunk[a14 + step], columns);
    sum15 += rowTimes(aChunk[a15 + step], columns);
  }

  let columnBlock = blockColumns(firstColumn);
  let firstRow = p.chunkFirstRow + firstLocalRow;
  storeRow(firstRow, sum0, columnBlock);
  storeRow(firstRow + 1u, sum1, columnBlock);
  storeRow(firstRow + 2u, sum2, columnBlock);
  storeRow(firstRow + 3u, sum3, columnBlock);
  storeRow(firstRow + 4u, sum4, columnBlock);
  storeRow(firstRow + 5u, sum5, columnBlock);
  storeRow(firstRow + 6u, sum6, columnBlock);
  storeRow(firstRow + 7u, sum7, columnBlock);
  storeRow(firstRow + 8u, sum8, columnBlock);
  storeRow(firstRow + 9u, sum9, columnBlock);
  storeRow(firstRow + 10u, sum10, columnBlock);
  storeRow(firstRow + 11u, sum11, columnBlock);
  storeRow(firstRow + 12u, sum12, columnBlock);
  storeRow(firstRow + 13u, sum13, columnBlock);
  storeRow(firstRow + 14u, sum14, columnBlock);
  storeRow(firstRow + 15u, sum15, columnBlock);
}

fn bColumnOffset(column: u32) -> u32 {
  let p = params;
  return p.bOffset + split(column, p.bColumnGroup, p.bColumnGroupStride, p.bColumnStride);
}

// Where the eight columns of a block land, and their bias when the bias runs along columns.
struct BlockColumns {
  first: u32,
  offsets: array<u32, 8>,
  bias: mat2x4f,
}

fn blockColumns(first: u32) -> BlockColumns {
  let p = params;
  var columnBlock: BlockColumns;
  columnBlock.first = first;
  for (var index = 0u; index < 8u; index += 1u) {
    columnBlock.offsets[index] =
      split(first + index, p.outColumnGroup, p.outColumnGroupStride, p.outColumnStride);
  }
  if (p.biasMode == 2u) {
    let last = p.columns - 1u;
    columnBlock.bias = mat2x4f(
      vec4f(bias[min(first, last)], bias[min(first + 1u, last)], bias[min(first + 2u, last)],
        bias[min(first + 3u, last)]),
      vec4f(bias[min(first + 4u, last)], bias[min(first + 5u, last)],
        bias[min(first + 6u, last)], bias[min(first + 7u, last)]),
    );
  }
  return columnBlock;
}

fn storeRow(row: u32, sums: mat2x4f, columnBlock: BlockColumns) {
  let p = params;
  if (row >= p.rows) { return; }
  let rowOffset = split(row, p.outRowGroup, p.outRowGroupStride, p.outRowStride);
  var values = sums + columnBlock.bias;
  if (p.biasMode == 1u) { values += mat2x4f(vec4f(bias[row]), vec4f(bias[row])); }
  for (var index = 0u; index < 8u; index += 1u) {
    if (columnBlock.first + index >= p.columns) { return; }
    let destination = rowOffset + columnBlock.offsets[index];
    let value = values[index / 4u][index % 4u];
    if (p.accumulate == 1u) { out[destination] += value; } else { out[destination] = value; }
  }
}

// ---- pack ----------------------------------------------------------------------------------

struct PackParams {
  rows: u32,
  columns: u32,
  // Row length of the packed matrix: columns rounded up to a multiple of 4, padded with zeros.
  paddedColumns: u32,
  // The view's column index starts here (a share of a long depth).
  firstColumn: u32,
  rowStride: u32,
  rowGroup: u32,
  rowGroupStride: u32,
  columnStride: u32,
  columnGroup: u32,
  columnGroupStride: u32,
}

@group(0) @binding(0) var<uniform> packParams: PackParams;
@group(0) @binding(1) var<storage, read> source: array<f32>;
@group(0) @binding(2) var<storage, read_write> packed: array<f32>; // [rows, paddedColumns]

override WORKGROUP_SIZE: u32 = 64u;

// A workgroup covers part of one packed row, so no invocation divides its index by the row
// length to find its row.
@compute @workgroup_size(WORKGROUP_SIZE)
fn pack(
  @builtin(global_invocation_id) id: vec3u,
  @builtin(workgroup_id) group: vec3u,
  @builtin(num_workgroups) groups: vec3u,
) {
  let p = packParams;
  let row = group.y + group.z * groups.y;
  let column = id.x;
  if (row >= p.rows || column >= p.paddedColumns) { return; }

  var value = 0.0;
  if (column < p.columns) {
    let rowOffset = split(row, p.rowGroup, p.rowGroupStride, p.rowStride);
    let sourceColumn = p.firstColumn + column;
    value = source[rowOffset +
      split(sourceColumn, p.columnGroup, p.columnGroupStride, p.columnStride)];
  }
  packed[row * p.paddedColumns + column] = value;
}

// ---- bias_gradient -------------------------------------------------------------------------

struct BiasGradientParams {
  // The gradient is [outer, channels, inner]; the result is its sum over outer and inner.
  outer: u32,
  channels: u32,
  inner: u32,
}

@group(0) @binding(0) var<uniform> sumParams: BiasGradientParams;
@group(0) @binding(1) var<storage, read> gradOutput: array<f32>;
@group(0) @binding(2) var<storage, read_write> gradBias: array<f32>; // [channels]

const SUM_LANES = 64u;
var<workgroup> partialSums: array<f32, 64>;

// One workgroup per channel: each lane sums a strided share, then a tree adds the 64 partial
// sums in a fixed order, so the result does not depend on scheduling.
@compute @workgroup_size(64)
fn bias_gradient(
  @builtin(workgroup_id) group: vec3u,
  @builtin(local_invocation_index) lane: u32,
  @builtin(num_workgroups) groups: vec3u,
) {
  let channel = group.x + group.y * groups.x;
  let count = sumParams.outer * sumParams.inner;
  let inner = sumParams.inner;

  var sum = 0.0;
  if (channel < sumParams.channels) {
    for (var element = lane; element < count; element += SUM_LANES) {
      let outerIndex = element / inner;
      let innerIndex = element % inner;
      sum += gradOutput[(outerIndex * sumParams.channels + channel) * inner + innerIndex];
    }
  }
  partialSums[lane] = sum;
  workgroupBarrier();

  for (var half = SUM_LANES / 2u; half > 0u; half /= 2u) {
    if (lane < half) { partialSums[lane] += partialSums[lane + half]; }
    workgroupBarrier();
  }
  if (lane == 0u && channel < sumParams.channels) { gradBias[channel] = partialSums[0]; }
}
