// AdamW (Loshchilov & Hutter) as torch.optim.AdamW computes it: decoupled decay p *= 1 - lr·wd,
// moments m, v; bias corrections on the host in float64; p -= (lr / bc1) · m / (√v / √bc2 + eps);
// optional amsgrad (the running max of v replaces v). By default (`foreach: true`) a group's
// parameters are updated a few per dispatch by the multi-tensor kernel, bit-identical to the
// one-kernel-per-parameter loop (`foreach: false`).
import { type Tensor, zeros } from '../tensor';
import { launchAdamW, launchAdamWMulti, type FlatF32 } from '../../kernels/optim/optim';
import { flat, Optimizer, type ParamGroup, type ParamGroupSpec } from './optimizer';

export interface AdamWOptions {
  lr: number;
  betas: [number, number];
  eps: number;
  weightDecay: number;
  amsgrad: boolean;
  maximize: boolean;
  /** Update the group with multi-tensor kernels (a few dispatches) instead of one per parameter;
   *  the results are bit-identical either way. */
  foreach: boolean;
}

export interface AdamWState {
  step: number;
  expAvg: Tensor;
  expAvgSq: Tensor;
  maxExpAvgSq: Tensor | null;
}

const ADAMW_DEFAULTS: AdamWOptions = { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 1e-2, amsgrad: false, maximize: false, foreach: true };

export class AdamW extends Optimizer<AdamWOptions, AdamWState> {
  constructor(params: Tensor[] | ParamGroupSpec<AdamWOptions>[], options: Partial<AdamWOptions> = {}) {
    super(params, { ...ADAMW_DEFAULTS, ...options });
  }

  protected validate(g: ParamGroup<AdamWOptions>, i: number): void {
    const where = `AdamW group ${i}`;
    if (!(g.lr >= 0)) throw new Error(`${where}: invalid learning rate ${g.lr}`);
    if (!(g.eps >= 0)) throw new Error(`${where}: invalid epsilon ${g.eps}`);
    const [b1, b2] = g.betas;
    if (!(b1 >= 0 && b1 < 1)) throw new Error(`${where}: invalid beta1 ${b1} (expected 0 <= beta1 < 1)`);
    if (!(b2 >= 0 && b2 < 1)) throw new Error(`${where}: invalid beta2 ${b2} (expected 0 <= beta2 < 1)`);
    if (!(g.weightDecay >= 0)) throw new Error(`${where}: invalid weight decay ${g.weightDecay}`);
  }

  /** The state of `param`, created on its first update, with its step count advanced. */
  private advance(param: Tensor, g: ParamGroup<AdamWOptions>): AdamWState {
    let s = this.state.get(param);
    if (!s) {
      s = {
        step: 0,
        expAvg: zeros(param.shape).keep(),
        expAvgSq: zeros(param.shape).keep(),
        maxExpAvgSq: g.amsgrad ? zeros(param.shape).keep() : null,
      };
      this.state.set(param, s);
    }
    if (g.amsgrad && !s.maxExpAvgSq) s.maxExpAvgSq = zeros(param.shape).keep(); // amsgrad switched on later
    s.step++;
    return s;
  }

  private scalars(g: ParamGroup<AdamWOptions>) {
    return { lr: g.lr, beta1: g.betas[0], beta2: g.betas[1], eps: g.eps, weightDecay: g.weightDecay, maximize: g.maximize };
  }

  protected update(param: Tensor, grad: FlatF32, g: ParamGroup<AdamWOptions>): void {
    const s = this.advance(param, g);
    launchAdamW(param.numel, flat(param), grad, s.expAvg.buffer, s.expAvgSq.buffer, g.amsgrad ? s.maxExpAvgSq!.buffer : null, { ...this.scalars(g), step: s.step }, this.foundInf);
  }

  protected override updateGroup(items: readonly { param: Tensor; grad: FlatF32 }[], g: ParamGroup<AdamWOptions>): void {
    if (!g.foreach) return super.updateGroup(items, g);
    const slots = items.map(({ param, grad }) => {
      const s = this.advance(param, g);
      const maxExpAvgSq = g.amsgrad ? s.maxExpAvgSq!.buffer : null;
      return { n: param.numel, param: flat(param), grad, expAvg: s.expAvg.buffer, expAvgSq: s.expAvgSq.buffer, maxExpAvgSq, step: s.step };
    });
    launchAdamWMulti(slots, g.amsgrad, this.scalars(g), this.foundInf);
  }
}
