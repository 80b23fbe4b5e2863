// scalar-gemm: conv forward as an implicit GEMM whose row operand (the weight) is read as TM
// scalars per step straight from w as stored (no pack pass). Per group g:
//   Y[o, col] = Σ_k W[o, k] · X̂[k, col],  o < O/groups, col = (n, oh, ow) < N·OH·OW,
//   k = (c, kh, kw) < C/groups·KH·KW, X̂[k, col] = x[n, g·Cg + c, oh·sh − ph + kh·dh, ow·sw − pw + kw·dw]
// (zero outside the input). The im2col matrix X̂ is never materialised: its addresses are computed
// inside the loop from per-column state hoisted out of it. The taps (kh, kw) are the outer loop, so
// bounds are checked once per tap and the inner loop over input channels is loads and FMAs only;
// taps that fall in the padding for every column of the tile are skipped. Register tile: TM
// output channels × 4 output pixels per invocation (register-tile.ts); every invocation of a
// workgroup reads the same weights. 1×1 stride-1 unpadded convs take the plain-GEMM
// specialisation (no bounds checks: X̂ rows are input channel planes). Epilogue: bias, ReLU.
// The chooser takes it for deep 3×3 forwards on mid-sized maps on hardware GPUs; its dgrad and
// wgrad, which no adapter chooses, are in dev/conv/.
import { defineKernel, read, rw } from '../define-kernel';
import { CONV_PARAMS, type ConvGeometry, convParams, gemmWorkgroupSize, isPointwise, rowsPerThread } from './geometry';
import { accDecl, COMPONENT, COLS, fmaRows, gemmEntry, maskedVec4, perCol, perRow, plainVec4, TN, type ForwardTileVariant } from './register-tile';

const forwardGemmKernel = defineKernel({
  name: 'conv.scalar-gemm.fwd',
  bindings: { x: read('f32'), w: read('f32'), bias: { ...read('f32'), when: (v) => v.hasBias }, y: rw('f32') },
  params: CONV_PARAMS,
  code: forwardGemmCode,
});

function forwardGemmCode({ tm, wg, pointwise, hasBias, relu }: ForwardTileVariant): string {
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
  return /* wgsl */ `
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
}

/** y = conv(x, w) (+ bias) (then ReLU) as an implicit GEMM. Same contract as convForwardDirect. */
export function convForwardScalarGemm(
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
  const params = convParams(g, { x: xOff, w: wOff, y: yOff, b: bias?.offset ?? 0 }, [colTiles, rowTiles]);
  forwardGemmKernel.dispatch({ tm, wg, pointwise: isPointwise(g), hasBias: !!bias, relu }, { x, w, bias: bias?.buffer, y }, params, colTiles * rowTiles * g.groups);
}
