// Global average pooling over NCHW: one mean per [height, width] plane. The discriminator's
// "gap" head uses it, so its logit depends on what a feature map holds, not on where.

struct Params {
  // Number of planes (batch * channels) for the forward pass, of elements for the backward.
  count: u32,
  planeSize: u32,
  // 1 / planeSize.
  inverse: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> input: array<f32>;
@group(0) @binding(2) var<storage, read> gradOutput: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

const WORKGROUP_SIZE = 64u;

fn flatIndex(id: vec3u, groups: vec3u) -> u32 {
  return id.x + id.y * groups.x * WORKGROUP_SIZE;
}

// One invocation per plane; planes are small (at most 8x8 in the discriminators), so a
// sequential sum is cheaper than a workgroup reduction.
@compute @workgroup_size(64)
fn mean_planes(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let plane = flatIndex(id, groups);
  if (plane >= params.count) { return; }
  let first = plane * params.planeSize;
  var total = 0.0;
  for (var offset = 0u; offset < params.planeSize; offset += 1u) {
    total += input[first + offset];
  }
  out[plane] = total * params.inverse;
}

// Every element of a plane moved its mean by 1 / planeSize.
@compute @workgroup_size(64)
fn mean_planes_backward(
  @builtin(global_invocation_id) id: vec3u,
  @builtin(num_workgroups) groups: vec3u,
) {
  let index = flatIndex(id, groups);
  if (index >= params.count) { return; }
  out[index] = gradOutput[index / params.planeSize] * params.inverse;
}
