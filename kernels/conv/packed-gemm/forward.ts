// packed-gemm forward: the implicit GEMM of scalar-gemm.ts with the weight packed so that the TM
// output channels an invocation owns are adjacent and vec4-aligned (pack.ts: P[g, tap, c, o]).
// Per input channel an invocation then loads TM/4 vec4 of weights instead of TM scalars, plus 4
// input values, for 4·TM FMAs: on lavapipe, where every storage load is scalarised per lane and
// costs about the same whatever its width, loads per FMA bound throughput. TM = 16 where the layer
// has ≥ 16 output channels per group. Per tap, when all 4 columns of the invocation are inside the
// input (the interior, nearly always), the channel loop runs without masks. Same math and column
// order as scalar-gemm:
//   Y[o, col] = Σ_(tap, c) W[o, c, tap] · x[n, g·Cg + c, oh·sh − ph + kh·dh, ow·sw − pw + kw·dw].
import { defineKernel, read, rt, rw } from '../../define-kernel';
import { CONV_PARAMS, type ConvGeometry, convParams, gemmWorkgroupSize, isPointwise } from '../geometry';
import { packedGemmRows, packWeightForward, paddedRows } from './pack';
import { accDecl, COMPONENT, COLS, fmaRowsVec4, gemmEntry, loadRowsVec4, maskedVec4, perCol, plainVec4, TN, type ForwardTileVariant } from '../register-tile';

const forwardKernel = defineKernel({
  name: 'conv.packed-gemm.fwd',
  bindings: { x: read('f32'), wp: read('vec4f'), bias: { ...read('f32'), when: (v) => v.hasBias }, y: rw('f32') },
  params: CONV_PARAMS,
  code: forwardCode,
});

function forwardCode({ tm, wg, pointwise, hasBias, relu }: ForwardTileVariant): string {
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
  return /* wgsl */ `
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
}

/** y = conv(x, w) (+ bias) (then ReLU) with packed weights. Same contract as convForwardDirect. */
export function convForwardPackedGemm(
  g: ConvGeometry,
  x: GPUBuffer, xOff: number, w: GPUBuffer, wOff: number,
  bias: { buffer: GPUBuffer; offset: number } | null, relu: boolean,
  y: GPUBuffer, yOff: number,
): void {
  const og = g.O / g.groups;
  const tm = packedGemmRows(og);
  const rp = paddedRows(og, tm);
  const wg = gemmWorkgroupSize();
  const colTiles = Math.ceil((g.N * g.OH * g.OW) / (TN * wg));
  const rowTiles = rp / tm;
  const wp = packWeightForward(g, w, wOff, rp);
  const params = convParams(g, { x: xOff, y: yOff, b: bias?.offset ?? 0 }, [colTiles, rowTiles, rp / 4]);
  forwardKernel.dispatch({ tm, wg, pointwise: isPointwise(g), hasBias: !!bias, relu }, { x, wp, bias: bias?.buffer, y }, params, colTiles * rowTiles * g.groups);
  rt().pool.release(wp);
}
