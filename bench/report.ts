// Summaries and the Markdown report of a bench run.

export interface Summary {
  median: number;
  min: number;
  max: number;
  count: number;
}

export function summarise(values: readonly number[]): Summary {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  const median =
    sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
  return { median, min: sorted[0], max: sorted[sorted.length - 1], count: sorted.length };
}

/** One engine's outcome on one case. */
export type Cell =
  | { status: 'ok'; summary: Summary; difference: number | null }
  | { status: 'not supported'; reason: string }
  | { status: 'error'; reason: string }
  | { status: 'skipped' };

export interface OpRow {
  name: string;
  group: string;
  flops: number;
  /** Keyed by engine name. */
  cells: Record<string, Cell>;
  /** tfjs-webgpu median time / shadergan median time. */
  speedup: number | null;
  passed: boolean;
}

export interface TrainingRow {
  name: string;
  batchSize: number;
  /** Images per second, keyed by engine name. */
  cells: Record<string, Cell>;
  speedup: number | null;
  passed: boolean;
}

export interface Target {
  description: string;
  measured: string;
  met: boolean;
}

export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  if (value >= 100) return value.toFixed(0);
  if (value >= 10) return value.toFixed(1);
  if (value >= 1) return value.toFixed(2);
  return value.toPrecision(2);
}

function formatSpread({ median, min, max, count }: Summary): string {
  if (count === 1) return `${formatNumber(median)} (1 sample)`;
  return `${formatNumber(median)} (${formatNumber(min)}–${formatNumber(max)})`;
}

function cellText(cell: Cell | undefined): string {
  if (!cell || cell.status === 'skipped') return '–';
  if (cell.status === 'not supported') return 'not supported';
  if (cell.status === 'error') return 'error';
  return formatSpread(cell.summary);
}

function rate(cell: Cell | undefined, flops: number): string {
  if (!cell || cell.status !== 'ok' || flops === 0) return '–';
  return formatNumber(flops / (cell.summary.median / 1000) / 1e9);
}

function differenceText(cells: Record<string, Cell>): string {
  const differences = Object.values(cells).flatMap((cell) =>
    cell.status === 'ok' && cell.difference !== null ? [cell.difference] : [],
  );
  return differences.length ? Math.max(...differences).toExponential(1) : '–';
}

function speedupText(speedup: number | null): string {
  return speedup === null ? '–' : `${speedup.toFixed(1)}x`;
}

export function opTable(rows: readonly OpRow[]): string {
  const lines = [
    '| case | shadergan ms | GFLOP/s | tfjs-webgpu ms | GFLOP/s | speed-up | tfjs-wasm ms | max rel. diff | check |',
    '|---|---|---|---|---|---|---|---|---|',
  ];
  for (const row of rows) {
    const ours = row.cells.shadergan;
    const webgpu = row.cells['tfjs-webgpu'];
    lines.push(
      `| ${row.name} | ${cellText(ours)} | ${rate(ours, row.flops)} | ${cellText(webgpu)} | ` +
        `${rate(webgpu, row.flops)} | ${speedupText(row.speedup)} | ` +
        `${cellText(row.cells['tfjs-wasm'])} | ${differenceText(row.cells)} | ` +
        `${row.passed ? 'ok' : 'FAILED'} |`,
    );
  }
  return lines.join('\n');
}

export function trainingTable(rows: readonly TrainingRow[]): string {
  const lines = [
    '| training step | shadergan img/s | tfjs-webgpu img/s | speed-up | tfjs-wasm img/s | tfjs-cpu img/s | max rel. diff (losses) | check |',
    '|---|---|---|---|---|---|---|---|',
  ];
  for (const row of rows) {
    lines.push(
      `| ${row.name}, batch ${row.batchSize} | ${cellText(row.cells.shadergan)} | ` +
        `${cellText(row.cells['tfjs-webgpu'])} | ${speedupText(row.speedup)} | ` +
        `${cellText(row.cells['tfjs-wasm'])} | ${cellText(row.cells['tfjs-cpu'])} | ` +
        `${differenceText(row.cells)} | ${row.passed ? 'ok' : 'FAILED'} |`,
    );
  }
  return lines.join('\n');
}

export function targetList(targets: readonly Target[]): string {
  return targets
    .map(
      (target) => `- ${target.met ? 'met' : 'NOT MET'}: ${target.description}: ${target.measured}`,
    )
    .join('\n');
}

/** Every failure and unsupported case with its reason, so that the tables can stay short. */
export function notes(rows: ReadonlyArray<OpRow | TrainingRow>): string {
  const lines: string[] = [];
  for (const row of rows) {
    for (const [engine, cell] of Object.entries(row.cells)) {
      if (cell.status === 'error' || cell.status === 'not supported') {
        lines.push(`- ${row.name}, ${engine}: ${cell.status}: ${cell.reason}`);
      }
    }
  }
  return lines.join('\n');
}
