// Adam as in torch.optim.Adam: moment estimates with bias correction, one kernel per parameter
// that updates the parameter and both moments in place.
import { Tensor } from '../autograd/tensor.ts';
import { adamUpdate } from '../kernels/adam.ts';

export interface AdamSettings {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

export const ADAM_DEFAULTS: AdamSettings = {
  lr: 2e-4,
  beta1: 0.5,
  beta2: 0.999,
  eps: 1e-8,
  weightDecay: 0,
};

export class Adam {
  readonly settings: AdamSettings;
  /** Number of step() calls so far; bias correction uses it. */
  stepCount = 0;
  private readonly moments: Array<{ m: Tensor; v: Tensor }>;

  constructor(
    readonly parameters: ReadonlyArray<readonly [string, Tensor]>,
    settings: Partial<AdamSettings> = {},
  ) {
    this.settings = { ...ADAM_DEFAULTS, ...settings };
    this.moments = parameters.map(([, parameter]) => ({
      m: Tensor.zeros(parameter.gpu, parameter.shape).keep(),
      v: Tensor.zeros(parameter.gpu, parameter.shape).keep(),
    }));
  }

  /** Applies one update from each parameter's .grad, then clears the gradients. */
  step(): void {
    this.stepCount += 1;
    this.parameters.forEach(([, parameter], index) => {
      const grad = parameter.grad;
      if (!grad) return;
      const { m, v } = this.moments[index];
      adamUpdate(
        parameter.gpu,
        { param: parameter.buffer, grad: grad.buffer, m: m.buffer, v: v.buffer },
        parameter.size,
        { ...this.settings, step: this.stepCount },
      );
      grad.dispose();
      parameter.grad = null;
    });
  }

  /** Moment tensors by `<parameter name>.exp_avg` / `.exp_avg_sq`, PyTorch's state names. */
  namedState(): Array<[string, Tensor]> {
    return this.parameters.flatMap(([name], index): Array<[string, Tensor]> => [
      [`${name}.exp_avg`, this.moments[index].m],
      [`${name}.exp_avg_sq`, this.moments[index].v],
    ]);
  }

  dispose(): void {
    for (const { m, v } of this.moments) {
      m.dispose();
      v.dispose();
    }
  }
}
