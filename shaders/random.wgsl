// Counter-based random numbers: element `index` of a draw is a pure function of
// (seed, offset + index), so any element can be computed by any invocation in any order, and a
// draw is reproduced exactly from its seed and offset. The function is Philox4x32-10 (Salmon et
// al., "Parallel random numbers: as easy as 1, 2, 3", 2011), the generator PyTorch uses on
// CUDA: ten rounds of multiply, swap and xor with a key schedule from the seed.
//
// Uniforms take the top 24 bits of one output word, so they are exact multiples of 2^-24 in
// [0, 1). Normals use two words in the Box-Muller transform.

struct Params {
  count: u32,
}

// The seed and the first counter as 64-bit numbers in 32-bit halves. They live in a storage
// buffer because they change with every draw, and every distinct uniform value would cost a new
// uniform buffer and bind group that the kernel keeps.
struct Stream {
  seedLow: u32,
  seedHigh: u32,
  offsetLow: u32,
  offsetHigh: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> stream: Stream;
@group(0) @binding(2) var<storage, read_write> output: array<f32>;

const WORKGROUP_SIZE = 64u;

const PHILOX_MULTIPLIER_0 = 0xD2511F53u;
const PHILOX_MULTIPLIER_1 = 0xCD9E8D57u;
// The golden ratio and sqrt(3) - 1 as 32-bit fractions: the key schedule's increments.
const PHILOX_KEY_STEP_0 = 0x9E3779B9u;
const PHILOX_KEY_STEP_1 = 0xBB67AE85u;

const TWO_PI = 6.283185307179586;
const TWO_TO_MINUS_24 = 5.9604644775390625e-8;

// The upper 32 bits of the 64-bit product a * b (WGSL has no 64-bit integers): four 16-bit
// partial products, with the carry out of the lower half added back.
fn multiplyHigh(a: u32, b: u32) -> u32 {
  let aLow = a & 0xFFFFu;
  let aHigh = a >> 16u;
  let bLow = b & 0xFFFFu;
  let bHigh = b >> 16u;
  let lowLow = aLow * bLow;
  let lowHigh = aLow * bHigh;
  let highLow = aHigh * bLow;
  let carry = ((lowLow >> 16u) + (lowHigh & 0xFFFFu) + (highLow & 0xFFFFu)) >> 16u;
  return aHigh * bHigh + (lowHigh >> 16u) + (highLow >> 16u) + carry;
}

fn philoxRound(counter: vec4u, key: vec2u) -> vec4u {
  let high0 = multiplyHigh(PHILOX_MULTIPLIER_0, counter.x);
  let low0 = PHILOX_MULTIPLIER_0 * counter.x;
  let high1 = multiplyHigh(PHILOX_MULTIPLIER_1, counter.z);
  let low1 = PHILOX_MULTIPLIER_1 * counter.z;
  return vec4u(high1 ^ counter.y ^ key.x, low1, high0 ^ counter.w ^ key.y, low0);
}

fn philox4x32(counterIn: vec4u, keyIn: vec2u) -> vec4u {
  var counter = counterIn;
  var key = keyIn;
  for (var roundIndex = 0u; roundIndex < 10u; roundIndex += 1u) {
    if (roundIndex > 0u) { key += vec2u(PHILOX_KEY_STEP_0, PHILOX_KEY_STEP_1); }
    counter = philoxRound(counter, key);
  }
  return counter;
}

// Four random words for element `index` of this draw: counter (offset + index) as 64 bits.
fn randomWords(index: u32) -> vec4u {
  let counterLow = stream.offsetLow + index;
  let counterHigh = stream.offsetHigh + select(0u, 1u, counterLow < index);
  let key = vec2u(stream.seedLow, stream.seedHigh);
  return philox4x32(vec4u(counterLow, counterHigh, 0u, 0u), key);
}

@compute @workgroup_size(64)
fn uniform_fill(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let index = id.x + id.y * groups.x * WORKGROUP_SIZE;
  if (index >= params.count) { return; }
  output[index] = f32(randomWords(index).x >> 8u) * TWO_TO_MINUS_24;
}

@compute @workgroup_size(64)
fn normal_fill(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let index = id.x + id.y * groups.x * WORKGROUP_SIZE;
  if (index >= params.count) { return; }
  let words = randomWords(index);
  // radius uses (0, 1], never 0, so its logarithm is finite: |normal| <= sqrt(48 ln 2) ~ 5.8.
  let radiusUniform = f32((words.x >> 8u) + 1u) * TWO_TO_MINUS_24;
  let angleUniform = f32(words.y >> 8u) * TWO_TO_MINUS_24;
  output[index] = sqrt(-2.0 * log(radiusUniform)) * cos(TWO_PI * angleUniform);
}
