// matvec: pointwise convs on 1×1 feature maps (the eSE attention's fc: [N, C, 1, 1] → [N, O, 1, 1])
// are matrix–vector products with N ≤ a few: y[n, o] = Σ_c W[o, c] · x[n, c]. The GEMM kernels tile
// 4 pixels per invocation along a column axis of length N, so they idle most lanes and re-read the
// weight; these kernels instead stream the weight once with vec4 loads along its contiguous axis
// and keep 4 images in registers. They need C % 4 == 0 and 4-aligned offsets (matvecApplicable).
//   forward: one invocation per output channel o, vec4 over c:   y[n, o] = Σ_c W[o, c] · x[n, c] (+ b) (ReLU)
//   dgrad:   one invocation per 4 input channels c, loop over o: dx[n, c..c+3] = Σ_o W[o, c..c+3] · dy[n, o]
//   wgrad:   one invocation per (block of o, 4 input channels), loop over n: dW[o, c..c+3] = Σ_n dy[n, o] · x[n, c..c+3]
//            (an outer product summed over N ≤ a few images: a split-K GEMM spends far more in
//            its packs and reductions than in the few multiply-adds)
//   backward: dgrad and wgrad in one dispatch (convBackwardMatvec), as autograd records them: eSE's
//            backward is launch-bound on lavapipe
import { defineKernel, read, rw, WGSL_LINEAR_WORKGROUP } from '../define-kernel';
import { CONV_PARAMS, type ConvGeometry, convParams, isPointwise } from './geometry';
import { range } from './register-tile';
import { isSoftwareAdapter } from '../../runtime/adapter';

const NT = 4; // images per invocation
/** Workgroup width: lavapipe runs one 8-wide subgroup per workgroup best and pays a fixed cost per
 *  workgroup, so there 8 (with 64, the eSE dgrad was one workgroup on one core); hardware GPUs
 *  want 64 to hide latency. */
const fcWorkgroup = () => (isSoftwareAdapter() ? 8 : 64);
/** Workgroups the wgrad aims for: a few per core on lavapipe, enough to fill a hardware GPU. */
const wgradTarget = () => (isSoftwareAdapter() ? 32 : 1024);

/** A 1×1 conv on 1×1 maps with vec4-compatible channel counts and offsets. */
export function matvecApplicable(g: ConvGeometry, offsets: readonly number[]): boolean {
  return isPointwise(g) && g.H === 1 && g.W === 1 && g.groups === 1 && g.C % 4 === 0 && offsets.every((o) => o % 4 === 0);
}

const entry = (WG: number) => `${WGSL_LINEAR_WORKGROUP}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let t = i32(linear_workgroup(wid, nwg));
  let i = (t % p.e0) * ${WG} + i32(lid);
  let n0 = (t / p.e0) * ${NT};`;

const forwardKernel = defineKernel({
  name: 'conv.matvec.fwd',
  bindings: { x: read('vec4f'), w: read('vec4f'), bias: { ...read('f32'), when: (v) => v.hasBias }, y: rw('f32') },
  params: CONV_PARAMS,
  code: ({ hasBias, relu, WG }: { hasBias: boolean; relu: boolean; WG: number }) => /* wgsl */ `
${entry(WG)}
  if (i >= p.O) { return; }
  let C4 = p.C / 4;
  let wr = i32(p.w_off / 4u) + i * C4;
  ${range(NT).map((j) => `let xr${j} = i32(p.x_off / 4u) + min(n0 + ${j}, p.N - 1) * C4;`).join('\n  ')}
  ${range(NT).map((j) => `var acc${j} = vec4f(0.0);`).join('\n  ')}
  for (var c = 0; c < C4; c++) {
    let a = w[wr + c];
    ${range(NT).map((j) => `acc${j} = fma(a, x[xr${j} + c], acc${j});`).join('\n    ')}
  }
  ${hasBias ? 'let bv = bias[p.b_off + u32(i)];' : 'let bv = 0.0;'}
  ${range(NT).map((j) => `if (n0 + ${j} < p.N) { let v = dot(acc${j}, vec4f(1.0)) + bv; y[i32(p.y_off) + (n0 + ${j}) * p.O + i] = ${relu ? 'max(v, 0.0)' : 'v'}; }`).join('\n  ')}
}`,
});

// The gradient kernels share one parameter layout, so the fused backward can run both bodies:
// x_off = x, w_off = W, y_off = dy, b_off = dx, e4 = dW (elements); e0 = tiles of vec4 columns
// (C/4 over the workgroup width, both kernels), e1 = wgrad rows per workgroup, e3 = dgrad
// workgroups (fused only).

/** Workgroup t of the dgrad: 4 input channels per invocation, NT images, loop over o. */
const dgradFn = (WG: number) => /* wgsl */ `
fn dgrad_wg(t: i32, lid: i32) {
  let i = (t % p.e0) * ${WG} + lid;
  let n0 = (t / p.e0) * ${NT};
  let C4 = p.C / 4;
  if (i >= C4) { return; }
  let wc = i32(p.w_off / 4u) + i;
  ${range(NT).map((j) => `let yr${j} = i32(p.y_off) + min(n0 + ${j}, p.N - 1) * p.O;`).join('\n  ')}
  ${range(NT).map((j) => `var acc${j} = vec4f(0.0);`).join('\n  ')}
  for (var o = 0; o < p.O; o++) {
    let a = w[wc + o * C4];
    ${range(NT).map((j) => `acc${j} = fma(a, vec4f(dy[yr${j} + o]), acc${j});`).join('\n    ')}
  }
  ${range(NT).map((j) => `if (n0 + ${j} < p.N) { let b = i32(p.b_off) + (n0 + ${j}) * p.C + 4 * i; dx[b] = acc${j}.x; dx[b + 1] = acc${j}.y; dx[b + 2] = acc${j}.z; dx[b + 3] = acc${j}.w; }`).join('\n  ')}
}`;

/** Workgroup u of the wgrad: a tile of vec4 columns × a block of e1 output channels, loop over n. */
const wgradFn = (WG: number) => /* wgsl */ `
fn wgrad_wg(u: i32, lid: i32) {
  let C4 = p.C / 4;
  let c4 = (u % p.e0) * ${WG} + lid;
  if (c4 >= C4) { return; }
  let o0 = (u / p.e0) * p.e1;
  let o1 = min(o0 + p.e1, p.O);
  for (var o = o0; o < o1; o++) {
    var acc = vec4f(0.0);
    for (var n = 0; n < p.N; n++) {
      acc = fma(vec4f(dy[i32(p.y_off) + n * p.O + o]), x[i32(p.x_off / 4u) + n * C4 + c4], acc);
    }
    dw[p.e4 / 4 + o * C4 + c4] = acc;
  }
}`;

/** 'dgrad', 'wgrad' or both in one dispatch (workgroups below e3 do the dgrad). */
type GradKind = 'dgrad' | 'wgrad' | 'both';
const hasDgrad = (kind: GradKind) => kind !== 'wgrad';
const hasWgrad = (kind: GradKind) => kind !== 'dgrad';

const gradKernel = defineKernel({
  name: 'conv.matvec.grad',
  bindings: {
    dy: read('f32'),
    w: { ...read('vec4f'), when: (v) => hasDgrad(v.kind) },
    dx: { ...rw('f32'), when: (v) => hasDgrad(v.kind) },
    x: { ...read('vec4f'), when: (v) => hasWgrad(v.kind) },
    dw: { ...rw('vec4f'), when: (v) => hasWgrad(v.kind) },
  },
  params: CONV_PARAMS,
  code: ({ kind, WG }: { kind: GradKind; WG: number }) => gradCode(kind, WG),
});

function gradCode(kind: GradKind, WG: number): string {
  const d = kind !== 'wgrad';
  const w = kind !== 'dgrad';
  const call = kind === 'both' ? 'if (t < p.e3) { dgrad_wg(t, i32(lid)); } else { wgrad_wg(t - p.e3, i32(lid)); }' : d ? 'dgrad_wg(t, i32(lid));' : 'wgrad_wg(t, i32(lid));';
  return /* wgsl */ `
${WGSL_LINEAR_WORKGROUP}
${d ? dgradFn(WG) : ''}
${w ? wgradFn(WG) : ''}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let t = i32(linear_workgroup(wid, nwg));
  ${call}
}`;
}

interface MatvecGradPlan {
  WG: number;
  colTiles: number;
  rows: number;
  dgradWorkgroups: number;
  wgradWorkgroups: number;
}

function planGrad(g: ConvGeometry): MatvecGradPlan {
  const WG = fcWorkgroup();
  const colTiles = Math.ceil(g.C / 4 / WG);
  const rows = Math.max(1, Math.ceil((g.O * colTiles) / wgradTarget()));
  return { WG, colTiles, rows, dgradWorkgroups: colTiles * Math.ceil(g.N / NT), wgradWorkgroups: colTiles * Math.ceil(g.O / rows) };
}

function gradParams(g: ConvGeometry, pl: MatvecGradPlan, offs: { x: number; w: number; dy: number; dx: number; dw: number }) {
  return convParams(g, { x: offs.x, w: offs.w, y: offs.dy, b: offs.dx }, [pl.colTiles, pl.rows, 0, pl.dgradWorkgroups, offs.dw]);
}

/** y[N, O, 1, 1] = x[N, C, 1, 1] · Wᵀ (+ b) (ReLU). Requires matvecApplicable(g, [xOff, wOff]). */
export function convForwardMatvec(
  g: ConvGeometry,
  x: GPUBuffer, xOff: number, w: GPUBuffer, wOff: number,
  bias: { buffer: GPUBuffer; offset: number } | null, relu: boolean,
  y: GPUBuffer, yOff: number,
): void {
  if (!matvecApplicable(g, [xOff, wOff])) throw new Error(`convForwardMatvec: needs a 1×1 conv on 1×1 maps with C % 4 == 0 and 4-aligned offsets, got C ${g.C}, H×W ${g.H}×${g.W}, offsets ${xOff}, ${wOff}`);
  const WG = fcWorkgroup();
  const tiles = Math.ceil(g.O / WG);
  const params = convParams(g, { x: xOff, w: wOff, y: yOff, b: bias?.offset ?? 0 }, [tiles]);
  forwardKernel.dispatch({ hasBias: !!bias, relu, WG }, { x, w, bias: bias?.buffer, y }, params, tiles * Math.ceil(g.N / NT));
}

/** dx[N, C, 1, 1] = dy[N, O, 1, 1] · W. Requires matvecApplicable(g, [wOff]). */
export function convDgradMatvec(g: ConvGeometry, dy: GPUBuffer, dyOff: number, w: GPUBuffer, wOff: number, dx: GPUBuffer, dxOff: number): void {
  if (!matvecApplicable(g, [wOff])) throw new Error(`convDgradMatvec: needs a 1×1 conv on 1×1 maps with C % 4 == 0 and a 4-aligned weight offset, got C ${g.C}, H×W ${g.H}×${g.W}, offset ${wOff}`);
  const pl = planGrad(g);
  gradKernel.dispatch({ kind: 'dgrad', WG: pl.WG }, { dy, w, dx }, gradParams(g, pl, { x: 0, w: wOff, dy: dyOff, dx: dxOff, dw: 0 }), pl.dgradWorkgroups);
}

/** dW[O, C, 1, 1] = Σ_n dy[n, :]ᵀ x[n, :]. Requires matvecApplicable(g, [xOff, dwOff]). */
export function convWgradMatvec(g: ConvGeometry, dy: GPUBuffer, dyOff: number, x: GPUBuffer, xOff: number, dw: GPUBuffer, dwOff: number): void {
  if (!matvecApplicable(g, [xOff, dwOff])) throw new Error(`convWgradMatvec: needs a 1×1 conv on 1×1 maps with C % 4 == 0 and 4-aligned offsets, got C ${g.C}, H×W ${g.H}×${g.W}, offsets ${xOff}, ${dwOff}`);
  const pl = planGrad(g);
  gradKernel.dispatch({ kind: 'wgrad', WG: pl.WG }, { dy, x, dw }, gradParams(g, pl, { x: xOff, w: 0, dy: dyOff, dx: 0, dw: dwOff }), pl.wgradWorkgroups);
}

/** Both gradients in one dispatch (one launch-and-wait instead of two: eSE's backward is launch-bound
 *  on lavapipe). Requires matvecApplicable(g, [wOff, xOff, dwOff]). */
export function convBackwardMatvec(
  g: ConvGeometry, dy: GPUBuffer, dyOff: number, x: GPUBuffer, xOff: number, w: GPUBuffer, wOff: number,
  dx: GPUBuffer, dxOff: number, dw: GPUBuffer, dwOff: number,
): void {
  if (!matvecApplicable(g, [wOff, xOff, dwOff])) throw new Error(`convBackwardMatvec: needs a 1×1 conv on 1×1 maps with C % 4 == 0 and 4-aligned offsets, got C ${g.C}, H×W ${g.H}×${g.W}, offsets ${wOff}, ${xOff}, ${dwOff}`);
  const pl = planGrad(g);
  gradKernel.dispatch({ kind: 'both', WG: pl.WG }, { dy, w, dx, x, dw }, gradParams(g, pl, { x: xOff, w: wOff, dy: dyOff, dx: dxOff, dw: dwOff }), pl.dgradWorkgroups + pl.wgradWorkgroups);
}
