// Detectron2's solver (v0.6 solver/build.py) over a cellgpu Module: parameter groups from
// get_default_optimizer_params (norm-layer parameters get WEIGHT_DECAY_NORM; parameters named
// 'bias' get BASE_LR * BIAS_LR_FACTOR and, when set, WEIGHT_DECAY_BIAS; groups with equal
// hyper-parameters merged in first-seen order as reduce_param_groups does), SGD with momentum,
// the WarmupMultiStepLR / WarmupCosineLR schedule, and the per-parameter gradient clipper that
// maybe_add_gradient_clipping installs (each parameter clipped on its own, not a global norm).
import type { CfgNode } from '../../models/config/config';
import type { Module } from '../../engine/nn/module';
import type { Tensor } from '../../engine/tensor';
import { SGD, type SgdOptions } from '../../engine/optim/sgd';
import { clipGradNorm, clipGradValue } from '../../engine/optim/clip';
import { WarmupCosineLR, WarmupMultiStepLR, type LRScheduler, type WarmupMethod } from '../../engine/optim/lr-scheduler';
import type { ParamGroupSpec } from '../../engine/optim/optimizer';
import { UserError } from '../../runtime/errors';

/** Module types whose parameters are "norm" parameters (torch's BatchNorm/GroupNorm/LayerNorm/
 *  InstanceNorm/LocalResponseNorm family), recognised by class name so that any module tree works. */
const NORM_CLASS = /^(FrozenBatchNorm2d|BatchNorm[123]?d?|SyncBatchNorm|NaiveSyncBatchNorm|GroupNorm|LayerNorm|InstanceNorm[123]?d?|LocalResponseNorm)$/;

export function isNormModule(m: Module): boolean {
  return NORM_CLASS.test(m.constructor.name);
}

export interface ParamGroupOptions {
  baseLr: number;
  weightDecay: number;
  weightDecayNorm: number;
  biasLrFactor: number;
  /** null: same as weightDecay (no override). */
  weightDecayBias: number | null;
}

export interface NamedParamGroup {
  lr: number;
  weightDecay: number;
  params: Tensor[];
  names: string[];
}

/** get_default_optimizer_params + reduce_param_groups. Parameters without requiresGrad are skipped. */
export function buildParamGroups(model: Module, o: ParamGroupOptions): NamedParamGroup[] {
  const modules = new Map(model.namedModules());
  const groups: NamedParamGroup[] = [];
  const byKey = new Map<string, NamedParamGroup>();
  for (const [key, p] of model.namedParameters()) {
    if (!p.requiresGrad) continue;
    const cut = key.lastIndexOf('.');
    const owner = modules.get(cut < 0 ? '' : key.slice(0, cut))!;
    const paramName = key.slice(cut + 1);
    let lr = o.baseLr;
    let wd = o.weightDecay;
    if (isNormModule(owner)) wd = o.weightDecayNorm;
    if (paramName === 'bias') {
      if (o.biasLrFactor !== 1.0) lr = o.baseLr * o.biasLrFactor;
      if (o.weightDecayBias !== null) wd = o.weightDecayBias;
    }
    const k = `${lr}|${wd}`;
    let g = byKey.get(k);
    if (!g) {
      g = { lr, weightDecay: wd, params: [], names: [] };
      byKey.set(k, g);
      groups.push(g);
    }
    g.params.push(p);
    g.names.push(key);
  }
  if (groups.length === 0) throw new UserError('the model has no trainable parameters');
  return groups;
}

export function paramGroupOptionsFromConfig(cfg: CfgNode): ParamGroupOptions {
  const s = cfg.SOLVER;
  return {
    baseLr: s.BASE_LR,
    weightDecay: s.WEIGHT_DECAY,
    weightDecayNorm: s.WEIGHT_DECAY_NORM,
    biasLrFactor: s.BIAS_LR_FACTOR,
    weightDecayBias: s.WEIGHT_DECAY_BIAS,
  };
}

/** build_optimizer: SGD(momentum, nesterov) over the Detectron2 parameter groups. */
export function buildOptimizer(cfg: CfgNode, model: Module): { optimizer: SGD; groups: NamedParamGroup[] } {
  const groups = buildParamGroups(model, paramGroupOptionsFromConfig(cfg));
  const specs: ParamGroupSpec<SgdOptions>[] = groups.map((g) => ({ params: g.params, lr: g.lr, weightDecay: g.weightDecay }));
  const optimizer = new SGD(specs, { lr: cfg.SOLVER.BASE_LR, momentum: cfg.SOLVER.MOMENTUM, nesterov: cfg.SOLVER.NESTEROV, weightDecay: cfg.SOLVER.WEIGHT_DECAY });
  return { optimizer, groups };
}

/** build_lr_scheduler; `startIter` is the iteration the next step will run (resume). */
export function buildLrScheduler(cfg: CfgNode, optimizer: SGD, startIter = 0): LRScheduler {
  const s = cfg.SOLVER;
  const method = s.WARMUP_METHOD as WarmupMethod;
  if (method !== 'linear' && method !== 'constant') throw new UserError(`SOLVER.WARMUP_METHOD '${s.WARMUP_METHOD}' is not supported (linear or constant)`);
  const warm = { warmupFactor: s.WARMUP_FACTOR, warmupIters: s.WARMUP_ITERS, warmupMethod: method, startIter };
  if (s.LR_SCHEDULER_NAME === 'WarmupMultiStepLR') {
    const steps = s.STEPS.filter((x) => x <= s.MAX_ITER);
    if (steps.length !== s.STEPS.length) console.warn(`SOLVER.STEPS contains values larger than SOLVER.MAX_ITER (${s.MAX_ITER}); they are ignored`);
    return new WarmupMultiStepLR(optimizer, { steps, gamma: s.GAMMA, ...warm });
  }
  if (s.LR_SCHEDULER_NAME === 'WarmupCosineLR') return new WarmupCosineLR(optimizer, { maxIters: s.MAX_ITER, ...warm });
  throw new UserError(`SOLVER.LR_SCHEDULER_NAME '${s.LR_SCHEDULER_NAME}' is not supported (WarmupMultiStepLR or WarmupCosineLR)`);
}

/** The gradient clipper of SOLVER.CLIP_GRADIENTS (null when disabled). */
export function buildGradientClipper(cfg: CfgNode): ((params: readonly Tensor[]) => void) | null {
  const c = cfg.SOLVER.CLIP_GRADIENTS;
  if (!c.ENABLED) return null;
  if (c.CLIP_TYPE === 'value') return (params) => clipGradValue(params, c.CLIP_VALUE);
  if (c.CLIP_TYPE === 'norm') {
    return (params) => {
      for (const p of params) if (p.grad) clipGradNorm([p], c.CLIP_VALUE, c.NORM_TYPE).dispose();
    };
  }
  if (c.CLIP_TYPE === 'full_model') return (params) => clipGradNorm(params, c.CLIP_VALUE, c.NORM_TYPE).dispose();
  throw new UserError(`SOLVER.CLIP_GRADIENTS.CLIP_TYPE '${c.CLIP_TYPE}' is not supported (value, norm or full_model)`);
}
