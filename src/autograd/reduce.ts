// Reductions of a whole tensor to one value. The backward rule of both is a broadcast: every
// input element moved the result by the same amount (1 for a sum, 1 / count for a mean).
import { ShaderganError } from '../errors.ts';
import { broadcastScalar, sumToScalar } from '../kernels/reduce.ts';
import { record } from './tape.ts';
import { formatShape, Tensor } from './tensor.ts';

/** The sum of all elements, shape [1]. */
export function sum(input: Tensor): Tensor {
  return reduceToScalar('sum', input, 1);
}

/** The mean of all elements, shape [1]. */
export function mean(input: Tensor): Tensor {
  if (input.size === 0) {
    throw new ShaderganError(`mean: the tensor ${formatShape(input.shape)} has no elements`);
  }
  return reduceToScalar('mean', input, 1 / input.size);
}

function reduceToScalar(op: 'sum' | 'mean', input: Tensor, factor: number): Tensor {
  const gpu = input.gpu;
  const output = Tensor.empty(gpu, [1], op);
  const label = `${op} ${formatShape(input.shape)}`;
  sumToScalar(gpu, input.buffer, output.buffer, input.size, factor, label);
  return record({
    op,
    inputs: [input],
    output,
    backward: (gradOutput) => {
      const gradInput = Tensor.empty(gpu, input.shape, `${op} gradient`);
      broadcastScalar(gpu, gradOutput.buffer, gradInput.buffer, input.size, factor);
      return [gradInput];
    },
  });
}
