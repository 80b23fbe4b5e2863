// packed-gemm wgrad: the split-K implicit GEMM for the weight gradient (split-k.ts), with dy
// packed as P[n, oh, ow, g, o] (pack.ts), so the TM output channels an invocation owns load as
// TM/4 vec4 per reduction step instead of TM scalars. The ow loop of each output row is cut into a
// left border, an interior and a right border, with bounds that hold for every tap (so they are
// the same for all invocations: no divergent branches); the interior of an interior row reads x
// without masks.
//   dW[o, (c, kh, kw)] = Σ_(n, oh, ow) dy[n, o, oh, ow] · x[n, g·Cg + c, oh·sh − ph + kh·dh, ow·sw − pw + kw·dw]
import { defineKernel, read, rt, rw } from '../../define-kernel';
import { CONV_PARAMS, type ConvGeometry, convParams, gemmWorkgroupSize, isPointwise } from '../geometry';
import { packDyRows, packedGemmRows, paddedRows } from './pack';
import { accDecl, COMPONENT, COLS, fmaRowsVec4, gemmEntry, loadRowsVec4, maskedVec4, perCol, plainVec4, TN, type GemmTileVariant } from '../register-tile';
import { reduceSplits, wgradSplit } from '../split-k';

const wgradKernel = defineKernel({
  name: 'conv.packed-gemm.wgrad',
  bindings: { dyp: read('vec4f'), x: read('f32'), out: rw('f32') },
  params: CONV_PARAMS,
  code: wgradCode,
});

function wgradCode({ tm, wg, pointwise }: GemmTileVariant): string {
  const step = (b: string) => `{
          let b = ${b};
          ${loadRowsVec4(tm, 'dyp', 'ya + ow * ST')}
          ${fmaRowsVec4(tm)}
        }`;
  const masked = maskedVec4('x', 'rb$ + ow * p.sw + iwoff$', 'rok$ && ow * p.sw + iwoff$ >= 0 && ow * p.sw + iwoff$ < p.W');
  const inner = pointwise
    ? `for (var ow = 0; ow < p.OW; ow++) ${step(plainVec4('x', 'rb$ + ow'))}`
    : `if (row_inside) {
        for (var ow = 0; ow < lo; ow++) ${step(masked)}
        for (var ow = lo; ow < hi; ow++) ${step(plainVec4('x', 'rb$ + ow * p.sw + iwoff$'))}
        for (var ow = max(hi, lo); ow < p.OW; ow++) ${step(masked)}
      } else {
        for (var ow = 0; ow < p.OW; ow++) ${step(masked)}
      }`;
  const store = (i: number) => `{
    let m = m0 + ${i};
    if (m < p.Og) {
      let o = g * p.Og + m;
      ${COLS.map((j) => `if (c0 + ${j} < KK) { out[p.e4 + (s * p.O + o) * KK + c0 + ${j}] = acc${i}.${COMPONENT[j]}; }`).join('\n      ')}
    }
  }`;
  return /* wgsl */ `
${gemmEntry(wg, tm, 'p.groups * p.e2')}
  let g = z / p.e2;
  let s = z % p.e2;
  let HW = p.H * p.W;
  let KHW = p.KH * p.KW;
  let KK = p.Cg * KHW;
  let RP4 = p.e5;
  let ST = p.groups * RP4;           // vec4 stride of one output pixel in packed dy
  let row_start = s * p.e3;
  let row_end = min(row_start + p.e3, p.N * p.OH);
  // ow in [lo, hi) reads inside the input for every tap kw (tap-independent, hence uniform).
  let lo = min(p.OW, (p.pw + p.sw - 1) / p.sw);
  let hn = p.W - 1 - (p.KW - 1) * p.dw + p.pw;
  let hi = select(0, min(p.OW, hn / p.sw + 1), hn >= 0);
  ${perCol('let q$ = min(c0 + $, KK - 1);')}
  ${perCol('let ch$ = q$ / KHW;')}
  ${perCol('let xc$ = i32(p.x_off) + (g * p.Cg + ch$) * HW;')}
  ${pointwise ? '' : perCol('let tap$ = q$ - ch$ * KHW;')}
  ${pointwise ? '' : perCol('let ihoff$ = (tap$ / p.KW) * p.dh - p.ph;')}
  ${pointwise ? '' : perCol('let iwoff$ = (tap$ % p.KW) * p.dw - p.pw;')}
  ${accDecl(tm)}
  for (var r = row_start; r < row_end; r++) {
    let n = r / p.OH;
    let oh = r - n * p.OH;
    let xn = n * p.C * HW;
    let ya = (r * p.OW * p.groups + g) * RP4 + m0 / 4;
    ${pointwise ? perCol('let rb$ = xc$ + xn + oh * p.W;') : perCol('let ih$ = oh * p.sh + ihoff$;')}
    ${pointwise ? '' : perCol('let rok$ = ih$ >= 0 && ih$ < p.H;')}
    ${pointwise ? '' : perCol('let rb$ = xc$ + xn + ih$ * p.W;')}
    ${pointwise ? '' : 'let row_inside = oh * p.sh - p.ph >= 0 && oh * p.sh + (p.KH - 1) * p.dh - p.ph < p.H;'}
    ${inner}
  }
  ${Array.from({ length: tm }, (_, i) => store(i)).join('\n  ')}
}`;
}

/** dw[O, C/groups, KH, KW] from dy and x (packed dy, split-K). Same contract as convWgradDirect. */
export function convWgradPackedGemm(g: ConvGeometry, dy: GPUBuffer, dyOff: number, x: GPUBuffer, xOff: number, dw: GPUBuffer, dwOff: number, forceSplits?: number): void {
  const og = g.O / g.groups;
  const kk = (g.C / g.groups) * g.KH * g.KW;
  const tm = packedGemmRows(og);
  const rp = paddedRows(og, tm);
  const wg = gemmWorkgroupSize();
  const colTiles = Math.ceil(kk / (TN * wg));
  const rowTiles = rp / tm;
  const tiles = colTiles * rowTiles * g.groups;
  let { splits, rowsPerChunk } = wgradSplit(g, tiles);
  if (forceSplits) {
    rowsPerChunk = Math.ceil((g.N * g.OH) / forceSplits);
    splits = Math.ceil((g.N * g.OH) / rowsPerChunk);
  }
  const dyp = packDyRows(g, dy, dyOff, rp);
  const variant = { tm, wg, pointwise: isPointwise(g) };
  const count = g.O * kk;
  if (splits === 1) {
    wgradKernel.dispatch(variant, { dyp, x, out: dw }, convParams(g, { x: xOff }, [colTiles, rowTiles, 1, rowsPerChunk, dwOff, rp / 4]), tiles);
  } else {
    const partial = rt().pool.acquire(splits * count * 4, GPUBufferUsage.STORAGE, 'conv.packed-gemm.partial');
    wgradKernel.dispatch(variant, { dyp, x, out: partial }, convParams(g, { x: xOff }, [colTiles, rowTiles, splits, rowsPerChunk, 0, rp / 4]), tiles * splits);
    reduceSplits(partial, splits, count, dw, dwOff);
    rt().pool.release(partial);
  }
  rt().pool.release(dyp);
}
