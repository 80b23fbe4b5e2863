// AdamW (Loshchilov & Hutter) as torch.optim.AdamW computes it: decoupled decay p *= 1 - lr·wd,
// moments m, v; bias corrections on the host in float64; p -= (lr / bc1) · m / (√v / √bc2 + eps);
// optional amsgrad (the running max of v replaces v). By default (`foreach: true`) a group's
// parameters are updated a few per dispatch by the multi-tensor kernel, bit-identical to the
// one-kernel-per-parameter loop (`foreach: false`).
//
// Under a GradScaler (`step({ foundInf })`) a step with inf/NaN gradients must not count: torch's
// GradScaler.step does not call optimizer.step then, so `state['step']` and the bias corrections
// stay. The flag is only known on the GPU, so from the first such step on, the step counts live in
// a u32 buffer on the device (one entry per parameter): the kernels' skip variants read the count
// there (bias corrections in f32, as torch's capturable Adam) and a small kernel advances it
// afterwards unless the flag is set. The host count (`stateOf(p).step`) is then refreshed only by
// `syncSteps()` (checkpoints; a readback, outside the step).
import { type Tensor, zeros } from '../tensor';
import { launchAdamW, launchAdamWMulti, launchAdvanceSteps, launchSetSteps, type DeviceSteps, type FlatF32 } from '../../kernels/optim/optim';
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

  /** u32 per parameter (in group order): applied updates, authoritative for the params in
   *  `onDevice`; created by the first step under a GradScaler. */
  private deviceSteps: Tensor | null = null;
  /** A cleared found-inf flag for device-count steps taken without a GradScaler. */
  private noInf: Tensor | null = null;
  private readonly onDevice = new Set<Tensor>();
  private indexOf: Map<Tensor, number> | null = null;

  /** The state of `param`, created on its first update; its host step count advanced unless the
   *  count lives on the device. */
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
    if (!this.deviceMode()) s.step++;
    return s;
  }

  /** Counts on the device: once a GradScaler step happened (or one is under way). */
  private deviceMode(): boolean {
    return this.foundInf !== null || this.deviceSteps !== null;
  }

  private index(param: Tensor): number {
    if (!this.indexOf) this.indexOf = new Map(this.paramGroups.flatMap((g) => g.params).map((p, i) => [p, i]));
    return this.indexOf.get(param)!;
  }

  /** The device counts and flag of this step; the host counts of `params` not yet on the device
   *  moved there (by dispatches, ordered with this step's updates). */
  private device(params: readonly Tensor[]): DeviceSteps {
    if (!this.deviceSteps) {
      const n = this.paramGroups.reduce((k, g) => k + g.params.length, 0);
      this.deviceSteps = zeros([n], 'u32').keep();
    }
    if (!this.foundInf && !this.noInf) this.noInf = zeros([1], 'u32').keep();
    const moving = params.filter((p) => !this.onDevice.has(p));
    const steps = this.deviceSteps.buffer;
    for (const [start, n, value] of this.runs(moving, (p) => this.state.get(p)!.step)) launchSetSteps(steps, start, n, value);
    for (const p of moving) this.onDevice.add(p);
    return { foundInf: this.foundInf ?? this.noInf!.buffer, steps };
  }

  /** Advance the device counts of `params` (one dispatch per run of consecutive indices). */
  private advanceDevice(dev: DeviceSteps, params: readonly Tensor[]): void {
    for (const [start, n] of this.runs(params, () => 0)) launchAdvanceSteps(dev, start, n);
  }

  /** `params` as runs [first index, length, value] of consecutive indices with equal `valueOf`. */
  private runs(params: readonly Tensor[], valueOf: (p: Tensor) => number): [number, number, number][] {
    const items = params.map((p) => [this.index(p), valueOf(p)] as const).sort((a, b) => a[0] - b[0]);
    const out: [number, number, number][] = [];
    for (const [i, v] of items) {
      const last = out[out.length - 1];
      if (last && last[0] + last[1] === i && last[2] === v) last[1]++;
      else out.push([i, 1, v]);
    }
    return out;
  }

  private scalars(g: ParamGroup<AdamWOptions>) {
    return { lr: g.lr, beta1: g.betas[0], beta2: g.betas[1], eps: g.eps, weightDecay: g.weightDecay, maximize: g.maximize };
  }

  protected update(param: Tensor, grad: FlatF32, g: ParamGroup<AdamWOptions>): void {
    this.updateGroup([{ param, grad }], g);
  }

  protected override updateGroup(items: readonly { param: Tensor; grad: FlatF32 }[], g: ParamGroup<AdamWOptions>): void {
    const states = items.map(({ param }) => this.advance(param, g));
    const dev = this.deviceMode() ? this.device(items.map((it) => it.param)) : null;
    const slots = items.map(({ param, grad }, j) => {
      const s = states[j]!;
      const maxExpAvgSq = g.amsgrad ? s.maxExpAvgSq!.buffer : null;
      return { n: param.numel, param: flat(param), grad, expAvg: s.expAvg.buffer, expAvgSq: s.expAvgSq.buffer, maxExpAvgSq, step: s.step, stepIndex: dev ? this.index(param) : 0 };
    });
    if (g.foreach) launchAdamWMulti(slots, g.amsgrad, this.scalars(g), dev);
    else for (const sl of slots) launchAdamW(sl.n, sl.param, sl.grad, sl.expAvg, sl.expAvgSq, sl.maxExpAvgSq, { ...this.scalars(g), step: sl.step }, dev && { ...dev, stepIndex: sl.stepIndex });
    if (dev) this.advanceDevice(dev, items.map((it) => it.param));
  }

  /** Bring the device step counts back into the host state (`stateOf(p).step`); one readback,
   *  for checkpoints and logging, never inside a step. */
  async syncSteps(): Promise<void> {
    if (!this.deviceSteps || this.onDevice.size === 0) return;
    const counts = await this.deviceSteps.data();
    for (const p of this.onDevice) this.state.get(p)!.step = counts[this.index(p)]!;
  }

  /** A restored state's step count is the host's until the next device step moves it there. */
  override setStateOf(param: Tensor, s: AdamWState): void {
    super.setStateOf(param, s);
    this.onDevice.delete(param);
  }

  override dispose(): void {
    super.dispose();
    this.onDevice.clear();
    this.deviceSteps?.dispose();
    this.noInf?.dispose();
    this.deviceSteps = this.noInf = null;
  }
}
