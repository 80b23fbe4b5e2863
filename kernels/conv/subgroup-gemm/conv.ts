// subgroup-gemm, the convolutions: forward, dgrad and wgrad through the chunked im2col + subgroup
// GEMM of gemm.ts (software adapters with 8-wide subgroups: lavapipe). Same contracts as the
// direct kernels (contiguous NCHW operands with element offsets). The tap tables are built here:
//   forward  tap (kh, kw): (oy, ox) = (kh·dh − ph, kw·dw − pw) on the input, output grid OH × OW
//            with steps (sh, sw).
//   dgrad    one sub-convolution per stride phase (rh, rw) of dx: tap (kh, kw) reaches the phase
//            when (rh + ph − kh·dh) and (rw + pw − kw·dw) are multiples of (sh, sw); its dy offset is
//            that quotient, and the phase grid is ceil((H − rh)/sh) × ceil((W − rw)/sw). Stride 1
//            is one phase with every tap: the convolution of dy with the flipped weight.
//   wgrad    every tap, columns (c, kh, kw) in dw's own order.
import { type ConvGeometry } from '../geometry';
import { gatherGemm, MAX_BINDING, MAX_TAPS, packDyRows, packWeightRows, paddedRows, subgroupGemmAvailable, type Tap, wgradGemm } from './gemm';
import { rt } from '../../define-kernel';

/** Whether the geometry fits the subgroup GEMM (for `op`; 'any' = all three), whatever the
 *  adapter: the tap table holds the kernel, the packed operands fit one 128 MiB binding (weights
 *  for forward and dgrad, dy rows for wgrad) and the dy pack fits its grid. */
export function subgroupGemmFits(g: ConvGeometry, op: 'forward' | 'dgrad' | 'wgrad' | 'any' = 'any'): boolean {
  if (g.KH * g.KW > MAX_TAPS) return false;
  const T = g.KH * g.KW;
  const og = g.O / g.groups;
  const cg = g.C / g.groups;
  const packBytes = (rows: number, k: number) => g.groups * paddedRows(rows) * Math.max(4, Math.ceil(k / 4) * 4) * 4;
  if ((op === 'forward' || op === 'any') && packBytes(og, cg * T) > MAX_BINDING) return false;
  if ((op === 'dgrad' || op === 'any') && packBytes(cg, og * T) > MAX_BINDING) return false;
  if (op === 'wgrad' || op === 'any') {
    if (packBytes(og, g.N * g.OH * g.OW) > MAX_BINDING || g.groups * g.N > 65535) return false;
  }
  return true;
}

/** Whether subgroup-gemm can run `g` here: the adapter has 8-wide subgroups and the geometry fits. */
export function subgroupGemmApplicable(g: ConvGeometry, op: 'forward' | 'dgrad' | 'wgrad' | 'any' = 'any'): boolean {
  return subgroupGemmAvailable() && subgroupGemmFits(g, op);
}

function check(what: string, g: ConvGeometry): void {
  if (!subgroupGemmAvailable()) throw new Error(`conv ${what} subgroup-gemm: needs a software adapter with 8-wide subgroups (use packed-gemm)`);
  if (g.KH * g.KW > MAX_TAPS) throw new Error(`conv ${what} subgroup-gemm: kernel ${g.KH}x${g.KW} has over ${MAX_TAPS} taps (use packed-gemm)`);
}

function forwardTaps(g: ConvGeometry): Tap[] {
  const taps: Tap[] = [];
  for (let kh = 0; kh < g.KH; kh++) for (let kw = 0; kw < g.KW; kw++) taps.push({ oy: kh * g.dilH - g.padH, ox: kw * g.dilW - g.padW, index: kh * g.KW + kw });
  return taps;
}

const mod = (a: number, m: number) => ((a % m) + m) % m;

/** y = conv(x, w) (+ bias) (then ReLU). */
export function convForwardSubgroupGemm(
  g: ConvGeometry,
  x: GPUBuffer, xOff: number, w: GPUBuffer, wOff: number,
  bias: { buffer: GPUBuffer; offset: number } | null, relu: boolean,
  y: GPUBuffer, yOff: number,
): void {
  check('forward', g);
  const cg = g.C / g.groups;
  const og = g.O / g.groups;
  const khw = g.KH * g.KW;
  const taps = forwardTaps(g);
  const a = packWeightRows(w, wOff, g.groups, og, paddedRows(og), cg, taps, cg * khw, khw, og * cg * khw, 4, !!g.f16);
  gatherGemm(g.N, g.groups, og, a, taps,
    { src: x, srcOff: xOff, csrc: g.C, cgs: cg, Hs: g.H, Ws: g.W, stepH: g.strideH, stepW: g.strideW, h: !!g.f16 },
    { out: y, outOff: yOff, ctot: g.O, GH: g.OH, GW: g.OW, phase: null, bias, relu });
  rt().pool.release(a.a);
}

/** dx[N, C, H, W] from dy and w (one sub-convolution per stride phase). */
export function convDgradSubgroupGemm(g: ConvGeometry, dy: GPUBuffer, dyOff: number, w: GPUBuffer, wOff: number, dx: GPUBuffer, dxOff: number): void {
  check('dgrad', g);
  const cg = g.C / g.groups;
  const og = g.O / g.groups;
  const khw = g.KH * g.KW;
  const stride1 = g.strideH === 1 && g.strideW === 1;
  for (let rh = 0; rh < Math.min(g.strideH, g.H); rh++) {
    for (let rw = 0; rw < Math.min(g.strideW, g.W); rw++) {
      const taps: Tap[] = [];
      for (let kh = 0; kh < g.KH; kh++) {
        const th = rh + g.padH - kh * g.dilH;
        if (mod(th, g.strideH)) continue;
        for (let kw = 0; kw < g.KW; kw++) {
          const tw = rw + g.padW - kw * g.dilW;
          if (mod(tw, g.strideW)) continue;
          taps.push({ oy: th / g.strideH, ox: tw / g.strideW, index: kh * g.KW + kw });
        }
      }
      const a = packWeightRows(w, wOff, g.groups, cg, paddedRows(cg), og, taps, khw, cg * khw, og * cg * khw, 4, !!g.f16);
      const GH = Math.ceil((g.H - rh) / g.strideH);
      const GW = Math.ceil((g.W - rw) / g.strideW);
      gatherGemm(g.N, g.groups, cg, a, taps,
        { src: dy, srcOff: dyOff, csrc: g.O, cgs: og, Hs: g.OH, Ws: g.OW, stepH: 1, stepW: 1, h: !!g.f16 },
        {
          out: dx, outOff: dxOff, ctot: g.C, GH, GW, bias: null, relu: false,
          phase: stride1 ? null : { Hf: g.H, Wf: g.W, sH: g.strideH, sW: g.strideW, oH: rh, oW: rw },
        });
      rt().pool.release(a.a);
    }
  }
}

/** dw[O, C/groups, KH, KW] from dy and x (chunked reduction accumulating in order). */
export function convWgradSubgroupGemm(g: ConvGeometry, dy: GPUBuffer, dyOff: number, x: GPUBuffer, xOff: number, dw: GPUBuffer, dwOff: number): void {
  check('wgrad', g);
  const og = g.O / g.groups;
  const ohw = g.OH * g.OW;
  const ns = g.N * ohw;
  const dyA = packDyRows(dy, dyOff, g.groups, og, paddedRows(og), g.O, ohw, ns, !!g.f16);
  wgradGemm(g.groups, og, dyA, ns, forwardTaps(g),
    { x, xOff, C: g.C, cg: g.C / g.groups, H: g.H, W: g.W, OH: g.OH, OW: g.OW, sh: g.strideH, sw: g.strideW, h: !!g.f16 }, dw, dwOff);
  rt().pool.release(dyA.a);
}
