// Softmax cross-entropy with integer class labels, as PyTorch's CrossEntropyLoss with mean
// reduction over the rows of a [rows, classes] logits matrix:
//
//   loss(row) = logSumExp(x[row, :]) - x[row, label[row]]
//   logSumExp(x) = max(x) + log(sum_k exp(x_k - max(x)))
//
// Subtracting the row maximum first means exp never sees a positive argument, so logits of any
// finite size give a finite loss. The forward pass keeps each row's log-sum-exp; the backward
// pass turns it into the softmax with one exp per element, without a second pass over the row.
// The mean is formed as in loss.wgsl: partial sums here, reduce.wgsl's finalize entry after.

struct Params {
  rows: u32,
  classes: u32,
  partialCount: u32,
  // 1 / rows: the mean's factor, applied in the backward pass.
  inverseRows: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
// [rows, classes], row-major.
@group(0) @binding(1) var<storage, read> logits: array<f32>;
// [rows]: one class index per row, each below params.classes (checked on the CPU).
@group(0) @binding(2) var<storage, read> labels: array<u32>;
// One value: the gradient of the loss with respect to its (scalar) result.
@group(0) @binding(3) var<storage, read> gradLoss: array<f32>;
// [rows]: what cross_entropy_partials wrote to logSumExpOut.
@group(0) @binding(4) var<storage, read> logSumExp: array<f32>;
@group(0) @binding(5) var<storage, read_write> logSumExpOut: array<f32>;
@group(0) @binding(6) var<storage, read_write> partialsOut: array<f32>;
@group(0) @binding(7) var<storage, read_write> gradLogits: array<f32>;

const WORKGROUP_SIZE = 64u;

fn flatIndex(id: vec3u, groups: vec3u) -> u32 {
  return id.x + id.y * groups.x * WORKGROUP_SIZE;
}

// log(1 + u) for u >= 0. A confident row has u far below 1, where 1 + u rounds u away.
fn logOnePlus(u: f32) -> f32 {
  if (u < 1e-3) { return u * (1.0 - u * (0.5 - u / 3.0)); }
  return log(1.0 + u);
}

// Each invocation adds the losses of rows partial, partial + partialCount, ... so neighbouring
// invocations read neighbouring rows.
@compute @workgroup_size(64)
fn cross_entropy_partials(
  @builtin(global_invocation_id) id: vec3u,
  @builtin(num_workgroups) groups: vec3u,
) {
  let partial = flatIndex(id, groups);
  if (partial >= params.partialCount) { return; }

  var total = 0.0;
  for (var row = partial; row < params.rows; row += params.partialCount) {
    let rowStart = row * params.classes;
    var rowMax = logits[rowStart];
    var maxColumn = 0u;
    for (var column = 1u; column < params.classes; column += 1u) {
      let x = logits[rowStart + column];
      if (x > rowMax) {
        rowMax = x;
        maxColumn = column;
      }
    }
    // The largest logit contributes exactly exp(0) = 1; the others are summed apart from it so
    // that log(1 + others) keeps its precision when the row is confident.
    var others = 0.0;
    for (var column = 0u; column < params.classes; column += 1u) {
      if (column != maxColumn) { others += exp(logits[rowStart + column] - rowMax); }
    }
    let logOfSum = logOnePlus(others);
    logSumExpOut[row] = rowMax + logOfSum;

    // (max - label logit) + log(1 + others): when the label holds the largest logit, the loss
    // is log(1 + others) itself, not a difference of two nearly equal numbers.
    total += (rowMax - logits[rowStart + labels[row]]) + logOfSum;
  }
  partialsOut[partial] = total;
}

// d loss / d x[row, column] = (softmax(x[row, :])[column] - [column == label]) / rows, times
// the gradient arriving at the loss. One invocation per element.
@compute @workgroup_size(64)
fn cross_entropy_backward(
  @builtin(global_invocation_id) id: vec3u,
  @builtin(num_workgroups) groups: vec3u,
) {
  let index = flatIndex(id, groups);
  if (index >= params.rows * params.classes) { return; }
  let row = index / params.classes;
  let column = index % params.classes;

  let probability = exp(logits[index] - logSumExp[row]);
  let isLabel = select(0.0, 1.0, column == labels[row]);
  gradLogits[index] = gradLoss[0] * params.inverseRows * (probability - isLabel);
}
