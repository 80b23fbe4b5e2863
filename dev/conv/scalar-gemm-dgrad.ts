// Superseded: the scalar-gemm dgrad (no adapter chooses it; packed-gemm's dgrad took its place).
// Kept for A/B experiments: see dev/README.md. Same contract as convDgradDirect.
//
// Conv grad input (dgrad) as an implicit GEMM, per group g:
//   dx[c, col] = Σ_(o, kh, kw) W[o, c, kh, kw] · dy[n, o, oh, ow],  col = (n, ih, iw) < N·H·W,
// where (oh, ow) is the output that tap (kh, kw) maps onto input pixel (ih, iw):
//   oh = (ih + ph − kh·dh) / sh when that divides exactly and lands inside [0, OH) (same for w).
// Gather form, so it is deterministic and needs no atomics. Register tile: TM input channels × 4
// input pixels. The (kh, kw) loop is outermost so each column's output address is computed once
// per tap. With stride sw > 1 the columns are ordered (n, ih, phase, t) with iw = phase + t·sw, so
// the columns of a tile share iw mod sw and a tap either fits all of them or none: taps no column
// can use skip the channel loop (this recovers the sw-fold waste of the gather form). 1×1
// stride-1 unpadded convs take the plain-GEMM specialisation (dx = Wᵀ · dy per image).
import { defineKernel, read, rw } from '../../kernels/define-kernel';
import { CONV_PARAMS, type ConvGeometry, convParams, gemmWorkgroupSize, isPointwise, rowsPerThread } from '../../kernels/conv/geometry';
import { accDecl, COMPONENT, COLS, fmaRows, gemmEntry, maskedVec4, perCol, perRow, plainVec4, TN, type GemmTileVariant } from '../../kernels/conv/register-tile';

const dgradGemmKernel = defineKernel({
  name: 'dev.conv.scalar-gemm.dgrad',
  bindings: { dy: read('f32'), w: read('f32'), dx: rw('f32') },
  params: CONV_PARAMS,
  code: dgradGemmCode,
});

function dgradGemmCode({ tm, wg, pointwise }: GemmTileVariant): string {
  // W[o, c, kh, kw] for o = g·Og + og: wr@ points at (g·Og, c, 0, 0); o steps by Cg·KH·KW.
  const loop = pointwise
    ? `for (var og = 0; og < p.Og; og++) {
    let yo = og * OHW;
    let b = ${plainVec4('dy', 'yb$ + yo')};
    ${fmaRows(tm, 'w[wr@ + og * KK]')}
  }`
    : `for (var kh = 0; kh < p.KH; kh++) {
    ${perCol('let th$ = ih$ + p.ph - kh * p.dh;')}
    ${perCol('let rok$ = valid$ && th$ >= 0 && th$ % p.sh == 0 && th$ / p.sh < p.OH;')}
    for (var kw = 0; kw < p.KW; kw++) {
      ${perCol('let tw$ = iw$ + p.pw - kw * p.dw;')}
      ${perCol('let ok$ = rok$ && tw$ >= 0 && tw$ % p.sw == 0 && tw$ / p.sw < p.OW;')}
      if (${COLS.map((j) => `ok${j}`).join(' || ')}) {
        ${perCol('let ya$ = yb$ + (th$ / p.sh) * p.OW + tw$ / p.sw;')}
        let tap = kh * p.KW + kw;
        for (var og = 0; og < p.Og; og++) {
          let yo = og * OHW;
          let b = ${maskedVec4('dy', 'ya$ + yo', 'ok$')};
          ${fmaRows(tm, 'w[wr@ + og * KK + tap]')}
        }
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
  let KK = p.Cg * KHW;
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
  ${perRow(tm, 'let wr@ = i32(p.w_off) + (g * p.Og * p.Cg + min(m0 + @, p.Cg - 1)) * KHW;')}
  ${accDecl(tm)}
  ${loop}
  ${Array.from({ length: tm }, (_, i) => store(i)).join('\n  ')}
}`;
}

/** dx[N, C, H, W] from dy[N, O, OH, OW] and w as an implicit GEMM. Same contract as convDgradDirect. */
export function convDgradScalarGemm(g: ConvGeometry, dy: GPUBuffer, dyOff: number, w: GPUBuffer, wOff: number, dx: GPUBuffer, dxOff: number): void {
  const cg = g.C / g.groups;
  const tm = rowsPerThread(cg);
  const wg = gemmWorkgroupSize();
  const colTiles = Math.ceil((g.N * g.H * g.strideW * Math.ceil(g.W / g.strideW)) / (TN * wg));
  const rowTiles = Math.ceil(cg / tm);
  const params = convParams(g, { x: dxOff, w: wOff, y: dyOff }, [colTiles, rowTiles]);
  dgradGemmKernel.dispatch({ tm, wg, pointwise: isPointwise(g) }, { dy, w, dx }, params, colTiles * rowTiles * g.groups);
}
