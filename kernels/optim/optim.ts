// Optimizer kernels: each parameter update is one fused dispatch that reads the parameter, its
// gradient and its state, and writes the parameter and state back (no temporaries). Learning
// rate and step-dependent scalars (bias corrections) are uniforms, so one pipeline per variant
// serves every step. Also the global-norm gradient clipping kernels: per-tensor partial sums into
// a pooled buffer, one finishing workgroup that writes [norm, clip coefficient], and an in-place
// scale that reads the coefficient from that buffer (no readback anywhere).
//
// Each kernel transcribes PyTorch 1.13's single-tensor (CPU) code path line by line, in the same
// operation order, so float32 results agree with it to rounding; the float64 references the tests
// check against live in test/kernels/optim/optim.test.ts.
import { defineKernel, MAX_WORKGROUPS, rt, wgsl, WGSL_LINEAR_WORKGROUP } from '../define-kernel';

const WG = 256;
const F32_READ = { type: 'f32', access: 'read' } as const;
const F32_RW = { type: 'f32', access: 'rw' } as const;

const MAIN = `@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = linear_workgroup(wid, nwg) * ${WG}u + lid;
  if (i >= p.n) { return; }`;

/** A contiguous f32 run inside a buffer: `n` elements from element `offset`. */
export interface FlatF32 {
  buffer: GPUBuffer;
  offset: number;
}

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
  variants: { momentum: [false, true] },
  bindings: { param: F32_RW, grad: F32_READ, buf: { ...F32_RW, when: (v) => v.momentum } },
  params: {
    n: 'u32', p_off: 'u32', g_off: 'u32', first: 'u32',
    lr: 'f32', weight_decay: 'f32', momentum: 'f32', one_minus_dampening: 'f32',
    nesterov: 'u32', maximize: 'u32',
  },
  code: (v) => wgsl`
${WGSL_LINEAR_WORKGROUP}
${MAIN}
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
export function launchSgd(n: number, param: FlatF32, grad: FlatF32, momentumBuffer: GPUBuffer | null, s: SgdScalars): void {
  const withMomentum = s.momentum !== 0;
  if (withMomentum && !momentumBuffer) throw new Error('launchSgd: momentum needs a momentum buffer');
  sgdKernel.dispatch(
    { momentum: withMomentum },
    { param: param.buffer, grad: grad.buffer, buf: withMomentum ? momentumBuffer! : undefined },
    {
      n, p_off: param.offset, g_off: grad.offset, first: s.first,
      lr: s.lr, weight_decay: s.weightDecay, momentum: s.momentum, one_minus_dampening: 1 - s.dampening,
      nesterov: s.nesterov, maximize: s.maximize,
    },
    Math.ceil(n / WG),
  );
}

// ---- AdamW -------------------------------------------------------------------------------------

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
  variants: { amsgrad: [false, true] },
  bindings: {
    param: F32_RW,
    grad: F32_READ,
    exp_avg: F32_RW,
    exp_avg_sq: F32_RW,
    max_exp_avg_sq: { ...F32_RW, when: (v) => v.amsgrad },
  },
  params: {
    n: 'u32', p_off: 'u32', g_off: 'u32', maximize: 'u32',
    decay: 'f32', beta1: 'f32', one_minus_beta1: 'f32', beta2: 'f32',
    one_minus_beta2: 'f32', neg_step_size: 'f32', bias_correction2_sqrt: 'f32', eps: 'f32',
  },
  code: (v) => wgsl`
${WGSL_LINEAR_WORKGROUP}
${MAIN}
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
  let denom = sqrt(vmax) / p.bias_correction2_sqrt + p.eps;
#else
  let denom = sqrt(v) / p.bias_correction2_sqrt + p.eps;          // (sqrt(v) / sqrt(bc2)).add_(eps)
#endif
  param[p.p_off + i] = w + p.neg_step_size * (m / denom);        // param.addcdiv_(m, denom, value=-lr/bc1)
}`,
});

/** One fused AdamW update; `maxExpAvgSq` is required (and used) when amsgrad is on. */
export function launchAdamW(
  n: number,
  param: FlatF32,
  grad: FlatF32,
  expAvg: GPUBuffer,
  expAvgSq: GPUBuffer,
  maxExpAvgSq: GPUBuffer | null,
  s: AdamWScalars,
): void {
  // Host-side float64 scalars, as PyTorch computes them in Python before the tensor ops.
  const biasCorrection1 = 1 - s.beta1 ** s.step;
  const biasCorrection2 = 1 - s.beta2 ** s.step;
  const stepSize = s.lr / biasCorrection1;
  adamwKernel.dispatch(
    { amsgrad: maxExpAvgSq !== null },
    { param: param.buffer, grad: grad.buffer, exp_avg: expAvg, exp_avg_sq: expAvgSq, max_exp_avg_sq: maxExpAvgSq ?? undefined },
    {
      n, p_off: param.offset, g_off: grad.offset, maximize: s.maximize,
      decay: 1 - s.lr * s.weightDecay, beta1: s.beta1, one_minus_beta1: 1 - s.beta1, beta2: s.beta2,
      one_minus_beta2: 1 - s.beta2, neg_step_size: -stepSize, bias_correction2_sqrt: Math.sqrt(biasCorrection2), eps: s.eps,
    },
    Math.ceil(n / WG),
  );
}

// ---- multi-tensor (foreach) updates ---------------------------------------------------------------
//
// One dispatch updates up to MAX_SLOTS parameters ("slots"), each in its own buffers: WebGPU binds
// a fixed number of buffers per dispatch, so the optimizer's parameters are taken a few at a time,
// as many as the device's storage-buffer limit allows (8 buffers: 2 SGD-with-momentum slots; 16: 5).
// Every slot starts on a workgroup boundary, so a workgroup finds its slot with a few compares on
// the per-slot table in the uniform block and runs exactly the per-element statements of the
// single-tensor kernel above (same operations in the same order, same f32 uniforms: the results
// are bit-identical to launchSgd / launchAdamW, which test/kernels/optim checks). Per-slot values
// (element count, offsets, SGD's first-step flag, AdamW's bias corrections) are uniform arrays.

/** Most parameters one multi-tensor dispatch updates. */
export const MAX_SLOTS = 8;

/** WGSL: the slot `s` of this workgroup and the element `i` within it (returns when past it). */
function slotPrologue(k: number): string {
  return `@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let w = linear_workgroup(wid, nwg);
  var s = 0u;
  for (var k = 1u; k < ${k}u; k++) { if (w >= p_wg_start(k)) { s = k; } }
  let i = (w - p_wg_start(s)) * ${WG}u + lid;
  if (i >= p_n(s)) { return; }`;
}

/** The per-slot branches: `body(j)` is the update written with slot j's bindings. */
function slotSwitch(k: number, body: (j: number) => string): string {
  const cases = Array.from({ length: k }, (_, j) => `    case ${j}u: {${body(j)}\n    }`);
  return `  switch s {\n${cases.join('\n')}\n    default: {}\n  }\n}`;
}

const slotRange = (v: { k: number }) => Array.from({ length: v.k }, (_, j) => j);
const slotBindings = <V extends { k: number }>(names: string[], extra: (name: string, v: V) => boolean = () => true) => {
  const out: Record<string, { type: 'f32'; access: 'read' | 'rw'; when: (v: V) => boolean }> = {};
  for (let j = 0; j < MAX_SLOTS; j++) {
    for (const name of names) {
      out[`${name}${j}`] = { type: 'f32', access: name === 'grad' ? 'read' : 'rw', when: (v: V) => j < v.k && extra(name, v) };
    }
  }
  return out;
};

const SLOT_COUNTS = Array.from({ length: MAX_SLOTS }, (_, j) => j + 1);

const sgdMultiKernel = defineKernel({
  name: 'optim:sgd_multi',
  variants: { momentum: [false, true], k: SLOT_COUNTS },
  bindings: slotBindings<{ momentum: boolean; k: number }>(['param', 'grad', 'buf'], (name, v) => name !== 'buf' || v.momentum),
  params: {
    wg_start: ['u32', MAX_SLOTS], n: ['u32', MAX_SLOTS], p_off: ['u32', MAX_SLOTS], g_off: ['u32', MAX_SLOTS], first: ['u32', MAX_SLOTS],
    lr: 'f32', weight_decay: 'f32', momentum: 'f32', one_minus_dampening: 'f32',
    nesterov: 'u32', maximize: 'u32',
  },
  code: (v) => `
${WGSL_LINEAR_WORKGROUP}
${slotPrologue(v.k)}
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

/** How many slots of `buffersPerSlot` storage buffers fit one dispatch on this device, besides
 *  `shared` buffers bound once per dispatch. */
export function slotsPerDispatch(buffersPerSlot: number, shared = 0): number {
  const limit = rt().device.limits.maxStorageBuffersPerShaderStage - shared;
  return Math.max(1, Math.min(MAX_SLOTS, Math.floor(limit / buffersPerSlot)));
}

/** Split slots into dispatch-sized chunks: at most `k` each, no buffer written by one slot bound
 *  again in the same chunk (WebGPU rejects a writable binding aliased in one dispatch), and the
 *  workgroups of a chunk within the 2-D grid. Empty slots are dropped. */
function chunkSlots<T extends { n: number }>(slots: T[], k: number, buffersOf: (s: T) => { read: GPUBuffer[]; rw: GPUBuffer[] }, perWorkgroup = WG): T[][] {
  const chunks: T[][] = [];
  let cur: T[] = [];
  let read = new Set<GPUBuffer>();
  let rw = new Set<GPUBuffer>();
  let wgs = 0;
  for (const s of slots) {
    if (s.n === 0) continue;
    const b = buffersOf(s);
    const w = Math.ceil(s.n / perWorkgroup);
    const clash = b.rw.some((x) => rw.has(x) || read.has(x)) || b.read.some((x) => rw.has(x));
    if (cur.length && (cur.length >= k || clash || wgs + w > MAX_WORKGROUPS * MAX_WORKGROUPS)) {
      chunks.push(cur);
      cur = [];
      read = new Set();
      rw = new Set();
      wgs = 0;
    }
    cur.push(s);
    for (const x of b.read) read.add(x);
    for (const x of b.rw) rw.add(x);
    wgs += w;
  }
  if (cur.length) chunks.push(cur);
  return chunks;
}

/** Per-slot workgroup starts of a chunk, and the chunk's total workgroups. */
function wgStarts(chunk: { n: number }[]): { starts: number[]; total: number } {
  const starts: number[] = [];
  let total = 0;
  for (const s of chunk) {
    starts.push(total);
    total += Math.ceil(s.n / WG);
  }
  return { starts, total };
}

/** SGD over many parameters in few dispatches, bit-identical to launchSgd on each (the scalars
 *  other than `first`, which is per slot, are the group's). */
export function launchSgdMulti(slots: SgdSlot[], s: Omit<SgdScalars, 'first'>): void {
  const withMomentum = s.momentum !== 0;
  for (const sl of slots) if (withMomentum && !sl.momentumBuffer) throw new Error('launchSgdMulti: momentum needs a momentum buffer per slot');
  const k = slotsPerDispatch(withMomentum ? 3 : 2);
  const chunks = chunkSlots(slots, k, (sl) => ({ read: [sl.grad.buffer], rw: withMomentum ? [sl.param.buffer, sl.momentumBuffer!] : [sl.param.buffer] }));
  for (const chunk of chunks) {
    const { starts, total } = wgStarts(chunk);
    const buffers: Record<string, GPUBuffer> = {};
    chunk.forEach((sl, j) => {
      buffers[`param${j}`] = sl.param.buffer;
      buffers[`grad${j}`] = sl.grad.buffer;
      if (withMomentum) buffers[`buf${j}`] = sl.momentumBuffer!;
    });
    sgdMultiKernel.dispatch(
      { momentum: withMomentum, k: chunk.length },
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
  variants: { amsgrad: [false, true], k: SLOT_COUNTS },
  bindings: slotBindings<{ amsgrad: boolean; k: number }>(['param', 'grad', 'exp_avg', 'exp_avg_sq', 'max_exp_avg_sq'], (name, v) => name !== 'max_exp_avg_sq' || v.amsgrad),
  params: {
    wg_start: ['u32', MAX_SLOTS], n: ['u32', MAX_SLOTS], p_off: ['u32', MAX_SLOTS], g_off: ['u32', MAX_SLOTS],
    neg_step_size: ['f32', MAX_SLOTS], bias_correction2_sqrt: ['f32', MAX_SLOTS],
    maximize: 'u32', decay: 'f32', beta1: 'f32', one_minus_beta1: 'f32', beta2: 'f32', one_minus_beta2: 'f32', eps: 'f32',
  },
  code: (v) => `
${WGSL_LINEAR_WORKGROUP}
${slotPrologue(v.k)}
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
      let denom = sqrt(vmax) / p_bias_correction2_sqrt(s) + p.eps;` : `      let denom = sqrt(v) / p_bias_correction2_sqrt(s) + p.eps;`}
      param${j}[p_p_off(s) + i] = w + p_neg_step_size(s) * (m / denom);`)}`,
});

/** One parameter of a multi-tensor AdamW update. */
export interface AdamWSlot {
  n: number;
  param: FlatF32;
  grad: FlatF32;
  expAvg: GPUBuffer;
  expAvgSq: GPUBuffer;
  maxExpAvgSq: GPUBuffer | null;
  /** This parameter's step count after the update (1 on the first). */
  step: number;
}

/** AdamW over many parameters in few dispatches, bit-identical to launchAdamW on each (the step,
 *  hence the bias corrections, is per slot; everything else is the group's). */
export function launchAdamWMulti(slots: AdamWSlot[], amsgrad: boolean, s: Omit<AdamWScalars, 'step'>): void {
  for (const sl of slots) if (amsgrad && !sl.maxExpAvgSq) throw new Error('launchAdamWMulti: amsgrad needs max_exp_avg_sq per slot');
  const k = slotsPerDispatch(amsgrad ? 5 : 4);
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
    // Host-side float64 scalars, exactly as launchAdamW computes them.
    const stepSizes = chunk.map((sl) => -(s.lr / (1 - s.beta1 ** sl.step)));
    const bc2 = chunk.map((sl) => Math.sqrt(1 - s.beta2 ** sl.step));
    adamwMultiKernel.dispatch(
      { amsgrad, k: chunk.length },
      buffers as never,
      {
        wg_start: starts, n: chunk.map((sl) => sl.n), p_off: chunk.map((sl) => sl.param.offset), g_off: chunk.map((sl) => sl.grad.offset),
        neg_step_size: stepSizes, bias_correction2_sqrt: bc2,
        maximize: s.maximize, decay: 1 - s.lr * s.weightDecay, beta1: s.beta1, one_minus_beta1: 1 - s.beta1, beta2: s.beta2,
        one_minus_beta2: 1 - s.beta2, eps: s.eps,
      },
      total,
    );
  }
}

// ---- gradient clipping -------------------------------------------------------------------------

export type NormKind = 'l2' | 'inf' | 'p';
/** Elements one workgroup of the partial-norm kernel covers. */
export const NORM_CHUNK = WG * 8;

function accumulate(kind: NormKind, acc: string, x: string): string {
  if (kind === 'l2') return `${acc} + ${x} * ${x}`;
  if (kind === 'inf') return `max(${acc}, abs(${x}))`;
  return `${acc} + pow(abs(${x}), p.norm_p)`;
}
function combine(kind: NormKind, a: string, b: string): string {
  return kind === 'inf' ? `max(${a}, ${b})` : `${a} + ${b}`;
}

const NORM_KINDS = ['l2', 'inf', 'p'] as const;

const partialNormKernel = defineKernel({
  name: 'optim:norm_partial',
  variants: { kind: NORM_KINDS },
  bindings: { grad: F32_READ, partials: F32_RW },
  params: { n: 'u32', g_off: 'u32', part_off: 'u32', norm_p: 'f32' },
  code: ({ kind }) => /* wgsl */ `
var<workgroup> sh: array<f32, ${WG}>;
${WGSL_LINEAR_WORKGROUP}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let w = linear_workgroup(wid, nwg);
  let base = w * ${NORM_CHUNK}u;
  var acc = 0.0;
  for (var k = 0u; k < ${NORM_CHUNK / WG}u; k++) {
    let i = base + k * ${WG}u + lid;
    if (i < p.n) { let x = grad[p.g_off + i]; acc = ${accumulate(kind, 'acc', 'x')}; }
  }
  sh[lid] = acc;
  workgroupBarrier();
  for (var s = ${WG / 2}u; s > 0u; s = s >> 1u) {
    if (lid < s) { sh[lid] = ${combine(kind, 'sh[lid]', 'sh[lid + s]')}; }
    workgroupBarrier();
  }
  if (lid == 0u && base < p.n) { partials[p.part_off + w] = sh[0]; }
}`,
});

// The partial norms of up to MAX_SLOTS gradients per dispatch: a workgroup's slot is uniform (it
// depends on the workgroup id only), so the shared-memory reduction and its barriers stay legal;
// each workgroup reduces the same NORM_CHUNK elements in the same order as partialNormKernel and
// writes its partial at the same place, so the norm is bit-identical.
const partialNormMultiKernel = defineKernel({
  name: 'optim:norm_partial_multi',
  variants: { kind: NORM_KINDS, k: SLOT_COUNTS },
  bindings: { ...slotBindings<{ kind: NormKind; k: number }>(['grad']), partials: F32_RW },
  params: { wg_start: ['u32', MAX_SLOTS], n: ['u32', MAX_SLOTS], g_off: ['u32', MAX_SLOTS], part_base: 'u32', norm_p: 'f32' },
  code: ({ kind, k }) => /* wgsl */ `
var<workgroup> sh: array<f32, ${WG}>;
${WGSL_LINEAR_WORKGROUP}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let w = linear_workgroup(wid, nwg);
  var s = 0u;
  for (var j = 1u; j < ${k}u; j++) { if (w >= p_wg_start(j)) { s = j; } }
  let base = (w - p_wg_start(s)) * ${NORM_CHUNK}u;
  let n = p_n(s);
  let off = p_g_off(s);
  var acc = 0.0;
  for (var c = 0u; c < ${NORM_CHUNK / WG}u; c++) {
    let i = base + c * ${WG}u + lid;
    if (i < n) {
      var x = 0.0;
      switch s {
${Array.from({ length: k }, (_, j) => `        case ${j}u: { x = grad${j}[off + i]; }`).join('\n')}
        default: {}
      }
      acc = ${accumulate(kind, 'acc', 'x')};
    }
  }
  sh[lid] = acc;
  workgroupBarrier();
  for (var r = ${WG / 2}u; r > 0u; r = r >> 1u) {
    if (lid < r) { sh[lid] = ${combine(kind, 'sh[lid]', 'sh[lid + r]')}; }
    workgroupBarrier();
  }
  if (lid == 0u) { partials[p.part_base + w] = sh[0]; }
}`,
});

const NORM_FINISH: Record<NormKind, string> = { l2: 'sqrt(total)', inf: 'total', p: 'pow(total, 1.0 / p.norm_p)' };

const finishNormKernel = defineKernel({
  name: 'optim:norm_finish',
  variants: { kind: NORM_KINDS },
  bindings: { partials: F32_READ, out: F32_RW },
  params: { count: 'u32', out_off: 'u32', norm_p: 'f32', max_norm: 'f32' },
  code: ({ kind }) => /* wgsl */ `
var<workgroup> sh: array<f32, ${WG}>;
@compute @workgroup_size(${WG})
fn main(@builtin(local_invocation_index) lid: u32) {
  var acc = 0.0;
  for (var i = lid; i < p.count; i += ${WG}u) { acc = ${combine(kind, 'acc', 'partials[i]')}; }
  sh[lid] = acc;
  workgroupBarrier();
  for (var s = ${WG / 2}u; s > 0u; s = s >> 1u) {
    if (lid < s) { sh[lid] = ${combine(kind, 'sh[lid]', 'sh[lid + s]')}; }
    workgroupBarrier();
  }
  if (lid == 0u) {
    let total = sh[0];
    let norm = ${NORM_FINISH[kind]};
    out[p.out_off] = norm;
    out[p.out_off + 1u] = min(1.0, p.max_norm / (norm + 1e-6));   // clamp(max_norm / (norm + 1e-6), max=1)
  }
}`,
});

/**
 * Record the global norm of the given gradient runs into `out[outOffset]` and the clip coefficient
 * min(1, maxNorm / (norm + 1e-6)) into `out[outOffset + 1]`. `normType` is 2, Infinity or any p > 0.
 */
export function launchGlobalNorm(grads: { n: number; run: FlatF32 }[], normType: number, maxNorm: number, out: FlatF32, multiTensor = true): void {
  if (!(normType > 0)) throw new Error(`gradient norm type must be > 0 or Infinity, got ${normType}`);
  const kind: NormKind = normType === 2 ? 'l2' : normType === Infinity ? 'inf' : 'p';
  const chunks = grads.map((g) => Math.ceil(g.n / NORM_CHUNK));
  const total = chunks.reduce((a, b) => a + b, 0);
  const partials = rt().pool.acquire(Math.max(1, total) * 4, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST, 'optim.norm_partials');
  if (multiTensor) {
    // A few gradients per dispatch; the partials land where the per-gradient loop puts them.
    const k = slotsPerDispatch(1, 1);
    let at = 0;
    for (const chunk of chunkSlots(grads, k, (g) => ({ read: [g.run.buffer], rw: [] }), NORM_CHUNK)) {
      const starts: number[] = [];
      let total = 0;
      for (const g of chunk) {
        starts.push(total);
        total += Math.ceil(g.n / NORM_CHUNK);
      }
      const buffers: Record<string, GPUBuffer> = { partials };
      chunk.forEach((g, j) => (buffers[`grad${j}`] = g.run.buffer));
      partialNormMultiKernel.dispatch(
        { kind, k: chunk.length },
        buffers as never,
        { wg_start: starts, n: chunk.map((g) => g.n), g_off: chunk.map((g) => g.run.offset), part_base: at, norm_p: kind === 'p' ? normType : 0 },
        total,
      );
      at += total;
    }
  } else {
    let at = 0;
    grads.forEach((g, j) => {
      if (g.n === 0) return;
      const p = { n: g.n, g_off: g.run.offset, part_off: at, norm_p: kind === 'p' ? normType : 0 };
      partialNormKernel.dispatch({ kind }, { grad: g.run.buffer, partials }, p, chunks[j]!);
      at += chunks[j]!;
    });
  }
  if (total === 0) rt().clearBuffer(partials, 0, 4);
  const p = { count: Math.max(1, total), out_off: out.offset, norm_p: kind === 'p' ? normType : 0, max_norm: maxNorm };
  finishNormKernel.dispatch({ kind }, { partials, out: out.buffer }, p, 1);
  rt().pool.release(partials);
}

const scaleKernel = defineKernel({
  name: 'optim:scale_by_buffer',
  bindings: { x: F32_RW, factor: F32_READ },
  params: { n: 'u32', x_off: 'u32', factor_idx: 'u32' },
  code: () => /* wgsl */ `
${WGSL_LINEAR_WORKGROUP}
${MAIN}
  x[p.x_off + i] = x[p.x_off + i] * factor[p.factor_idx];
}`,
});

const scaleMultiKernel = defineKernel({
  name: 'optim:scale_by_buffer_multi',
  variants: { k: SLOT_COUNTS },
  bindings: { ...slotBindings<{ k: number }>(['x']), factor: F32_READ },
  params: { wg_start: ['u32', MAX_SLOTS], n: ['u32', MAX_SLOTS], x_off: ['u32', MAX_SLOTS], factor_idx: 'u32' },
  code: ({ k }) => `
${WGSL_LINEAR_WORKGROUP}
${slotPrologue(k)}
${slotSwitch(k, (j) => `
      x${j}[p_x_off(s) + i] = x${j}[p_x_off(s) + i] * factor[p.factor_idx];`)}`,
});

/** launchScaleByBuffer over many runs, a few per dispatch (the same multiply per element). */
export function launchScaleByBufferMulti(runs: { n: number; run: FlatF32 }[], factor: GPUBuffer, factorIndex: number): void {
  const k = slotsPerDispatch(1, 1);
  for (const chunk of chunkSlots(runs, k, (r) => ({ read: [], rw: [r.run.buffer] }))) {
    const { starts, total } = wgStarts(chunk);
    const buffers: Record<string, GPUBuffer> = { factor };
    chunk.forEach((r, j) => (buffers[`x${j}`] = r.run.buffer));
    scaleMultiKernel.dispatch(
      { k: chunk.length },
      buffers as never,
      { wg_start: starts, n: chunk.map((r) => r.n), x_off: chunk.map((r) => r.run.offset), factor_idx: factorIndex },
      total,
    );
  }
}

/** x[0..n) *= factor[factorIndex], in place; the factor is read on the GPU. */
export function launchScaleByBuffer(n: number, x: FlatF32, factor: GPUBuffer, factorIndex: number): void {
  scaleKernel.dispatch({}, { x: x.buffer, factor }, { n, x_off: x.offset, factor_idx: factorIndex }, Math.ceil(n / WG));
}

const clampKernel = defineKernel({
  name: 'optim:clamp_inplace',
  bindings: { x: F32_RW },
  params: { n: 'u32', x_off: 'u32', lo: 'f32', hi: 'f32' },
  code: () => /* wgsl */ `
${WGSL_LINEAR_WORKGROUP}
${MAIN}
  x[p.x_off + i] = clamp(x[p.x_off + i], p.lo, p.hi);
}`,
});

/** x[0..n) = clamp(x, lo, hi), in place. */
export function launchClampInPlace(n: number, x: FlatF32, lo: number, hi: number): void {
  clampKernel.dispatch({}, { x: x.buffer }, { n, x_off: x.offset, lo, hi }, Math.ceil(n / WG));
}
