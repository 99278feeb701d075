// The same GAN in TensorFlow.js: each layer of shadergan's generator and discriminator is
// mirrored with tfjs ops (NHWC), starting from shadergan's initial weights, and one training
// step is the same sequence as Gan.trainStep: D on real images and on detached fakes, Adam on
// D, then G through the updated D with the non-saturating loss, Adam on G, losses read back.
//
// Written as a tfjs user would: tf.train.adam().minimize() over each network's variables.
// That recomputes G's forward pass for the G step (shadergan reuses the one from the D step),
// which costs tfjs about one extra G forward per step.
import type { Tensor } from '../src/autograd/tensor.ts';
import type { Module } from '../src/nn/module.ts';
import {
  BatchNorm2d,
  Conv2d,
  ConvTranspose2d,
  LeakyReLU,
  Linear,
  ReLU,
  Reshape,
  Sigmoid,
  Tanh,
} from '../src/nn/layers.ts';
import type { Gan } from '../src/train/gan.ts';
import { NCHW_TO_NHWC, NHWC_TO_NCHW, OIHW_TO_HWIO, permute } from './layouts.ts';
import type { Tf, TfBackendName, TfTensor } from './tfjs.ts';

type Tensor4D = import('@tensorflow/tfjs').Tensor4D;
type Variable = import('@tensorflow/tfjs').Variable;
type GradSaveFunc = import('@tensorflow/tfjs').GradSaveFunc;

/** One mirrored layer: a function of the activation (NHWC when 4-D). */
type Layer = (x: TfTensor, training: { statistics: Statistics[] }) => TfTensor;

/** Batch mean and variance of one batch-norm call, its layer, and how many values each covers. */
type Statistics = [TfTensor, TfTensor, BatchNormState, number];

interface BatchNormState {
  runningMean: Variable;
  runningVar: Variable;
  momentum: number;
}

/** A tfjs conv2d with a filter gradient of its own, for backends that have none (wasm). */
export interface ConvOps {
  conv2d(x: Tensor4D, filter: Tensor4D, stride: number, pad: number): Tensor4D;
  conv2dTranspose(
    x: Tensor4D,
    filter: Tensor4D,
    outputShape: [number, number, number, number],
    stride: number,
    pad: number,
  ): Tensor4D;
}

function nativeConvOps(tf: Tf): ConvOps {
  return {
    conv2d: (x, filter, stride, pad) => tf.conv2d(x, filter, stride, pad),
    conv2dTranspose: (x, filter, outputShape, stride, pad) =>
      tf.conv2dTranspose(x, filter, outputShape, stride, pad),
  };
}

/**
 * tfjs-backend-wasm has no Conv2DBackpropFilter kernel, so training on it needs a filter
 * gradient from elsewhere. The filter gradient of a stride-s convolution is itself a
 * convolution: of the input, seen with batch and channels swapped, by the output gradient as
 * a filter dilated by s. The bench supplies that through tf.customGrad; the report marks the
 * wasm training column accordingly.
 */
export function wasmConvOps(tf: Tf): ConvOps {
  // filterGradient(x [N,H,W,Ci], dy [N,Ho,Wo,Co]) -> [k, k, Ci, Co]
  const filterGradient = (
    x: Tensor4D,
    dy: Tensor4D,
    kernel: number,
    stride: number,
    pad: number,
  ) => {
    const [, height, width] = x.shape;
    const [, outHeight, outWidth] = dy.shape;
    const padBottom = kernel + (outHeight - 1) * stride - height - pad;
    const padRight = kernel + (outWidth - 1) * stride - width - pad;
    if (padBottom < 0 || padRight < 0) {
      throw new Error('the wasm filter gradient needs padding >= the unused input rows');
    }
    const images = tf.transpose(x, [3, 1, 2, 0]); // [Ci, H, W, N]
    const filter = tf.transpose(dy, [1, 2, 0, 3]); // [Ho, Wo, N, Co]
    const paddings: [[number, number], [number, number], [number, number], [number, number]] = [
      [0, 0],
      [pad, padBottom],
      [pad, padRight],
      [0, 0],
    ];
    const result = tf.conv2d(images, filter, 1, paddings, 'NHWC', stride); // [Ci, k, k, Co]
    return tf.transpose(result, [1, 2, 0, 3]);
  };

  return {
    conv2d: (x, filter, stride, pad) => {
      const op = tf.customGrad((...args) => {
        const [x4, f4, save] = args as [Tensor4D, Tensor4D, GradSaveFunc];
        save([x4, f4]);
        return {
          value: tf.conv2d(x4, f4, stride, pad),
          gradFunc: (dy, saved) => {
            const [savedX, savedF] = saved as Tensor4D[];
            const gradY = dy as Tensor4D;
            return [
              tf.conv2dTranspose(gradY, savedF, savedX.shape, stride, pad),
              filterGradient(savedX, gradY, savedF.shape[0], stride, pad),
            ];
          },
        };
      });
      return op(x, filter) as Tensor4D;
    },
    conv2dTranspose: (x, filter, outputShape, stride, pad) => {
      const op = tf.customGrad((...args) => {
        const [x4, f4, save] = args as [Tensor4D, Tensor4D, GradSaveFunc];
        save([x4, f4]);
        return {
          value: tf.conv2dTranspose(x4, f4, outputShape, stride, pad),
          gradFunc: (dy, saved) => {
            const [savedX, savedF] = saved as Tensor4D[];
            const gradY = dy as Tensor4D;
            // The transposed layer's output plays the ordinary convolution's input.
            return [
              tf.conv2d(gradY, savedF, stride, pad),
              filterGradient(gradY, savedX, savedF.shape[0], stride, pad),
            ];
          },
        };
      });
      return op(x, filter) as Tensor4D;
    },
  };
}

interface Mirror {
  layers: Layer[];
  variables: Variable[];
  batchNorms: BatchNormState[];
}

async function values(tensor: Tensor): Promise<Float32Array> {
  return tensor.toArray();
}

/** Mirrors the layers of `network.main` with tfjs variables holding the same weights. */
async function mirror(tf: Tf, network: Module, convOps: ConvOps): Promise<Mirror> {
  const layers: Layer[] = [];
  const variables: Variable[] = [];
  const batchNorms: BatchNormState[] = [];
  const variable = (data: Float32Array, shape: readonly number[], trainable = true) => {
    const created = tf.variable(tf.tensor(data, [...shape], 'float32'), trainable);
    if (trainable) variables.push(created);
    return created;
  };

  const children = network
    .namedModules()
    .filter(([name]) => /^main\.\d+$/.test(name))
    .map(([, module]) => module);
  for (const layer of children) {
    if (layer instanceof Conv2d) {
      const hwio = permute(await values(layer.weight), layer.weight.shape, OIHW_TO_HWIO);
      const filter = variable(hwio.data, hwio.shape);
      const bias = layer.bias ? variable(await values(layer.bias), layer.bias.shape) : null;
      const { stride = 1, padding = 0 } = layer.options;
      layers.push((x) => {
        const y = convOps.conv2d(x as Tensor4D, filter as TfTensor as Tensor4D, stride, padding);
        return bias ? tf.add(y, bias) : y;
      });
    } else if (layer instanceof ConvTranspose2d) {
      // [in, out, kh, kw] -> tfjs' transposed filter [kh, kw, out, in]
      const filterData = permute(await values(layer.weight), layer.weight.shape, [2, 3, 1, 0]);
      const filter = variable(filterData.data, filterData.shape);
      const bias = layer.bias ? variable(await values(layer.bias), layer.bias.shape) : null;
      const { stride = 1, padding = 0, outputPadding = 0 } = layer.options;
      const kernel = layer.kernelSize;
      layers.push((x) => {
        const [batch, height, width] = x.shape;
        const outHeight = (height - 1) * stride - 2 * padding + kernel + outputPadding;
        const outWidth = (width - 1) * stride - 2 * padding + kernel + outputPadding;
        const shape: [number, number, number, number] = [
          batch,
          outHeight,
          outWidth,
          layer.outChannels,
        ];
        const y = convOps.conv2dTranspose(
          x as Tensor4D,
          filter as TfTensor as Tensor4D,
          shape,
          stride,
          padding,
        );
        return bias ? tf.add(y, bias) : y;
      });
    } else if (layer instanceof BatchNorm2d) {
      const gamma = variable(await values(layer.weight), layer.weight.shape);
      const beta = variable(await values(layer.bias), layer.bias.shape);
      const state: BatchNormState = {
        runningMean: variable(await values(layer.runningMean), [layer.channels], false),
        runningVar: variable(await values(layer.runningVar), [layer.channels], false),
        momentum: layer.momentum,
      };
      batchNorms.push(state);
      layers.push((x, training) => {
        const { mean, variance } = tf.moments(x, [0, 1, 2]);
        const count = x.size / layer.channels;
        training.statistics.push([tf.keep(mean), tf.keep(variance), state, count]);
        return tf.batchNorm(x, mean, variance, beta, gamma, layer.eps);
      });
    } else if (layer instanceof Linear) {
      // [out, in] -> [in, out] so that y = x · W
      const weight = permute(await values(layer.weight), layer.weight.shape, [1, 0]);
      const matrix = variable(weight.data, weight.shape);
      const bias = layer.bias ? variable(await values(layer.bias), layer.bias.shape) : null;
      layers.push((x) => {
        const y = tf.matMul(x, matrix);
        return bias ? tf.add(y, bias) : y;
      });
    } else if (layer instanceof ReLU) {
      layers.push((x) => tf.relu(x));
    } else if (layer instanceof LeakyReLU) {
      layers.push((x) => tf.leakyRelu(x, layer.negativeSlope));
    } else if (layer instanceof Tanh) {
      layers.push((x) => tf.tanh(x));
    } else if (layer instanceof Sigmoid) {
      layers.push((x) => tf.sigmoid(x));
    } else if (layer instanceof Reshape) {
      // shadergan reshapes NCHW memory, so a 4-D side is seen in NCHW order for the reshape.
      layers.push((x) => {
        const flat = x.rank === 4 ? tf.transpose(x, NHWC_TO_NCHW) : x;
        const shaped = tf.reshape(flat, [x.shape[0], ...layer.shape]);
        return shaped.rank === 4 ? tf.transpose(shaped, NCHW_TO_NHWC) : shaped;
      });
    } else {
      throw new Error(`the tfjs mirror has no rule for ${layer.describe()}`);
    }
  }
  return { layers, variables, batchNorms };
}

export interface TfjsGanStep {
  /** One training step; resolves with [D loss, G loss] once both are on the CPU. */
  step(): Promise<[number, number]>;
  dispose(): void;
}

/**
 * Builds the mirror of `gan` on the current tfjs backend. Call before gan's first step so
 * that both start from the same weights. `real` is [batch, C, H, W] and `noise`
 * [batch, noiseSize], both as shadergan takes them.
 */
export async function mirrorGan(
  tf: Tf,
  backend: TfBackendName,
  gan: Gan,
  real: Float32Array,
  noise: Float32Array,
): Promise<TfjsGanStep> {
  const convOps = backend === 'wasm' ? wasmConvOps(tf) : nativeConvOps(tf);
  const generator = await mirror(tf, gan.generator, convOps);
  const discriminator = await mirror(tf, gan.discriminator, convOps);
  const { model, batchSize, optimizer } = gan.config;
  const size = model.imageSize;
  const realImages = tf.tensor(
    permute(real, [batchSize, model.channels, size, size], NCHW_TO_NHWC).data,
    [batchSize, size, size, model.channels],
  );
  const z = tf.tensor(noise, [batchSize, model.noiseSize]);
  const ones = tf.ones([batchSize, 1]);
  const zeros = tf.zeros([batchSize, 1]);
  // shadergan's Adam uses PyTorch's epsilon.
  const adamD = tf.train.adam(optimizer.lr, optimizer.beta1, optimizer.beta2, 1e-8);
  const adamG = tf.train.adam(optimizer.lr, optimizer.beta1, optimizer.beta2, 1e-8);

  const training = { statistics: [] as Statistics[] };
  const run = (layers: Layer[], input: TfTensor) =>
    layers.reduce((x, layer) => layer(x, training), input);
  const generate = () =>
    run(
      generator.layers,
      model.architecture === 'dcgan' ? tf.reshape(z, [batchSize, 1, 1, model.noiseSize]) : z,
    );
  const discriminate = (images: TfTensor) =>
    tf.reshape(run(discriminator.layers, images), [batchSize, 1]);
  const bce = (logits: TfTensor, labels: TfTensor) => tf.losses.sigmoidCrossEntropy(labels, logits);

  /** The running-statistics update shadergan's batch norm does in training mode. */
  const updateRunningStatistics = () => {
    for (const [mean, variance, state, count] of training.statistics) {
      tf.tidy(() => {
        const { momentum } = state;
        // PyTorch (and shadergan) keep the unbiased variance in the running average.
        const unbiased = tf.mul(variance, count / Math.max(1, count - 1));
        state.runningMean.assign(
          tf.add(tf.mul(state.runningMean, 1 - momentum), tf.mul(mean, momentum)),
        );
        state.runningVar.assign(
          tf.add(tf.mul(state.runningVar, 1 - momentum), tf.mul(unbiased, momentum)),
        );
      });
      mean.dispose();
      variance.dispose();
    }
    training.statistics = [];
  };

  return {
    step: async () => {
      const fake = tf.tidy(() => generate());
      const lossD = adamD.minimize(
        () =>
          tf.add(
            bce(discriminate(realImages), ones),
            bce(discriminate(fake), zeros),
          ) as import('@tensorflow/tfjs').Scalar,
        true,
        discriminator.variables,
      );
      fake.dispose();
      const lossG = adamG.minimize(
        () => bce(discriminate(generate()), ones) as import('@tensorflow/tfjs').Scalar,
        true,
        generator.variables,
      );
      updateRunningStatistics();
      const [d, g] = await Promise.all([lossD!.data(), lossG!.data()]);
      lossD!.dispose();
      lossG!.dispose();
      return [d[0], g[0]];
    },
    dispose: () => {
      [realImages, z, ones, zeros].forEach((tensor) => tensor.dispose());
      for (const net of [generator, discriminator]) {
        net.variables.forEach((v) => v.dispose());
        net.batchNorms.forEach((state) => {
          state.runningMean.dispose();
          state.runningVar.dispose();
        });
      }
      adamD.dispose();
      adamG.dispose();
    },
  };
}
