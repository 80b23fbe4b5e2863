// Box kernels: pairwise IoU, a bitonic sort of (score, index) pairs (score descending, ties by lower
// index first: the total order a stable descending sort gives, as torchvision's nms uses), the NMS
// IoU bitmask and the greedy NMS pass.
//
// Greedy pass: runs on the GPU in ONE workgroup. Box i (in score order) is kept iff no kept box
// before it suppresses it; the suppressed set is a bitset in workgroup memory, OR-ed with the kept
// box's mask row by all threads in parallel. Each step depends on the previous one, so a single
// workgroup with barriers is the natural GPU form (the same algorithm torchvision's CUDA kernel runs
// on the host after copying the mask back).
import { type KernelDef, Params, rt, WGSL_LINEAR_WORKGROUP } from '../core/runtime';

const WG = 256;

// ---- pairwise IoU (torchvision box_iou) ----

const pairwiseIouDef: KernelDef = {
  key: 'boxes.pairwise_iou',
  bindings: ['read', 'read', 'rw'],
  uniform: true,
  code: /* wgsl */ `
@group(0) @binding(0) var<storage, read> a: array<vec4f>;
@group(0) @binding(1) var<storage, read> b: array<vec4f>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
struct P { n: u32, m: u32, _a: u32, _b: u32 }
@group(0) @binding(3) var<uniform> p: P;
${WGSL_LINEAR_WORKGROUP}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let e = linear_workgroup(wid, nwg) * ${WG}u + lid;
  if (e >= p.n * p.m) { return; }
  let u = a[e / p.m];
  let v = b[e % p.m];
  let area_u = (u.z - u.x) * (u.w - u.y);
  let area_v = (v.z - v.x) * (v.w - v.y);
  let w = max(min(u.z, v.z) - max(u.x, v.x), 0.0);
  let h = max(min(u.w, v.w) - max(u.y, v.y), 0.0);
  let inter = w * h;
  out[e] = inter / (area_u + area_v - inter);
}`,
};

/** out[i*m + j] = IoU(a[i], b[j]); a [n, 4], b [m, 4] dense from element 0. */
export function launchPairwiseIou(a: GPUBuffer, b: GPUBuffer, out: GPUBuffer, n: number, m: number): void {
  rt().dispatch(pairwiseIouDef, [a, b, out], new Params(4).u(n, m, 0, 0).bytes(), Math.ceil((n * m) / WG));
}

// ---- bitonic sort of (score, index), score descending, ties by lower index ----

const SORT_ORDER = /* wgsl */ `
// True when (ka, ia) must come before (kb, ib): larger score first, NaN first (as torch's
// descending sort), equal scores by lower index. NaN is tested on the bits: lavapipe folds
// \`v != v\` to false.
fn before(ka: f32, ia: u32, kb: f32, ib: u32) -> bool {
  let na = (bitcast<u32>(ka) & 0x7fffffffu) > 0x7f800000u;
  let nb = (bitcast<u32>(kb) & 0x7fffffffu) > 0x7f800000u;
  if (na || nb) {
    if (na && nb) { return ia < ib; }
    return na;
  }
  if (ka != kb) { return ka > kb; }
  return ia < ib;
}`;

const sortInitDef: KernelDef = {
  key: 'boxes.sort_init',
  bindings: ['read', 'rw', 'rw'],
  uniform: true,
  code: /* wgsl */ `
@group(0) @binding(0) var<storage, read> scores: array<f32>;
@group(0) @binding(1) var<storage, read_write> keys: array<f32>;
@group(0) @binding(2) var<storage, read_write> idx: array<u32>;
struct P { n: u32, padded: u32, off: u32, _b: u32 }
@group(0) @binding(3) var<uniform> p: P;
${WGSL_LINEAR_WORKGROUP}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = linear_workgroup(wid, nwg) * ${WG}u + lid;
  if (i >= p.padded) { return; }
  // Padding sorts last: the lowest score and an index above every real one.
  if (i < p.n) { keys[i] = scores[p.off + i]; idx[i] = i; } else { keys[i] = -3.402823466e+38; idx[i] = 0xffffffffu; }
}`,
};

const sortStepDef: KernelDef = {
  key: 'boxes.bitonic_step',
  bindings: ['rw', 'rw'],
  uniform: true,
  code: /* wgsl */ `
@group(0) @binding(0) var<storage, read_write> keys: array<f32>;
@group(0) @binding(1) var<storage, read_write> idx: array<u32>;
struct P { half_count: u32, block: u32, dist: u32, _b: u32 }
@group(0) @binding(2) var<uniform> p: P;
${SORT_ORDER}
${WGSL_LINEAR_WORKGROUP}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let t = linear_workgroup(wid, nwg) * ${WG}u + lid;
  if (t >= p.half_count) { return; }
  let i = (t / p.dist) * 2u * p.dist + t % p.dist;
  let j = i + p.dist;
  let forward = (i & p.block) == 0u;
  let ki = keys[i]; let ii = idx[i];
  let kj = keys[j]; let ij = idx[j];
  let swap = select(before(ki, ii, kj, ij), before(kj, ij, ki, ii), forward);
  if (swap) { keys[i] = kj; idx[i] = ij; keys[j] = ki; idx[j] = ii; }
}`,
};

export function nextPow2(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

/**
 * Sort `n` scores (f32 at element `offset` of `scores`) into `keys`/`idx` (each nextPow2(n)
 * long): keys descending, idx the original positions, ties by lower index; padding at the end.
 */
export function launchSortDescending(scores: GPUBuffer, offset: number, n: number, keys: GPUBuffer, idx: GPUBuffer): void {
  const padded = nextPow2(Math.max(n, 2));
  const runtime = rt();
  runtime.dispatch(sortInitDef, [scores, keys, idx], new Params(4).u(n, padded, offset, 0).bytes(), Math.ceil(padded / WG));
  for (let block = 2; block <= padded; block *= 2) {
    for (let dist = block / 2; dist >= 1; dist /= 2) {
      runtime.dispatch(sortStepDef, [keys, idx], new Params(4).u(padded / 2, block, dist, 0).bytes(), Math.ceil(padded / 2 / WG));
    }
  }
}

// ---- NMS IoU bitmask: bit j of row i set when sorted box j (j > i) is suppressed by box i ----

const maskDef: KernelDef = {
  key: 'boxes.nms_mask',
  bindings: ['read', 'read', 'read', 'rw'],
  uniform: true,
  code: /* wgsl */ `
@group(0) @binding(0) var<storage, read> boxes: array<vec4f>;
@group(0) @binding(1) var<storage, read> order: array<u32>;
@group(0) @binding(2) var<storage, read> classes: array<i32>;
@group(0) @binding(3) var<storage, read_write> mask: array<u32>;
struct P { n: u32, words: u32, threshold: f32, inclusive: u32, class_aware: u32, _a: u32, _b: u32, _c: u32 }
@group(0) @binding(4) var<uniform> p: P;
${WGSL_LINEAR_WORKGROUP}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let e = linear_workgroup(wid, nwg) * ${WG}u + lid;
  if (e >= p.n * p.words) { return; }
  let i = e / p.words;
  let w = e % p.words;
  let oi = order[i];
  let bi = boxes[oi];
  let area_i = (bi.z - bi.x) * (bi.w - bi.y);
  var bits = 0u;
  for (var k = 0u; k < 32u; k++) {
    let j = w * 32u + k;
    if (j <= i || j >= p.n) { continue; }
    let oj = order[j];
    if (p.class_aware != 0u && classes[oj] != classes[oi]) { continue; }
    let bj = boxes[oj];
    let area_j = (bj.z - bj.x) * (bj.w - bj.y);
    let ww = max(0.0, min(bi.z, bj.z) - max(bi.x, bj.x));
    let hh = max(0.0, min(bi.w, bj.w) - max(bi.y, bj.y));
    let inter = ww * hh;
    // torchvision: ovr = inter / (area_i + area_j - inter) in f32, compared '>' to a double threshold
    let ovr = inter / (area_i + area_j - inter);
    if (ovr > p.threshold || (p.inclusive != 0u && ovr == p.threshold)) { bits |= 1u << k; }
  }
  mask[e] = bits;
}`,
};

/**
 * `thresholdF32`/`inclusive` encode torchvision's comparison of an f32 IoU with a double
 * threshold: ovr > thr (double) <=> ovr > t32, or ovr >= t32 when t32 = f32(thr) rounded up.
 */
export function launchNmsMask(boxes: GPUBuffer, order: GPUBuffer, classes: GPUBuffer, mask: GPUBuffer, n: number, threshold: number, classAware: boolean): void {
  const words = Math.ceil(n / 32);
  const t32 = Math.fround(threshold);
  const p = new Params(8).u(n, words).f(t32).u(t32 > threshold ? 1 : 0, classAware ? 1 : 0, 0, 0, 0).bytes();
  rt().dispatch(maskDef, [boxes, order, classes, mask], p, Math.ceil((n * words) / WG));
}

/** The greedy pass keeps its suppressed-set bitset in workgroup memory: at most this many boxes. */
export const NMS_MAX_BOXES = 4000 * 32; // 16,000 bytes of the 16 KiB workgroup storage
const GREEDY_WG = 64;

const greedyDef: KernelDef = {
  key: 'boxes.nms_greedy',
  bindings: ['read', 'read', 'rw', 'rw'],
  uniform: true,
  code: /* wgsl */ `
@group(0) @binding(0) var<storage, read> mask: array<u32>;
@group(0) @binding(1) var<storage, read> order: array<u32>;
@group(0) @binding(2) var<storage, read_write> keep: array<i32>;
@group(0) @binding(3) var<storage, read_write> count: array<i32>;
struct P { n: u32, words: u32, _a: u32, _b: u32 }
@group(0) @binding(4) var<uniform> p: P;
var<workgroup> removed: array<u32, ${NMS_MAX_BOXES / 32}>;
var<workgroup> flag: u32;
@compute @workgroup_size(${GREEDY_WG})
fn main(@builtin(local_invocation_index) lid: u32) {
  for (var w = lid; w < p.words; w += ${GREEDY_WG}u) { removed[w] = 0u; }
  workgroupBarrier();
  var kept = 0u;
  for (var i = 0u; i < p.n; i++) {
    if (lid == 0u) { flag = (removed[i >> 5u] >> (i & 31u)) & 1u; }
    let suppressed = workgroupUniformLoad(&flag);
    if (suppressed == 0u) {
      if (lid == 0u) { keep[kept] = i32(order[i]); }
      kept++;
      for (var w = (i >> 5u) + lid; w < p.words; w += ${GREEDY_WG}u) { removed[w] |= mask[i * p.words + w]; }
      workgroupBarrier();
    }
  }
  // Unused slots get -1 so a padded keep list is self-describing.
  for (var k = kept + lid; k < p.n; k += ${GREEDY_WG}u) { keep[k] = -1; }
  if (lid == 0u) { count[0] = i32(kept); }
}`,
};

export function launchNmsGreedy(mask: GPUBuffer, order: GPUBuffer, keep: GPUBuffer, count: GPUBuffer, n: number): void {
  if (n > NMS_MAX_BOXES) throw new Error(`nms: at most ${NMS_MAX_BOXES} boxes, got ${n}`);
  rt().dispatch(greedyDef, [mask, order, keep, count], new Params(4).u(n, Math.ceil(n / 32), 0, 0).bytes(), 1);
}
