/** Base class for every error shadergan throws on purpose: the message is meant for a person. */
export class ShaderganError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** A data file is missing, truncated or not in the expected format. */
export class DataError extends ShaderganError {}

/** A checkpoint file cannot be read or does not match the model. */
export class CheckpointError extends ShaderganError {}

/** A command-line flag or value is not understood. */
export class UsageError extends ShaderganError {}

/** The GPU reported a validation error, ran out of memory, or was lost. */
export class GpuError extends ShaderganError {}
