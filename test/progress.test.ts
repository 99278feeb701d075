import { describe, expect, it } from 'vitest';

import {
  formatDuration,
  formatSignificant,
  ProgressBar,
  type ProgressState,
  type ProgressStream,
} from '../src/train/progress.ts';

// Node's own streams must fit the option type; the CLI passes process.stderr.
const nodeStreamFits: ProgressStream = process.stderr;
void nodeStreamFits;

/** Collects everything written, and says whether it is a terminal. */
class FakeStream {
  readonly writes: string[] = [];
  constructor(readonly isTTY: boolean) {}
  write(text: string): boolean {
    this.writes.push(text);
    return true;
  }
}

/** A clock that only moves when the test says so. */
class FakeClock {
  timeMs = 1_000_000;
  readonly now = (): number => this.timeMs;
  advance(milliseconds: number): void {
    this.timeMs += milliseconds;
  }
}

function stateAt(step: number, values: Record<string, number> = {}): ProgressState {
  return { step, epoch: 2, imagesPerSecond: 1520.4, values };
}

function setup(isTTY: boolean, total = 100, intervalMs?: number) {
  const stream = new FakeStream(isTTY);
  const clock = new FakeClock();
  const bar = new ProgressBar({ total, stream, intervalMs, now: clock.now });
  return { stream, clock, bar };
}

describe('ProgressBar on a terminal', () => {
  it('redraws one line with bar, counts, rate, values and ETA', () => {
    const { stream, clock, bar } = setup(true);
    bar.update(stateAt(0));
    clock.advance(10_000);
    bar.update(stateAt(25, { lossD: 0.693147, lossG: 12.3456 }));

    expect(stream.writes).toHaveLength(2);
    const line = stream.writes[1];
    expect(line.startsWith('\r')).toBe(true);
    expect(line.endsWith('\x1b[K')).toBe(true);
    expect(line).toContain('█████░░░░░░░░░░░░░░░ 25/100');
    expect(line).toContain('25.0%');
    expect(line).toContain('epoch 2');
    expect(line).toContain('1520 img/s');
    expect(line).toContain('lossD 0.6931');
    expect(line).toContain('lossG 12.35');
    // 25 steps took 10 s, so the remaining 75 take 30 s.
    expect(line).toContain('ETA 30s');
    expect(line).not.toContain('\n');
  });

  it('draws at most once per 200 ms by default, but always the first and last update', () => {
    const { stream, clock, bar } = setup(true);
    bar.update(stateAt(0));
    for (let step = 1; step <= 99; step++) {
      clock.advance(50);
      bar.update(stateAt(step));
    }
    // 99 updates 50 ms apart span 4950 ms: one drawing every 4th update, 24 in all.
    expect(stream.writes).toHaveLength(1 + 24);

    clock.advance(1);
    bar.update(stateAt(100));
    expect(stream.writes.at(-1)).toContain('100/100');
    expect(stream.writes.at(-1)).toContain('ETA 0s');
  });

  it('on finish, draws a held-back update, ends the line and prints the message', () => {
    const { stream, clock, bar } = setup(true);
    bar.update(stateAt(0));
    clock.advance(10);
    bar.update(stateAt(7));
    expect(stream.writes).toHaveLength(1);

    bar.finish('saved runs/x/checkpoint.safetensors');
    expect(stream.writes).toHaveLength(4);
    expect(stream.writes[1]).toContain(' 7/100');
    expect(stream.writes.slice(2)).toEqual(['\n', 'saved runs/x/checkpoint.safetensors\n']);
  });

  it('estimates from the steps of this run when resuming part way', () => {
    const { stream, clock, bar } = setup(true, 1000);
    bar.update(stateAt(900));
    expect(stream.writes[0]).toContain('ETA ?');
    clock.advance(20_000);
    bar.update(stateAt(910));
    // 10 steps in 20 s, 90 steps left: 180 s.
    expect(stream.writes[1]).toContain('ETA 3m00s');
  });
});

describe('ProgressBar in a log', () => {
  it('prints whole lines at most every 5 s by default', () => {
    const { stream, clock, bar } = setup(false, 1000);
    for (let step = 0; step < 1000; step++) {
      bar.update(stateAt(step, { lossD: 1 / 3 }));
      clock.advance(100);
    }
    bar.update(stateAt(1000, { lossD: 1 / 3 }));
    bar.finish('done');

    // 100 s of updates: the first, one per 5 s after it, the last, and the message.
    expect(stream.writes).toHaveLength(1 + 19 + 1 + 1);
    expect(stream.writes.every((line) => line.endsWith('\n') && !line.includes('\r'))).toBe(true);
    expect(stream.writes[1]).toBe(
      'step 50/1000  (5.0%)  epoch 2  1520 img/s  lossD 0.3333  ETA 1m35s\n',
    );
    expect(stream.writes.at(-2)).toMatch(/^step 1000\/1000 {2}\(100\.0%\).*ETA 0s\n$/);
    expect(stream.writes.at(-1)).toBe('done\n');
  });

  it('honours a custom interval', () => {
    const { stream, clock, bar } = setup(false, 100, 1000);
    for (let step = 0; step < 10; step++) {
      bar.update(stateAt(step));
      clock.advance(500);
    }
    expect(stream.writes).toHaveLength(5);
  });

  it('finishes without a stray newline when everything was already printed', () => {
    const { stream, bar } = setup(false, 1);
    bar.update(stateAt(1));
    bar.finish();
    expect(stream.writes).toHaveLength(1);
  });
});

describe('formatDuration', () => {
  it.each([
    [0, '0s'],
    [12, '12s'],
    [59.4, '59s'],
    [59.6, '1m00s'],
    [185, '3m05s'],
    [3599, '59m59s'],
    [3600, '1h00m'],
    [3720, '1h02m'],
    [3749, '1h02m'],
    [90_000, '25h00m'],
    [-1, '?'],
    [Number.NaN, '?'],
    [Number.POSITIVE_INFINITY, '?'],
  ])('%d s is %s', (seconds, expected) => {
    expect(formatDuration(seconds)).toBe(expected);
  });
});

describe('formatSignificant', () => {
  it.each([
    [0.693147, '0.6931'],
    [12.3456, '12.35'],
    [1234.5, '1235'],
    [0, '0.000'],
    [123456, '1.235e+5'],
    [Number.NaN, 'NaN'],
  ])('%d is %s', (value, expected) => {
    expect(formatSignificant(value)).toBe(expected);
  });
});
