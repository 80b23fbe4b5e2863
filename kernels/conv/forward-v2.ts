// Conv forward, variant 2: the implicit GEMM of implicit-gemm.ts (variant 1, kept as is) with the
// weight packed so that the TM output channels an invocation owns are adjacent and vec4-aligned
// (pack.ts: P[g, tap, c, o]). Per input channel an invocation then loads TM/4 vec4 of weights
// instead of TM scalars, plus 4 input values, for 4·TM FMAs: on lavapipe, where each load costs
// about the same whatever its width, that is what bounds throughput (perf-anchors §5). TM = 16
// where the layer has ≥ 16 output channels per group. Per tap, when all 4 columns of the
// invocation are inside the input (the interior, nearly always), the channel loop runs without
// masks. Same math and column order as variant 1:
//   Y[o, col] = Σ_(tap, c) W[o, c, tap] · x[n, g·Cg + c, oh·sh − ph + kh·dh, ow·sw − pw + kw·dw].
import { type KernelDef, rt } from '../../runtime/runtime';
import { type ConvGeometry, gemmWorkgroupSize, isPointwise, packConvParams, WGSL_CONV_PARAMS } from './geometry';
import { packWeightForward, paddedRows } from './pack';
import { accDecl, COMPONENT, COLS, fmaRowsVec4, gemmEntry, loadRowsVec4, maskedVec4, perCol, plainVec4, TN } from './tile';

const cache = new Map<string, KernelDef>();

let rowsOverride: number | undefined;
/** Force TM (4, 8 or 16) for tuning and tests. */
export function overrideV2Rows(tm: number | undefined): void {
  rowsOverride = tm;
}

/** Rows per invocation for a v2 GEMM with `m` rows: a multiple of 4 (vec4-packed), at most 16. */
export function v2Rows(m: number): number {
  if (rowsOverride !== undefined) return rowsOverride;
  return m >= 16 ? 16 : m > 4 ? 8 : 4;
}

function forwardV2Def(tm: number, wg: number, pointwise: boolean, hasBias: boolean, relu: boolean): KernelDef {
  const key = `conv.gemm2.fwd:tm${tm}:wg${wg}:${pointwise ? 'pw' : 'gen'}:${hasBias ? 'b' : ''}${relu ? 'r' : ''}`;
  let def = cache.get(key);
  if (def) return def;
  const yBinding = hasBias ? 3 : 2;
  const channelLoop = (b: string) => `for (var c = 0; c < p.Cg; c++) {
          let b = ${b};
          ${loadRowsVec4(tm, 'wp', 'wt + c * RP4')}
          ${fmaRowsVec4(tm)}
        }`;
  const loop = pointwise
    ? `let wt = g * p.Cg * RP4 + m0 / 4;
  for (var c = 0; c < p.Cg; c++) {
    let xo = c * HW;
    let b = ${plainVec4('x', 'xb$ + xo')};
    ${loadRowsVec4(tm, 'wp', 'wt + c * RP4')}
    ${fmaRowsVec4(tm)}
  }`
    : `let KHW = p.KH * p.KW;
  for (var kh = 0; kh < p.KH; kh++) {
    ${perCol('let ih$ = ih0_$ + kh * p.dh;')}
    ${perCol('let rok$ = ih$ >= 0 && ih$ < p.H;')}
    for (var kw = 0; kw < p.KW; kw++) {
      ${perCol('let iw$ = iw0_$ + kw * p.dw;')}
      ${perCol('let ok$ = rok$ && iw$ >= 0 && iw$ < p.W;')}
      let wt = ((g * KHW + kh * p.KW + kw) * p.Cg) * RP4 + m0 / 4;
      if (${COLS.map((j) => `ok${j}`).join(' && ')}) {
        ${perCol('let xa$ = xb$ + ih$ * p.W + iw$;')}
        ${channelLoop(plainVec4('x', 'xa$ + c * HW'))}
      } else if (${COLS.map((j) => `ok${j}`).join(' || ')}) {
        ${perCol('let xa$ = xb$ + ih$ * p.W + iw$;')}
        ${channelLoop(maskedVec4('x', 'xa$ + c * HW', 'ok$'))}
      }
    }
  }`;
  const store = (i: number) => `{
    let m = m0 + ${i};
    if (m < p.Og) {
      let o = g * p.Og + m;
      ${hasBias ? 'let bv = bias[p.b_off + u32(o)];' : 'let bv = 0.0;'}
      ${COLS.map((j) => `if (c0 + ${j} < NP) { y[i32(p.y_off) + (n${j} * p.O + o) * OHW + pix${j}] = ${relu ? `max(acc${i}.${COMPONENT[j]} + bv, 0.0)` : `acc${i}.${COMPONENT[j]} + bv`}; }`).join('\n      ')}
    }
  }`;
  const code = /* wgsl */ `
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> wp: array<vec4f>;
${hasBias ? '@group(0) @binding(2) var<storage, read> bias: array<f32>;' : ''}
@group(0) @binding(${yBinding}) var<storage, read_write> y: array<f32>;
${WGSL_CONV_PARAMS}
@group(0) @binding(${yBinding + 1}) var<uniform> p: P;
${gemmEntry(wg, tm, 'p.groups')}
  let g = z;
  let HW = p.H * p.W;
  let OHW = p.OH * p.OW;
  let NP = p.N * OHW;
  let RP4 = p.e2;
  ${perCol('let q$ = min(c0 + $, NP - 1);')}
  ${perCol('let n$ = q$ / OHW;')}
  ${perCol('let pix$ = q$ - n$ * OHW;')}
  ${perCol(pointwise ? 'let xb$ = i32(p.x_off) + (n$ * p.C + g * p.Cg) * HW + pix$;' : 'let xb$ = i32(p.x_off) + (n$ * p.C + g * p.Cg) * HW;')}
  ${pointwise ? '' : perCol('let ih0_$ = (pix$ / p.OW) * p.sh - p.ph;')}
  ${pointwise ? '' : perCol('let iw0_$ = (pix$ % p.OW) * p.sw - p.pw;')}
  ${accDecl(tm)}
  ${loop}
  ${Array.from({ length: tm }, (_, i) => store(i)).join('\n  ')}
}`;
  def = { key, code, bindings: hasBias ? ['read', 'read', 'read', 'rw'] : ['read', 'read', 'rw'], uniform: true };
  cache.set(key, def);
  return def;
}

/** y = conv(x, w) (+ bias) (then ReLU), variant 2 (packed weights). Same contract as convForwardDirect. */
export function convForwardGemmV2(
  g: ConvGeometry,
  x: GPUBuffer, xOff: number, w: GPUBuffer, wOff: number,
  bias: { buffer: GPUBuffer; offset: number } | null, relu: boolean,
  y: GPUBuffer, yOff: number,
): void {
  const og = g.O / g.groups;
  const tm = v2Rows(og);
  const rp = paddedRows(og, tm);
  const wg = gemmWorkgroupSize();
  const colTiles = Math.ceil((g.N * g.OH * g.OW) / (TN * wg));
  const rowTiles = rp / tm;
  const wp = packWeightForward(g, w, wOff, rp);
  const def = forwardV2Def(tm, wg, isPointwise(g), !!bias, relu);
  const params = packConvParams(g, { x: xOff, y: yOff, b: bias?.offset ?? 0 }, [colTiles, rowTiles, rp / 4]);
  rt().dispatch(def, bias ? [x, wp, bias.buffer, y] : [x, wp, y], params, colTiles * rowTiles * g.groups);
  rt().pool.release(wp);
}
