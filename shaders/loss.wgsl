// Binary cross-entropy on logits, as PyTorch's BCEWithLogitsLoss with mean reduction.
//
//   loss(x, t) = max(x, 0) - x * t + log(1 + exp(-|x|))
//
// is the same as -(t log sigmoid(x) + (1 - t) log(1 - sigmoid(x))) but never takes the log of
// a rounded-off 0 and never evaluates exp of a large positive number, so it stays finite for
// any finite logit. The forward pass writes partial sums in the layout of reduce.wgsl, whose
// finalize entry turns them into the mean; no per-element loss array is ever stored.

struct Params {
  count: u32,
  partialCount: u32,
  // 1 / count: the mean's factor, applied in the backward pass.
  inverseCount: f32,
  // The target of every element when targetIsTensor is 0 (e.g. 1, 0 or 0.9).
  scalarTarget: f32,
  targetIsTensor: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> targets: array<f32>;
// One value: the gradient of the loss with respect to its (scalar) result.
@group(0) @binding(3) var<storage, read> gradLoss: array<f32>;
@group(0) @binding(4) var<storage, read_write> partialsOut: array<f32>;
@group(0) @binding(5) var<storage, read_write> gradLogits: array<f32>;
@group(0) @binding(6) var<storage, read_write> gradTargets: array<f32>;

const WORKGROUP_SIZE = 64u;

fn flatIndex(id: vec3u, groups: vec3u) -> u32 {
  return id.x + id.y * groups.x * WORKGROUP_SIZE;
}

fn targetAt(index: u32) -> f32 {
  // A branch, not select(): the targets buffer is a placeholder when the target is a scalar,
  // and must not be read.
  if (params.targetIsTensor != 0u) { return targets[index]; }
  return params.scalarTarget;
}

// log(1 + u) for u in [0, 1]. Adding a tiny u to 1 rounds it away, so small u uses the series.
fn logOnePlus(u: f32) -> f32 {
  if (u < 1e-3) { return u * (1.0 - u * (0.5 - u / 3.0)); }
  return log(1.0 + u);
}

// sigmoid(x), computed from exp(-|x|) so that exp never overflows.
fn stableSigmoid(x: f32) -> f32 {
  let decay = exp(-abs(x));
  let positive = 1.0 / (1.0 + decay);
  // For x < 0, sigmoid(x) = exp(x) / (1 + exp(x)): no cancellation as in 1 - sigmoid(-x).
  return select(decay * positive, positive, x >= 0.0);
}

@compute @workgroup_size(64)
fn bce_partials(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let partial = flatIndex(id, groups);
  if (partial >= params.partialCount) { return; }

  var total = 0.0;
  for (var index = partial; index < params.count; index += params.partialCount) {
    let x = logits[index];
    total += max(x, 0.0) - x * targetAt(index) + logOnePlus(exp(-abs(x)));
  }
  partialsOut[partial] = total;
}

// d loss / d x = (sigmoid(x) - t) / count, times the gradient arriving at the loss.
@compute @workgroup_size(64)
fn bce_backward_logits(
  @builtin(global_invocation_id) id: vec3u,
  @builtin(num_workgroups) groups: vec3u,
) {
  let index = flatIndex(id, groups);
  if (index >= params.count) { return; }
  let x = logits[index];
  gradLogits[index] = gradLoss[0] * params.inverseCount * (stableSigmoid(x) - targetAt(index));
}

// d loss / d t = -x / count, times the gradient arriving at the loss.
@compute @workgroup_size(64)
fn bce_backward_targets(
  @builtin(global_invocation_id) id: vec3u,
  @builtin(num_workgroups) groups: vec3u,
) {
  let index = flatIndex(id, groups);
  if (index >= params.count) { return; }
  gradTargets[index] = -gradLoss[0] * params.inverseCount * logits[index];
}
