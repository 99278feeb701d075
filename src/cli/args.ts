// A small command-line flag parser. Each command describes its flags once, in a spec, and the
// same spec drives parsing, validation and the --help text, so the three cannot drift apart.

import { UsageError } from '../errors.ts';

export const PROGRAM_NAME = 'shadergan';

export type FlagType = 'int' | 'float' | 'string' | 'bool';

export interface FlagSpec {
  type: FlagType;
  /** The value when the flag is not given. Bool flags without a default are false. */
  default?: number | string | boolean;
  help: string;
  /** The only values accepted, compared as typed on the command line. */
  choices?: readonly string[];
  /** The smallest accepted value, for int and float flags. */
  min?: number;
  /** The word shown for the value in --help, e.g. `--steps N`. */
  placeholder?: string;
}

export interface CommandSpec {
  /** The subcommand as typed after the program name, e.g. 'train'. */
  name: string;
  summary: string;
  /** The usage line without the "Usage: " prefix; defaults to `shadergan <name> [flags]`. */
  usage?: string;
  /** How the command is typed when it is not a shadergan subcommand, e.g. 'npm run bench --'. */
  invocation?: string;
  /** Keyed by flag name without the leading dashes, e.g. 'batch-size'. */
  flags: Record<string, FlagSpec>;
  examples?: readonly string[];
  /** Extra help sections after the flags, e.g. a table of presets. */
  sections?: ReadonlyArray<{ title: string; lines: readonly string[] }>;
}

type ValueOfType<Type extends FlagType> = Type extends 'bool'
  ? boolean
  : Type extends 'string'
    ? string
    : number;

/** Bool flags are always set; other flags are undefined when neither given nor defaulted. */
export type FlagValue<Flag extends FlagSpec> = Flag['type'] extends 'bool'
  ? boolean
  : Flag extends { default: number | string | boolean }
    ? ValueOfType<Flag['type']>
    : ValueOfType<Flag['type']> | undefined;

export type ParsedFlags<Spec extends CommandSpec> = {
  -readonly [Name in keyof Spec['flags']]: FlagValue<Spec['flags'][Name]>;
};

/** Either the flags, or a request to print `formatHelp(spec)` and exit successfully. */
export type ParseOutcome<Spec extends CommandSpec> =
  { helpRequested: true } | { helpRequested: false; flags: ParsedFlags<Spec> };

const MAX_SUGGESTION_DISTANCE = 2;
const HELP_TOKENS = new Set(['--help', '-h']);

export function commandLine(spec: CommandSpec): string {
  return spec.invocation ?? `${PROGRAM_NAME} ${spec.name}`;
}

/**
 * Parses `argv` (the arguments after the subcommand) against `spec`. Accepts `--flag value`,
 * `--flag=value` and, for bools, `--flag`, `--no-flag` and `--flag=true|false`. A later
 * occurrence of a flag overrides an earlier one, so scripts can append overrides.
 */
export function parseFlags<Spec extends CommandSpec>(
  spec: Spec,
  argv: readonly string[],
): ParseOutcome<Spec> {
  // --help wins even next to mistakes: someone asking for help should get it, not an error.
  if (argv.some((token) => HELP_TOKENS.has(token))) return { helpRequested: true };

  const values = new Map<string, number | string | boolean>();
  for (let index = 0; index < argv.length; index++) {
    const token = argv[index];
    if (!token.startsWith('-') || token === '-' || token === '--') {
      throw new UsageError(
        `unexpected argument '${token}' for '${commandLine(spec)}': it ` +
          `takes only --flags (see '${commandLine(spec)} --help')`,
      );
    }

    const equalsAt = token.indexOf('=');
    const written = equalsAt === -1 ? token : token.slice(0, equalsAt);
    const inlineValue = equalsAt === -1 ? undefined : token.slice(equalsAt + 1);
    const name = written.startsWith('--') ? written.slice(2) : written.slice(1);

    const flag = spec.flags[name];
    const negatedName = name.startsWith('no-') ? name.slice(3) : undefined;
    const negatedFlag = negatedName === undefined ? undefined : spec.flags[negatedName];

    if (flag === undefined && negatedName !== undefined && negatedFlag?.type === 'bool') {
      if (inlineValue !== undefined) {
        throw new UsageError(
          `--no-${negatedName} takes no value; use --${negatedName}=` + `${inlineValue} instead`,
        );
      }
      values.set(negatedName, false);
      continue;
    }
    if (flag === undefined || !written.startsWith('--')) {
      throw unknownFlagError(spec, written);
    }

    if (flag.type === 'bool') {
      values.set(name, inlineValue === undefined ? true : parseBool(name, inlineValue));
      continue;
    }

    let rawValue = inlineValue;
    if (rawValue === undefined) {
      const next = argv[index + 1];
      // A following flag means the value was forgotten, but a negative number is a value.
      if (next === undefined || (next.startsWith('-') && !isNumberLike(next))) {
        throw new UsageError(`--${name} expects a value (--${name} ${placeholderFor(flag)})`);
      }
      rawValue = next;
      index++;
    }
    values.set(name, parseValue(name, flag, rawValue));
  }

  const flags: Record<string, number | string | boolean | undefined> = {};
  for (const [name, flag] of Object.entries(spec.flags)) {
    flags[name] = values.get(name) ?? flag.default ?? (flag.type === 'bool' ? false : undefined);
  }
  // The loop above set exactly one entry per spec flag, with the type its FlagSpec declares.
  return { helpRequested: false, flags: flags as ParsedFlags<Spec> };
}

function parseValue(name: string, flag: FlagSpec, rawValue: string): number | string {
  if (flag.choices !== undefined && !flag.choices.includes(rawValue)) {
    throw new UsageError(`--${name} must be one of ${flag.choices.join(', ')}; got '${rawValue}'`);
  }
  if (flag.type === 'string') return rawValue;

  let value: number;
  if (flag.type === 'int') {
    value = Number(rawValue);
    if (!/^[+-]?\d+$/.test(rawValue) || !Number.isSafeInteger(value)) {
      throw new UsageError(`--${name} expects an integer, got '${rawValue}'`);
    }
  } else {
    value = Number(rawValue);
    if (!isNumberLike(rawValue) || !Number.isFinite(value)) {
      throw new UsageError(`--${name} expects a number, got '${rawValue}'`);
    }
  }
  if (flag.min !== undefined && value < flag.min) {
    throw new UsageError(`--${name} must be at least ${flag.min}, got ${rawValue}`);
  }
  return value;
}

function parseBool(name: string, rawValue: string): boolean {
  if (rawValue === 'true') return true;
  if (rawValue === 'false') return false;
  throw new UsageError(`--${name} expects true or false, got '${rawValue}'`);
}

/** Decimal numbers as people type them: 3, -0.5, .5, 2e-4. No hex, no empty string. */
function isNumberLike(text: string): boolean {
  return /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(text);
}

function unknownFlagError(spec: CommandSpec, written: string): UsageError {
  const typedName = written.replace(/^-+/, '');
  const suggestion = closestFlagName(spec, typedName);
  const hint = suggestion === undefined ? '' : `; did you mean --${suggestion}?`;
  return new UsageError(
    `unknown flag ${written} for '${commandLine(spec)}'${hint} ` +
      `(see '${commandLine(spec)} --help')`,
  );
}

function closestFlagName(spec: CommandSpec, typedName: string): string | undefined {
  let best: string | undefined;
  let bestDistance = MAX_SUGGESTION_DISTANCE + 1;
  for (const candidate of [...Object.keys(spec.flags), 'help']) {
    const distance = editDistance(typedName, candidate);
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

/** Levenshtein distance: the fewest single-character insertions, deletions or substitutions. */
export function editDistance(from: string, to: string): number {
  let previousRow = Array.from({ length: to.length + 1 }, (_, column) => column);
  for (let row = 1; row <= from.length; row++) {
    const currentRow = [row];
    for (let column = 1; column <= to.length; column++) {
      const substitutionCost = from[row - 1] === to[column - 1] ? 0 : 1;
      currentRow.push(
        Math.min(
          previousRow[column] + 1,
          currentRow[column - 1] + 1,
          previousRow[column - 1] + substitutionCost,
        ),
      );
    }
    previousRow = currentRow;
  }
  return previousRow[to.length];
}

function placeholderFor(flag: FlagSpec): string {
  if (flag.placeholder !== undefined) return flag.placeholder;
  if (flag.choices !== undefined) return flag.choices.join('|');
  return flag.type === 'int' ? 'N' : flag.type === 'float' ? 'X' : 'VALUE';
}

const HELP_WIDTH = 80;
const INDENT = '  ';
const COLUMN_GAP = '  ';

/** Renders --help: usage line, summary, an aligned flag table with defaults, and examples. */
export function formatHelp(spec: CommandSpec): string {
  const rows: Array<{ left: string; right: string }> = [];
  for (const [name, flag] of Object.entries(spec.flags)) {
    const left =
      flag.type === 'bool'
        ? flag.default === true
          ? `--[no-]${name}`
          : `--${name}`
        : `--${name} ${placeholderFor(flag)}`;
    rows.push({ left, right: flag.help + describeConstraints(flag) });
  }
  rows.push({ left: '-h, --help', right: 'show this help and exit' });

  const leftWidth = Math.max(...rows.map((row) => row.left.length));
  const rightIndent = INDENT.length + leftWidth + COLUMN_GAP.length;
  const flagLines = rows.map((row) => {
    const wrapped = wrapWords(row.right, Math.max(HELP_WIDTH - rightIndent, 30));
    const first = INDENT + row.left.padEnd(leftWidth) + COLUMN_GAP + wrapped[0];
    const rest = wrapped.slice(1).map((line) => ' '.repeat(rightIndent) + line);
    return [first, ...rest].join('\n');
  });

  const sections = [
    `Usage: ${spec.usage ?? `${commandLine(spec)} [flags]`}`,
    spec.summary,
    ['Flags:', ...flagLines].join('\n'),
  ];
  for (const section of spec.sections ?? []) {
    sections.push([`${section.title}:`, ...section.lines.map((line) => INDENT + line)].join('\n'));
  }
  if (spec.examples !== undefined && spec.examples.length > 0) {
    sections.push(['Examples:', ...spec.examples.map((example) => INDENT + example)].join('\n'));
  }
  return sections.join('\n\n') + '\n';
}

function describeConstraints(flag: FlagSpec): string {
  const notes: string[] = [];
  if (flag.min !== undefined) notes.push(`at least ${flag.min}`);
  if (flag.default !== undefined && !(flag.type === 'bool' && flag.default === false)) {
    notes.push(`default: ${String(flag.default)}`);
  }
  return notes.length === 0 ? '' : ` (${notes.join(', ')})`;
}

function wrapWords(text: string, width: number): string[] {
  const lines: string[] = [];
  let current = '';
  for (const word of text.split(/\s+/).filter((part) => part !== '')) {
    if (current !== '' && current.length + 1 + word.length > width) {
      lines.push(current);
      current = word;
    } else {
      current = current === '' ? word : `${current} ${word}`;
    }
  }
  lines.push(current);
  return lines;
}
