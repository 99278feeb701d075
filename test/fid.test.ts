// FID statistics and the Frechet distance against closed forms (diagonal and commuting
// covariances, 2 x 2 matrices) and against an independent matrix square root (Denman-Beavers
// iteration on S_a S_b), all in float64 on the CPU.
import { describe, expect, it } from 'vitest';

import { ShaderganError } from '../src/errors.ts';
import {
  featureStatistics,
  frechetDistance,
  symmetricEigen,
  type FeatureStatistics,
} from '../src/eval/fid.ts';
import { SeededRandom } from '../src/train/random.ts';

// ---- small float64 matrix helpers, row-major n x n ----

function normals(count: number, seed: number): Float64Array {
  const random = new SeededRandom(seed);
  return Float64Array.from({ length: count }, () => random.normal());
}

function matmul(left: Float64Array, right: Float64Array, n: number): Float64Array {
  const product = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < n; k++) {
      for (let j = 0; j < n; j++) product[i * n + j] += left[i * n + k] * right[k * n + j];
    }
  }
  return product;
}

function transpose(matrix: Float64Array, n: number): Float64Array {
  const result = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) result[j * n + i] = matrix[i * n + j];
  return result;
}

function identity(n: number): Float64Array {
  const result = new Float64Array(n * n);
  for (let i = 0; i < n; i++) result[i * n + i] = 1;
  return result;
}

function trace(matrix: Float64Array, n: number): number {
  let sum = 0;
  for (let i = 0; i < n; i++) sum += matrix[i * n + i];
  return sum;
}

function maxAbsDifference(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  let largest = 0;
  for (let i = 0; i < expected.length; i++) {
    largest = Math.max(largest, Math.abs(actual[i] - expected[i]));
  }
  return largest;
}

/** A random orthogonal matrix: Gram-Schmidt, run twice, on the rows of a Gaussian matrix. */
function randomOrthogonal(n: number, seed: number): Float64Array {
  const q = normals(n * n, seed);
  for (let pass = 0; pass < 2; pass++) {
    for (let row = 0; row < n; row++) {
      for (let earlier = 0; earlier < row; earlier++) {
        let dot = 0;
        for (let k = 0; k < n; k++) dot += q[row * n + k] * q[earlier * n + k];
        for (let k = 0; k < n; k++) q[row * n + k] -= dot * q[earlier * n + k];
      }
      let norm = 0;
      for (let k = 0; k < n; k++) norm += q[row * n + k] ** 2;
      for (let k = 0; k < n; k++) q[row * n + k] /= Math.sqrt(norm);
    }
  }
  return q;
}

/** Q diag(values) Q^T. */
function withEigenvalues(q: Float64Array, values: readonly number[], n: number): Float64Array {
  const scaled = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) scaled[i * n + j] = q[i * n + j] * values[j];
  }
  return matmul(scaled, transpose(q, n), n);
}

function diagonal(values: readonly number[]): Float64Array {
  const n = values.length;
  const result = new Float64Array(n * n);
  values.forEach((value, i) => (result[i * n + i] = value));
  return result;
}

/** A random symmetric positive definite matrix G G^T / n + ridge I. */
function randomSpd(n: number, seed: number, ridge: number): Float64Array {
  const g = normals(n * n, seed);
  const result = matmul(g, transpose(g, n), n);
  for (let i = 0; i < n * n; i++) result[i] /= n;
  for (let i = 0; i < n; i++) result[i * n + i] += ridge;
  return result;
}

function swapRows(matrix: Float64Array, n: number, first: number, second: number): void {
  for (let k = 0; k < n; k++) {
    const saved = matrix[first * n + k];
    matrix[first * n + k] = matrix[second * n + k];
    matrix[second * n + k] = saved;
  }
}

/** Gauss-Jordan inverse with partial pivoting. */
function inverse(matrix: Float64Array, n: number): Float64Array {
  const work = Float64Array.from(matrix);
  const result = identity(n);
  for (let column = 0; column < n; column++) {
    let pivot = column;
    for (let row = column + 1; row < n; row++) {
      if (Math.abs(work[row * n + column]) > Math.abs(work[pivot * n + column])) pivot = row;
    }
    swapRows(work, n, column, pivot);
    swapRows(result, n, column, pivot);
    const scale = 1 / work[column * n + column];
    for (let k = 0; k < n; k++) {
      work[column * n + k] *= scale;
      result[column * n + k] *= scale;
    }
    for (let row = 0; row < n; row++) {
      const factor = work[row * n + column];
      if (row === column || factor === 0) continue;
      for (let k = 0; k < n; k++) {
        work[row * n + k] -= factor * work[column * n + k];
        result[row * n + k] -= factor * result[column * n + k];
      }
    }
  }
  return result;
}

/** Determinant by Gaussian elimination with partial pivoting. */
function determinant(matrix: Float64Array, n: number): number {
  const work = Float64Array.from(matrix);
  let result = 1;
  for (let column = 0; column < n; column++) {
    let pivot = column;
    for (let row = column + 1; row < n; row++) {
      if (Math.abs(work[row * n + column]) > Math.abs(work[pivot * n + column])) pivot = row;
    }
    if (pivot !== column) {
      result = -result;
      swapRows(work, n, column, pivot);
    }
    result *= work[column * n + column];
    for (let row = column + 1; row < n; row++) {
      const factor = work[row * n + column] / work[column * n + column];
      for (let k = column; k < n; k++) work[row * n + k] -= factor * work[column * n + k];
    }
  }
  return result;
}

/**
 * Tr sqrtm(S_a S_b) by the Denman-Beavers iteration Y <- (Y + Z^-1) / 2, Z <- (Z + Y^-1) / 2,
 * Y_0 = S_a S_b, Z_0 = I, which converges to the principal square root when all eigenvalues
 * are positive. It never symmetrises or diagonalises anything, unlike the code under test.
 */
function denmanBeaversTraceSqrt(covarianceA: Float64Array, covarianceB: Float64Array, n: number) {
  let y = matmul(covarianceA, covarianceB, n);
  let z = identity(n);
  for (let iteration = 0; iteration < 100; iteration++) {
    const inverseY = inverse(y, n);
    const inverseZ = inverse(z, n);
    const nextY = y.map((value, i) => 0.5 * (value + inverseZ[i]));
    const nextZ = z.map((value, i) => 0.5 * (value + inverseY[i]));
    const change = maxAbsDifference(nextY, y);
    y = nextY;
    z = nextZ;
    if (change < 1e-15 * trace(y, n)) break;
  }
  return trace(y, n);
}

/** Statistics given directly; the sample count does not enter the distance. */
function statistics(mean: ArrayLike<number>, covariance: Float64Array): FeatureStatistics {
  return { dimension: mean.length, count: 100, mean: Float64Array.from(mean), covariance };
}

function squaredDistance(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += (a[i] - b[i]) ** 2;
  return sum;
}

/** The closed form for commuting covariances with eigenvalues a_i and b_i in the same basis. */
function commutingClosedForm(a: readonly number[], b: readonly number[], meanTerm: number) {
  return meanTerm + a.reduce((sum, value, i) => sum + (Math.sqrt(value) - Math.sqrt(b[i])) ** 2, 0);
}

function uniformValues(count: number, seed: number, low: number, high: number): number[] {
  const random = new SeededRandom(seed);
  return Array.from({ length: count }, () => low + (high - low) * random.next());
}

// ---- featureStatistics ----

describe('featureStatistics', () => {
  // rows (1, 2), (3, 6), (5, 1): mean (3, 3); deviations (-2, -1), (0, 3), (2, -2)
  // var0 = (4 + 0 + 4) / 2 = 4, var1 = (1 + 9 + 4) / 2 = 7, cov01 = (2 + 0 - 4) / 2 = -1
  const rows = [1, 2, 3, 6, 5, 1];

  it.each([
    ['Float64Array', Float64Array.from(rows)],
    ['Float32Array', Float32Array.from(rows)],
  ])('matches a hand computation on three rows (%s)', (_, features) => {
    const result = featureStatistics(features, 3, 2);
    expect(result.dimension).toBe(2);
    expect(result.count).toBe(3);
    expect(Array.from(result.mean)).toEqual([3, 3]);
    expect(Array.from(result.covariance)).toEqual([4, -1, -1, 7]);
  });

  it('keeps precision when every feature sits on a large offset (1e6 + small noise)', () => {
    const count = 2000;
    const dimension = 6;
    const offset = 1e6;
    const noise = normals(count * dimension, 11).map((value, i) => 1e-3 * value + 1e-4 * (i % 3));
    const shifted = noise.map((value) => offset + value);
    // offset + value rounds; subtracting the offset again is exact, so this is the data the
    // shifted features really hold, and its statistics are computed at unit scale.
    const held = shifted.map((value) => value - offset);

    const expectedMean = new Float64Array(dimension);
    for (let row = 0; row < count; row++) {
      for (let j = 0; j < dimension; j++) expectedMean[j] += held[row * dimension + j] / count;
    }
    const expectedCovariance = new Float64Array(dimension * dimension);
    for (let row = 0; row < count; row++) {
      for (let i = 0; i < dimension; i++) {
        for (let j = 0; j < dimension; j++) {
          expectedCovariance[i * dimension + j] +=
            ((held[row * dimension + i] - expectedMean[i]) *
              (held[row * dimension + j] - expectedMean[j])) /
            (count - 1);
        }
      }
    }

    const result = featureStatistics(shifted, count, dimension);
    const meanError = maxAbsDifference(
      result.mean.map((value) => value - offset),
      expectedMean,
    );
    // A one-pass sum of squares would lose everything here: 1e12-sized terms for a 1e-6 variance.
    expect(meanError).toBeLessThan(1e-9);
    const variance = expectedCovariance[0];
    expect(maxAbsDifference(result.covariance, expectedCovariance) / variance).toBeLessThan(1e-8);
  });

  it('gives a symmetric covariance with the sample variance on the diagonal', () => {
    const count = 50;
    const dimension = 7;
    const features = normals(count * dimension, 5);
    const result = featureStatistics(features, count, dimension);
    expect(maxAbsDifference(result.covariance, transpose(result.covariance, dimension))).toBe(0);
    const column = Array.from({ length: count }, (_, row) => features[row * dimension + 3]);
    const mean = column.reduce((sum, value) => sum + value, 0) / count;
    const variance = column.reduce((sum, value) => sum + (value - mean) ** 2, 0) / (count - 1);
    expect(result.covariance[3 * dimension + 3]).toBeCloseTo(variance, 13);
  });

  it('rejects fewer than two rows, a wrong length and non-finite values', () => {
    expect(() => featureStatistics(new Float64Array(3), 1, 3)).toThrow(ShaderganError);
    expect(() => featureStatistics(new Float64Array(3), 1, 3)).toThrow(/at least 2/);
    expect(() => featureStatistics(new Float64Array(0), 0, 3)).toThrow(/at least 2/);
    expect(() => featureStatistics(new Float64Array(5), 2, 3)).toThrow(/6 values\), got 5/);
    expect(() => featureStatistics(new Float64Array(6), 2, 0)).toThrow(ShaderganError);

    const withNaN = new Float64Array(12);
    withNaN[2 * 3 + 1] = NaN;
    expect(() => featureStatistics(withNaN, 4, 3)).toThrow(/row 2 \(column 1\).*NaN/);
    const withInfinity = new Float32Array(12);
    withInfinity[3 * 3] = -Infinity;
    expect(() => featureStatistics(withInfinity, 4, 3)).toThrow(/row 3 \(column 0\)/);
  });
});

// ---- symmetricEigen ----

describe('symmetricEigen', () => {
  it('solves [[2, 1], [1, 2]] by hand: eigenvalues 1 and 3', () => {
    const { values, vectors } = symmetricEigen(Float64Array.from([2, 1, 1, 2]), 2);
    expect(values[0]).toBeCloseTo(1, 14);
    expect(values[1]).toBeCloseTo(3, 14);
    // Columns are (1, -1) / sqrt(2) and (1, 1) / sqrt(2), up to sign.
    expect(Math.abs(vectors[0 * 2 + 0])).toBeCloseTo(Math.SQRT1_2, 14);
    expect(vectors[0 * 2 + 0] * vectors[1 * 2 + 0]).toBeCloseTo(-0.5, 14);
    expect(vectors[0 * 2 + 1] * vectors[1 * 2 + 1]).toBeCloseTo(0.5, 14);
  });

  const known = (n: number, values: number[], seed: number) => ({
    n,
    matrix: withEigenvalues(randomOrthogonal(n, seed), values, n),
    values: [...values].sort((x, y) => x - y) as number[] | null,
  });
  const randomSymmetric = (n: number, seed: number) => {
    const g = normals(n * n, seed);
    const matrix = g.map((_, i) => g[i] + g[(i % n) * n + Math.floor(i / n)]);
    return { n, matrix, values: null as number[] | null };
  };
  const cases = [
    { name: '1 x 1', ...known(1, [-2.5], 1) },
    { name: 'diagonal, unsorted', n: 4, matrix: diagonal([3, -1, 7, 0]), values: [-1, 0, 3, 7] },
    { name: 'random symmetric 5 x 5', ...randomSymmetric(5, 2) },
    { name: 'random symmetric 40 x 40', ...randomSymmetric(40, 3) },
    { name: 'repeated eigenvalues 12 x 12', ...known(12, [1, 1, 1, 2, 2, 5, 5, 5, 5, 9, 9, 9], 4) },
    { name: 'rank 3 of 10 (singular)', ...known(10, [0, 0, 0, 0, 0, 0, 0, 0.5, 4, 30], 5) },
    {
      name: 'eigenvalues over 12 decades',
      ...known(
        16,
        Array.from({ length: 16 }, (_, i) => 10 ** (-12 * (i / 15))),
        6,
      ),
    },
  ];

  it.each(cases)('$name: V diag(values) V^T rebuilds the matrix and V is orthonormal', (c) => {
    const { n, matrix } = c;
    const { values, vectors } = symmetricEigen(matrix, n);
    const scale = Math.max(1, ...Array.from(matrix, Math.abs));

    const rebuilt = withEigenvalues(vectors, Array.from(values), n);
    expect(maxAbsDifference(rebuilt, matrix) / scale).toBeLessThan(1e-13);
    expect(maxAbsDifference(matmul(transpose(vectors, n), vectors, n), identity(n))).toBeLessThan(
      1e-13,
    );
    for (let i = 1; i < n; i++) expect(values[i]).toBeGreaterThanOrEqual(values[i - 1]);
    if (c.values !== null) {
      expect(maxAbsDifference(values, c.values) / scale).toBeLessThan(1e-13);
    }
  });

  it('keeps small eigenvalues of a graded positive definite matrix to relative accuracy', () => {
    // D A D with a well-conditioned A and D spanning 4 decades: Jacobi keeps even the smallest
    // eigenvalue (8 decades below the largest) to nearly full relative precision, where a
    // method accurate only to eps times the largest would miss this by orders of magnitude.
    const n = 6;
    const a = randomSpd(n, 21, 1);
    const scales = Array.from({ length: n }, (_, i) => 10 ** (-4 * (i / (n - 1))) * 10 ** 2);
    const graded = a.map(
      (value, index) => value * scales[Math.floor(index / n)] * scales[index % n],
    );
    const { values } = symmetricEigen(graded, n);
    // The determinant is the product of the eigenvalues; det(D A D) = det(A) * prod(d_i^2).
    let productOfValues = 1;
    for (const value of values) productOfValues *= value;
    const expectedDeterminant =
      determinant(a, n) * scales.reduce((product, d) => product * d * d, 1);
    expect(Math.abs(productOfValues / expectedDeterminant - 1)).toBeLessThan(1e-12);
  });

  it('uses the symmetric part of a slightly asymmetric input', () => {
    const matrix = Float64Array.from([2, 1 + 1e-12, 1 - 1e-12, 2]);
    const { values } = symmetricEigen(matrix, 2);
    expect(values[0]).toBeCloseTo(1, 14);
    expect(values[1]).toBeCloseTo(3, 14);
  });

  it('rejects a wrong length and non-finite entries', () => {
    expect(() => symmetricEigen(new Float64Array(5), 2)).toThrow(ShaderganError);
    expect(() => symmetricEigen(new Float64Array(5), 2)).toThrow(/needs 4 values, got 5/);
    expect(() => symmetricEigen(Float64Array.from([1, NaN, NaN, 1]), 2)).toThrow(/index 1/);
    expect(() => symmetricEigen(new Float64Array(0), 0)).toThrow(ShaderganError);
  });
});

// ---- frechetDistance ----

describe('frechetDistance', () => {
  it('is the hand value for one dimension: (1 - 3)^2 + (sqrt 4 - sqrt 9)^2 = 5', () => {
    const a = statistics([1], Float64Array.from([4]));
    const b = statistics([3], Float64Array.from([9]));
    expect(frechetDistance(a, b)).toBeCloseTo(5, 13);
  });

  it.each([
    { dimension: 8, count: 200, seed: 1 },
    { dimension: 64, count: 500, seed: 2 },
  ])('is ~0 for identical statistics (dimension $dimension)', ({ dimension, count, seed }) => {
    const features = normals(count * dimension, seed).map((value, i) => value * (1 + (i % 5)));
    const stats = featureStatistics(features, count, dimension);
    const scale = 2 * trace(stats.covariance, dimension);
    expect(Math.abs(frechetDistance(stats, stats)) / scale).toBeLessThan(1e-8);
  });

  it('matches the closed form for diagonal covariances', () => {
    const n = 32;
    const varianceA = uniformValues(n, 1, 0.1, 5);
    const varianceB = uniformValues(n, 2, 0.1, 5);
    const meanA = uniformValues(n, 3, -1, 1);
    const meanB = uniformValues(n, 4, -1, 1);
    const expected = commutingClosedForm(varianceA, varianceB, squaredDistance(meanA, meanB));
    const actual = frechetDistance(
      statistics(meanA, diagonal(varianceA)),
      statistics(meanB, diagonal(varianceB)),
    );
    expect(Math.abs(actual - expected) / expected).toBeLessThan(1e-12);
  });

  it.each([
    { name: 'n 24, both full rank', n: 24, zerosA: 0, zerosB: 0 },
    { name: 'n 128, both full rank', n: 128, zerosA: 0, zerosB: 0 },
    { name: 'n 40, both rank 25', n: 40, zerosA: 15, zerosB: 15 },
    { name: 'n 40, only b rank 25', n: 40, zerosA: 0, zerosB: 15 },
    { name: 'n 40, only a rank 25', n: 40, zerosA: 15, zerosB: 0 },
  ])(
    'matches the closed form for commuting Q diag(a) Q^T, Q diag(b) Q^T ($name)',
    ({ n, zerosA, zerosB }) => {
      const q = randomOrthogonal(n, n);
      // Directions with no variance make the covariance singular; on one side only, they also
      // make S_a S_b singular while the other matrix is not.
      const a = uniformValues(n, 5, 0.05, 4).map((value, i) => (i < zerosA ? 0 : value));
      const b = uniformValues(n, 6, 0.05, 4).map((value, i) => (i < zerosB ? 0 : value));
      const meanA = uniformValues(n, 7, -2, 2);
      const meanB = uniformValues(n, 8, -2, 2);
      const expected = commutingClosedForm(a, b, squaredDistance(meanA, meanB));
      const actual = frechetDistance(
        statistics(meanA, withEigenvalues(q, a, n)),
        statistics(meanB, withEigenvalues(q, b, n)),
      );
      expect(Math.abs(actual - expected) / expected).toBeLessThan(1e-10);
    },
  );

  it('matches the 2 x 2 closed form for a non-commuting pair', () => {
    // X = S_a S_b has eigenvalues l1, l2 > 0, so Tr sqrt(X) = sqrt(l1) + sqrt(l2), whose square
    // is tr X + 2 sqrt(det X).
    const covarianceA = Float64Array.from([4, 1, 1, 3]);
    const covarianceB = Float64Array.from([2, -1, -1, 5]);
    const product = matmul(covarianceA, covarianceB, 2);
    const determinantOfProduct = (4 * 3 - 1) * (2 * 5 - 1);
    const traceSqrt = Math.sqrt(trace(product, 2) + 2 * Math.sqrt(determinantOfProduct));
    const expected = (0 - 1) ** 2 + (2 - 0) ** 2 + 7 + 7 - 2 * traceSqrt;
    const actual = frechetDistance(
      statistics([0, 2], covarianceA),
      statistics([1, 0], covarianceB),
    );
    expect(actual).toBeCloseTo(expected, 13);
  });

  it.each([
    { n: 10, seed: 1 },
    { n: 40, seed: 2 },
  ])(
    'matches a Denman-Beavers square root for a random non-commuting pair (n $n)',
    ({ n, seed }) => {
      const covarianceA = randomSpd(n, 100 + seed, 0.2);
      const covarianceB = randomSpd(n, 200 + seed, 0.5);
      // Make sure the pair really does not commute, or the test would prove less.
      const reversed = matmul(covarianceB, covarianceA, n);
      const commutator = matmul(covarianceA, covarianceB, n).map((v, i) => v - reversed[i]);
      expect(Math.max(...Array.from(commutator, Math.abs))).toBeGreaterThan(0.1);

      const meanA = uniformValues(n, seed, -1, 1);
      const meanB = uniformValues(n, seed + 50, -1, 1);
      const expected =
        squaredDistance(meanA, meanB) +
        trace(covarianceA, n) +
        trace(covarianceB, n) -
        2 * denmanBeaversTraceSqrt(covarianceA, covarianceB, n);
      const actual = frechetDistance(
        statistics(meanA, covarianceA),
        statistics(meanB, covarianceB),
      );
      expect(Math.abs(actual - expected) / expected).toBeLessThan(1e-10);
      // The distance is symmetric even though S_a S_b is not.
      const swapped = frechetDistance(
        statistics(meanB, covarianceB),
        statistics(meanA, covarianceA),
      );
      expect(Math.abs(swapped - actual) / actual).toBeLessThan(1e-11);
    },
  );

  it('stays finite and non-negative with fewer samples than dimensions', () => {
    const dimension = 64;
    const count = 10;
    const a = featureStatistics(normals(count * dimension, 31), count, dimension);
    const b = featureStatistics(normals(count * dimension, 32), count, dimension);
    const scale = trace(a.covariance, dimension) + trace(b.covariance, dimension);

    const self = frechetDistance(a, a);
    expect(Number.isFinite(self)).toBe(true);
    expect(self).toBeGreaterThanOrEqual(0);
    expect(self / scale).toBeLessThan(1e-10);

    const between = frechetDistance(a, b);
    expect(Number.isFinite(between)).toBe(true);
    // Independent rank-9 samples share almost no directions, so Tr sqrt(S_a S_b) is small
    // next to the traces: the distance lies between half the traces and the traces plus the
    // mean term.
    expect(between).toBeGreaterThan(0.5 * scale);
    expect(between).toBeLessThanOrEqual(scale + squaredDistance(a.mean, b.mean));
  });

  it('rejects mismatched dimensions, inconsistent shapes and non-finite statistics', () => {
    const two = statistics([0, 0], identity(2));
    const three = statistics([0, 0, 0], identity(3));
    expect(() => frechetDistance(two, three)).toThrow(ShaderganError);
    expect(() => frechetDistance(two, three)).toThrow(/dimension 2 and 3/);

    const shortMean = { ...two, mean: new Float64Array(1) };
    expect(() => frechetDistance(shortMean, two)).toThrow(/mean of 1 values/);
    const nonFinite = { ...two, covariance: Float64Array.from([1, 0, 0, Infinity]) };
    expect(() => frechetDistance(two, nonFinite)).toThrow(/second covariance.*index 3/);
  });

  it('rejects a covariance that is clearly not positive semidefinite', () => {
    const indefinite = statistics([0, 0], Float64Array.from([1, 0, 0, -1]));
    expect(() => frechetDistance(indefinite, indefinite)).toThrow(/not positive semidefinite/);
  });
});
