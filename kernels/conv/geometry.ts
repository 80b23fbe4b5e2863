// Convolution geometry shared by every conv kernel: NCHW input [N, C, H, W], weight
// [O, C/groups, KH, KW], output [N, O, OH, OW]. All kernels take contiguous buffers plus element
// offsets and read the geometry from one uniform block, CONV_PARAMS (convParams fills it).
import { rt } from '../define-kernel';
import { isSoftwareAdapter } from '../../runtime/adapter';

export interface ConvGeometry {
  N: number;
  C: number;
  H: number;
  W: number;
  O: number;
  KH: number;
  KW: number;
  OH: number;
  OW: number;
  strideH: number;
  strideW: number;
  padH: number;
  padW: number;
  dilH: number;
  dilW: number;
  groups: number;
  /** f16 storage: x, w, y, dy and dx are f16 arrays (computed and accumulated in f32); the bias
   *  and dw stay f32. Only the kernels in chooser.ts's F16_KERNELS take it. */
  f16?: boolean;
}

export type Pair = number | readonly [number, number];
export const pair = (v: Pair): [number, number] => (typeof v === 'number' ? [v, v] : [v[0], v[1]]);

/** Output size along one axis, as PyTorch computes it. */
export function convOutSize(inSize: number, k: number, stride: number, pad: number, dil: number): number {
  return Math.floor((inSize + 2 * pad - dil * (k - 1) - 1) / stride) + 1;
}

export interface ConvOptionsResolved {
  stride: [number, number];
  padding: [number, number];
  dilation: [number, number];
  groups: number;
}

/** Build and validate the geometry of conv2d(x: xShape, w: wShape). Errors say what was expected. */
export function convGeometry(what: string, xShape: readonly number[], wShape: readonly number[], o: ConvOptionsResolved): ConvGeometry {
  if (xShape.length !== 4) throw new Error(`${what}: input must be 4-d [N, C, H, W], got [${xShape}]`);
  if (wShape.length !== 4) throw new Error(`${what}: weight must be 4-d [O, C/groups, KH, KW], got [${wShape}]`);
  const [N, C, H, W] = xShape as [number, number, number, number];
  const [O, Cg, KH, KW] = wShape as [number, number, number, number];
  const groups = o.groups;
  if (!Number.isInteger(groups) || groups < 1) throw new Error(`${what}: groups must be a positive integer, got ${groups}`);
  if (C % groups || O % groups) throw new Error(`${what}: in channels ${C} and out channels ${O} must both be divisible by groups ${groups}`);
  if (Cg !== C / groups) throw new Error(`${what}: weight [${wShape}] expects ${Cg * groups} input channels (C/groups = ${Cg}), input has ${C} (groups ${groups})`);
  for (const [name, v, min] of [['stride', o.stride, 1], ['dilation', o.dilation, 1], ['padding', o.padding, 0]] as const) {
    if (!v.every((x) => Number.isInteger(x) && x >= min)) throw new Error(`${what}: ${name} must be integers >= ${min}, got [${v}]`);
  }
  const OH = convOutSize(H, KH, o.stride[0], o.padding[0], o.dilation[0]);
  const OW = convOutSize(W, KW, o.stride[1], o.padding[1], o.dilation[1]);
  if (OH < 1 || OW < 1) {
    throw new Error(`${what}: input ${H}x${W} (padding [${o.padding}]) is smaller than the dilated kernel ${(KH - 1) * o.dilation[0] + 1}x${(KW - 1) * o.dilation[1] + 1}`);
  }
  return { N, C, H, W, O, KH, KW, OH, OW, strideH: o.stride[0], strideW: o.stride[1], padH: o.padding[0], padW: o.padding[1], dilH: o.dilation[0], dilW: o.dilation[1], groups };
}

/** 1×1, stride 1, no padding: the conv is a plain GEMM per image. */
export function isPointwise(g: ConvGeometry): boolean {
  return g.KH === 1 && g.KW === 1 && g.strideH === 1 && g.strideW === 1 && g.padH === 0 && g.padW === 0;
}

/** FLOPs of the forward (and of each gradient): 2 · N·O·OH·OW · C/groups·KH·KW. */
export function convFlops(g: ConvGeometry): number {
  return 2 * g.N * g.O * g.OH * g.OW * (g.C / g.groups) * g.KH * g.KW;
}

/** The uniform block every conv kernel declares: the geometry, buffer offsets (elements) and six
 *  kernel-specific integers e0..e5 (see convParams). */
export const CONV_PARAMS = {
  N: 'i32', C: 'i32', H: 'i32', W: 'i32',
  O: 'i32', OH: 'i32', OW: 'i32', KH: 'i32',
  KW: 'i32', sh: 'i32', sw: 'i32', ph: 'i32',
  pw: 'i32', dh: 'i32', dw: 'i32', groups: 'i32',
  Cg: 'i32', Og: 'i32', x_off: 'u32', w_off: 'u32',
  y_off: 'u32', b_off: 'u32', e0: 'i32', e1: 'i32',
  e2: 'i32', e3: 'i32', e4: 'i32', e5: 'i32',
} as const;

/** CONV_PARAMS values: the geometry, buffer offsets and up to six kernel-specific integers. */
export function convParams(g: ConvGeometry, offs: { x?: number; w?: number; y?: number; b?: number }, extra: number[] = []) {
  const [e0 = 0, e1 = 0, e2 = 0, e3 = 0, e4 = 0, e5 = 0] = extra;
  return {
    N: g.N, C: g.C, H: g.H, W: g.W,
    O: g.O, OH: g.OH, OW: g.OW, KH: g.KH,
    KW: g.KW, sh: g.strideH, sw: g.strideW, ph: g.padH,
    pw: g.padW, dh: g.dilH, dw: g.dilW, groups: g.groups,
    Cg: g.C / g.groups, Og: g.O / g.groups, x_off: offs.x ?? 0, w_off: offs.w ?? 0,
    y_off: offs.y ?? 0, b_off: offs.b ?? 0, e0, e1,
    e2, e3, e4, e5,
  };
}

let workgroupOverride: number | undefined;
/** Force the GEMM workgroup width (tests exercise the hardware-GPU configuration on lavapipe). */
export function overrideGemmWorkgroupSize(n: number | undefined): void {
  workgroupOverride = n;
}

/** Threads along the column axis of a GEMM workgroup. lavapipe runs one 8-wide subgroup per
 *  workgroup best (more invocations or workgroup memory only slow it down); hardware GPUs want
 *  wider workgroups to hide latency. */
export function gemmWorkgroupSize(): number {
  if (workgroupOverride !== undefined) return workgroupOverride;
  return isSoftwareAdapter() ? 8 : 64;
}

/** Rows per thread: output channels (or input channels for dgrad) held in registers. */
export function rowsPerThread(m: number): number {
  return Math.min(m, 8);
}
