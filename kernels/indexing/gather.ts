// Gather along one dimension: out[c] = input[c with c[dim] := index[c]] for every coordinate c of
// the output (torch.gather). The output is contiguous with the index's shape; input and index
// are strided views. index_select is the same kernel with a 1-D index expanded (stride 0) over the
// other dims, so one kernel covers both.
// Out-of-range indices (< 0 or >= input.shape[dim]) read nothing and yield 0: there is no
// readback to raise an error, and clamping would silently return a real element.
// Over one storage binding: blocks of the output, and passes over blocks of the source along dim
// (see gatherSplit).
import { DTYPE_BYTES, type DType, WGSL_STORAGE } from '../../runtime/dtype';
import { defineKernel, WGSL_LINEAR_WORKGROUP } from '../define-kernel';
import { MAX_RANK } from '../elementwise/map';
import { contiguousStrides, numelOf, type View } from '../../runtime/shape';
import { type BindingChunk, bindingLimit, chunkForBinding, viewWith, overBindingLimit, windowBytesBound, windowed } from '../large';

const WG = 256;

const gather = defineKernel({
  name: 'gather',
  bindings: {
    src: { type: (v) => WGSL_STORAGE[v.dtype], access: 'read' },
    index: { type: 'i32', access: 'read' },
    out: { type: (v) => WGSL_STORAGE[v.dtype], access: 'rw' },
  },
  params: {
    numel: 'u32', rank: 'u32', dim: 'u32', dim_size: 'u32', idx_base: 'i32',
    src_off: 'u32', idx_off: 'u32', out_off: 'u32',
    shape: ['u32', 8, 1], src_st: ['u32', 8], idx_st: ['u32', 8],
  },
  code: ({ dtype, keep }: { dtype: DType; keep: boolean }) => /* wgsl */ `
${WGSL_LINEAR_WORKGROUP}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = linear_workgroup(wid, nwg) * ${WG}u + lid;
  if (i >= p.numel) { return; }
  var s = p.src_off;
  var x = p.idx_off;
  var rem = i;
  for (var d = i32(p.rank) - 1; d >= 0; d--) {
    let n = p.shape[d >> 2][d & 3];
    let c = rem % n;
    rem = rem / n;
    x += c * p.idx_st[d >> 2][d & 3];
    if (u32(d) != p.dim) { s += c * p.src_st[d >> 2][d & 3]; }
  }
  let t = index[x] - p.idx_base;
  if (t < 0 || u32(t) >= p.dim_size) {
    ${keep ? '' : `out[p.out_off + i] = ${WGSL_STORAGE[dtype]}(0);`}
    return;
  }
  out[p.out_off + i] = src[s + u32(t) * p.src_st[p.dim >> 2][p.dim & 3]];
}`,
});

/**
 * out (contiguous, shape = index.shape, starting at out.offset) = src gathered along `dim` by
 * `index` (i32). Both `src` and `index` may be strided; index may be expanded (stride 0).
 */
export function launchGather(src: View, dim: number, index: View, out: View): void {
  const shape = index.shape;
  if (shape.length > MAX_RANK) throw new Error(`gather: rank ${shape.length} > ${MAX_RANK}`);
  if (numelOf(shape) === 0) return;
  if (overBindingLimit(src.buffer, index.buffer, out.buffer)) return gatherSplit(src, dim, index, out);
  dispatchGather(src, dim, index, out, 0, false);
}

function dispatchGather(src: View, dim: number, index: View, out: View, idxBase: number, keep: boolean): void {
  const shape = index.shape;
  const numel = numelOf(shape);
  gather.dispatch(
    { dtype: src.dtype, keep },
    { src: src.buffer, index: index.buffer, out: out.buffer },
    {
      numel, rank: shape.length, dim, dim_size: src.shape[dim]!, idx_base: idxBase,
      src_off: src.offset, idx_off: index.offset, out_off: out.offset,
      shape, src_st: src.strides, idx_st: index.strides,
    },
    Math.ceil(numel / WG),
  );
}

/**
 * Gather with an operand over one storage binding: blocks of the output (with the index's
 * matching block) through binding windows, each with the source's matching region whole along
 * `dim` (where the indices may point anywhere). Where no block can take the source whole along
 * `dim`, the region is read in blocks along `dim` instead: the first block's pass writes every
 * output element (0 where its index lies outside the block), each later pass only the elements
 * whose index lies in its block.
 */
function gatherSplit(src: View, dim: number, index: View, out: View): void {
  const outV = viewWith(out, { shape: index.shape, strides: contiguousStrides(index.shape) });
  const srcAt = (extent: number) => viewWith(src, { shape: index.shape.map((n, d) => (d === dim ? extent : n)) });
  const whole = { dim, operands: [false, false, true] };
  let chunks: BindingChunk[] | null = null;
  try {
    chunks = chunkForBinding(index.shape, [index, outV, srcAt(src.shape[dim]!)], whole);
  } catch {
    // Even one output element's source fibre is over the limit: passes over blocks along dim.
  }
  if (chunks) {
    for (const c of chunks) dispatchGather(c.views[2]!, dim, c.views[0]!, c.views[1]!, 0, false);
    return;
  }
  const limit = bindingLimit();
  const bytes = DTYPE_BYTES[src.dtype];
  let blocks: BindingChunk[];
  try {
    blocks = chunkForBinding(index.shape, [index, outV, srcAt(1)], whole);
  } catch (e) {
    throw new Error(`gather: source [${src.shape}] over the ${limit}-byte storage binding limit cannot be split: ${(e as Error).message}`);
  }
  const n = src.shape[dim]!;
  for (const c of blocks) {
    // The chunk's source region (unwindowed: each block along dim gets its own window).
    const base = viewWith(src, { shape: c.views[2]!.shape, offset: src.offset + c.start.reduce((acc, st, d) => acc + (d === dim ? 0 : st * src.strides[d]!), 0) });
    const withLen = (len: number) => base.shape.map((m, d) => (d === dim ? len : m));
    // The longest block along dim whose window fits (at least 1: the chunking made sure).
    let lo = 1;
    let hi = n;
    while (lo < hi) {
      const mid = Math.ceil((lo + hi) / 2);
      if (windowBytesBound(withLen(mid), src.strides, bytes) <= limit) lo = mid;
      else hi = mid - 1;
    }
    for (let t0 = 0; t0 < n; t0 += lo) {
      const len = Math.min(lo, n - t0);
      const v = viewWith(base, { shape: withLen(len), offset: base.offset + t0 * src.strides[dim]! });
      dispatchGather(windowed(v), dim, c.views[0]!, c.views[1]!, t0, t0 > 0);
    }
  }
}
