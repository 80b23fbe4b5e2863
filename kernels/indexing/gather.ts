// Gather along one dimension: out[c] = input[c with c[dim] := index[c]] for every coordinate c of
// the output (torch.gather). The output is contiguous with the index's shape; input and index
// are strided views. index_select is the same kernel with a 1-D index expanded (stride 0) over the
// other dims, so one kernel covers both.
// Out-of-range indices (< 0 or >= input.shape[dim]) read nothing and yield 0: there is no
// readback to raise an error, and clamping would silently return a real element.
import { type DType, WGSL_STORAGE } from '../../runtime/dtype';
import { defineKernel, WGSL_LINEAR_WORKGROUP } from '../define-kernel';
import { MAX_RANK } from '../elementwise/map';
import { numelOf, type View } from '../../runtime/shape';

const WG = 256;

const gather = defineKernel({
  name: 'gather',
  bindings: {
    src: { type: (v) => WGSL_STORAGE[v.dtype], access: 'read' },
    index: { type: 'i32', access: 'read' },
    out: { type: (v) => WGSL_STORAGE[v.dtype], access: 'rw' },
  },
  params: {
    numel: 'u32', rank: 'u32', dim: 'u32', dim_size: 'u32',
    src_off: 'u32', idx_off: 'u32', out_off: 'u32',
    shape: ['u32', 8, 1], src_st: ['u32', 8], idx_st: ['u32', 8],
  },
  code: ({ dtype }: { dtype: DType }) => /* wgsl */ `
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
  let t = index[x];
  if (t < 0 || u32(t) >= p.dim_size) {
    out[p.out_off + i] = ${WGSL_STORAGE[dtype]}(0);
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
  const numel = numelOf(shape);
  if (numel === 0) return;
  gather.dispatch(
    { dtype: src.dtype },
    { src: src.buffer, index: index.buffer, out: out.buffer },
    {
      numel, rank: shape.length, dim, dim_size: src.shape[dim]!,
      src_off: src.offset, idx_off: index.offset, out_off: out.offset,
      shape, src_st: src.strides, idx_st: index.strides,
    },
    Math.ceil(numel / WG),
  );
}
