// Stream compaction: an exclusive prefix sum (scan) of u32 flags, then kernels that move each
// flagged element to its scanned position (nonzero's coordinates, masked_select's values) and
// the inverse (masked_scatter, for masked_select's backward).
//
// Scan: each 256-thread workgroup scans a block of 1024 flags (4 per thread, then a
// Hillis-Steele scan of the 256 thread totals in workgroup memory) and writes its block total;
// with more than one block the block totals are scanned recursively and added back. The scan has
// n + 1 outputs: out[n] is the total count, the only value the ops read back.
import { type DType, WGSL_STORAGE } from '../runtime/dtype';
import { type KernelDef, Params, rt, WGSL_LINEAR_WORKGROUP } from '../runtime/runtime';
import { MAX_RANK } from './elementwise/map';

const WG = 256;
const PER_THREAD = 4;
const BLOCK = WG * PER_THREAD;
const cache = new Map<string, KernelDef>();

function def(key: string, bindings: ('read' | 'rw')[], code: () => string): KernelDef {
  let d = cache.get(key);
  if (!d) {
    d = { key, code: code(), bindings, uniform: true };
    cache.set(key, d);
  }
  return d;
}

const scanBlocksKernel = () =>
  def('compact_scan_blocks', ['read', 'rw', 'rw'], () => /* wgsl */ `
@group(0) @binding(0) var<storage, read> flags: array<u32>;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;
@group(0) @binding(2) var<storage, read_write> sums: array<u32>;
struct P { n: u32, flags_off: u32, out_off: u32, _p: u32 }
@group(0) @binding(3) var<uniform> p: P;
var<workgroup> sh: array<u32, ${WG}>;
${WGSL_LINEAR_WORKGROUP}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let blk = linear_workgroup(wid, nwg);
  let base = blk * ${BLOCK}u + lid * ${PER_THREAD}u;
  var local_excl: array<u32, ${PER_THREAD}>;
  var run = 0u;
  for (var e = 0u; e < ${PER_THREAD}u; e++) {
    local_excl[e] = run;
    if (base + e < p.n) { run += flags[p.flags_off + base + e]; }
  }
  sh[lid] = run;
  workgroupBarrier();
  for (var s = 1u; s < ${WG}u; s <<= 1u) {
    var add = 0u;
    if (lid >= s) { add = sh[lid - s]; }
    workgroupBarrier();
    sh[lid] += add;
    workgroupBarrier();
  }
  var prefix = 0u;
  if (lid > 0u) { prefix = sh[lid - 1u]; }
  for (var e = 0u; e < ${PER_THREAD}u; e++) {
    if (base + e <= p.n) { out[p.out_off + base + e] = prefix + local_excl[e]; }
  }
  if (lid == ${WG - 1}u) { sums[blk] = sh[${WG - 1}u]; }
}`);

const addOffsetsKernel = () =>
  def('compact_add_offsets', ['read', 'rw'], () => /* wgsl */ `
@group(0) @binding(0) var<storage, read> offsets: array<u32>;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;
struct P { count: u32, out_off: u32, _a: u32, _b: u32 }
@group(0) @binding(2) var<uniform> p: P;
${WGSL_LINEAR_WORKGROUP}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = linear_workgroup(wid, nwg) * ${WG}u + lid;
  if (i >= p.count) { return; }
  out[p.out_off + i] += offsets[i / ${BLOCK}u];
}`);

/**
 * Exclusive prefix sum of the n u32 `flags` (from element flagsOffset) into out[0..n] (n + 1
 * values from element outOffset; out[n] = total). Works for any n (recursive over blocks).
 */
export function launchExclusiveScan(flags: GPUBuffer, flagsOffset: number, n: number, out: GPUBuffer, outOffset: number): void {
  const runtime = rt();
  const blocks = Math.ceil((n + 1) / BLOCK);
  const usage = GPUBufferUsage.STORAGE;
  const sums = runtime.pool.acquire(blocks * 4, usage, 'scan.sums');
  runtime.dispatch(scanBlocksKernel(), [flags, out, sums], new Params(4).u(n, flagsOffset, outOffset, 0).bytes(), blocks);
  if (blocks > 1) {
    const offsets = runtime.pool.acquire((blocks + 1) * 4, usage, 'scan.offsets');
    launchExclusiveScan(sums, 0, blocks, offsets, 0);
    runtime.dispatch(addOffsetsKernel(), [offsets, out], new Params(4).u(n + 1, outOffset, 0, 0).bytes(), Math.ceil((n + 1) / WG));
    runtime.pool.release(offsets);
  }
  runtime.pool.release(sums);
}

/** Plain reference of the scan (host side), the readable path the GPU scan is checked against. */
export function exclusiveScanReference(flags: ArrayLike<number>): Uint32Array {
  const out = new Uint32Array(flags.length + 1);
  for (let i = 0; i < flags.length; i++) out[i + 1] = out[i]! + flags[i]!;
  return out;
}

const nonzeroKernel = () =>
  def('compact_nonzero', ['read', 'read', 'rw'], () => /* wgsl */ `
@group(0) @binding(0) var<storage, read> flags: array<u32>;
@group(0) @binding(1) var<storage, read> pos: array<u32>;
@group(0) @binding(2) var<storage, read_write> coords: array<i32>;
struct P { n: u32, rank: u32, flags_off: u32, pos_off: u32, shape: array<vec4u, 2> }
@group(0) @binding(3) var<uniform> p: P;
${WGSL_LINEAR_WORKGROUP}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = linear_workgroup(wid, nwg) * ${WG}u + lid;
  if (i >= p.n || flags[p.flags_off + i] == 0u) { return; }
  let row = pos[p.pos_off + i] * p.rank;
  var rem = i;
  for (var d = i32(p.rank) - 1; d >= 0; d--) {
    let size = p.shape[d >> 2][d & 3];
    coords[row + u32(d)] = i32(rem % size);
    rem = rem / size;
  }
}`);

/** coords[pos[i], :] = multi-index of i in `shape`, for every flagged i (coords is [count, rank]). */
export function launchNonzeroCoords(flags: GPUBuffer, flagsOffset: number, pos: GPUBuffer, posOffset: number, shape: readonly number[], n: number, coords: GPUBuffer): void {
  if (n === 0 || shape.length === 0) return;
  if (shape.length > MAX_RANK) throw new Error(`nonzero: rank ${shape.length} > ${MAX_RANK}`);
  const p = new Params(12).u(n, shape.length, flagsOffset, posOffset).uArray(shape, 8, 1);
  rt().dispatch(nonzeroKernel(), [flags, pos, coords], p.bytes(), Math.ceil(n / WG));
}

const compactKernel = (dtype: DType, inverse: boolean) => {
  const st = WGSL_STORAGE[dtype];
  const body = inverse
    ? `var v = ${st}(0);
  if (flags[p.flags_off + i] != 0u) { v = src[p.src_off + pos[p.pos_off + i]]; }
  dst[p.dst_off + i] = v;`
    : `if (flags[p.flags_off + i] == 0u) { return; }
  dst[p.dst_off + pos[p.pos_off + i]] = src[p.src_off + i];`;
  return def(`compact_${inverse ? 'expand' : 'select'}:${dtype}`, ['read', 'read', 'read', 'rw'], () => /* wgsl */ `
${dtype === 'f16' ? 'enable f16;' : ''}
@group(0) @binding(0) var<storage, read> flags: array<u32>;
@group(0) @binding(1) var<storage, read> pos: array<u32>;
@group(0) @binding(2) var<storage, read> src: array<${st}>;
@group(0) @binding(3) var<storage, read_write> dst: array<${st}>;
struct P { n: u32, flags_off: u32, pos_off: u32, src_off: u32, dst_off: u32, _a: u32, _b: u32, _c: u32 }
@group(0) @binding(4) var<uniform> p: P;
${WGSL_LINEAR_WORKGROUP}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = linear_workgroup(wid, nwg) * ${WG}u + lid;
  if (i >= p.n) { return; }
  ${body}
}`);
};

export interface CompactOperands {
  flags: GPUBuffer;
  flagsOffset: number;
  pos: GPUBuffer;
  posOffset: number;
  n: number;
  dtype: DType;
}

/** dst[pos[i]] = src[i] for every flagged i < n (src and dst contiguous, element offsets). */
export function launchCompact(op: CompactOperands, src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number): void {
  if (op.n === 0) return;
  const p = new Params(8).u(op.n, op.flagsOffset, op.posOffset, srcOffset, dstOffset, 0, 0, 0);
  rt().dispatch(compactKernel(op.dtype, false), [op.flags, op.pos, src, dst], p.bytes(), Math.ceil(op.n / WG));
}

/** The inverse: dst[i] = flagged ? src[pos[i]] : 0 for every i < n (masked_scatter into zeros). */
export function launchExpand(op: CompactOperands, src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number): void {
  if (op.n === 0) return;
  const p = new Params(8).u(op.n, op.flagsOffset, op.posOffset, srcOffset, dstOffset, 0, 0, 0);
  rt().dispatch(compactKernel(op.dtype, true), [op.flags, op.pos, src, dst], p.bytes(), Math.ceil(op.n / WG));
}
