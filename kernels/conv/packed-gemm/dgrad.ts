// packed-gemm dgrad: the gather-form implicit GEMM for the input gradient, with the weight packed
// as P[g, tap, o, c] (pack.ts) so the TM input channels an invocation owns load as TM/4 vec4 per
// (tap, o), and an unmasked channel loop when all 4 columns use the tap. Columns are ordered by
// stride phase, (n, ih, phase, t) with iw = phase + t·sw, so the columns of a tile share iw mod sw
// and a tap either fits all of them or none: taps no column can use skip the channel loop. For
// stride 1 this is exactly a stride-1 conv of dy with the flipped, transposed weight, so no
// separate kernel is needed for that case. Gather form: deterministic, no atomics.
//   dx[c, (n, ih, iw)] = Σ_(tap, o) W[o, c, tap] · dy[n, o, (ih + ph − kh·dh)/sh, (iw + pw − kw·dw)/sw]
import { defineKernel, read, rt, rw } from '../../define-kernel';
import { CONV_PARAMS, type ConvGeometry, convParams, gemmWorkgroupSize, isPointwise } from '../geometry';
import { packedGemmRows, packWeightDgrad, paddedRows } from './pack';
import { accDecl, COMPONENT, COLS, fmaRowsVec4, gemmEntry, loadRowsVec4, maskedVec4, perCol, plainVec4, TN, type GemmTileVariant } from '../register-tile';

const dgradKernel = defineKernel({
  name: 'conv.packed-gemm.dgrad',
  bindings: { dy: read('f32'), wp: read('vec4f'), dx: rw('f32') },
  params: CONV_PARAMS,
  code: dgradCode,
});

function dgradCode({ tm, wg, pointwise }: GemmTileVariant): string {
  const outLoop = (b: string) => `for (var og = 0; og < p.Og; og++) {
          let b = ${b};
          ${loadRowsVec4(tm, 'wp', 'wt + og * RP4')}
          ${fmaRowsVec4(tm)}
        }`;
  const loop = pointwise
    ? `let wt = g * p.Og * RP4 + m0 / 4;
  for (var og = 0; og < p.Og; og++) {
    let yo = og * OHW;
    let b = ${plainVec4('dy', 'yb$ + yo')};
    ${loadRowsVec4(tm, 'wp', 'wt + og * RP4')}
    ${fmaRowsVec4(tm)}
  }`
    : `for (var kh = 0; kh < p.KH; kh++) {
    ${perCol('let th$ = ih$ + p.ph - kh * p.dh;')}
    ${perCol('let rok$ = valid$ && th$ >= 0 && th$ % p.sh == 0 && th$ / p.sh < p.OH;')}
    for (var kw = 0; kw < p.KW; kw++) {
      ${perCol('let tw$ = iw$ + p.pw - kw * p.dw;')}
      ${perCol('let ok$ = rok$ && tw$ >= 0 && tw$ % p.sw == 0 && tw$ / p.sw < p.OW;')}
      let wt = ((g * KHW + kh * p.KW + kw) * p.Og) * RP4 + m0 / 4;
      if (${COLS.map((j) => `ok${j}`).join(' && ')}) {
        ${perCol('let ya$ = yb$ + (th$ / p.sh) * p.OW + tw$ / p.sw;')}
        ${outLoop(plainVec4('dy', 'ya$ + og * OHW'))}
      } else if (${COLS.map((j) => `ok${j}`).join(' || ')}) {
        ${perCol('let ya$ = yb$ + (max(th$, 0) / p.sh) * p.OW + max(tw$, 0) / p.sw;')}
        ${outLoop(maskedVec4('dy', 'ya$ + og * OHW', 'ok$'))}
      }
    }
  }`;
  const store = (i: number) => `{
    let c = m0 + ${i};
    if (c < p.Cg) {
      ${COLS.map((j) => `if (valid${j}) { dx[i32(p.x_off) + (n${j} * p.C + g * p.Cg + c) * HW + pix${j}] = acc${i}.${COMPONENT[j]}; }`).join('\n      ')}
    }
  }`;
  return /* wgsl */ `
${gemmEntry(wg, tm, 'p.groups')}
  let g = z;
  let HW = p.H * p.W;
  let OHW = p.OH * p.OW;
  let KHW = p.KH * p.KW;
  let RP4 = p.e2;
  // Columns (n, ih, phase, t), iw = phase + t·sw; Wq = ceil(W / sw) columns per phase.
  let Wq = (p.W + p.sw - 1) / p.sw;
  let row_cols = p.sw * Wq;
  let NQ = p.N * p.H * row_cols;
  ${perCol('let q$ = min(c0 + $, NQ - 1);')}
  ${perCol('let n$ = q$ / (p.H * row_cols);')}
  ${perCol('let r$ = q$ - n$ * p.H * row_cols;')}
  ${perCol('let ih$ = r$ / row_cols;')}
  ${perCol('let iw$ = (r$ % row_cols) / Wq + ((r$ % row_cols) % Wq) * p.sw;')}
  ${perCol('let valid$ = c0 + $ < NQ && iw$ < p.W;')}
  ${perCol('let pix$ = ih$ * p.W + min(iw$, p.W - 1);')}
  ${perCol(pointwise ? 'let yb$ = i32(p.y_off) + (n$ * p.O + g * p.Og) * OHW + pix$;' : 'let yb$ = i32(p.y_off) + (n$ * p.O + g * p.Og) * OHW;')}
  ${accDecl(tm)}
  ${loop}
  ${Array.from({ length: tm }, (_, i) => store(i)).join('\n  ')}
}`;
}

/** dx[N, C, H, W] from dy and w with packed weights. Same contract as convDgradDirect. */
export function convDgradPackedGemm(g: ConvGeometry, dy: GPUBuffer, dyOff: number, w: GPUBuffer, wOff: number, dx: GPUBuffer, dxOff: number): void {
  const cg = g.C / g.groups;
  const tm = packedGemmRows(cg);
  const rp = paddedRows(cg, tm);
  const wg = gemmWorkgroupSize();
  const colTiles = Math.ceil((g.N * g.H * g.strideW * Math.ceil(g.W / g.strideW)) / (TN * wg));
  const rowTiles = rp / tm;
  const wp = packWeightDgrad(g, w, wOff, rp);
  const params = convParams(g, { x: dxOff, y: dyOff }, [colTiles, rowTiles, rp / 4]);
  dgradKernel.dispatch({ tm, wg, pointwise: isPointwise(g) }, { dy, wp, dx }, params, colTiles * rowTiles * g.groups);
  rt().pool.release(wp);
}
