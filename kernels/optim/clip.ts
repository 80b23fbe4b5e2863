// Global-norm gradient clipping on the GPU: per-tensor partial sums into a pooled buffer (several
// tensors per dispatch where the storage-buffer limit allows), one finishing workgroup that writes
// [norm, clip coefficient], and an in-place scale that reads the coefficient from that buffer (no
// readback anywhere). Summation order follows PyTorch's clip_grad_norm_; the float64 references
// the tests check against live in test/kernels/optim/optim.test.ts.
import { defineKernel, rt, WGSL_LINEAR_WORKGROUP } from '../define-kernel';
import { F32_READ, F32_RW, MAIN, MAX_SLOTS, SLOT_COUNTS, WG, chunkSlots, slotBindings, slotPrologue, slotSwitch, slotsPerDispatch, wgStarts, type FlatF32 } from './slots';

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
