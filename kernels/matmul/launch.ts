// Matrix multiplication C[b] = epilogue(A[b] · B[b]) for batched, broadcast, strided f32 operands.
//
// Operands are views: A is [...batchA, M, K], B is [...batchB, K, N]; batch dims broadcast to the
// output's batch shape (stride 0 where an operand is broadcast). Inside the last two dims a view
// must be row-major (unit stride along the last dim) or column-major (unit stride along the
// second-to-last), so a transposed operand is read through its strides, never copied
// (`matrixLayout`; the op layer makes other layouts contiguous first). The output is a dense
// [...batch, M, N] buffer region. Epilogue: optional bias over N, then optional ReLU.
//
// Kernels, from the readable reference to the fast ones (each checked against the float64
// reference and against the naive kernel in test/engine/matmul.test.ts):
//   naive  one output per invocation, any strides: the reference path.
//   v1     workgroup-memory tiles (TILE×TILE outputs, TK=16 deep), 4×4 outputs per invocation:
//          the classic design for discrete GPUs (tfjs `matmul_packed` style).
//   v2     no workgroup memory and no barriers: a workgroup of WG invocations (one 8-lane SIMD
//          vector on lavapipe) computes ROWS rows × 4·WG columns, each invocation ROWS×4 outputs in
//          vec4 accumulators, with vec4 loads where the layout and alignment allow. On CPU
//          rasterizers every storage load is scalarized per lane and workgroup memory costs as much
//          as a global load (perf-anchors §5), so the only lever is FLOPs per load.
//   v3     v2's register tile, made for lavapipe's 8-wide subgroups: a workgroup is one subgroup
//          of 8 invocations computing ROWS (8 or 16) rows × 32 columns. The A values of a row are
//          the same for every invocation, so each invocation loads a different row and
//          `subgroupBroadcast` hands it to the others (one scalarized load instead of 8), and B is
//          first packed by a small kernel into 32-column panels [batch][panel][K4][32] (zero padded
//          in N and K), so each workgroup streams one contiguous panel: row-major B rows 4 KiB apart
//          otherwise thrash the caches (tall-K 64×4608×1024 ran 2× slower unpacked). 16 rows spill
//          some accumulators to the stack, which is still far cheaper than scalarized loads.
//   split-K any of v1/v2/v3 with K cut into `splits` chunks written to a workspace, then summed by a
//          reduce kernel that applies the epilogue: for tall-K problems with few output tiles.
// `choosePlan` picks the kernel and tile shape from the problem shape and the adapter.
import { defineKernel, rt, WGSL_LINEAR_WORKGROUP } from '../define-kernel';

import { hasSubgroups8, isSoftwareAdapter } from '../../runtime/adapter';
import { numelOf, type View } from '../../runtime/shape';

export type Activation = 'none' | 'relu';
export type Layout = 'row' | 'col';

/** How a matrix (the last two dims of a view) is laid out: element (i, j) at off + i·ld + j (row)
 *  or off + i + j·ld (col). null when neither (then the caller must make it contiguous). */
export interface MatrixLayout {
  layout: Layout;
  ld: number;
}

export function matrixLayout(v: { shape: readonly number[]; strides: readonly number[] }): MatrixLayout | null {
  const n = v.shape.length;
  const rows = v.shape[n - 2]!;
  const cols = v.shape[n - 1]!;
  const sr = v.strides[n - 2]!;
  const sc = v.strides[n - 1]!;
  // Size-1 dims have meaningless strides; ld of a single row/column is never multiplied by a
  // non-zero index, so report 0 (which also keeps vec4 alignment checks simple).
  if (cols === 1 || sc === 1) return { layout: 'row', ld: rows === 1 ? 0 : sr };
  if (rows === 1 || sr === 1) return { layout: 'col', ld: cols === 1 ? 0 : sc };
  return null;
}

export type MatmulConfig =
  | { kernel: 'naive' }
  | { kernel: 'v1'; tile: 32 | 64; splits?: number }
  | { kernel: 'v2'; rows: 4 | 8; wg: 8 | 16; splits?: number }
  | { kernel: 'v3'; rows: 8 | 16; splits?: number };

export interface MatmulArgs {
  a: View;
  b: View;
  /** Dense output region of numel batch·M·N starting at out.offset. */
  out: View;
  bias?: View;
  act?: Activation;
}

const MAX_BATCH_RANK = 4;
const X = ['x', 'y', 'z', 'w'];

interface Problem {
  M: number;
  N: number;
  K: number;
  batchShape: number[];
  batchStridesA: number[];
  batchStridesB: number[];
  nBatch: number;
  la: MatrixLayout;
  lb: MatrixLayout;
}

/** Broadcast batch dims, merge the mergeable ones, and check shapes. */
function analyse(a: View, b: View): Problem {
  if (a.shape.length < 2 || b.shape.length < 2) throw new Error(`matmul kernel: operands need >= 2 dims, got [${a.shape}] and [${b.shape}]`);
  if (a.dtype !== 'f32' || b.dtype !== 'f32') throw new Error(`matmul: f32 operands expected, got ${a.dtype} and ${b.dtype}`);
  const M = a.shape[a.shape.length - 2]!;
  const K = a.shape[a.shape.length - 1]!;
  const Kb = b.shape[b.shape.length - 2]!;
  const N = b.shape[b.shape.length - 1]!;
  if (K !== Kb) throw new Error(`matmul: inner dimensions differ: [${a.shape}] · [${b.shape}] (${K} vs ${Kb})`);
  const la = matrixLayout(a);
  const lb = matrixLayout(b);
  if (!la || !lb) throw new Error(`matmul kernel: operand matrices must be row- or column-major (strides [${a.strides}] / [${b.strides}])`);
  const ba = a.shape.slice(0, -2);
  const bb = b.shape.slice(0, -2);
  const rank = Math.max(ba.length, bb.length);
  const shape: number[] = [];
  const sa: number[] = [];
  const sb: number[] = [];
  for (let i = 0; i < rank; i++) {
    const ia = i - (rank - ba.length);
    const ib = i - (rank - bb.length);
    const na = ia >= 0 ? ba[ia]! : 1;
    const nb = ib >= 0 ? bb[ib]! : 1;
    if (na !== nb && na !== 1 && nb !== 1) throw new Error(`matmul: batch dims [${ba}] and [${bb}] cannot be broadcast together`);
    const n = na === 1 ? nb : na;
    if (n === 1) continue; // size-1 batch dims contribute nothing
    shape.push(n);
    sa.push(na === 1 ? 0 : a.strides[ia]!);
    sb.push(nb === 1 ? 0 : b.strides[ib]!);
  }
  // Merge adjacent batch dims when both operands' strides allow (keeps the rank within 4).
  for (let i = shape.length - 2; i >= 0; i--) {
    if (sa[i] === sa[i + 1]! * shape[i + 1]! && sb[i] === sb[i + 1]! * shape[i + 1]!) {
      shape[i] = shape[i]! * shape[i + 1]!;
      sa[i] = sa[i + 1]!;
      sb[i] = sb[i + 1]!;
      shape.splice(i + 1, 1);
      sa.splice(i + 1, 1);
      sb.splice(i + 1, 1);
    }
  }
  if (shape.length > MAX_BATCH_RANK) throw new Error(`matmul: at most ${MAX_BATCH_RANK} non-mergeable batch dims, got [${shape}]`);
  return { M, N, K, batchShape: shape, batchStridesA: sa, batchStridesB: sb, nBatch: numelOf(shape), la, lb };
}

// ---- plan selection ------------------------------------------------------------------------------

/** Kernel and tile shape for a problem on the current adapter. */
export function choosePlan(M: number, N: number, K: number, nBatch: number): MatmulConfig {
  if (M * N * K === 0) return { kernel: 'naive' };
  if (isSoftwareAdapter()) {
    // v3 packs B, which pays off only when several 16-row blocks re-read the same panel.
    if (hasSubgroups8() && M > 16 && v3PackedBytes(N, K, nBatch) <= MAX_PACKED_BYTES) {
      const tiles = Math.ceil(M / 16) * Math.ceil(N / V3_COLS) * nBatch;
      return { kernel: 'v3', rows: 16, splits: splitsFor(tiles, K, 16) };
    }
    // Small M or N: 4-row tiles keep more workgroups busy and waste less on clamped rows.
    const small = M < 64 || N < 128;
    const rows: 4 | 8 = small ? 4 : 8;
    const wg: 8 | 16 = small ? 16 : 8;
    const tiles = Math.ceil(M / rows) * Math.ceil(N / (4 * wg)) * nBatch;
    return { kernel: 'v2', rows, wg, splits: splitsFor(tiles, K, 16) };
  }
  const tile: 32 | 64 = M >= 256 && N >= 256 ? 64 : 32;
  const tiles = Math.ceil(M / tile) * Math.ceil(N / tile) * nBatch;
  return { kernel: 'v1', tile, splits: splitsFor(tiles, K, 128) };
}

const V3_COLS = 32; // 8 invocations × 4 columns
const MAX_PACKED_BYTES = 128 * 1024 * 1024;
/** Bytes of v3's packed B: [nBatch][ceil(N/32)][K rounded up to 4][32] f32. */
export function v3PackedBytes(N: number, K: number, nBatch: number): number {
  return nBatch * Math.ceil(N / V3_COLS) * Math.ceil(K / 4) * 4 * V3_COLS * 4;
}

/** Split K when there are fewer output tiles than `wantTiles` and K is long (each chunk ≥ 256). */
function splitsFor(tiles: number, K: number, wantTiles: number): number {
  if (tiles >= wantTiles || K < 512) return 1;
  return Math.max(1, Math.min(Math.ceil(wantTiles / tiles), Math.floor(K / 256), 32));
}

// ---- WGSL ------------------------------------------------------------------------------------------

const PARAMS = {
  M: 'u32', N: 'u32', K: 'u32', kChunk: 'u32',
  offA: 'u32', sAm: 'u32', sAk: 'u32', offB: 'u32',
  sBk: 'u32', sBn: 'u32', offC: 'u32', offBias: 'u32',
  splits: 'u32', batchRank: 'u32', nBatch: 'u32',
  bshape: ['u32', MAX_BATCH_RANK, 1], bsA: ['u32', MAX_BATCH_RANK], bsB: ['u32', MAX_BATCH_RANK],
} as const;

const UNIFORMS = /* wgsl */ `
// Element offsets of batch b's A and B matrices (batch dims broadcast with stride 0).
fn batch_offsets(b: u32) -> vec2u {
  var rem = b;
  var oa = p.offA;
  var ob = p.offB;
  for (var d = i32(p.batchRank) - 1; d >= 0; d--) {
    let n = p_bshape(u32(d));
    let i = rem % n;
    rem = rem / n;
    oa += i * p_bsA(u32(d));
    ob += i * p_bsB(u32(d));
  }
  return vec2u(oa, ob);
}`;

interface Epilogue {
  bias: boolean;
  act: Activation;
}

/** What the main kernels' bindings depend on: vec4 element types (absent: f32) and the bias. */
interface MainBindingVariant {
  bias: boolean;
  aVec?: boolean;
  bVec?: boolean;
  cVec?: boolean;
}
const vecType = (vec: boolean | undefined) => (vec ? 'vec4f' : 'f32');
/** Bindings A, B, [bias], C of the main kernels (v3's B is always packed vec4 panels). */
const mainBindings = (packedB: boolean) =>
  ({
    A: { type: (v: MainBindingVariant) => vecType(v.aVec), access: 'read' },
    B: { type: (v: MainBindingVariant) => vecType(packedB || v.bVec), access: 'read' },
    bias: { type: 'f32', access: 'read', when: (v: MainBindingVariant) => v.bias },
    C: { type: (v: MainBindingVariant) => vecType(v.cVec), access: 'rw' },
  }) as const;

/** Helpers over the bindings and uniforms: batch offsets, scalar loads, the epilogue. */
function header(aType: string, bType: string, epi: Epilogue): string {
  const lines: string[] = [];
  lines.push(UNIFORMS);
  // Scalar element access whatever the binding's element type.
  lines.push(aType === 'vec4f' ? 'fn ldA(i: u32) -> f32 { return A[i >> 2u][i & 3u]; }' : 'fn ldA(i: u32) -> f32 { return A[i]; }');
  lines.push(bType === 'vec4f' ? 'fn ldB(i: u32) -> f32 { return B[i >> 2u][i & 3u]; }' : 'fn ldB(i: u32) -> f32 { return B[i]; }');
  const biasTerm = epi.bias ? ' + bias[p.offBias + n]' : '';
  const act = epi.act === 'relu' ? 'max(v, 0.0)' : 'v';
  lines.push(`fn epi(acc: f32, n: u32) -> f32 { let v = acc${biasTerm}; return ${act}; }`);
  return lines.join('\n');
}

/** The reference kernel: one output per invocation, plain loop over K, any strides. */
function naiveCode(epi: Epilogue): string {
  return `${header('f32', 'f32', epi)}
@compute @workgroup_size(8, 8)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let n = gid.x;
  let m = gid.y;
  let b = gid.z;
  if (m >= p.M || n >= p.N) { return; }
  let o = batch_offsets(b);
  var acc = 0.0;
  for (var k = 0u; k < p.K; k++) {
    acc += ldA(o.x + m * p.sAm + k * p.sAk) * ldB(o.y + k * p.sBk + n * p.sBn);
  }
  C[p.offC + (b * p.M + m) * p.N + n] = epi(acc, n);
}`;
}

/** Store a ROWS×4 block of vec4 accumulators acc0.. at rows m0+r, columns n0..n0+3. */
function storeBlock(rows: number, cVec: boolean, split: boolean, indent: string): string {
  const out: string[] = [];
  // With split-K the partial sums go to the workspace raw; the reduce kernel applies the epilogue.
  const f = (v: string, n: string) => (split ? v : `epi(${v}, ${n})`);
  for (let r = 0; r < rows; r++) {
    if (cVec) {
      const v = `acc${r}`;
      const e = split ? v : `vec4f(${X.map((c, i) => f(`${v}.${c}`, `n0 + ${i}u`)).join(', ')})`;
      out.push(`${indent}if (m0 + ${r}u < p.M) { C[(cbase + (m0 + ${r}u) * p.N + n0) >> 2u] = ${e}; }`);
    } else {
      for (let c = 0; c < 4; c++) {
        out.push(`${indent}if (m0 + ${r}u < p.M && n0 + ${c}u < p.N) { C[cbase + (m0 + ${r}u) * p.N + n0 + ${c}u] = ${f(`acc${r}.${X[c]}`, `n0 + ${c}u`)}; }`);
      }
    }
  }
  return out.join('\n');
}

interface V2Spec extends Epilogue {
  rows: number;
  wg: number;
  la: Layout;
  lb: Layout;
  aVec: boolean;
  bVec: boolean;
  cVec: boolean;
  split: boolean;
}

/** v2: register-blocked, no workgroup memory (see the file comment). */
function v2Code(s: V2Spec): string {
  const R = s.rows;
  const L: string[] = [];
  L.push(header(s.aVec ? 'vec4f' : 'f32', s.bVec ? 'vec4f' : 'f32', s));
  L.push(`@compute @workgroup_size(${s.wg})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let split = wid.z % p.splits;
  let o = batch_offsets(wid.z / p.splits);
  let oa = o.x;
  let ob = o.y;
  let m0 = wid.x * ${R}u;
  let n0 = (wid.y * ${s.wg}u + lid) * 4u;
  if (n0 >= p.N) { return; }
  let kBegin = split * p.kChunk;
  let kEnd = min(p.K, kBegin + p.kChunk);
  let kVecEnd = kBegin + ((kEnd - kBegin) / 4u) * 4u;
  let cbase = p.offC + wid.z * p.M * p.N;`);
  // Rows and columns past the edge are clamped for loading and skipped when storing.
  for (let r = 0; r < R; r++) L.push(`  let mr${r} = min(m0 + ${r}u, p.M - 1u);`);
  for (let c = 0; c < 4; c++) L.push(`  let nc${c} = min(n0 + ${c}u, p.N - 1u);`);
  for (let r = 0; r < R; r++) L.push(`  var acc${r} = vec4f(0.0);`);
  if (s.la === 'row') for (let r = 0; r < R; r++) L.push(`  let ra${r} = oa + mr${r} * p.sAm;`);
  if (s.la === 'col' && s.aVec) for (let g = 0; g < R / 4; g++) L.push(`  let mg${g} = min(m0 + ${4 * g}u, p.M - 4u);`);
  if (s.lb === 'col') for (let c = 0; c < 4; c++) L.push(`  let cb${c} = ob + nc${c} * p.sBn;`);
  L.push('  var k = kBegin;');
  L.push('  for (; k < kVecEnd; k += 4u) {');
  // A values a(r, kk) for rows r and k+kk.
  let aval: (r: number, kk: number) => string;
  if (s.la === 'row') {
    for (let r = 0; r < R; r++) {
      L.push(
        s.aVec
          ? `    let a${r} = A[(ra${r} + k) >> 2u];`
          : `    let a${r} = vec4f(A[ra${r} + k], A[ra${r} + k + 1u], A[ra${r} + k + 2u], A[ra${r} + k + 3u]);`,
      );
    }
    aval = (r, kk) => `a${r}.${X[kk]}`;
  } else {
    for (let kk = 0; kk < 4; kk++) L.push(`    let kb${kk} = oa + (k + ${kk}u) * p.sAk;`);
    if (s.aVec) {
      for (let kk = 0; kk < 4; kk++) for (let g = 0; g < R / 4; g++) L.push(`    let a${g}_${kk} = A[(kb${kk} + mg${g}) >> 2u];`);
      aval = (r, kk) => `a${r >> 2}_${kk}.${X[r & 3]}`;
    } else {
      aval = (r, kk) => `A[kb${kk} + mr${r}]`;
    }
  }
  // B rows bv(kk) = B[k+kk, n0..n0+3] as vec4.
  if (s.lb === 'row') {
    for (let kk = 0; kk < 4; kk++) {
      L.push(`    let bk${kk} = ob + (k + ${kk}u) * p.sBk;`);
      L.push(s.bVec ? `    let bv${kk} = B[(bk${kk} + n0) >> 2u];` : `    let bv${kk} = vec4f(B[bk${kk} + nc0], B[bk${kk} + nc1], B[bk${kk} + nc2], B[bk${kk} + nc3]);`);
    }
  } else {
    for (let c = 0; c < 4; c++) {
      L.push(s.bVec ? `    let bc${c} = B[(cb${c} + k) >> 2u];` : `    let bc${c} = vec4f(B[cb${c} + k], B[cb${c} + k + 1u], B[cb${c} + k + 2u], B[cb${c} + k + 3u]);`);
    }
    // Transposing in registers is free on SIMD-per-invocation hardware.
    for (let kk = 0; kk < 4; kk++) L.push(`    let bv${kk} = vec4f(bc0.${X[kk]}, bc1.${X[kk]}, bc2.${X[kk]}, bc3.${X[kk]});`);
  }
  for (let kk = 0; kk < 4; kk++) for (let r = 0; r < R; r++) L.push(`    acc${r} = fma(vec4f(${aval(r, kk)}), bv${kk}, acc${r});`);
  L.push('  }');
  // K remainder (K not a multiple of 4), scalar loads through the generic strides.
  L.push(`  for (; k < kEnd; k++) {
    let bo = ob + k * p.sBk;
    let bt = vec4f(ldB(bo + nc0 * p.sBn), ldB(bo + nc1 * p.sBn), ldB(bo + nc2 * p.sBn), ldB(bo + nc3 * p.sBn));
    let ao = oa + k * p.sAk;`);
  for (let r = 0; r < R; r++) L.push(`    acc${r} = fma(vec4f(ldA(ao + mr${r} * p.sAm)), bt, acc${r});`);
  L.push('  }');
  L.push(storeBlock(R, s.cVec, s.split, '  '));
  L.push('}');
  return L.join('\n');
}

/** v3's B packing: Bp[b][panel][k][32] = B[b][k][panel·32 + j], zero where k ≥ K or column ≥ N.
 *  Any B layout (read through the strides). Workgroup (x, y, z) = (block of PACK_K rows, panel,
 *  batch), one vec4 column group per invocation: no integer division per element (x86 has no
 *  SIMD integer divide, so per-invocation index decoding cost as much as the copy itself). */
const PACK_K = 32;
function v3PackCode(bVec: boolean): string {
  const lines = [
    UNIFORMS,
    bVec ? 'fn ldB(i: u32) -> f32 { return B[i >> 2u][i & 3u]; }' : 'fn ldB(i: u32) -> f32 { return B[i]; }',
  ];
  const load = bVec
    ? '      if (n < p.N) { v = B[(row + n) >> 2u]; }'
    : [0, 1, 2, 3].map((c) => `      if (n + ${c}u < p.N) { v.${X[c]} = ldB(row + (n + ${c}u) * p.sBn); }`).join('\n');
  return `${lines.join('\n')}
@compute @workgroup_size(${V3_COLS / 4})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let K4 = (p.K + 3u) & ~3u;
  let panels = (p.N + ${V3_COLS - 1}u) / ${V3_COLS}u;
  let ob = batch_offsets(wid.z).y;
  let n = wid.y * ${V3_COLS}u + lid * 4u;
  let k0 = wid.x * ${PACK_K}u;
  let k1 = min(K4, k0 + ${PACK_K}u);
  var q = ((wid.z * panels + wid.y) * K4 + k0) * ${V3_COLS / 4}u + lid;
  for (var k = k0; k < k1; k++) {
    var v = vec4f(0.0);
    if (k < p.K) {
      let row = ob + k * p.sBk;
${load}
    }
    Bp[q] = v;
    q += ${V3_COLS / 4}u;
  }
}`;
}

interface V3Spec extends Epilogue {
  rows: number;
  /** A row-major, 16-byte aligned rows and K % 4 == 0: one vec4 load per row and 4 k. */
  aVec: boolean;
  cVec: boolean;
  split: boolean;
}

/** v3: subgroup-shared A rows, packed B panels (see the file comment). Every invocation stays
 *  active to the end (no early return): subgroupBroadcast reads other invocations' values. */
function v3Code(s: V3Spec): string {
  const R = s.rows;
  const loadsA = R / 8;
  const L: string[] = ['enable subgroups;'];
  L.push(header(s.aVec ? 'vec4f' : 'f32', 'vec4f', s));
  L.push(`@compute @workgroup_size(8)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(subgroup_invocation_id) lane: u32) {
  let split = wid.z % p.splits;
  let batch = wid.z / p.splits;
  let oa = batch_offsets(batch).x;
  let K4 = (p.K + 3u) & ~3u;
  let panels = (p.N + ${V3_COLS - 1}u) / ${V3_COLS}u;
  let m0 = wid.x * ${R}u;
  let n0 = wid.y * ${V3_COLS}u + lane * 4u;
  let kBegin = split * p.kChunk;
  let kEnd = min(K4, kBegin + p.kChunk);
  let cbase = p.offC + wid.z * p.M * p.N;
  var bi = ((batch * panels + wid.y) * K4 + kBegin) * ${V3_COLS / 4}u + lane;`);
  // This invocation loads rows m0 + lane + 8j (clamped at the edge; those rows are not stored).
  for (let j = 0; j < loadsA; j++) L.push(`  let ra${j} = oa + min(m0 + lane + ${8 * j}u, p.M - 1u) * p.sAm;`);
  for (let r = 0; r < R; r++) L.push(`  var acc${r} = vec4f(0.0);`);
  L.push('  for (var k = kBegin; k < kEnd; k += 4u) {');
  for (let j = 0; j < loadsA; j++) {
    L.push(
      s.aVec
        ? `    let am${j} = A[(ra${j} + k) >> 2u];`
        : `    let am${j} = vec4f(${[0, 1, 2, 3].map((c) => `select(0.0, ldA(ra${j} + (k + ${c}u) * p.sAk), k + ${c}u < p.K)`).join(', ')});`,
    );
  }
  for (let kk = 0; kk < 4; kk++) L.push(`    let b${kk} = B[bi + ${kk * (V3_COLS / 4)}u];`);
  L.push(`    bi += ${V3_COLS}u;`);
  for (let r = 0; r < R; r++) {
    L.push(`    let a${r} = subgroupBroadcast(am${r >> 3}, ${r & 7}u);`);
    for (let kk = 0; kk < 4; kk++) L.push(`    acc${r} = fma(vec4f(a${r}.${X[kk]}), b${kk}, acc${r});`);
  }
  L.push('  }');
  const f = (v: string, n: string) => (s.split ? v : `epi(${v}, ${n})`);
  for (let r = 0; r < R; r++) {
    const m = `m0 + ${r}u`;
    if (s.cVec) {
      const v = `acc${r}`;
      const e = s.split ? v : `vec4f(${X.map((c, i) => f(`${v}.${c}`, `n0 + ${i}u`)).join(', ')})`;
      L.push(`  if (${m} < p.M && n0 < p.N) { C[(cbase + (${m}) * p.N + n0) >> 2u] = ${e}; }`);
    } else {
      for (let c = 0; c < 4; c++) L.push(`  if (${m} < p.M && n0 + ${c}u < p.N) { C[cbase + (${m}) * p.N + n0 + ${c}u] = ${f(`acc${r}.${X[c]}`, `n0 + ${c}u`)}; }`);
    }
  }
  L.push('}');
  return L.join('\n');
}

interface V1Spec extends Epilogue {
  tile: number;
  la: Layout;
  lb: Layout;
  cVec: boolean;
  split: boolean;
}

const TK = 16;

/** v1: workgroup-memory tiles, (tile/4)² invocations, 4×4 outputs each. Tile loads map
 *  consecutive invocations to consecutive addresses for either operand layout (coalescing). */
function v1Code(s: V1Spec): string {
  const T = s.tile;
  const tpr = T / 4;
  const nt = tpr * tpr;
  const loads = (T * TK) / nt;
  // Element i of a tile load -> (outer, kk) so that the unit-stride index varies fastest.
  const aIdx = s.la === 'row' ? `let kk = i % ${TK}u; let mm = i / ${TK}u;` : `let mm = i % ${T}u; let kk = i / ${T}u;`;
  const bIdx = s.lb === 'row' ? `let nn = i % ${T}u; let kk = i / ${T}u;` : `let kk = i % ${TK}u; let nn = i / ${TK}u;`;
  const accs = [0, 1, 2, 3].map((r) => `  var acc${r} = vec4f(0.0);`).join('\n');
  const fmas = [0, 1, 2, 3].map((r) => `      acc${r} = fma(vec4f(a.${X[r]}), b, acc${r});`).join('\n');
  return `${header('f32', 'f32', s)}
var<workgroup> As: array<f32, ${TK * T}>; // [kk][m]
var<workgroup> Bs: array<f32, ${TK * T}>; // [kk][n]
@compute @workgroup_size(${tpr}, ${tpr})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u, @builtin(local_invocation_index) tid: u32) {
  let split = wid.z % p.splits;
  let o = batch_offsets(wid.z / p.splits);
  let tm0 = wid.x * ${T}u;
  let tn0 = wid.y * ${T}u;
  let m0 = tm0 + lid.y * 4u;
  let n0 = tn0 + lid.x * 4u;
  let kBegin = split * p.kChunk;
  let kEnd = min(p.K, kBegin + p.kChunk);
  let cbase = p.offC + wid.z * p.M * p.N;
${accs}
  for (var k0 = kBegin; k0 < kEnd; k0 += ${TK}u) {
    for (var j = 0u; j < ${loads}u; j++) {
      let i = tid + j * ${nt}u;
      {
        ${aIdx}
        let gm = tm0 + mm;
        let gk = k0 + kk;
        var v = 0.0;
        if (gm < p.M && gk < kEnd) { v = A[o.x + gm * p.sAm + gk * p.sAk]; }
        As[kk * ${T}u + mm] = v;
      }
      {
        ${bIdx}
        let gn = tn0 + nn;
        let gk = k0 + kk;
        var v = 0.0;
        if (gn < p.N && gk < kEnd) { v = B[o.y + gk * p.sBk + gn * p.sBn]; }
        Bs[kk * ${T}u + nn] = v;
      }
    }
    workgroupBarrier();
    for (var kk = 0u; kk < ${TK}u; kk++) {
      let ai = kk * ${T}u + lid.y * 4u;
      let bi = kk * ${T}u + lid.x * 4u;
      let a = vec4f(As[ai], As[ai + 1u], As[ai + 2u], As[ai + 3u]);
      let b = vec4f(Bs[bi], Bs[bi + 1u], Bs[bi + 2u], Bs[bi + 3u]);
${fmas}
    }
    workgroupBarrier();
  }
  if (n0 >= p.N) { return; }
${storeBlock(4, s.cVec, s.split, '  ')}
}`;
}

/** Sum the split-K partials [nBatch·splits, M, N] and apply the epilogue. */
function splitReduceCode(epi: Epilogue): string {
  const act = epi.act === 'relu' ? 'max(v, 0.0)' : 'v';
  return `${WGSL_LINEAR_WORKGROUP}
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = linear_workgroup(wid, nwg) * 256u + lid;
  if (i >= p.total) { return; }
  let b = i / p.mn;
  let e = i % p.mn;
  var acc = 0.0;
  for (var s = 0u; s < p.splits; s++) { acc += W[(b * p.splits + s) * p.mn + e]; }
  let v = acc${epi.bias ? ' + bias[p.offBias + e % p.n]' : ''};
  C[p.offC + i] = ${act};
}`;
}

// ---- launch ----------------------------------------------------------------------------------------

const naiveKernel = defineKernel({ name: 'matmul.naive', bindings: mainBindings(false), params: PARAMS, code: (v: Epilogue) => naiveCode(v) });
const v1Kernel = defineKernel({ name: 'matmul.v1', bindings: mainBindings(false), params: PARAMS, code: (v: V1Spec) => v1Code(v) });
const v2Kernel = defineKernel({ name: 'matmul.v2', bindings: mainBindings(false), params: PARAMS, code: (v: V2Spec) => v2Code(v) });
const v3Kernel = defineKernel({ name: 'matmul.v3', bindings: mainBindings(true), params: PARAMS, code: (v: V3Spec) => v3Code(v) });
const v3PackKernel = defineKernel({
  name: 'matmul.v3pack2',
  bindings: { B: { type: (v) => vecType(v.bVec), access: 'read' }, Bp: { type: 'vec4f', access: 'rw' } },
  params: PARAMS,
  code: (v: { bVec: boolean }) => v3PackCode(v.bVec),
});
const splitReduceKernel = defineKernel({
  name: 'matmul.splitk_reduce',
  bindings: {
    W: { type: 'f32', access: 'read' },
    bias: { type: 'f32', access: 'read', when: (v) => v.bias },
    C: { type: 'f32', access: 'rw' },
  },
  params: { total: 'u32', mn: 'u32', n: 'u32', splits: 'u32', offC: 'u32', offBias: 'u32' },
  code: (v: Epilogue) => splitReduceCode(v),
});

const aligned4 = (...xs: number[]) => xs.every((x) => x % 4 === 0);

/**
 * Record C = act(A·B + bias) into `out` with the given kernel (or the plan `choosePlan` picks).
 * Returns the config used (benchmarks and tests report it).
 */
export function launchMatmul(args: MatmulArgs, config?: MatmulConfig): MatmulConfig {
  const { a, b, out } = args;
  const pr = analyse(a, b);
  const { M, N, K, nBatch } = pr;
  if (numelOf(out.shape) !== nBatch * M * N) throw new Error(`matmul: output has ${numelOf(out.shape)} elements, expected ${nBatch}·${M}·${N}`);
  if (args.bias && (args.bias.shape.length !== 1 || args.bias.shape[0] !== N || args.bias.strides[0] !== 1)) {
    throw new Error(`matmul: bias must be a contiguous [${N}] vector, got shape [${args.bias.shape}]`);
  }
  if (nBatch * M * N === 0) return config ?? { kernel: 'naive' };
  const epi: Epilogue = { bias: !!args.bias, act: args.act ?? 'none' };
  const cfg = config ?? choosePlan(M, N, K, nBatch);
  if (K === 0) throw new Error('matmul: K = 0 is handled by the op layer (zeros + epilogue)');
  const splits = cfg.kernel === 'naive' ? 1 : Math.max(1, Math.min(cfg.splits ?? 1, Math.ceil(K / 4)));
  // K chunks are multiples of 4 (v2's vec4 A loads need aligned chunk starts).
  const kChunk = splits === 1 ? K : Math.ceil(K / splits / 4) * 4;
  const usedSplits = Math.ceil(K / kChunk);
  const z = nBatch * usedSplits;
  if (z > 65535) throw new Error(`matmul: ${nBatch} batches × ${usedSplits} K-splits exceed 65,535 workgroups`);

  // Matrix strides in (row, col) form for the generic index formulas.
  const sAm = pr.la.layout === 'row' ? pr.la.ld : 1;
  const sAk = pr.la.layout === 'row' ? 1 : pr.la.ld;
  const sBk = pr.lb.layout === 'row' ? pr.lb.ld : 1;
  const sBn = pr.lb.layout === 'row' ? 1 : pr.lb.ld;
  const split = usedSplits > 1;
  const work = split ? rt().pool.acquire(z * M * N * 4, GPUBufferUsage.STORAGE, 'matmul.splitk') : undefined;
  const cBuf = work ?? out.buffer;
  const offC = work ? 0 : out.offset;
  const cVec = N % 4 === 0 && offC % 4 === 0;
  const params = {
    M, N, K, kChunk,
    offA: a.offset, sAm, sAk, offB: b.offset,
    sBk, sBn, offC, offBias: args.bias?.offset ?? 0,
    splits: usedSplits, batchRank: pr.batchShape.length, nBatch,
    bshape: pr.batchShape, bsA: pr.batchStridesA, bsB: pr.batchStridesB,
  };
  const mainEpi: Epilogue = split ? { bias: false, act: 'none' } : epi;
  const buffers = { A: a.buffer, B: b.buffer, bias: mainEpi.bias ? args.bias!.buffer : undefined, C: cBuf };

  if (cfg.kernel === 'naive') {
    naiveKernel.dispatch(epi, buffers, params, [Math.ceil(N / 8), Math.ceil(M / 8), nBatch]);
  } else if (cfg.kernel === 'v1') {
    const T = cfg.tile;
    v1Kernel.dispatch({ tile: T, la: pr.la.layout, lb: pr.lb.layout, cVec, split, ...mainEpi }, buffers, params, [Math.ceil(M / T), Math.ceil(N / T), z]);
  } else if (cfg.kernel === 'v3') {
    const R = cfg.rows;
    if (!hasSubgroups8()) throw new Error('matmul v3 needs the subgroups feature with subgroups of at least 8 invocations');
    const packedBytes = v3PackedBytes(N, K, nBatch);
    if (packedBytes > MAX_PACKED_BYTES) throw new Error(`matmul v3: packed B would take ${packedBytes} bytes (over 128 MiB); use v2`);
    const packed = rt().pool.acquire(packedBytes, GPUBufferUsage.STORAGE, 'matmul.v3.packedB');
    const bVec = pr.lb.layout === 'row' && N % 4 === 0 && aligned4(b.offset, sBk, ...pr.batchStridesB);
    const K4 = Math.ceil(K / 4) * 4;
    if (K4 / PACK_K > 65535) throw new Error(`matmul v3: K = ${K} needs over 65,535 pack workgroups; use v2`);
    v3PackKernel.dispatch({ bVec }, { B: b.buffer, Bp: packed }, params, [Math.ceil(K4 / PACK_K), Math.ceil(N / V3_COLS), nBatch]);
    const aVec = pr.la.layout === 'row' && K % 4 === 0 && aligned4(a.offset, sAm, ...pr.batchStridesA);
    const gx = Math.ceil(M / R);
    const gy = Math.ceil(N / V3_COLS);
    if (gx > 65535 || gy > 65535) throw new Error(`matmul: ${M}×${N} output needs ${gx}×${gy} workgroups, over 65,535 per dimension`);
    v3Kernel.dispatch({ rows: R, aVec, cVec, split, ...mainEpi }, { ...buffers, B: packed }, params, [gx, gy, z]);
    rt().pool.release(packed);
  } else {
    const R = cfg.rows;
    const batchA = pr.batchStridesA;
    const batchB = pr.batchStridesB;
    // vec4 loads need every address of the vector aligned: unit-stride direction long enough,
    // leading dim, offsets and batch strides multiples of 4.
    const aVec =
      pr.la.layout === 'row'
        ? aligned4(a.offset, sAm, ...batchA)
        : R % 4 === 0 && M % 4 === 0 && aligned4(a.offset, sAk, ...batchA);
    const bVec =
      pr.lb.layout === 'row' ? N % 4 === 0 && aligned4(b.offset, sBk, ...batchB) : aligned4(b.offset, sBn, ...batchB);
    const gx = Math.ceil(M / R);
    const gy = Math.ceil(N / (4 * cfg.wg));
    if (gx > 65535 || gy > 65535) throw new Error(`matmul: ${M}×${N} output needs ${gx}×${gy} workgroups, over 65,535 per dimension`);
    v2Kernel.dispatch({ rows: R, wg: cfg.wg, la: pr.la.layout, lb: pr.lb.layout, aVec, bVec, cVec, split, ...mainEpi }, buffers, params, [gx, gy, z]);
  }

  if (work) {
    const total = nBatch * M * N;
    splitReduceKernel.dispatch(
      epi,
      { W: work, bias: epi.bias ? args.bias!.buffer : undefined, C: out.buffer },
      { total, mn: M * N, n: N, splits: usedSplits, offC: out.offset, offBias: args.bias?.offset ?? 0 },
      Math.ceil(total / 256),
    );
    rt().pool.release(work);
  }
  return cfg.kernel === 'naive' || splits === usedSplits ? cfg : { ...cfg, splits: usedSplits };
}
