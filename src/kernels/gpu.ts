// The one WebGPU device of the process, the command encoder that batches work, and the buffer
// pool. Everything above this file receives a Gpu; nothing else calls into `webgpu` directly.
import { create, globals } from 'webgpu';

import { GpuError } from '../errors.ts';
import {
  formatKernelProfile,
  missingTimestampsMessage,
  processProfile,
  Profiler,
  type KernelTime,
} from './profiler.ts';

// Sleeping for all of the expected wait would oversleep whenever a step runs a little faster.
const SLEEP_SHARE_OF_WAIT = 0.85;

/**
 * Waits that Dawn resolves by polling on the Node thread (Vulkan), which takes a core away
 * from a software GPU. A wait that recurs under the same key (say, once per training step)
 * first sleeps for most of the time it took last time, and polls only for the rest.
 */
export class RecurringWaits {
  private readonly expectedMs = new Map<string, number>();

  async wait(wait: () => Promise<unknown>, key?: string): Promise<void> {
    const started = performance.now();
    const expected = key ? this.expectedMs.get(key) : undefined;
    if (expected !== undefined && expected > 1) {
      await new Promise((resolve) => setTimeout(resolve, expected * SLEEP_SHARE_OF_WAIT));
    }
    await wait();
    if (key) this.expectedMs.set(key, performance.now() - started);
  }
}

/**
 * 'auto' takes Dawn's default (Vulkan on Linux) unless that is a software device, where
 * Dawn's OpenGL backend over the same llvmpipe trains faster because it blocks instead of
 * polling while it waits (measured: 154 vs 134 images/s for the default model).
 */
export type Backend = 'auto' | 'vulkan' | 'opengl' | 'default';

export interface GpuOptions {
  /** Dawn backend; 'default' lets Dawn choose (Vulkan on Linux). */
  backend?: Backend;
}

export interface AdapterReport {
  backend: Backend;
  /** True for Mesa's llvmpipe and other devices that run shaders on the CPU. */
  software: boolean;
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  features: string[];
  limits: Record<string, number>;
}

/** A GPU buffer owned by the pool. `id` keys the bind-group cache. */
export interface PooledBuffer {
  readonly id: number;
  readonly buffer: GPUBuffer;
  /** Capacity in bytes (the pool rounds requests up). */
  readonly size: number;
}

/**
 * Reuses storage buffers by size class so that a training step allocates nothing after the
 * first one. Sizes round up to a power of two above 256 bytes (at most 2x waste) which lets
 * tensors of slightly different sizes share buffers.
 */
export class BufferPool {
  private readonly free = new Map<number, PooledBuffer[]>();
  private nextId = 1;
  /** Buffers ever created, for the "no new allocation after the first step" check. */
  allocations = 0;
  bytesAllocated = 0;
  bytesInUse = 0;

  constructor(private readonly device: GPUDevice) {}

  static sizeClass(byteLength: number): number {
    const atLeast = Math.max(256, byteLength);
    return 2 ** Math.ceil(Math.log2(atLeast));
  }

  acquire(byteLength: number, label: string): PooledBuffer {
    const size = BufferPool.sizeClass(byteLength);
    const reused = this.free.get(size)?.pop();
    this.bytesInUse += size;
    if (reused) return reused;

    this.allocations += 1;
    this.bytesAllocated += size;
    // UNIFORM too: the matmul kernel reads its shared operand through a uniform binding.
    const usage =
      GPUBufferUsage.STORAGE |
      GPUBufferUsage.UNIFORM |
      GPUBufferUsage.COPY_SRC |
      GPUBufferUsage.COPY_DST;
    const buffer = this.device.createBuffer({ size, usage, label });
    return { id: this.nextId++, buffer, size };
  }

  /** Queue order makes this safe: work already recorded reads the old contents first. */
  release(pooled: PooledBuffer): void {
    this.bytesInUse -= pooled.size;
    const list = this.free.get(pooled.size);
    if (list) list.push(pooled);
    else this.free.set(pooled.size, [pooled]);
  }

  destroyAll(): void {
    for (const list of this.free.values()) for (const pooled of list) pooled.buffer.destroy();
    this.free.clear();
  }
}

/** Wraps the device: an open command encoder and compute pass that ops append to. */
export class Gpu {
  readonly pool: BufferPool;
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private pendingError: string | null = null;
  private lostReason: string | null = null;
  /** Dispatches recorded since the last submit, newest last; names the op behind an error. */
  private recentOps: string[] = [];
  dispatchCount = 0;
  /** Copies back to the CPU so far; a training step should make only those it must. */
  readCount = 0;
  /** Bound to inputs that a kernel entry point declares but does not read. */
  readonly placeholder: PooledBuffer;
  /** Mappable buffers for reads, by size, reused so that reading back allocates nothing. */
  private readonly stagingBuffers = new Map<number, GPUBuffer[]>();
  /** Sleeps through most of recurring waits; see RecurringWaits. */
  private readonly waits = new RecurringWaits();
  /** Times every dispatch when on; see enableProfiling(). */
  profiler: Profiler | null = null;

  private constructor(
    readonly device: GPUDevice,
    readonly report: AdapterReport,
  ) {
    this.pool = new BufferPool(device);
    this.placeholder = this.pool.acquire(256, 'placeholder');
    device.onuncapturederror = (event: GPUUncapturedErrorEvent) => {
      this.pendingError ??= event.error.message;
    };
    void device.lost.then((info) => {
      if (info.reason !== 'destroyed') this.lostReason = info.message || String(info.reason);
    });
  }

  static async open(options: GpuOptions = {}): Promise<Gpu> {
    const requested = options.backend ?? 'auto';
    Object.assign(globalThis, globals);
    let backend: Backend = requested === 'auto' ? 'default' : requested;
    let adapter = await requestAdapter(backend);
    if (requested === 'auto' && !adapter) {
      adapter = await requestAdapter('opengl').catch(() => null);
      backend = 'opengl';
    }
    if (requested === 'auto' && adapter && backend !== 'opengl' && isSoftwareAdapter(adapter)) {
      const openGl = await requestAdapter('opengl').catch(() => null);
      if (openGl && isSoftwareAdapter(openGl)) {
        adapter = openGl;
        backend = 'opengl';
      }
    }
    if (!adapter) {
      throw new GpuError(
        'No WebGPU adapter found. Without a GPU, shadergan needs a software Vulkan device: ' +
          "run 'npm run setup' (installs libvulkan1 and Mesa's lavapipe) and try again.",
      );
    }

    const wanted: GPUFeatureName[] = ['timestamp-query'];
    const requiredFeatures = wanted.filter((feature) => adapter.features.has(feature));
    const requiredLimits: Record<string, number> = {};
    for (const name of [
      'maxStorageBufferBindingSize',
      'maxUniformBufferBindingSize',
      'maxBufferSize',
      'maxStorageBuffersPerShaderStage',
      'maxComputeWorkgroupStorageSize',
      'maxComputeInvocationsPerWorkgroup',
      'maxComputeWorkgroupSizeX',
      'maxComputeWorkgroupsPerDimension',
    ] as const) {
      requiredLimits[name] = adapter.limits[name];
    }
    const device = await adapter.requestDevice({ requiredFeatures, requiredLimits });

    const limits: Record<string, number> = {};
    for (const name of Object.keys(requiredLimits)) {
      limits[name] = device.limits[name as keyof GPUSupportedLimits] as number;
    }
    const info = adapter.info;
    const report: AdapterReport = {
      backend,
      software: isSoftwareAdapter(adapter),
      vendor: info.vendor,
      architecture: info.architecture,
      device: info.device,
      description: info.description,
      features: [...device.features].map(String).sort(),
      limits,
    };
    return new Gpu(device, report);
  }

  get hasTimestamps(): boolean {
    return this.device.features.has('timestamp-query');
  }

  /**
   * Times each dispatch with timestamp queries from now on and hands each time to `onTime`
   * (each dispatch then runs in a pass of its own, which costs a little). Returns false when
   * the adapter has no timestamp queries.
   */
  enableProfiling(onTime: (time: KernelTime) => void): boolean {
    if (!this.hasTimestamps) return false;
    this.endPass();
    this.profiler ??= new Profiler(this.device);
    this.profiler.listen(onTime);
    return true;
  }

  /** The compute pass that the next dispatch of `kernel` ('file:entry') goes into. */
  computePass(kernel: string, opLabel: string): GPUComputePassEncoder {
    this.throwIfBroken();
    this.recentOps.push(`${kernel} ${opLabel}`);
    if (this.recentOps.length > 64) this.recentOps.shift();
    this.dispatchCount += 1;
    if (this.profiler) {
      if (this.profiler.full) this.flush();
      this.endPass();
      this.encoder ??= this.device.createCommandEncoder();
      this.pass = this.profiler.beginPass(this.encoder, kernel, opLabel);
      return this.pass;
    }
    this.encoder ??= this.device.createCommandEncoder();
    this.pass ??= this.encoder.beginComputePass();
    return this.pass;
  }

  /** The encoder outside any pass, for copies. */
  commandEncoder(): GPUCommandEncoder {
    this.throwIfBroken();
    this.endPass();
    this.encoder ??= this.device.createCommandEncoder();
    return this.encoder;
  }

  private endPass(): void {
    this.pass?.end();
    this.pass = null;
  }

  /** Submits everything recorded so far. */
  flush(): void {
    this.endPass();
    if (this.encoder) {
      this.profiler?.resolve(this.encoder);
      this.device.queue.submit([this.encoder.finish()]);
      this.encoder = null;
    }
    this.throwIfBroken();
  }

  /**
   * Uploads through the queue. Work still being recorded must be submitted first, otherwise
   * the write would land before commands that were recorded earlier but read the old data.
   */
  write(target: PooledBuffer, data: ArrayBufferView, byteOffset = 0): void {
    this.flush();
    this.device.queue.writeBuffer(
      target.buffer,
      byteOffset,
      data.buffer,
      data.byteOffset,
      data.byteLength,
    );
  }

  /**
   * Copies `byteLength` bytes of a buffer back to the CPU, waiting for all earlier work.
   *
   * `waitKey` names a read that recurs (say, once per training step): see RecurringWaits.
   */
  async read(source: PooledBuffer, byteLength: number, waitKey?: string): Promise<ArrayBuffer> {
    this.readCount += 1;
    const size = Math.max(4, Math.ceil(byteLength / 4) * 4);
    const staging =
      this.stagingBuffers.get(size)?.pop() ??
      this.device.createBuffer({
        size,
        usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
        label: 'readback',
      });
    this.commandEncoder().copyBufferToBuffer(source.buffer, 0, staging, 0, size);
    this.flush();

    try {
      await this.waits.wait(() => staging.mapAsync(GPUMapMode.READ), waitKey);
    } catch (error) {
      this.throwIfBroken();
      throw new GpuError(`Reading a result back from the GPU failed: ${String(error)}`);
    }
    this.throwIfBroken();

    const copy = staging.getMappedRange().slice(0, byteLength);
    staging.unmap();
    const free = this.stagingBuffers.get(size);
    if (free) free.push(staging);
    else this.stagingBuffers.set(size, [staging]);
    await this.profiler?.collect();
    return copy;
  }

  /** Waits until the GPU has finished everything submitted so far; `waitKey` as in read(). */
  async sync(waitKey?: string): Promise<void> {
    this.flush();
    await this.waits.wait(() => this.device.queue.onSubmittedWorkDone(), waitKey);
    this.throwIfBroken();
    await this.profiler?.collect();
  }

  private throwIfBroken(): void {
    const context = this.recentOps.length
      ? ` Ops recorded since the last submit, newest last: ${this.recentOps.slice(-5).join('; ')}.`
      : '';
    if (this.lostReason !== null) {
      throw new GpuError(`The GPU device was lost: ${this.lostReason}.${context}`);
    }
    if (this.pendingError !== null) {
      const message = this.pendingError;
      this.pendingError = null;
      throw new GpuError(`WebGPU reported an error: ${message}${context}`);
    }
    if (this.pass === null) this.recentOps = [];
  }

  destroy(): void {
    this.endPass();
    this.encoder = null;
    this.pool.destroyAll();
    this.device.destroy();
  }
}

// Dawn crashes the process if the object returned by create() is garbage-collected while the
// device is in use, so every one ever created stays referenced here.
const keepAlive: GPU[] = [];

/** The `navigator.gpu` object of Dawn's `backend`, kept alive for the life of the process. */
export function navigatorGpu(backend: Backend): GPU {
  if (backend === 'opengl') {
    // Mesa's EGL needs no display this way; an explicit setting from the user wins.
    process.env.EGL_PLATFORM ??= 'surfaceless';
  }
  const flags = backend === 'default' || backend === 'auto' ? [] : [`backend=${backend}`];
  const gpu = create(flags);
  keepAlive.push(gpu);
  return gpu;
}

/** Dawn's OpenGL backend offers adapters only to requests for the 'compatibility' level. */
async function requestAdapter(backend: Backend): Promise<GPUAdapter | null> {
  return navigatorGpu(backend).requestAdapter(
    backend === 'opengl' ? { featureLevel: 'compatibility' } : undefined,
  );
}

/** Mesa's llvmpipe (lavapipe on Vulkan) runs "GPU" threads on the CPU. */
function isSoftwareAdapter(adapter: GPUAdapter): boolean {
  const { vendor, architecture, device, description } = adapter.info;
  return /llvmpipe|lavapipe|swiftshader/i.test(
    [vendor, architecture, device, description].join(' '),
  );
}

let shared: Promise<Gpu> | null = null;

export interface SharedGpuOptions extends GpuOptions {
  /** Prefer a backend with timestamp queries when the backend is chosen automatically. */
  timestamps?: boolean;
}

/**
 * The process-wide device, opened on first use; the first caller's options win.
 * SHADERGAN_BACKEND picks the Dawn backend, SHADERGAN_PROFILE=1 sums every dispatch's GPU
 * time and prints the table to stderr when the process exits.
 */
export function getGpu(options: SharedGpuOptions = {}): Promise<Gpu> {
  let backend = options.backend ?? backendFromEnvironment();
  const profile = profileSwitch();
  // Per-kernel times need timestamp queries, which Dawn's OpenGL backend lacks; on Linux,
  // naming Vulkan (Dawn's default there) also makes the adapter report say which it is.
  const timestamps = options.timestamps === true || profile || debugSwitch('kernels');
  if (backend === 'auto' && timestamps) {
    backend = process.platform === 'linux' ? 'vulkan' : 'default';
  }
  shared ??= Gpu.open({ backend }).then((gpu) => {
    // SHADERGAN_DEBUG=kernels prints every dispatch; with timestamp queries, with its GPU time.
    if (debugSwitch('kernels')) {
      gpu.enableProfiling(({ kernel, label, milliseconds }) => {
        process.stderr.write(
          `[shadergan] ${milliseconds.toFixed(3).padStart(9)} ms  ${kernel} ${label}\n`,
        );
      });
    }
    if (profile) profileProcess(gpu);
    return gpu;
  });
  return shared;
}

function profileProcess(gpu: Gpu): void {
  if (!gpu.enableProfiling((time) => processProfile.add(time))) {
    process.stderr.write(
      `[shadergan] SHADERGAN_PROFILE: ${missingTimestampsMessage(gpu.report.backend)}\n`,
    );
    return;
  }
  const { description, device } = gpu.report;
  const adapter = `${description || device || 'unknown adapter'} (${gpu.report.backend} backend)`;
  // An exit handler cannot await: it prints what earlier read-backs already brought to the CPU.
  process.once('exit', () => {
    process.stderr.write(formatKernelProfile({ adapter }));
  });
}

/** Whether SHADERGAN_PROFILE asks for the per-kernel time table at exit (1, true or yes). */
function profileSwitch(): boolean {
  const value = (process.env.SHADERGAN_PROFILE ?? '').trim().toLowerCase();
  return value === '1' || value === 'true' || value === 'yes';
}

/** Whether SHADERGAN_DEBUG (a comma-separated list) names `name`, or is 1 or all. */
export function debugSwitch(name: string): boolean {
  const words = (process.env.SHADERGAN_DEBUG ?? '').split(',').map((word) => word.trim());
  return words.includes(name) || words.includes('all') || words.includes('1');
}

function backendFromEnvironment(): Backend {
  const value = process.env.SHADERGAN_BACKEND ?? 'auto';
  if (value === 'auto' || value === 'vulkan' || value === 'opengl' || value === 'default') {
    return value;
  }
  throw new GpuError(`SHADERGAN_BACKEND must be auto, vulkan, opengl or default, not '${value}'.`);
}
