// Box kernels: pairwise IoU, a bitonic sort of (score, index) pairs (score descending, ties by lower
// index first: the total order a stable descending sort gives, as torchvision's nms uses), the NMS
// IoU bitmask and the greedy NMS pass.
//
// Greedy pass: runs on the GPU in ONE workgroup. Box i (in score order) is kept iff no kept box
// before it suppresses it; the suppressed set is a bitset in workgroup memory, OR-ed with the kept
// box's mask row by all threads in parallel. Each step depends on the previous one, so a single
// workgroup with barriers is the natural GPU form (the same algorithm torchvision's CUDA kernel runs
// on the host after copying the mask back).
import { defineKernel, WGSL_LINEAR_WORKGROUP } from '../define-kernel';

const WG = 256;

// ---- pairwise IoU (torchvision box_iou) ----

const pairwiseIou = defineKernel({
  name: 'boxes.pairwise_iou',
  bindings: { a: { type: 'vec4f', access: 'read' }, b: { type: 'vec4f', access: 'read' }, out: { type: 'f32', access: 'rw' } },
  params: { n: 'u32', m: 'u32' },
  code: () => /* wgsl */ `
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
});

/** out[i*m + j] = IoU(a[i], b[j]); a [n, 4], b [m, 4] dense from element 0. */
export function launchPairwiseIou(a: GPUBuffer, b: GPUBuffer, out: GPUBuffer, n: number, m: number): void {
  pairwiseIou.dispatch({}, { a, b, out }, { n, m }, Math.ceil((n * m) / WG));
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

const sortInit = defineKernel({
  name: 'boxes.sort_init',
  bindings: { scores: { type: 'f32', access: 'read' }, keys: { type: 'f32', access: 'rw' }, idx: { type: 'u32', access: 'rw' } },
  params: { n: 'u32', padded: 'u32', off: 'u32' },
  code: () => /* wgsl */ `
${WGSL_LINEAR_WORKGROUP}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = linear_workgroup(wid, nwg) * ${WG}u + lid;
  if (i >= p.padded) { return; }
  // Padding sorts last: the lowest score and an index above every real one.
  if (i < p.n) { keys[i] = scores[p.off + i]; idx[i] = i; } else { keys[i] = -3.402823466e+38; idx[i] = 0xffffffffu; }
}`,
});

const sortStep = defineKernel({
  name: 'boxes.bitonic_step',
  bindings: { keys: { type: 'f32', access: 'rw' }, idx: { type: 'u32', access: 'rw' } },
  params: { half_count: 'u32', block: 'u32', dist: 'u32' },
  code: () => /* wgsl */ `
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
});

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
  sortInit.dispatch({}, { scores, keys, idx }, { n, padded, off: offset }, Math.ceil(padded / WG));
  for (let block = 2; block <= padded; block *= 2) {
    for (let dist = block / 2; dist >= 1; dist /= 2) {
      sortStep.dispatch({}, { keys, idx }, { half_count: padded / 2, block, dist }, Math.ceil(padded / 2 / WG));
    }
  }
}

// ---- NMS IoU bitmask: bit j of row i set when sorted box j (j > i) is suppressed by box i ----
//
// torchvision (CPU) computes ovr = inter / (area_i + area_j - inter) with IEEE f32 operations and
// suppresses when ovr > threshold (a double). Two things keep a GPU from reproducing that bit for
// bit, both seen on an NVIDIA H100 (Vulkan), neither on lavapipe:
//  - f32 division in WGSL may be off by 2.5 ulp (NVIDIA divides by a reciprocal): an IoU of exactly
//    f32(0.6) came out one ulp low, and 2 of 1200 boxes were kept wrongly in the parity fixture;
//  - the compiler may fuse a product into the following add (area_i + area_j - w*h as one fma),
//    which rounds once where torchvision rounds twice.
// So the kernel never divides: it decides fl(inter / union) > threshold exactly, in integers, from
// the f32 bits of inter and union (see `NMS_EXACT_WGSL`), and routes each product through
// `unfused()` (an OR with a uniform zero the compiler cannot see through) so it is rounded alone.

/** How the mask kernel compares: 0 exact (0 <= threshold < f32 max), 1 never suppress (threshold
 *  >= f32 max or NaN), 2 native f32 division (negative thresholds, where any box suppresses). */
export interface NmsThresholdCode {
  mode: number;
  /** The real number M = midM * 2^midE with fl(x) > threshold <=> x > M, or x == M and tieUp. */
  midM: number;
  midE: number;
  tieUp: boolean;
}

const f32Bits = (v: number) => new Uint32Array(Float32Array.of(v).buffer)[0]!;
const f32FromBits = (b: number) => new Float32Array(Uint32Array.of(b >>> 0).buffer)[0]!;

/**
 * Encode `ovr > threshold` (ovr an f32 quotient, threshold a double) as a comparison of the exact
 * quotient x = inter / union with a constant: the smallest f32 above the threshold is T, its
 * predecessor P; fl(x) >= T exactly when x > (P + T) / 2, or x equals that midpoint and T's last
 * mantissa bit is 0 (round half to even picks T).
 */
export function nmsThresholdCode(threshold: number): NmsThresholdCode {
  if (Number.isNaN(threshold) || threshold >= 3.4028234663852886e38) return { mode: 1, midM: 0, midE: 0, tieUp: false };
  if (threshold < 0) return { mode: 2, midM: 0, midE: 0, tieUp: false };
  const t32 = Math.fround(threshold);
  const tBits = t32 > threshold ? f32Bits(t32) : f32Bits(t32) + 1; // T: smallest f32 > threshold
  const T = f32FromBits(tBits);
  if (!Number.isFinite(T)) return { mode: 1, midM: 0, midE: 0, tieUp: false };
  const mid = (f32FromBits(tBits - 1) + T) / 2; // exact in double: two adjacent f32 values
  // mid = midM * 2^midE with midM an odd integer of at most 26 bits.
  let midE = Math.floor(Math.log2(mid)) - 30;
  let midM = mid / 2 ** midE;
  while (!Number.isInteger(midM)) {
    midE -= 1;
    midM = mid / 2 ** midE;
  }
  while (midM % 2 === 0) {
    midM /= 2;
    midE += 1;
  }
  if (midM >= 2 ** 26) throw new Error(`nmsThresholdCode: midpoint ${mid} needs ${Math.ceil(Math.log2(midM))} bits`);
  return { mode: 0, midM, midE, tieUp: (tBits & 1) === 0 };
}

/**
 * WGSL: \`ratio_vs_mid(a, b, mid_m, mid_e)\` = sign(a / b - mid_m * 2^mid_e) computed exactly, for
 * finite f32 a >= 0, b > 0 and an integer mid_m < 2^26 (64-bit integers as vec2u (lo, hi)).
 */
export const NMS_EXACT_WGSL = /* wgsl */ `
// f32 bits -> (integer mantissa, exponent) with v = m * 2^e (subnormals included).
fn f32_parts(v: f32) -> vec2i {
  let bits = bitcast<u32>(v) & 0x7fffffffu;
  let ex = bits >> 23u;
  let fr = bits & 0x7fffffu;
  if (ex == 0u) { return vec2i(i32(fr), -149); }
  return vec2i(i32(fr | 0x800000u), i32(ex) - 150);
}
// a < 2^24, b < 2^26: the 50-bit product, from 16-bit halves so nothing overflows 32 bits.
fn mul_24x26(a: u32, b: u32) -> vec2u {
  let a0 = a & 0xffffu; let a1 = a >> 16u;
  let b0 = b & 0xffffu; let b1 = b >> 16u;
  let lo = a0 * b0;
  let mid = a1 * b0 + a0 * b1;
  let lo2 = lo + (mid << 16u);
  let carry = select(0u, 1u, lo2 < lo);
  return vec2u(lo2, a1 * b1 + (mid >> 16u) + carry);
}
fn bitlen_64(v: vec2u) -> i32 {
  if (v.y != 0u) { return 33 + i32(firstLeadingBit(v.y)); }
  if (v.x != 0u) { return 1 + i32(firstLeadingBit(v.x)); }
  return 0;
}
fn shl_64(v: vec2u, s: u32) -> vec2u {
  if (s == 0u) { return v; }
  if (s >= 32u) { return vec2u(0u, v.x << (s - 32u)); }
  return vec2u(v.x << s, (v.y << s) | (v.x >> (32u - s)));
}
fn cmp_64(a: vec2u, b: vec2u) -> i32 {
  if (a.y != b.y) { return select(-1, 1, a.y > b.y); }
  if (a.x != b.x) { return select(-1, 1, a.x > b.x); }
  return 0;
}
fn ratio_vs_mid(a: f32, b: f32, mid_m: u32, mid_e: i32) -> i32 {
  let pa = f32_parts(a);
  if (pa.x == 0) { return -1; }
  let pb = f32_parts(b);
  // a / b vs M  <=>  ma * 2^d vs mb * mid_m, with d = ea - eb - mid_e.
  let r = mul_24x26(u32(pb.x), mid_m);
  let d = pa.y - pb.y - mid_e;
  let la = 1 + i32(firstLeadingBit(u32(pa.x))) + d;
  let lr = bitlen_64(r);
  if (la != lr) { return select(-1, 1, la > lr); }
  // Equal bit lengths (<= 50): both sides fit 64 bits once aligned.
  if (d >= 0) { return cmp_64(shl_64(vec2u(u32(pa.x), 0u), u32(d)), r); }
  return cmp_64(vec2u(u32(pa.x), 0u), shl_64(r, u32(-d)));
}`;

const nmsMask = defineKernel({
  name: 'boxes.nms_mask',
  bindings: {
    boxes: { type: 'vec4f', access: 'read' },
    order: { type: 'u32', access: 'read' },
    classes: { type: 'i32', access: 'read' },
    mask: { type: 'u32', access: 'rw' },
  },
  // `zero` is always 0: unfused() ORs it in, opaque to the compiler.
  params: { n: 'u32', words: 'u32', threshold: 'f32', class_aware: 'u32', mode: 'u32', mid_m: 'u32', mid_e: 'i32', tie_up: 'u32', zero: 'u32' },
  code: () => /* wgsl */ `
${WGSL_LINEAR_WORKGROUP}
${NMS_EXACT_WGSL}
// The value unchanged, but opaque to the compiler, so the product that made it is not fused into
// a later add.
fn unfused(v: f32) -> f32 { return bitcast<f32>(bitcast<u32>(v) | p.zero); }
// torchvision: ovr = inter / union in f32, suppress when ovr > threshold (double).
fn suppresses(inter: f32, uni: f32) -> bool {
  if (p.mode == 1u) { return false; }
  if (p.mode == 0u && uni > 0.0 && uni <= 3.4028234e38 && inter <= 3.4028234e38) {
    let c = ratio_vs_mid(inter, uni, p.mid_m, p.mid_e);
    return c > 0 || (c == 0 && p.tie_up != 0u);
  }
  // Negative threshold, or degenerate boxes (union <= 0: ovr is NaN or <= 0).
  let ovr = inter / uni;
  return ovr > p.threshold;
}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let e = linear_workgroup(wid, nwg) * ${WG}u + lid;
  if (e >= p.n * p.words) { return; }
  let i = e / p.words;
  let w = e % p.words;
  let oi = order[i];
  let bi = boxes[oi];
  let area_i = unfused((bi.z - bi.x) * (bi.w - bi.y));
  var bits = 0u;
  for (var k = 0u; k < 32u; k++) {
    let j = w * 32u + k;
    if (j <= i || j >= p.n) { continue; }
    let oj = order[j];
    if (p.class_aware != 0u && classes[oj] != classes[oi]) { continue; }
    let bj = boxes[oj];
    let area_j = unfused((bj.z - bj.x) * (bj.w - bj.y));
    let ww = max(0.0, min(bi.z, bj.z) - max(bi.x, bj.x));
    let hh = max(0.0, min(bi.w, bj.w) - max(bi.y, bj.y));
    let inter = unfused(ww * hh);
    if (suppresses(inter, area_i + area_j - inter)) { bits |= 1u << k; }
  }
  mask[e] = bits;
}`,
});

/** Record the NMS IoU bitmask of the `n` boxes in score order (`order`), threshold as torchvision. */
export function launchNmsMask(boxes: GPUBuffer, order: GPUBuffer, classes: GPUBuffer, mask: GPUBuffer, n: number, threshold: number, classAware: boolean): void {
  const words = Math.ceil(n / 32);
  const c = nmsThresholdCode(threshold);
  // Native fallback (mode 2, threshold < 0): ovr > threshold <=> ovr > f32 rounded down.
  const t32 = Math.fround(threshold);
  const below = (v: number) => (v === 0 ? -f32FromBits(1) : f32FromBits(f32Bits(v) + (v < 0 ? 1 : -1)));
  const tDown = t32 > threshold ? below(t32) : t32;
  nmsMask.dispatch(
    {},
    { boxes, order, classes, mask },
    { n, words, threshold: tDown, class_aware: classAware, mode: c.mode, mid_m: c.midM, mid_e: c.midE, tie_up: c.tieUp, zero: 0 },
    Math.ceil((n * words) / WG),
  );
}

export const NMS_MAX_BOXES = 4000 * 32; // 16,000 bytes of the 16 KiB workgroup storage
const GREEDY_WG = 64;
/** Sizes (in 32-box words) of the greedy pass's workgroup bitmask: the smallest that holds n boxes
 *  is used. SwiftShader's compile time grows with it: 8-14 s at 4000 words, 1-2 s at 1024, 0.2-1.5 s
 *  at 128. */
const GREEDY_WORDS = [128, 1024, NMS_MAX_BOXES / 32] as const;

const nmsGreedy = defineKernel({
  name: 'boxes.nms_greedy',
  variants: { capacity: GREEDY_WORDS },
  bindings: {
    mask: { type: 'u32', access: 'read' },
    order: { type: 'u32', access: 'read' },
    keep: { type: 'i32', access: 'rw' },
    count: { type: 'i32', access: 'rw' },
  },
  params: { n: 'u32', words: 'u32' },
  code: (v) => /* wgsl */ `
var<workgroup> removed: array<u32, ${v.capacity}>;
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
});

export function launchNmsGreedy(mask: GPUBuffer, order: GPUBuffer, keep: GPUBuffer, count: GPUBuffer, n: number): void {
  if (n > NMS_MAX_BOXES) throw new Error(`nms: at most ${NMS_MAX_BOXES} boxes, got ${n}`);
  const words = Math.ceil(n / 32);
  nmsGreedy.dispatch({ capacity: GREEDY_WORDS.find((c) => c >= words)! }, { mask, order, keep, count }, { n, words }, 1);
}
