// Checkpoints are safetensors files. Tensor names are PyTorch's DCGAN state_dict names behind
// a `generator.` or `discriminator.` prefix (conv weights [out, in, kh, kw], transposed conv
// weights [in, out, kh, kw], batch-norm running statistics and num_batches_tracked), Adam's
// moments behind `optimizer.`, and the config and step counters in the metadata.
import { CheckpointError } from '../errors.ts';
import { completeGanConfig, Gan, type GanConfig, validateGanConfig } from './gan.ts';
import { readSafetensors, writeSafetensors, type NamedTensor } from './safetensors.ts';
import type { Gpu } from '../kernels/gpu.ts';

const FORMAT = 'shadergan-dcgan-1';

export interface CheckpointInfo {
  config: GanConfig;
  step: number;
  /** Free-form facts about the run (e.g. the data directory), stored as strings. */
  extra: Record<string, string>;
}

/** Writes the whole training state; the file appears complete or not at all. */
export async function saveCheckpoint(
  path: string,
  gan: Gan,
  extra: Record<string, string> = {},
): Promise<void> {
  const tensors: NamedTensor[] = [];
  for (const [name, tensor] of gan.namedTensors()) {
    tensors.push({ name, dtype: 'F32', shape: [...tensor.shape], data: await tensor.toArray() });
  }
  for (const [name, module] of gan.batchCounters()) {
    tensors.push({
      name,
      dtype: 'I64',
      shape: [],
      data: BigInt64Array.of(BigInt(module.batchesTracked)),
    });
  }
  writeSafetensors(path, tensors, {
    format: FORMAT,
    config: JSON.stringify(gan.config),
    step: String(gan.step),
    'optimizer.generator.step': String(gan.optimizerG.stepCount),
    'optimizer.discriminator.step': String(gan.optimizerD.stepCount),
    ...extra,
  });
}

/** Rebuilds the models and optimizers from a checkpoint, ready to continue training. */
export function loadCheckpoint(gpu: Gpu, path: string): { gan: Gan; info: CheckpointInfo } {
  const file = readSafetensors(path);
  const info = { ...parseMetadata(path, file.metadata), extra: file.metadata };
  const gan = new Gan(gpu, info.config);
  try {
    const values = new Map<string, Float32Array>();
    for (const [name, stored] of file.tensors) {
      if (stored.data instanceof Float32Array) values.set(name, stored.data);
    }
    for (const [name, tensor] of gan.namedTensors()) {
      const data = values.get(name);
      if (!data) throw new CheckpointError(`${path} has no tensor '${name}'`);
      if (data.length !== tensor.size) {
        throw new CheckpointError(
          `${path}: '${name}' holds ${data.length} values, the model needs ${tensor.size}`,
        );
      }
      tensor.write(data);
    }
    for (const [name, module] of gan.batchCounters()) {
      const stored = file.tensors.get(name);
      if (stored?.data instanceof BigInt64Array) module.batchesTracked = Number(stored.data[0]);
    }
    gan.step = info.step;
    gan.optimizerG.stepCount = integerField(path, file.metadata, 'optimizer.generator.step');
    gan.optimizerD.stepCount = integerField(path, file.metadata, 'optimizer.discriminator.step');
  } catch (error) {
    gan.dispose();
    throw error;
  }
  return { gan, info };
}

function parseMetadata(
  path: string,
  metadata: Record<string, string>,
): Omit<CheckpointInfo, 'extra'> {
  if (metadata.format !== FORMAT) {
    throw new CheckpointError(
      `${path} is not a shadergan checkpoint (metadata format is ` +
        `${metadata.format === undefined ? 'missing' : `'${metadata.format}'`}, ` +
        `expected '${FORMAT}')`,
    );
  }
  let config: GanConfig;
  try {
    config = completeGanConfig(JSON.parse(metadata.config ?? '') as GanConfig);
    validateGanConfig(config);
  } catch (error) {
    throw new CheckpointError(`${path} has an unreadable config: ${(error as Error).message}`);
  }
  return { config, step: integerField(path, metadata, 'step') };
}

function integerField(path: string, metadata: Record<string, string>, key: string): number {
  const value = Number(metadata[key]);
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new CheckpointError(`${path}: metadata '${key}' is not a step count`);
  }
  return value;
}
