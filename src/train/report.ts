// Builds report.html, one page that shows a run at a glance: losses, speed, sample grids and
// settings. It is made only from the files in the run folder, so it can be rebuilt at any time,
// during a run or long after it, and a half-written or missing file only makes it say so.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';

import { writeFileAtomic } from './atomic-write.ts';

export const REPORT_FILE = 'report.html';
/** Enough to follow a curve's shape at any page width, few enough to keep the page light. */
export const MAX_POINTS_PER_LINE = 2000;
/** Sample grids shown below the newest one; more would make the page slow to scroll. */
export const MAX_SAMPLE_GRIDS = 40;
// Epoch lines stop helping once they crowd the chart.
const MAX_EPOCH_MARKERS = 20;
const MAX_SMOOTHING_WINDOW = 100;

/** One line of metrics.jsonl, as the training loop writes it. */
export interface MetricPoint {
  step: number;
  epoch: number;
  lossD: number;
  lossG: number;
  imagesPerSecond: number;
  /** Since the training process started: it starts again from 0 when a run is resumed. */
  seconds: number;
}

export type JsonObject = { [key: string]: unknown };

/** A file of the run folder as read: its content, or why there is none to show. */
export type FileRead<T> =
  { status: 'ok'; value: T } | { status: 'missing' } | { status: 'invalid'; reason: string };

export interface SampleGrid {
  step: number;
  /** Relative to the run folder, e.g. samples/step-000100.png. */
  path: string;
}

/** Everything the page shows, already read from disk, so the page itself is a pure function. */
export interface RunReportInput {
  /** The run folder, as the caller named it. */
  runDir: string;
  /** When the page was built, shown so a stale page is recognised. */
  builtAt: string;
  config: FileRead<JsonObject>;
  metrics: FileRead<{ points: MetricPoint[]; skippedLines: number }>;
  /** Grids named step-NNNNNN.png, in step order. */
  samples: SampleGrid[];
  /** Whether samples/latest.png exists; shown only when no step grid does. */
  hasLatestSample: boolean;
  evaluation: FileRead<JsonObject>;
}

/**
 * Reads the run folder and writes its report.html atomically. Missing or damaged files are
 * described on the page; only a failure to write the page itself throws.
 */
export function writeRunReport(runDir: string): void {
  const html = renderRunReport(readRunFolder(runDir));
  writeFileAtomic(join(runDir, REPORT_FILE), [Buffer.from(html)]);
}

export function readRunFolder(runDir: string): RunReportInput {
  const metricsText = readText(join(runDir, 'metrics.jsonl'));
  const samplesDir = join(runDir, 'samples');
  const sampleNames = safeList(samplesDir);
  const samples: SampleGrid[] = [];
  for (const name of sampleNames) {
    const match = /^step-(\d+)\.png$/.exec(name);
    if (match) samples.push({ step: Number(match[1]), path: `samples/${name}` });
  }
  samples.sort((a, b) => a.step - b.step);

  return {
    runDir,
    builtAt: new Date().toISOString(),
    config: readJsonObject(join(runDir, 'config.json')),
    metrics:
      metricsText.status === 'ok'
        ? { status: 'ok', value: parseMetrics(metricsText.value) }
        : metricsText,
    samples,
    hasLatestSample: sampleNames.includes('latest.png'),
    evaluation: readJsonObject(join(runDir, 'eval.json')),
  };
}

function readText(path: string): FileRead<string> {
  if (!existsSync(path)) return { status: 'missing' };
  try {
    return { status: 'ok', value: readFileSync(path, 'utf8') };
  } catch (error) {
    return { status: 'invalid', reason: `cannot be read (${(error as Error).message})` };
  }
}

function readJsonObject(path: string): FileRead<JsonObject> {
  const text = readText(path);
  if (text.status !== 'ok') return text;
  let value: unknown;
  try {
    value = JSON.parse(text.value);
  } catch {
    // A writer that does not replace the file atomically can be caught half-way.
    return { status: 'invalid', reason: 'is not valid JSON' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { status: 'invalid', reason: 'does not hold a JSON object' };
  }
  return { status: 'ok', value: value as JsonObject };
}

function safeList(folder: string): string[] {
  try {
    return readdirSync(folder);
  } catch {
    return [];
  }
}

/**
 * The readable lines of metrics.jsonl in step order. A line cut short by a crash, or one
 * without the numbers a chart needs, is counted and left out rather than failing the page.
 */
export function parseMetrics(text: string): { points: MetricPoint[]; skippedLines: number } {
  const points: MetricPoint[] = [];
  let skippedLines = 0;
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const point = parseMetricLine(line);
    if (point === null) skippedLines += 1;
    else points.push(point);
  }
  // Stable, so a step written twice keeps the order it was written in.
  points.sort((a, b) => a.step - b.step);
  return { points, skippedLines };
}

function parseMetricLine(line: string): MetricPoint | null {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null) return null;
  const record = value as Record<string, unknown>;
  const fields = ['step', 'epoch', 'lossD', 'lossG', 'imagesPerSecond', 'seconds'] as const;
  for (const field of fields) {
    if (typeof record[field] !== 'number' || !Number.isFinite(record[field])) return null;
  }
  return record as unknown as MetricPoint;
}

/**
 * Nested objects become dotted keys (`model.width`), so a config reads as one flat table.
 * Arrays stay whole, as JSON, because their elements mean little one per row.
 */
export function flattenObject(object: JsonObject, prefix = ''): Array<[string, unknown]> {
  const rows: Array<[string, unknown]> = [];
  for (const [key, value] of Object.entries(object)) {
    const name = prefix === '' ? key : `${prefix}.${key}`;
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
      const nested = flattenObject(value as JsonObject, name);
      // An empty object would otherwise vanish from the table.
      if (nested.length === 0) rows.push([name, value]);
      else rows.push(...nested);
    } else {
      rows.push([name, value]);
    }
  }
  return rows;
}

export function escapeHtml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

export interface Point {
  x: number;
  y: number;
}

/**
 * At most `maxPoints` of `points`, keeping the lowest and highest point of each of
 * maxPoints/2 equal runs in their original order: a spike survives, which taking every n-th
 * point would drop. The first and last points are always kept.
 */
export function downsample(points: readonly Point[], maxPoints: number): Point[] {
  if (points.length <= maxPoints) return points.slice();
  const buckets = Math.max(1, Math.floor((maxPoints - 2) / 2));
  const inner = points.length - 2;
  const kept: Point[] = [points[0]];
  for (let bucket = 0; bucket < buckets; bucket += 1) {
    const start = 1 + Math.floor((bucket * inner) / buckets);
    const end = 1 + Math.floor(((bucket + 1) * inner) / buckets);
    if (start >= end) continue;
    let low = start;
    let high = start;
    for (let index = start + 1; index < end; index += 1) {
      if (points[index].y < points[low].y) low = index;
      if (points[index].y > points[high].y) high = index;
    }
    kept.push(points[Math.min(low, high)]);
    if (low !== high) kept.push(points[Math.max(low, high)]);
  }
  kept.push(points[points.length - 1]);
  return kept;
}

/**
 * The mean of each value and the `window - 1` before it; the first values average what there
 * is. Trailing rather than centred, so the newest value is not pulled toward a future it lacks.
 */
export function movingAverage(values: readonly number[], window: number): number[] {
  const averages: number[] = [];
  let sum = 0;
  for (let index = 0; index < values.length; index += 1) {
    sum += values[index];
    if (index >= window) sum -= values[index - window];
    averages.push(sum / Math.min(index + 1, window));
  }
  return averages;
}

/** Wide enough to calm a GAN's step-to-step noise, narrow enough to keep a trend visible. */
export function smoothingWindow(count: number): number {
  return Math.max(1, Math.min(MAX_SMOOTHING_WINDOW, Math.round(count / 25)));
}

/** At most `max` items spread evenly over `items`, always the first and the last. */
export function pickEvenly<T>(items: readonly T[], max: number): T[] {
  if (items.length <= max) return items.slice();
  if (max <= 1) return items.slice(-1);
  const indices = new Set<number>();
  for (let pick = 0; pick < max; pick += 1) {
    indices.add(Math.round((pick * (items.length - 1)) / (max - 1)));
  }
  return [...indices].map((index) => items[index]);
}

/** Seconds of training in all sessions: `seconds` restarts from 0 when a run is resumed. */
export function totalSeconds(points: readonly MetricPoint[]): number {
  let finished = 0;
  let previous = 0;
  for (const point of points) {
    if (point.seconds < previous) finished += previous;
    previous = point.seconds;
  }
  return finished + previous;
}

export function renderRunReport(input: RunReportInput): string {
  const points = input.metrics.status === 'ok' ? input.metrics.value.points : [];
  const latest = points.at(-1);
  const folderName = basename(input.runDir) || input.runDir;
  const title =
    latest === undefined ? folderName : `${folderName} at step ${formatInteger(latest.step)}`;

  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(`${title} - shadergan`)}</title>
<style>${STYLE}</style>
</head>
<body>
<header>
<h1>${escapeHtml(title)}</h1>
<p class="muted">Run folder <code>${escapeHtml(input.runDir)}</code>; page built from its files at
${escapeHtml(input.builtAt)}.</p>
<nav>${NAVIGATION}</nav>
</header>
${renderSummary(input, points)}
${renderCharts(input, points)}
${renderSamples(input)}
${renderEvaluation(input.evaluation, latest?.step)}
${renderTableSection('Config', 'config', 'config.json', input.config)}
</body>
</html>
`;
}

function renderSummary(input: RunReportInput, points: readonly MetricPoint[]): string {
  const latest = points.at(-1);
  if (latest === undefined) {
    return section('Summary', 'summary', `<p class="note">${metricsAbsence(input)}</p>`);
  }

  const window = smoothingWindow(points.length);
  const recent = points.slice(-window);
  const mean = (pick: (point: MetricPoint) => number): number =>
    recent.reduce((sum, point) => sum + pick(point), 0) / recent.length;
  const totalSteps =
    input.config.status === 'ok' ? lookup(input.config.value, ['run', 'steps']) : undefined;
  const progress =
    typeof totalSteps === 'number' && totalSteps > 0
      ? `of ${formatInteger(totalSteps)} (${((100 * latest.step) / totalSteps).toFixed(1)}%), `
      : '';
  const sessions = 1 + points.filter((p, i) => i > 0 && p.seconds < points[i - 1].seconds).length;

  const cards: Array<[string, string, string]> = [
    ['Step', formatInteger(latest.step), `${progress}epoch ${latest.epoch}`],
    ['D loss', formatLoss(latest.lossD), `${formatLoss(mean((p) => p.lossD))} smoothed`],
    ['G loss', formatLoss(latest.lossG), `${formatLoss(mean((p) => p.lossG))} smoothed`],
    ['Images/s', latest.imagesPerSecond.toFixed(1), 'average since the last start'],
    [
      'Training time',
      formatDuration(totalSeconds(points)),
      sessions === 1 ? 'one session' : `${sessions} sessions`,
    ],
  ];
  const cardHtml = cards
    .map(
      ([label, value, detail]) =>
        `<div class="card"><div class="label">${escapeHtml(label)}</div>` +
        `<div class="value">${escapeHtml(value)}</div>` +
        `<div class="detail">${escapeHtml(detail)}</div></div>`,
    )
    .join('\n');
  const smoothing =
    window === 1 ? '' : `Smoothed losses are the mean of the last ${window} steps. `;
  return section(
    'Summary',
    'summary',
    `<div class="cards">\n${cardHtml}\n</div>\n` +
      `<p class="muted">${smoothing}${skippedNote(input)}</p>`,
  );
}

function metricsAbsence(input: RunReportInput): string {
  if (input.metrics.status === 'missing') {
    return 'No metrics yet: metrics.jsonl is missing from the run folder.';
  }
  if (input.metrics.status === 'invalid') {
    return escapeHtml(`No metrics: metrics.jsonl ${input.metrics.reason}.`);
  }
  return `No metrics yet: metrics.jsonl has no complete lines. ${skippedNote(input)}`;
}

function skippedNote(input: RunReportInput): string {
  const skipped = input.metrics.status === 'ok' ? input.metrics.value.skippedLines : 0;
  if (skipped === 0) return '';
  const lines = skipped === 1 ? '1 line' : `${skipped} lines`;
  return escapeHtml(
    `${lines} of metrics.jsonl could not be read and ${skipped === 1 ? 'was' : 'were'} skipped.`,
  );
}

function renderCharts(input: RunReportInput, points: readonly MetricPoint[]): string {
  if (points.length === 0) {
    return (
      section('Losses', 'losses', `<p class="note">${metricsAbsence(input)}</p>`) +
      '\n' +
      section('Speed', 'speed', '<p class="muted">Nothing to draw until metrics arrive.</p>')
    );
  }

  const window = smoothingWindow(points.length);
  const series = (pick: (point: MetricPoint) => number): Point[] =>
    points.map((point) => ({ x: point.step, y: pick(point) }));
  const smoothed = (raw: Point[]): Point[] => {
    const averages = movingAverage(
      raw.map((point) => point.y),
      window,
    );
    return raw.map((point, index) => ({ x: point.x, y: averages[index] }));
  };
  const rawD = series((point) => point.lossD);
  const rawG = series((point) => point.lossG);
  const smoothD = smoothed(rawD);
  const smoothG = smoothed(rawG);

  const markers: Array<{ x: number; label: string }> = [];
  for (let index = 1; index < points.length; index += 1) {
    if (points[index].epoch !== points[index - 1].epoch) {
      markers.push({ x: points[index].step, label: `epoch ${points[index].epoch}` });
    }
  }

  const lossChart = lineChart({
    id: 'loss-chart',
    label: 'Discriminator and generator loss against training step',
    yLabel: 'loss',
    lines: [
      { points: rawD, color: COLOR_D, raw: true },
      { points: rawG, color: COLOR_G, raw: true },
      { points: smoothD, color: COLOR_D, raw: false },
      { points: smoothG, color: COLOR_G, raw: false },
    ],
    // Percentiles of every step, so one early spike cannot flatten all the other steps.
    yRange: robustRange(
      [...rawD, ...rawG].map((point) => point.y),
      [...smoothD, ...smoothG].map((point) => point.y),
    ),
    markers: markers.length <= MAX_EPOCH_MARKERS ? markers : [],
  });
  const legend =
    `<div class="legend">` +
    `<span><i style="background:${COLOR_D}"></i>D (discriminator)</span>` +
    `<span><i style="background:${COLOR_G}"></i>G (generator)</span>` +
    `<span class="muted">faint: every step; solid: moving average` +
    (window > 1 ? ` of ${window} steps` : '') +
    `</span></div>`;
  const speed = series((point) => point.imagesPerSecond);
  const speedChart = lineChart({
    id: 'speed-chart',
    label: 'Images per second against training step',
    yLabel: 'images/s',
    lines: [{ points: speed, color: COLOR_SPEED, raw: false }],
    // From zero, so a small wobble in speed does not look like a collapse.
    yRange: [0, extent(speed.map((point) => point.y))[1]],
    markers: [],
    height: 220,
  });
  const clipped = lossChart.clipped
    ? '<p class="muted">Single steps far outside the usual range are cut off at the edge.</p>'
    : '';

  return (
    section('Losses', 'losses', `${legend}\n${lossChart.svg}\n${clipped}`) +
    '\n' +
    section(
      'Speed',
      'speed',
      `<p class="muted">Images per second, averaged since the training process started.</p>\n` +
        speedChart.svg,
    )
  );
}

interface ChartLine {
  points: Point[];
  color: string;
  /** Every step, drawn faint behind the smoothed line. */
  raw: boolean;
}

interface ChartOptions {
  id: string;
  /** Read out by screen readers in place of the drawing. */
  label: string;
  yLabel: string;
  lines: ChartLine[];
  /** The y range to show; null fits every point. */
  yRange: [number, number] | null;
  markers: Array<{ x: number; label: string }>;
  height?: number;
}

const CHART_WIDTH = 960;
const MARGIN = { left: 64, right: 28, top: 16, bottom: 48 };

/** An SVG line chart with ticked axes; `clipped` says whether some points fell outside it. */
function lineChart(options: ChartOptions): { svg: string; clipped: boolean } {
  const height = options.height ?? 340;
  const plotWidth = CHART_WIDTH - MARGIN.left - MARGIN.right;
  const plotHeight = height - MARGIN.top - MARGIN.bottom;
  const all = options.lines.flatMap((line) => line.points);

  const [xLow, xHigh] = extent(all.map((p) => p.x));
  const xs = niceAxis(
    xLow,
    xHigh,
    8,
    // Steps are whole numbers; a tick at step 2.5 would mean nothing.
    1,
    false,
  );
  const [yLow, yHigh] = options.yRange ?? extent(all.map((p) => p.y));
  const ys = niceAxis(yLow, yHigh, 5, 0, true);
  const toX = (x: number): number => MARGIN.left + ((x - xs.low) / (xs.high - xs.low)) * plotWidth;
  const toY = (y: number): number =>
    MARGIN.top + (1 - (y - ys.low) / (ys.high - ys.low)) * plotHeight;
  const clipped = all.some((p) => p.y < ys.low || p.y > ys.high);
  const clipId = `${options.id}-plot`;

  const parts: string[] = [];
  parts.push(
    `<clipPath id="${clipId}"><rect x="${MARGIN.left}" y="${MARGIN.top}" ` +
      `width="${plotWidth}" height="${plotHeight}"/></clipPath>`,
  );
  for (const tick of ys.ticks) {
    const y = round(toY(tick));
    parts.push(
      `<line class="grid" x1="${MARGIN.left}" x2="${MARGIN.left + plotWidth}" ` +
        `y1="${y}" y2="${y}"/>`,
      `<text class="tick" x="${MARGIN.left - 8}" y="${y}" text-anchor="end" ` +
        `dominant-baseline="middle">${escapeHtml(formatTick(tick, ys.step))}</text>`,
    );
  }
  for (const tick of xs.ticks) {
    const x = round(toX(tick));
    const bottom = MARGIN.top + plotHeight;
    parts.push(
      `<line class="axis" x1="${x}" x2="${x}" y1="${bottom}" y2="${bottom + 5}"/>`,
      `<text class="tick" x="${x}" y="${bottom + 18}" text-anchor="middle">` +
        `${escapeHtml(formatInteger(tick))}</text>`,
    );
  }
  for (const marker of options.markers) {
    const x = round(toX(marker.x));
    parts.push(
      `<line class="marker" x1="${x}" x2="${x}" y1="${MARGIN.top}" ` +
        `y2="${MARGIN.top + plotHeight}"/>`,
      `<text class="marker-label" x="${x + 4}" y="${MARGIN.top + 12}">` +
        `${escapeHtml(marker.label)}</text>`,
    );
  }

  const drawn: string[] = [];
  for (const line of options.lines) {
    const kept = downsample(line.points, MAX_POINTS_PER_LINE);
    const className = line.raw ? 'raw' : 'smooth';
    if (kept.length === 1) {
      // A path of one point draws nothing; a dot shows the lone step.
      drawn.push(
        `<circle class="${className}" cx="${round(toX(kept[0].x))}" ` +
          `cy="${round(toY(kept[0].y))}" r="3.5" fill="${line.color}"/>`,
      );
      continue;
    }
    const path = kept.map((p) => `${round(toX(p.x))},${round(toY(p.y))}`).join('L');
    drawn.push(`<path class="${className}" stroke="${line.color}" d="M${path}"/>`);
  }
  parts.push(`<g clip-path="url(#${clipId})">${drawn.join('\n')}</g>`);

  const bottom = MARGIN.top + plotHeight;
  parts.push(
    `<line class="axis" x1="${MARGIN.left}" x2="${MARGIN.left + plotWidth}" ` +
      `y1="${bottom}" y2="${bottom}"/>`,
    `<line class="axis" x1="${MARGIN.left}" x2="${MARGIN.left}" y1="${MARGIN.top}" ` +
      `y2="${bottom}"/>`,
    `<text class="axis-label" x="${MARGIN.left + plotWidth / 2}" y="${height - 8}" ` +
      `text-anchor="middle">step</text>`,
    `<text class="axis-label" transform="translate(16 ${MARGIN.top + plotHeight / 2}) ` +
      `rotate(-90)" text-anchor="middle">${escapeHtml(options.yLabel)}</text>`,
  );

  const svg =
    `<svg id="${options.id}" class="chart" viewBox="0 0 ${CHART_WIDTH} ${height}" ` +
    `role="img" aria-label="${escapeHtml(options.label)}" xmlns="http://www.w3.org/2000/svg">\n` +
    `${parts.join('\n')}\n</svg>`;
  return { svg, clipped };
}

/**
 * From the 0.5th to the 99.5th percentile of `raw`, widened to hold all of `smooth`: a few
 * wild steps are cut off instead of squeezing the rest into a thin band.
 */
function robustRange(raw: readonly number[], smooth: readonly number[]): [number, number] {
  const sorted = raw.slice().sort((a, b) => a - b);
  const at = (fraction: number): number =>
    sorted[Math.min(sorted.length - 1, Math.floor(fraction * sorted.length))];
  const [smoothLow, smoothHigh] = extent(smooth);
  return [Math.min(at(0.005), smoothLow), Math.max(at(0.995), smoothHigh)];
}

/** Lowest and highest value; a loop, since spreading a long run's steps overflows the stack. */
function extent(values: readonly number[]): [number, number] {
  let low = Infinity;
  let high = -Infinity;
  for (const value of values) {
    if (value < low) low = value;
    if (value > high) high = value;
  }
  return [low, high];
}

/**
 * Round tick values about `targetTicks` apart. With `widen` the range grows to the ticks just
 * outside it; without, it stays as given, as the step axis does so the newest step meets the edge.
 */
function niceAxis(
  low: number,
  high: number,
  targetTicks: number,
  minStep: number,
  widen: boolean,
): { low: number; high: number; step: number; ticks: number[] } {
  if (low === high) {
    const pad = Math.max(Math.abs(low) * 0.1, minStep, 1e-6);
    low -= pad;
    high += pad;
  }
  const step = Math.max(niceStep((high - low) / targetTicks), minStep);
  // Ticks as integer multiples of the step, so 0.1 + 0.2 never prints as 0.30000000000000004.
  const first = widen ? Math.floor(low / step) : Math.ceil(low / step);
  const last = widen ? Math.ceil(high / step) : Math.floor(high / step);
  const ticks: number[] = [];
  for (let multiple = first; multiple <= last; multiple += 1) ticks.push(multiple * step);
  return widen ? { low: first * step, high: last * step, step, ticks } : { low, high, step, ticks };
}

function niceStep(rough: number): number {
  const magnitude = 10 ** Math.floor(Math.log10(rough));
  const fraction = rough / magnitude;
  const nice = fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10;
  return nice * magnitude;
}

function formatTick(value: number, step: number): string {
  const decimals = Math.max(0, Math.ceil(-Math.log10(step) - 1e-9));
  return value.toFixed(decimals);
}

function renderSamples(input: RunReportInput): string {
  const { samples } = input;
  if (samples.length === 0) {
    const body = input.hasLatestSample
      ? figure('samples/latest.png', 'latest grid', 'latest')
      : '<p class="note">No sample grids yet: the samples folder has no step-NNNNNN.png.</p>';
    return section('Samples', 'samples', body);
  }

  const newest = samples[samples.length - 1];
  const shown = pickEvenly(samples, MAX_SAMPLE_GRIDS);
  const older = shown.filter((grid) => grid !== newest).reverse();
  const count =
    shown.length === samples.length
      ? `${formatInteger(samples.length)} ${samples.length === 1 ? 'grid' : 'grids'}`
      : `${shown.length} of ${formatInteger(samples.length)} grids, evenly spaced`;
  const gallery =
    older.length === 0
      ? ''
      : `<h3>Earlier grids</h3>\n<div class="gallery">\n` +
        older
          .map((grid) => figure(grid.path, `step ${formatInteger(grid.step)}`, 'thumb'))
          .join('\n') +
        `\n</div>`;
  return section(
    'Samples',
    'samples',
    `<p class="muted">The same fixed noise through the generator; ${escapeHtml(count)}, ` +
      `newest first.</p>\n` +
      figure(newest.path, `step ${formatInteger(newest.step)} (newest)`, 'latest') +
      `\n${gallery}`,
  );
}

function figure(path: string, caption: string, className: string): string {
  const source = escapeHtml(path);
  return (
    `<figure class="${className}"><a href="${source}"><img src="${source}" ` +
    `alt="${escapeHtml(`Sample grid, ${caption}`)}"></a>` +
    `<figcaption>${escapeHtml(caption)}</figcaption></figure>`
  );
}

function renderTableSection(
  heading: string,
  id: string,
  fileName: string,
  file: FileRead<JsonObject>,
  /** A file that is written later, if at all, so its absence is no warning. */
  optional = false,
): string {
  if (file.status === 'missing') {
    const text = escapeHtml(`No ${fileName} in the run folder${optional ? ' yet' : ''}.`);
    return section(heading, id, `<p class="${optional ? 'muted' : 'note'}">${text}</p>`);
  }
  if (file.status === 'invalid') {
    return section(heading, id, `<p class="note">${escapeHtml(`${fileName} ${file.reason}.`)}</p>`);
  }
  const rows = flattenObject(file.value)
    .map(
      ([key, value]) =>
        `<tr><th scope="row">${escapeHtml(key)}</th>` +
        `<td>${escapeHtml(formatValue(value))}</td></tr>`,
    )
    .join('\n');
  return section(
    heading,
    id,
    `<table class="kv">\n<tbody>\n${rows}\n</tbody>\n</table>\n` +
      `<p class="muted">From ${escapeHtml(fileName)}.</p>`,
  );
}

/**
 * The numbers `shadergan eval` wrote, readable: FID and floor to two decimals, shares as
 * percentages, and a warning when the run has trained on since. Other eval.json files fall
 * back to the plain table.
 */
function renderEvaluation(file: FileRead<JsonObject>, runStep: number | undefined): string {
  if (file.status !== 'ok') {
    return renderTableSection('Evaluation', 'evaluation', 'eval.json', file, true);
  }
  const result = file.value;
  const number = (key: string): number | null =>
    typeof result[key] === 'number' ? (result[key] as number) : null;
  const fid = number('fid');
  const floor = number('floor');
  const step = number('step');
  const count = number('count');
  if (fid === null || floor === null || step === null || count === null) {
    return renderTableSection('Evaluation', 'evaluation', 'eval.json', file, true);
  }
  const percent = (share: number): string => `${(share * 100).toFixed(1)}%`;
  const rows: Array<[string, string]> = [
    ['domain FID', `${fid.toFixed(2)} (${formatInteger(count)} generated vs test images)`],
    ['floor', `${floor.toFixed(2)} (${formatInteger(count)} training vs test images)`],
  ];
  const classAccuracy = number('classAccuracy');
  if (classAccuracy !== null) rows.push(['class accuracy', percent(classAccuracy)]);
  const perClass = result.perClassAccuracy;
  if (Array.isArray(perClass) && perClass.every((share) => typeof share === 'number')) {
    rows.push([
      'per class',
      perClass.map((share, label) => `${label}: ${percent(share)}`).join(', '),
    ]);
  }
  const classifierAccuracy = number('classifierTestAccuracy');
  rows.push([
    'classifier',
    `${formatValue(result.classifier)}` +
      (classifierAccuracy === null ? '' : ` (test accuracy ${percent(classifierAccuracy)})`),
  ]);
  rows.push(['evaluated at step', formatInteger(step)]);
  const seconds = number('seconds');
  if (seconds !== null) rows.push(['took', formatDuration(seconds)]);
  const body = rows
    .map(
      ([key, value]) =>
        `<tr><th scope="row">${escapeHtml(key)}</th><td>${escapeHtml(value)}</td></tr>`,
    )
    .join('\n');
  const stale =
    runStep !== undefined && runStep !== step
      ? `<p class="note">${escapeHtml(
          `These numbers are for step ${formatInteger(step)}; the run is now at step ` +
            `${formatInteger(runStep)}. Run shadergan eval again for the current checkpoint.`,
        )}</p>\n`
      : '';
  return section(
    'Evaluation',
    'evaluation',
    `${stale}<table class="kv">\n<tbody>\n${body}\n</tbody>\n</table>\n` +
      '<p class="muted">From eval.json. FIDs compare only when measured with the same ' +
      'classifier file and count.</p>',
  );
}

function section(heading: string, id: string, body: string): string {
  return `<section id="${id}">\n<h2>${escapeHtml(heading)}</h2>\n${body}\n</section>`;
}

function lookup(object: JsonObject, keys: readonly string[]): unknown {
  let value: unknown = object;
  for (const key of keys) {
    if (typeof value !== 'object' || value === null) return undefined;
    value = (value as JsonObject)[key];
  }
  return value;
}

function formatValue(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value === undefined) return '';
  return JSON.stringify(value);
}

function formatInteger(value: number): string {
  return value.toLocaleString('en-US', { maximumFractionDigits: 0 });
}

function formatLoss(value: number): string {
  return value.toFixed(4);
}

function formatDuration(seconds: number): string {
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const whole = Math.round(seconds);
  const hours = Math.floor(whole / 3600);
  const minutes = Math.floor((whole % 3600) / 60);
  const rest = whole % 60;
  if (hours === 0) return `${minutes} min ${String(rest).padStart(2, '0')} s`;
  return `${hours} h ${String(minutes).padStart(2, '0')} min`;
}

function round(value: number): number {
  return Math.round(value * 10) / 10;
}

// Every section is always present, if only to say what is missing, so the links always land.
const NAVIGATION = [
  ['summary', 'Summary'],
  ['losses', 'Losses'],
  ['speed', 'Speed'],
  ['samples', 'Samples'],
  ['evaluation', 'Evaluation'],
  ['config', 'Config'],
]
  .map(([id, heading]) => `<a href="#${id}">${heading}</a>`)
  .join('\n');

const COLOR_D = '#d9480f';
const COLOR_G = '#1c6dd0';
const COLOR_SPEED = '#2b8a3e';

const STYLE = `
:root { color-scheme: light; --text: #1f2328; --muted: #656d76; --line: #d8dee4;
  --panel: #f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 1040px; padding: 24px 28px 48px; color: var(--text);
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
  sans-serif; background: #fff; }
h1 { font-size: 26px; margin: 0 0 4px; overflow-wrap: anywhere; }
h2 { font-size: 19px; margin: 36px 0 12px; padding-bottom: 6px;
  border-bottom: 1px solid var(--line); }
h3 { font-size: 15px; margin: 24px 0 8px; color: var(--muted); font-weight: 600; }
code, table.kv th, table.kv td { font-size: 13px;
  font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
code { overflow-wrap: anywhere; }
nav { display: flex; flex-wrap: wrap; gap: 4px 18px; margin-top: 10px; font-size: 14px; }
nav a { color: #0b5cad; text-decoration: none; }
nav a:hover { text-decoration: underline; }
.muted { color: var(--muted); font-size: 13px; margin: 6px 0; }
.note { background: #fff8e6; border: 1px solid #f0d58c; border-radius: 6px; padding: 10px 14px; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(170px, 1fr)); gap: 12px; }
.card { background: var(--panel); border: 1px solid var(--line); border-radius: 8px;
  padding: 12px 14px; }
.card .label { color: var(--muted); font-size: 12px; text-transform: uppercase;
  letter-spacing: 0.04em; }
.card .value { font-size: 22px; font-weight: 600; font-variant-numeric: tabular-nums;
  margin: 2px 0; }
.card .detail { color: var(--muted); font-size: 13px; }
.legend { display: flex; flex-wrap: wrap; gap: 18px; align-items: center; font-size: 14px;
  margin-bottom: 6px; }
.legend i { display: inline-block; width: 18px; height: 3px; margin-right: 6px;
  vertical-align: middle; border-radius: 2px; }
.legend .muted { margin: 0; }
svg.chart { width: 100%; height: auto; display: block; }
svg.chart path { fill: none; stroke-linejoin: round; stroke-linecap: round; }
svg.chart path.raw { stroke-width: 1; stroke-opacity: 0.22; }
svg.chart path.smooth { stroke-width: 2.2; }
svg.chart .grid { stroke: #eaeef2; }
svg.chart .axis { stroke: #8c959f; }
svg.chart .marker { stroke: #afb8c1; stroke-dasharray: 4 4; }
svg.chart text { fill: var(--muted); font-size: 13px; font-family: inherit; }
svg.chart .marker-label { font-size: 12px; }
svg.chart .axis-label { fill: var(--text); font-size: 14px; }
figure { margin: 0; }
figure img { display: block; width: 100%; height: auto; image-rendering: pixelated;
  border-radius: 4px; background: #282828; }
figcaption { color: var(--muted); font-size: 13px; margin-top: 4px; text-align: center; }
figure.latest { max-width: 520px; }
figure.latest figcaption { font-size: 14px; color: var(--text); }
.gallery { display: grid; grid-template-columns: repeat(auto-fill, minmax(150px, 1fr));
  gap: 14px; }
table.kv { border-collapse: collapse; width: 100%; max-width: 760px;
  font-variant-numeric: tabular-nums; }
table.kv th, table.kv td { text-align: left; padding: 5px 10px; vertical-align: top;
  border-bottom: 1px solid var(--line); }
table.kv th { font-weight: 400; color: var(--muted); width: 1%; white-space: nowrap;
  padding-right: 32px; }
table.kv td { overflow-wrap: anywhere; }
table.kv tr:nth-child(even) { background: var(--panel); }
`;
