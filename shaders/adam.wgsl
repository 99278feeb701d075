// One Adam step (Kingma and Ba, as torch.optim.Adam computes it) for one parameter tensor, in
// place: both moment estimates and the parameter are read and written by the same invocation.
//
//   g     = grad + weightDecay * param            (L2 penalty, not AdamW's decoupled decay)
//   m     = beta1 * m + (1 - beta1) * g
//   v     = beta2 * v + (1 - beta2) * g^2
//   param = param - stepSize * m / (sqrt(v) / biasCorrection2Sqrt + eps)
//
// with stepSize = lr / (1 - beta1^step) and biasCorrection2Sqrt = sqrt(1 - beta2^step). The CPU
// computes these and 1 - beta in double precision, as PyTorch does: 1.0 - beta2 in float32 would
// be off by 5e-5 relative for beta2 = 0.999, since float32(0.999) is not 0.999.

struct Params {
  count: u32,
}

// Values that change every step live in a storage buffer, not in the uniform parameters: each
// distinct uniform value would cost a new uniform buffer and bind group that the kernel keeps.
struct Settings {
  beta1: f32,
  oneMinusBeta1: f32,
  beta2: f32,
  oneMinusBeta2: f32,
  eps: f32,
  weightDecay: f32,
  stepSize: f32,
  biasCorrection2Sqrt: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> settings: Settings;
@group(0) @binding(2) var<storage, read> grad: array<f32>;
@group(0) @binding(3) var<storage, read_write> param: array<f32>;
// The first and second moment estimates, PyTorch's exp_avg and exp_avg_sq.
@group(0) @binding(4) var<storage, read_write> m: array<f32>;
@group(0) @binding(5) var<storage, read_write> v: array<f32>;

const WORKGROUP_SIZE = 64u;

@compute @workgroup_size(64)
fn adam_update(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let index = id.x + id.y * groups.x * WORKGROUP_SIZE;
  if (index >= params.count) { return; }

  let value = param[index];
  let gradient = grad[index] + settings.weightDecay * value;
  let firstMoment = settings.beta1 * m[index] + settings.oneMinusBeta1 * gradient;
  let secondMoment = settings.beta2 * v[index] + settings.oneMinusBeta2 * gradient * gradient;
  m[index] = firstMoment;
  v[index] = secondMoment;

  let denominator = sqrt(secondMoment) / settings.biasCorrection2Sqrt + settings.eps;
  param[index] = value - settings.stepSize * firstMoment / denominator;
}
