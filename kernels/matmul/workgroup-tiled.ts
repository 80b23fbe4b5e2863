// Workgroup-memory tiles, the classic design for discrete GPUs (tfjs `matmul_packed` style): a
// workgroup of (TILE/4)² invocations computes a TILE×TILE block of C (TILE = 32 or 64), each
// invocation 4×4 outputs in vec4 accumulators, staging TK = 16-deep slices of A and B in workgroup
// memory between barriers. Tile loads map consecutive invocations to consecutive addresses for
// either operand layout (coalescing). The chooser takes it on hardware GPUs.
import { defineKernel } from '../define-kernel';
import { type Epilogue, header, mainBindings, type MatmulLaunch, PARAMS, type Storage, storeBlock, withStorage, X } from './common';
import { type Layout } from './problem';

export interface WorkgroupTiledTile {
  tile: 32 | 64;
}

/** Rows and columns of C one workgroup computes. */
export const workgroupTiledOutputs = (t: WorkgroupTiledTile): [number, number] => [t.tile, t.tile];

interface Spec extends Epilogue, Storage {
  tile: number;
  la: Layout;
  lb: Layout;
  cVec: boolean;
  split: boolean;
}

const TK = 16;

function code(s: Spec): string {
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

const kernel = defineKernel({ name: 'matmul.workgroup_tiled', bindings: mainBindings(false), params: PARAMS, code: (v: Spec) => withStorage(code(v), v) });

export function dispatchWorkgroupTiled(l: MatmulLaunch, t: WorkgroupTiledTile): void {
  const { M, N, la, lb } = l.pr;
  const [rows, cols] = workgroupTiledOutputs(t);
  kernel.dispatch({ tile: t.tile, la: la.layout, lb: lb.layout, cVec: l.cVec, split: l.split, ...l.epi, ...l.storage }, l.buffers, l.params, [Math.ceil(M / rows), Math.ceil(N / cols), l.z]);
}
