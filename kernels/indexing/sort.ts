// Stable row sort on the GPU: bitonic sorting network over (key, original index) pairs.
//
// Every row of n elements is padded to P = next power of two. Values become order-preserving u32
// keys (floats: sign-flip trick, -0 mapped to +0 so that it ties with 0, every NaN mapped to one
// key above +inf, so NaN sorts last ascending and first descending, as torch.sort does;
// descending = bitwise-not of the key). Comparing (key, index) pairs makes every element distinct,
// so the network's output is the unique stable order: ties keep ascending original index. Pads
// get the largest key and indices >= n, so they land after every real element.
//
// Passes (B = 512 elements per 256-thread workgroup, held in workgroup memory):
//   1. local sort: load a block straight from the input (keys computed on the fly), run the whole
//      network for k = 2..min(P, B); when P <= B this already sorts whole rows (several per block).
//   2. for k = 2B..P: global compare-exchange steps for j = k/2..B (one dispatch each), then one
//      local merge for j = B/2..1 in workgroup memory.
//   3. output: values gathered from the input by the sorted indices, first `kOut` of each row.
// Dispatches for a 100k row (P = 2^17): 1 + 8 local merges + 36 global steps + 1.
// When the scratch keys or an operand are over one storage binding, blocks of rows are sorted one
// after another through binding windows (a single padded row over the limit is refused).
import { DTYPE_BYTES, type DType, WGSL_COMPUTE, WGSL_STORAGE } from '../../runtime/dtype';
import { defineKernel, rt, WGSL_LINEAR_WORKGROUP } from '../define-kernel';
import { overBindingLimit, windowRange } from '../large';

const WG = 256;
/** Elements per workgroup block (two per thread). */
export const SORT_BLOCK = 2 * WG;

function keyFn(dtype: DType): string {
  const ct = WGSL_COMPUTE[dtype];
  let body: string;
  if (ct === 'f32') {
    // NaN is tested on the bits: WGSL compilers may assume v != v is false.
    body = `var bits = bitcast<u32>(v);
  if ((bits & 0x7fffffffu) > 0x7f800000u) { bits = 0x7fc00000u; }
  if (bits == 0x80000000u) { bits = 0u; }
  return select(bits | 0x80000000u, ~bits, (bits & 0x80000000u) != 0u);`;
  } else if (ct === 'i32') body = 'return bitcast<u32>(v) ^ 0x80000000u;';
  else body = 'return v;';
  return `fn sort_key(v: ${ct}) -> u32 {\n  ${body}\n}`;
}

const COMMON = /* wgsl */ `
// true when pair a must come after pair b
fn after(ka: u32, ia: u32, kb: u32, ib: u32) -> bool { return ka > kb || (ka == kb && ia > ib); }`;

const LOCAL_NETWORK = /* wgsl */ `
var<workgroup> sk: array<u32, ${SORT_BLOCK}>;
var<workgroup> si: array<u32, ${SORT_BLOCK}>;
// One compare-exchange per thread at distance j; direction from the row position's bit k.
fn local_step(lid: u32, base: u32, k: u32, j: u32, pmask: u32) {
  let lo = ((lid & ~(j - 1u)) << 1u) | (lid & (j - 1u));
  let hi = lo + j;
  let ascending = (((base + lo) & pmask) & k) == 0u;
  let ka = sk[lo]; let ia = si[lo]; let kb = sk[hi]; let ib = si[hi];
  if (after(ka, ia, kb, ib) == ascending) {
    sk[lo] = kb; si[lo] = ib; sk[hi] = ka; si[hi] = ia;
  }
}`;

const LOCAL_PARAMS = { rows: 'u32', n: 'u32', P: 'u32', kmax: 'u32', k: 'u32', src_off: 'u32', descending: 'u32' } as const;

/** The local pass: 'sort' loads keys from the input (dtype), 'merge' from the keys buffer. */
function localBody(dtype: DType, mode: 'sort' | 'merge'): string {
  const load =
    mode === 'sort'
      ? `  for (var h = 0u; h < 2u; h++) {
    let e = lid + h * ${WG}u;
    let flat = base + e;
    let row = flat / p.P;
    let pos = flat & pmask;
    if (row < p.rows && pos < p.n) {
      var kv = sort_key(${WGSL_COMPUTE[dtype]}(src[p.src_off + row * p.n + pos]));
      if (p.descending != 0u) { kv = ~kv; }
      sk[e] = kv;
    } else {
      sk[e] = 0xffffffffu;
    }
    si[e] = pos;
  }`
      : `  for (var h = 0u; h < 2u; h++) {
    let e = lid + h * ${WG}u;
    sk[e] = keys[base + e];
    si[e] = idxs[base + e];
  }`;
  const network =
    mode === 'sort'
      ? `  for (var k = 2u; k <= p.kmax; k <<= 1u) {
    for (var j = k >> 1u; j > 0u; j >>= 1u) {
      local_step(lid, base, k, j, pmask);
      workgroupBarrier();
    }
  }`
      : `  for (var j = ${WG}u; j > 0u; j >>= 1u) {
    local_step(lid, base, p.k, j, pmask);
    workgroupBarrier();
  }`;
  return /* wgsl */ `
${WGSL_LINEAR_WORKGROUP}
${COMMON}
${mode === 'sort' ? keyFn(dtype) : ''}
${LOCAL_NETWORK}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let base = linear_workgroup(wid, nwg) * ${SORT_BLOCK}u;
  let pmask = p.P - 1u;
${load}
  workgroupBarrier();
${network}
  for (var h = 0u; h < 2u; h++) {
    let e = lid + h * ${WG}u;
    keys[base + e] = sk[e];
    idxs[base + e] = si[e];
  }
}`;
}

const localSortKernel = defineKernel({
  name: 'sort_local',
  bindings: {
    src: { type: (v) => WGSL_STORAGE[v.dtype], access: 'read' },
    keys: { type: 'u32', access: 'rw' },
    idxs: { type: 'u32', access: 'rw' },
  },
  params: LOCAL_PARAMS,
  code: ({ dtype }: { dtype: DType }) => localBody(dtype, 'sort'),
});

const localMergeKernel = defineKernel({
  name: 'sort_local_merge',
  bindings: { keys: { type: 'u32', access: 'rw' }, idxs: { type: 'u32', access: 'rw' } },
  params: LOCAL_PARAMS,
  code: () => localBody('u32', 'merge'),
});

const globalStepKernel = defineKernel({
  name: 'sort_global_step',
  bindings: { keys: { type: 'u32', access: 'rw' }, idxs: { type: 'u32', access: 'rw' } },
  params: { pairs: 'u32', P: 'u32', k: 'u32', j: 'u32' },
  code: () => /* wgsl */ `
${WGSL_LINEAR_WORKGROUP}
${COMMON}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let t = linear_workgroup(wid, nwg) * ${WG}u + lid;
  if (t >= p.pairs) { return; }
  let j = p.j;
  let lo = ((t & ~(j - 1u)) << 1u) | (t & (j - 1u));
  let hi = lo + j;
  let ascending = ((lo & (p.P - 1u)) & p.k) == 0u;
  let ka = keys[lo]; let ia = idxs[lo]; let kb = keys[hi]; let ib = idxs[hi];
  if (after(ka, ia, kb, ib) == ascending) {
    keys[lo] = kb; idxs[lo] = ib; keys[hi] = ka; idxs[hi] = ia;
  }
}`,
});

const outputKernel = defineKernel({
  name: 'sort_output',
  bindings: {
    src: { type: (v) => WGSL_STORAGE[v.dtype], access: 'read' },
    idxs: { type: 'u32', access: 'read' },
    values: { type: (v) => WGSL_STORAGE[v.dtype], access: 'rw' },
    indices: { type: 'i32', access: 'rw' },
  },
  params: { rows: 'u32', n: 'u32', P: 'u32', k_out: 'u32', src_off: 'u32', val_off: 'u32', idx_off: 'u32' },
  code: (_v: { dtype: DType }) => /* wgsl */ `
${WGSL_LINEAR_WORKGROUP}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = linear_workgroup(wid, nwg) * ${WG}u + lid;
  if (i >= p.rows * p.k_out) { return; }
  let row = i / p.k_out;
  let col = i % p.k_out;
  let idx = idxs[row * p.P + col];
  values[p.val_off + i] = src[p.src_off + row * p.n + idx];
  indices[p.idx_off + i] = i32(idx);
}`,
});

const nextPow2 = (n: number) => 2 ** Math.ceil(Math.log2(Math.max(1, n)));

/**
 * Sort each contiguous row of `src` ([rows, n] from element `srcOffset`) and write the first
 * `kOut` sorted values (same dtype) and their original row positions (i32) to the contiguous
 * `values` and `indices` buffers ([rows, kOut]). Stable: ties keep ascending original index.
 */
export function launchSortRows(
  src: GPUBuffer,
  srcOffset: number,
  dtype: DType,
  rows: number,
  n: number,
  descending: boolean,
  kOut: number,
  values: GPUBuffer,
  indices: GPUBuffer,
): void {
  if (rows === 0 || n === 0 || kOut === 0) return;
  if (kOut > n) throw new Error(`sort: cannot output ${kOut} of ${n} elements per row`);
  const runtime = rt();
  const P = nextPow2(n);
  const total = Math.ceil((rows * P) / SORT_BLOCK) * SORT_BLOCK;
  const bytes = DTYPE_BYTES[dtype];
  if (total * 4 > runtime.bindingLimit || overBindingLimit(src, values, indices)) {
    // The scratch keys or an operand over one storage binding: blocks of rows, each sorted on its
    // own (the scratch sized per block, the operands through binding windows).
    // Rows per block: the keys scratch (rounded up to whole SORT_BLOCKs) and each operand fit.
    const rowBytes = Math.max(P * 4, n * bytes, kOut * 4);
    const per = Math.floor((runtime.bindingLimit - SORT_BLOCK * 4 - 512) / rowBytes);
    if (per < 1) throw new Error(`sort: a row of ${n} elements (padded to ${P}) is over the ${runtime.bindingLimit}-byte storage binding limit (rows are not split)`);
    for (let start = 0; start < rows; start += per) {
      const count = Math.min(per, rows - start);
      const sw = windowRange(src, srcOffset + start * n, count * n, bytes);
      const vw = windowRange(values, start * kOut, count * kOut, bytes);
      const iw = windowRange(indices, start * kOut, count * kOut);
      sortRows(sw.buffer, sw.offset, dtype, count, n, descending, kOut, vw.buffer, iw.buffer, vw.offset, iw.offset);
    }
    return;
  }
  sortRows(src, srcOffset, dtype, rows, n, descending, kOut, values, indices, 0, 0);
}

function sortRows(
  src: GPUBuffer,
  srcOffset: number,
  dtype: DType,
  rows: number,
  n: number,
  descending: boolean,
  kOut: number,
  values: GPUBuffer,
  indices: GPUBuffer,
  valuesOffset: number,
  indicesOffset: number,
): void {
  const runtime = rt();
  const P = nextPow2(n);
  const total = Math.ceil((rows * P) / SORT_BLOCK) * SORT_BLOCK;
  const usage = GPUBufferUsage.STORAGE;
  const keys = runtime.pool.acquire(total * 4, usage, 'sort.keys');
  const idxs = runtime.pool.acquire(total * 4, usage, 'sort.idxs');
  const blocks = total / SORT_BLOCK;
  const lp = { rows, n, P, kmax: Math.min(P, SORT_BLOCK), k: 0, src_off: srcOffset, descending };
  localSortKernel.dispatch({ dtype }, { src, keys, idxs }, lp, blocks);
  for (let k = 2 * SORT_BLOCK; k <= P; k *= 2) {
    for (let j = k / 2; j >= SORT_BLOCK; j /= 2) {
      globalStepKernel.dispatch({}, { keys, idxs }, { pairs: total / 2, P, k, j }, Math.ceil(total / 2 / WG));
    }
    localMergeKernel.dispatch({}, { keys, idxs }, { ...lp, k }, blocks);
  }
  outputKernel.dispatch(
    { dtype },
    { src, idxs, values, indices },
    { rows, n, P, k_out: kOut, src_off: srcOffset, val_off: valuesOffset, idx_off: indicesOffset },
    Math.ceil((rows * kOut) / WG),
  );
  runtime.pool.release(keys);
  runtime.pool.release(idxs);
}
