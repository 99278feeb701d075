// Class conditioning by concatenation: [N, C, P] becomes [N, C + K, P], where the K extra
// channels are the one-hot code of each sample's class, constant over the P positions. The
// generator gets it on its noise (P = 1), the discriminator on its images (P = H * W). The
// labels are class indices stored as floats, one per sample.

struct Params {
  // Elements of the output (forward) or of the input (backward).
  count: u32,
  channels: u32,
  classes: u32,
  planeSize: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> input: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<f32>;
@group(0) @binding(3) var<storage, read> gradOutput: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

const WORKGROUP_SIZE = 64u;

fn flatIndex(id: vec3u, groups: vec3u) -> u32 {
  return id.x + id.y * groups.x * WORKGROUP_SIZE;
}

@compute @workgroup_size(64)
fn append_one_hot(
  @builtin(global_invocation_id) id: vec3u,
  @builtin(num_workgroups) groups: vec3u,
) {
  let index = flatIndex(id, groups);
  if (index >= params.count) { return; }
  let wide = params.channels + params.classes;
  let position = index % params.planeSize;
  let channel = (index / params.planeSize) % wide;
  let sample = index / (params.planeSize * wide);
  if (channel < params.channels) {
    out[index] = input[(sample * params.channels + channel) * params.planeSize + position];
  } else {
    out[index] = select(0.0, 1.0, channel - params.channels == u32(labels[sample]));
  }
}

// The one-hot channels are constants: the input's gradient is the output's without them.
@compute @workgroup_size(64)
fn drop_one_hot(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let index = flatIndex(id, groups);
  if (index >= params.count) { return; }
  let position = index % params.planeSize;
  let channel = (index / params.planeSize) % params.channels;
  let sample = index / (params.planeSize * params.channels);
  let wide = params.channels + params.classes;
  out[index] = gradOutput[(sample * wide + channel) * params.planeSize + position];
}
