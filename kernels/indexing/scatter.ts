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
import { DTYPE_BYTES, type DType, WGSL_COMPUTE, WGSL_STORAGE } from '../../runtime/dtype';
import { type BindingChunk, bindingLimit, chunkForBinding, viewWith, overBindingLimit, rowBlocks, windowBytesBound, windowRange } from '../large';
import { defineKernel, rt, WGSL_LINEAR_WORKGROUP } from '../define-kernel';
import { MAX_RANK } from '../elementwise/map';
import { contiguousStrides, numelOf, type View } from '../../runtime/shape';
import { launchExclusiveScan } from './compact';

const WG = 256;
/** Variant of the kernels that add into an optional input (zeros without one). */
interface AddVariant {
  dtype: DType;
  hasInput: boolean;
}

const scatterAddKernel = defineKernel({
  name: 'scatter_add',
  bindings: {
    input: { type: (v) => WGSL_STORAGE[v.dtype], access: 'read', when: (v) => v.hasInput },
    index: { type: 'i32', access: 'read' },
    src: { type: (v) => WGSL_STORAGE[v.dtype], access: 'read' },
    out: { type: (v) => WGSL_STORAGE[v.dtype], access: 'rw' },
  },
  params: {
    numel: 'u32', rank: 'u32', dim: 'u32', fibre: 'u32', tgt_base: 'u32',
    in_off: 'u32', idx_off: 'u32', src_off: 'u32', out_off: 'u32',
    shape: ['u32', 8, 1], idx_shape: ['u32', 8, 1], in_st: ['u32', 8], idx_st: ['u32', 8], src_st: ['u32', 8],
  },
  code: ({ dtype, hasInput }: AddVariant) => {
  const st = WGSL_STORAGE[dtype];
  const ct = WGSL_COMPUTE[dtype];
  return /* wgsl */ `
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
      tgt = p.tgt_base + c;
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
  },
});

/**
 * out (contiguous, shape = outShape) = input (or zeros when `input` is null) plus, for every
 * position c of `index` (shape idxShape; strided, possibly expanded), src[c] added at
 * c with c[dim] := index[c]. `src` is read at the coordinates of `index` with its own strides.
 */
export function launchScatterAdd(input: View | null, dim: number, index: View, src: View, out: View): void {
  const shape = out.shape;
  if (shape.length > MAX_RANK) throw new Error(`scatter_add: rank ${shape.length} > ${MAX_RANK}`);
  if (numelOf(shape) === 0) return;
  if (overBindingLimit(input?.buffer, index.buffer, src.buffer, out.buffer)) {
    // Over one storage binding: blocks of the output (any dim, the target coordinate shifted by
    // the block's start), each with the whole index and src fibres along dim it reads.
    if (index.shape.some((n, d) => d !== dim && n !== shape[d])) {
      throw new Error(`scatter_add: index [${index.shape}] over the ${bindingLimit()}-byte storage binding limit must match the output [${shape}] outside dim ${dim}`);
    }
    const outV = viewWith(out, { strides: contiguousStrides(shape) });
    const ops = input ? [outV, input, index, src] : [outV, index, src];
    const whole = { dim, operands: ops.map((v) => v === index || v === src) };
    for (const c of chunkOr('scatter_add', shape, ops, whole)) {
      const [o, a, x, s] = input ? c.views : [c.views[0]!, null, c.views[1]!, c.views[2]!];
      dispatchScatterAdd(a, dim, x!, s!, o!, c.start[dim]!);
    }
    return;
  }
  dispatchScatterAdd(input, dim, index, src, out, 0);
}

function dispatchScatterAdd(input: View | null, dim: number, index: View, src: View, out: View, tgtBase: number): void {
  const shape = out.shape;
  const numel = numelOf(shape);
  const fibre = numelOf(index.shape) === 0 ? 0 : index.shape[dim]!;
  scatterAddKernel.dispatch(
    { dtype: out.dtype, hasInput: !!input },
    { input: input?.buffer, index: index.buffer, src: src.buffer, out: out.buffer },
    {
      numel, rank: shape.length, dim, fibre, tgt_base: tgtBase,
      in_off: input?.offset ?? 0, idx_off: index.offset, src_off: src.offset, out_off: out.offset,
      shape, idx_shape: index.shape, in_st: input?.strides ?? [], idx_st: index.strides, src_st: src.strides,
    },
    Math.ceil(numel / WG),
  );
}

/** chunkForBinding, its error naming the op. */
function chunkOr(op: string, shape: readonly number[], ops: View[], whole: { dim: number; operands: boolean[] }): BindingChunk[] {
  try {
    return chunkForBinding(shape, ops, whole);
  } catch (e) {
    throw new Error(`${op}: output [${shape}] over the storage binding limit cannot be split: ${(e as Error).message}`);
  }
}

const scatterRowsKernel = defineKernel({
  name: 'scatter_rows',
  bindings: {
    g: { type: (v) => WGSL_STORAGE[v.dtype], access: 'read' },
    index: { type: 'i32', access: 'read' },
    out: { type: (v) => WGSL_STORAGE[v.dtype], access: 'rw' },
  },
  params: { rows: 'u32', k: 'u32', n: 'u32', g_off: 'u32', idx_off: 'u32', out_off: 'u32' },
  code: (_v: { dtype: DType }) => /* wgsl */ `
${WGSL_LINEAR_WORKGROUP}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = linear_workgroup(wid, nwg) * ${WG}u + lid;
  if (i >= p.rows * p.k) { return; }
  let r = i / p.k;
  let t = index[p.idx_off + i];
  if (t < 0 || u32(t) >= p.n) { return; }
  out[p.out_off + r * p.n + u32(t)] = g[p.g_off + i];
}`,
});

/**
 * out[r, index[r, j]] = g[r, j] for contiguous g, index [rows, k] and out [rows, n]. The indices
 * of a row must be distinct (a permutation or a top-k selection); elements of out that no index
 * names keep their value (zero-fill out first). Out-of-range indices are skipped.
 */
export function launchScatterRows(g: View, index: View, out: View, rows: number, k: number, n: number): void {
  if (rows * k === 0) return;
  if (overBindingLimit(g.buffer, index.buffer, out.buffer)) {
    // Over one storage binding: blocks of rows through binding windows (kernels/large.ts).
    const gb = DTYPE_BYTES[g.dtype];
    for (const { start, count } of rowBlocks('sort backward (scatter_rows)', rows, Math.max(k * gb, k * 4, n * DTYPE_BYTES[out.dtype]))) {
      const gw = windowRange(g.buffer, g.offset + start * k, count * k, gb);
      const iw = windowRange(index.buffer, index.offset + start * k, count * k);
      const ow = windowRange(out.buffer, out.offset + start * n, count * n, DTYPE_BYTES[out.dtype]);
      scatterRowsKernel.dispatch(
        { dtype: g.dtype },
        { g: gw.buffer, index: iw.buffer, out: ow.buffer },
        { rows: count, k, n, g_off: gw.offset, idx_off: iw.offset, out_off: ow.offset },
        Math.ceil((count * k) / WG),
      );
    }
    return;
  }
  scatterRowsKernel.dispatch(
    { dtype: g.dtype },
    { g: g.buffer, index: index.buffer, out: out.buffer },
    { rows, k, n, g_off: g.offset, idx_off: index.offset, out_off: out.offset },
    Math.ceil((rows * k) / WG),
  );
}

// ---- index_add through hit lists ---------------------------------------------------------------
// With a 1-D index (index_add, index_select's backward) the contributions to target slice t are
// the positions j with index[j] == t, the same for every element of the slice. So the hit lists
// are built once (count per target, exclusive scan, fill in ascending j: O(N·L) for N targets and
// L indices) and each output element then reads only its own hits, in ascending j: the same
// summation order as launchScatterAdd (bit-identical results), at O(out.numel + src.numel) cost.

const hitsKernel = defineKernel({
  name: 'index_hits',
  variants: { mode: ['count', 'fill'] },
  bindings: {
    index: { type: 'i32', access: 'read' },
    counts: { type: 'u32', access: 'rw' },
    starts: { type: 'u32', access: 'read', when: (v) => v.mode === 'fill' },
    hits: { type: 'u32', access: 'rw', when: (v) => v.mode === 'fill' },
  },
  params: { targets: 'u32', len: 'u32', idx_off: 'u32', idx_st: 'u32' },
  code: ({ mode }) => /* wgsl */ `
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
}`,
});

const indexAddKernel = defineKernel({
  name: 'index_add_hits',
  bindings: {
    input: { type: (v) => WGSL_STORAGE[v.dtype], access: 'read', when: (v) => v.hasInput },
    starts: { type: 'u32', access: 'read' },
    hits: { type: 'u32', access: 'read' },
    src: { type: (v) => WGSL_STORAGE[v.dtype], access: 'read' },
    out: { type: (v) => WGSL_STORAGE[v.dtype], access: 'rw' },
  },
  params: {
    numel: 'u32', rank: 'u32', dim: 'u32', tgt_base: 'u32', j0: 'u32', jlen: 'u32',
    in_off: 'u32', src_off: 'u32', out_off: 'u32',
    shape: ['u32', 8, 1], in_st: ['u32', 8], src_st: ['u32', 8],
  },
  // `block`: src holds only the positions [j0, j0 + jlen) of the index (one pass of several).
  code: ({ dtype, hasInput, block }: AddVariant & { block: boolean }) => {
  const st = WGSL_STORAGE[dtype];
  const ct = WGSL_COMPUTE[dtype];
  return /* wgsl */ `
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
    if (u32(d) == p.dim) { tgt = p.tgt_base + c; } else { s += c * p.src_st[d >> 2][d & 3]; }
  }
  var acc = ${hasInput ? `${ct}(input[a])` : `${ct}(0)`};
  let ss = p.src_st[p.dim >> 2][p.dim & 3];
  for (var h = starts[tgt]; h < starts[tgt + 1u]; h++) {
    ${block ? `let j = hits[h];
    if (j >= p.j0 && j < p.j0 + p.jlen) { acc += ${ct}(src[s + (j - p.j0) * ss]); }` : `acc += ${ct}(src[s + hits[h] * ss]);`}
  }
  out[p.out_off + i] = ${st}(acc);
}`;
  },
});

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
  const hp = { targets, len, idx_off: index.offset, idx_st: idxStride };
  const groups = Math.ceil(targets / WG);
  hitsKernel.dispatch({ mode: 'count' }, { index: index.buffer, counts }, hp, groups);
  launchExclusiveScan(counts, 0, targets, starts, 0);
  hitsKernel.dispatch({ mode: 'fill' }, { index: index.buffer, counts, starts, hits }, hp, groups);
  const dispatch = (a: View | null, sv: View, o: View, tgtBase: number, j0 = 0, jlen = len, block = false) =>
    indexAddKernel.dispatch(
      { dtype: o.dtype, hasInput: !!a, block },
      { input: a?.buffer, starts, hits, src: sv.buffer, out: o.buffer },
      {
        numel: numelOf(o.shape), rank: shape.length, dim, tgt_base: tgtBase, j0, jlen,
        in_off: a?.offset ?? 0, src_off: sv.offset, out_off: o.offset,
        shape: o.shape, in_st: a?.strides ?? [], src_st: sv.strides,
      },
      Math.ceil(numelOf(o.shape) / WG),
    );
  if (overBindingLimit(input?.buffer, src.buffer, out.buffer)) indexAddSplit(input, dim, src, out, len, dispatch);
  else dispatch(input, src, out, 0);
  runtime.pool.release(counts);
  runtime.pool.release(starts);
  runtime.pool.release(hits);
}

type IndexAddDispatch = (a: View | null, sv: View, o: View, tgtBase: number, j0?: number, jlen?: number, block?: boolean) => void;

/**
 * index_add with an operand over one storage binding: blocks of the output (the target coordinate
 * shifted by the block's start), each with src whole along dim. Where src's fibres along dim are
 * too long for that (an index_add along the outer dim of a big tensor), passes over blocks of src
 * along dim: each pass adds its block's hits to the previous pass's result (ping-pong scratch:
 * a dispatch may not read and write one buffer), in ascending index position as in one pass, so
 * f32 results are bit-identical to the unsplit kernel's.
 */
function indexAddSplit(input: View | null, dim: number, src: View, out: View, len: number, dispatch: IndexAddDispatch): void {
  const shape = out.shape;
  const outV = viewWith(out, { strides: contiguousStrides(shape) });
  const chunked = (target: View, prev: View | null, sv: View, each: (c: BindingChunk) => void) => {
    const ops = prev ? [target, prev, sv] : [target, sv];
    for (const c of chunkOr('index_add', shape, ops, { dim, operands: ops.map((v) => v === sv) })) each(c);
  };
  const limit = bindingLimit();
  const bytes = DTYPE_BYTES[src.dtype];
  const fibre = (n: number) => windowBytesBound(src.shape.map((m, d) => (d === dim ? n : 1)), src.strides, bytes);
  if (fibre(len) <= limit / 2) {
    chunked(outV, input, src, (c) => dispatch(input ? c.views[1]! : null, c.views[input ? 2 : 1]!, c.views[0]!, c.start[dim]!));
    return;
  }
  if (fibre(1) > limit) throw new Error(`index_add: one element of src [${src.shape}] is over the ${limit}-byte storage binding limit`);
  // Longest src block along dim whose fibre takes at most half a binding (room for other dims).
  let lo = 1;
  let hi = len;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (fibre(mid) <= Math.max(limit / 2, fibre(1))) lo = mid;
    else hi = mid - 1;
  }
  const pool = rt().pool;
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
  const scratch = [0, 1].map(() => viewWith(outV, { buffer: pool.acquire(Math.max(numelOf(shape), 1) * DTYPE_BYTES[out.dtype], usage, 'index_add.pass'), offset: 0 }));
  let prev: View | null = input;
  for (let j0 = 0, k = 0; j0 < len; j0 += lo, k++) {
    const jlen = Math.min(lo, len - j0);
    const target = j0 + jlen >= len ? outV : scratch[k % 2]!;
    const sv = viewWith(src, { shape: src.shape.map((m, d) => (d === dim ? jlen : m)), offset: src.offset + j0 * src.strides[dim]! });
    const p = prev;
    chunked(target, p, sv, (c) => dispatch(p ? c.views[1]! : null, c.views[p ? 2 : 1]!, c.views[0]!, c.start[dim]!, j0, jlen, true));
    prev = target;
  }
  for (const v of scratch) pool.release(v.buffer);
}
