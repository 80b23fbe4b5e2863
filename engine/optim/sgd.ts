// SGD with momentum, dampening, weight decay and Nesterov, in PyTorch's update order:
//   d = g (+ wd·p);  buf = d on the first step, else momentum·buf + (1 - dampening)·d;
//   d = nesterov ? d + momentum·buf : buf;  p -= lr·d
// By default (`foreach: true`) a group's parameters are updated a few per dispatch by the
// multi-tensor kernel, bit-identical to the one-kernel-per-parameter loop (`foreach: false`).
import { empty, type Tensor } from '../tensor';
import { launchSgd, launchSgdMulti, type FlatF32 } from '../../kernels/optim/optim';
import { flat, Optimizer, type ParamGroup, type ParamGroupSpec } from './optimizer';

export interface SgdOptions {
  lr: number;
  momentum: number;
  dampening: number;
  weightDecay: number;
  nesterov: boolean;
  maximize: boolean;
  /** Update the group with multi-tensor kernels (a few dispatches) instead of one per parameter;
   *  the results are bit-identical either way. */
  foreach: boolean;
}

export interface SgdState {
  momentumBuffer: Tensor | null;
  step: number;
}

const SGD_DEFAULTS: Omit<SgdOptions, 'lr'> = { momentum: 0, dampening: 0, weightDecay: 0, nesterov: false, maximize: false, foreach: true };

export class SGD extends Optimizer<SgdOptions, SgdState> {
  constructor(params: Tensor[] | ParamGroupSpec<SgdOptions>[], options: Partial<SgdOptions> & { lr: number }) {
    super(params, { ...SGD_DEFAULTS, ...options });
  }

  protected validate(g: ParamGroup<SgdOptions>, i: number): void {
    const where = `SGD group ${i}`;
    if (!(g.lr >= 0)) throw new Error(`${where}: invalid learning rate ${g.lr}`);
    if (!(g.momentum >= 0)) throw new Error(`${where}: invalid momentum ${g.momentum}`);
    if (!(g.weightDecay >= 0)) throw new Error(`${where}: invalid weight decay ${g.weightDecay}`);
    if (g.nesterov && (g.momentum <= 0 || g.dampening !== 0)) throw new Error(`${where}: Nesterov momentum requires a momentum and zero dampening`);
  }

  /** The state of `param` advanced by one step: its momentum buffer (or null) and whether this is
   *  the buffer's first update. */
  private advance(param: Tensor, g: ParamGroup<SgdOptions>): { buffer: GPUBuffer | null; first: boolean } {
    let s = this.state.get(param);
    if (!s) this.state.set(param, (s = { momentumBuffer: null, step: 0 }));
    let first = false;
    if (g.momentum !== 0 && !s.momentumBuffer) {
      // Written whole by the first update (buf = d_p), so it needs no initialisation.
      s.momentumBuffer = empty(param.shape).keep();
      first = true;
    }
    s.step++;
    return { buffer: g.momentum !== 0 ? s.momentumBuffer!.buffer : null, first };
  }

  private scalars(g: ParamGroup<SgdOptions>) {
    return { lr: g.lr, weightDecay: g.weightDecay, momentum: g.momentum, dampening: g.dampening, nesterov: g.nesterov, maximize: g.maximize };
  }

  protected update(param: Tensor, grad: FlatF32, g: ParamGroup<SgdOptions>): void {
    const { buffer, first } = this.advance(param, g);
    launchSgd(param.numel, flat(param), grad, buffer, { ...this.scalars(g), first }, this.foundInf);
  }

  protected override updateGroup(items: readonly { param: Tensor; grad: FlatF32 }[], g: ParamGroup<SgdOptions>): void {
    if (!g.foreach) return super.updateGroup(items, g);
    const slots = items.map(({ param, grad }) => {
      const { buffer, first } = this.advance(param, g);
      return { n: param.numel, param: flat(param), grad, momentumBuffer: buffer, first };
    });
    launchSgdMulti(slots, this.scalars(g), this.foundInf);
  }
}
