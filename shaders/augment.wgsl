// Differentiable augmentation of NCHW images: each image is mirrored left-right or not, then
// shifted by whole pixels (dx, dy); pixels shifted in from outside take the background value.
// The transform of image n is transforms[3n .. 3n+2] = (flip 0 or 1, dx, dy), drawn on the CPU
// per step. The map from output to source pixels is one-to-one, so the backward pass is the
// same map read the other way: each input pixel takes the gradient of the one output pixel
// it went to, or 0 if it was shifted out of the frame.

struct Params {
  count: u32,
  channels: u32,
  height: u32,
  width: u32,
  // The value of pixels shifted in from outside: the low end of the pixel range.
  background: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> input: array<f32>;
@group(0) @binding(2) var<storage, read> transforms: array<f32>;
@group(0) @binding(3) var<storage, read> gradOutput: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

const WORKGROUP_SIZE = 64u;

fn flatIndex(id: vec3u, groups: vec3u) -> u32 {
  return id.x + id.y * groups.x * WORKGROUP_SIZE;
}

struct Pixel {
  // The plane (image * channels + channel) and the image it belongs to.
  plane: u32,
  image: u32,
  y: i32,
  x: i32,
}

fn pixelAt(index: u32) -> Pixel {
  let planeSize = params.height * params.width;
  let plane = index / planeSize;
  let inPlane = index % planeSize;
  return Pixel(
    plane,
    plane / params.channels,
    i32(inPlane / params.width),
    i32(inPlane % params.width),
  );
}

fn inside(y: i32, x: i32) -> bool {
  return y >= 0 && x >= 0 && y < i32(params.height) && x < i32(params.width);
}

fn flatOf(plane: u32, y: i32, x: i32) -> u32 {
  return (plane * params.height + u32(y)) * params.width + u32(x);
}

@compute @workgroup_size(64)
fn augment(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let index = flatIndex(id, groups);
  if (index >= params.count) { return; }
  let pixel = pixelAt(index);
  let flip = transforms[3u * pixel.image] != 0.0;
  let dx = i32(transforms[3u * pixel.image + 1u]);
  let dy = i32(transforms[3u * pixel.image + 2u]);
  let mirrored = select(pixel.x, i32(params.width) - 1 - pixel.x, flip);
  let sourceY = pixel.y - dy;
  let sourceX = mirrored - dx;
  if (inside(sourceY, sourceX)) {
    out[index] = input[flatOf(pixel.plane, sourceY, sourceX)];
  } else {
    out[index] = params.background;
  }
}

// One invocation per input pixel: find where the forward pass put it.
@compute @workgroup_size(64)
fn augment_backward(
  @builtin(global_invocation_id) id: vec3u,
  @builtin(num_workgroups) groups: vec3u,
) {
  let index = flatIndex(id, groups);
  if (index >= params.count) { return; }
  let pixel = pixelAt(index);
  let flip = transforms[3u * pixel.image] != 0.0;
  let dx = i32(transforms[3u * pixel.image + 1u]);
  let dy = i32(transforms[3u * pixel.image + 2u]);
  let targetY = pixel.y + dy;
  let shiftedX = pixel.x + dx;
  let targetX = select(shiftedX, i32(params.width) - 1 - shiftedX, flip);
  if (inside(targetY, targetX)) {
    out[index] = gradOutput[flatOf(pixel.plane, targetY, targetX)];
  } else {
    out[index] = 0.0;
  }
}
