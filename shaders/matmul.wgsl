// Matrix multiplication and the two small kernels around it.
//
//   matmul          out = A · Bᵀ (+ bias), with A [rows, depth] and B [columns, depth] both stored
//                   depth-contiguous and padded to a multiple of 4, so every load is a vec4.
//   pack            copies any strided 2-D view of a buffer into that padded row-major form;
//                   transposes, NCHW <-> pixel-major layouts and zero padding all go through it.
//   bias_gradient   per-channel sums of a gradient, the backward rule of every bias add.
//
// Where a result lands is described by a "layout": element (row, column) of a logical matrix
// lives at split(row, rowGroup...) + split(column, columnGroup...), where
// split(index, group, groupStride, stride) = (index / group) * groupStride + (index % group) * stride.
// A plain row-major matrix uses groups larger than any index; an NCHW tensor seen as
// [channels, batch * pixels] splits its column index into (image, pixel).

// ---- matmul ------------------------------------------------------------------------------

struct MatmulParams {
  rows: u32,
  columns: u32,
  // The shared (reduced) dimension in vec4 units, after zero padding.
  depth4: u32,
  // 0: no bias; 1: bias[row] is added to every element of a row; 2: bias[column].
  biasMode: u32,
  outRowStride: u32,
  outRowGroup: u32,
  outRowGroupStride: u32,
  outColumnStride: u32,
  outColumnGroup: u32,
  outColumnGroupStride: u32,
}

@group(0) @binding(0) var<uniform> params: MatmulParams;
@group(0) @binding(1) var<storage, read> a: array<vec4f>; // [rows, depth4]
@group(0) @binding(2) var<storage, read> b: array<vec4f>; // [columns, depth4]
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

fn split(index: u32, group: u32, groupStride: u32, stride: u32) -> u32 {
  return (index / group) * groupStride + (index % group) * stride;
}

// Each invocation computes a 4x4 block of `out`: rows firstRow.. from A, columns firstColumn..
// from B. The 8 invocations of a workgroup share their rows and differ in their columns.
//
// Why this shape (measured on llvmpipe, where an invocation is one lane of a CPU SIMD
// register): A's address depends only on the workgroup, so its loads are scalar loads
// broadcast to all lanes; B's loads differ per lane and cost one load per lane, which the
// vec4 form cuts fourfold. The sixteen sums live in four named vec4 accumulators (no dynamic
// indexing, which would spill to memory); one dot product per pair folds four depth steps.
// Workgroup size 8 equals the SIMD width there. Workgroup-memory tiling, which wins on real
// GPUs, was 3-4x slower here because barriers split every invocation into coroutines.
@compute @workgroup_size(8)
fn matmul(
  @builtin(workgroup_id) group: vec3u,
  @builtin(local_invocation_id) local: vec3u,
  @builtin(num_workgroups) groups: vec3u,
) {
  // Row blocks spill from y into z when there are more than 65535 of them.
  let firstRow = (group.y + group.z * groups.y) * 4u;
  if (firstRow >= params.rows) { return; }
  let firstColumn = (group.x * 8u + local.x) * 4u;

  // Out-of-range rows and columns read the last valid one and are not stored: clamping keeps
  // every lane running the same instructions, and no early return breaks A's uniformity.
  let lastRow = params.rows - 1u;
  let lastColumn = params.columns - 1u;
  let depth4 = params.depth4;
  let aRow0 = min(firstRow, lastRow) * depth4;
  let aRow1 = min(firstRow + 1u, lastRow) * depth4;
  let aRow2 = min(firstRow + 2u, lastRow) * depth4;
  let aRow3 = min(firstRow + 3u, lastRow) * depth4;
  let bRow0 = min(firstColumn, lastColumn) * depth4;
  let bRow1 = min(firstColumn + 1u, lastColumn) * depth4;
  let bRow2 = min(firstColumn + 2u, lastColumn) * depth4;
  let bRow3 = min(firstColumn + 3u, lastColumn) * depth4;

  // sumN holds row firstRow + N, columns firstColumn .. firstColumn + 3.
  var sum0 = vec4f(0.0);
  var sum1 = vec4f(0.0);
  var sum2 = vec4f(0.0);
  var sum3 = vec4f(0.0);
  for (var step = 0u; step < depth4; step += 1u) {
    let b0 = b[bRow0 + step];
    let b1 = b[bRow1 + step];
    let b2 = b[bRow2 + step];
    let b3 = b[bRow3 + step];
    let a0 = a[aRow0 + step];
    sum0 += vec4f(dot(a0, b0), dot(a0, b1), dot(a0, b2), dot(a0, b3));
    let a1 = a[aRow1 + step];
    sum1 += vec4f(dot(a1, b0), dot(a1, b1), dot(a1, b2), dot(a1, b3));
    let a2 = a[aRow2 + step];
    sum2 += vec4f(dot(a2, b0), dot(a2, b1), dot(a2, b2), dot(a2, b3));
    let a3 = a[aRow3 + step];
    sum3 += vec4f(dot(a3, b0), dot(a3, b1), dot(a3, b2), dot(a3, b3));
  }

  let columns = firstColumn + vec4u(0u, 1u, 2u, 3u);
  let columnOffsets = vec4u(
    outColumnOffset(columns.x),
    outColumnOffset(columns.y),
    outColumnOffset(columns.z),
    outColumnOffset(columns.w),
  );
  var columnBias = vec4f(0.0);
  if (params.biasMode == 2u) {
    let clamped = min(columns, vec4u(lastColumn));
    columnBias = vec4f(bias[clamped.x], bias[clamped.y], bias[clamped.z], bias[clamped.w]);
  }
  storeRow(firstRow, sum0 + columnBias, columns, columnOffsets);
  storeRow(firstRow + 1u, sum1 + columnBias, columns, columnOffsets);
  storeRow(firstRow + 2u, sum2 + columnBias, columns, columnOffsets);
  storeRow(firstRow + 3u, sum3 + columnBias, columns, columnOffsets);
}

fn outColumnOffset(column: u32) -> u32 {
  return split(column, params.outColumnGroup, params.outColumnGroupStride, params.outColumnStride);
}

fn storeRow(row: u32, sums: vec4f, columns: vec4u, columnOffsets: vec4u) {
  if (row >= params.rows) { return; }
  let rowOffset = split(row, params.outRowGroup, params.outRowGroupStride, params.outRowStride);
  var values = sums;
  if (params.biasMode == 1u) { values += vec4f(bias[row]); }
  if (columns.x < params.columns) { out[rowOffset + columnOffsets.x] = values.x; }
  if (columns.y < params.columns) { out[rowOffset + columnOffsets.y] = values.y; }
  if (columns.z < params.columns) { out[rowOffset + columnOffsets.z] = values.z; }
  if (columns.w < params.columns) { out[rowOffset + columnOffsets.w] = values.w; }
}

// ---- pack ----------------------------------------------------------------------------------

struct PackParams {
  rows: u32,
  columns: u32,
  // Row length of the packed matrix: columns rounded up to a multiple of 4, padded with zeros.
  paddedColumns: u32,
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

// A split that most layouts do not use costs two integer divisions per element unless skipped.
fn splitUnlessWhole(index: u32, group: u32, groupStride: u32, stride: u32) -> u32 {
  if (group == 0xffffffffu) { return index * stride; }
  return split(index, group, groupStride, stride);
}

// A workgroup covers part of one packed row, so the row's source offset is worked out once
// for all lanes (its divisions are scalar), and only the column's is per lane.
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
    let rowOffset = splitUnlessWhole(row, p.rowGroup, p.rowGroupStride, p.rowStride);
    value = source[rowOffset +
      splitUnlessWhole(column, p.columnGroup, p.columnGroupStride, p.columnStride)];
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
