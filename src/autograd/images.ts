// Ops on NCHW image batches used by the GAN recipes: global average pooling (the "gap"
// discriminator head), flip-and-shift augmentation (applied to real and fake images alike,
// differentiable so G learns through it), and one-hot class channels (conditional GANs).
import { ShaderganError } from '../errors.ts';
import * as kernels from '../kernels/images.ts';
import { record } from './tape.ts';
import { formatShape, Tensor } from './tensor.ts';

function imageShapeOf(op: string, input: Tensor): kernels.ImageShape {
  if (input.shape.length !== 4) {
    throw new ShaderganError(
      `${op}: expects [batch, channels, height, width], got ${formatShape(input.shape)}`,
    );
  }
  const [batch, channels, height, width] = input.shape;
  return { batch, channels, height, width };
}

/** [N, C, H, W] -> [N, C]: the mean of each feature map. */
export function globalAvgPool(input: Tensor): Tensor {
  const { batch, channels, height, width } = imageShapeOf('globalAvgPool', input);
  const gpu = input.gpu;
  const planes = batch * channels;
  const planeSize = height * width;
  const output = Tensor.empty(gpu, [batch, channels], 'global average pool');
  kernels.meanPlanes(gpu, input.buffer, output.buffer, planes, planeSize);
  return record({
    op: 'global_avg_pool',
    inputs: [input],
    output,
    backward: (gradOutput) => {
      const gradInput = Tensor.empty(gpu, input.shape, 'global average pool gradient');
      kernels.meanPlanesBackward(gpu, gradOutput.buffer, gradInput.buffer, planes, planeSize);
      return [gradInput];
    },
  });
}

/**
 * Mirrors and shifts each image by its row of `transforms` ([N, 3]: flip 0 or 1, dx, dy in
 * whole pixels); pixels shifted in take `background`. The gradient flows to `images` only.
 */
export function augmentImages(images: Tensor, transforms: Tensor, background: number): Tensor {
  const shape = imageShapeOf('augmentImages', images);
  if (
    transforms.shape.length !== 2 ||
    transforms.shape[0] !== shape.batch ||
    transforms.shape[1] !== 3
  ) {
    throw new ShaderganError(
      `augmentImages: transforms must be [${shape.batch}, 3], got ${formatShape(transforms.shape)}`,
    );
  }
  const gpu = images.gpu;
  const output = Tensor.empty(gpu, images.shape, 'augmented images');
  kernels.augment(gpu, images.buffer, transforms.buffer, output.buffer, shape, background);
  return record({
    op: 'augment',
    inputs: [images],
    output,
    backward: (gradOutput) => {
      const gradInput = Tensor.empty(gpu, images.shape, 'augment gradient');
      kernels.augmentBackward(gpu, transforms.buffer, gradOutput.buffer, gradInput.buffer, shape);
      return [gradInput];
    },
  });
}

/**
 * [N, C, ...] -> [N, C + classes, ...]: appends the one-hot code of each sample's class
 * (`labels`, [N] class indices as floats) as constant channels. The gradient flows to `input`.
 */
export function appendOneHot(input: Tensor, labels: Tensor, classes: number): Tensor {
  const [batch, channels, ...rest] = input.shape;
  if (input.shape.length < 2 || labels.shape.length !== 1 || labels.shape[0] !== batch) {
    throw new ShaderganError(
      `appendOneHot: expects input [batch, channels, ...] and labels [batch], got ` +
        `${formatShape(input.shape)} and ${formatShape(labels.shape)}`,
    );
  }
  if (!Number.isInteger(classes) || classes < 1) {
    throw new ShaderganError(`appendOneHot: classes must be a positive integer, got ${classes}`);
  }
  const gpu = input.gpu;
  const shape = { batch, channels, classes, planeSize: rest.reduce((a, b) => a * b, 1) };
  const output = Tensor.empty(gpu, [batch, channels + classes, ...rest], 'one-hot appended');
  kernels.appendOneHot(gpu, input.buffer, labels.buffer, output.buffer, shape);
  return record({
    op: 'append_one_hot',
    inputs: [input],
    output,
    detail: `classes=${classes}`,
    backward: (gradOutput) => {
      const gradInput = Tensor.empty(gpu, input.shape, 'one-hot gradient');
      kernels.dropOneHot(gpu, gradOutput.buffer, gradInput.buffer, shape);
      return [gradInput];
    },
  });
}
