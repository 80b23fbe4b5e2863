// Gather along one dimension: out[c] = input[c with c[dim] := index[c]] for every coordinate c of
// the output (torch.gather). The output is contiguous with the index's shape; input and index
// are strided views. index_select is the same kernel with a 1-D index expanded (stride 0) over the
// other dims, so one kernel covers both.
// Out-of-range indices (< 0 or >= input.shape[dim]) read nothing and yield 0: there is no
// readback to raise an error, and clamping would silently return a real element.
import { type DType, WGSL_STORAGE } from '../runtime/dtype';
import { type KernelDef, Params, rt, WGSL_LINEAR_WORKGROUP } from '../runtime/runtime';
import { numelOf, type View } from '../runtime/shape';
import { MAX_RANK } from './elementwise/map';

const WG = 256;
const cache = new Map<string, KernelDef>();

function gatherKernel(dtype: DType): KernelDef {
  const key = `gather:${dtype}`;
  let def = cache.get(key);
  if (def) return def;
  const code = /* wgsl */ `
${dtype === 'f16' ? 'enable f16;' : ''}
@group(0) @binding(0) var<storage, read> src: array<${WGSL_STORAGE[dtype]}>;
@group(0) @binding(1) var<storage, read> index: array<i32>;
@group(0) @binding(2) var<storage, read_write> out: array<${WGSL_STORAGE[dtype]}>;
struct P {
  numel: u32, rank: u32, dim: u32, dim_size: u32,
  src_off: u32, idx_off: u32, out_off: u32, _p: u32,
  shape: array<vec4u, 2>,
  src_st: array<vec4u, 2>,
  idx_st: array<vec4u, 2>,
}
@group(0) @binding(3) var<uniform> p: P;
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
}`;
  def = { key, code, bindings: ['read', 'read', 'rw'], uniform: true };
  cache.set(key, def);
  return def;
}

/**
 * out (contiguous, shape = index.shape, starting at out.offset) = src gathered along `dim` by
 * `index` (i32). Both `src` and `index` may be strided; index may be expanded (stride 0).
 */
export function launchGather(src: View, dim: number, index: View, out: View): void {
  const shape = index.shape;
  if (shape.length > MAX_RANK) throw new Error(`gather: rank ${shape.length} > ${MAX_RANK}`);
  const numel = numelOf(shape);
  if (numel === 0) return;
  const p = new Params(40)
    .u(numel, shape.length, dim, src.shape[dim]!)
    .u(src.offset, index.offset, out.offset, 0)
    .uArray(shape, 8, 1)
    .uArray(src.strides, 8)
    .uArray(index.strides, 8);
  rt().dispatch(gatherKernel(src.dtype), [src.buffer, index.buffer, out.buffer], p.bytes(), Math.ceil(numel / WG));
}
