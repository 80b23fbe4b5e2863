// Optimizer kernels: each parameter update is one fused dispatch that reads the parameter, its
// gradient and its state, and writes the parameter and state back (no temporaries). Learning
// rate and step-dependent scalars (bias corrections) are uniforms, so one pipeline per variant
// serves every step. The multi-tensor (foreach) variants update up to MAX_SLOTS parameters per
// dispatch (slots.ts); gradient clipping is clip.ts.
//
// Each kernel transcribes PyTorch 1.13's single-tensor (CPU) code path line by line, in the same
// operation order, so float32 results agree with it to rounding; the float64 references the tests
// check against live in test/kernels/optim/optim.test.ts.
//
// Every kernel has a `skip` variant for mixed precision (engine/optim/grad-scaler.ts): it also
// binds the GradScaler's found-inf flag and leaves parameter and state untouched when it is set, so
// a step with inf/NaN gradients is skipped without reading the flag back. AdamW's skip variants
// also take the step count from a u32 buffer on the device (`launchAdvanceSteps` advances it after
// the update unless the flag is set), so a skipped step leaves the bias corrections unchanged, as
// torch's GradScaler.step, which does not call optimizer.step on inf/NaN.
import { defineKernel, wgsl, WGSL_LINEAR_WORKGROUP } from '../define-kernel';
import { F32_READ, F32_RW, MAIN, MAX_SLOTS, SLOT_COUNTS, WG, chunkSlots, slotBindings, slotPrologue, slotSwitch, slotsPerDispatch, wgStarts, type FlatF32 } from './slots';

export type { FlatF32 } from './slots';

/** The found-inf flag binding of the skip variants (a u32, non-zero: skip). A skipped first SGD
 *  step zeroes the momentum buffer, so the next step starts from buf = 0 (torch's first step sets
 *  buf = d_p: the same with dampening 0, Detectron2's). */
const FOUND_INF = { type: 'u32', access: 'read', when: (v: { skip: boolean }) => v.skip } as const;
const SKIP = (v: { skip: boolean }) => (v.skip ? '  if (found_inf[0] != 0u) { return; }' : '');

// ---- SGD ---------------------------------------------------------------------------------------

export interface SgdScalars {
  lr: number;
  weightDecay: number;
  momentum: number;
  dampening: number;
  nesterov: boolean;
  maximize: boolean;
  /** First step of this parameter: the momentum buffer is set to d_p (PyTorch's clone). */
  first: boolean;
}

const sgdKernel = defineKernel({
  name: 'optim:sgd',
  variants: { momentum: [false, true], skip: [false, true] },
  bindings: { param: F32_RW, grad: F32_READ, buf: { ...F32_RW, when: (v) => v.momentum }, found_inf: FOUND_INF },
  params: {
    n: 'u32', p_off: 'u32', g_off: 'u32', first: 'u32',
    lr: 'f32', weight_decay: 'f32', momentum: 'f32', one_minus_dampening: 'f32',
    nesterov: 'u32', maximize: 'u32',
  },
  code: (v) => wgsl`
${WGSL_LINEAR_WORKGROUP}
${MAIN}
${v.momentum && v.skip ? '  if (found_inf[0] != 0u) { if (p.first != 0u) { buf[i] = 0.0; } return; }' : SKIP(v)}
  let w = param[p.p_off + i];
  var d = grad[p.g_off + i];
  if (p.maximize != 0u) { d = -d; }
  if (p.weight_decay != 0.0) { d = d + p.weight_decay * w; }           // d_p.add(param, alpha=wd)
#if ${v.momentum}
  var b = d;                                                            // first step: buf = clone(d_p)
  if (p.first == 0u) { b = buf[i] * p.momentum + p.one_minus_dampening * d; } // buf.mul_(m).add_(d_p, alpha=1-damp)
  buf[i] = b;
  if (p.nesterov != 0u) { d = d + p.momentum * b; } else { d = b; }
#endif
  param[p.p_off + i] = w + (-p.lr) * d;                                  // param.add_(d_p, alpha=-lr)
}`,
});

/** One fused SGD update of `n` elements; `momentumBuffer` is required when momentum != 0. */
export function launchSgd(n: number, param: FlatF32, grad: FlatF32, momentumBuffer: GPUBuffer | null, s: SgdScalars, foundInf: GPUBuffer | null = null): void {
  const withMomentum = s.momentum !== 0;
  if (withMomentum && !momentumBuffer) throw new Error('launchSgd: momentum needs a momentum buffer');
  sgdKernel.dispatch(
    { momentum: withMomentum, skip: !!foundInf },
    { param: param.buffer, grad: grad.buffer, buf: withMomentum ? momentumBuffer! : undefined, found_inf: foundInf ?? undefined },
    {
      n, p_off: param.offset, g_off: grad.offset, first: s.first,
      lr: s.lr, weight_decay: s.weightDecay, momentum: s.momentum, one_minus_dampening: 1 - s.dampening,
      nesterov: s.nesterov, maximize: s.maximize,
    },
    Math.ceil(n / WG),
  );
}

// ---- AdamW -------------------------------------------------------------------------------------

/** The step count on the device (AdamW's skip variants): the update uses steps[index] + 1, and
 *  launchAdvanceSteps stores it afterwards unless found_inf is set. */
export interface DeviceSteps {
  foundInf: GPUBuffer;
  /** u32 per parameter: its count of applied (not skipped) updates. */
  steps: GPUBuffer;
}
const STEPS = { type: 'u32', access: 'read', when: (v: { skip: boolean }) => v.skip } as const;

/** WGSL: 1 - β^t from ln β and t without cancellation for β^t near 1 (torch computes it on the
 *  host in float64; here the count is on the device, as torch's capturable Adam, in f32). Below
 *  |x| = 0.5 a 7-term series of -expm1(x) (truncation < 1e-7 relative), else 1 - exp(x). */
const ONE_MINUS_POW = `
fn one_minus_pow(ln_beta: f32, t: f32) -> f32 {
  let x = max(ln_beta * t, -100.0);
  if (x < -0.5) { return 1.0 - exp(x); }
  return -x * (1.0 + x / 2.0 * (1.0 + x / 3.0 * (1.0 + x / 4.0 * (1.0 + x / 5.0 * (1.0 + x / 6.0 * (1.0 + x / 7.0))))));
}`;
/** ln β for the shader (β = 0: a large negative number, so β^t = 0). */
const lnBeta = (b: number) => (b > 0 ? Math.log(b) : -1e30);
/** WGSL statements giving neg_step_size and bias_correction2_sqrt: from the uniforms, or (skip
 *  variants) from the device step count `count`. */
const STEP_SCALARS = (skip: boolean, count: string, negStep: string, bc2: string) =>
  skip
    ? `  let t = f32(${count} + 1u);
  let neg_step_size = -p.lr / one_minus_pow(p.ln_beta1, t);
  let bias_correction2_sqrt = sqrt(one_minus_pow(p.ln_beta2, t));`
    : `  let neg_step_size = ${negStep};
  let bias_correction2_sqrt = ${bc2};`;

export interface AdamWScalars {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** The parameter's step count after this update (1 on the first). */
  step: number;
  maximize: boolean;
}

const adamwKernel = defineKernel({
  name: 'optim:adamw',
  variants: { amsgrad: [false, true], skip: [false, true] },
  bindings: {
    param: F32_RW,
    grad: F32_READ,
    exp_avg: F32_RW,
    exp_avg_sq: F32_RW,
    max_exp_avg_sq: { ...F32_RW, when: (v) => v.amsgrad },
    found_inf: FOUND_INF,
    steps: STEPS,
  },
  params: {
    n: 'u32', p_off: 'u32', g_off: 'u32', maximize: 'u32',
    decay: 'f32', beta1: 'f32', one_minus_beta1: 'f32', beta2: 'f32',
    one_minus_beta2: 'f32', neg_step_size: 'f32', bias_correction2_sqrt: 'f32', eps: 'f32',
    step_index: 'u32', lr: 'f32', ln_beta1: 'f32', ln_beta2: 'f32',
  },
  code: (v) => wgsl`
${WGSL_LINEAR_WORKGROUP}
${v.skip ? ONE_MINUS_POW : ''}
${MAIN}
${SKIP(v)}
${STEP_SCALARS(v.skip, 'steps[p.step_index]', 'p.neg_step_size', 'p.bias_correction2_sqrt')}
  var g = grad[p.g_off + i];
  if (p.maximize != 0u) { g = -g; }
  let w = param[p.p_off + i] * p.decay;                          // param.mul_(1 - lr * wd)
  let m = exp_avg[i] * p.beta1 + p.one_minus_beta1 * g;          // exp_avg.mul_(b1).add_(g, alpha=1-b1)
  let v = exp_avg_sq[i] * p.beta2 + p.one_minus_beta2 * g * g;   // exp_avg_sq.mul_(b2).addcmul_(g, g, value=1-b2)
  exp_avg[i] = m;
  exp_avg_sq[i] = v;
#if ${v.amsgrad}
  let vmax = max(max_exp_avg_sq[i], v);                          // torch.maximum(max_exp_avg_sq, exp_avg_sq)
  max_exp_avg_sq[i] = vmax;
  let denom = sqrt(vmax) / bias_correction2_sqrt + p.eps;
#else
  let denom = sqrt(v) / bias_correction2_sqrt + p.eps;            // (sqrt(v) / sqrt(bc2)).add_(eps)
#endif
  param[p.p_off + i] = w + neg_step_size * (m / denom);          // param.addcdiv_(m, denom, value=-lr/bc1)
}`,
});

/** One fused AdamW update; `maxExpAvgSq` is required (and used) when amsgrad is on. With `dev`
 *  (mixed precision) the update is skipped when the flag is set and the step count is
 *  dev.steps[stepIndex] + 1 (`s.step` unused); follow it with launchAdvanceSteps. */
export function launchAdamW(
  n: number,
  param: FlatF32,
  grad: FlatF32,
  expAvg: GPUBuffer,
  expAvgSq: GPUBuffer,
  maxExpAvgSq: GPUBuffer | null,
  s: AdamWScalars,
  dev: (DeviceSteps & { stepIndex: number }) | null = null,
): void {
  // Host-side float64 scalars, as PyTorch computes them in Python before the tensor ops.
  const biasCorrection1 = 1 - s.beta1 ** s.step;
  const biasCorrection2 = 1 - s.beta2 ** s.step;
  const stepSize = s.lr / biasCorrection1;
  adamwKernel.dispatch(
    { amsgrad: maxExpAvgSq !== null, skip: !!dev },
    { param: param.buffer, grad: grad.buffer, exp_avg: expAvg, exp_avg_sq: expAvgSq, max_exp_avg_sq: maxExpAvgSq ?? undefined, found_inf: dev?.foundInf, steps: dev?.steps },
    {
      n, p_off: param.offset, g_off: grad.offset, maximize: s.maximize,
      decay: 1 - s.lr * s.weightDecay, beta1: s.beta1, one_minus_beta1: 1 - s.beta1, beta2: s.beta2,
      one_minus_beta2: 1 - s.beta2, neg_step_size: -stepSize, bias_correction2_sqrt: Math.sqrt(biasCorrection2), eps: s.eps,
      step_index: dev?.stepIndex ?? 0, lr: s.lr, ln_beta1: lnBeta(s.beta1), ln_beta2: lnBeta(s.beta2),
    },
    Math.ceil(n / WG),
  );
}

// ---- multi-tensor (foreach) updates: one dispatch per chunk of slots (slots.ts) -------------------

/** The multi-tensor SGD skip: a skipped first step zeroes each slot's momentum buffer. */
function skipMultiSgd(k: number): string {
  const cases = Array.from({ length: k }, (_, j) => `      case ${j}u: { if (p_first(s) != 0u) { buf${j}[i] = 0.0; } }`);
  return `  if (found_inf[0] != 0u) {\n    switch s {\n${cases.join('\n')}\n      default: {}\n    }\n    return;\n  }`;
}

const sgdMultiKernel = defineKernel({
  name: 'optim:sgd_multi',
  variants: { momentum: [false, true], k: SLOT_COUNTS, skip: [false, true] },
  bindings: { ...slotBindings<{ momentum: boolean; k: number; skip: boolean }>(['param', 'grad', 'buf'], (name, v) => name !== 'buf' || v.momentum), found_inf: FOUND_INF },
  params: {
    wg_start: ['u32', MAX_SLOTS], n: ['u32', MAX_SLOTS], p_off: ['u32', MAX_SLOTS], g_off: ['u32', MAX_SLOTS], first: ['u32', MAX_SLOTS],
    lr: 'f32', weight_decay: 'f32', momentum: 'f32', one_minus_dampening: 'f32',
    nesterov: 'u32', maximize: 'u32',
  },
  code: (v) => `
${WGSL_LINEAR_WORKGROUP}
${slotPrologue(v.k)}
${v.momentum && v.skip ? skipMultiSgd(v.k) : SKIP(v)}
${slotSwitch(v.k, (j) => `
      let w = param${j}[p_p_off(s) + i];
      var d = grad${j}[p_g_off(s) + i];
      if (p.maximize != 0u) { d = -d; }
      if (p.weight_decay != 0.0) { d = d + p.weight_decay * w; }
${v.momentum ? `      var b = d;
      if (p_first(s) == 0u) { b = buf${j}[i] * p.momentum + p.one_minus_dampening * d; }
      buf${j}[i] = b;
      if (p.nesterov != 0u) { d = d + p.momentum * b; } else { d = b; }` : ''}
      param${j}[p_p_off(s) + i] = w + (-p.lr) * d;`)}`,
});

/** One parameter of a multi-tensor SGD update. */
export interface SgdSlot {
  n: number;
  param: FlatF32;
  grad: FlatF32;
  /** The momentum buffer (element 0 is the parameter's first), or null without momentum. */
  momentumBuffer: GPUBuffer | null;
  /** First step of this parameter (its momentum buffer is set to d_p). */
  first: boolean;
}

/** SGD over many parameters in few dispatches, bit-identical to launchSgd on each (the scalars
 *  other than `first`, which is per slot, are the group's). */
export function launchSgdMulti(slots: SgdSlot[], s: Omit<SgdScalars, 'first'>, foundInf: GPUBuffer | null = null): void {
  const withMomentum = s.momentum !== 0;
  for (const sl of slots) if (withMomentum && !sl.momentumBuffer) throw new Error('launchSgdMulti: momentum needs a momentum buffer per slot');
  const k = slotsPerDispatch(withMomentum ? 3 : 2, foundInf ? 1 : 0);
  const chunks = chunkSlots(slots, k, (sl) => ({ read: [sl.grad.buffer], rw: withMomentum ? [sl.param.buffer, sl.momentumBuffer!] : [sl.param.buffer] }));
  for (const chunk of chunks) {
    const { starts, total } = wgStarts(chunk);
    const buffers: Record<string, GPUBuffer> = {};
    chunk.forEach((sl, j) => {
      buffers[`param${j}`] = sl.param.buffer;
      buffers[`grad${j}`] = sl.grad.buffer;
      if (withMomentum) buffers[`buf${j}`] = sl.momentumBuffer!;
    });
    if (foundInf) buffers.found_inf = foundInf;
    sgdMultiKernel.dispatch(
      { momentum: withMomentum, k: chunk.length, skip: !!foundInf },
      buffers as never,
      {
        wg_start: starts, n: chunk.map((sl) => sl.n), p_off: chunk.map((sl) => sl.param.offset), g_off: chunk.map((sl) => sl.grad.offset),
        first: chunk.map((sl) => (sl.first ? 1 : 0)),
        lr: s.lr, weight_decay: s.weightDecay, momentum: s.momentum, one_minus_dampening: 1 - s.dampening,
        nesterov: s.nesterov, maximize: s.maximize,
      },
      total,
    );
  }
}

const adamwMultiKernel = defineKernel({
  name: 'optim:adamw_multi',
  variants: { amsgrad: [false, true], k: SLOT_COUNTS, skip: [false, true] },
  bindings: {
    ...slotBindings<{ amsgrad: boolean; k: number; skip: boolean }>(['param', 'grad', 'exp_avg', 'exp_avg_sq', 'max_exp_avg_sq'], (name, v) => name !== 'max_exp_avg_sq' || v.amsgrad),
    found_inf: FOUND_INF,
    steps: STEPS,
  },
  params: {
    wg_start: ['u32', MAX_SLOTS], n: ['u32', MAX_SLOTS], p_off: ['u32', MAX_SLOTS], g_off: ['u32', MAX_SLOTS],
    neg_step_size: ['f32', MAX_SLOTS], bias_correction2_sqrt: ['f32', MAX_SLOTS], step_index: ['u32', MAX_SLOTS],
    maximize: 'u32', decay: 'f32', beta1: 'f32', one_minus_beta1: 'f32', beta2: 'f32', one_minus_beta2: 'f32', eps: 'f32',
    lr: 'f32', ln_beta1: 'f32', ln_beta2: 'f32',
  },
  code: (v) => `
${WGSL_LINEAR_WORKGROUP}
${v.skip ? ONE_MINUS_POW : ''}
${slotPrologue(v.k)}
${SKIP(v)}
${STEP_SCALARS(v.skip, 'steps[p_step_index(s)]', 'p_neg_step_size(s)', 'p_bias_correction2_sqrt(s)')}
${slotSwitch(v.k, (j) => `
      var g = grad${j}[p_g_off(s) + i];
      if (p.maximize != 0u) { g = -g; }
      let w = param${j}[p_p_off(s) + i] * p.decay;
      let m = exp_avg${j}[i] * p.beta1 + p.one_minus_beta1 * g;
      let v = exp_avg_sq${j}[i] * p.beta2 + p.one_minus_beta2 * g * g;
      exp_avg${j}[i] = m;
      exp_avg_sq${j}[i] = v;
${v.amsgrad ? `      let vmax = max(max_exp_avg_sq${j}[i], v);
      max_exp_avg_sq${j}[i] = vmax;
      let denom = sqrt(vmax) / bias_correction2_sqrt + p.eps;` : `      let denom = sqrt(v) / bias_correction2_sqrt + p.eps;`}
      param${j}[p_p_off(s) + i] = w + neg_step_size * (m / denom);`)}`,
});

/** One parameter of a multi-tensor AdamW update. */
export interface AdamWSlot {
  n: number;
  param: FlatF32;
  grad: FlatF32;
  expAvg: GPUBuffer;
  expAvgSq: GPUBuffer;
  maxExpAvgSq: GPUBuffer | null;
  /** This parameter's step count after the update (1 on the first); unused with device steps. */
  step: number;
  /** Its entry in the device step counts (with device steps). */
  stepIndex?: number;
}

/** AdamW over many parameters in few dispatches, bit-identical to launchAdamW on each (the step,
 *  hence the bias corrections, is per slot; everything else is the group's). */
export function launchAdamWMulti(slots: AdamWSlot[], amsgrad: boolean, s: Omit<AdamWScalars, 'step'>, dev: DeviceSteps | null = null): void {
  for (const sl of slots) if (amsgrad && !sl.maxExpAvgSq) throw new Error('launchAdamWMulti: amsgrad needs max_exp_avg_sq per slot');
  const k = slotsPerDispatch(amsgrad ? 5 : 4, dev ? 2 : 0);
  const chunks = chunkSlots(slots, k, (sl) => ({
    read: [sl.grad.buffer],
    rw: [sl.param.buffer, sl.expAvg, sl.expAvgSq, ...(amsgrad ? [sl.maxExpAvgSq!] : [])],
  }));
  for (const chunk of chunks) {
    const { starts, total } = wgStarts(chunk);
    const buffers: Record<string, GPUBuffer> = {};
    chunk.forEach((sl, j) => {
      buffers[`param${j}`] = sl.param.buffer;
      buffers[`grad${j}`] = sl.grad.buffer;
      buffers[`exp_avg${j}`] = sl.expAvg;
      buffers[`exp_avg_sq${j}`] = sl.expAvgSq;
      if (amsgrad) buffers[`max_exp_avg_sq${j}`] = sl.maxExpAvgSq!;
    });
    if (dev) {
      buffers.found_inf = dev.foundInf;
      buffers.steps = dev.steps;
    }
    // Host-side float64 scalars, exactly as launchAdamW computes them.
    const stepSizes = chunk.map((sl) => -(s.lr / (1 - s.beta1 ** sl.step)));
    const bc2 = chunk.map((sl) => Math.sqrt(1 - s.beta2 ** sl.step));
    adamwMultiKernel.dispatch(
      { amsgrad, k: chunk.length, skip: !!dev },
      buffers as never,
      {
        wg_start: starts, n: chunk.map((sl) => sl.n), p_off: chunk.map((sl) => sl.param.offset), g_off: chunk.map((sl) => sl.grad.offset),
        neg_step_size: stepSizes, bias_correction2_sqrt: bc2, step_index: chunk.map((sl) => sl.stepIndex ?? 0),
        maximize: s.maximize, decay: 1 - s.lr * s.weightDecay, beta1: s.beta1, one_minus_beta1: 1 - s.beta1, beta2: s.beta2,
        one_minus_beta2: 1 - s.beta2, eps: s.eps, lr: s.lr, ln_beta1: lnBeta(s.beta1), ln_beta2: lnBeta(s.beta2),
      },
      total,
    );
  }
}

// ---- device step counts (AdamW under a GradScaler) ----------------------------------------------

const stepsKernel = defineKernel({
  name: 'optim:steps',
  variants: { set: [false, true] },
  bindings: { steps: { type: 'u32', access: 'rw' }, found_inf: { type: 'u32', access: 'read', when: (v) => !v.set } },
  params: { start: 'u32', n: 'u32', value: 'u32' },
  code: (v) => `
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  if (gid.x >= p.n) { return; }
  ${v.set ? 'steps[p.start + gid.x] = p.value;' : 'if (found_inf[0] == 0u) { steps[p.start + gid.x] = steps[p.start + gid.x] + 1u; }'}
}`,
});

/** After the updates of a step: steps[start .. start + n) += 1 unless the found-inf flag is set. */
export function launchAdvanceSteps(dev: DeviceSteps, start: number, n: number): void {
  stepsKernel.dispatch({ set: false }, { steps: dev.steps, found_inf: dev.foundInf }, { start, n, value: 0 }, Math.ceil(n / 64));
}

/** steps[start .. start + n) = value (a host count moved to the device; a dispatch, so it is
 *  ordered with the updates recorded around it). */
export function launchSetSteps(steps: GPUBuffer, start: number, n: number, value: number): void {
  stepsKernel.dispatch({ set: true }, { steps }, { start, n, value }, Math.ceil(n / 64));
}
