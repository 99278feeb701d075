// Elementwise kernels over flat arrays. One invocation per element; the flat index is rebuilt
// from a 2-D grid because one dimension holds at most 65535 workgroups.

struct Params {
  count: u32,
  // affine: the factor; leaky_relu: the negative slope; fill: the value.
  alpha: f32,
  // affine: the shift.
  beta: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

const WORKGROUP_SIZE = 64u;

fn flatIndex(id: vec3u, groups: vec3u) -> u32 {
  return id.x + id.y * groups.x * WORKGROUP_SIZE;
}

@compute @workgroup_size(64)
fn add(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let index = flatIndex(id, groups);
  if (index >= params.count) { return; }
  out[index] = a[index] + b[index];
}

@compute @workgroup_size(64)
fn mul(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let index = flatIndex(id, groups);
  if (index >= params.count) { return; }
  out[index] = a[index] * b[index];
}

// ---- Unary ops read only `a`; `b` is bound to any buffer and ignored. ----

// out = alpha * a + beta
@compute @workgroup_size(64)
fn affine(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let index = flatIndex(id, groups);
  if (index >= params.count) { return; }
  out[index] = params.alpha * a[index] + params.beta;
}

@compute @workgroup_size(64)
fn fill(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let index = flatIndex(id, groups);
  if (index >= params.count) { return; }
  out[index] = params.alpha;
}

@compute @workgroup_size(64)
fn leaky_relu(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let index = flatIndex(id, groups);
  if (index >= params.count) { return; }
  let x = a[index];
  out[index] = select(params.alpha * x, x, x > 0.0);
}

// tanh(x) = 1 - 2 / (exp(2x) + 1) overflows to exactly +-1 instead of NaN at large |x|.
@compute @workgroup_size(64)
fn tanh_forward(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let index = flatIndex(id, groups);
  if (index >= params.count) { return; }
  let x = clamp(a[index], -40.0, 40.0);
  out[index] = 1.0 - 2.0 / (exp(2.0 * x) + 1.0);
}

@compute @workgroup_size(64)
fn sigmoid_forward(
  @builtin(global_invocation_id) id: vec3u,
  @builtin(num_workgroups) groups: vec3u,
) {
  let index = flatIndex(id, groups);
  if (index >= params.count) { return; }
  let x = clamp(a[index], -80.0, 80.0);
  out[index] = 1.0 / (1.0 + exp(-x));
}

// ---- Backward ops: `a` is what the forward saved, `b` the gradient of the output. ----

// a = forward input; gradInput = gradOutput where x > 0, slope * gradOutput elsewhere.
@compute @workgroup_size(64)
fn leaky_relu_backward(
  @builtin(global_invocation_id) id: vec3u,
  @builtin(num_workgroups) groups: vec3u,
) {
  let index = flatIndex(id, groups);
  if (index >= params.count) { return; }
  out[index] = select(params.alpha * b[index], b[index], a[index] > 0.0);
}

// a = forward output y; gradInput = gradOutput * (1 - y^2).
@compute @workgroup_size(64)
fn tanh_backward(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let index = flatIndex(id, groups);
  if (index >= params.count) { return; }
  let y = a[index];
  out[index] = b[index] * (1.0 - y * y);
}

// a = forward output y; gradInput = gradOutput * y * (1 - y).
@compute @workgroup_size(64)
fn sigmoid_backward(
  @builtin(global_invocation_id) id: vec3u,
  @builtin(num_workgroups) groups: vec3u,
) {
  let index = flatIndex(id, groups);
  if (index >= params.count) { return; }
  let y = a[index];
  out[index] = b[index] * y * (1.0 - y);
}
