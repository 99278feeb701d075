// The Frechet distance between two Gaussians fitted to feature vectors, the number behind FID.
// It runs once per evaluation on a few hundred dimensions, so it stays on the CPU in float64:
// the matrix square root inside it loses half its digits near singular covariances, and float32
// would leave almost none.
//
//   d^2 = |mu_a - mu_b|^2 + Tr(S_a) + Tr(S_b) - 2 Tr sqrt(S_a S_b)
//
// S_a S_b is not symmetric, but R S_b R with R = sqrt(S_a) is similar to it and is symmetric
// positive semidefinite, so its eigenvalues are real, non-negative and found by a symmetric
// solver; Tr sqrt(S_a S_b) is the sum of their square roots.
import { ShaderganError } from '../errors.ts';

export interface FeatureStatistics {
  dimension: number;
  count: number;
  mean: Float64Array;
  /** [dimension, dimension], row-major, unbiased (divided by count - 1). */
  covariance: Float64Array;
}

/** Mean and covariance of `count` feature rows of `dimension` values each, in float64. */
export function featureStatistics(
  features: Float32Array | Float64Array,
  count: number,
  dimension: number,
): FeatureStatistics {
  if (!Number.isSafeInteger(dimension) || dimension < 1) {
    throw new ShaderganError(`Feature dimension must be a positive integer, got ${dimension}.`);
  }
  if (!Number.isSafeInteger(count) || count < 2) {
    throw new ShaderganError(
      `Feature statistics need at least 2 feature rows to estimate a covariance, got ${count}.`,
    );
  }
  if (features.length !== count * dimension) {
    throw new ShaderganError(
      `Expected ${count} rows of ${dimension} features (${count * dimension} values), ` +
        `got ${features.length} values.`,
    );
  }

  // First pass: the mean, summed as offsets from the first row. Features that share a large
  // offset (1e6 + noise) then add up as small numbers and keep their low digits.
  const shift = Float64Array.from(features.subarray(0, dimension));
  const offsetSums = new Float64Array(dimension);
  for (let row = 0; row < count; row++) {
    const rowStart = row * dimension;
    for (let column = 0; column < dimension; column++) {
      const value = features[rowStart + column];
      if (!Number.isFinite(value)) {
        throw new ShaderganError(
          `Feature row ${row} (column ${column}) is not finite: ${value}. ` +
            'FID needs finite features.',
        );
      }
      offsetSums[column] += value - shift[column];
    }
  }
  const mean = new Float64Array(dimension);
  for (let column = 0; column < dimension; column++) {
    mean[column] = shift[column] + offsetSums[column] / count;
  }

  // Second pass: products of centred values, upper triangle only. The centred column sums
  // would be zero with exact arithmetic; subtracting their product removes the first-order
  // error that rounding of the mean leaves behind (the corrected two-pass algorithm).
  const centred = new Float64Array(dimension);
  const centredSums = new Float64Array(dimension);
  const products = new Float64Array(dimension * dimension);
  for (let row = 0; row < count; row++) {
    const rowStart = row * dimension;
    for (let column = 0; column < dimension; column++) {
      centred[column] = features[rowStart + column] - mean[column];
      centredSums[column] += centred[column];
    }
    for (let i = 0; i < dimension; i++) {
      const centredI = centred[i];
      if (centredI === 0) continue;
      const productRow = i * dimension;
      for (let j = i; j < dimension; j++) products[productRow + j] += centredI * centred[j];
    }
  }

  const covariance = new Float64Array(dimension * dimension);
  for (let i = 0; i < dimension; i++) {
    for (let j = i; j < dimension; j++) {
      const sumOfProducts = products[i * dimension + j] - (centredSums[i] * centredSums[j]) / count;
      const value = sumOfProducts / (count - 1);
      covariance[i * dimension + j] = value;
      covariance[j * dimension + i] = value;
    }
  }
  return { dimension, count, mean, covariance };
}

/**
 * The squared Frechet distance between N(a.mean, a.covariance) and N(b.mean, b.covariance),
 * i.e. the FID when both come from the same feature extractor. Throws a ShaderganError for
 * mismatched dimensions, non-finite values, or a covariance so far from positive semidefinite
 * that the distance comes out clearly negative.
 */
export function frechetDistance(a: FeatureStatistics, b: FeatureStatistics): number {
  checkStatistics(a, 'first');
  checkStatistics(b, 'second');
  if (a.dimension !== b.dimension) {
    throw new ShaderganError(
      `Cannot compare feature statistics of dimension ${a.dimension} and ${b.dimension}; ` +
        'both sides must come from the same feature extractor.',
    );
  }
  const n = a.dimension;

  let meanTerm = 0;
  let traceA = 0;
  let traceB = 0;
  for (let i = 0; i < n; i++) {
    const difference = a.mean[i] - b.mean[i];
    meanTerm += difference * difference;
    traceA += a.covariance[i * n + i];
    traceB += b.covariance[i * n + i];
  }

  const traceOfRoot = traceOfSquareRootOfProduct(a.covariance, b.covariance, n);

  const distance = meanTerm + traceA + traceB - 2 * traceOfRoot;
  if (distance >= 0) return distance;

  // Near a singular covariance an eigenvalue error of n * eps * |M| becomes sqrt(n * eps * |M|)
  // after the square root, so rounding noise in the result is about sqrt(n * eps) relative.
  const scale = meanTerm + Math.abs(traceA) + Math.abs(traceB);
  const tolerance = 10 * Math.sqrt(n * Number.EPSILON) * scale;
  if (distance >= -tolerance) return 0;
  throw new ShaderganError(
    `The Frechet distance came out negative (${distance}), far beyond rounding; ` +
      'a covariance matrix is not positive semidefinite.',
  );
}

/**
 * Eigenvalues and eigenvectors of a symmetric n x n matrix (row-major) by cyclic Jacobi
 * rotations. Values are ascending; column j of `vectors` (row-major n x n) belongs to
 * values[j], so matrix = vectors * diag(values) * vectors^T. Only the symmetric part
 * (matrix + matrix^T) / 2 is used, so rounding asymmetry in the input does no harm.
 */
export function symmetricEigen(
  matrix: Float64Array,
  n: number,
): { values: Float64Array; vectors: Float64Array } {
  if (!Number.isSafeInteger(n) || n < 1) {
    throw new ShaderganError(`Matrix size must be a positive integer, got ${n}.`);
  }
  if (matrix.length !== n * n) {
    throw new ShaderganError(`A ${n} x ${n} matrix needs ${n * n} values, got ${matrix.length}.`);
  }
  checkFinite(matrix, 'The matrix');

  // Rows of `rotated` are the eigenvectors: row updates stay contiguous inside the sweeps.
  const rotated = identity(n);
  const unordered = jacobiEigenvalues(symmetricPart(matrix, n), n, rotated);
  const order = Array.from(unordered.keys()).sort((i, j) => unordered[i] - unordered[j]);

  const values = new Float64Array(n);
  const vectors = new Float64Array(n * n);
  order.forEach((source, target) => {
    values[target] = unordered[source];
    for (let row = 0; row < n; row++) vectors[row * n + target] = rotated[source * n + row];
  });
  return { values, vectors };
}

// A matrix is diagonal once a full sweep finds nothing worth rotating; quadratic convergence
// gets there in well under 20 sweeps, so hitting this means something is badly wrong.
const MAX_SWEEPS = 60;

/**
 * Diagonalises `work` (symmetric, n x n, destroyed; only its upper triangle is read) in place
 * and returns its diagonal. When `eigenvectorRows` is given (start it as the identity) every
 * rotation is applied to its rows.
 */
function jacobiEigenvalues(
  work: Float64Array,
  n: number,
  eigenvectorRows: Float64Array | null,
): Float64Array {
  for (let sweep = 0; sweep < MAX_SWEEPS; sweep++) {
    let rotations = 0;
    for (let p = 0; p < n - 1; p++) {
      for (let q = p + 1; q < n; q++) {
        const offDiagonal = Math.abs(work[p * n + q]);
        // Skipping elements this small relative to their diagonal keeps small eigenvalues
        // accurate relative to themselves, not just to the largest one.
        const negligible =
          Number.EPSILON *
          Math.sqrt(Math.abs(work[p * n + p])) *
          Math.sqrt(Math.abs(work[q * n + q]));
        if (offDiagonal <= negligible) continue;
        rotate(work, n, p, q, eigenvectorRows);
        rotations++;
      }
    }
    if (rotations === 0) {
      const diagonal = new Float64Array(n);
      for (let i = 0; i < n; i++) diagonal[i] = work[i * n + i];
      return diagonal;
    }
  }
  throw new ShaderganError(`Jacobi eigen decomposition did not converge in ${MAX_SWEEPS} sweeps.`);
}

/**
 * One Jacobi rotation in the (p, q) plane that zeroes work[p][q]. Only the upper triangle
 * (row <= column) of `work` is read or written: mirroring every update into the lower one
 * would double the strided stores that dominate a sweep.
 */
function rotate(
  work: Float64Array,
  n: number,
  p: number,
  q: number,
  eigenvectorRows: Float64Array | null,
): void {
  const rowP = p * n;
  const rowQ = q * n;
  const offDiagonal = work[rowP + q];

  // tangent is the smaller root of t^2 + 2 theta t - 1 = 0, so the angle is at most pi/4;
  // for huge theta, t ~ 1 / (2 theta) avoids overflowing theta^2.
  const theta = (work[rowQ + q] - work[rowP + p]) / (2 * offDiagonal);
  const absTheta = Math.abs(theta);
  const magnitude =
    absTheta > 1e150 ? 1 / (2 * absTheta) : 1 / (absTheta + Math.sqrt(absTheta * absTheta + 1));
  const tangent = theta < 0 ? -magnitude : magnitude;
  const cosine = 1 / Math.sqrt(1 + tangent * tangent);
  const sine = tangent * cosine;

  work[rowP + p] -= tangent * offDiagonal;
  work[rowQ + q] += tangent * offDiagonal;
  work[rowP + q] = 0;

  // Element (k, p) lives at [k][p] above the diagonal and at [p][k] below it; likewise for q.
  for (let columnP = p, columnQ = q; columnP < rowP; columnP += n, columnQ += n) {
    const valueP = work[columnP];
    const valueQ = work[columnQ];
    work[columnP] = cosine * valueP - sine * valueQ;
    work[columnQ] = sine * valueP + cosine * valueQ;
  }
  for (let k = p + 1, columnQ = rowP + n + q; k < q; k++, columnQ += n) {
    const valueP = work[rowP + k];
    const valueQ = work[columnQ];
    work[rowP + k] = cosine * valueP - sine * valueQ;
    work[columnQ] = sine * valueP + cosine * valueQ;
  }
  for (let k = q + 1; k < n; k++) {
    const valueP = work[rowP + k];
    const valueQ = work[rowQ + k];
    work[rowP + k] = cosine * valueP - sine * valueQ;
    work[rowQ + k] = sine * valueP + cosine * valueQ;
  }

  if (eigenvectorRows === null) return;
  for (let k = 0; k < n; k++) {
    const valueP = eigenvectorRows[rowP + k];
    const valueQ = eigenvectorRows[rowQ + k];
    eigenvectorRows[rowP + k] = cosine * valueP - sine * valueQ;
    eigenvectorRows[rowQ + k] = sine * valueP + cosine * valueQ;
  }
}

/**
 * Eigenvalues at or below this are indistinguishable from rounding of a zero one (a rank
 * deficient covariance, or a product formed from one). Taking their square roots would turn
 * eps-sized noise into sqrt(eps)-sized error, so they count as zero.
 */
function roundingFloor(eigenvalues: Float64Array, n: number): number {
  let largest = 0;
  for (const value of eigenvalues) largest = Math.max(largest, Math.abs(value));
  return n * Number.EPSILON * largest;
}

/**
 * Tr sqrt(S_a S_b) for symmetric positive semidefinite S_a and S_b.
 *
 * With S_a = V Lambda V^T and R = sqrt(S_a) = V sqrt(Lambda) V^T, the symmetric R S_b R
 * equals V (sqrt(Lambda) V^T S_b V sqrt(Lambda)) V^T, so the bracket has the same eigenvalues
 * and R itself is never formed. The bracket is diagonal up to rounding for identical statistics
 * and close to diagonal for similar ones, so the second Jacobi run needs fewer sweeps than it
 * would on R S_b R.
 *
 * Limitation: the bracket's eigenvalues are the squares of the covariance scales, so directions
 * whose variance is below about sqrt(n * eps) times the largest are lost in rounding; for such
 * nearly singular covariances the distance is accurate to about 1e-7 relative, not 1e-15.
 */
function traceOfSquareRootOfProduct(
  covarianceA: Float64Array,
  covarianceB: Float64Array,
  n: number,
): number {
  const eigenvectorRows = identity(n);
  const eigenvaluesA = jacobiEigenvalues(symmetricPart(covarianceA, n), n, eigenvectorRows);
  const floorA = roundingFloor(eigenvaluesA, n);
  const rootEigenvaluesA = eigenvaluesA.map((value) => (value > floorA ? Math.sqrt(value) : 0));

  // inBasis[k][l] = sqrt(lambda_k) (v_k . S_b v_l) sqrt(lambda_l); Jacobi reads only k <= l.
  const projected = multiply(eigenvectorRows, symmetricPart(covarianceB, n), n); // V^T S_b
  const inBasis = new Float64Array(n * n);
  for (let k = 0; k < n; k++) {
    if (rootEigenvaluesA[k] === 0) continue;
    const projectedRow = projected.subarray(k * n, (k + 1) * n);
    for (let l = k; l < n; l++) {
      if (rootEigenvaluesA[l] === 0) continue;
      const vector = eigenvectorRows.subarray(l * n, (l + 1) * n);
      let dot = 0;
      for (let m = 0; m < n; m++) dot += projectedRow[m] * vector[m];
      inBasis[k * n + l] = rootEigenvaluesA[k] * dot * rootEigenvaluesA[l];
    }
  }

  const eigenvalues = jacobiEigenvalues(inBasis, n, null);
  const floor = roundingFloor(eigenvalues, n);
  let trace = 0;
  for (const value of eigenvalues) if (value > floor) trace += Math.sqrt(value);
  return trace;
}

/** left * right for n x n row-major matrices. */
function multiply(left: Float64Array, right: Float64Array, n: number): Float64Array {
  const product = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    const productRow = product.subarray(i * n, (i + 1) * n);
    for (let k = 0; k < n; k++) {
      const factor = left[i * n + k];
      if (factor === 0) continue;
      const rightRow = k * n;
      for (let j = 0; j < n; j++) productRow[j] += factor * right[rightRow + j];
    }
  }
  return product;
}

/** (matrix + matrix^T) / 2 as a new array. */
function symmetricPart(matrix: Float64Array, n: number): Float64Array {
  const result = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    result[i * n + i] = matrix[i * n + i];
    for (let j = i + 1; j < n; j++) {
      const average = 0.5 * (matrix[i * n + j] + matrix[j * n + i]);
      result[i * n + j] = average;
      result[j * n + i] = average;
    }
  }
  return result;
}

function identity(n: number): Float64Array {
  const result = new Float64Array(n * n);
  for (let i = 0; i < n; i++) result[i * n + i] = 1;
  return result;
}

function checkStatistics(statistics: FeatureStatistics, which: string): void {
  const n = statistics.dimension;
  if (!Number.isSafeInteger(n) || n < 1) {
    throw new ShaderganError(`The ${which} statistics have an invalid dimension: ${n}.`);
  }
  if (statistics.mean.length !== n || statistics.covariance.length !== n * n) {
    throw new ShaderganError(
      `The ${which} statistics say dimension ${n} but hold a mean of ${statistics.mean.length} ` +
        `values and a covariance of ${statistics.covariance.length} (expected ${n} and ${n * n}).`,
    );
  }
  checkFinite(statistics.mean, `The ${which} mean`);
  checkFinite(statistics.covariance, `The ${which} covariance`);
}

function checkFinite(values: Float64Array, what: string): void {
  const index = values.findIndex((value) => !Number.isFinite(value));
  if (index >= 0) {
    throw new ShaderganError(`${what} has a non-finite value at index ${index}: ${values[index]}.`);
  }
}
