// Register tiles shared through subgroups, made for lavapipe's 8-wide subgroups: a workgroup is one
// subgroup of 8 invocations computing ROWS (8 or 16) rows × 32 columns, each invocation ROWS×4
// outputs in vec4 accumulators. The A values of a row are the same for every invocation, so each
// invocation loads a different row and `subgroupBroadcast` hands it to the others (one scalarized
// load instead of 8). B is first packed by a small kernel into 32-column panels
// [batch][panel][K4][32] (zero padded in N and K), so each workgroup streams one contiguous panel:
// row-major B rows 4 KiB apart otherwise thrash the caches (tall-K 64×4608×1024 runs 2× slower
// unpacked). 16 rows spill some accumulators to the stack, which is still far cheaper than
// scalarized loads. The chooser takes it on software adapters with 8-wide subgroups when M > 16
// and the packed B fits in 128 MiB.
import { defineKernel, rt } from '../define-kernel';
import { aligned4, type Epilogue, header, mainBindings, type MatmulLaunch, PARAMS, type Storage, UNIFORMS, vecType, withStorage, X } from './common';
import { hasSubgroups8 } from '../../runtime/adapter';

export interface SubgroupTile {
  rows: 8 | 16;
}

const PANEL_COLS = 32; // 8 invocations × 4 columns
/** Rows and columns of C one workgroup computes. */
export const subgroupOutputs = (t: SubgroupTile): [number, number] => [t.rows, PANEL_COLS];

/** The most bytes the packed B may take. */
export const MAX_PACKED_BYTES = 128 * 1024 * 1024;
/** Bytes of the packed B: [nBatch][ceil(N/32)][K rounded up to 4][32] f32. */
export function packedPanelBytes(N: number, K: number, nBatch: number): number {
  return nBatch * Math.ceil(N / PANEL_COLS) * Math.ceil(K / 4) * 4 * PANEL_COLS * 4;
}

/** The B packing: Bp[b][panel][k][32] = B[b][k][panel·32 + j], zero where k ≥ K or column ≥ N.
 *  Any B layout (read through the strides). Workgroup (x, y, z) = (block of PACK_K rows, panel,
 *  batch), one vec4 column group per invocation: no integer division per element (x86 has no
 *  SIMD integer divide, so per-invocation index decoding costs as much as the copy itself). */
const PACK_K = 32;
function packCode(bVec: boolean): string {
  const lines = [
    UNIFORMS,
    bVec ? 'fn ldB(i: u32) -> f32 { return B[i >> 2u][i & 3u]; }' : 'fn ldB(i: u32) -> f32 { return B[i]; }',
  ];
  const load = bVec
    ? '      if (n < p.N) { v = B[(row + n) >> 2u]; }'
    : [0, 1, 2, 3].map((c) => `      if (n + ${c}u < p.N) { v.${X[c]} = ldB(row + (n + ${c}u) * p.sBn); }`).join('\n');
  return `${lines.join('\n')}
@compute @workgroup_size(${PANEL_COLS / 4})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let K4 = (p.K + 3u) & ~3u;
  let panels = (p.N + ${PANEL_COLS - 1}u) / ${PANEL_COLS}u;
  let ob = batch_offsets(wid.z).y;
  let n = wid.y * ${PANEL_COLS}u + lid * 4u;
  let k0 = wid.x * ${PACK_K}u;
  let k1 = min(K4, k0 + ${PACK_K}u);
  var q = ((wid.z * panels + wid.y) * K4 + k0) * ${PANEL_COLS / 4}u + lid;
  for (var k = k0; k < k1; k++) {
    var v = vec4f(0.0);
    if (k < p.K) {
      let row = ob + k * p.sBk;
${load}
    }
    Bp[q] = v;
    q += ${PANEL_COLS / 4}u;
  }
}`;
}

interface Spec extends Epilogue, Storage {
  rows: number;
  /** A row-major, 16-byte aligned rows and K % 4 == 0: one vec4 load per row and 4 k. */
  aVec: boolean;
  cVec: boolean;
  split: boolean;
}

/** Every invocation stays active to the end (no early return): subgroupBroadcast reads other
 *  invocations' values. */
function code(s: Spec): string {
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
  let panels = (p.N + ${PANEL_COLS - 1}u) / ${PANEL_COLS}u;
  let m0 = wid.x * ${R}u;
  let n0 = wid.y * ${PANEL_COLS}u + lane * 4u;
  let kBegin = split * p.kChunk;
  let kEnd = min(K4, kBegin + p.kChunk);
  let cbase = p.offC + wid.z * p.M * p.N;
  var bi = ((batch * panels + wid.y) * K4 + kBegin) * ${PANEL_COLS / 4}u + lane;`);
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
  for (let kk = 0; kk < 4; kk++) L.push(`    let b${kk} = B[bi + ${kk * (PANEL_COLS / 4)}u];`);
  L.push(`    bi += ${PANEL_COLS}u;`);
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

// B is read only by the pack kernel: the main kernel's packed panels are f32 whatever B's storage.
const kernel = defineKernel({ name: 'matmul.subgroup', bindings: mainBindings(true), params: PARAMS, code: (v: Spec) => withStorage(code(v), v, ['A'], v.aVec ? ['A'] : []) });
const packKernel = defineKernel({
  name: 'matmul.subgroup_pack',
  bindings: { B: { type: (v) => (v.h ? (v.bVec ? 'vec4h' : 'f16') : vecType(v.bVec)), access: 'read' }, Bp: { type: 'vec4f', access: 'rw' } },
  params: PARAMS,
  code: (v: { bVec: boolean; h: boolean }) => withStorage(packCode(v.bVec), { h: v.h }, ['B'], v.bVec ? ['B'] : []),
});

/** Packs B into a pooled workspace, runs the kernel on it and returns the workspace to the pool. */
export function dispatchSubgroup(l: MatmulLaunch, t: SubgroupTile): void {
  const { pr, a, b } = l;
  const { M, N, K, nBatch } = pr;
  const R = t.rows;
  if (!hasSubgroups8()) throw new Error('matmul subgroup kernel needs the subgroups feature with subgroups of at least 8 invocations');
  const packedBytes = packedPanelBytes(N, K, nBatch);
  if (packedBytes > MAX_PACKED_BYTES) throw new Error(`matmul subgroup kernel: packed B would take ${packedBytes} bytes (over 128 MiB); use register-tiled`);
  const packed = rt().pool.acquire(packedBytes, GPUBufferUsage.STORAGE, 'matmul.subgroup.packedB');
  const h = !!l.storage.h;
  const bVec = pr.lb.layout === 'row' && N % 4 === 0 && aligned4(b.offset, l.sBk, ...pr.batchStridesB);
  const K4 = Math.ceil(K / 4) * 4;
  if (K4 / PACK_K > 65535) throw new Error(`matmul subgroup kernel: K = ${K} needs over 65,535 pack workgroups; use register-tiled`);
  packKernel.dispatch({ bVec, h }, { B: b.buffer, Bp: packed }, l.params, [Math.ceil(K4 / PACK_K), Math.ceil(N / PANEL_COLS), nBatch]);
  const aVec = pr.la.layout === 'row' && K % 4 === 0 && aligned4(a.offset, l.sAm, ...pr.batchStridesA);
  const [rows, cols] = subgroupOutputs(t);
  const gx = Math.ceil(M / rows);
  const gy = Math.ceil(N / cols);
  if (gx > 65535 || gy > 65535) throw new Error(`matmul: ${M}×${N} output needs ${gx}×${gy} workgroups, over 65,535 per dimension`);
  kernel.dispatch({ rows: R, aVec, cVec: l.cVec, split: l.split, ...l.epi, ...l.storage }, { ...l.buffers, B: packed }, l.params, [gx, gy, l.z]);
  rt().pool.release(packed);
}
