// im2col and col2im: the two reshuffles that turn a 2-D convolution into one matrix product.
//
// A convolution slides a kernelHeight x kernelWidth window over a padded image; each position
// of the window is a "pixel" of the output grid [batch, gridHeight, gridWidth], and the values
// under the window form a "patch" of channels * kernelHeight * kernelWidth values, ordered
// (channel, kernelRow, kernelColumn) like a PyTorch weight row. im2col writes every patch as a
// row of the matrix cols [batch * gridHeight * gridWidth, patch]; col2im is its adjoint: it
// sums the entries of such a matrix back into the image pixels they were read from.
//
// Both take the image geometry of the convolution's input side, whichever way data flows.

struct Im2colParams {
  // The image read: [batch, channels, height, width].
  batch: u32,
  channels: u32,
  height: u32,
  width: u32,
  gridHeight: u32,
  gridWidth: u32,
  kernelHeight: u32,
  kernelWidth: u32,
  strideY: u32,
  strideX: u32,
  padY: u32,
  padX: u32,
}

@group(0) @binding(0) var<uniform> im2colParams: Im2colParams;
@group(0) @binding(1) var<storage, read> image: array<f32>;
@group(0) @binding(2) var<storage, read_write> cols: array<f32>;

// One invocation per (grid pixel, channel) copies that channel's window: kernelHeight *
// kernelWidth values for a handful of integer divisions. (Integer division has no SIMD
// instruction on a CPU; one invocation per value spent most of its time dividing.)
@compute @workgroup_size(64)
fn im2col(@builtin(global_invocation_id) id: vec3u) {
  let p = im2colParams;
  let pixel = id.x;
  let channel = id.y;
  let gridPixels = p.gridHeight * p.gridWidth;
  if (pixel >= p.batch * gridPixels) { return; }

  let imageIndex = pixel / gridPixels;
  let gridRow = (pixel % gridPixels) / p.gridWidth;
  let gridColumn = pixel % p.gridWidth;
  // Signed: the window hangs over the top and left edges by up to the padding.
  let top = i32(gridRow * p.strideY) - i32(p.padY);
  let left = i32(gridColumn * p.strideX) - i32(p.padX);
  let plane = (imageIndex * p.channels + channel) * p.height;

  let kernelArea = p.kernelHeight * p.kernelWidth;
  var destination = (pixel * p.channels + channel) * kernelArea;
  for (var kernelRow = 0u; kernelRow < p.kernelHeight; kernelRow += 1u) {
    let row = top + i32(kernelRow);
    let rowInside = row >= 0 && row < i32(p.height);
    for (var kernelColumn = 0u; kernelColumn < p.kernelWidth; kernelColumn += 1u) {
      let column = left + i32(kernelColumn);
      var value = 0.0;
      if (rowInside && column >= 0 && column < i32(p.width)) {
        value = image[(plane + u32(row)) * p.width + u32(column)];
      }
      cols[destination] = value;
      destination += 1u;
    }
  }
}

struct Col2imParams {
  // The image written: [batch, channels, height, width].
  batch: u32,
  channels: u32,
  height: u32,
  width: u32,
  gridHeight: u32,
  gridWidth: u32,
  kernelHeight: u32,
  kernelWidth: u32,
  strideY: u32,
  strideX: u32,
  padY: u32,
  padX: u32,
  // 1: add bias[channel] to every pixel of the channel.
  hasBias: u32,
}

@group(0) @binding(0) var<uniform> col2imParams: Col2imParams;
@group(0) @binding(1) var<storage, read> patches: array<f32>; // [pixels, patch], like cols
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> summed: array<f32>;

// A gather, not a scatter: each image pixel adds up every patch entry that read it, always in
// the same order. No atomics, no races, the same result on every run.
//
// The window at grid position g covers padded rows g * stride .. g * stride + kernel - 1, so
// padded row r is covered by kernel row k exactly when r - k is a multiple of the stride, from
// grid row (r - k) / stride. The first such k is r % stride; each later one is a stride further
// on and one grid row back. One invocation walks a whole image row, so the column version of
// that division is carried along the walk instead of being recomputed for every pixel.
@compute @workgroup_size(64)
fn col2im(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let p = col2imParams;
  let imageRow = id.x + id.y * groups.x * 64u; // over [batch, channels, height]
  if (imageRow >= p.batch * p.channels * p.height) { return; }
  let row = imageRow % p.height;
  let channel = (imageRow / p.height) % p.channels;
  let imageIndex = imageRow / (p.height * p.channels);

  let patchSize = p.channels * p.kernelHeight * p.kernelWidth;
  let paddedRow = row + p.padY;
  let firstKernelRow = paddedRow % p.strideY;
  let firstGridRow = paddedRow / p.strideY;
  var rowBias = 0.0;
  if (p.hasBias == 1u) { rowBias = bias[channel]; }

  // For column c: the first kernel column that covers it, and its grid column.
  var firstKernelColumn = p.padX % p.strideX;
  var firstGridColumn = p.padX / p.strideX;
  for (var column = 0u; column < p.width; column += 1u) {
    var sum = rowBias;
    var gridRow = firstGridRow;
    for (var kernelRow = firstKernelRow; kernelRow < p.kernelHeight && kernelRow <= paddedRow;
         kernelRow += p.strideY) {
      if (gridRow < p.gridHeight) {
        let pixelRow = (imageIndex * p.gridHeight + gridRow) * p.gridWidth;
        let patchRow = (channel * p.kernelHeight + kernelRow) * p.kernelWidth;
        var gridColumn = firstGridColumn;
        for (var kernelColumn = firstKernelColumn;
             kernelColumn < p.kernelWidth && kernelColumn <= column + p.padX;
             kernelColumn += p.strideX) {
          if (gridColumn < p.gridWidth) {
            sum += patches[(pixelRow + gridColumn) * patchSize + patchRow + kernelColumn];
          }
          gridColumn -= 1u;
        }
      }
      gridRow -= 1u;
    }
    summed[imageRow * p.width + column] = sum;

    firstKernelColumn += 1u;
    if (firstKernelColumn == p.strideX) {
      firstKernelColumn = 0u;
      firstGridColumn += 1u;
    }
  }
}
