// shadergan keeps PyTorch's layouts (images NCHW, conv weights [out, in, kh, kw], transposed
// conv weights [in, out, kh, kw]); TensorFlow.js wants images NHWC and filters
// [kh, kw, in, out]. The bench feeds both engines the same numbers, so it converts here.

/** Reorders a dense row-major array of `shape` so that new axis i is old axis order[i]. */
export function permute(data: Float32Array, shape: readonly number[], order: readonly number[]) {
  const rank = shape.length;
  const strides = new Array<number>(rank);
  let stride = 1;
  for (let axis = rank - 1; axis >= 0; axis -= 1) {
    strides[axis] = stride;
    stride *= shape[axis];
  }
  const newShape = order.map((axis) => shape[axis]);
  const newStrides = order.map((axis) => strides[axis]);
  const out = new Float32Array(data.length);
  const index = new Array<number>(rank).fill(0);
  for (let position = 0; position < out.length; position += 1) {
    let source = 0;
    for (let axis = 0; axis < rank; axis += 1) source += index[axis] * newStrides[axis];
    out[position] = data[source];
    for (let axis = rank - 1; axis >= 0; axis -= 1) {
      index[axis] += 1;
      if (index[axis] < newShape[axis]) break;
      index[axis] = 0;
    }
  }
  return { data: out, shape: newShape };
}

export const NCHW_TO_NHWC = [0, 2, 3, 1];
export const NHWC_TO_NCHW = [0, 3, 1, 2];
/** [out, in, kh, kw] -> [kh, kw, in, out] */
export const OIHW_TO_HWIO = [2, 3, 1, 0];
/** [kh, kw, in, out] -> [out, in, kh, kw] */
export const HWIO_TO_OIHW = [3, 2, 0, 1];

/**
 * Largest absolute difference over the largest magnitude in either result: one number per
 * comparison that does not blow up where a value happens to be near zero.
 */
export function relativeDifference(ours: Float32Array, theirs: Float32Array): number {
  if (ours.length !== theirs.length) return Infinity;
  let difference = 0;
  let magnitude = 0;
  for (let i = 0; i < ours.length; i += 1) {
    const a = ours[i];
    const b = theirs[i];
    if (!Number.isFinite(a) || !Number.isFinite(b)) return Infinity;
    difference = Math.max(difference, Math.abs(a - b));
    magnitude = Math.max(magnitude, Math.abs(a), Math.abs(b));
  }
  return magnitude === 0 ? difference : difference / magnitude;
}
