// Conv forward as an implicit GEMM, per group g:
//   Y[o, col] = Σ_k W[o, k] · X̂[k, col],  o < O/groups, col = (n, oh, ow) < N·OH·OW,
//   k = (c, kh, kw) < C/groups·KH·KW, X̂[k, col] = x[n, g·Cg + c, oh·sh − ph + kh·dh, ow·sw − pw + kw·dw]
// (zero outside the input). The im2col matrix X̂ is never materialised: its addresses are computed
// inside the loop from per-column state hoisted out of it. The taps (kh, kw) are the outer loop, so
// bounds are checked once per tap and the inner loop over input channels is loads and FMAs only;
// taps that fall in the padding for every column of the tile are skipped. Register tile TM output channels × 4
// output pixels per invocation (tile.ts). 1×1 stride-1 unpadded convs take the plain-GEMM
// specialisation (no bounds checks: X̂ rows are input channel planes). Epilogue: bias, ReLU.
import { type KernelDef, rt } from '../../runtime/runtime';
import { type ConvGeometry, gemmWorkgroupSize, isPointwise, packConvParams, rowsPerThread, WGSL_CONV_PARAMS } from './geometry';
import { accDecl, COMPONENT, COLS, fmaRows, gemmEntry, maskedVec4, perCol, perRow, plainVec4, TN } from './tile';

const cache = new Map<string, KernelDef>();

function forwardGemmDef(tm: number, wg: number, pointwise: boolean, hasBias: boolean, relu: boolean): KernelDef {
  const key = `conv.gemm.fwd:tm${tm}:wg${wg}:${pointwise ? 'pw' : 'gen'}:${hasBias ? 'b' : ''}${relu ? 'r' : ''}`;
  let def = cache.get(key);
  if (def) return def;
  const yBinding = hasBias ? 3 : 2;
  const loop = pointwise
    ? `for (var c = 0; c < p.Cg; c++) {
    let xo = c * HW;
    let b = ${plainVec4('x', 'xb$ + xo')};
    ${fmaRows(tm, 'w[wr@ + c]')}
  }`
    : `let KHW = p.KH * p.KW;
  for (var kh = 0; kh < p.KH; kh++) {
    ${perCol('let ih$ = ih0_$ + kh * p.dh;')}
    ${perCol('let rok$ = ih$ >= 0 && ih$ < p.H;')}
    for (var kw = 0; kw < p.KW; kw++) {
      ${perCol('let iw$ = iw0_$ + kw * p.dw;')}
      ${perCol('let ok$ = rok$ && iw$ >= 0 && iw$ < p.W;')}
      if (${COLS.map((j) => `ok${j}`).join(' || ')}) {
        ${perCol('let xa$ = xb$ + ih$ * p.W + iw$;')}
        let tap = kh * p.KW + kw;
        for (var c = 0; c < p.Cg; c++) {
          let xo = c * HW;
          let b = ${maskedVec4('x', 'xa$ + xo', 'ok$')};
          ${fmaRows(tm, 'w[wr@ + c * KHW + tap]')}
        }
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
@group(0) @binding(1) var<storage, read> w: array<f32>;
${hasBias ? '@group(0) @binding(2) var<storage, read> bias: array<f32>;' : ''}
@group(0) @binding(${yBinding}) var<storage, read_write> y: array<f32>;
${WGSL_CONV_PARAMS}
@group(0) @binding(${yBinding + 1}) var<uniform> p: P;
${gemmEntry(wg, tm, 'p.groups')}
  let g = z;
  let HW = p.H * p.W;
  let OHW = p.OH * p.OW;
  let NP = p.N * OHW;
  let K = p.Cg * p.KH * p.KW;
  ${perCol('let q$ = min(c0 + $, NP - 1);')}
  ${perCol('let n$ = q$ / OHW;')}
  ${perCol('let pix$ = q$ - n$ * OHW;')}
  ${perCol(pointwise ? 'let xb$ = i32(p.x_off) + (n$ * p.C + g * p.Cg) * HW + pix$;' : 'let xb$ = i32(p.x_off) + (n$ * p.C + g * p.Cg) * HW;')}
  ${pointwise ? '' : perCol('let ih0_$ = (pix$ / p.OW) * p.sh - p.ph;')}
  ${pointwise ? '' : perCol('let iw0_$ = (pix$ % p.OW) * p.sw - p.pw;')}
  ${perRow(tm, 'let wr@ = i32(p.w_off) + (g * p.Og + min(m0 + @, p.Og - 1)) * K;')}
  ${accDecl(tm)}
  ${loop}
  ${Array.from({ length: tm }, (_, i) => store(i)).join('\n  ')}
}`;
  def = { key, code, bindings: hasBias ? ['read', 'read', 'read', 'rw'] : ['read', 'read', 'rw'], uniform: true };
  cache.set(key, def);
  return def;
}

/** y = conv(x, w) (+ bias) (then ReLU) as an implicit GEMM. Same contract as convForwardDirect. */
export function convForwardGemm(
  g: ConvGeometry,
  x: GPUBuffer, xOff: number, w: GPUBuffer, wOff: number,
  bias: { buffer: GPUBuffer; offset: number } | null, relu: boolean,
  y: GPUBuffer, yOff: number,
): void {
  const og = g.O / g.groups;
  const tm = rowsPerThread(og);
  const wg = gemmWorkgroupSize();
  const colTiles = Math.ceil((g.N * g.OH * g.OW) / (TN * wg));
  const rowTiles = Math.ceil(og / tm);
  const def = forwardGemmDef(tm, wg, isPointwise(g), !!bias, relu);
  const params = packConvParams(g, { x: xOff, w: wOff, y: yOff, b: bias?.offset ?? 0 }, [colTiles, rowTiles]);
  rt().dispatch(def, bias ? [x, w, bias.buffer, y] : [x, w, y], params, colTiles * rowTiles * g.groups);
}
