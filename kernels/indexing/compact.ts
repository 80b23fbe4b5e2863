// Stream compaction: an exclusive prefix sum (scan) of u32 flags, then kernels that move each
// flagged element to its scanned position (nonzero's coordinates, masked_select's values) and
// the inverse (masked_scatter, for masked_select's backward).
//
// Scan: each 256-thread workgroup scans a block of 1024 flags (4 per thread, then a
// Hillis-Steele scan of the 256 thread totals in workgroup memory) and writes its block total;
// with more than one block the block totals are scanned recursively and added back. The scan has
// n + 1 outputs: out[n] is the total count, the only value the ops read back.
import { type DType, WGSL_STORAGE } from '../../runtime/dtype';
import { defineKernel, rt, WGSL_LINEAR_WORKGROUP } from '../define-kernel';
import { MAX_RANK } from '../elementwise/map';

const WG = 256;
const PER_THREAD = 4;
const BLOCK = WG * PER_THREAD;
const scanBlocksKernel = defineKernel({
  name: 'compact_scan_blocks',
  bindings: { flags: { type: 'u32', access: 'read' }, out: { type: 'u32', access: 'rw' }, sums: { type: 'u32', access: 'rw' } },
  params: { n: 'u32', flags_off: 'u32', out_off: 'u32' },
  code: () => /* wgsl */ `
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
}`,
});

const addOffsetsKernel = defineKernel({
  name: 'compact_add_offsets',
  bindings: { offsets: { type: 'u32', access: 'read' }, out: { type: 'u32', access: 'rw' } },
  params: { count: 'u32', out_off: 'u32' },
  code: () => /* wgsl */ `
${WGSL_LINEAR_WORKGROUP}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = linear_workgroup(wid, nwg) * ${WG}u + lid;
  if (i >= p.count) { return; }
  out[p.out_off + i] += offsets[i / ${BLOCK}u];
}`,
});

/**
 * Exclusive prefix sum of the n u32 `flags` (from element flagsOffset) into out[0..n] (n + 1
 * values from element outOffset; out[n] = total). Works for any n (recursive over blocks).
 */
export function launchExclusiveScan(flags: GPUBuffer, flagsOffset: number, n: number, out: GPUBuffer, outOffset: number): void {
  const runtime = rt();
  const blocks = Math.ceil((n + 1) / BLOCK);
  const usage = GPUBufferUsage.STORAGE;
  const sums = runtime.pool.acquire(blocks * 4, usage, 'scan.sums');
  scanBlocksKernel.dispatch({}, { flags, out, sums }, { n, flags_off: flagsOffset, out_off: outOffset }, blocks);
  if (blocks > 1) {
    const offsets = runtime.pool.acquire((blocks + 1) * 4, usage, 'scan.offsets');
    launchExclusiveScan(sums, 0, blocks, offsets, 0);
    addOffsetsKernel.dispatch({}, { offsets, out }, { count: n + 1, out_off: outOffset }, Math.ceil((n + 1) / WG));
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

const nonzeroKernel = defineKernel({
  name: 'compact_nonzero',
  bindings: { flags: { type: 'u32', access: 'read' }, pos: { type: 'u32', access: 'read' }, coords: { type: 'i32', access: 'rw' } },
  params: { n: 'u32', rank: 'u32', flags_off: 'u32', pos_off: 'u32', shape: ['u32', 8, 1] },
  code: () => /* wgsl */ `
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
}`,
});

/** coords[pos[i], :] = multi-index of i in `shape`, for every flagged i (coords is [count, rank]). */
export function launchNonzeroCoords(flags: GPUBuffer, flagsOffset: number, pos: GPUBuffer, posOffset: number, shape: readonly number[], n: number, coords: GPUBuffer): void {
  if (n === 0 || shape.length === 0) return;
  if (shape.length > MAX_RANK) throw new Error(`nonzero: rank ${shape.length} > ${MAX_RANK}`);
  nonzeroKernel.dispatch({}, { flags, pos, coords }, { n, rank: shape.length, flags_off: flagsOffset, pos_off: posOffset, shape }, Math.ceil(n / WG));
}

const compactKernel = defineKernel({
  name: 'compact_move',
  bindings: {
    flags: { type: 'u32', access: 'read' },
    pos: { type: 'u32', access: 'read' },
    src: { type: (v) => WGSL_STORAGE[v.dtype], access: 'read' },
    dst: { type: (v) => WGSL_STORAGE[v.dtype], access: 'rw' },
  },
  params: { n: 'u32', flags_off: 'u32', pos_off: 'u32', src_off: 'u32', dst_off: 'u32' },
  code: ({ dtype, inverse }: { dtype: DType; inverse: boolean }) => {
  const st = WGSL_STORAGE[dtype];
  const body = inverse
    ? `var v = ${st}(0);
  if (flags[p.flags_off + i] != 0u) { v = src[p.src_off + pos[p.pos_off + i]]; }
  dst[p.dst_off + i] = v;`
    : `if (flags[p.flags_off + i] == 0u) { return; }
  dst[p.dst_off + pos[p.pos_off + i]] = src[p.src_off + i];`;
  return /* wgsl */ `
${WGSL_LINEAR_WORKGROUP}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = linear_workgroup(wid, nwg) * ${WG}u + lid;
  if (i >= p.n) { return; }
  ${body}
}`;
  },
});

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
  moveDispatch(op, false, src, srcOffset, dst, dstOffset);
}

/** The inverse: dst[i] = flagged ? src[pos[i]] : 0 for every i < n (masked_scatter into zeros). */
export function launchExpand(op: CompactOperands, src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number): void {
  if (op.n === 0) return;
  moveDispatch(op, true, src, srcOffset, dst, dstOffset);
}

function moveDispatch(op: CompactOperands, inverse: boolean, src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number): void {
  compactKernel.dispatch(
    { dtype: op.dtype, inverse },
    { flags: op.flags, pos: op.pos, src, dst },
    { n: op.n, flags_off: op.flagsOffset, pos_off: op.posOffset, src_off: srcOffset, dst_off: dstOffset },
    Math.ceil(op.n / WG),
  );
}
