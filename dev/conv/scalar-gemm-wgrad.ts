// Superseded: the scalar-gemm wgrad (no adapter chooses it; packed-gemm's wgrad took its place).
// Kept for A/B experiments: see dev/README.md. Same contract as convWgradDirect.
//
// Conv grad weight (wgrad) as an implicit GEMM, per group g:
//   dW[o, col] = Σ_(n, oh, ow) dy[n, o, oh, ow] · X̂[col, (n, oh, ow)],  col = (c, kh, kw) < Cg·KH·KW,
//   X̂[col, (n, oh, ow)] = x[n, g·Cg + c, oh·sh − ph + kh·dh, ow·sw − pw + kw·dw] (zero outside).
// The output (O × Cg·KH·KW) is small and the reduction (N·OH·OW) huge, so the reduction is split
// into S chunks of output rows (n, oh): pass 1 writes S partial products, pass 2 sums them in a
// fixed order (kernels/conv/split-k.ts). With S = 1 pass 1 writes dW directly. The row operand
// (dy) is read as TM scalars per step, straight from dy.
import { defineKernel, read, rt, rw } from '../../kernels/define-kernel';
import { CONV_PARAMS, type ConvGeometry, convParams, gemmWorkgroupSize, isPointwise, rowsPerThread } from '../../kernels/conv/geometry';
import { accDecl, COMPONENT, COLS, fmaRows, gemmEntry, maskedVec4, perCol, perRow, plainVec4, TN, type GemmTileVariant } from '../../kernels/conv/register-tile';
import { reduceSplits, wgradSplit } from '../../kernels/conv/split-k';

const wgradGemmKernel = defineKernel({
  name: 'dev.conv.scalar-gemm.wgrad',
  bindings: { dy: read('f32'), x: read('f32'), out: rw('f32') },
  params: CONV_PARAMS,
  code: wgradGemmCode,
});

function wgradGemmCode({ tm, wg, pointwise }: GemmTileVariant): string {
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
  return /* wgsl */ `
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
}

/** dw[O, C/groups, KH, KW] from dy and x as a split-K implicit GEMM. Same contract as convWgradDirect. */
export function convWgradScalarGemm(g: ConvGeometry, dy: GPUBuffer, dyOff: number, x: GPUBuffer, xOff: number, dw: GPUBuffer, dwOff: number, forceSplits?: number): void {
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
  const variant = { tm, wg, pointwise: isPointwise(g) };
  const count = g.O * kk;
  if (splits === 1) {
    const params = convParams(g, { x: xOff, y: dyOff }, [colTiles, rowTiles, 1, rowsPerChunk, dwOff]);
    wgradGemmKernel.dispatch(variant, { dy, x, out: dw }, params, tiles);
    return;
  }
  const partial = rt().pool.acquire(splits * count * 4, GPUBufferUsage.STORAGE, 'dev.conv.scalar-gemm.wgrad.partial');
  const params = convParams(g, { x: xOff, y: dyOff }, [colTiles, rowTiles, splits, rowsPerChunk, 0]);
  wgradGemmKernel.dispatch(variant, { dy, x, out: partial }, params, tiles * splits);
  reduceSplits(partial, splits, count, dw, dwOff);
  rt().pool.release(partial);
}
