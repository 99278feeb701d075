// Per-dispatch GPU times from timestamp queries: each profiled dispatch runs in a compute pass
// of its own whose start and end are written to a query set, resolved when work is submitted
// and read back at the next point where the CPU waits for the GPU anyway.
//
// The second half sums those times per op and kernel and renders them as a table, both for
// `shadergan train --profile` and for SHADERGAN_PROFILE=1, which accumulates over the whole
// process into `processProfile`.
//
// Limitation: Dawn rounds every timestamp down to a multiple of 65.536 us (its
// timestamp_quantization toggle), so one short dispatch reads as 0 or 0.066 ms; sums and
// averages over many calls are still close to the truth.

export interface KernelTime {
  /** The shader file and entry point, e.g. 'matmul.wgsl:matmul'. */
  kernel: string;
  /** The op and its shapes, as the dispatch named itself. */
  label: string;
  milliseconds: number;
}

const QUERY_CAPACITY = 4096;

interface PendingBatch {
  times: Array<Omit<KernelTime, 'milliseconds'>>;
  staging: GPUBuffer;
}

export class Profiler {
  private readonly querySet: GPUQuerySet;
  private readonly resolveBuffer: GPUBuffer;
  private readonly listeners: Array<(time: KernelTime) => void> = [];
  private recorded: Array<Omit<KernelTime, 'milliseconds'>> = [];
  private pending: PendingBatch[] = [];

  constructor(private readonly device: GPUDevice) {
    this.querySet = device.createQuerySet({ type: 'timestamp', count: QUERY_CAPACITY });
    this.resolveBuffer = device.createBuffer({
      size: QUERY_CAPACITY * 8,
      usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
    });
  }

  /** Calls `listener` with each timed dispatch from now on, e.g. to print or sum it. */
  listen(listener: (time: KernelTime) => void): void {
    this.listeners.push(listener);
  }

  get full(): boolean {
    return this.recorded.length * 2 >= QUERY_CAPACITY;
  }

  /** Begins a compute pass whose start and end times are recorded under `label`. */
  beginPass(encoder: GPUCommandEncoder, kernel: string, label: string): GPUComputePassEncoder {
    const index = this.recorded.length * 2;
    this.recorded.push({ kernel, label });
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
    if (this.recorded.length === 0) return;
    const byteLength = this.recorded.length * 16;
    const staging = this.device.createBuffer({
      size: byteLength,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    encoder.resolveQuerySet(this.querySet, 0, this.recorded.length * 2, this.resolveBuffer, 0);
    encoder.copyBufferToBuffer(this.resolveBuffer, 0, staging, 0, byteLength);
    this.pending.push({ times: this.recorded, staging });
    this.recorded = [];
  }

  /** Reads the timestamps of submitted batches; call only where the CPU waits anyway. */
  async collect(): Promise<void> {
    const batches = this.pending;
    this.pending = [];
    for (const { times, staging } of batches) {
      await staging.mapAsync(GPUMapMode.READ);
      const stamps = new BigUint64Array(staging.getMappedRange());
      times.forEach(({ kernel, label }, index) => {
        const nanoseconds = Number(stamps[2 * index + 1] - stamps[2 * index]);
        const time = { kernel, label, milliseconds: nanoseconds / 1e6 };
        for (const listener of this.listeners) listener(time);
      });
      staging.unmap();
      staging.destroy();
    }
  }
}

/** The GPU time of one op: every dispatch whose row label (see opLabel) is the same. */
export interface OpTime {
  label: string;
  kernel: string;
  calls: number;
  milliseconds: number;
}

/**
 * Parts of a dispatch label that differ between calls of one op, so that the calls would fall
 * into rows of their own: the share of a matrix product split across several bindings, Adam's
 * step counter, and the position in a random stream.
 */
const VARYING_LABEL_PARTS = [/ share \d+\/\d+/g, /\bstep \d+ /g, / seed \d+ offset \d+/g];

/** The table row a dispatch adds to: its label led by the entry point, varying parts removed. */
export function opLabel(time: Pick<KernelTime, 'kernel' | 'label'>): string {
  let label = time.label;
  for (const pattern of VARYING_LABEL_PARTS) label = label.replace(pattern, '');
  const entry = entryPointOf(time.kernel);
  return label.split(' ')[0] === entry ? label : `${entry} ${label}`.trim();
}

function entryPointOf(kernel: string): string {
  return kernel.slice(kernel.indexOf(':') + 1);
}

/** Sums kernel times per op; what the profile table is made from. */
export class OpTimes {
  private readonly byOp = new Map<string, OpTime>();

  add(time: KernelTime): void {
    const label = opLabel(time);
    const key = `${time.kernel}\n${label}`;
    const found = this.byOp.get(key);
    if (found) {
      found.calls += 1;
      found.milliseconds += time.milliseconds;
    } else {
      this.byOp.set(key, { label, kernel: time.kernel, calls: 1, milliseconds: time.milliseconds });
    }
  }

  get dispatches(): number {
    let count = 0;
    for (const op of this.byOp.values()) count += op.calls;
    return count;
  }

  ops(): OpTime[] {
    return [...this.byOp.values()].map((op) => ({ ...op }));
  }

  reset(): void {
    this.byOp.clear();
  }
}

export interface ProfileRow {
  /** The op's row label, or the kernel's `file:entry` name. */
  label: string;
  /** Per step when the summary has steps, else in total; likewise `milliseconds`. */
  calls: number;
  milliseconds: number;
  /** Fraction of all the GPU time, 0 to 1. */
  share: number;
  /** This row's share plus those of every slower row. */
  cumulative: number;
}

export interface ProfileSummary {
  /** The steps the times were summed over, or null for totals. */
  steps: number | null;
  /** Slowest first. */
  ops: ProfileRow[];
  kernels: ProfileRow[];
  milliseconds: number;
  dispatches: number;
}

/** Per-op and per-kernel rows, slowest first, divided by `steps` when given. */
export function summarizeProfile(
  ops: Iterable<OpTime>,
  steps: number | null = null,
): ProfileSummary {
  if (steps !== null && !(Number.isInteger(steps) && steps > 0)) {
    throw new RangeError(`steps must be a positive integer, got ${steps}`);
  }
  const divisor = steps ?? 1;
  const opList = [...ops];
  const byKernel = new Map<string, OpTime>();
  for (const op of opList) {
    const kernel = byKernel.get(op.kernel);
    if (kernel) {
      kernel.calls += op.calls;
      kernel.milliseconds += op.milliseconds;
    } else {
      byKernel.set(op.kernel, { ...op, label: op.kernel });
    }
  }

  const total = opList.reduce((sum, op) => sum + op.milliseconds, 0);
  const rows = (list: Iterable<OpTime>): ProfileRow[] => {
    const sorted = [...list].sort(
      (a, b) => b.milliseconds - a.milliseconds || a.label.localeCompare(b.label),
    );
    let cumulative = 0;
    return sorted.map((op) => {
      const share = total > 0 ? op.milliseconds / total : 0;
      cumulative += share;
      return {
        label: op.label,
        calls: op.calls / divisor,
        milliseconds: op.milliseconds / divisor,
        share,
        cumulative,
      };
    });
  };
  return {
    steps,
    ops: rows(opList),
    kernels: rows(byKernel.values()),
    milliseconds: total / divisor,
    dispatches: opList.reduce((sum, op) => sum + op.calls, 0) / divisor,
  };
}

export interface ProfileTableOptions {
  /** The first line, e.g. what was profiled. */
  title?: string;
  /** Wall-clock time over the same steps, for comparison with the GPU total. */
  wallMilliseconds?: number;
  /** The adapter and backend, as a person reads them. */
  adapter?: string;
  /** Longest line of the op table; longer labels are shortened in the middle. */
  width?: number;
  /** Ops listed one by one; the rest share one line. */
  maxOps?: number;
}

const DEFAULT_WIDTH = 120;
const DEFAULT_MAX_OPS = 40;
const MIN_LABEL_WIDTH = 24;

/** The op table, the kernel summary and the totals, as plain text ending in a newline. */
export function formatProfile(summary: ProfileSummary, options: ProfileTableOptions = {}): string {
  const perStep = summary.steps !== null;
  const unit = perStep ? 'ms/step' : 'ms';
  const callsHeading = perStep ? 'calls/step' : 'calls';
  const lines: string[] = [];
  if (options.title) lines.push(options.title, '');

  if (summary.ops.length === 0) {
    lines.push('No GPU time was recorded.');
  } else {
    const head = (name: string): string =>
      `${unit.padStart(10)}${'share'.padStart(8)}${'cum.'.padStart(8)}` +
      `${callsHeading.padStart(11)}  ${name}`;
    const labelWidth = Math.max(MIN_LABEL_WIDTH, (options.width ?? DEFAULT_WIDTH) - 39);
    const maxOps = options.maxOps ?? DEFAULT_MAX_OPS;

    lines.push(head('op (kernel entry point, label)'));
    for (const row of summary.ops.slice(0, maxOps)) {
      lines.push(formatRow(row, shorten(row.label, labelWidth)));
    }
    const rest = summary.ops.slice(maxOps);
    if (rest.length > 0) {
      const last = rest[rest.length - 1];
      const others: ProfileRow = {
        label: `(${rest.length} more op${rest.length === 1 ? '' : 's'})`,
        calls: rest.reduce((sum, row) => sum + row.calls, 0),
        milliseconds: rest.reduce((sum, row) => sum + row.milliseconds, 0),
        share: rest.reduce((sum, row) => sum + row.share, 0),
        cumulative: last.cumulative,
      };
      lines.push(formatRow(others, others.label));
    }

    lines.push('', head('kernel (shader file:entry point)'));
    for (const row of summary.kernels) lines.push(formatRow(row, row.label));
  }

  lines.push('');
  const dispatches =
    `${formatCount(summary.dispatches)} dispatch` +
    `${summary.dispatches === 1 ? '' : 'es'}${perStep ? '/step' : ''}`;
  let totals =
    `GPU time ${summary.milliseconds.toFixed(3)} ${unit} from timestamp queries ` +
    `(${dispatches})`;
  if (options.wallMilliseconds !== undefined) {
    totals += `; wall clock ${options.wallMilliseconds.toFixed(3)} ${unit}`;
  }
  lines.push(totals);
  if (options.adapter) lines.push(`adapter: ${options.adapter}`);
  return `${lines.join('\n')}\n`;
}

function formatRow(row: ProfileRow, label: string): string {
  return (
    row.milliseconds.toFixed(3).padStart(10) +
    formatPercent(row.share).padStart(8) +
    formatPercent(row.cumulative).padStart(8) +
    formatCount(row.calls).padStart(11) +
    `  ${label}`
  );
}

function formatPercent(fraction: number): string {
  return `${(fraction * 100).toFixed(1)}%`;
}

/** Whole numbers as they are; an average over steps that is not whole with one decimal. */
function formatCount(count: number): string {
  return Number.isInteger(count) ? String(count) : count.toFixed(1);
}

/**
 * Cuts words out of the middle of a long label: its start names the op and layer, its end the
 * shapes, and both are what a reader scans for. Words are kept whole where they fit.
 */
export function shorten(text: string, width: number): string {
  if (text.length <= width) return text;
  const words = text.split(' ');
  // Each side counts its words with one space apiece, so ' … ' adds one more character.
  const room = width - 1;
  const head: string[] = [];
  const tail: string[] = [];
  let headLength = 0;
  let tailLength = 0;
  let first = 0;
  let last = words.length - 1;
  // Fill from both ends, the shorter side first, so that start and end get about equal room.
  while (first <= last) {
    const takeHead = headLength <= tailLength;
    const word = takeHead ? words[first] : words[last];
    const fits = headLength + tailLength + word.length + 1 <= room;
    const other = takeHead ? words[last] : words[first];
    if (fits && takeHead) {
      head.push(word);
      headLength += word.length + 1;
      first += 1;
    } else if (fits) {
      tail.unshift(word);
      tailLength += word.length + 1;
      last -= 1;
    } else if (headLength + tailLength + other.length + 1 <= room && first !== last) {
      if (takeHead) {
        tail.unshift(other);
        tailLength += other.length + 1;
        last -= 1;
      } else {
        head.push(other);
        headLength += other.length + 1;
        first += 1;
      }
    } else {
      break;
    }
  }
  if (head.length === 0 || tail.length === 0) {
    // A single long word at either end: cut characters instead.
    const headRoom = Math.ceil((width - 1) / 2);
    return `${text.slice(0, headRoom)}…${text.slice(text.length - (width - 1 - headRoom))}`;
  }
  return `${head.join(' ')} … ${tail.join(' ')}`;
}

/** What to tell someone who asked for kernel times on an adapter without timestamp queries. */
export function missingTimestampsMessage(backend: string): string {
  const hint =
    backend === 'vulkan' || backend === 'default'
      ? 'a GPU or driver that has them'
      : 'SHADERGAN_BACKEND=vulkan';
  return (
    `per-kernel GPU times need timestamp queries, which the ${backend} backend lacks; ` +
    `run with ${hint} to get them`
  );
}

/** Every dispatch timed under SHADERGAN_PROFILE=1, per op, since the start or the last reset. */
export const processProfile = new OpTimes();

/**
 * The table of what SHADERGAN_PROFILE=1 has timed so far. Pass the number of steps (or
 * iterations, images...) it covers to get per-step columns; without it the columns are totals.
 * Dispatches recorded after the last read-back from the GPU are not in it yet.
 */
export function formatKernelProfile(
  options: ProfileTableOptions & { steps?: number } = {},
): string {
  return formatProfile(summarizeProfile(processProfile.ops(), options.steps ?? null), {
    title: 'GPU time by op (SHADERGAN_PROFILE)',
    ...options,
  });
}

/** Starts the SHADERGAN_PROFILE sums over, e.g. after warm-up steps. */
export function resetKernelProfile(): void {
  processProfile.reset();
}
