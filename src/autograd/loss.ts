// Binary cross-entropy on logits, the loss of a GAN's discriminator and generator. Taking logits
// rather than probabilities lets the kernel use a form that stays finite when the discriminator
// is certain, where log(sigmoid(x)) would be log(0).
import { ShaderganError } from '../errors.ts';
import * as kernels from '../kernels/loss.ts';
import { record } from './tape.ts';
import { formatShape, Tensor } from './tensor.ts';

/**
 * mean(max(x, 0) - x * t + log(1 + exp(-|x|))) over all elements, shape [1]: PyTorch's
 * BCEWithLogitsLoss. `target` is a tensor of the logits' shape or one number for every element
 * (1 for real, 0 for fake, 0.9 for smoothed labels), which needs no target tensor at all.
 *
 * Limitation: only the mean reduction; PyTorch's `weight` and `pos_weight` are not supported.
 */
export function bceWithLogits(logits: Tensor, target: number | Tensor): Tensor {
  const gpu = logits.gpu;
  const count = logits.size;
  if (count === 0) {
    throw new ShaderganError(`bceWithLogits: the logits ${formatShape(logits.shape)} are empty`);
  }
  if (typeof target === 'number') {
    if (!Number.isFinite(target)) {
      throw new ShaderganError(`bceWithLogits: the target ${target} is not a finite number`);
    }
  } else if (formatShape(target.shape) !== formatShape(logits.shape)) {
    throw new ShaderganError(
      `bceWithLogits: target ${formatShape(target.shape)} does not match ` +
        `logits ${formatShape(logits.shape)}`,
    );
  }

  const targetOf = (): kernels.BceTarget => (typeof target === 'number' ? target : target.buffer);
  const loss = Tensor.empty(gpu, [1], 'bce loss');
  kernels.bceWithLogitsForward(gpu, logits.buffer, targetOf(), loss.buffer, count);

  const inputs = typeof target === 'number' ? [logits] : [logits, target];
  return record({
    op: 'bce_with_logits',
    inputs,
    output: loss,
    detail: typeof target === 'number' ? `target=${target}` : undefined,
    backward: (gradLoss) => {
      const gradLogits = Tensor.empty(gpu, logits.shape, 'bce gradient');
      kernels.bceWithLogitsBackwardLogits(
        gpu,
        logits.buffer,
        targetOf(),
        gradLoss.buffer,
        gradLogits.buffer,
        count,
      );
      if (typeof target === 'number') return [gradLogits];
      if (!target.requiresGrad) return [gradLogits, null];

      const gradTarget = Tensor.empty(gpu, target.shape, 'bce target gradient');
      kernels.bceWithLogitsBackwardTargets(
        gpu,
        logits.buffer,
        gradLoss.buffer,
        gradTarget.buffer,
        count,
      );
      return [gradLogits, gradTarget];
    },
  });
}
