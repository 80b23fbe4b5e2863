// The optimizer base: parameter groups (each with its own hyper-parameters, falling back to the
// optimizer's defaults, as torch.optim does), per-parameter state, zeroGrad and the step loop.
// Subclasses supply the per-parameter update, which records one fused kernel (kernels/optim/optim.ts),
// and may override `updateGroup` to update a whole group with multi-tensor kernels (a few
// dispatches instead of one per parameter; `foreach: false` in their options selects the loop).
import type { Tensor } from '../tensor';
import { contiguousCopy } from '../tensor';
import type { FlatF32 } from '../../kernels/optim/optim';

/** The hyper-parameters every optimizer has. */
export interface BaseOptions {
  lr: number;
}

/** A parameter group as given to the constructor: some parameters and any option overrides. */
export type ParamGroupSpec<O> = { params: Tensor[] } & Partial<O>;

/** A parameter group as the optimizer holds it: every option resolved. `initialLr` is the lr the
 *  group started with (schedulers scale it; they write `lr`). */
export type ParamGroup<O> = { params: Tensor[]; initialLr: number } & O;

export abstract class Optimizer<O extends BaseOptions, S> {
  readonly paramGroups: ParamGroup<O>[];
  protected readonly state = new Map<Tensor, S>();
  /** During `step({ foundInf })`: the GradScaler's found-inf flag, which the update kernels read
   *  to skip the update (mixed precision); null otherwise. */
  protected foundInf: GPUBuffer | null = null;

  constructor(params: Tensor[] | ParamGroupSpec<O>[], readonly defaults: O) {
    const specs: ParamGroupSpec<O>[] = params.length > 0 && !isGroupSpec(params[0]) ? [{ params: params as Tensor[] } as ParamGroupSpec<O>] : (params as ParamGroupSpec<O>[]);
    if (specs.length === 0) throw new Error(`${this.constructor.name}: got an empty parameter list`);
    const seen = new Set<Tensor>();
    this.paramGroups = specs.map((spec, gi) => {
      if (!isGroupSpec(spec)) throw new Error(`${this.constructor.name}: parameter group ${gi} needs a 'params' array`);
      for (const p of spec.params) {
        const where = `${this.constructor.name}: parameter ${p.name ? `'${p.name}' ` : ''}in group ${gi}`;
        if (seen.has(p)) throw new Error(`${where} appears in more than one group`);
        seen.add(p);
        if (p.dtype !== 'f32') throw new Error(`${where} is ${p.dtype}; optimizers update f32 parameters`);
        if (!p.requiresGrad || p.gradFn) throw new Error(`${where} must be a leaf tensor with requiresGrad`);
      }
      const group = { ...defaults } as ParamGroup<O>;
      for (const [k, v] of Object.entries(spec)) if (v !== undefined) (group as unknown as Record<string, unknown>)[k] = v;
      group.params = [...spec.params];
      group.initialLr = group.lr;
      this.validate(group, gi);
      return group;
    });
  }

  /** Check a resolved group's options (throws with a clear message). */
  protected abstract validate(group: ParamGroup<O>, index: number): void;

  /** Record the update of one parameter whose gradient is `grad` (contiguous f32). */
  protected abstract update(param: Tensor, grad: FlatF32, group: ParamGroup<O>): void;

  /** Record the updates of one group's parameters (their gradients checked and contiguous), by
   *  default one `update` each, in order. */
  protected updateGroup(items: readonly { param: Tensor; grad: FlatF32 }[], group: ParamGroup<O>): void {
    for (const { param, grad } of items) this.update(param, grad, group);
  }

  /** Record one update of every parameter that has a gradient. Nothing is read back. With
   *  `foundInf` (a u32 flag buffer, engine/optim/grad-scaler.ts) the kernels skip the update on the
   *  GPU where the flag is set (AdamW then keeps its step counts on the GPU, so a skipped step
   *  does not count; SGD's host counts advance, which only its first-step flag reads). */
  step(opts: { foundInf?: GPUBuffer } = {}): void {
    this.foundInf = opts.foundInf ?? null;
    try {
      this.stepGroups();
    } finally {
      this.foundInf = null;
    }
  }

  private stepGroups(): void {
    for (const group of this.paramGroups) {
      const items: { param: Tensor; grad: FlatF32 }[] = [];
      const copies: Tensor[] = [];
      for (const p of group.params) {
        const g = p.grad;
        if (!g) continue;
        if (g.shape.length !== p.shape.length || g.shape.some((n, i) => n !== p.shape[i])) {
          throw new Error(`${this.constructor.name}: gradient of shape [${g.shape}] for parameter ${p.name ?? ''} of shape [${p.shape}]`);
        }
        if (g.dtype !== 'f32') throw new Error(`${this.constructor.name}: gradient of ${p.name ?? 'a parameter'} is ${g.dtype}, expected f32`);
        if (!p.isContiguous()) throw new Error(`${this.constructor.name}: parameter ${p.name ?? ''} is a non-contiguous view`);
        const dense = g.isContiguous() ? g : contiguousCopy(g);
        items.push({ param: p, grad: { buffer: dense.buffer, offset: dense.offset } });
        if (dense !== g) copies.push(dense);
      }
      this.updateGroup(items, group);
      // Freed buffers return to the pool only after the submit of the commands that read them.
      for (const c of copies) c.dispose();
    }
  }

  /** Drop every gradient (PyTorch's zero_grad(set_to_none=True)). */
  zeroGrad(): void {
    for (const group of this.paramGroups) {
      for (const p of group.params) {
        p.grad?.dispose();
        p.grad = null;
      }
    }
  }

  /** The optimizer state of one parameter (undefined before its first update). */
  stateOf(param: Tensor): S | undefined {
    return this.state.get(param);
  }

  /** Replace the state of one parameter (used by loadOptimizerStateDict in ./state.ts to resume
   *  exactly); the tensors of the state it replaces are disposed. */
  setStateOf(param: Tensor, s: S): void {
    const old = this.state.get(param);
    if (old) disposeState(old);
    this.state.set(param, s);
  }

  /** Free every state tensor. */
  dispose(): void {
    for (const s of this.state.values()) disposeState(s);
    this.state.clear();
  }
}

function disposeState(s: unknown): void {
  for (const v of Object.values(s as object)) if (v && typeof v === 'object' && 'dispose' in v) (v as Tensor).dispose();
}

function isGroupSpec(v: unknown): v is { params: Tensor[] } {
  return typeof v === 'object' && v !== null && Array.isArray((v as { params?: unknown }).params);
}

export function flat(t: Tensor): FlatF32 {
  return { buffer: t.buffer, offset: t.offset };
}
