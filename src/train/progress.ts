// Shows training progress to a person. On a terminal one line is redrawn in place; in a log
// file (not a TTY) a full line is printed now and then, so the log stays short and readable.

export interface ProgressStream {
  write(text: string): boolean;
  isTTY?: boolean;
}

export interface ProgressOptions {
  /** The step count at which training ends; the bar is full there. */
  total: number;
  stream: ProgressStream;
  /** The least time between two drawn updates; 200 ms on a terminal, 5000 ms otherwise. */
  intervalMs?: number;
  /** Milliseconds from some fixed origin; tests pass a fake clock. */
  now?: () => number;
}

export interface ProgressState {
  step: number;
  epoch: number;
  imagesPerSecond: number;
  /** Named numbers to show, e.g. losses; drawn in insertion order. */
  values: Record<string, number>;
}

const TERMINAL_INTERVAL_MS = 200;
const LOG_INTERVAL_MS = 5000;
const BAR_WIDTH = 20;
const FILLED_BLOCK = '█';
const EMPTY_BLOCK = '░';
const SIGNIFICANT_DIGITS = 4;
// A terminal line is redrawn by returning to its start and then erasing whatever a longer
// previous line left behind after the new text.
// Limitation: a line wider than the terminal wraps, and '\r' then redraws only its last part;
// many values on a narrow terminal leave a trail of partial lines.
const REDRAW_LINE = '\r';
const CLEAR_TO_END_OF_LINE = '\x1b[K';

export class ProgressBar {
  private readonly total: number;
  private readonly stream: ProgressStream;
  private readonly interactive: boolean;
  private readonly intervalMs: number;
  private readonly now: () => number;

  private firstUpdate: { step: number; timeMs: number } | undefined;
  private lastDrawnMs = -Infinity;
  private pending: ProgressState | undefined;
  private lineOpen = false;

  constructor(options: ProgressOptions) {
    this.total = options.total;
    this.stream = options.stream;
    this.interactive = options.stream.isTTY === true;
    this.intervalMs =
      options.intervalMs ?? (this.interactive ? TERMINAL_INTERVAL_MS : LOG_INTERVAL_MS);
    this.now = options.now ?? (() => performance.now());
  }

  /** Records the latest state and draws it if enough time has passed since the last drawing. */
  update(state: ProgressState): void {
    const nowMs = this.now();
    const isFirst = this.firstUpdate === undefined;
    if (this.firstUpdate === undefined) this.firstUpdate = { step: state.step, timeMs: nowMs };

    const isLast = state.step >= this.total;
    if (isFirst || isLast || nowMs - this.lastDrawnMs >= this.intervalMs) {
      this.draw(state, nowMs);
    } else {
      this.pending = state;
    }
  }

  /** Draws the latest state if it was held back, ends the line, and prints `message` if given. */
  finish(message?: string): void {
    if (this.pending !== undefined) this.draw(this.pending, this.now());
    if (this.lineOpen) this.stream.write('\n');
    this.lineOpen = false;
    if (message !== undefined) this.stream.write(`${message}\n`);
  }

  private draw(state: ProgressState, nowMs: number): void {
    this.pending = undefined;
    this.lastDrawnMs = nowMs;
    const line = this.formatLine(state, nowMs);
    if (this.interactive) {
      this.stream.write(REDRAW_LINE + line + CLEAR_TO_END_OF_LINE);
      this.lineOpen = true;
    } else {
      this.stream.write(`${line}\n`);
    }
  }

  private formatLine(state: ProgressState, nowMs: number): string {
    const fraction = this.total > 0 ? Math.min(Math.max(state.step / this.total, 0), 1) : 1;
    const percent = `${(fraction * 100).toFixed(1)}%`;
    const parts = this.interactive
      ? [`${drawBar(fraction)} ${state.step}/${this.total}`, percent]
      : [`step ${state.step}/${this.total}`, `(${percent})`];

    parts.push(`epoch ${state.epoch}`, `${formatRate(state.imagesPerSecond)} img/s`);
    for (const [name, value] of Object.entries(state.values)) {
      parts.push(`${name} ${formatSignificant(value)}`);
    }
    parts.push(`ETA ${this.estimateRemaining(state.step, nowMs)}`);
    return parts.join('  ');
  }

  /** Extrapolates from the average step rate since the first update of this run. */
  private estimateRemaining(step: number, nowMs: number): string {
    if (step >= this.total) return formatDuration(0);
    const first = this.firstUpdate;
    if (first === undefined) return '?';
    const stepsDone = step - first.step;
    const elapsedSeconds = (nowMs - first.timeMs) / 1000;
    if (stepsDone <= 0 || elapsedSeconds <= 0) return '?';
    return formatDuration(((this.total - step) * elapsedSeconds) / stepsDone);
  }
}

function drawBar(fraction: number): string {
  const filled = Math.round(fraction * BAR_WIDTH);
  return FILLED_BLOCK.repeat(filled) + EMPTY_BLOCK.repeat(BAR_WIDTH - filled);
}

function formatRate(imagesPerSecond: number): string {
  if (!Number.isFinite(imagesPerSecond)) return '?';
  return imagesPerSecond < 10 ? imagesPerSecond.toFixed(1) : Math.round(imagesPerSecond).toString();
}

/** A number with four significant digits, e.g. 0.6931, 12.35, 1.235e+5. */
export function formatSignificant(value: number): string {
  return Number.isFinite(value) ? value.toPrecision(SIGNIFICANT_DIGITS) : String(value);
}

/** A short duration for people: 12s, 3m05s, 1h02m. Unknown or negative durations give '?'. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const wholeSeconds = Math.round(seconds);
  if (wholeSeconds < 60) return `${wholeSeconds}s`;

  const wholeMinutes = Math.floor(wholeSeconds / 60);
  if (wholeMinutes < 60) {
    return `${wholeMinutes}m${String(wholeSeconds % 60).padStart(2, '0')}s`;
  }
  // Seconds no longer matter at this scale; round to the nearest minute instead of truncating.
  const roundedMinutes = Math.round(wholeSeconds / 60);
  const hours = Math.floor(roundedMinutes / 60);
  return `${hours}h${String(roundedMinutes % 60).padStart(2, '0')}m`;
}
