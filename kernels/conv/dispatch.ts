// The conv algorithm chooser: picks a kernel per shape for forward, grad input and grad weight.
//   forward: depthwise (one input and one output channel per group) → direct kernel (KH·KW MACs
//            per output, nothing to tile); otherwise implicit GEMM variant 2 (packed weights,
//            vec4 row loads; 1×1 stride-1 → plain-GEMM specialisation inside it).
//   dgrad:   depthwise → direct gather kernel; otherwise implicit GEMM variant 2.
//   wgrad:   split-K implicit GEMM variant 2 always (it also covers depthwise: rows = 1 channel).
// Variants: 'direct' = the readable reference kernels (direct.ts); 'gemm1' = the first implicit
// GEMMs (implicit-gemm.ts, dgrad.ts, wgrad.ts: scalar row loads); 'gemm2' = the packed-operand
// GEMMs (forward-v2.ts, dgrad-v2.ts, wgrad-v2.ts); 'gemm' = the current best GEMM (= gemm2).
// Tests compare every variant against the direct kernels and the float64 reference.
import { type ConvGeometry } from './geometry';
import { convDgradDirect, convForwardDirect, convWgradDirect } from './direct';
import { convForwardGemm } from './implicit-gemm';
import { convDgradGemm } from './dgrad';
import { convWgradGemm } from './wgrad';
import { convForwardGemmV2 } from './forward-v2';
import { convDgradGemmV2 } from './dgrad-v2';
import { convWgradGemmV2 } from './wgrad-v2';

export type ConvAlgo = 'auto' | 'direct' | 'gemm' | 'gemm1' | 'gemm2';
export type ConvKernel = 'direct' | 'gemm1' | 'gemm2';
/** A contiguous operand: a buffer and the element offset where it starts. */
export interface BufRef {
  buffer: GPUBuffer;
  offset: number;
}

const isDepthwise = (g: ConvGeometry) => g.C === g.groups && g.O === g.groups;
const resolve = (algo: ConvAlgo): ConvKernel | undefined => (algo === 'auto' ? undefined : algo === 'gemm' ? 'gemm2' : algo);

export function chooseForward(g: ConvGeometry, algo: ConvAlgo = 'auto'): ConvKernel {
  return resolve(algo) ?? (isDepthwise(g) ? 'direct' : 'gemm2');
}

export function chooseDgrad(g: ConvGeometry, algo: ConvAlgo = 'auto'): ConvKernel {
  return resolve(algo) ?? (isDepthwise(g) ? 'direct' : 'gemm2');
}

export function chooseWgrad(_g: ConvGeometry, algo: ConvAlgo = 'auto'): ConvKernel {
  return resolve(algo) ?? 'gemm2';
}

/** y = conv(x, w) (+ bias) (ReLU): x [N,C,H,W], w [O,C/g,KH,KW], y [N,O,OH,OW], all contiguous. */
export function convForward(g: ConvGeometry, x: BufRef, w: BufRef, bias: BufRef | null, relu: boolean, y: BufRef, algo: ConvAlgo = 'auto'): void {
  const k = chooseForward(g, algo);
  const run = k === 'direct' ? convForwardDirect : k === 'gemm1' ? convForwardGemm : convForwardGemmV2;
  run(g, x.buffer, x.offset, w.buffer, w.offset, bias, relu, y.buffer, y.offset);
}

/** dx [N,C,H,W] = ∂conv/∂x applied to dy [N,O,OH,OW]. */
export function convDgrad(g: ConvGeometry, dy: BufRef, w: BufRef, dx: BufRef, algo: ConvAlgo = 'auto'): void {
  const k = chooseDgrad(g, algo);
  const run = k === 'direct' ? convDgradDirect : k === 'gemm1' ? convDgradGemm : convDgradGemmV2;
  run(g, dy.buffer, dy.offset, w.buffer, w.offset, dx.buffer, dx.offset);
}

/** dw [O,C/g,KH,KW] = ∂conv/∂w applied to dy, given the input x. */
export function convWgrad(g: ConvGeometry, dy: BufRef, x: BufRef, dw: BufRef, algo: ConvAlgo = 'auto'): void {
  const k = chooseWgrad(g, algo);
  const run = k === 'direct' ? convWgradDirect : k === 'gemm1' ? convWgradGemm : convWgradGemmV2;
  run(g, dy.buffer, dy.offset, x.buffer, x.offset, dw.buffer, dw.offset);
}
