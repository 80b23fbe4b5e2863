// Scatter kernels.
//
// launchScatterAdd: out = input + scatter_add(dim, index, src) (torch.scatter_add; index_add is the
// same with a 1-D index expanded over the other dims). WGSL has no float atomics and an atomic
// CAS loop would add in a schedule-dependent order, so instead every OUTPUT element loops over the
// K = index.shape[dim] index entries of its fibre and sums the sources whose index equals its own
// coordinate, in ascending j. The result is bit-for-bit deterministic (the same summation order
// on every run, the order a sequential CPU loop uses) at a cost of out.numel × K index reads —
// fine for the sizes detection heads use (K up to a few thousand). Out-of-range indices never
// equal a valid coordinate, so they are skipped and cannot touch memory.
//
// launchIndexAdd: the 1-D-index case (index_add, index_select's backward) through per-target hit
// lists: linear cost, the same summation order and bits as launchScatterAdd (see below).
//
// launchScatterRows: out[r, idx[r, j]] = g[r, j] for a per-row set of DISTINCT indices (the
// permutation a sort or top-k produced): one thread per source element, no conflicts, O(numel).
import { type DType, WGSL_COMPUTE, WGSL_STORAGE } from '../runtime/dtype';
import { type KernelDef, Params, rt, WGSL_LINEAR_WORKGROUP } from '../runtime/runtime';
import { numelOf, type View } from '../runtime/shape';
import { MAX_RANK } from './elementwise/map';
import { launchExclusiveScan } from './compact';

const WG = 256;
const cache = new Map<string, KernelDef>();

function scatterAddKernel(dtype: DType, hasInput: boolean): KernelDef {
  const key = `scatter_add:${dtype}:${hasInput ? 'in' : 'zero'}`;
  let def = cache.get(key);
  if (def) return def;
  const st = WGSL_STORAGE[dtype];
  const ct = WGSL_COMPUTE[dtype];
  const b = hasInput ? 1 : 0;
  const code = /* wgsl */ `
${dtype === 'f16' ? 'enable f16;' : ''}
${hasInput ? `@group(0) @binding(0) var<storage, read> input: array<${st}>;` : ''}
@group(0) @binding(${b}) var<storage, read> index: array<i32>;
@group(0) @binding(${b + 1}) var<storage, read> src: array<${st}>;
@group(0) @binding(${b + 2}) var<storage, read_write> out: array<${st}>;
struct P {
  numel: u32, rank: u32, dim: u32, fibre: u32,
  in_off: u32, idx_off: u32, src_off: u32, out_off: u32,
  shape: array<vec4u, 2>,
  idx_shape: array<vec4u, 2>,
  in_st: array<vec4u, 2>,
  idx_st: array<vec4u, 2>,
  src_st: array<vec4u, 2>,
}
@group(0) @binding(${b + 3}) var<uniform> p: P;
${WGSL_LINEAR_WORKGROUP}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = linear_workgroup(wid, nwg) * ${WG}u + lid;
  if (i >= p.numel) { return; }
  var a = p.in_off;
  var x = p.idx_off;
  var s = p.src_off;
  var tgt = 0u;
  var inside = true;  // this fibre exists in the index (index may be smaller than out)
  var rem = i;
  for (var d = i32(p.rank) - 1; d >= 0; d--) {
    let n = p.shape[d >> 2][d & 3];
    let c = rem % n;
    rem = rem / n;
    a += c * p.in_st[d >> 2][d & 3];
    if (u32(d) == p.dim) {
      tgt = c;
    } else {
      if (c >= p.idx_shape[d >> 2][d & 3]) { inside = false; }
      x += c * p.idx_st[d >> 2][d & 3];
      s += c * p.src_st[d >> 2][d & 3];
    }
  }
  var acc = ${hasInput ? `${ct}(input[a])` : `${ct}(0)`};
  if (inside) {
    let xs = p.idx_st[p.dim >> 2][p.dim & 3];
    let ss = p.src_st[p.dim >> 2][p.dim & 3];
    let t = i32(tgt);
    for (var j = 0u; j < p.fibre; j++) {
      if (index[x + j * xs] == t) { acc += ${ct}(src[s + j * ss]); }
    }
  }
  out[p.out_off + i] = ${st}(acc);
}`;
  const bindings: ('read' | 'rw')[] = hasInput ? ['read', 'read', 'read', 'rw'] : ['read', 'read', 'rw'];
  def = { key, code, bindings, uniform: true };
  cache.set(key, def);
  return def;
}

/**
 * out (contiguous, shape = outShape) = input (or zeros when `input` is null) plus, for every
 * position c of `index` (shape idxShape; strided, possibly expanded), src[c] added at
 * c with c[dim] := index[c]. `src` is read at the coordinates of `index` with its own strides.
 */
export function launchScatterAdd(input: View | null, dim: number, index: View, src: View, out: View): void {
  const shape = out.shape;
  if (shape.length > MAX_RANK) throw new Error(`scatter_add: rank ${shape.length} > ${MAX_RANK}`);
  const numel = numelOf(shape);
  if (numel === 0) return;
  const fibre = numelOf(index.shape) === 0 ? 0 : index.shape[dim]!;
  const p = new Params(48)
    .u(numel, shape.length, dim, fibre)
    .u(input?.offset ?? 0, index.offset, src.offset, out.offset)
    .uArray(shape, 8, 1)
    .uArray(index.shape, 8, 1)
    .uArray(input?.strides ?? [], 8)
    .uArray(index.strides, 8)
    .uArray(src.strides, 8);
  const buffers = [...(input ? [input.buffer] : []), index.buffer, src.buffer, out.buffer];
  rt().dispatch(scatterAddKernel(out.dtype, !!input), buffers, p.bytes(), Math.ceil(numel / WG));
}

function scatterRowsKernel(dtype: DType): KernelDef {
  const key = `scatter_rows:${dtype}`;
  let def = cache.get(key);
  if (def) return def;
  const st = WGSL_STORAGE[dtype];
  const code = /* wgsl */ `
${dtype === 'f16' ? 'enable f16;' : ''}
@group(0) @binding(0) var<storage, read> g: array<${st}>;
@group(0) @binding(1) var<storage, read> index: array<i32>;
@group(0) @binding(2) var<storage, read_write> out: array<${st}>;
struct P { rows: u32, k: u32, n: u32, g_off: u32, idx_off: u32, out_off: u32, _a: u32, _b: u32 }
@group(0) @binding(3) var<uniform> p: P;
${WGSL_LINEAR_WORKGROUP}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = linear_workgroup(wid, nwg) * ${WG}u + lid;
  if (i >= p.rows * p.k) { return; }
  let r = i / p.k;
  let t = index[p.idx_off + i];
  if (t < 0 || u32(t) >= p.n) { return; }
  out[p.out_off + r * p.n + u32(t)] = g[p.g_off + i];
}`;
  def = { key, code, bindings: ['read', 'read', 'rw'], uniform: true };
  cache.set(key, def);
  return def;
}

/**
 * out[r, index[r, j]] = g[r, j] for contiguous g, index [rows, k] and out [rows, n]. The indices
 * of a row must be distinct (a permutation or a top-k selection); elements of out that no index
 * names keep their value (zero-fill out first). Out-of-range indices are skipped.
 */
export function launchScatterRows(g: View, index: View, out: View, rows: number, k: number, n: number): void {
  if (rows * k === 0) return;
  const p = new Params(8).u(rows, k, n, g.offset, index.offset, out.offset, 0, 0);
  rt().dispatch(scatterRowsKernel(g.dtype), [g.buffer, index.buffer, out.buffer], p.bytes(), Math.ceil((rows * k) / WG));
}

// ---- index_add through hit lists ---------------------------------------------------------------
// With a 1-D index (index_add, index_select's backward) the contributions to target slice t are
// the positions j with index[j] == t, the same for every element of the slice. So the hit lists
// are built once (count per target, exclusive scan, fill in ascending j: O(N·L) for N targets and
// L indices) and each output element then reads only its own hits, in ascending j: the same
// summation order as launchScatterAdd (bit-identical results), at O(out.numel + src.numel) cost.

function hitsKernel(mode: 'count' | 'fill'): KernelDef {
  const key = `index_hits:${mode}`;
  let def = cache.get(key);
  if (def) return def;
  const code = /* wgsl */ `
@group(0) @binding(0) var<storage, read> index: array<i32>;
@group(0) @binding(1) var<storage, read_write> counts: array<u32>;
${mode === 'fill' ? '@group(0) @binding(2) var<storage, read> starts: array<u32>;\n@group(0) @binding(3) var<storage, read_write> hits: array<u32>;' : ''}
struct P { targets: u32, len: u32, idx_off: u32, idx_st: u32 }
@group(0) @binding(${mode === 'fill' ? 4 : 2}) var<uniform> p: P;
${WGSL_LINEAR_WORKGROUP}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let t = linear_workgroup(wid, nwg) * ${WG}u + lid;
  if (t >= p.targets) { return; }
  var c = 0u;
  ${mode === 'fill' ? 'let start = starts[t];' : ''}
  for (var j = 0u; j < p.len; j++) {
    if (index[p.idx_off + j * p.idx_st] == i32(t)) {
      ${mode === 'fill' ? 'hits[start + c] = j;' : ''}
      c++;
    }
  }
  ${mode === 'count' ? 'counts[t] = c;' : ''}
}`;
  const bindings: ('read' | 'rw')[] = mode === 'fill' ? ['read', 'rw', 'read', 'rw'] : ['read', 'rw'];
  def = { key, code, bindings, uniform: true };
  cache.set(key, def);
  return def;
}

function indexAddKernel(dtype: DType, hasInput: boolean): KernelDef {
  const key = `index_add_hits:${dtype}:${hasInput ? 'in' : 'zero'}`;
  let def = cache.get(key);
  if (def) return def;
  const st = WGSL_STORAGE[dtype];
  const ct = WGSL_COMPUTE[dtype];
  const b = hasInput ? 1 : 0;
  const code = /* wgsl */ `
${dtype === 'f16' ? 'enable f16;' : ''}
${hasInput ? `@group(0) @binding(0) var<storage, read> input: array<${st}>;` : ''}
@group(0) @binding(${b}) var<storage, read> starts: array<u32>;
@group(0) @binding(${b + 1}) var<storage, read> hits: array<u32>;
@group(0) @binding(${b + 2}) var<storage, read> src: array<${st}>;
@group(0) @binding(${b + 3}) var<storage, read_write> out: array<${st}>;
struct P {
  numel: u32, rank: u32, dim: u32, _p: u32,
  in_off: u32, src_off: u32, out_off: u32, _q: u32,
  shape: array<vec4u, 2>,
  in_st: array<vec4u, 2>,
  src_st: array<vec4u, 2>,
}
@group(0) @binding(${b + 4}) var<uniform> p: P;
${WGSL_LINEAR_WORKGROUP}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = linear_workgroup(wid, nwg) * ${WG}u + lid;
  if (i >= p.numel) { return; }
  var a = p.in_off;
  var s = p.src_off;
  var tgt = 0u;
  var rem = i;
  for (var d = i32(p.rank) - 1; d >= 0; d--) {
    let n = p.shape[d >> 2][d & 3];
    let c = rem % n;
    rem = rem / n;
    a += c * p.in_st[d >> 2][d & 3];
    if (u32(d) == p.dim) { tgt = c; } else { s += c * p.src_st[d >> 2][d & 3]; }
  }
  var acc = ${hasInput ? `${ct}(input[a])` : `${ct}(0)`};
  let ss = p.src_st[p.dim >> 2][p.dim & 3];
  for (var h = starts[tgt]; h < starts[tgt + 1u]; h++) {
    acc += ${ct}(src[s + hits[h] * ss]);
  }
  out[p.out_off + i] = ${st}(acc);
}`;
  const bindings: ('read' | 'rw')[] = [...(hasInput ? ['read' as const] : []), 'read', 'read', 'read', 'rw'];
  def = { key, code, bindings, uniform: true };
  cache.set(key, def);
  return def;
}

/**
 * out (contiguous, input's shape) = input (or zeros when null) + index_add(dim, index, src) for
 * a 1-D i32 `index` (strided view of length L) and `src` of input's shape with dim = L.
 * Out-of-range indices match no target and are skipped. Deterministic (ascending j per target).
 */
export function launchIndexAdd(input: View | null, dim: number, index: View, src: View, out: View): void {
  const shape = out.shape;
  if (shape.length > MAX_RANK) throw new Error(`index_add: rank ${shape.length} > ${MAX_RANK}`);
  const numel = numelOf(shape);
  if (numel === 0) return;
  const runtime = rt();
  const targets = shape[dim]!;
  const len = index.shape.length === 0 ? 1 : index.shape[0]!;
  const idxStride = index.shape.length === 0 ? 0 : index.strides[0]!;
  const usage = GPUBufferUsage.STORAGE;
  const counts = runtime.pool.acquire(targets * 4, usage, 'index_add.counts');
  const starts = runtime.pool.acquire((targets + 1) * 4, usage, 'index_add.starts');
  const hits = runtime.pool.acquire(Math.max(1, len) * 4, usage, 'index_add.hits');
  const hp = new Params(4).u(targets, len, index.offset, idxStride).bytes();
  const groups = Math.ceil(targets / WG);
  runtime.dispatch(hitsKernel('count'), [index.buffer, counts], hp, groups);
  launchExclusiveScan(counts, 0, targets, starts, 0);
  runtime.dispatch(hitsKernel('fill'), [index.buffer, counts, starts, hits], hp, groups);
  const p = new Params(40)
    .u(numel, shape.length, dim, 0)
    .u(input?.offset ?? 0, src.offset, out.offset, 0)
    .uArray(shape, 8, 1)
    .uArray(input?.strides ?? [], 8)
    .uArray(src.strides, 8);
  const buffers = [...(input ? [input.buffer] : []), starts, hits, src.buffer, out.buffer];
  runtime.dispatch(indexAddKernel(out.dtype, !!input), buffers, p.bytes(), Math.ceil(numel / WG));
  runtime.pool.release(counts);
  runtime.pool.release(starts);
  runtime.pool.release(hits);
}
