// A Tensor is a shape plus a float32 GPU buffer. Buffers are shared by reference count (views
// such as reshape and detach share one), and are returned to the pool the moment the last
// tensor using them is disposed: nothing waits for the garbage collector.
import { ShaderganError } from '../errors.ts';
import type { Gpu, PooledBuffer } from '../kernels/gpu.ts';
import { fill } from '../kernels/elementwise.ts';
import { currentScope, type TapeEntry } from './tape.ts';

class Storage {
  private refs = 1;

  constructor(
    readonly gpu: Gpu,
    readonly pooled: PooledBuffer,
  ) {}

  retain(): void {
    this.refs += 1;
  }

  release(): void {
    this.refs -= 1;
    if (this.refs === 0) this.gpu.pool.release(this.pooled);
  }
}

export function shapeSize(shape: readonly number[]): number {
  return shape.reduce((product, dimension) => product * dimension, 1);
}

export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(',')}]`;
}

export class Tensor {
  readonly size: number;
  requiresGrad: boolean;
  /** Accumulated gradient after backward(), for tensors that require one. */
  grad: Tensor | null = null;
  /** The tape entry that produced this tensor; null for leaves and untracked results. */
  creator: TapeEntry | null = null;
  /** Optional name, shown when printing the tape (parameters carry their state_dict name). */
  name: string | null = null;
  private storage: Storage | null;

  private constructor(
    readonly gpu: Gpu,
    readonly shape: readonly number[],
    storage: Storage,
    requiresGrad: boolean,
  ) {
    for (const dimension of shape) {
      if (!Number.isInteger(dimension) || dimension < 0) {
        throw new ShaderganError(`invalid tensor shape ${formatShape(shape)}`);
      }
    }
    this.size = shapeSize(shape);
    this.storage = storage;
    this.requiresGrad = requiresGrad;
    currentScope()?.track(this);
  }

  /** A tensor whose contents are undefined until a kernel writes them. */
  static empty(gpu: Gpu, shape: readonly number[], label = 'tensor'): Tensor {
    const pooled = gpu.pool.acquire(shapeSize(shape) * 4, label);
    return new Tensor(gpu, [...shape], new Storage(gpu, pooled), false);
  }

  static full(gpu: Gpu, shape: readonly number[], value: number): Tensor {
    const tensor = Tensor.empty(gpu, shape);
    fill(gpu, tensor.buffer, tensor.size, value);
    return tensor;
  }

  static zeros(gpu: Gpu, shape: readonly number[]): Tensor {
    return Tensor.full(gpu, shape, 0);
  }

  static fromArray(
    gpu: Gpu,
    data: ArrayLike<number>,
    shape: readonly number[],
    requiresGrad = false,
  ): Tensor {
    if (data.length !== shapeSize(shape)) {
      throw new ShaderganError(
        `fromArray: ${data.length} values do not fill shape ${formatShape(shape)}`,
      );
    }
    const tensor = Tensor.empty(gpu, shape);
    tensor.requiresGrad = requiresGrad;
    gpu.write(tensor.buffer, data instanceof Float32Array ? data : Float32Array.from(data));
    return tensor;
  }

  get buffer(): PooledBuffer {
    if (!this.storage) {
      throw new ShaderganError(
        `tensor ${this.name ?? formatShape(this.shape)} was used after dispose()`,
      );
    }
    return this.storage.pooled;
  }

  get disposed(): boolean {
    return this.storage === null;
  }

  /** A tensor of another shape over the same buffer (no copy). */
  view(shape: readonly number[]): Tensor {
    if (shapeSize(shape) !== this.size) {
      throw new ShaderganError(
        `cannot view ${formatShape(this.shape)} (${this.size} values) as ${formatShape(shape)}`,
      );
    }
    const storage = this.liveStorage();
    storage.retain();
    return new Tensor(this.gpu, [...shape], storage, false);
  }

  /** The same values, cut from the tape: gradients do not flow back through the result. */
  detach(): Tensor {
    return this.view(this.shape);
  }

  /** Overwrites the contents from the CPU. */
  write(data: Float32Array): void {
    if (data.length !== this.size) {
      throw new ShaderganError(
        `write: ${data.length} values for tensor of shape ${formatShape(this.shape)}`,
      );
    }
    this.gpu.write(this.buffer, data);
  }

  /** Copies the values of `source` (same size) into this tensor's buffer, in queue order. */
  assign(source: Tensor): void {
    if (source.size !== this.size) {
      throw new ShaderganError(
        `assign: ${formatShape(source.shape)} into ${formatShape(this.shape)}`,
      );
    }
    this.gpu
      .commandEncoder()
      .copyBufferToBuffer(source.buffer.buffer, 0, this.buffer.buffer, 0, this.size * 4);
  }

  /** `waitKey` names a read that recurs, such as a loss each step; see Gpu.read. */
  async toArray(waitKey?: string): Promise<Float32Array> {
    const bytes = await this.gpu.read(this.buffer, this.size * 4, waitKey);
    return new Float32Array(bytes);
  }

  /** The single value of a one-element tensor. */
  async item(waitKey?: string): Promise<number> {
    if (this.size !== 1) {
      throw new ShaderganError(`item() needs one value, tensor has ${formatShape(this.shape)}`);
    }
    return (await this.toArray(waitKey))[0];
  }

  /** Frees the buffer (when no view shares it). Calling it twice is harmless. */
  dispose(): void {
    this.storage?.release();
    this.storage = null;
    this.creator = null;
    if (this.grad) {
      this.grad.dispose();
      this.grad = null;
    }
  }

  /** Keeps the tensor alive past the end of the enclosing scope. */
  keep(): this {
    currentScope()?.untrack(this);
    return this;
  }

  private liveStorage(): Storage {
    if (!this.storage) {
      throw new ShaderganError(`tensor ${formatShape(this.shape)} was used after dispose()`);
    }
    return this.storage;
  }

  toString(): string {
    return `Tensor${formatShape(this.shape)}${this.name ? ` '${this.name}'` : ''}`;
  }
}
