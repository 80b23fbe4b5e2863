// Reductions of a strided view: the input is described by its kept dims (output order, row-major)
// and its reduced dims, each with element strides, so no permute + copy is ever needed.
// Two kernel shapes, chosen by where the smallest stride is (on GPUs; software adapters always
// take the column kernel, see reduceLayout):
// - row: the reduced dims hold the smallest stride (reductions over innermost dims, full
//   reductions, bias gradients sum(x, [0,2,3])). One 256-thread workgroup per (output, chunk):
//   each thread accumulates a strided slice of the flattened reduced index (consecutive threads read
//   consecutive reduced elements), then a shared-memory tree combines them. Few outputs with long
//   reductions split into chunks; a second pass reduces the partials.
// - column: a kept dim holds the smallest stride (mean/max over channels of NCHW, sum over leading
//   dims). One invocation per (output, chunk) walks the reduced elements in order; consecutive
//   invocations are consecutive outputs, so each step's loads are coalesced along the inner dim.
//   Few outputs with long reductions split into chunks (partials [chunks, outputs], then a second
//   column pass) so that there are enough invocations.
// Summation order depends only on the shapes and strides: results are deterministic.
import { type DType, WGSL_COMPUTE, WGSL_STORAGE } from '../../runtime/dtype';
import { defineKernel, rt, WGSL_LINEAR_WORKGROUP, WGSL_NAN } from '../define-kernel';

import { contiguousStrides, numelOf } from '../../runtime/shape';
import { isSoftwareAdapter } from '../../runtime/adapter';
import { overBindingLimit } from '../large';
import { launchReduceSplit, type ReduceCore } from './large';

export type ReduceOp = 'sum' | 'max' | 'min' | 'prod';
/** A set of dims with element strides. */
export interface Dims {
  shape: readonly number[];
  strides: readonly number[];
}

const WG = 256; // row kernel: threads per output
const WG_COL = 64; // column kernel: outputs per workgroup
const MAX_DIMS = 8; // per group, after coalescing
/** GPUs: below this reduced length an innermost reduction takes the column kernel (a guess, not measured on a GPU). */
export const ROW_MIN_LEN = 64;
// Column split: aim for at least COL_TARGET invocations, chunks of at least COL_MIN_CHUNK elements.
const COL_TARGET = 8192;
const COL_MIN_CHUNK = 32;
const COL_MAX_CHUNKS = 1024;

function identity(op: ReduceOp, t: string): string {
  const big = t === 'f32' ? '3.402823466e+38' : t === 'i32' ? '2147483647' : '4294967295u';
  const small = t === 'f32' ? '-3.402823466e+38' : t === 'i32' ? '(-2147483647 - 1)' : '0u';
  switch (op) {
    case 'sum':
      return `${t}(0)`;
    case 'prod':
      return `${t}(1)`;
    case 'max':
      return `${t}(${small})`;
    case 'min':
      return `${t}(${big})`;
  }
}

function combine(op: ReduceOp, a: string, b: string): string {
  switch (op) {
    case 'sum':
      return `${a} + ${b}`;
    case 'prod':
      return `${a} * ${b}`;
    case 'max':
      return `max(${a}, ${b})`;
    case 'min':
      return `min(${a}, ${b})`;
  }
}

/**
 * Drop size-1 dims and merge neighbours that form one run (stride[d] = stride[d+1] * shape[d+1])
 * in every stride list. The flat row-major index over the result addresses the same elements.
 */
export function coalesceMany(shape: readonly number[], lists: readonly (readonly number[])[]): { shape: number[]; strides: number[][] } {
  const out: number[] = [];
  const strides: number[][] = lists.map(() => []);
  for (let i = 0; i < shape.length; i++) {
    const n = shape[i]!;
    if (n === 1) continue;
    const last = out.length - 1;
    if (last >= 0 && lists.every((l, j) => strides[j]![last] === l[i]! * n)) {
      out[last] = out[last]! * n;
      lists.forEach((l, j) => (strides[j]![last] = l[i]!));
    } else {
      out.push(n);
      lists.forEach((l, j) => strides[j]!.push(l[i]!));
    }
  }
  return { shape: out, strides };
}

export function coalesce(d: Dims): { shape: number[]; strides: number[] } {
  const c = coalesceMany(d.shape, [d.strides]);
  return { shape: c.shape, strides: c.strides[0]! };
}

const el = (arr: string, d: number) => `p.${arr}[${d >> 2}][${d & 3}]`;

/** WGSL fn `${name}(i) -> u32`: element offset of flat row-major index i over n dims (sizes `sz`, strides `st`). */
function addrFn(name: string, n: number, sz: string, st: string): string {
  if (n === 0) return `fn ${name}(i: u32) -> u32 { return 0u; }`;
  const lines = ['  var rem = i;', '  var a = 0u;'];
  for (let d = n - 1; d > 0; d--) lines.push(`  a += (rem % ${el(sz, d)}) * ${el(st, d)};`, `  rem = rem / ${el(sz, d)};`);
  lines.push(`  a += rem * ${el(st, 0)};`, '  return a;');
  return `fn ${name}(i: u32) -> u32 {\n${lines.join('\n')}\n}`;
}

const REDUCE_PARAMS = {
  n_out: 'u32', len: 'u32', chunks: 'u32', chunk_len: 'u32', src_off: 'u32', scale: 'f32', apply_scale: 'u32',
  ks: ['u32', MAX_DIMS], kt: ['u32', MAX_DIMS], rs: ['u32', MAX_DIMS], rt: ['u32', MAX_DIMS],
} as const;

/** A reduction kernel's variant: op, storage types, and the kept / reduced dim counts (after coalescing). */
interface ReduceVariant {
  op: ReduceOp;
  inType: DType;
  outType: DType;
  nk: number;
  nr: number;
}

const REDUCE_BINDINGS = {
  src: { type: (v: ReduceVariant) => WGSL_STORAGE[v.inType], access: 'read' },
  dst: { type: (v: ReduceVariant) => WGSL_STORAGE[v.outType], access: 'rw' },
} as const;

function header(): string {
  return `${WGSL_LINEAR_WORKGROUP}
${WGSL_NAN}
// By the bits: compilers may fold \`v != v\` to false (lavapipe does), losing NaN propagation.
fn is_nan(v: f32) -> bool { return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u; }`;
}

/** Store `r0` at `target`: NaN if one was seen (float max/min), times the scale (mean). */
function finish(op: ReduceOp, acc: string, outType: DType, nanFlag: string, target: string): string {
  const nan = acc === 'f32' && (op === 'max' || op === 'min');
  return `var r = r0;
    ${nan ? `if (${nanFlag} != 0u) { r = nan_f32(); }` : ''}
    ${acc === 'f32' ? 'if (p.apply_scale != 0u) { r = r * p.scale; }' : ''}
    dst[${target}] = ${WGSL_STORAGE[outType]}(r);`;
}

const rowKernel = defineKernel({
  name: 'reduce:row',
  bindings: REDUCE_BINDINGS,
  params: REDUCE_PARAMS,
  code: ({ op, inType, outType, nk, nr }: ReduceVariant) => {
  const acc = WGSL_COMPUTE[inType];
  const nan = acc === 'f32' && (op === 'max' || op === 'min');
  return /* wgsl */ `${header()}
var<workgroup> sh: array<${acc}, ${WG}>;
var<workgroup> sh_nan: array<u32, ${WG}>;
${addrFn('k_addr', nk, 'ks', 'kt')}
${addrFn('r_addr', nr, 'rs', 'rt')}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let w = linear_workgroup(wid, nwg);
  if (w >= p.n_out * p.chunks) { return; }
  let row = w / p.chunks;
  let chunk = w % p.chunks;
  let base = p.src_off + k_addr(row);
  let start = chunk * p.chunk_len;
  let end = min(start + p.chunk_len, p.len);
  var acc = ${identity(op, acc)};
  var has_nan = 0u;
  for (var j = start + lid; j < end; j += ${WG}u) {
    let v = ${acc}(src[base + r_addr(j)]);
    ${nan ? 'if (is_nan(v)) { has_nan = 1u; }' : ''}
    acc = ${combine(op, 'acc', 'v')};
  }
  sh[lid] = acc;
  sh_nan[lid] = has_nan;
  workgroupBarrier();
  for (var s = ${WG / 2}u; s > 0u; s >>= 1u) {
    if (lid < s) {
      sh[lid] = ${combine(op, 'sh[lid]', 'sh[lid + s]')};
      sh_nan[lid] = sh_nan[lid] | sh_nan[lid + s];
    }
    workgroupBarrier();
  }
  if (lid == 0u) {
    let r0 = sh[0];
    ${finish(op, acc, outType, 'sh_nan[0]', 'w')}
  }
}`;
  },
});

const columnKernel = defineKernel({
  name: 'reduce:col',
  bindings: REDUCE_BINDINGS,
  params: REDUCE_PARAMS,
  code: ({ op, inType, outType, nk, nr }: ReduceVariant) => {
  const acc = WGSL_COMPUTE[inType];
  const nan = acc === 'f32' && (op === 'max' || op === 'min');
  const step = /* wgsl */ `let v = ${acc}(src[a]);
    ${nan ? 'if (is_nan(v)) { has_nan = 1u; }' : ''}
    acc = ${combine(op, 'acc', 'v')};`;
  // One reduced dim: a pointer walk. Several: walk the last (smallest-stride) dim, recompute the
  // address from the flat index when it wraps.
  const loop =
    nr === 1
      ? `var a = base + start * ${el('rt', 0)};
  for (var j = start; j < end; j++) {
    ${step}
    a += ${el('rt', 0)};
  }`
      : `let nl = ${el('rs', nr - 1)};
  let sl = ${el('rt', nr - 1)};
  var k = start % nl;
  var a = base + r_addr(start);
  for (var j = start; j < end; j++) {
    ${step}
    k += 1u;
    a += sl;
    if (k == nl) { k = 0u; a = base + r_addr(j + 1u); }
  }`;
  return /* wgsl */ `${header()}
${addrFn('k_addr', nk, 'ks', 'kt')}
${addrFn('r_addr', nr, 'rs', 'rt')}
@compute @workgroup_size(${WG_COL})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let g = linear_workgroup(wid, nwg) * ${WG_COL}u + lid;
  if (g >= p.n_out * p.chunks) { return; }
  let o = g % p.n_out;
  let chunk = g / p.n_out;
  let base = p.src_off + k_addr(o);
  let start = chunk * p.chunk_len;
  let end = min(start + p.chunk_len, p.len);
  var acc = ${identity(op, acc)};
  var has_nan = 0u;
  ${loop}
  let r0 = acc;
  ${finish(op, acc, outType, 'has_nan', 'g')}
}`;
  },
});

function params(nOut: number, len: number, chunks: number, chunkLen: number, srcOffset: number, scale: number, kept: Dims, red: Dims) {
  return {
    n_out: nOut, len, chunks, chunk_len: chunkLen, src_off: srcOffset, scale, apply_scale: scale !== 1,
    ks: kept.shape, kt: kept.strides, rs: red.shape, rt: red.strides,
  };
}

function partialTypeOf(inType: DType): DType {
  return WGSL_COMPUTE[inType] === 'f32' ? 'f32' : inType === 'bool' ? 'u32' : inType;
}

const REDUCE_CORE: ReduceCore = {
  launch: (op, src, srcOffset, inType, kept, reduced, dst, outType, scale) => launchReduce(op as ReduceOp, src, srcOffset, inType, kept, reduced, dst, outType, scale),
  partialTypeOf,
};

export type ReduceLayout = 'row' | 'column';
let forced: ReduceLayout | undefined;
/** Tests: run every reduction (argmax/argmin too) with one kernel shape (undefined: choose per adapter and shape). */
export function forceReduceLayout(layout: ReduceLayout | undefined): void {
  forced = layout;
}
export function forcedReduceLayout(): ReduceLayout | undefined {
  return forced;
}

/**
 * Which kernel shape `launchReduce` uses (dims already coalesced). On software adapters (lavapipe)
 * always the column kernel: a 256-thread workgroup with a barrier tree costs ~100x more there
 * than a barrier-free invocation walking a run (measured: mean over [2,3] of [296,128,14,14],
 * 7-12 s as rows vs ~0.1 s as columns, scripts/dev/reduce-timing.ts).
 */
export function reduceLayout(kept: Dims, red: Dims, software = isSoftwareAdapter()): ReduceLayout {
  if (forced) return forced;
  if (software) return 'column';
  const len = numelOf(red.shape);
  const minK = Math.min(Infinity, ...kept.strides);
  const minR = Math.min(Infinity, ...red.strides);
  // Short reductions go to the column kernel even when innermost: a 256-thread workgroup per
  // output would leave most threads idle.
  return minR < minK && (len >= ROW_MIN_LEN || kept.shape.length === 0) ? 'row' : 'column';
}

/**
 * Reduce the strided view of `src` (element offset `srcOffset`, dims `kept` in output order then
 * `reduced`) into `dst` (one element per kept index, row-major, from element 0). `scale`
 * multiplies the final result (mean = sum * 1/len). A NaN anywhere makes float max/min NaN, as in
 * PyTorch. The caller rejects empty reductions.
 */
export function launchReduce(
  op: ReduceOp,
  src: GPUBuffer,
  srcOffset: number,
  inType: DType,
  kept: Dims,
  reduced: Dims,
  dst: GPUBuffer,
  outType: DType,
  scale = 1,
): void {
  const k = coalesce(kept);
  // Any order of the reduced dims gives the same set; larger strides outside lets more of them
  // merge and makes the innermost walk the shortest stride.
  const order = reduced.shape.map((_, i) => i).sort((a, b) => reduced.strides[b]! - reduced.strides[a]! || a - b);
  let r = coalesce({ shape: order.map((i) => reduced.shape[i]!), strides: order.map((i) => reduced.strides[i]!) });
  if (r.shape.length === 0) r = { shape: [1], strides: [0] }; // only size-1 dims reduced
  if (k.shape.length > MAX_DIMS || r.shape.length > MAX_DIMS) {
    throw new Error(`reduce: at most ${MAX_DIMS} kept and ${MAX_DIMS} reduced dims after merging, got ${k.shape.length} and ${r.shape.length}`);
  }
  const nOut = numelOf(k.shape);
  const len = numelOf(r.shape);
  if (nOut === 0) return;
  if (len === 0) throw new Error(`${op}: reduction over an empty dimension`);
  // Over one storage binding: split into blocks (large.ts).
  if (overBindingLimit(src, dst)) return launchReduceSplit(REDUCE_CORE, op, src, srcOffset, inType, k, r, dst, outType, scale);
  const runtime = rt();
  const partialType = partialTypeOf(inType);
  const nk = k.shape.length;
  const nr = r.shape.length;
  if (reduceLayout(k, r) === 'row') {
    let chunks = 1;
    if (nOut < 128 && len > 8192) chunks = Math.min(512, Math.ceil(len / 4096));
    const chunkLen = Math.ceil(len / chunks);
    chunks = Math.ceil(len / chunkLen);
    if (chunks === 1) {
      rowKernel.dispatch({ op, inType, outType, nk, nr }, { src, dst }, params(nOut, len, 1, len, srcOffset, scale, k, r), nOut);
      return;
    }
    // Partials [nOut, chunks], then dense rows of `chunks`.
    const partial = runtime.pool.acquire(nOut * chunks * 4, GPUBufferUsage.STORAGE, 'reduce.partial');
    rowKernel.dispatch({ op, inType, outType: partialType, nk, nr }, { src, dst: partial }, params(nOut, len, chunks, chunkLen, srcOffset, 1, k, r), nOut * chunks);
    const k2 = { shape: [nOut], strides: [chunks] };
    const r2 = { shape: [chunks], strides: [1] };
    rowKernel.dispatch({ op, inType: partialType, outType, nk: 1, nr: 1 }, { src: partial, dst }, params(nOut, chunks, 1, chunks, 0, scale, k2, r2), nOut);
    runtime.pool.release(partial);
    return;
  }
  let chunks = 1;
  if (nOut < COL_TARGET && len >= 2 * COL_MIN_CHUNK) {
    chunks = Math.min(COL_MAX_CHUNKS, Math.ceil(COL_TARGET / nOut), Math.floor(len / COL_MIN_CHUNK));
  }
  const chunkLen = Math.ceil(len / chunks);
  chunks = Math.ceil(len / chunkLen);
  const groups = (n: number) => Math.ceil(n / WG_COL);
  if (chunks === 1) {
    columnKernel.dispatch({ op, inType, outType, nk, nr }, { src, dst }, params(nOut, len, 1, len, srcOffset, scale, k, r), groups(nOut));
    return;
  }
  // Partials [chunks, nOut], then a column pass over the chunks (coalesced along nOut).
  const partial = runtime.pool.acquire(nOut * chunks * 4, GPUBufferUsage.STORAGE, 'reduce.partial');
  columnKernel.dispatch(
    { op, inType, outType: partialType, nk, nr },
    { src, dst: partial },
    params(nOut, len, chunks, chunkLen, srcOffset, 1, k, r),
    groups(nOut * chunks),
  );
  const k2 = { shape: [nOut], strides: [1] };
  const r2 = { shape: [chunks], strides: [nOut] };
  columnKernel.dispatch({ op, inType: partialType, outType, nk: 1, nr: 1 }, { src: partial, dst }, params(nOut, chunks, 1, chunks, 0, scale, k2, r2), groups(nOut));
  runtime.pool.release(partial);
}

// ---- max/min backward -------------------------------------------------------------------------

const GRAD_MIN_OUT_GPU = 1024; // below this a GPU wants the parallel generic form (eq, sum, map)

/**
 * Whether `launchExtremumGrad` suits this reduction: the column layout, and on a GPU enough outputs
 * to fill it (the kernel walks each output's reduced elements serially).
 */
export function extremumGradFused(shape: readonly number[], strides: readonly number[], axes: readonly number[]): boolean {
  const keptDims = shape.map((_, i) => i).filter((i) => !axes.includes(i));
  const k = coalesce({ shape: keptDims.map((i) => shape[i]!), strides: keptDims.map((i) => strides[i]!) });
  const r = coalesce({ shape: axes.map((i) => shape[i]!), strides: axes.map((i) => strides[i]!) });
  const nOut = numelOf(k.shape);
  const software = isSoftwareAdapter();
  return reduceLayout(k, r, software) === 'column' && (software || nOut >= GRAD_MIN_OUT_GPU);
}

const gradKernel = defineKernel({
  name: 'reduce:extremum_grad',
  bindings: {
    src: { type: (v) => WGSL_STORAGE[v.inType], access: 'read' },
    best: { type: (v) => WGSL_STORAGE[v.inType], access: 'read' },
    g: { type: (v) => WGSL_STORAGE[v.gType], access: 'read' },
    dst: { type: 'f32', access: 'rw' },
  },
  params: {
    n_out: 'u32', len: 'u32', src_off: 'u32', best_off: 'u32', g_off: 'u32',
    ks: ['u32', MAX_DIMS], kt: ['u32', MAX_DIMS], kd: ['u32', MAX_DIMS], rs: ['u32', MAX_DIMS], rt: ['u32', MAX_DIMS], rd: ['u32', MAX_DIMS],
  },
  code: ({ nk, nr }: { inType: DType; gType: DType; nk: number; nr: number }) => {
  // Walks the reduced elements of one output with the source pointer `a` (and the gradient
  // pointer `d`); several reduced dims: the last one by pointer steps, recomputed on wrap.
  const walk = (body: string, withDst: boolean) =>
    nr === 1
      ? `{
    var a = bs;
    ${withDst ? 'var d = bd;' : ''}
    for (var j = 0u; j < p.len; j++) {
      ${body}
      a += ${el('rt', 0)};
      ${withDst ? `d += ${el('rd', 0)};` : ''}
    }
  }`
      : `{
    var k = 0u;
    var a = bs;
    ${withDst ? 'var d = bd;' : ''}
    for (var j = 0u; j < p.len; j++) {
      ${body}
      k += 1u;
      a += ${el('rt', nr - 1)};
      ${withDst ? `d += ${el('rd', nr - 1)};` : ''}
      if (k == ${el('rs', nr - 1)}) {
        k = 0u;
        a = bs + r_addr(j + 1u);
        ${withDst ? 'd = bd + rd_addr(j + 1u);' : ''}
      }
    }
  }`;
  return /* wgsl */ `
${WGSL_LINEAR_WORKGROUP}
${addrFn('k_addr', nk, 'ks', 'kt')}
${addrFn('kd_addr', nk, 'ks', 'kd')}
${addrFn('r_addr', nr, 'rs', 'rt')}
${addrFn('rd_addr', nr, 'rs', 'rd')}
@compute @workgroup_size(${WG_COL})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let o = linear_workgroup(wid, nwg) * ${WG_COL}u + lid;
  if (o >= p.n_out) { return; }
  let bs = p.src_off + k_addr(o);
  let bd = kd_addr(o);
  let b = f32(best[p.best_off + o]);
  var cnt = 0u;
  ${walk('if (f32(src[a]) == b) { cnt += 1u; }', false)}
  // (g / count) * mask, the arithmetic of the unfused form: a NaN extremum (count 0) gives NaN.
  let share = f32(g[p.g_off + o]) / f32(cnt);
  ${walk('dst[d] = share * select(0.0, 1.0, f32(src[a]) == b);', true)}
}`;
  },
});

/**
 * Gradient of max/min over `axes` of the view (`shape`, `strides`, `srcOffset`) of `src`: each
 * element equal to its group's extremum gets g / (number of such elements), others 0 (PyTorch's
 * amax/amin rule). `best` holds the forward result and `g` the upstream gradient, both dense over
 * the kept dims (from `bestOffset` / `gOffset`); `dst` (f32) is dense with `shape`, from 0.
 */
export function launchExtremumGrad(
  src: GPUBuffer,
  srcOffset: number,
  inType: DType,
  shape: readonly number[],
  strides: readonly number[],
  axes: readonly number[],
  best: GPUBuffer,
  bestOffset: number,
  g: GPUBuffer,
  gOffset: number,
  gType: DType,
  dst: GPUBuffer,
): void {
  const dense = contiguousStrides(shape);
  const keptDims = shape.map((_, i) => i).filter((i) => !axes.includes(i));
  const k = coalesceMany(keptDims.map((i) => shape[i]!), [keptDims.map((i) => strides[i]!), keptDims.map((i) => dense[i]!)]);
  const order = [...axes].sort((a, b) => strides[b]! - strides[a]! || a - b);
  let r = coalesceMany(order.map((i) => shape[i]!), [order.map((i) => strides[i]!), order.map((i) => dense[i]!)]);
  if (r.shape.length === 0) r = { shape: [1], strides: [[0], [0]] };
  if (k.shape.length > MAX_DIMS || r.shape.length > MAX_DIMS) {
    throw new Error(`max/min backward: at most ${MAX_DIMS} kept and ${MAX_DIMS} reduced dims after merging, got ${k.shape.length} and ${r.shape.length}`);
  }
  const nOut = numelOf(k.shape);
  const len = numelOf(r.shape);
  if (nOut === 0 || len === 0) return;
  gradKernel.dispatch(
    { inType, gType, nk: k.shape.length, nr: r.shape.length },
    { src, best, g, dst },
    {
      n_out: nOut, len, src_off: srcOffset, best_off: bestOffset, g_off: gOffset,
      ks: k.shape, kt: k.strides[0]!, kd: k.strides[1]!, rs: r.shape, rt: r.strides[0]!, rd: r.strides[1]!,
    },
    Math.ceil(nOut / WG_COL),
  );
}
