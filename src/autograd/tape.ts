// The tape: every op on tensors that need gradients appends an entry naming its inputs, its
// output and a backward rule. backward() walks the tape from the end, handing each rule the
// gradient of its output and summing what comes back into the gradients of its inputs.
import { ShaderganError } from '../errors.ts';
import type { Tensor } from './tensor.ts';

export interface TapeEntry {
  readonly op: string;
  readonly inputs: readonly Tensor[];
  readonly output: Tensor;
  /** Gradients for each input (null where none is needed), given the output's gradient. */
  readonly backward: (gradOutput: Tensor) => Array<Tensor | null>;
  /** Extra description for printing, such as stride and padding. */
  readonly detail?: string;
}

/** Owns the tensors created inside it and disposes them when it ends. */
class Scope {
  private readonly tensors = new Set<Tensor>();
  readonly tapeStart: number;

  constructor(tapeStart: number) {
    this.tapeStart = tapeStart;
  }

  track(tensor: Tensor): void {
    this.tensors.add(tensor);
  }

  untrack(tensor: Tensor): void {
    this.tensors.delete(tensor);
  }

  disposeAllExcept(kept: ReadonlySet<Tensor>): void {
    for (const tensor of this.tensors) if (!kept.has(tensor)) tensor.dispose();
    this.tensors.clear();
  }
}

const scopes: Scope[] = [];
const entries: TapeEntry[] = [];
let gradEnabled = true;

export function currentScope(): Scope | undefined {
  return scopes[scopes.length - 1];
}

/**
 * Runs `body` and then disposes every tensor it created, except the ones it returns (a tensor,
 * or an array or object of tensors) and those marked with keep(). Tape entries recorded inside
 * are dropped with it.
 */
export function scope<T>(body: () => T): T {
  const opened = new Scope(entries.length);
  scopes.push(opened);
  let result: T;
  try {
    result = body();
  } catch (error) {
    closeScope(opened, new Set());
    throw error;
  }
  if (result instanceof Promise) {
    throw new ShaderganError('scope() takes a synchronous function; use asyncScope()');
  }
  closeScope(opened, returnedTensors(result));
  return result;
}

export async function asyncScope<T>(body: () => Promise<T>): Promise<T> {
  const opened = new Scope(entries.length);
  scopes.push(opened);
  try {
    const result = await body();
    closeScope(opened, returnedTensors(result));
    return result;
  } catch (error) {
    closeScope(opened, new Set());
    throw error;
  }
}

function closeScope(closing: Scope, kept: Set<Tensor>): void {
  if (scopes[scopes.length - 1] !== closing) {
    throw new ShaderganError('scopes were closed out of order (an async scope overlapped)');
  }
  scopes.pop();
  if (entries.length > closing.tapeStart) entries.length = closing.tapeStart;
  closing.disposeAllExcept(kept);
  // Returned tensors now belong to the enclosing scope, if any.
  const parent = currentScope();
  for (const tensor of kept) parent?.track(tensor);
}

function returnedTensors(value: unknown): Set<Tensor> {
  const found = new Set<Tensor>();
  const visit = (item: unknown): void => {
    if (item === null || typeof item !== 'object') return;
    if (isTensor(item)) found.add(item);
    else if (Array.isArray(item)) item.forEach(visit);
    else if (Object.getPrototypeOf(item) === Object.prototype) Object.values(item).forEach(visit);
  };
  visit(value);
  return found;
}

function isTensor(value: object): value is Tensor {
  return 'shape' in value && 'requiresGrad' in value && 'buffer' in value;
}

/** Runs `body` without recording anything on the tape. */
export function noGrad<T>(body: () => T): T {
  const previous = gradEnabled;
  gradEnabled = false;
  try {
    return body();
  } finally {
    gradEnabled = previous;
  }
}

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/**
 * Records an op if gradients are on and any input needs one. Ops call this right after their
 * forward kernel with the rule that computes input gradients.
 */
export function record(entry: TapeEntry): Tensor {
  if (!gradEnabled || !entry.inputs.some((input) => input.requiresGrad)) return entry.output;
  entry.output.requiresGrad = true;
  entry.output.creator = entry;
  entries.push(entry);
  return entry.output;
}

/** A readable listing of the tape, one op per line, for learners and debugging. */
export function formatTape(): string {
  const names = new Map<Tensor, string>();
  const nameOf = (tensor: Tensor): string => {
    let name = names.get(tensor);
    if (!name) {
      name = tensor.name ?? `t${names.size}`;
      names.set(tensor, name);
    }
    return `${name}${JSON.stringify(tensor.shape)}`;
  };
  return entries
    .map((entry, index) => {
      const inputs = entry.inputs.map(nameOf).join(', ');
      const detail = entry.detail ? ` {${entry.detail}}` : '';
      return `#${index} ${entry.op}(${inputs})${detail} -> ${nameOf(entry.output)}`;
    })
    .join('\n');
}

export function tapeLength(): number {
  return entries.length;
}

/** Accumulates `addend` into the gradient held in `grads` for `tensor`. */
type Accumulate = (grads: Map<Tensor, Tensor>, tensor: Tensor, addend: Tensor) => void;

/**
 * Back-propagates from a one-element tensor. Leaves that require gradients receive them in
 * `.grad` (added to an existing one); intermediate gradients are freed as soon as they are
 * used. The entries it went through leave the tape, as PyTorch frees its graph.
 */
export function backward(loss: Tensor, seed: Tensor, accumulate: Accumulate): void {
  if (loss.size !== 1) {
    throw new ShaderganError(`backward() needs a scalar, got shape ${JSON.stringify(loss.shape)}`);
  }
  if (!loss.requiresGrad) {
    throw new ShaderganError('backward(): the loss does not depend on any tensor needing a grad');
  }
  const grads = new Map<Tensor, Tensor>([[loss, seed]]);
  const start = currentScope()?.tapeStart ?? 0;
  const consumed = new Set<TapeEntry>();

  for (let index = entries.length - 1; index >= start; index -= 1) {
    const entry = entries[index];
    const gradOutput = grads.get(entry.output);
    if (!gradOutput) continue;
    grads.delete(entry.output);
    consumed.add(entry);

    const gradInputs = entry.backward(gradOutput);
    gradOutput.dispose();
    entry.inputs.forEach((input, position) => {
      const gradInput = gradInputs[position];
      if (!gradInput) return;
      if (!input.requiresGrad) {
        gradInput.dispose();
        return;
      }
      accumulate(grads, input, gradInput);
    });
  }

  for (const [tensor, grad] of grads) {
    if (tensor.creator) {
      grad.dispose();
      continue;
    }
    currentScope()?.untrack(grad);
    if (tensor.grad) {
      const sum = new Map<Tensor, Tensor>([[tensor, tensor.grad]]);
      accumulate(sum, tensor, grad);
      tensor.grad = sum.get(tensor) ?? null;
      if (tensor.grad) currentScope()?.untrack(tensor.grad);
    } else {
      tensor.grad = grad;
    }
  }
  // Entries this loss did not reach (say, a generator behind a detach) stay for a later call.
  const kept = entries.slice(start).filter((entry) => !consumed.has(entry));
  entries.length = start;
  entries.push(...kept);
  for (const entry of consumed) entry.output.creator = null;
}
