// The conv algorithm chooser: picks a kernel per shape for forward, grad input and grad weight.
//   forward: depthwise (one input and one output channel per group) → direct kernel (KH·KW MACs
//            per output, nothing to tile); 1×1 convs on 1×1 maps with aligned operands → 'fc';
//            ≤ 4 output channels, stride 1 → 'few'; otherwise 'gemm3' where the adapter has 8-wide
//            subgroups (lavapipe), else implicit GEMM variant 2 on software adapters and, on
//            hardware GPUs, direct / gemm1 / gemm2 by shape (hardwareForward).
//   dgrad:   depthwise → direct gather kernel; 'fc' as for forward; ≤ 4 output channels, stride 1
//            → 'few'; < 8 input channels per group (the stem) → gemm2; otherwise gemm3 / gemm2
//            (hardware GPUs: direct for small maps, else gemm2; hardwareDgrad).
//   wgrad:   'fc' as for forward (an outer product over N images); ≤ 4 output channels, stride 1
//            → 'few'; other 1×1 maps and depthwise → gemm2; otherwise gemm3 / gemm2.
// On the CenterMask quick subset (bench/README.md, suite conv) gemm3 measured 2.1–2.5× gemm2
// forward and 2.6–3.8× on the gradients on a quiet machine (1.9–5.7× / 2.7–6.2× at load 15);
// 'few' 2× gemm2 forward and 3.6× gemm3 on FCOS bbox 128→4 @32.
// Variants: 'direct' = the readable reference kernels (direct.ts); 'gemm1' = the first implicit
// GEMMs (implicit-gemm.ts, dgrad.ts, wgrad.ts: scalar row loads); 'gemm2' = the packed-operand
// GEMMs (forward-v2.ts, dgrad-v2.ts, wgrad-v2.ts); 'gemm' = gemm2 (the portable GEMM); 'gemm3' =
// chunked im2col + subgroup-broadcast GEMM (v3.ts, gemm-v3.ts; software adapters with 8-wide
// subgroups only); 'few' = few-output-channel kernels (few.ts); 'fc' = 1×1 convs on 1×1 maps (eSE)
// as matrix–vector kernels (fc.ts), chosen automatically when the channel count and offsets allow
// vec4 loads. Tests compare every variant against the float64 reference (and the direct kernels).
import { type ConvGeometry } from './geometry';
import { convDgradDirect, convForwardDirect, convWgradDirect } from './direct';
import { convForwardGemm } from './implicit-gemm';
import { convDgradGemm } from './dgrad';
import { convWgradGemm } from './wgrad';
import { convForwardGemmV2 } from './forward-v2';
import { convDgradGemmV2 } from './dgrad-v2';
import { convWgradGemmV2 } from './wgrad-v2';
import { convBackwardFc, convDgradFc, convForwardFc, convWgradFc, fcApplicable } from './fc';
import { convDgradGemmV3, convForwardGemmV3, convWgradGemmV3, v3Applicable } from './gemm-v3';
import { convBackwardFew, convDgradFew, convForwardFew, convWgradFew, fewApplicable } from './few';
import { isSoftwareAdapter } from '../../runtime/adapter';

export type ConvAlgo = 'auto' | 'direct' | 'gemm' | 'gemm1' | 'gemm2' | 'gemm3' | 'fc' | 'few';
export type ConvKernel = 'direct' | 'gemm1' | 'gemm2' | 'gemm3' | 'fc' | 'few';
/** A contiguous operand: a buffer and the element offset where it starts. */
export interface BufRef {
  buffer: GPUBuffer;
  offset: number;
}

const isDepthwise = (g: ConvGeometry) => g.C === g.groups && g.O === g.groups;
// CELLGPU_CONV_ALGO (direct, gemm1, gemm2, gemm3, few, fc) pins the algorithm chosen for 'auto'
// (debugging and A/B comparisons of whole models); where the pinned kernel cannot run a shape
// (gemm3 without subgroups, few on a wide or strided conv, fc off 1×1 maps) auto chooses instead.
const pinned = (typeof process !== 'undefined' ? process.env.CELLGPU_CONV_ALGO : undefined) as ConvKernel | undefined;
const resolve = (algo: ConvAlgo): ConvKernel | undefined => (algo === 'auto' ? pinned : algo === 'gemm' ? 'gemm2' : algo);
/** A pinned kernel that cannot run this shape (adapter or geometry) falls back to the auto choice;
 *  an explicitly requested one throws from the kernel with the reason. */
const usable = (k: ConvKernel, g: ConvGeometry, op: 'forward' | 'dgrad' | 'wgrad') => (k === 'gemm3' ? v3Applicable(g, op) : k === 'few' ? fewApplicable(g) : k !== 'fc');

/** `offsets`: element offsets of the operands (the fc kernels need them 4-aligned). */
export function chooseForward(g: ConvGeometry, algo: ConvAlgo = 'auto', offsets: number[] = []): ConvKernel {
  const k = resolve(algo);
  if (k && (algo !== 'auto' || usable(k, g, 'forward'))) return k;
  if (isDepthwise(g)) return 'direct';
  if (fcApplicable(g, offsets)) return 'fc';
  if (fewApplicable(g)) return 'few';
  if (v3Applicable(g, 'forward')) return 'gemm3';
  return isSoftwareAdapter() ? 'gemm2' : hardwareForward(g);
}

// Hardware GPUs (no gemm3 or few: those are lavapipe's plans). On an H100 (bench/README.md, "On a
// real GPU"), all 48 CenterMask shapes timed with gemm1, gemm2 and direct: direct won the forward
// and dgrad of every 3×3 conv with at most 512 output (input) positions, 1.3–2× (OSA5 @16, FPN
// @16, p6, p7, FCOS towers @8/@4), and the forward of the ≤ 4-channel heads at every size; gemm1
// (workgroup-memory tiles) won the deep 3×3 forwards at @32–@64 (K = C·9 ≥ 1440) by 1.3×;
// gemm2 won the rest (large maps: the stem, OSA2, FPN @64, the 1×1s).

/** Forward on a hardware GPU (pure function of the geometry; see above). */
export function hardwareForward(g: ConvGeometry): ConvKernel {
  const taps = g.KH * g.KW;
  const cols = g.N * g.OH * g.OW;
  if (taps > 1 && (cols <= 512 || g.O <= 4)) return 'direct';
  if (taps > 1 && cols <= 8192 && (g.C / g.groups) * taps >= 1440) return 'gemm1';
  return 'gemm2';
}

/** Grad input on a hardware GPU: direct for small 3×3 maps (see above), else gemm2. */
export function hardwareDgrad(g: ConvGeometry): ConvKernel {
  return g.KH * g.KW > 1 && g.N * g.H * g.W <= 512 ? 'direct' : 'gemm2';
}

export function chooseDgrad(g: ConvGeometry, algo: ConvAlgo = 'auto', offsets: number[] = []): ConvKernel {
  const k = resolve(algo);
  if (k && (algo !== 'auto' || usable(k, g, 'dgrad'))) return k;
  if (isDepthwise(g)) return 'direct';
  if (fcApplicable(g, offsets)) return 'fc';
  // Few output channels: one dispatch without packs, the dy patch broadcast across the 8 channel
  // lanes; on the FCOS heads from 64² down to 4², the mask predictor and SAM it measured 1.0–2.5×
  // gemm3 (bench/README.md), and with the few wgrad it fuses into one backward dispatch.
  if (fewApplicable(g)) return 'few';
  if (!isSoftwareAdapter()) return hardwareDgrad(g);
  // Fewer than 8 input channels per group (the stem's 3 → 64): dx has Cg GEMM rows, which gemm3's
  // 32-row tile pads ~10×; gemm2's row tile follows Cg. Stem 3 → 64 s2 at 512²: 357 against 636 ms.
  if (g.C / g.groups < 8) return 'gemm2';
  return v3Applicable(g, 'dgrad') ? 'gemm3' : 'gemm2';
}

/** `offsets`: element offsets of x and dw (the fc kernel needs them 4-aligned). */
export function chooseWgrad(g: ConvGeometry, algo: ConvAlgo = 'auto', offsets: number[] = []): ConvKernel {
  const k = resolve(algo);
  const fc = fcApplicable(g, offsets);
  if (k === 'fc') return fc ? 'fc' : 'gemm2';
  if (k && (algo !== 'auto' || usable(k, g, 'wgrad'))) return k;
  // 1×1 conv on 1×1 maps (eSE): an outer product over N images, one dispatch (fc.ts); eSE
  // 256→256: 1.1 ms with the split-K GEMM's packs and reductions.
  if (fc) return 'fc';
  if (fewApplicable(g)) return 'few';
  // 1×1 maps (eSE fc): the wgrad is an outer product over N ≤ a few images; gemm2 measured 2× gemm3.
  if (isDepthwise(g) || (g.OH === 1 && g.OW === 1)) return 'gemm2';
  return v3Applicable(g, 'wgrad') ? 'gemm3' : 'gemm2';
}

/** y = conv(x, w) (+ bias) (ReLU): x [N,C,H,W], w [O,C/g,KH,KW], y [N,O,OH,OW], all contiguous. */
export function convForward(g: ConvGeometry, x: BufRef, w: BufRef, bias: BufRef | null, relu: boolean, y: BufRef, algo: ConvAlgo = 'auto'): void {
  const k = chooseForward(g, algo, [x.offset, w.offset]);
  const run = k === 'direct' ? convForwardDirect : k === 'gemm1' ? convForwardGemm : k === 'fc' ? convForwardFc : k === 'gemm3' ? convForwardGemmV3 : k === 'few' ? convForwardFew : convForwardGemmV2;
  run(g, x.buffer, x.offset, w.buffer, w.offset, bias, relu, y.buffer, y.offset);
}

/** dx [N,C,H,W] = ∂conv/∂x applied to dy [N,O,OH,OW]. */
export function convDgrad(g: ConvGeometry, dy: BufRef, w: BufRef, dx: BufRef, algo: ConvAlgo = 'auto'): void {
  const k = chooseDgrad(g, algo, [w.offset]);
  const run = k === 'direct' ? convDgradDirect : k === 'gemm1' ? convDgradGemm : k === 'fc' ? convDgradFc : k === 'gemm3' ? convDgradGemmV3 : k === 'few' ? convDgradFew : convDgradGemmV2;
  run(g, dy.buffer, dy.offset, w.buffer, w.offset, dx.buffer, dx.offset);
}

/** dw [O,C/g,KH,KW] = ∂conv/∂w applied to dy, given the input x. */
export function convWgrad(g: ConvGeometry, dy: BufRef, x: BufRef, dw: BufRef, algo: ConvAlgo = 'auto'): void {
  const k = chooseWgrad(g, algo, [x.offset, dw.offset]);
  const run = k === 'direct' ? convWgradDirect : k === 'gemm1' ? convWgradGemm : k === 'gemm3' ? convWgradGemmV3 : k === 'few' ? convWgradFew : k === 'fc' ? convWgradFc : convWgradGemmV2;
  run(g, dy.buffer, dy.offset, x.buffer, x.offset, dw.buffer, dw.offset);
}

/** Both gradients: dx and dw from dy (either may be null when not wanted). Where both would use
 *  the few-channel or the fc kernels they run as one fused dispatch (convBackwardFew,
 *  convBackwardFc), else one after the other. */
export function convBackward(g: ConvGeometry, dy: BufRef, x: BufRef, w: BufRef, dx: BufRef | null, dw: BufRef | null, algo: ConvAlgo = 'auto'): void {
  if (dx && dw && chooseDgrad(g, algo, [w.offset]) === 'few' && chooseWgrad(g, algo) === 'few') {
    convBackwardFew(g, dy.buffer, dy.offset, x.buffer, x.offset, w.buffer, w.offset, dx.buffer, dx.offset, dw.buffer, dw.offset);
    return;
  }
  // Fused only while launch-bound: eSE 256→256 0.77 ms fused against 0.55 + 0.52 ms apart; at
  // 1024→1024 (bandwidth-bound) 8.5 ms fused against 3.3 + 4.5 ms.
  if (dx && dw && g.O * g.C <= 512 * 512 && chooseDgrad(g, algo, [w.offset]) === 'fc' && chooseWgrad(g, algo, [x.offset, dw.offset]) === 'fc') {
    convBackwardFc(g, dy.buffer, dy.offset, x.buffer, x.offset, w.buffer, w.offset, dx.buffer, dx.offset, dw.buffer, dw.offset);
    return;
  }
  if (dx) convDgrad(g, dy, w, dx, algo);
  if (dw) convWgrad(g, dy, x, dw, algo);
}
