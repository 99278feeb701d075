// Sum of a flat array in two dispatches. The first has `partialCount` invocations; each adds the
// elements partial, partial + partialCount, partial + 2 * partialCount, ... so that neighbouring
// invocations read neighbouring addresses. The second adds the partial sums in one invocation.
// No workgroup memory and no barriers: on llvmpipe barriers cost more than the second dispatch,
// and the result is the same on every device and every run.

struct Params {
  count: u32,
  partialCount: u32,
  // sum_finalize: multiplies the total (1 for a sum, 1 / count for a mean).
  // broadcast_scalar: multiplies the broadcast value.
  factor: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> input: array<f32>;
@group(0) @binding(2) var<storage, read> partials: array<f32>;
@group(0) @binding(3) var<storage, read_write> partialsOut: array<f32>;
@group(0) @binding(4) var<storage, read_write> output: array<f32>;
// One value: the gradient of a sum or mean with respect to its result.
@group(0) @binding(5) var<storage, read> scalar: array<f32>;

const WORKGROUP_SIZE = 64u;

// The partials are added in blocks of this many, and then the block totals: rounding error
// grows with the length of each running sum, so two short sums beat one long one.
const FINALIZE_BLOCK = 32u;

fn flatIndex(id: vec3u, groups: vec3u) -> u32 {
  return id.x + id.y * groups.x * WORKGROUP_SIZE;
}

@compute @workgroup_size(64)
fn sum_partials(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let partial = flatIndex(id, groups);
  if (partial >= params.partialCount) { return; }

  var total = 0.0;
  for (var index = partial; index < params.count; index += params.partialCount) {
    total += input[index];
  }
  partialsOut[partial] = total;
}

@compute @workgroup_size(1)
fn sum_finalize() {
  var total = 0.0;
  for (var blockStart = 0u; blockStart < params.partialCount; blockStart += FINALIZE_BLOCK) {
    let blockEnd = min(blockStart + FINALIZE_BLOCK, params.partialCount);
    var blockTotal = 0.0;
    for (var partial = blockStart; partial < blockEnd; partial += 1u) {
      blockTotal += partials[partial];
    }
    total += blockTotal;
  }
  output[0] = params.factor * total;
}

// The backward rule of sum and mean: every element receives factor * scalar[0].
@compute @workgroup_size(64)
fn broadcast_scalar(
  @builtin(global_invocation_id) id: vec3u,
  @builtin(num_workgroups) groups: vec3u,
) {
  let index = flatIndex(id, groups);
  if (index >= params.count) { return; }
  output[index] = params.factor * scalar[0];
}
