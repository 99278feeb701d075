// Batch normalisation over [batch, channels, height, width] tensors, as PyTorch's BatchNorm2d.
//
// Each channel's statistics come from batch * height * width values that are not contiguous:
// one run of `spatial` values per image. A reduction over them takes two dispatches:
//
//   *_partials   one invocation per (channel, slice): a slice is `sliceLength` consecutive
//                values of the channel, walked image by image; it writes two numbers.
//   *_finalize   one invocation per channel combines its slices.
//
// Every channel gets the same number of slices (`splits`), so any batch, height and width works,
// and there is no workgroup memory: barriers are slow on CPU-emulated devices.
//
// The per-channel statistics live in one buffer `stats` of shape [2, channels]: the mean, then
// the inverse standard deviation. Forward writes them (batch statistics in training, running
// statistics in evaluation) and backward reads them, so both modes share the same kernels.

struct Params {
  batch: u32,
  channels: u32,
  // height * width
  spatial: u32,
  // slices per channel
  splits: u32,
  sliceLength: u32,
  momentum: f32,
  eps: f32,
  // 1: batch statistics (their gradient flows into every input); 0: running statistics.
  training: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> input: array<f32>;
@group(0) @binding(2) var<storage, read> gradOutput: array<f32>;
@group(0) @binding(3) var<storage, read> weight: array<f32>;
@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read> stats: array<f32>;
// [channels, splits, 2]
@group(0) @binding(6) var<storage, read> partials: array<f32>;
// sum(gradOutput) and sum(gradOutput * normalised input) per channel, that is gradBias and
// gradWeight, read back by the input-gradient kernel.
@group(0) @binding(7) var<storage, read> sumGrad: array<f32>;
@group(0) @binding(8) var<storage, read> sumGradNormalised: array<f32>;
@group(0) @binding(9) var<storage, read_write> partialsOut: array<f32>;
@group(0) @binding(10) var<storage, read_write> statsOut: array<f32>;
@group(0) @binding(11) var<storage, read_write> runningMean: array<f32>;
@group(0) @binding(12) var<storage, read_write> runningVar: array<f32>;
@group(0) @binding(13) var<storage, read_write> output: array<f32>;
@group(0) @binding(14) var<storage, read_write> gradInput: array<f32>;
@group(0) @binding(15) var<storage, read_write> gradWeight: array<f32>;
@group(0) @binding(16) var<storage, read_write> gradBias: array<f32>;

const WORKGROUP_SIZE = 64u;

fn flatIndex(id: vec3u, groups: vec3u) -> u32 {
  return id.x + id.y * groups.x * WORKGROUP_SIZE;
}

fn perChannel() -> u32 {
  return params.batch * params.spatial;
}

fn sliceStart(split: u32) -> u32 {
  return split * params.sliceLength;
}

fn sliceEnd(split: u32) -> u32 {
  return min(sliceStart(split) + params.sliceLength, perChannel());
}

fn channelOf(index: u32) -> u32 {
  return (index / params.spatial) % params.channels;
}

// A position in one slice of one channel. Counters advance instead of dividing per element.
struct SliceWalk {
  // index of the value within its channel, 0 .. batch * spatial
  element: u32,
  end: u32,
  // index into the [batch, channels, spatial] tensor
  address: u32,
  // index within the current image's plane, 0 .. spatial
  position: u32,
}

fn startWalk(channel: u32, split: u32) -> SliceWalk {
  let start = sliceStart(split);
  let image = start / params.spatial;
  let position = start % params.spatial;
  let address = (image * params.channels + channel) * params.spatial + position;
  return SliceWalk(start, sliceEnd(split), address, position);
}

fn advance(walk: ptr<function, SliceWalk>) {
  (*walk).element += 1u;
  (*walk).address += 1u;
  (*walk).position += 1u;
  if ((*walk).position == params.spatial) {
    // Skip the other channels' planes to reach this channel in the next image.
    (*walk).position = 0u;
    (*walk).address += (params.channels - 1u) * params.spatial;
  }
}

// ---- Forward ----

// Per slice: its mean and the sum of squared deviations from it (M2). Two passes over the slice
// (it is short and cached) avoid the cancellation of sum(x^2) - sum(x)^2 / n.
@compute @workgroup_size(64)
fn stats_partials(
  @builtin(global_invocation_id) id: vec3u,
  @builtin(num_workgroups) groups: vec3u,
) {
  let partial = flatIndex(id, groups);
  if (partial >= params.channels * params.splits) { return; }
  let channel = partial / params.splits;
  let split = partial % params.splits;

  var total = 0.0;
  for (var walk = startWalk(channel, split); walk.element < walk.end; advance(&walk)) {
    total += input[walk.address];
  }
  let sliceMean = total / f32(sliceEnd(split) - sliceStart(split));

  var squaredDeviations = 0.0;
  for (var walk = startWalk(channel, split); walk.element < walk.end; advance(&walk)) {
    let deviation = input[walk.address] - sliceMean;
    squaredDeviations += deviation * deviation;
  }
  partialsOut[2u * partial] = sliceMean;
  partialsOut[2u * partial + 1u] = squaredDeviations;
}

// Per channel: combines the slices (Chan et al.'s pairwise update of count, mean and M2), saves
// mean and inverse standard deviation for the normalisation and the backward pass, and moves
// the running statistics towards the batch's: PyTorch keeps the unbiased variance there.
@compute @workgroup_size(64)
fn stats_finalize(
  @builtin(global_invocation_id) id: vec3u,
  @builtin(num_workgroups) groups: vec3u,
) {
  let channel = flatIndex(id, groups);
  if (channel >= params.channels) { return; }

  var count = 0.0;
  var mean = 0.0;
  var squaredDeviations = 0.0;
  for (var split = 0u; split < params.splits; split += 1u) {
    let partial = channel * params.splits + split;
    let sliceCount = f32(sliceEnd(split) - sliceStart(split));
    let combinedCount = count + sliceCount;
    let delta = partials[2u * partial] - mean;
    mean += delta * sliceCount / combinedCount;
    squaredDeviations += partials[2u * partial + 1u]
      + delta * delta * count * sliceCount / combinedCount;
    count = combinedCount;
  }

  let biasedVariance = squaredDeviations / count;
  let unbiasedVariance = squaredDeviations / (count - 1.0);
  statsOut[channel] = mean;
  statsOut[params.channels + channel] = 1.0 / sqrt(biasedVariance + params.eps);

  let keep = 1.0 - params.momentum;
  runningMean[channel] = keep * runningMean[channel] + params.momentum * mean;
  runningVar[channel] = keep * runningVar[channel] + params.momentum * unbiasedVariance;
}

// Evaluation: the running statistics take the place of the batch's.
@compute @workgroup_size(64)
fn stats_from_running(
  @builtin(global_invocation_id) id: vec3u,
  @builtin(num_workgroups) groups: vec3u,
) {
  let channel = flatIndex(id, groups);
  if (channel >= params.channels) { return; }
  statsOut[channel] = runningMean[channel];
  statsOut[params.channels + channel] = 1.0 / sqrt(runningVar[channel] + params.eps);
}

// output = (x - mean) * inverseStd * weight + bias
@compute @workgroup_size(64)
fn normalize_forward(
  @builtin(global_invocation_id) id: vec3u,
  @builtin(num_workgroups) groups: vec3u,
) {
  let index = flatIndex(id, groups);
  if (index >= params.batch * params.channels * params.spatial) { return; }
  let channel = channelOf(index);
  let scale = stats[params.channels + channel] * weight[channel];
  output[index] = (input[index] - stats[channel]) * scale + bias[channel];
}

// ---- Backward ----

// Per slice: sum(gradOutput) and sum(gradOutput * normalised input).
@compute @workgroup_size(64)
fn grad_partials(
  @builtin(global_invocation_id) id: vec3u,
  @builtin(num_workgroups) groups: vec3u,
) {
  let partial = flatIndex(id, groups);
  if (partial >= params.channels * params.splits) { return; }
  let channel = partial / params.splits;
  let split = partial % params.splits;
  let mean = stats[channel];
  let inverseStd = stats[params.channels + channel];

  var gradSum = 0.0;
  var gradNormalisedSum = 0.0;
  for (var walk = startWalk(channel, split); walk.element < walk.end; advance(&walk)) {
    let grad = gradOutput[walk.address];
    gradSum += grad;
    gradNormalisedSum += grad * (input[walk.address] - mean) * inverseStd;
  }
  partialsOut[2u * partial] = gradSum;
  partialsOut[2u * partial + 1u] = gradNormalisedSum;
}

// Per channel: gradBias = sum(gradOutput), gradWeight = sum(gradOutput * normalised input).
@compute @workgroup_size(64)
fn grad_finalize(
  @builtin(global_invocation_id) id: vec3u,
  @builtin(num_workgroups) groups: vec3u,
) {
  let channel = flatIndex(id, groups);
  if (channel >= params.channels) { return; }

  var gradSum = 0.0;
  var gradNormalisedSum = 0.0;
  for (var split = 0u; split < params.splits; split += 1u) {
    let partial = channel * params.splits + split;
    gradSum += partials[2u * partial];
    gradNormalisedSum += partials[2u * partial + 1u];
  }
  gradBias[channel] = gradSum;
  gradWeight[channel] = gradNormalisedSum;
}

// With batch statistics the mean and variance depend on every input, which adds two terms:
//   gradInput = weight * inverseStd * (g - (sum(g) + xHat * sum(g * xHat)) / n)
// With running statistics they are constants:
//   gradInput = weight * inverseStd * g
@compute @workgroup_size(64)
fn grad_input(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let index = flatIndex(id, groups);
  if (index >= params.batch * params.channels * params.spatial) { return; }
  let channel = channelOf(index);
  let inverseStd = stats[params.channels + channel];
  let scale = weight[channel] * inverseStd;

  var grad = gradOutput[index];
  if (params.training != 0u) {
    let normalised = (input[index] - stats[channel]) * inverseStd;
    let count = f32(perChannel());
    grad -= (sumGrad[channel] + normalised * sumGradNormalised[channel]) / count;
  }
  gradInput[index] = scale * grad;
}
