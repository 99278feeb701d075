// Module: a layer that owns parameters (trained), buffers (running statistics) and child
// modules, addressed by PyTorch's state_dict names such as `main.1.running_mean`.
import { ShaderganError } from '../errors.ts';
import { formatShape, type Tensor } from '../autograd/tensor.ts';

export abstract class Module {
  training = true;
  private readonly ownParameters = new Map<string, Tensor>();
  private readonly ownBuffers = new Map<string, Tensor>();
  private readonly children = new Map<string, Module>();

  abstract forward(input: Tensor): Tensor;

  /** A one-line description used when printing a model, e.g. `Conv2d(1, 64, k=4, s=2, p=1)`. */
  abstract describe(): string;

  protected addParameter(name: string, tensor: Tensor): Tensor {
    tensor.requiresGrad = true;
    tensor.keep();
    this.ownParameters.set(name, tensor);
    return tensor;
  }

  protected addBuffer(name: string, tensor: Tensor): Tensor {
    tensor.keep();
    this.ownBuffers.set(name, tensor);
    return tensor;
  }

  protected addChild(name: string, module: Module): Module {
    this.children.set(name, module);
    return module;
  }

  /** Trainable tensors with their full dotted names, in registration order. */
  namedParameters(prefix = ''): Array<[string, Tensor]> {
    const named: Array<[string, Tensor]> = [];
    for (const [name, tensor] of this.ownParameters) named.push([prefix + name, tensor]);
    for (const [name, child] of this.children) {
      named.push(...child.namedParameters(`${prefix}${name}.`));
    }
    return named;
  }

  /** Non-trainable state (running statistics), with full dotted names. */
  namedBuffers(prefix = ''): Array<[string, Tensor]> {
    const named: Array<[string, Tensor]> = [];
    for (const [name, tensor] of this.ownBuffers) named.push([prefix + name, tensor]);
    for (const [name, child] of this.children) {
      named.push(...child.namedBuffers(`${prefix}${name}.`));
    }
    return named;
  }

  /** Every module in the tree with its dotted name ('' for this one). */
  namedModules(prefix = ''): Array<[string, Module]> {
    const named: Array<[string, Module]> = [[prefix.replace(/\.$/, ''), this]];
    for (const [name, child] of this.children) {
      named.push(...child.namedModules(`${prefix}${name}.`));
    }
    return named;
  }

  parameters(): Tensor[] {
    return this.namedParameters().map(([, tensor]) => tensor);
  }

  /** Parameters and buffers by name, as PyTorch's state_dict() lists them. */
  stateDict(): Map<string, Tensor> {
    return new Map([...this.namedParameters(), ...this.namedBuffers()]);
  }

  /** Copies values into every parameter and buffer; names and shapes must all match. */
  loadStateDict(values: ReadonlyMap<string, Float32Array>, source: string): void {
    const state = this.stateDict();
    const missing = [...state.keys()].filter((name) => !values.has(name));
    if (missing.length > 0) {
      throw new ShaderganError(`${source} lacks tensors the model needs: ${missing.join(', ')}`);
    }
    for (const [name, tensor] of state) {
      const data = values.get(name) as Float32Array;
      if (data.length !== tensor.size) {
        throw new ShaderganError(
          `${source}: '${name}' has ${data.length} values, the model expects ` +
            `${formatShape(tensor.shape)} (${tensor.size}); was it saved with another config?`,
        );
      }
      tensor.write(data);
    }
  }

  train(mode = true): this {
    for (const [, module] of this.namedModules()) module.training = mode;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  zeroGrad(): void {
    for (const parameter of this.parameters()) {
      parameter.grad?.dispose();
      parameter.grad = null;
    }
  }

  /** Frees every parameter and buffer. */
  dispose(): void {
    for (const [, tensor] of [...this.namedParameters(), ...this.namedBuffers()]) {
      tensor.dispose();
    }
  }

  /** An indented tree with parameter counts, like printing a PyTorch model. */
  toString(): string {
    const lines: string[] = [];
    const walk = (module: Module, name: string, depth: number): void => {
      const label = name ? `(${name}): ` : '';
      lines.push(`${'  '.repeat(depth)}${label}${module.describe()}`);
      for (const [childName, child] of module.children) walk(child, childName, depth + 1);
    };
    walk(this, '', 0);
    const count = this.parameters().reduce((total, tensor) => total + tensor.size, 0);
    lines.push(`${count.toLocaleString('en-US')} parameters`);
    return lines.join('\n');
  }
}
