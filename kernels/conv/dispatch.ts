// The conv algorithm chooser: picks a kernel per shape for forward, grad input and grad weight.
//   forward: depthwise (one input and one output channel per group) → direct kernel (KH·KW MACs
//            per output, nothing to tile); otherwise implicit GEMM (1×1 stride-1 → plain-GEMM
//            specialisation inside it).
//   dgrad:   depthwise → direct gather kernel; otherwise implicit GEMM.
//   wgrad:   split-K implicit GEMM always (it also covers depthwise: rows = 1 channel).
// `algo: 'direct'` forces the reference kernels (tests compare the fast path against them).
import { type ConvGeometry } from './geometry';
import { convDgradDirect, convForwardDirect, convWgradDirect } from './direct';
import { convForwardGemm } from './implicit-gemm';
import { convDgradGemm } from './dgrad';
import { convWgradGemm } from './wgrad';

export type ConvAlgo = 'auto' | 'direct' | 'gemm';
/** A contiguous operand: a buffer and the element offset where it starts. */
export interface BufRef {
  buffer: GPUBuffer;
  offset: number;
}

const isDepthwise = (g: ConvGeometry) => g.C === g.groups && g.O === g.groups;

export function chooseForward(g: ConvGeometry, algo: ConvAlgo = 'auto'): 'direct' | 'gemm' {
  if (algo !== 'auto') return algo;
  return isDepthwise(g) ? 'direct' : 'gemm';
}

export function chooseDgrad(g: ConvGeometry, algo: ConvAlgo = 'auto'): 'direct' | 'gemm' {
  if (algo !== 'auto') return algo;
  return isDepthwise(g) ? 'direct' : 'gemm';
}

export function chooseWgrad(_g: ConvGeometry, algo: ConvAlgo = 'auto'): 'direct' | 'gemm' {
  return algo === 'direct' ? 'direct' : 'gemm';
}

/** y = conv(x, w) (+ bias) (ReLU): x [N,C,H,W], w [O,C/g,KH,KW], y [N,O,OH,OW], all contiguous. */
export function convForward(g: ConvGeometry, x: BufRef, w: BufRef, bias: BufRef | null, relu: boolean, y: BufRef, algo: ConvAlgo = 'auto'): void {
  const run = chooseForward(g, algo) === 'direct' ? convForwardDirect : convForwardGemm;
  run(g, x.buffer, x.offset, w.buffer, w.offset, bias, relu, y.buffer, y.offset);
}

/** dx [N,C,H,W] = ∂conv/∂x applied to dy [N,O,OH,OW]. */
export function convDgrad(g: ConvGeometry, dy: BufRef, w: BufRef, dx: BufRef, algo: ConvAlgo = 'auto'): void {
  const run = chooseDgrad(g, algo) === 'direct' ? convDgradDirect : convDgradGemm;
  run(g, dy.buffer, dy.offset, w.buffer, w.offset, dx.buffer, dx.offset);
}

/** dw [O,C/g,KH,KW] = ∂conv/∂w applied to dy, given the input x. */
export function convWgrad(g: ConvGeometry, dy: BufRef, x: BufRef, dw: BufRef, algo: ConvAlgo = 'auto'): void {
  if (chooseWgrad(g, algo) === 'direct') convWgradDirect(g, dy.buffer, dy.offset, x.buffer, x.offset, dw.buffer, dw.offset);
  else convWgradGemm(g, dy.buffer, dy.offset, x.buffer, x.offset, dw.buffer, dw.offset);
}
