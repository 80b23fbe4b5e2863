// Register tiles without workgroup memory or barriers, made for CPU rasterizers (lavapipe): a
// workgroup of WG invocations (one 8-lane SIMD vector on lavapipe) computes ROWS rows × 4·WG
// columns, each invocation ROWS×4 outputs in vec4 accumulators, with vec4 loads where the layout
// and alignment allow. On CPU rasterizers every storage load is scalarized per lane and workgroup
// memory costs as much as a global load, so the only lever is FLOPs per load. The chooser takes it
// on software adapters where the subgroup kernel does not apply.
import { defineKernel } from '../define-kernel';
import { aligned4, type Epilogue, header, mainBindings, type MatmulLaunch, PARAMS, type Storage, storeBlock, withStorage, X } from './common';
import { type Layout } from './problem';

export interface RegisterTiledTile {
  rows: 4 | 8;
  wg: 8 | 16;
}

/** Rows and columns of C one workgroup computes. */
export const registerTiledOutputs = (t: RegisterTiledTile): [number, number] => [t.rows, 4 * t.wg];

interface Spec extends Epilogue, Storage {
  rows: number;
  wg: number;
  la: Layout;
  lb: Layout;
  aVec: boolean;
  bVec: boolean;
  cVec: boolean;
  split: boolean;
}

function code(s: Spec): string {
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

const kernel = defineKernel({ name: 'matmul.register_tiled', bindings: mainBindings(false), params: PARAMS, code: (v: Spec) => withStorage(code(v), v, ['A', 'B'], [...(v.aVec ? ['A'] : []), ...(v.bVec ? ['B'] : [])]) });

export function dispatchRegisterTiled(l: MatmulLaunch, t: RegisterTiledTile): void {
  const { pr, a, b } = l;
  const { M, N } = pr;
  const R = t.rows;
  const batchA = pr.batchStridesA;
  const batchB = pr.batchStridesB;
  // vec4 loads need every address of the vector aligned: unit-stride direction long enough,
  // leading dim, offsets and batch strides multiples of 4 (f16 operands: vec4h loads, widened).
  const aVec =
    pr.la.layout === 'row'
      ? aligned4(a.offset, l.sAm, ...batchA)
      : R % 4 === 0 && M % 4 === 0 && aligned4(a.offset, l.sAk, ...batchA);
  const bVec =
    pr.lb.layout === 'row' ? N % 4 === 0 && aligned4(b.offset, l.sBk, ...batchB) : aligned4(b.offset, l.sBn, ...batchB);
  const [rows, cols] = registerTiledOutputs(t);
  const gx = Math.ceil(M / rows);
  const gy = Math.ceil(N / cols);
  if (gx > 65535 || gy > 65535) throw new Error(`matmul: ${M}×${N} output needs ${gx}×${gy} workgroups, over 65,535 per dimension`);
  kernel.dispatch({ rows: R, wg: t.wg, la: pr.la.layout, lb: pr.lb.layout, aVec, bVec, cVec: l.cVec, split: l.split, ...l.epi, ...l.storage }, l.buffers, l.params, [gx, gy, l.z]);
}
