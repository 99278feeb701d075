// Matrix product and the fully connected layer, with their backward rules.
import { ShaderganError } from '../errors.ts';
import * as kernels from '../kernels/matmul.ts';
import { record } from './tape.ts';
import { formatShape, Tensor } from './tensor.ts';

export interface MatmulOptions {
  /** Use Aᵀ: `a` is stored [k, m]. */
  transposeA?: boolean;
  /** Use Bᵀ: `b` is stored [n, k]. */
  transposeB?: boolean;
}

/** C = op(A) · op(B) for 2-D tensors, where op transposes when the option says so. */
export function matmul(a: Tensor, b: Tensor, options: MatmulOptions = {}): Tensor {
  const transposeA = options.transposeA ?? false;
  const transposeB = options.transposeB ?? false;
  const describe = (): string =>
    `matmul: A ${formatShape(a.shape)}${transposeA ? 'ᵀ' : ''} · ` +
    `B ${formatShape(b.shape)}${transposeB ? 'ᵀ' : ''}`;
  if (a.shape.length !== 2 || b.shape.length !== 2) {
    throw new ShaderganError(`${describe()}: both operands must be 2-D`);
  }
  const [m, k] = transposeA ? [a.shape[1], a.shape[0]] : [a.shape[0], a.shape[1]];
  const [kB, n] = transposeB ? [b.shape[1], b.shape[0]] : [b.shape[0], b.shape[1]];
  if (k !== kB) {
    throw new ShaderganError(`${describe()}: inner dimensions ${k} and ${kB} differ`);
  }

  const output = product(a, transposeA, b, transposeB, [m, n]);
  return record({
    op: 'matmul',
    inputs: [a, b],
    output,
    detail: transposeA || transposeB ? `transposeA=${transposeA} transposeB=${transposeB}` : '',
    // With C = op(A)·op(B): d op(A) = dC·op(B)ᵀ and d op(B) = op(A)ᵀ·dC; a stored transpose
    // turns each into its transpose, which is again a product of the same two factors.
    backward: (gradOutput) => [
      a.requiresGrad
        ? transposeA
          ? product(b, transposeB, gradOutput, true, a.shape) // (dC·op(B)ᵀ)ᵀ = op(B)·dCᵀ
          : product(gradOutput, false, b, !transposeB, a.shape)
        : null,
      b.requiresGrad
        ? transposeB
          ? product(gradOutput, true, a, transposeA, b.shape) // (op(A)ᵀ·dC)ᵀ = dCᵀ·op(A)
          : product(a, !transposeA, gradOutput, false, b.shape)
        : null,
    ],
  });
}

/** op(x) · op(y) into a new tensor of `shape` (untracked). */
function product(
  x: Tensor,
  transposeX: boolean,
  y: Tensor,
  transposeY: boolean,
  shape: readonly number[],
): Tensor {
  const k = transposeX ? x.shape[0] : x.shape[1];
  const output = Tensor.empty(x.gpu, shape, 'matmul');
  kernels.matmul(x.gpu, {
    a: x.buffer,
    b: y.buffer,
    out: output.buffer,
    m: shape[0],
    n: shape[1],
    k,
    transposeA: transposeX,
    transposeB: transposeY,
    label: `${operandName(x, transposeX)}·${operandName(y, transposeY)}`,
  });
  return output;
}

function operandName(tensor: Tensor, transposed: boolean): string {
  return `${formatShape(tensor.shape)}${transposed ? 'ᵀ' : ''}`;
}

/**
 * A fully connected layer as in PyTorch: output = input · weightᵀ + bias, with input
 * [batch, inFeatures], weight [outFeatures, inFeatures] and bias [outFeatures] (or null).
 */
export function linear(input: Tensor, weight: Tensor, bias: Tensor | null): Tensor {
  const describe = (): string =>
    `linear: input ${formatShape(input.shape)}, weight ${formatShape(weight.shape)}, ` +
    `bias ${bias ? formatShape(bias.shape) : 'none'}`;
  if (input.shape.length !== 2 || weight.shape.length !== 2) {
    throw new ShaderganError(`${describe()}: input and weight must be 2-D`);
  }
  const [batch, inFeatures] = input.shape;
  const [outFeatures, weightIn] = weight.shape;
  if (weightIn !== inFeatures) {
    throw new ShaderganError(
      `${describe()}: input has ${inFeatures} features but weight expects ${weightIn}`,
    );
  }
  if (bias && (bias.shape.length !== 1 || bias.shape[0] !== outFeatures)) {
    throw new ShaderganError(`${describe()}: bias must be [${outFeatures}]`);
  }

  const gpu = input.gpu;
  const output = Tensor.empty(gpu, [batch, outFeatures], 'linear');
  kernels.matmul(gpu, {
    a: input.buffer,
    b: weight.buffer,
    out: output.buffer,
    m: batch,
    n: outFeatures,
    k: inFeatures,
    transposeB: true,
    bias: bias ? { buffer: bias.buffer, along: 'columns' } : undefined,
    label: `linear ${formatShape(input.shape)}·${formatShape(weight.shape)}ᵀ`,
  });

  return record({
    op: 'linear',
    inputs: bias ? [input, weight, bias] : [input, weight],
    output,
    detail: `${inFeatures}->${outFeatures}`,
    backward: (gradOutput) => {
      // gradOutput is [batch, outFeatures].
      const gradInput = input.requiresGrad
        ? product(gradOutput, false, weight, false, input.shape) // gradOut · W
        : null;
      const gradWeight = weight.requiresGrad
        ? product(gradOutput, true, input, false, weight.shape) // gradOutᵀ · X
        : null;
      let gradBias: Tensor | null = null;
      if (bias?.requiresGrad) {
        // The column sums of gradOut.
        gradBias = Tensor.empty(gpu, bias.shape, 'linear gradBias');
        kernels.biasGradient(gpu, {
          gradOutput: gradOutput.buffer,
          outer: batch,
          channels: outFeatures,
          inner: 1,
          gradBias: gradBias.buffer,
          label: 'linear',
        });
      }
      return [gradInput, gradWeight, gradBias];
    },
  });
}
