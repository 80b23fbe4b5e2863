// subgroup-gemm, the GEMM (software adapters with 8-wide subgroups: lavapipe): the design of
// matmul's subgroup kernel (kernels/matmul.ts) applied to convolution through an explicit, chunked
// im2col.
//
// Why explicit: in the implicit GEMMs (scalar-gemm, packed-gemm) every B value (an input pixel
// under a tap) is a scalar load with its own bounds test, re-done for every block of output
// channels, while matmul's subgroup kernel streams B from 32-column packed panels with one vec4
// load per lane and k, and shares each A row across the subgroup with subgroupBroadcast (lavapipe
// scalarises every storage load per lane, so loads per FMA is what bounds throughput). Here a
// gather kernel writes the im2col matrix straight into that panel layout, a chunk of panels at a
// time into one pooled workspace (bounded memory, and meant to be re-read by the GEMM while still
// in cache), and the GEMM below runs 32 rows × 32 columns per 8-lane workgroup (16 or 8 rows when
// the operand has fewer): each lane holds 32 vec4 accumulators, which spill, but a spill reload is
// one vector move while every storage load is 8 scalar ones, so 4 A + 4 B loads per 128 vec4 FMAs
// (32 rows) beat 2 + 4 per 64 (16 rows).
//
// One GEMM kernel serves all three convolution products (conv.ts builds the tap tables):
//   forward  C[o, (n,oh,ow)]  = Σ_(c,tap) W[o,c,tap] · x[n, c, oh·sh + oy_t, ow·sw + ox_t]
//   dgrad    per stride phase (rh, rw) of dx (a sub-convolution with only the taps that reach that
//            phase, so no work on the zero-inserted positions):
//            C[c, (n,a,b)] = Σ_(o,tap) W[o,c,tap] · dy[n, o, a + oy_t, b + ox_t],
//            stored at dx[n, c, rh + a·sh, rw + b·sw]; stride 1 is one phase (the flipped-weight conv)
//   wgrad    C[o, (c,tap)] = Σ_(n,oh,ow) dy[n,o,oh,ow] · x[n, c, oh·sh + oy_t, ow·sw + ox_t], with the
//            reduction cut into chunks that accumulate into dw in order (deterministic split-K).
// The tap table (oy_t, ox_t, tap index) is built on the host and passed in the uniform block.
import { defineKernel, read, rt, rw } from '../../define-kernel';
import { hasSubgroups8, isSoftwareAdapter } from '../../../runtime/adapter';
import { reduceSplits } from '../split-k';

/** Output columns per workgroup (8 lanes × 4). */
export const PANEL = 32;
/** The tap table holds at most this many taps (7×7 kernels and below). */
export const MAX_TAPS = 50;
const X = ['x', 'y', 'z', 'w'] as const;

/** The subgroup GEMM runs where matmul's subgroup kernel does: software adapters with 8-wide
 *  subgroups. */
export function subgroupGemmAvailable(): boolean {
  return isSoftwareAdapter() && hasSubgroups8();
}

export interface Tap {
  oy: number;
  ox: number;
  /** kh·KW + kw */
  index: number;
}

/** The tap table, two taps per vec4i: (oy0, ox0, oy1, ox1); indices go in a second table. */
function tapWords(taps: Tap[], what: 'offsets' | 'index'): number[] {
  if (taps.length > MAX_TAPS) throw new Error(`conv subgroup-gemm: ${taps.length} taps, at most ${MAX_TAPS}`);
  const w = new Array<number>(Math.ceil(MAX_TAPS / 2) * 4).fill(0);
  taps.forEach((t, i) => {
    if (what === 'offsets') {
      w[2 * i] = t.oy;
      w[2 * i + 1] = t.ox;
    } else w[i] = t.index;
  });
  return w;
}
/** f16 storage (ConvGeometry.f16): the gathered and packed operands are read as f16 and widened
 *  into the f32 panels and packs, so the GEMM itself is unchanged; forward and dgrad store f16. */
interface Storage {
  h: boolean;
}
const srcType = (v: Storage) => (v.h ? 'f16' : 'f32');
const TAP_FN = `fn tap_off(t: i32) -> vec2i { let v = q.taps[t >> 1]; return select(v.xy, v.zw, (t & 1) == 1); }`;

// ---- im2col into panels: Bp[g][panel][k][32] ---------------------------------------------------

/** Chunk rows of wgrad are a multiple of this (whole vec4 A loads, aligned chunk starts). */
const KB = 32;
/** Rows each gather workgroup writes: as many as keep ≥ WANT_WG workgroups per dispatch, since
 *  lavapipe pays a fixed cost per workgroup (a 64-lane pack with one element per lane spent more
 *  time in workgroup overhead than in copying). */
const WANT_WG = 16;
/** GEMM workgroups wanted per wgrad dispatch before its reduction is split. */
const WANT_GEMM_WG = 32;
const blockRows = (rows: number, otherWgs: number) => Math.max(1, Math.ceil(rows / Math.max(1, Math.ceil(WANT_WG / otherWgs))));

/** Gather for forward/dgrad: panel columns are output positions (n, a, b) on a GH×GW grid, rows
 *  k = c·T + t. Each lane decodes its 4 columns once, then walks k with counters (no division
 *  per element: x86 has no SIMD integer divide). */
const im2colKernel = defineKernel({
  name: 'conv.subgroup-gemm.im2col',
  uniformVar: 'q',
  bindings: { src: { type: srcType, access: 'read' }, Bp: rw('vec4f') },
  params: {
    NC: 'i32', GW: 'i32', GHW: 'i32', K: 'i32',
    K4: 'i32', T: 'i32', panels: 'i32', panel0: 'i32',
    stepH: 'i32', stepW: 'i32', Hs: 'i32', Ws: 'i32',
    csrc: 'i32', cgs: 'i32', src_off: 'i32', kb: 'i32',
    taps: ['i32', Math.ceil(MAX_TAPS / 2) * 4],
  },
  code: (_: Storage) => /* wgsl */ `
${TAP_FN}
@compute @workgroup_size(8)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let g = i32(wid.z);
  let pl = i32(wid.y);
  let k0 = i32(wid.x) * q.kb;
  let k1 = min(q.K4, k0 + q.kb);
  let HWs = q.Hs * q.Ws;
  ${[0, 1, 2, 3].map((j) => `let col${j} = (q.panel0 + pl) * ${PANEL} + i32(lid) * 4 + ${j};
  let valid${j} = col${j} < q.NC;
  let n${j} = col${j} / q.GHW;
  let r${j} = col${j} - n${j} * q.GHW;
  let ya${j} = (r${j} / q.GW) * q.stepH;
  let xb${j} = (r${j} % q.GW) * q.stepW;
  let base${j} = q.src_off + (n${j} * q.csrc + g * q.cgs) * HWs;`).join('\n  ')}
  var c = k0 / q.T;
  var t = k0 - c * q.T;
  var o = ((g * q.panels + pl) * q.K4 + k0) * 8 + i32(lid);
  for (var k = k0; k < k1; k++) {
    var v = vec4f(0.0);
    if (k < q.K) {
      let d = tap_off(t);
      let cb = c * HWs;
      ${[0, 1, 2, 3].map((j) => `{
        let ih = ya${j} + d.x;
        let iw = xb${j} + d.y;
        let ok = valid${j} && ih >= 0 && ih < q.Hs && iw >= 0 && iw < q.Ws;
        v.${X[j]} = select(0.0, f32(src[select(0, base${j} + cb + ih * q.Ws + iw, ok)]), ok);
      }`).join('\n      ')}
    }
    Bp[o] = v;
    o += 8;
    t++;
    if (t == q.T) { t = 0; c++; }
  }
}`,
});

/** Gather for wgrad: panel columns are k = c·T + t, rows are output positions s = (n, oh, ow) of
 *  the chunk [s0, s0 + R4). Each lane decodes its 4 (c, tap) once and walks s with counters. */
const im2colTKernel = defineKernel({
  name: 'conv.subgroup-gemm.im2colT',
  uniformVar: 'q',
  bindings: { src: { type: srcType, access: 'read' }, Bp: rw('vec4f') },
  params: {
    KK: 'i32', T: 'i32', R4: 'i32', s0: 'i32',
    NS: 'i32', OH: 'i32', OW: 'i32', sh: 'i32',
    sw: 'i32', Hs: 'i32', Ws: 'i32', csrc: 'i32',
    cg: 'i32', src_off: 'i32', panels: 'i32', kb: 'i32',
    taps: ['i32', Math.ceil(MAX_TAPS / 2) * 4],
  },
  code: (_: Storage) => /* wgsl */ `
${TAP_FN}
@compute @workgroup_size(8)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let g = i32(wid.z);
  let pl = i32(wid.y);
  let r0 = i32(wid.x) * q.kb;
  let r1 = min(q.R4, r0 + q.kb);
  let HWs = q.Hs * q.Ws;
  let OHW = q.OH * q.OW;
  ${[0, 1, 2, 3].map((j) => `let kc${j} = pl * ${PANEL} + i32(lid) * 4 + ${j};
  let okc${j} = kc${j} < q.KK;
  let ch${j} = min(kc${j}, q.KK - 1) / q.T;
  let d${j} = tap_off(min(kc${j}, q.KK - 1) - ch${j} * q.T);
  let cb${j} = q.src_off + (g * q.cg + ch${j}) * HWs;`).join('\n  ')}
  var s = q.s0 + r0;
  var n = s / OHW;
  let rem = s - n * OHW;
  var oh = rem / q.OW;
  var ow = rem - oh * q.OW;
  var o = ((g * q.panels + pl) * q.R4 + r0) * 8 + i32(lid);
  for (var r = r0; r < r1; r++) {
    var v = vec4f(0.0);
    if (s < q.NS) {
      let nb = n * q.csrc * HWs;
      let ihb = oh * q.sh;
      let iwb = ow * q.sw;
      ${[0, 1, 2, 3].map((j) => `{
        let ih = ihb + d${j}.x;
        let iw = iwb + d${j}.y;
        let ok = okc${j} && ih >= 0 && ih < q.Hs && iw >= 0 && iw < q.Ws;
        v.${X[j]} = select(0.0, f32(src[select(0, cb${j} + nb + ih * q.Ws + iw, ok)]), ok);
      }`).join('\n      ')}
    }
    Bp[o] = v;
    o += 8;
    s++;
    ow++;
    if (ow == q.OW) { ow = 0; oh++; if (oh == q.OH) { oh = 0; n++; } }
  }
}`,
});

// ---- A operands --------------------------------------------------------------------------------

/** Weight rows: A[g][m][k = c·T + t] = W[g·gstride + m·sm + c·sc + tap_t], zero for m ≥ Mg or
 *  k ≥ K. Forward: m = o, c = input channel; dgrad: m = input channel, c = o. One workgroup per
 *  row (m, g), looping over k (lavapipe pays per workgroup): the only per-element division is by
 *  the tap count T, a compile-time constant (a multiply and shift; x86 has no SIMD integer
 *  divide). `table`: tap indices from the uniform
 *  (dgrad phases); otherwise tap t is index t. */
const packWKernel = defineKernel({
  name: 'conv.subgroup-gemm.packw',
  uniformVar: 'q',
  bindings: { w: { type: srcType, access: 'read' }, A: rw('f32') },
  params: {
    Mpad: 'i32', K4: 'i32', K: 'i32', Mg: 'i32',
    sm: 'i32', sc: 'i32', gstride: 'i32', w_off: 'i32',
    idx: ['i32', Math.ceil(MAX_TAPS / 4) * 4],
  },
  code: ({ T, table }: { T: number; table: boolean; h: boolean }) => /* wgsl */ `
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let m = i32(wid.y);
  let g = i32(wid.z);
  let ok_m = m < q.Mg;
  let rs = q.w_off + g * q.gstride + min(m, q.Mg - 1) * q.sm;
  let row = (g * q.Mpad + m) * q.K4;
  for (var k = i32(lid); k < q.K4; k += 64) {
    let ok = ok_m && k < q.K;
    let kk = min(k, q.K - 1);
    let c = kk / ${T};
    let t = kk - c * ${T};
    let tap = ${table ? 'q.idx[t >> 2][t & 3]' : 't'};
    let s = rs + c * q.sc + tap;
    A[row + k] = select(0.0, f32(w[select(0, s, ok)]), ok);
  }
}`,
});

/** dy rows for wgrad: A[g][m][s] = dy[n, g·Og + m, pix], s = n·OHW + pix < NS, zero padded to NS4.
 *  One workgroup per (m, g·N + n), looping over pixels: no per-element division. */
const packDyKernel = defineKernel({
  name: 'conv.subgroup-gemm.packdy',
  uniformVar: 'q',
  bindings: { dy: { type: srcType, access: 'read' }, A: rw('f32') },
  params: { Mpad: 'i32', NS4: 'i32', NS: 'i32', Og: 'i32', O: 'i32', OHW: 'i32', dy_off: 'i32', N: 'i32' },
  code: (_: Storage) => /* wgsl */ `
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let m = i32(wid.y);
  let g = i32(wid.z) / q.N;
  let n = i32(wid.z) - g * q.N;
  let row = (g * q.Mpad + m) * q.NS4;
  let ok = m < q.Og;
  let src = q.dy_off + (n * q.O + g * q.Og + min(m, q.Og - 1)) * q.OHW;
  // The last image also zeroes the padding columns NS..NS4.
  if (n == q.N - 1 && i32(lid) < q.NS4 - q.NS) { A[row + q.NS + i32(lid)] = 0.0; }
  for (var pix = i32(lid); pix < q.OHW; pix += 64) {
    A[row + n * q.OHW + pix] = select(0.0, f32(dy[select(0, src + pix, ok)]), ok);
  }
}`,
});

// ---- the GEMM ----------------------------------------------------------------------------------

export type StoreMode = 'fwd' | 'fwd4' | 'phase' | 'wgrad';

interface GemmSpec {
  rows: Rows;
  store: StoreMode;
  bias: boolean;
  relu: boolean;
  /** f16 output (forward and dgrad stores; wgrad always stores f32). */
  h: boolean;
}

/** C tile (rows m0.., 32 panel columns) = A[g][m][ka..ka+K4) · Bp[g][panel][0..K4)[32]. Every lane
 *  stays active to the end: subgroupBroadcast reads the other lanes' A rows. */
const gemmKernel = defineKernel({
  name: 'conv.subgroup-gemm.gemm',
  uniformVar: 'q',
  bindings: {
    A: read('vec4f'),
    B: read('vec4f'),
    bias: { ...read('f32'), when: (v) => v.bias },
    C: { type: (v) => (v.store === 'fwd4' ? (v.h ? 'vec4h' : 'vec4f') : v.h && v.store !== 'wgrad' ? 'f16' : 'f32'), access: 'rw' },
  },
  params: {
    Mg: 'i32', Mpad: 'i32', K4: 'i32', lda4: 'i32',
    ka4: 'i32', panels: 'i32', panel0: 'i32', NC: 'i32',
    GW: 'i32', GHW: 'i32', ctot: 'i32', Hf: 'i32',
    Wf: 'i32', sH: 'i32', sW: 'i32', oH: 'i32',
    oW: 'i32', out_off: 'i32', b_off: 'i32', accumulate: 'i32',
    kS: 'i32', sstride: 'i32', ngroups: 'i32',
  },
  code: (s: GemmSpec) => gemmCode(s),
});

function gemmCode(s: GemmSpec): string {
  const R = s.rows;
  const loadsA = R / 8;
  const L: string[] = ['enable subgroups;'];
  L.push(`@compute @workgroup_size(8)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(subgroup_invocation_id) lane: u32) {
  // z = split · groups + g: split sp reduces k in [sp·kS, (sp + 1)·kS) into its own output slice.
  let g = i32(wid.z) % q.ngroups;
  let sp = i32(wid.z) / q.ngroups;
  let kBeg = sp * q.kS;
  let kEnd = min(q.K4, kBeg + q.kS);
  let pl = i32(wid.y);
  let m0 = i32(wid.x) * ${R};
  let col0 = (q.panel0 + pl) * ${PANEL} + i32(lane) * 4;
  var bi = ((g * q.panels + pl) * q.K4 + kBeg) * 8 + i32(lane);`);
  for (let j = 0; j < loadsA; j++) L.push(`  var ai${j} = (g * q.Mpad + m0 + i32(lane) + ${8 * j}) * q.lda4 + q.ka4 + kBeg / 4;`);
  for (let r = 0; r < R; r++) L.push(`  var acc${r} = vec4f(0.0);`);
  L.push('  for (var k = kBeg; k < kEnd; k += 4) {');
  for (let j = 0; j < loadsA; j++) L.push(`    let am${j} = A[ai${j}]; ai${j}++;`);
  for (let kk = 0; kk < 4; kk++) L.push(`    let b${kk} = B[bi + ${kk * 8}];`);
  L.push('    bi += 32;');
  for (let r = 0; r < R; r++) {
    L.push(`    let a${r} = subgroupBroadcast(am${r >> 3}, ${r & 7}u);`);
    for (let kk = 0; kk < 4; kk++) L.push(`    acc${r} = fma(vec4f(a${r}.${X[kk]}), b${kk}, acc${r});`);
  }
  L.push('  }');
  const epi = (v: string, m: string) => {
    let e = s.bias ? `${v} + bias[q.b_off + g * q.Mg + ${m}]` : v;
    if (s.relu) e = `max(${e}, ${s.store === 'fwd4' ? 'vec4f(0.0)' : '0.0'})`;
    return s.h ? `${s.store === 'fwd4' ? 'vec4h' : 'f16'}(${e})` : e;
  };
  if (s.store === 'fwd4') {
    // GHW % 4 == 0 and out_off % 4 == 0: the lane's 4 columns are one aligned vec4 of one image.
    L.push('  let n = col0 / q.GHW;\n  let rr = col0 - n * q.GHW;\n  let base = q.out_off + (n * q.ctot + g * q.Mg) * q.GHW + rr;');
    for (let r = 0; r < R; r++) L.push(`  if (m0 + ${r} < q.Mg && col0 < q.NC) { C[(base + (m0 + ${r}) * q.GHW) >> 2u] = ${epi(`acc${r}`, `m0 + ${r}`)}; }`);
  } else if (s.store === 'wgrad') {
    L.push('  let base = q.out_off + sp * q.sstride + g * q.Mg * q.NC + col0;');
    for (let r = 0; r < R; r++) {
      for (let j = 0; j < 4; j++) {
        L.push(`  if (m0 + ${r} < q.Mg && col0 + ${j} < q.NC) { let i = base + (m0 + ${r}) * q.NC + ${j}; C[i] = acc${r}.${X[j]} + select(0.0, C[i], q.accumulate != 0); }`);
      }
    }
  } else {
    // Per column: image n and position (a, b) on the GH×GW grid, then the destination.
    for (let j = 0; j < 4; j++) {
      L.push(`  let c${j} = col0 + ${j};\n  let n${j} = c${j} / q.GHW;\n  let rr${j} = c${j} - n${j} * q.GHW;`);
      if (s.store === 'fwd') L.push(`  let d${j} = q.out_off + (n${j} * q.ctot + g * q.Mg) * q.GHW + rr${j};`);
      else {
        L.push(`  let a${j} = rr${j} / q.GW;\n  let bb${j} = rr${j} - a${j} * q.GW;`);
        L.push(`  let d${j} = q.out_off + ((n${j} * q.ctot + g * q.Mg) * q.Hf + a${j} * q.sH + q.oH) * q.Wf + bb${j} * q.sW + q.oW;`);
      }
    }
    const plane = s.store === 'fwd' ? 'q.GHW' : 'q.Hf * q.Wf';
    L.push(`  let plane = ${plane};`);
    for (let r = 0; r < R; r++) {
      for (let j = 0; j < 4; j++) {
        L.push(`  if (m0 + ${r} < q.Mg && c${j} < q.NC) { C[d${j} + (m0 + ${r}) * plane] = ${epi(`acc${r}.${X[j]}`, `m0 + ${r}`)}; }`);
      }
    }
  }
  L.push('}');
  return L.join('\n');
}

// ---- host side ---------------------------------------------------------------------------------

let chunkBytesOverride: number | undefined;
/** Workspace bytes per im2col chunk (tuning and tests: a tiny chunk exercises the chunk loop). */
export function overrideSubgroupGemmChunkBytes(b: number | undefined): void {
  chunkBytesOverride = b;
}
/** CELLGPU_CONV_SUBGROUP_CHUNK_MB (or its older name CELLGPU_CONV_V3_CHUNK_MB): the chunk in MB. */
const envChunk = typeof process !== 'undefined' ? Number(process.env.CELLGPU_CONV_SUBGROUP_CHUNK_MB ?? process.env.CELLGPU_CONV_V3_CHUNK_MB ?? '') : NaN;
/** A few MB: the GEMM re-reads the chunk while it is still in the CPU caches. */
const chunkBytes = () => chunkBytesOverride ?? (envChunk > 0 ? envChunk * 1024 * 1024 : 4 * 1024 * 1024);

// 64 rows are not offered: no faster than 32, and such a kernel compiles for minutes.
type Rows = 8 | 16 | 32;
let rowsOverride: Rows | undefined;
/** Force the GEMM row tile (tuning and tests); at most Mg rounded up to 8. */
export function overrideSubgroupGemmRows(r: Rows | undefined): void {
  rowsOverride = r;
}
export const rowsFor = (mg: number): Rows => {
  if (rowsOverride) return mg <= 8 ? 8 : mg <= 16 ? (Math.min(rowsOverride, 16) as Rows) : rowsOverride;
  return mg > 16 ? 32 : mg > 8 ? 16 : 8;
};
/** Rows of the A operand: Mg padded to whole GEMM tiles (the padding rows are zero). */
export const paddedRows = (mg: number) => Math.ceil(mg / rowsFor(mg)) * rowsFor(mg);
const ceilDiv = (a: number, b: number) => Math.ceil(a / b);
/** The largest storage binding the packed operands and workspaces may take (128 MiB). */
export const MAX_BINDING = 128 * 1024 * 1024;

/** Pack weight rows into a pooled A [groups][Mpad][K4] (caller releases). */
export function packWeightRows(w: GPUBuffer, wOff: number, groups: number, mg: number, mpad: number, cInner: number, taps: Tap[], sm: number, sc: number, gstride: number, kAlign = 4, h = false): { a: GPUBuffer; K: number; K4: number } {
  const T = taps.length;
  const K = cInner * T;
  // Row length: K rounded up to kAlign (a multiple of 4: whole vec4 loads).
  const K4 = Math.max(kAlign, ceilDiv(K, kAlign) * kAlign);
  const total = groups * mpad * K4;
  if (total * 4 > MAX_BINDING) throw new Error(`conv subgroup-gemm: packed weights would take ${total * 4} bytes (over 128 MiB; use packed-gemm)`);
  const a = rt().pool.acquire(total * 4, GPUBufferUsage.STORAGE, 'conv.subgroup-gemm.A');
  const natural = taps.every((t, i) => t.index === i);
  const idx = new Array<number>(Math.ceil(MAX_TAPS / 4) * 4).fill(0);
  taps.forEach((t, i) => (idx[i] = t.index));
  const params = { Mpad: mpad, K4, K: Math.max(K, 1), Mg: mg, sm, sc, gstride, w_off: wOff, idx };
  packWKernel.dispatch({ T: Math.max(T, 1), table: !natural, h }, { w, A: a }, params, [1, mpad, groups]);
  return { a, K, K4 };
}

/** Pack dy rows for wgrad into a pooled A [groups][Mpad][NS4] (caller releases). */
export function packDyRows(dy: GPUBuffer, dyOff: number, groups: number, og: number, mpad: number, O: number, ohw: number, ns: number, h = false): { a: GPUBuffer; NS4: number } {
  const NS4 = ceilDiv(ns, 4) * 4;
  const total = groups * mpad * NS4;
  if (total * 4 > MAX_BINDING) throw new Error(`conv subgroup-gemm wgrad: packed dy would take ${total * 4} bytes (over 128 MiB)`);
  const a = rt().pool.acquire(total * 4, GPUBufferUsage.STORAGE, 'conv.subgroup-gemm.dy');
  const N = ns / ohw;
  if (groups * N > 65535) throw new Error(`conv subgroup-gemm wgrad: ${groups} groups × ${N} images exceed 65,535 workgroups (use packed-gemm)`);
  const params = { Mpad: mpad, NS4, NS: ns, Og: og, O, OHW: ohw, dy_off: dyOff, N };
  packDyKernel.dispatch({ h }, { dy, A: a }, params, [1, mpad, groups * N]);
  return { a, NS4 };
}

/** Where a forward-style GEMM stores: columns (n, a, b) on a GH×GW grid. */
export interface ColumnStore {
  out: GPUBuffer;
  outOff: number;
  /** Channels of the destination tensor (its C dim) and rows per group (Mg). */
  ctot: number;
  GH: number;
  GW: number;
  /** Destination is [N, ctot, Hf, Wf] and (a, b) lands at (a·sH + oH, b·sW + oW); null = dense [N, ctot, GH·GW]. */
  phase: { Hf: number; Wf: number; sH: number; sW: number; oH: number; oW: number } | null;
  bias: { buffer: GPUBuffer; offset: number } | null;
  relu: boolean;
}

/** Source of the gather for forward/dgrad: src [N, csrc, Hs, Ws], group g reads channels g·cgs + c. */
export interface GatherSource {
  src: GPUBuffer;
  srcOff: number;
  csrc: number;
  cgs: number;
  Hs: number;
  Ws: number;
  stepH: number;
  stepW: number;
  /** f16 source, and f16 destination (ColumnStore.out). */
  h?: boolean;
}

/**
 * C[g][m][(n, a, b)] = A[g][m][:] · im2col(src)[:, (n, a, b)] for N images, in column chunks:
 * gather a chunk of panels into the workspace, then run the GEMM over it.
 */
export function gatherGemm(N: number, groups: number, mg: number, a: { a: GPUBuffer; K: number; K4: number }, taps: Tap[], srcDesc: GatherSource, st: ColumnStore): void {
  const mpad = paddedRows(mg);
  const R = rowsFor(mg);
  const NC = N * st.GH * st.GW;
  const totalPanels = ceilDiv(NC, PANEL);
  const panelBytes = groups * a.K4 * PANEL * 4;
  const perChunk = Math.max(1, Math.min(totalPanels, 65535, Math.floor(Math.min(chunkBytes(), MAX_BINDING) / panelBytes)));
  if (panelBytes > MAX_BINDING) throw new Error(`conv subgroup-gemm: one panel needs ${panelBytes} bytes (over 128 MiB)`);
  const ws = rt().pool.acquire(perChunk * panelBytes, GPUBufferUsage.STORAGE, 'conv.subgroup-gemm.panels');
  const dense = st.phase === null;
  const vecStore = dense && (st.GH * st.GW) % 4 === 0 && st.outOff % 4 === 0;
  const mode: StoreMode = dense ? (vecStore ? 'fwd4' : 'fwd') : 'phase';
  const h = !!srcDesc.h;
  const gv: GemmSpec = { rows: R, store: mode, bias: !!st.bias, relu: st.relu, h };
  const ph = st.phase ?? { Hf: 0, Wf: 0, sH: 0, sW: 0, oH: 0, oW: 0 };
  const tw = tapWords(taps, 'offsets');
  const bufs = { A: a.a, B: ws, bias: st.bias?.buffer, C: st.out };
  for (let p0 = 0; p0 < totalPanels; p0 += perChunk) {
    const panels = Math.min(perChunk, totalPanels - p0);
    const kb = blockRows(a.K4, panels * groups);
    if (a.K > 0) {
      const ip = {
        NC, GW: st.GW, GHW: st.GH * st.GW, K: a.K, K4: a.K4, T: Math.max(taps.length, 1), panels, panel0: p0,
        stepH: srcDesc.stepH, stepW: srcDesc.stepW, Hs: srcDesc.Hs, Ws: srcDesc.Ws, csrc: srcDesc.csrc, cgs: srcDesc.cgs, src_off: srcDesc.srcOff, kb,
        taps: tw,
      };
      im2colKernel.dispatch({ h }, { src: srcDesc.src, Bp: ws }, ip, [ceilDiv(a.K4, kb), panels, groups]);
    }
    const k4 = a.K > 0 ? a.K4 : 0;
    const gp = {
      Mg: mg, Mpad: mpad, K4: k4, lda4: a.K4 / 4, ka4: 0, panels, panel0: p0, NC,
      GW: st.GW, GHW: st.GH * st.GW, ctot: st.ctot, Hf: ph.Hf, Wf: ph.Wf, sH: ph.sH, sW: ph.sW, oH: ph.oH, oW: ph.oW, out_off: st.outOff, b_off: st.bias?.offset ?? 0, accumulate: 0,
      kS: k4, sstride: 0, ngroups: groups,
    };
    gemmKernel.dispatch(gv, bufs, gp, [mpad / R, panels, groups]);
  }
  rt().pool.release(ws);
}

/** Source of the wgrad gather: x [N, C, H, W] under the forward geometry. */
export interface WgradSource {
  x: GPUBuffer;
  xOff: number;
  C: number;
  cg: number;
  H: number;
  W: number;
  OH: number;
  OW: number;
  sh: number;
  sw: number;
  /** f16 x (dw stays f32). */
  h?: boolean;
}

/**
 * dw[g·Og + m][k] (k = c·T + t < KK) = Σ_s dy[m, s] · x̂[k, s], s = (n, oh, ow) < NS, over chunks of
 * s that accumulate into dw in a fixed order.
 */
export function wgradGemm(groups: number, og: number, dyA: { a: GPUBuffer; NS4: number }, ns: number, taps: Tap[], s: WgradSource, dw: GPUBuffer, dwOff: number): void {
  const R = rowsFor(og);
  const mpad = paddedRows(og);
  const T = taps.length;
  const KK = s.cg * T;
  const panels = ceilDiv(KK, PANEL);
  const rowBytes = groups * panels * PANEL * 4; // one s row of every panel
  // Chunk rows: a multiple of KB (so chunk starts are vec4-aligned in A).
  const rowsPerChunk = Math.max(KB, Math.floor(Math.min(chunkBytes(), MAX_BINDING) / rowBytes / KB) * KB);
  const chunkRows = Math.min(rowsPerChunk, ceilDiv(dyA.NS4, KB) * KB);
  if (chunkRows * rowBytes > MAX_BINDING) throw new Error(`conv subgroup-gemm wgrad: a chunk needs ${chunkRows * rowBytes} bytes (over 128 MiB)`);
  const ws = rt().pool.acquire(chunkRows * rowBytes, GPUBufferUsage.STORAGE, 'conv.subgroup-gemm.panelsT');
  const gv: GemmSpec = { rows: R, store: 'wgrad', bias: false, relu: false, h: false };
  const tw = tapWords(taps, 'offsets');
  // Few output tiles (small Og·Cg·KH·KW, e.g. the 3-channel stem): split each chunk's reduction
  // into S slices written to S partial outputs (summed at the end in a fixed order), so that
  // there are enough workgroups for every core; each slice keeps ≥ 128 rows.
  const tiles = (mpad / R) * panels * groups;
  const S = Math.max(1, Math.min(Math.ceil(WANT_GEMM_WG / tiles), Math.floor(chunkRows / 128)));
  const count = groups * og * KK;
  const partial = S > 1 ? rt().pool.acquire(S * count * 4, GPUBufferUsage.STORAGE, 'conv.subgroup-gemm.partial') : null;
  let first = true;
  for (let s0 = 0; s0 < dyA.NS4; s0 += chunkRows) {
    const R4 = Math.min(chunkRows, dyA.NS4 - s0);
    const rb = blockRows(R4, panels * groups);
    const ip = {
      KK, T, R4, s0, NS: ns, OH: s.OH, OW: s.OW, sh: s.sh,
      sw: s.sw, Hs: s.H, Ws: s.W, csrc: s.C, cg: s.cg, src_off: s.xOff, panels, kb: rb,
      taps: tw,
    };
    im2colTKernel.dispatch({ h: !!s.h }, { src: s.x, Bp: ws }, ip, [ceilDiv(R4, rb), panels, groups]);
    const kS = Math.ceil(R4 / S / 4) * 4;
    const gp = {
      Mg: og, Mpad: mpad, K4: R4, lda4: dyA.NS4 / 4, ka4: s0 / 4, panels, panel0: 0, NC: KK,
      GW: 0, GHW: 0, ctot: 0, Hf: 0, Wf: 0, sH: 0, sW: 0, oH: 0, oW: 0, out_off: partial ? 0 : dwOff, b_off: 0, accumulate: first ? 0 : 1,
      kS, sstride: count, ngroups: groups,
    };
    gemmKernel.dispatch(gv, { A: dyA.a, B: ws, C: partial ?? dw }, gp, [mpad / R, panels, groups * S]);
    first = false;
  }
  if (partial) {
    reduceSplits(partial, S, count, dw, dwOff);
    rt().pool.release(partial);
  }
  rt().pool.release(ws);
}
