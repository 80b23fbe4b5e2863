// Row softmax / log-softmax over contiguous f32 rows [rows, len] (the last dim; engine/ops/softmax.ts
// brings any dim to this form). One 256-thread workgroup per row, three sweeps over the row: the
// maximum (subtracted so exp never overflows), the sum of exp(x - max), then the write. The
// backward kernel takes the output y and its gradient g:
//   softmax:     gx = y * (g - sum(g * y))
//   log-softmax: gx = g - exp(y) * sum(g)
// Over one storage binding the launchers run blocks of rows through binding windows (a row itself
// over the limit is the op's business: engine/ops/softmax.ts composes it from split ops).
// The readable reference (the same math from elementwise and reduce ops) is softmaxReference in
// engine/ops/softmax.ts; the tests check this kernel against it and against float64.
import { defineKernel, wgsl, WGSL_LINEAR_WORKGROUP } from '../define-kernel';
import { overBindingLimit, rowBlocks, windowRange } from '../large';

const WG = 256;

export type SoftmaxKind = 'softmax' | 'logSoftmax';

const WGSL_ROW_REDUCE = /* wgsl */ `
var<workgroup> sh: array<f32, ${WG}>;
// Tree-combine sh[] into sh[0] (all threads call it; ends with a barrier so sh[0] is readable).
fn tree_sum(lid: u32) {
  for (var s = ${WG / 2}u; s > 0u; s >>= 1u) {
    if (lid < s) { sh[lid] = sh[lid] + sh[lid + s]; }
    workgroupBarrier();
  }
}
fn tree_max(lid: u32) {
  for (var s = ${WG / 2}u; s > 0u; s >>= 1u) {
    if (lid < s) { sh[lid] = max(sh[lid], sh[lid + s]); }
    workgroupBarrier();
  }
}`;

const forward = defineKernel({
  name: 'softmax_fwd',
  variants: { kind: ['softmax', 'logSoftmax'] },
  bindings: { x: { type: 'f32', access: 'read' }, y: { type: 'f32', access: 'rw' } },
  params: { rows: 'u32', len: 'u32', x_off: 'u32', y_off: 'u32' },
  code: (v) => wgsl`
${WGSL_LINEAR_WORKGROUP}
${WGSL_ROW_REDUCE}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let row = linear_workgroup(wid, nwg);
  if (row >= p.rows) { return; }
  let base = p.x_off + row * p.len;
  var m = -3.402823466e+38;
  for (var j = lid; j < p.len; j += ${WG}u) { m = max(m, x[base + j]); }
  sh[lid] = m;
  workgroupBarrier();
  tree_max(lid);
  let row_max = sh[0];
  workgroupBarrier();
  var s = 0.0;
  for (var j = lid; j < p.len; j += ${WG}u) { s += exp(x[base + j] - row_max); }
  sh[lid] = s;
  workgroupBarrier();
  tree_sum(lid);
  let total = sh[0];
#if ${v.kind === 'softmax'}
  for (var j = lid; j < p.len; j += ${WG}u) { y[p.y_off + row * p.len + j] = exp(x[base + j] - row_max) / total; }
#else
  for (var j = lid; j < p.len; j += ${WG}u) { y[p.y_off + row * p.len + j] = x[base + j] - row_max - log(total); }
#endif
}`,
});

const backward = defineKernel({
  name: 'softmax_bwd',
  variants: { kind: ['softmax', 'logSoftmax'] },
  bindings: { y: { type: 'f32', access: 'read' }, g: { type: 'f32', access: 'read' }, gx: { type: 'f32', access: 'rw' } },
  params: { rows: 'u32', len: 'u32', y_off: 'u32', g_off: 'u32', gx_off: 'u32' },
  code: (v) => wgsl`
${WGSL_LINEAR_WORKGROUP}
${WGSL_ROW_REDUCE}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let row = linear_workgroup(wid, nwg);
  if (row >= p.rows) { return; }
  let yb = p.y_off + row * p.len;
  let gb = p.g_off + row * p.len;
  var s = 0.0;
#if ${v.kind === 'softmax'}
  for (var j = lid; j < p.len; j += ${WG}u) { s += g[gb + j] * y[yb + j]; }
#else
  for (var j = lid; j < p.len; j += ${WG}u) { s += g[gb + j]; }
#endif
  sh[lid] = s;
  workgroupBarrier();
  tree_sum(lid);
  let total = sh[0];
#if ${v.kind === 'softmax'}
  for (var j = lid; j < p.len; j += ${WG}u) { gx[p.gx_off + row * p.len + j] = y[yb + j] * (g[gb + j] - total); }
#else
  for (var j = lid; j < p.len; j += ${WG}u) { gx[p.gx_off + row * p.len + j] = g[gb + j] - exp(y[yb + j]) * total; }
#endif
}`,
});

/** y[rows, len] (from element 0) = softmax or log-softmax of the rows of x starting at xOffset. */
export function launchSoftmax(kind: SoftmaxKind, x: GPUBuffer, xOffset: number, y: GPUBuffer, rows: number, len: number): void {
  if (!overBindingLimit(x, y)) {
    forward.dispatch({ kind }, { x, y }, { rows, len, x_off: xOffset, y_off: 0 }, rows);
    return;
  }
  // Over one storage binding: blocks of rows, each operand through a window (kernels/large.ts).
  for (const { start, count } of rowBlocks(kind, rows, len * 4)) {
    const xw = windowRange(x, xOffset + start * len, count * len);
    const yw = windowRange(y, start * len, count * len);
    forward.dispatch({ kind }, { x: xw.buffer, y: yw.buffer }, { rows: count, len, x_off: xw.offset, y_off: yw.offset }, count);
  }
}

/** gx[rows, len] from the forward output y and its gradient g (both contiguous rows). */
export function launchSoftmaxBackward(
  kind: SoftmaxKind,
  y: GPUBuffer,
  yOffset: number,
  g: GPUBuffer,
  gOffset: number,
  gx: GPUBuffer,
  rows: number,
  len: number,
): void {
  if (!overBindingLimit(y, g, gx)) {
    backward.dispatch({ kind }, { y, g, gx }, { rows, len, y_off: yOffset, g_off: gOffset, gx_off: 0 }, rows);
    return;
  }
  for (const { start, count } of rowBlocks(`${kind} backward`, rows, len * 4)) {
    const yw = windowRange(y, yOffset + start * len, count * len);
    const gw = windowRange(g, gOffset + start * len, count * len);
    const xw = windowRange(gx, start * len, count * len);
    backward.dispatch({ kind }, { y: yw.buffer, g: gw.buffer, gx: xw.buffer }, { rows: count, len, y_off: yw.offset, g_off: gw.offset, gx_off: xw.offset }, count);
  }
}
