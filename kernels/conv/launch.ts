// The entry point of the conv kernels: convForward, convDgrad, convWgrad and convBackward take
// contiguous operands (a buffer and an element offset each), ask the chooser (chooser.ts) for a
// kernel and launch it through KERNELS, the map from kernel to its launchers. Every launcher of
// one direction has the same contract as the direct kernel's.
import { type ConvAlgo, type ConvKernel, chooseDgrad, chooseForward, chooseFusedBackward, chooseWgrad } from './chooser';
import { convDgradDirect, convForwardDirect, convWgradDirect } from './direct';
import { convBackwardFewChannel, convDgradFewChannel, convForwardFewChannel, convWgradFewChannel } from './few-channel';
import { type ConvGeometry } from './geometry';
import { convBackwardMatvec, convDgradMatvec, convForwardMatvec, convWgradMatvec } from './matvec';
import { convDgradPackedGemm } from './packed-gemm/dgrad';
import { convForwardPackedGemm } from './packed-gemm/forward';
import { convWgradPackedGemm } from './packed-gemm/wgrad';
import { convForwardScalarGemm } from './scalar-gemm';
import { convBatchChunks, convWgradChunked, overBindingLimit, windowRef } from './large';
import { convDgradSubgroupGemm, convForwardSubgroupGemm, convWgradSubgroupGemm } from './subgroup-gemm/conv';

export type { ConvAlgo, ConvKernel } from './chooser';

/** A contiguous operand: a buffer and the element offset where it starts. */
export interface BufRef {
  buffer: GPUBuffer;
  offset: number;
}

type Bias = { buffer: GPUBuffer; offset: number } | null;
export type ForwardLauncher = (g: ConvGeometry, x: GPUBuffer, xOff: number, w: GPUBuffer, wOff: number, bias: Bias, relu: boolean, y: GPUBuffer, yOff: number) => void;
export type DgradLauncher = (g: ConvGeometry, dy: GPUBuffer, dyOff: number, w: GPUBuffer, wOff: number, dx: GPUBuffer, dxOff: number) => void;
export type WgradLauncher = (g: ConvGeometry, dy: GPUBuffer, dyOff: number, x: GPUBuffer, xOff: number, dw: GPUBuffer, dwOff: number) => void;
export type BackwardLauncher = (
  g: ConvGeometry, dy: GPUBuffer, dyOff: number, x: GPUBuffer, xOff: number, w: GPUBuffer, wOff: number,
  dx: GPUBuffer, dxOff: number, dw: GPUBuffer, dwOff: number,
) => void;

/** Each kernel's launchers (scalar-gemm ships a forward only). */
export const KERNELS: Readonly<Record<ConvKernel, { forward: ForwardLauncher; dgrad?: DgradLauncher; wgrad?: WgradLauncher }>> = {
  direct: { forward: convForwardDirect, dgrad: convDgradDirect, wgrad: convWgradDirect },
  'scalar-gemm': { forward: convForwardScalarGemm },
  'packed-gemm': { forward: convForwardPackedGemm, dgrad: convDgradPackedGemm, wgrad: convWgradPackedGemm },
  'subgroup-gemm': { forward: convForwardSubgroupGemm, dgrad: convDgradSubgroupGemm, wgrad: convWgradSubgroupGemm },
  'few-channel': { forward: convForwardFewChannel, dgrad: convDgradFewChannel, wgrad: convWgradFewChannel },
  matvec: { forward: convForwardMatvec, dgrad: convDgradMatvec, wgrad: convWgradMatvec },
};

/** The one-dispatch backward launchers of chooser.ts's FUSED_BACKWARD. */
export const FUSED_KERNELS: Readonly<Record<'few-channel' | 'matvec', BackwardLauncher>> = {
  'few-channel': convBackwardFewChannel,
  matvec: convBackwardMatvec,
};

function launcher<T>(k: ConvKernel, dir: 'dgrad' | 'wgrad', fn: T | undefined): T {
  if (!fn) throw new Error(`conv ${dir}: kernel '${k}' has no ${dir} launcher`);
  return fn;
}

/** y = conv(x, w) (+ bias) (ReLU): x [N,C,H,W], w [O,C/g,KH,KW], y [N,O,OH,OW], all contiguous. */
export function convForward(g: ConvGeometry, x: BufRef, w: BufRef, bias: BufRef | null, relu: boolean, y: BufRef, algo: ConvAlgo = 'auto'): void {
  if (overBindingLimit(x.buffer, w.buffer, bias?.buffer, y.buffer)) {
    // Over one storage binding: one launch per block of images (large.ts).
    for (const c of convBatchChunks(g, 'forward')) {
      convForward(c.g, c.x(x), windowRef(w, g.O * (g.C / g.groups) * g.KH * g.KW, g.f16), bias && windowRef(bias, g.O), relu, c.y(y), algo);
    }
    return;
  }
  const k = chooseForward(g, algo, [x.offset, w.offset]);
  KERNELS[k].forward(g, x.buffer, x.offset, w.buffer, w.offset, bias, relu, y.buffer, y.offset);
}

/** dx [N,C,H,W] = ∂conv/∂x applied to dy [N,O,OH,OW]. */
export function convDgrad(g: ConvGeometry, dy: BufRef, w: BufRef, dx: BufRef, algo: ConvAlgo = 'auto'): void {
  if (overBindingLimit(dy.buffer, w.buffer, dx.buffer)) {
    for (const c of convBatchChunks(g, 'dgrad')) convDgrad(c.g, c.y(dy), windowRef(w, g.O * (g.C / g.groups) * g.KH * g.KW, g.f16), c.x(dx), algo);
    return;
  }
  const k = chooseDgrad(g, algo, [w.offset]);
  launcher(k, 'dgrad', KERNELS[k].dgrad)(g, dy.buffer, dy.offset, w.buffer, w.offset, dx.buffer, dx.offset);
}

/** dw [O,C/g,KH,KW] = ∂conv/∂w applied to dy, given the input x. */
export function convWgrad(g: ConvGeometry, dy: BufRef, x: BufRef, dw: BufRef, algo: ConvAlgo = 'auto'): void {
  if (overBindingLimit(dy.buffer, x.buffer, dw.buffer)) {
    convWgradChunked(g, dy, x, dw, (cg, cdy, cx, cdw) => convWgrad(cg, cdy, cx, cdw, algo));
    return;
  }
  const k = chooseWgrad(g, algo, [x.offset, dw.offset]);
  launcher(k, 'wgrad', KERNELS[k].wgrad)(g, dy.buffer, dy.offset, x.buffer, x.offset, dw.buffer, dw.offset);
}

/** Both gradients: dx and dw from dy (either may be null when not wanted). Where FUSED_BACKWARD
 *  (chooser.ts) names a kernel they run as one dispatch, else one after the other. */
export function convBackward(g: ConvGeometry, dy: BufRef, x: BufRef, w: BufRef, dx: BufRef | null, dw: BufRef | null, algo: ConvAlgo = 'auto'): void {
  if (overBindingLimit(dy.buffer, x.buffer, w.buffer, dx?.buffer, dw?.buffer)) {
    // Split paths (large.ts) one gradient after the other.
    if (dx) convDgrad(g, dy, w, dx, algo);
    if (dw) convWgrad(g, dy, x, dw, algo);
    return;
  }
  const fused = dx && dw ? chooseFusedBackward(g, algo, { x: x.offset, w: w.offset, dw: dw.offset }) : null;
  if (fused && dx && dw) {
    FUSED_KERNELS[fused](g, dy.buffer, dy.offset, x.buffer, x.offset, w.buffer, w.offset, dx.buffer, dx.offset, dw.buffer, dw.offset);
    return;
  }
  if (dx) convDgrad(g, dy, w, dx, algo);
  if (dw) convWgrad(g, dy, x, dw, algo);
}
