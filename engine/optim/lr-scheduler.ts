// Learning-rate schedules. Each is a multiplier of the iteration, applied to every parameter
// group's initial lr (so groups with their own lr, such as Detectron2's bias-lr-factor group, keep
// their ratios). Like torch's schedulers, construction sets iteration 0's lr and `step()` (called
// after `optimizer.step()`) moves to the next iteration.
//
// WarmupMultiStepLR and WarmupCosineLR follow Detectron2's solver/lr_scheduler.py (the classes
// CenterMask2 was trained with): warmup factor f(it) = 1 for it >= warmup_iters, else
// warmup_factor ('constant') or warmup_factor·(1 - it/warmup_iters) + it/warmup_iters ('linear').

export type WarmupMethod = 'linear' | 'constant';

export function warmupFactorAt(method: WarmupMethod, iter: number, warmupIters: number, warmupFactor: number): number {
  if (iter >= warmupIters) return 1;
  if (method === 'constant') return warmupFactor;
  if (method === 'linear') {
    const alpha = iter / warmupIters;
    return warmupFactor * (1 - alpha) + alpha;
  }
  throw new Error(`unknown warmup method '${String(method)}' (expected 'linear' or 'constant')`);
}

/** Number of milestones <= iter (Python's bisect_right). */
function passed(milestones: readonly number[], iter: number): number {
  let n = 0;
  for (const m of milestones) if (m <= iter) n++;
  return n;
}

function checkMilestones(name: string, steps: readonly number[]): void {
  for (let i = 0; i < steps.length; i++) {
    if (!Number.isInteger(steps[i]) || steps[i]! < 0) throw new Error(`${name}: milestone ${steps[i]} is not a non-negative integer`);
    if (i > 0 && steps[i]! < steps[i - 1]!) throw new Error(`${name}: milestones should be a list of increasing integers, got [${steps}]`);
  }
}

/** What a scheduler needs of an optimizer: its groups' current and initial lr. */
export type AnyOptimizer = { paramGroups: { lr: number; initialLr: number }[] };

export abstract class LRScheduler {
  /** The iteration whose lr the groups hold now. */
  lastIter = 0;
  protected readonly groups: { lr: number; initialLr: number }[];

  constructor(optimizer: AnyOptimizer, startIter = 0) {
    this.groups = optimizer.paramGroups;
    this.lastIter = startIter;
  }

  /** The lr at iteration `iter` of a group whose initial lr is `base`. */
  abstract lrAt(base: number, iter: number): number;

  /** Set every group's lr for `this.lastIter` (subclasses call this at the end of construction). */
  protected apply(): void {
    for (const g of this.groups) g.lr = this.lrAt(g.initialLr, this.lastIter);
  }

  /** Advance to the next iteration and set the groups' lr. */
  step(): void {
    this.lastIter++;
    this.apply();
  }

  /** The lr of each group now. */
  getLastLr(): number[] {
    return this.groups.map((g) => g.lr);
  }
}

export interface WarmupOptions {
  warmupFactor?: number;
  warmupIters?: number;
  warmupMethod?: WarmupMethod;
}

/** Detectron2's WarmupMultiStepLR: lr = base · warmup(it) · gamma^(milestones passed). */
export class WarmupMultiStepLR extends LRScheduler {
  readonly steps: number[];
  readonly gamma: number;
  readonly warmupFactor: number;
  readonly warmupIters: number;
  readonly warmupMethod: WarmupMethod;
  constructor(optimizer: AnyOptimizer, opts: { steps: number[]; gamma?: number; startIter?: number } & WarmupOptions) {
    super(optimizer, opts.startIter);
    checkMilestones('WarmupMultiStepLR', opts.steps);
    this.steps = [...opts.steps];
    this.gamma = opts.gamma ?? 0.1;
    this.warmupFactor = opts.warmupFactor ?? 0.001;
    this.warmupIters = opts.warmupIters ?? 1000;
    this.warmupMethod = opts.warmupMethod ?? 'linear';
    warmupFactorAt(this.warmupMethod, 0, 1, this.warmupFactor); // validates the method
    this.apply();
  }
  lrAt(base: number, iter: number): number {
    return base * this.factor(iter);
  }
  /** Multiplier of the initial lr at iteration `iter`. */
  factor(iter: number): number {
    return warmupFactorAt(this.warmupMethod, iter, this.warmupIters, this.warmupFactor) * this.gamma ** passed(this.steps, iter);
  }
}

/** Detectron2's WarmupCosineLR: lr = base · warmup(it) · ½(1 + cos(π·it / maxIters)). */
export class WarmupCosineLR extends LRScheduler {
  readonly maxIters: number;
  readonly warmupFactor: number;
  readonly warmupIters: number;
  readonly warmupMethod: WarmupMethod;
  constructor(optimizer: AnyOptimizer, opts: { maxIters: number; startIter?: number } & WarmupOptions) {
    super(optimizer, opts.startIter);
    if (!(opts.maxIters > 0)) throw new Error(`WarmupCosineLR: maxIters must be > 0, got ${opts.maxIters}`);
    this.maxIters = opts.maxIters;
    this.warmupFactor = opts.warmupFactor ?? 0.001;
    this.warmupIters = opts.warmupIters ?? 1000;
    this.warmupMethod = opts.warmupMethod ?? 'linear';
    warmupFactorAt(this.warmupMethod, 0, 1, this.warmupFactor);
    this.apply();
  }
  lrAt(base: number, iter: number): number {
    return base * this.factor(iter);
  }
  /** Multiplier of the initial lr at iteration `iter`. */
  factor(iter: number): number {
    const w = warmupFactorAt(this.warmupMethod, iter, this.warmupIters, this.warmupFactor);
    return w * 0.5 * (1 + Math.cos((Math.PI * iter) / this.maxIters));
  }
}

/** torch.optim.lr_scheduler.MultiStepLR: lr = base · gamma^(milestones passed). */
export class MultiStepLR extends LRScheduler {
  readonly milestones: number[];
  readonly gamma: number;
  constructor(optimizer: AnyOptimizer, opts: { milestones: number[]; gamma?: number; startIter?: number }) {
    super(optimizer, opts.startIter);
    checkMilestones('MultiStepLR', opts.milestones);
    this.milestones = [...opts.milestones];
    this.gamma = opts.gamma ?? 0.1;
    this.apply();
  }
  lrAt(base: number, iter: number): number {
    return base * this.factor(iter);
  }
  /** Multiplier of the initial lr at iteration `iter`. */
  factor(iter: number): number {
    return this.gamma ** passed(this.milestones, iter);
  }
}

/** torch.optim.lr_scheduler.CosineAnnealingLR (closed form, no restarts):
 *  lr = etaMin + (base - etaMin) · ½(1 + cos(π·it / tMax)). */
export class CosineAnnealingLR extends LRScheduler {
  readonly tMax: number;
  readonly etaMin: number;
  constructor(optimizer: AnyOptimizer, opts: { tMax: number; etaMin?: number; startIter?: number }) {
    super(optimizer, opts.startIter);
    if (!(opts.tMax > 0)) throw new Error(`CosineAnnealingLR: tMax must be > 0, got ${opts.tMax}`);
    this.tMax = opts.tMax;
    this.etaMin = opts.etaMin ?? 0;
    this.apply();
  }
  lrAt(base: number, iter: number): number {
    return this.etaMin + ((base - this.etaMin) * (1 + Math.cos((Math.PI * iter) / this.tMax))) / 2;
  }
}
