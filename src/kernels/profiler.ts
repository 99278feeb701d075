// Per-dispatch GPU times from timestamp queries: each profiled dispatch runs in a compute pass
// of its own whose start and end are written to a query set, resolved when work is submitted
// and read back at the next point where the CPU waits for the GPU anyway.

export interface KernelTime {
  label: string;
  milliseconds: number;
}

const QUERY_CAPACITY = 4096;

interface PendingBatch {
  labels: string[];
  staging: GPUBuffer;
}

export class Profiler {
  private readonly querySet: GPUQuerySet;
  private readonly resolveBuffer: GPUBuffer;
  private labels: string[] = [];
  private pending: PendingBatch[] = [];

  constructor(
    private readonly device: GPUDevice,
    /** Called with each timed dispatch, e.g. to print it. */
    private readonly onTime: (time: KernelTime) => void,
  ) {
    this.querySet = device.createQuerySet({ type: 'timestamp', count: QUERY_CAPACITY });
    this.resolveBuffer = device.createBuffer({
      size: QUERY_CAPACITY * 8,
      usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
    });
  }

  get full(): boolean {
    return this.labels.length * 2 >= QUERY_CAPACITY;
  }

  /** Begins a compute pass whose start and end times are recorded under `label`. */
  beginPass(encoder: GPUCommandEncoder, label: string): GPUComputePassEncoder {
    const index = this.labels.length * 2;
    this.labels.push(label);
    return encoder.beginComputePass({
      timestampWrites: {
        querySet: this.querySet,
        beginningOfPassWriteIndex: index,
        endOfPassWriteIndex: index + 1,
      },
    });
  }

  /** Appends the commands that copy this batch's timestamps out; call just before submit. */
  resolve(encoder: GPUCommandEncoder): void {
    if (this.labels.length === 0) return;
    const byteLength = this.labels.length * 16;
    const staging = this.device.createBuffer({
      size: byteLength,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    encoder.resolveQuerySet(this.querySet, 0, this.labels.length * 2, this.resolveBuffer, 0);
    encoder.copyBufferToBuffer(this.resolveBuffer, 0, staging, 0, byteLength);
    this.pending.push({ labels: this.labels, staging });
    this.labels = [];
  }

  /** Reads the timestamps of submitted batches; call only where the CPU waits anyway. */
  async collect(): Promise<void> {
    const batches = this.pending;
    this.pending = [];
    for (const { labels, staging } of batches) {
      await staging.mapAsync(GPUMapMode.READ);
      const stamps = new BigUint64Array(staging.getMappedRange());
      labels.forEach((label, index) => {
        const nanoseconds = Number(stamps[2 * index + 1] - stamps[2 * index]);
        const milliseconds = nanoseconds / 1e6;
        this.onTime({ label, milliseconds });
      });
      staging.unmap();
      staging.destroy();
    }
  }
}
