// Elementwise ops and their backward rules, plus backward() itself, which needs `add` to sum
// gradients of a tensor used more than once.
import { ShaderganError } from '../errors.ts';
import * as kernels from '../kernels/elementwise.ts';
import { backward as runBackward, record } from './tape.ts';
import { formatShape, Tensor } from './tensor.ts';

function sameShape(op: string, a: Tensor, b: Tensor): void {
  if (a.shape.length !== b.shape.length || a.shape.some((d, i) => d !== b.shape[i])) {
    throw new ShaderganError(`${op}: shapes ${formatShape(a.shape)} and ${formatShape(b.shape)}`);
  }
}

export function add(a: Tensor, b: Tensor): Tensor {
  sameShape('add', a, b);
  const output = Tensor.empty(a.gpu, a.shape);
  kernels.binary(a.gpu, 'add', a.buffer, b.buffer, output.buffer, a.size);
  return record({
    op: 'add',
    inputs: [a, b],
    output,
    backward: (gradOutput) => [shared(gradOutput), shared(gradOutput)],
  });
}

export function mul(a: Tensor, b: Tensor): Tensor {
  sameShape('mul', a, b);
  const output = Tensor.empty(a.gpu, a.shape);
  kernels.binary(a.gpu, 'mul', a.buffer, b.buffer, output.buffer, a.size);
  return record({
    op: 'mul',
    inputs: [a, b],
    output,
    backward: (gradOutput) => [
      a.requiresGrad || b.requiresGrad ? product(gradOutput, b) : null,
      a.requiresGrad || b.requiresGrad ? product(gradOutput, a) : null,
    ],
  });
}

export function scale(input: Tensor, factor: number): Tensor {
  return affine(input, factor, 0);
}

/** factor * input + shift */
export function affine(input: Tensor, factor: number, shift: number): Tensor {
  const output = Tensor.empty(input.gpu, input.shape);
  kernels.unary(input.gpu, 'affine', input.buffer, output.buffer, input.size, factor, shift);
  return record({
    op: shift === 0 ? 'scale' : 'affine',
    inputs: [input],
    output,
    detail: shift === 0 ? `factor=${factor}` : `factor=${factor}, shift=${shift}`,
    backward: (gradOutput) => [scaled(gradOutput, factor)],
  });
}

export function relu(input: Tensor): Tensor {
  return leakyRelu(input, 0);
}

export function leakyRelu(input: Tensor, slope: number): Tensor {
  const output = Tensor.empty(input.gpu, input.shape);
  kernels.unary(input.gpu, 'leaky_relu', input.buffer, output.buffer, input.size, slope);
  return record({
    op: slope === 0 ? 'relu' : 'leaky_relu',
    inputs: [input],
    output,
    detail: slope === 0 ? undefined : `slope=${slope}`,
    backward: (gradOutput) => {
      const gradInput = Tensor.empty(input.gpu, input.shape);
      kernels.unaryBackward(
        input.gpu,
        'leaky_relu_backward',
        input.buffer,
        gradOutput.buffer,
        gradInput.buffer,
        input.size,
        slope,
      );
      return [gradInput];
    },
  });
}

export function tanh(input: Tensor): Tensor {
  return saturating(input, 'tanh');
}

export function sigmoid(input: Tensor): Tensor {
  return saturating(input, 'sigmoid');
}

/** tanh and sigmoid: the backward rule needs only the forward output. */
function saturating(input: Tensor, name: 'tanh' | 'sigmoid'): Tensor {
  const output = Tensor.empty(input.gpu, input.shape);
  kernels.unary(input.gpu, `${name}_forward`, input.buffer, output.buffer, input.size);
  return record({
    op: name,
    inputs: [input],
    output,
    backward: (gradOutput) => {
      const gradInput = Tensor.empty(input.gpu, input.shape);
      kernels.unaryBackward(
        input.gpu,
        `${name}_backward`,
        output.buffer,
        gradOutput.buffer,
        gradInput.buffer,
        input.size,
      );
      return [gradInput];
    },
  });
}

/** The same buffer seen with another shape; the gradient is reshaped back. */
export function reshape(input: Tensor, shape: readonly number[]): Tensor {
  const output = input.view(shape);
  return record({
    op: 'reshape',
    inputs: [input],
    output,
    detail: formatShape(shape),
    backward: (gradOutput) => [gradOutput.view(input.shape)],
  });
}

/**
 * Back-propagates from a one-element loss into `.grad` of every leaf tensor that requires a
 * gradient. Gradients of a tensor used several times are summed.
 */
export function backward(loss: Tensor): void {
  runBackward(loss, Tensor.full(loss.gpu, loss.shape, 1), (grads, tensor, addend) => {
    const existing = grads.get(tensor);
    if (!existing) {
      grads.set(tensor, addend);
      return;
    }
    const sum = Tensor.empty(tensor.gpu, tensor.shape);
    kernels.binary(tensor.gpu, 'add', existing.buffer, addend.buffer, sum.buffer, sum.size);
    existing.dispose();
    addend.dispose();
    grads.set(tensor, sum);
  });
}

function scaled(input: Tensor, factor: number): Tensor {
  const output = Tensor.empty(input.gpu, input.shape);
  kernels.unary(input.gpu, 'affine', input.buffer, output.buffer, input.size, factor);
  return output;
}

function product(a: Tensor, b: Tensor): Tensor {
  const output = Tensor.empty(a.gpu, a.shape);
  kernels.binary(a.gpu, 'mul', a.buffer, b.buffer, output.buffer, a.size);
  return output;
}

/** Another reference to the same buffer: backward disposes the gradient it hands out. */
function shared(gradient: Tensor): Tensor {
  return gradient.view(gradient.shape);
}
