import { describe, expect, it } from 'vitest';

import {
  editDistance,
  formatHelp,
  parseFlags,
  type CommandSpec,
  type ParsedFlags,
} from '../src/cli/args.ts';
import { UsageError } from '../src/errors.ts';

const trainSpec = {
  name: 'train',
  summary: 'Train a DCGAN on Fashion-MNIST and write samples and checkpoints.',
  flags: {
    steps: { type: 'int', default: 1000, min: 1, help: 'number of training steps' },
    lr: { type: 'float', default: 0.0002, help: 'Adam learning rate' },
    data: { type: 'string', placeholder: 'DIR', help: 'folder with the IDX files' },
    device: { type: 'string', default: 'gpu', choices: ['gpu', 'cpu'], help: 'where to run' },
    'batch-size': { type: 'int', default: 64, min: 1, help: 'images per step' },
    samples: { type: 'bool', default: true, help: 'write a sample grid after each epoch' },
    resume: { type: 'bool', help: 'continue from the latest checkpoint in the run folder' },
    seed: { type: 'int', help: 'random seed' },
  },
  examples: ['shadergan train --steps 500', 'shadergan train --data ~/mnist --no-samples'],
} satisfies CommandSpec;

/** Parses and returns the flags, failing the test if help was requested instead. */
function flagsOf(argv: string[]): ParsedFlags<typeof trainSpec> {
  const outcome = parseFlags(trainSpec, argv);
  if (outcome.helpRequested) throw new Error('expected flags, got a help request');
  return outcome.flags;
}

function usageErrorOf(argv: string[]): string {
  try {
    parseFlags(trainSpec, argv);
  } catch (error) {
    expect(error).toBeInstanceOf(UsageError);
    return (error as UsageError).message;
  }
  throw new Error(`expected a UsageError for ${argv.join(' ')}`);
}

describe('parseFlags', () => {
  it('fills in defaults, false for bools without one, undefined otherwise', () => {
    expect(flagsOf([])).toEqual({
      steps: 1000,
      lr: 0.0002,
      data: undefined,
      device: 'gpu',
      'batch-size': 64,
      samples: true,
      resume: false,
      seed: undefined,
    });
  });

  it('gives callers typed values', () => {
    const flags = flagsOf(['--steps', '5']);
    const steps: number = flags.steps;
    const seed: number | undefined = flags.seed;
    const data: string | undefined = flags.data;
    const resume: boolean = flags.resume;
    expect([steps, seed, data, resume]).toEqual([5, undefined, undefined, false]);
  });

  it.each([
    { form: '--flag value', argv: ['--steps', '20', '--data', '/tmp/d', '--lr', '1e-3'] },
    { form: '--flag=value', argv: ['--steps=20', '--data=/tmp/d', '--lr=1e-3'] },
  ])('accepts $form', ({ argv }) => {
    expect(flagsOf(argv)).toMatchObject({ steps: 20, data: '/tmp/d', lr: 0.001 });
  });

  it('keeps everything after the first = as the value', () => {
    expect(flagsOf(['--data=/tmp/a=b']).data).toBe('/tmp/a=b');
  });

  it('accepts negative numbers as values', () => {
    expect(flagsOf(['--seed', '-3', '--lr', '-.5'])).toMatchObject({ seed: -3, lr: -0.5 });
  });

  it('sets bools with --flag, --no-flag and --flag=true|false', () => {
    expect(flagsOf(['--resume', '--no-samples'])).toMatchObject({ resume: true, samples: false });
    expect(flagsOf(['--samples=false', '--resume=true'])).toMatchObject({
      samples: false,
      resume: true,
    });
    expect(usageErrorOf(['--resume=maybe'])).toBe("--resume expects true or false, got 'maybe'");
    expect(usageErrorOf(['--no-samples=true'])).toMatch(/--no-samples takes no value/);
  });

  it('lets a later flag override an earlier one', () => {
    expect(flagsOf(['--steps', '1', '--steps', '2']).steps).toBe(2);
  });

  it.each([['--help'], ['-h'], ['--steps', 'abc', '--help'], ['--bogus', '-h']])(
    'returns a help request for %j',
    (...argv) => {
      expect(parseFlags(trainSpec, argv)).toEqual({ helpRequested: true });
    },
  );

  it('rejects unknown flags and points at --help', () => {
    expect(usageErrorOf(['--foo'])).toBe(
      "unknown flag --foo for 'shadergan train' (see 'shadergan train --help')",
    );
  });

  it.each([
    { typed: '--stesp', suggestion: '--steps' },
    { typed: '--batchsize', suggestion: '--batch-size' },
    { typed: '--sample', suggestion: '--samples' },
    { typed: '-steps', suggestion: '--steps' },
  ])('suggests $suggestion for $typed', ({ typed, suggestion }) => {
    expect(usageErrorOf([typed, '1'])).toBe(
      `unknown flag ${typed} for 'shadergan train'; ` +
        `did you mean ${suggestion}? (see 'shadergan train --help')`,
    );
  });

  it('does not suggest a flag more than two edits away', () => {
    expect(usageErrorOf(['--epochs'])).not.toMatch(/did you mean/);
  });

  it('does not treat --no- as negation for flags that are not bools', () => {
    expect(usageErrorOf(['--no-steps'])).toMatch(/^unknown flag --no-steps/);
  });

  it('rejects a missing value', () => {
    expect(usageErrorOf(['--steps'])).toBe('--steps expects a value (--steps N)');
    expect(usageErrorOf(['--data', '--resume'])).toBe('--data expects a value (--data DIR)');
  });

  it('rejects non-integers for int flags', () => {
    expect(usageErrorOf(['--steps', 'abc'])).toBe("--steps expects an integer, got 'abc'");
    expect(usageErrorOf(['--steps', '2.5'])).toBe("--steps expects an integer, got '2.5'");
    expect(usageErrorOf(['--steps='])).toBe("--steps expects an integer, got ''");
  });

  it('rejects non-numbers for float flags', () => {
    expect(usageErrorOf(['--lr', '0x10'])).toBe("--lr expects a number, got '0x10'");
    expect(usageErrorOf(['--lr=fast'])).toBe("--lr expects a number, got 'fast'");
  });

  it('rejects values below the minimum', () => {
    expect(usageErrorOf(['--batch-size', '0'])).toBe('--batch-size must be at least 1, got 0');
  });

  it('rejects values outside the choices', () => {
    expect(usageErrorOf(['--device', 'tpu'])).toBe("--device must be one of gpu, cpu; got 'tpu'");
  });

  it('rejects positional arguments', () => {
    expect(usageErrorOf(['--steps', '5', 'extra'])).toBe(
      "unexpected argument 'extra' for " +
        "'shadergan train': it takes only --flags (see 'shadergan train --help')",
    );
    expect(usageErrorOf(['--'])).toMatch(/unexpected argument '--'/);
  });
});

describe('formatHelp', () => {
  const help = formatHelp(trainSpec);

  it('shows the usage line, summary, flags and examples in that order', () => {
    const headings = ['Usage: shadergan train [flags]', trainSpec.summary, 'Flags:', 'Examples:'];
    const positions = headings.map((heading) => help.indexOf(heading));
    expect(positions.every((position) => position >= 0)).toBe(true);
    expect([...positions].sort((a, b) => a - b)).toEqual(positions);
    expect(help).toContain('  shadergan train --data ~/mnist --no-samples');
  });

  it('aligns the descriptions in one column', () => {
    const lines = help.split('\n');
    const descriptions = [...Object.values(trainSpec.flags).map((flag) => flag.help), 'show this'];
    const columns = descriptions.map((description) => {
      const line = lines.find((candidate) => candidate.includes(description)) ?? '';
      return line.indexOf(description);
    });
    expect(columns.every((column) => column > 0)).toBe(true);
    expect(new Set(columns).size).toBe(1);
  });

  it('shows placeholders, choices, minimums, defaults and negatable bools', () => {
    expect(help).toMatch(/--steps N +number of training steps \(at least 1, default: 1000\)/);
    expect(help).toMatch(/--lr X +Adam learning rate \(default: 0.0002\)/);
    expect(help).toMatch(/--data DIR +folder with the IDX files\n/);
    expect(help).toMatch(/--device gpu\|cpu +where to run \(default: gpu\)/);
    expect(help).toMatch(/--\[no-\]samples +write a sample grid after each epoch \(default: true/);
    expect(help).toMatch(/--resume +continue from the latest checkpoint in the run folder\n/);
    expect(help).toMatch(/-h, --help +show this help and exit/);
  });

  it('uses a custom usage line and keeps lines within 80 columns', () => {
    const custom = formatHelp({ ...trainSpec, usage: 'shadergan train [--steps N] [...]' });
    expect(custom.startsWith('Usage: shadergan train [--steps N] [...]\n')).toBe(true);
    const longHelp = formatHelp({
      name: 'x',
      summary: 'y',
      flags: { wordy: { type: 'bool', help: 'a very long description '.repeat(8).trim() } },
    });
    for (const line of longHelp.split('\n')) expect(line.length).toBeLessThanOrEqual(80);
    expect(
      longHelp.split('\n').filter((line) => line.includes('description')).length,
    ).toBeGreaterThan(1);
  });
});

describe('editDistance', () => {
  it.each([
    ['steps', 'steps', 0],
    ['stesp', 'steps', 2],
    ['step', 'steps', 1],
    ['', 'abc', 3],
    ['kitten', 'sitting', 3],
  ])('%s -> %s is %i', (from, to, distance) => {
    expect(editDistance(from, to)).toBe(distance);
  });
});
