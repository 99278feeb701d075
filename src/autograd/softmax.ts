// Softmax cross-entropy, the loss of a classifier: one row of logits per example and one class
// index per row. Taking logits rather than probabilities lets the kernel work in log space,
// where a confident net's log(softmax) is never log(0).
import { ShaderganError } from '../errors.ts';
import * as kernels from '../kernels/softmax.ts';
import { record } from './tape.ts';
import { formatShape, Tensor } from './tensor.ts';

/**
 * mean over rows of -log(softmax(logits[row])[labels[row]]), shape [1]: PyTorch's
 * CrossEntropyLoss with class-index targets. `logits` is [rows, classes]; `labels` holds one
 * integer in [0, classes) per row (a Uint8Array straight from an IDX labels file will do).
 *
 * Limitation: only the mean reduction; class weights, label smoothing and ignore_index are not
 * supported, and labels have no gradient.
 */
export function softmaxCrossEntropy(logits: Tensor, labels: ArrayLike<number>): Tensor {
  const shape = checkShapes(logits, labels);
  const gpu = logits.gpu;

  // The labels travel as u32 in a tensor's buffer, so the enclosing scope frees them like any
  // other tensor; the tensor is never exposed, so nothing reads those bits as floats.
  const labelBits = Tensor.empty(gpu, [shape.rows], 'labels (u32)');
  gpu.write(labelBits.buffer, Uint32Array.from(labels));
  const logSumExp = Tensor.empty(gpu, [shape.rows], 'cross entropy log-sum-exp');
  const loss = Tensor.empty(gpu, [1], 'cross entropy loss');
  kernels.crossEntropyForward(
    gpu,
    {
      logits: logits.buffer,
      labels: labelBits.buffer,
      logSumExp: logSumExp.buffer,
      loss: loss.buffer,
    },
    shape,
  );

  const recorded = record({
    op: 'softmax_cross_entropy',
    inputs: [logits],
    output: loss,
    detail: `classes=${shape.classes}`,
    backward: (gradLoss) => {
      const gradLogits = Tensor.empty(gpu, logits.shape, 'cross entropy gradient');
      kernels.crossEntropyBackward(
        gpu,
        {
          logits: logits.buffer,
          labels: labelBits.buffer,
          logSumExp: logSumExp.buffer,
          gradLoss: gradLoss.buffer,
          gradLogits: gradLogits.buffer,
        },
        shape,
      );
      return [gradLogits];
    },
  });
  // Without a tape entry nothing reads them again; queue order keeps the recorded forward safe.
  if (!recorded.creator) {
    labelBits.dispose();
    logSumExp.dispose();
  }
  return recorded;
}

function checkShapes(logits: Tensor, labels: ArrayLike<number>): kernels.CrossEntropyShape {
  const problem = (text: string): ShaderganError =>
    new ShaderganError(`softmaxCrossEntropy: logits ${formatShape(logits.shape)}: ${text}`);
  if (logits.shape.length !== 2) throw problem('expected [rows, classes]');
  const [rows, classes] = logits.shape;
  if (rows === 0 || classes === 0) throw problem('the logits are empty');
  if (labels.length !== rows) {
    throw problem(`${labels.length} labels given, one per row (${rows}) needed`);
  }
  for (let row = 0; row < rows; row += 1) {
    const label = labels[row];
    if (!Number.isInteger(label) || label < 0 || label >= classes) {
      throw problem(`label ${label} of row ${row} is not a class index in [0, ${classes})`);
    }
  }
  return { rows, classes };
}
