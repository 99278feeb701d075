// report.html: the pure page builder on hand-made inputs, then a whole run folder written to
// disk and its report loaded in headless Chromium to check what a person would see.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { writeImageGrid } from '../src/train/image-grid.ts';
import {
  downsample,
  escapeHtml,
  flattenObject,
  MAX_POINTS_PER_LINE,
  movingAverage,
  parseMetrics,
  pickEvenly,
  readRunFolder,
  renderRunReport,
  REPORT_FILE,
  totalSeconds,
  writeRunReport,
  type MetricPoint,
  type RunReportInput,
} from '../src/train/report.ts';

const CHROMIUM = '/usr/bin/chromium';
const STEPS_PER_EPOCH = 937;

const CONFIG = {
  model: { architecture: 'dcgan', imageSize: 28, channels: 1, width: 32, noiseSize: 100 },
  optimizer: { lr: 0.0002, beta1: 0.5, beta2: 0.999 },
  batchSize: 64,
  seed: 1,
  run: {
    dataDir: '/usr/share/datasets/fashion-mnist',
    steps: 4685,
    epochs: 5,
    sampleEvery: 100,
    checkpointEvery: 500,
  },
};

/** Losses that wander like a GAN's, with a rare spike, from a fixed formula. */
function fakeMetrics(count: number, firstStep = 1): MetricPoint[] {
  const points: MetricPoint[] = [];
  for (let index = 0; index < count; index += 1) {
    const step = firstStep + index;
    const wobble = Math.sin(step * 0.37) * 0.15 + Math.sin(step * 0.011) * 0.1;
    points.push({
      step,
      epoch: Math.floor((step - 1) / STEPS_PER_EPOCH) + 1,
      lossD: 1.2 - 0.4 * (1 - Math.exp(-step / 400)) + wobble + (step % 997 === 0 ? 3 : 0),
      lossG: 0.9 + 1.1 * (1 - Math.exp(-step / 300)) - wobble,
      imagesPerSecond: 150 - 40 * Math.exp(-step / 50),
      seconds: Math.round(((step * 64) / 150) * 10) / 10,
    });
  }
  return points;
}

function inputWith(overrides: Partial<RunReportInput>): RunReportInput {
  return {
    runDir: 'runs/20261204-170000',
    builtAt: '2026-12-04T17:30:00.000Z',
    config: { status: 'ok', value: CONFIG },
    metrics: { status: 'ok', value: { points: fakeMetrics(300), skippedLines: 0 } },
    samples: [
      { step: 0, path: 'samples/step-000000.png' },
      { step: 100, path: 'samples/step-000100.png' },
    ],
    hasLatestSample: true,
    evaluation: { status: 'missing' },
    ...overrides,
  };
}

/** The number of points in each `d="M...L..."` path of the SVG with this id. */
function pathPointCounts(html: string, svgId: string): number[] {
  const svg = new RegExp(`<svg id="${svgId}"[\\s\\S]*?</svg>`).exec(html)?.[0] ?? '';
  return [...svg.matchAll(/ d="M([^"]*)"/g)].map((match) => match[1].split('L').length);
}

describe('renderRunReport', () => {
  it('escapes every piece of text it puts into the page', () => {
    const hostile = '<script>alert("x")</script> & \'quoted\'';
    const html = renderRunReport(
      inputWith({
        runDir: `runs/${hostile}`,
        config: { status: 'ok', value: { note: hostile, [hostile]: 1 } },
        evaluation: { status: 'ok', value: { fid: 31.5, label: hostile } },
      }),
    );
    expect(html).not.toContain('<script');
    expect(html).not.toContain(hostile);
    expect(html).toContain(escapeHtml(hostile));
    expect(escapeHtml(`<a href="x">'&'</a>`)).toBe(
      '&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;',
    );
  });

  it('draws at most MAX_POINTS_PER_LINE points per line for 20,000 steps', () => {
    const points = fakeMetrics(20_000);
    const html = renderRunReport(
      inputWith({ metrics: { status: 'ok', value: { points, skippedLines: 0 } } }),
    );
    const counts = pathPointCounts(html, 'loss-chart');
    expect(counts).toHaveLength(4); // raw and smoothed, for D and for G
    for (const count of counts) {
      expect(count).toBeGreaterThan(MAX_POINTS_PER_LINE / 2);
      expect(count).toBeLessThanOrEqual(MAX_POINTS_PER_LINE);
    }
    expect(pathPointCounts(html, 'speed-chart')[0]).toBeLessThanOrEqual(MAX_POINTS_PER_LINE);
  });

  it('says there are no metrics yet instead of drawing empty charts', () => {
    for (const metrics of [
      { status: 'missing' as const },
      { status: 'ok' as const, value: { points: [], skippedLines: 1 } },
    ]) {
      const html = renderRunReport(inputWith({ metrics }));
      expect(html).toContain('No metrics yet');
      expect(html).not.toContain('<svg');
    }
    const cut = renderRunReport(
      inputWith({ metrics: { status: 'ok', value: { points: [], skippedLines: 1 } } }),
    );
    expect(cut).toContain('1 line of metrics.jsonl could not be read and was skipped.');
  });

  it('draws a single step as dots, with finite coordinates', () => {
    const html = renderRunReport(
      inputWith({ metrics: { status: 'ok', value: { points: fakeMetrics(1), skippedLines: 0 } } }),
    );
    expect(html).toContain('<circle');
    expect(html).not.toMatch(/NaN|Infinity/);
    expect(html).toContain('at step 1<');
  });

  it('flattens nested config objects into dotted rows', () => {
    const rows = new Map(flattenObject({ ...CONFIG, extra: { list: [1, 2], empty: {} } }));
    expect(rows.get('model.width')).toBe(32);
    expect(rows.get('optimizer.beta1')).toBe(0.5);
    expect(rows.get('run.dataDir')).toBe('/usr/share/datasets/fashion-mnist');
    expect(rows.get('batchSize')).toBe(64);
    expect(rows.get('extra.list')).toEqual([1, 2]);
    expect(rows.get('extra.empty')).toEqual({});
    expect(rows.has('model')).toBe(false);

    const html = renderRunReport(inputWith({}));
    expect(html).toContain('<tr><th scope="row">model.width</th><td>32</td></tr>');
  });

  it('shows eval.json as a table when present, and says when a file is damaged', () => {
    const html = renderRunReport(
      inputWith({
        config: { status: 'invalid', reason: 'is not valid JSON' },
        evaluation: { status: 'ok', value: { fid: 31.5, samples: 10000, at: { step: 4685 } } },
      }),
    );
    expect(html).toContain('config.json is not valid JSON.');
    expect(html).toContain('<tr><th scope="row">fid</th><td>31.5</td></tr>');
    expect(html).toContain('<tr><th scope="row">at.step</th><td>4685</td></tr>');
  });

  it("shows shadergan eval's numbers readably, and warns when they are for an older step", () => {
    const evaluation = {
      fid: 12.3456,
      floor: 0.789,
      step: 250,
      count: 10000,
      classAccuracy: 0.875,
      perClassAccuracy: [0.5, 1],
      classifier: 'runs/classifier.safetensors',
      classifierTestAccuracy: 0.9172,
      seconds: 83.2,
    };
    const html = renderRunReport(inputWith({ evaluation: { status: 'ok', value: evaluation } }));
    expect(html).toContain(
      '<tr><th scope="row">domain FID</th><td>12.35 (10,000 generated vs test images)</td></tr>',
    );
    expect(html).toContain('<td>0.79 (10,000 training vs test images)</td>');
    expect(html).toContain('<tr><th scope="row">class accuracy</th><td>87.5%</td></tr>');
    expect(html).toContain('<td>0: 50.0%, 1: 100.0%</td>');
    expect(html).toContain('runs/classifier.safetensors (test accuracy 91.7%)');
    // The fake metrics end at step 300.
    expect(html).toContain('These numbers are for step 250; the run is now at step 300.');
    const current = { ...evaluation, step: 300 };
    expect(
      renderRunReport(inputWith({ evaluation: { status: 'ok', value: current } })),
    ).not.toContain('These numbers are for step');
  });

  it('shows the newest grid large and the rest newest first', () => {
    const html = renderRunReport(inputWith({}));
    const latest = html.indexOf('<figure class="latest"><a href="samples/step-000100.png">');
    const first = html.indexOf('<figure class="thumb"><a href="samples/step-000000.png">');
    expect(latest).toBeGreaterThan(0);
    expect(first).toBeGreaterThan(latest);
    expect(html).toContain('<figcaption>step 100 (newest)</figcaption>');
  });
});

describe('report helpers', () => {
  it('downsample keeps the ends, the spikes and the order', () => {
    const points = Array.from({ length: 10_000 }, (_, x) => ({ x, y: Math.sin(x / 50) }));
    points[4321].y = 50;
    points[7654].y = -50;
    const kept = downsample(points, 2000);
    expect(kept.length).toBeLessThanOrEqual(2000);
    expect(kept.length).toBeGreaterThan(1900);
    expect(kept[0]).toEqual(points[0]);
    expect(kept.at(-1)).toEqual(points.at(-1));
    expect(kept).toContainEqual({ x: 4321, y: 50 });
    expect(kept).toContainEqual({ x: 7654, y: -50 });
    for (let index = 1; index < kept.length; index += 1) {
      expect(kept[index].x).toBeGreaterThan(kept[index - 1].x);
    }
    expect(downsample(points.slice(0, 5), 2000)).toEqual(points.slice(0, 5));
  });

  it('pickEvenly keeps at most max items, first and last among them', () => {
    const steps = Array.from({ length: 137 }, (_, index) => index * 100);
    const picked = pickEvenly(steps, 40);
    expect(picked).toHaveLength(40);
    expect(picked[0]).toBe(0);
    expect(picked.at(-1)).toBe(13_600);
    expect(new Set(picked).size).toBe(picked.length);
    expect(pickEvenly(steps.slice(0, 3), 40)).toEqual([0, 100, 200]);
  });

  it('movingAverage averages what there is at the start', () => {
    expect(movingAverage([2, 4, 6, 8], 2)).toEqual([2, 3, 5, 7]);
    expect(movingAverage([1, 2, 3], 5)).toEqual([1, 1.5, 2]);
  });

  it('parseMetrics skips a line cut short and keeps the rest in step order', () => {
    const [first, second] = fakeMetrics(2);
    const text = `${JSON.stringify(second)}\n${JSON.stringify(first)}\n{"step":3,"epo`;
    const { points, skippedLines } = parseMetrics(text);
    expect(points.map((point) => point.step)).toEqual([1, 2]);
    expect(skippedLines).toBe(1);
  });

  it('totalSeconds adds up the sessions of a resumed run', () => {
    const seconds = [10, 20, 30, 5, 15].map((value, index) => ({
      ...fakeMetrics(1)[0],
      step: index + 1,
      seconds: value,
    }));
    expect(totalSeconds(seconds)).toBe(45);
  });

  it('writeRunReport on an empty folder writes a page that says what is missing', () => {
    const folder = mkdtempSync(join(tmpdir(), 'shadergan-report-empty-'));
    try {
      writeRunReport(folder);
      const html = readFileSync(join(folder, REPORT_FILE), 'utf8');
      expect(html).toContain('metrics.jsonl is missing');
      expect(html).toContain('No config.json in the run folder.');
      expect(html).toContain('No sample grids yet');
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  });
});

describe('report.html in Chromium', () => {
  let work: string;
  let runDir: string;
  let browser: Browser | undefined;
  let page: Page;
  const problems: string[] = [];
  const sampleSteps = [0, 500, 1000, 1500, 2000, 2500, 2999];

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(`no Chromium at ${CHROMIUM}; install it with 'bash scripts/setup-system.sh'`);
    }
    work = mkdtempSync(join(tmpdir(), 'shadergan-report-'));
    runDir = join(work, 'run');
    mkdirSync(join(runDir, 'samples'), { recursive: true });
    writeFileSync(join(runDir, 'config.json'), `${JSON.stringify(CONFIG, null, 2)}\n`);
    const lines = fakeMetrics(3000).map((point) => JSON.stringify(point));
    // The line a crash cut short, as the training loop can leave it.
    writeFileSync(join(runDir, 'metrics.jsonl'), `${lines.join('\n')}\n{"step":3001,"ep`);
    const gridOptions = {
      count: 16,
      channels: 1 as const,
      height: 28,
      width: 28,
      range: [-1, 1] as [number, number],
    };
    for (const step of sampleSteps) {
      const images = Float32Array.from(
        { length: 16 * 28 * 28 },
        (_, index) => Math.sin(index * 0.05 + step * 0.001) * Math.cos(index * 0.013),
      );
      writeImageGrid(
        join(runDir, 'samples', `step-${String(step).padStart(6, '0')}.png`),
        images,
        gridOptions,
      );
      writeImageGrid(join(runDir, 'samples', 'latest.png'), images, gridOptions);
    }
    writeRunReport(runDir);

    browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: true,
      // DevTools over a pipe: the browser opens no port.
      pipe: true,
      args: [
        '--no-sandbox', // the tests run as root
        // Nothing resolves, so a page that reached for the network would fail loudly.
        '--host-resolver-rules=MAP * ~NOTFOUND',
      ],
      userDataDir: join(work, 'profile'),
    });
    page = await browser.newPage();
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(`console: ${message.text()}`);
    });
    page.on('pageerror', (error) => problems.push(`page error: ${String(error)}`));
    page.on('requestfailed', (request) => problems.push(`failed: ${request.url()}`));
    await page.setRequestInterception(true);
    page.on('request', (request) => {
      if (request.url().startsWith('file:')) {
        void request.continue();
      } else {
        problems.push(`not a local file: ${request.url()}`);
        void request.abort();
      }
    });
    await page.setViewport({ width: 1100, height: 900 });
    await page.goto(pathToFileURL(join(runDir, REPORT_FILE)).href, { waitUntil: 'load' });
  });

  afterAll(async () => {
    await browser?.close();
    if (work !== undefined) rmSync(work, { recursive: true, force: true });
  });

  it('loads without console errors, page errors or requests beyond the run folder', () => {
    expect(problems).toEqual([]);
  });

  it('shows every sample grid, each image decoded', async () => {
    const images = await page.$$eval('img', (elements) =>
      elements.map((image) => ({
        source: image.getAttribute('src'),
        complete: image.complete,
        naturalWidth: image.naturalWidth,
      })),
    );
    expect(images.map((image) => image.source)).toEqual(
      sampleSteps
        .slice()
        .reverse()
        .map((step) => `samples/step-${String(step).padStart(6, '0')}.png`),
    );
    for (const image of images) {
      expect(image.complete).toBe(true);
      expect(image.naturalWidth).toBe(4 * 28 + 5 * 2);
    }
  });

  it('draws the loss curves as SVG paths of many points', async () => {
    const counts = await page.$$eval('#loss-chart path', (paths) =>
      paths.map((path) => (path.getAttribute('d') ?? '').split('L').length),
    );
    expect(counts).toHaveLength(4);
    for (const count of counts) expect(count).toBeGreaterThan(1000);
    const box = await page.$eval('#loss-chart', (svg) => svg.getBoundingClientRect().width);
    expect(box).toBeGreaterThan(500);
  });

  it('shows the summary, the skipped line and the config table', async () => {
    const summary = await page.$eval('#summary', (element) => element.textContent ?? '');
    expect(summary).toContain('of 4,685 (64.0%), epoch 4');
    expect(summary).toContain('1 line of metrics.jsonl could not be read and was skipped.');

    const rows = await page.$$eval('#config tr', (elements) =>
      elements.map((row) => [
        row.querySelector('th')?.textContent ?? '',
        row.querySelector('td')?.textContent ?? '',
      ]),
    );
    expect(rows).toContainEqual(['model.width', '32']);
    expect(rows).toContainEqual(['run.sampleEvery', '100']);
    expect(await page.title()).toBe('run at step 3,000 - shadergan');
  });

  it('reads the same folder through readRunFolder as the page shows', () => {
    const input = readRunFolder(runDir);
    expect(input.samples.map((grid) => grid.step)).toEqual(sampleSteps);
    expect(input.metrics.status === 'ok' && input.metrics.value.skippedLines).toBe(1);
  });
});
