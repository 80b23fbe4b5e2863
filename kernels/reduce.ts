// Row reduction: a contiguous [rows, R] view reduced along R to [rows]. Arbitrary axis sets are
// brought to this form by core/ops/reduce.ts (permute reduced axes last, copy if not dense).
// One 256-thread workgroup per (row, chunk): each thread accumulates a strided slice, then a
// shared-memory tree combines them. When there are few rows and R is long (bias gradients,
// losses, global norms) the row is split into chunks and a second pass reduces the partials.
import { type DType, WGSL_COMPUTE, WGSL_STORAGE } from '../core/dtype';
import { type KernelDef, Params, rt, WGSL_LINEAR_WORKGROUP, WGSL_NAN } from '../core/runtime';

export type ReduceOp = 'sum' | 'max' | 'min' | 'prod';
const WG = 256;

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

const cache = new Map<string, KernelDef>();

function kernel(op: ReduceOp, inType: DType, outType: DType): KernelDef {
  const key = `reduce:${op}:${inType}>${outType}`;
  let def = cache.get(key);
  if (def) return def;
  const acc = WGSL_COMPUTE[inType];
  const nan = acc === 'f32' && (op === 'max' || op === 'min');
  const code = /* wgsl */ `
${inType === 'f16' || outType === 'f16' ? 'enable f16;' : ''}
@group(0) @binding(0) var<storage, read> src: array<${WGSL_STORAGE[inType]}>;
@group(0) @binding(1) var<storage, read_write> dst: array<${WGSL_STORAGE[outType]}>;
struct P { rows: u32, len: u32, chunks: u32, chunk_len: u32, src_off: u32, scale: f32, apply_scale: u32, _p: u32 }
@group(0) @binding(2) var<uniform> p: P;
var<workgroup> sh: array<${acc}, ${WG}>;
var<workgroup> sh_nan: array<u32, ${WG}>;
${WGSL_LINEAR_WORKGROUP}
${WGSL_NAN}
// By the bits: compilers may fold \`v != v\` to false (lavapipe does), losing NaN propagation.
fn is_nan(v: f32) -> bool { return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u; }
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let w = linear_workgroup(wid, nwg);
  if (w >= p.rows * p.chunks) { return; }
  let row = w / p.chunks;
  let chunk = w % p.chunks;
  let start = chunk * p.chunk_len;
  let end = min(start + p.chunk_len, p.len);
  var acc = ${identity(op, acc)};
  var has_nan = 0u;
  for (var j = start + lid; j < end; j += ${WG}u) {
    let v = ${acc}(src[p.src_off + row * p.len + j]);
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
    var r = sh[0];
    ${nan ? 'if (sh_nan[0] != 0u) { r = nan_f32(); }' : ''}
    ${acc === 'f32' ? 'if (p.apply_scale != 0u) { r = r * p.scale; }' : ''}
    dst[w] = ${WGSL_STORAGE[outType]}(r);
  }
}`;
  def = { key, code, bindings: ['read', 'rw'], uniform: true };
  cache.set(key, def);
  return def;
}

/**
 * Reduce the contiguous [rows, len] region starting at `srcOffset` of `src` into `dst` (rows
 * elements, from 0). `scale` multiplies the final result (mean = sum * 1/len). A NaN anywhere
 * makes max/min NaN, as in PyTorch.
 */
export function launchRowReduce(
  op: ReduceOp,
  src: GPUBuffer,
  srcOffset: number,
  inType: DType,
  dst: GPUBuffer,
  outType: DType,
  rows: number,
  len: number,
  scale = 1,
): void {
  const runtime = rt();
  let chunks = 1;
  if (rows < 128 && len > 8192) chunks = Math.min(512, Math.ceil(len / 4096));
  if (chunks === 1) {
    const p = new Params(8).u(rows, len, 1, len, srcOffset).f(scale).u(scale !== 1 ? 1 : 0, 0);
    runtime.dispatch(kernel(op, inType, outType), [src, dst], p.bytes(), rows);
    return;
  }
  const chunkLen = Math.ceil(len / chunks);
  chunks = Math.ceil(len / chunkLen);
  const partialType: DType = WGSL_COMPUTE[inType] === 'f32' ? 'f32' : inType === 'bool' ? 'u32' : inType;
  const partialBytes = rows * chunks * 4;
  const partial = runtime.pool.acquire(partialBytes, GPUBufferUsage.STORAGE, 'reduce.partial');
  const p1 = new Params(8).u(rows, len, chunks, chunkLen, srcOffset).f(1).u(0, 0);
  runtime.dispatch(kernel(op, inType, partialType), [src, partial], p1.bytes(), rows * chunks);
  const p2 = new Params(8).u(rows, chunks, 1, chunks, 0).f(scale).u(scale !== 1 ? 1 : 0, 0);
  runtime.dispatch(kernel(op, partialType, outType), [partial, dst], p2.bytes(), rows);
  runtime.pool.release(partial);
}
