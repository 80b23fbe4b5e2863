// Row argmax / argmin: a contiguous [rows, len] region reduced along len to i32 indices. One
// 256-thread workgroup per row; each thread keeps its best (value, index) over a strided slice,
// then a shared-memory tree combines them. The combine prefers the lower index on equal values, so
// ties give the first index (as PyTorch), and NaN counts as the extreme (PyTorch returns the first
// NaN's index) — tested by the bits, since compilers may fold `v != v` away.
// A column form reads any strided view: one invocation per output walks the reduced dim in order
// (the first best stays), consecutive invocations being consecutive outputs (coalesced along the
// inner dim). It serves reductions over non-innermost dims without a permute + copy, and every
// reduction on software adapters (where the 256-thread tree costs far more than a walk).
// Over one storage binding only the row form splits (blocks of rows through binding windows);
// engine/ops/argreduce.ts takes it for such inputs.
import { DTYPE_BYTES, type DType, WGSL_COMPUTE, WGSL_STORAGE } from '../../runtime/dtype';
import { overBindingLimit, rowBlocks, windowRange } from '../large';
import { defineKernel, WGSL_LINEAR_WORKGROUP } from '../define-kernel';
import { numelOf } from '../../runtime/shape';
import { coalesce, type Dims, forcedReduceLayout } from './reduce';
import { isSoftwareAdapter } from '../../runtime/adapter';

const WG = 256;
export type ArgOp = 'argmax' | 'argmin';

const rowKernel = defineKernel({
  name: 'argreduce',
  bindings: {
    src: { type: (v) => WGSL_STORAGE[v.inType], access: 'read' },
    dst: { type: 'i32', access: 'rw' },
  },
  params: { rows: 'u32', len: 'u32', src_off: 'u32', dst_off: 'u32' },
  code: ({ op, inType }: { op: ArgOp; inType: DType }) => {
  const t = WGSL_COMPUTE[inType];
  const better = op === 'argmax' ? '>' : '<';
  const isNan = t === 'f32' ? '(bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u' : 'false';
  return /* wgsl */ `
const NONE = 0xffffffffu;
var<workgroup> sh_v: array<${t}, ${WG}>;
var<workgroup> sh_i: array<u32, ${WG}>;
${WGSL_LINEAR_WORKGROUP}
fn is_nan(v: ${t}) -> bool { return ${isNan}; }
// Whether candidate (bv, bi) beats the current best (av, ai). NaN beats numbers; among equals
// (or among NaNs) the lower index wins.
fn beats(bv: ${t}, bi: u32, av: ${t}, ai: u32) -> bool {
  if (bi == NONE) { return false; }
  if (ai == NONE) { return true; }
  let bn = is_nan(bv);
  let an = is_nan(av);
  if (bn != an) { return bn; }
  if (bn || bv == av) { return bi < ai; }
  return bv ${better} av;
}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let row = linear_workgroup(wid, nwg);
  if (row >= p.rows) { return; }
  let base = p.src_off + row * p.len;
  var best_v = ${t}(0);
  var best_i = NONE;
  for (var j = lid; j < p.len; j += ${WG}u) {
    let v = ${t}(src[base + j]);
    if (beats(v, j, best_v, best_i)) { best_v = v; best_i = j; }
  }
  sh_v[lid] = best_v;
  sh_i[lid] = best_i;
  workgroupBarrier();
  for (var s = ${WG / 2}u; s > 0u; s >>= 1u) {
    if (lid < s && beats(sh_v[lid + s], sh_i[lid + s], sh_v[lid], sh_i[lid])) {
      sh_v[lid] = sh_v[lid + s];
      sh_i[lid] = sh_i[lid + s];
    }
    workgroupBarrier();
  }
  if (lid == 0u) { dst[p.dst_off + row] = i32(sh_i[0]); }
}`;
  },
});

/** dst[row] (i32, from element 0) = index of the max/min of row `row` of src (from srcOffset). */
export function launchArgReduce(op: ArgOp, src: GPUBuffer, srcOffset: number, inType: DType, dst: GPUBuffer, rows: number, len: number): void {
  if (!overBindingLimit(src, dst)) {
    rowKernel.dispatch({ op, inType }, { src, dst }, { rows, len, src_off: srcOffset, dst_off: 0 }, rows);
    return;
  }
  // Over one storage binding: blocks of rows through binding windows (kernels/large.ts).
  for (const { start, count } of rowBlocks(op, rows, len * DTYPE_BYTES[inType] + 4)) {
    const sw = windowRange(src, srcOffset + start * len, count * len, DTYPE_BYTES[inType]);
    const dw = windowRange(dst, start, count);
    rowKernel.dispatch({ op, inType }, { src: sw.buffer, dst: dw.buffer }, { rows: count, len, src_off: sw.offset, dst_off: dw.offset }, count);
  }
}

const WG_COL = 64;
const MAX_DIMS = 8;

const columnKernel = defineKernel({
  name: 'argreduce:col',
  bindings: {
    src: { type: (v) => WGSL_STORAGE[v.inType], access: 'read' },
    dst: { type: 'i32', access: 'rw' },
  },
  params: { n_out: 'u32', len: 'u32', src_off: 'u32', rstride: 'u32', ks: ['u32', MAX_DIMS], kt: ['u32', MAX_DIMS] },
  code: ({ op, inType, nk }: { op: ArgOp; inType: DType; nk: number }) => {
  const t = WGSL_COMPUTE[inType];
  const better = op === 'argmax' ? '>' : '<';
  const isNan = t === 'f32' ? '(bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u' : 'false';
  const el = (arr: string, d: number) => `p.${arr}[${d >> 2}][${d & 3}]`;
  const decode: string[] = ['  var rem = o;', '  var base = p.src_off;'];
  for (let d = nk - 1; d > 0; d--) decode.push(`  base += (rem % ${el('ks', d)}) * ${el('kt', d)};`, `  rem = rem / ${el('ks', d)};`);
  if (nk > 0) decode.push(`  base += rem * ${el('kt', 0)};`);
  return /* wgsl */ `
${WGSL_LINEAR_WORKGROUP}
fn is_nan(v: ${t}) -> bool { return ${isNan}; }
@compute @workgroup_size(${WG_COL})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let o = linear_workgroup(wid, nwg) * ${WG_COL}u + lid;
  if (o >= p.n_out) { return; }
${decode.join('\n')}
  var best_v = ${t}(src[base]);
  var best_i = 0u;
  var best_nan = is_nan(best_v);
  var a = base;
  for (var j = 1u; j < p.len; j++) {
    a += p.rstride;
    let v = ${t}(src[a]);
    // Strictly better only, so the first index stays on ties; the first NaN wins for good.
    if (!best_nan && (is_nan(v) || v ${better} best_v)) {
      best_v = v;
      best_i = j;
      best_nan = is_nan(v);
    }
  }
  dst[o] = i32(best_i);
}`;
  },
});

/**
 * Whether an arg-reduction of `nOut` outputs over `len` elements takes the column kernel: always
 * on software adapters; on GPUs when the rows are not dense (or short) and there are enough
 * outputs to fill the GPU with serial walks — otherwise rows (copied when not dense).
 */
export function argReduceColumn(nOut: number, len: number, denseRows: boolean): boolean {
  const forced = forcedReduceLayout();
  if (forced) return forced === 'column';
  if (isSoftwareAdapter()) return true;
  return (!denseRows || len < 64) && (nOut >= 1024 || len <= 1024);
}

/**
 * dst[o] (i32, from element 0) = index along the reduced dim (`len` elements `rstride` apart) of
 * the max/min of output `o`, whose first element is at `srcOffset` + the kept dims' offset (`kept`
 * in output order, row-major).
 */
export function launchArgReduceStrided(op: ArgOp, src: GPUBuffer, srcOffset: number, inType: DType, dst: GPUBuffer, kept: Dims, len: number, rstride: number): void {
  const k = coalesce(kept);
  if (k.shape.length > MAX_DIMS) throw new Error(`${op}: at most ${MAX_DIMS} kept dims after merging, got ${k.shape.length}`);
  const nOut = numelOf(k.shape);
  if (nOut === 0) return;
  columnKernel.dispatch(
    { op, inType, nk: k.shape.length },
    { src, dst },
    { n_out: nOut, len, src_off: srcOffset, rstride, ks: k.shape, kt: k.strides },
    Math.ceil(nOut / WG_COL),
  );
}
