// Conv grad weight (wgrad) as an implicit GEMM, per group g:
//   dW[o, col] = Σ_(n, oh, ow) dy[n, o, oh, ow] · X̂[col, (n, oh, ow)],  col = (c, kh, kw) < Cg·KH·KW,
//   X̂[col, (n, oh, ow)] = x[n, g·Cg + c, oh·sh − ph + kh·dh, ow·sw − pw + kw·dw] (zero outside).
// The output (O × Cg·KH·KW) is small and the reduction (N·OH·OW) huge, so the reduction is split
// into S chunks of output rows (n, oh): pass 1 writes S partial products, pass 2 sums them in a
// fixed order (deterministic, no atomics). With S = 1 pass 1 writes dW directly.
import { type KernelDef, rt } from '../../runtime/runtime';
import { type ConvGeometry, gemmWorkgroupSize, isPointwise, packConvParams, rowsPerThread, WGSL_CONV_PARAMS } from './geometry';
import { accDecl, COMPONENT, COLS, fmaRows, gemmEntry, maskedVec4, perCol, perRow, plainVec4, TN } from './tile';

const cache = new Map<string, KernelDef>();

function wgradGemmDef(tm: number, wg: number, pointwise: boolean): KernelDef {
  const key = `conv.gemm.wgrad:tm${tm}:wg${wg}:${pointwise ? 'pw' : 'gen'}`;
  let def = cache.get(key);
  if (def) return def;
  const inner = pointwise
    ? `for (var ow = 0; ow < p.OW; ow++) {
        let b = ${plainVec4('x', 'rb$ + ow')};
        ${fmaRows(tm, 'dy[yr@ + ow]')}
      }`
    : `for (var ow = 0; ow < p.OW; ow++) {
        ${perCol('let iw$ = ow * p.sw + iwoff$;')}
        ${perCol('let ok$ = rok$ && iw$ >= 0 && iw$ < p.W;')}
        let b = ${maskedVec4('x', 'rb$ + iw$', 'ok$')};
        ${fmaRows(tm, 'dy[yr@ + ow]')}
      }`;
  const store = (i: number) => `{
    let m = m0 + ${i};
    if (m < p.Og) {
      let o = g * p.Og + m;
      ${COLS.map((j) => `if (c0 + ${j} < KK) { out[p.e4 + (s * p.O + o) * KK + c0 + ${j}] = acc${i}.${COMPONENT[j]}; }`).join('\n      ')}
    }
  }`;
  const code = /* wgsl */ `
@group(0) @binding(0) var<storage, read> dy: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
${WGSL_CONV_PARAMS}
@group(0) @binding(3) var<uniform> p: P;
${gemmEntry(wg, tm, 'p.groups * p.e2')}
  let g = z / p.e2;
  let s = z % p.e2;
  let HW = p.H * p.W;
  let OHW = p.OH * p.OW;
  let KHW = p.KH * p.KW;
  let KK = p.Cg * KHW;
  let row_start = s * p.e3;
  let row_end = min(row_start + p.e3, p.N * p.OH);
  ${perCol('let q$ = min(c0 + $, KK - 1);')}
  ${perCol('let ch$ = q$ / KHW;')}
  ${perCol('let xc$ = i32(p.x_off) + (g * p.Cg + ch$) * HW;')}
  ${pointwise ? '' : perCol('let tap$ = q$ - ch$ * KHW;')}
  ${pointwise ? '' : perCol('let ihoff$ = (tap$ / p.KW) * p.dh - p.ph;')}
  ${pointwise ? '' : perCol('let iwoff$ = (tap$ % p.KW) * p.dw - p.pw;')}
  ${perRow(tm, 'let o@ = g * p.Og + min(m0 + @, p.Og - 1);')}
  ${accDecl(tm)}
  for (var r = row_start; r < row_end; r++) {
    let n = r / p.OH;
    let oh = r - n * p.OH;
    let xn = n * p.C * HW;
    ${pointwise ? perCol('let rb$ = xc$ + xn + oh * p.W;') : perCol('let ih$ = oh * p.sh + ihoff$;')}
    ${pointwise ? '' : perCol('let rok$ = ih$ >= 0 && ih$ < p.H;')}
    ${pointwise ? '' : perCol('let rb$ = xc$ + xn + ih$ * p.W;')}
    ${perRow(tm, 'let yr@ = i32(p.y_off) + (n * p.O + o@) * OHW + oh * p.OW;')}
    ${inner}
  }
  ${Array.from({ length: tm }, (_, i) => store(i)).join('\n  ')}
}`;
  def = { key, code, bindings: ['read', 'read', 'rw'], uniform: true };
  cache.set(key, def);
  return def;
}

const REDUCE_WG = 64;
const reduceDef: KernelDef = {
  key: 'conv.wgrad.splitk_reduce',
  bindings: ['read', 'rw'],
  uniform: true,
  code: /* wgsl */ `
@group(0) @binding(0) var<storage, read> partial: array<f32>;
@group(0) @binding(1) var<storage, read_write> dw: array<f32>;
struct R { count: u32, splits: u32, dw_off: u32, _p: u32 }
@group(0) @binding(2) var<uniform> p: R;
@compute @workgroup_size(${REDUCE_WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * ${REDUCE_WG}u + lid;
  if (i >= p.count) { return; }
  var acc = 0.0;
  for (var s = 0u; s < p.splits; s++) { acc += partial[s * p.count + i]; }
  dw[p.dw_off + i] = acc;
}`,
};

/** Workgroups we aim for: enough to keep every core (or SM) busy. */
const TARGET_WORKGROUPS = 256;
/** Keep at least this many reduction steps per chunk, so a split is worth its partial. */
const MIN_STEPS_PER_CHUNK = 64;

/** Split count and output rows per chunk for a wgrad of this geometry. */
export function wgradSplit(g: ConvGeometry, tiles: number): { splits: number; rowsPerChunk: number } {
  const rows = g.N * g.OH;
  const maxSplits = Math.max(1, Math.floor((rows * g.OW) / MIN_STEPS_PER_CHUNK));
  const want = Math.min(rows, maxSplits, Math.max(1, Math.ceil(TARGET_WORKGROUPS / tiles)));
  const rowsPerChunk = Math.ceil(rows / want);
  return { splits: Math.ceil(rows / rowsPerChunk), rowsPerChunk };
}

/** dw[O, C/groups, KH, KW] from dy and x as a split-K implicit GEMM. Same contract as convWgradDirect. */
export function convWgradGemm(g: ConvGeometry, dy: GPUBuffer, dyOff: number, x: GPUBuffer, xOff: number, dw: GPUBuffer, dwOff: number, forceSplits?: number): void {
  const og = g.O / g.groups;
  const kk = (g.C / g.groups) * g.KH * g.KW;
  const tm = rowsPerThread(og);
  const wg = gemmWorkgroupSize();
  const colTiles = Math.ceil(kk / (TN * wg));
  const rowTiles = Math.ceil(og / tm);
  const tiles = colTiles * rowTiles * g.groups;
  let { splits, rowsPerChunk } = wgradSplit(g, tiles);
  if (forceSplits) {
    rowsPerChunk = Math.ceil((g.N * g.OH) / forceSplits);
    splits = Math.ceil((g.N * g.OH) / rowsPerChunk);
  }
  const def = wgradGemmDef(tm, wg, isPointwise(g));
  const count = g.O * kk;
  if (splits === 1) {
    const params = packConvParams(g, { x: xOff, y: dyOff }, [colTiles, rowTiles, 1, rowsPerChunk, dwOff]);
    rt().dispatch(def, [dy, x, dw], params, tiles);
    return;
  }
  const partial = rt().pool.acquire(splits * count * 4, GPUBufferUsage.STORAGE, 'conv.wgrad.partial');
  const params = packConvParams(g, { x: xOff, y: dyOff }, [colTiles, rowTiles, splits, rowsPerChunk, 0]);
  rt().dispatch(def, [dy, x, partial], params, tiles * splits);
  reduceSplits(partial, splits, count, dw, dwOff);
  rt().pool.release(partial);
}

/** dw[i] = Σ_s partial[s·count + i] in a fixed order (deterministic split-K reduction). */
export function reduceSplits(partial: GPUBuffer, splits: number, count: number, dw: GPUBuffer, dwOff: number): void {
  const groupsOfWg = Math.ceil(count / REDUCE_WG);
  const gx = Math.min(groupsOfWg, 65535);
  const rp = new Uint32Array([count, splits, dwOff, 0]);
  rt().dispatch(reduceDef, [partial, dw], rp, [gx, Math.ceil(groupsOfWg / gx)]);
}
