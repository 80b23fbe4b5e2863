// Pointwise convs on 1×1 feature maps (the eSE attention's fc: [N, C, 1, 1] → [N, O, 1, 1]) are
// matrix–vector products with N ≤ a few: y[n, o] = Σ_c W[o, c] · x[n, c]. The GEMM kernels tile
// 4 pixels per invocation along a column axis of length N, so they idle most lanes and re-read the
// weight; these kernels instead stream the weight once with vec4 loads along its contiguous axis
// and keep 4 images in registers. They need C % 4 == 0 and 4-aligned offsets (fcApplicable).
//   forward: one invocation per output channel o, vec4 over c:   y[n, o] = Σ_c W[o, c] · x[n, c] (+ b) (ReLU)
//   dgrad:   one invocation per 4 input channels c, loop over o: dx[n, c..c+3] = Σ_o W[o, c..c+3] · dy[n, o]
//   wgrad:   one invocation per (o, 4 input channels), loop over n: dW[o, c..c+3] = Σ_n dy[n, o] · x[n, c..c+3]
//            (an outer product summed over N ≤ a few images: the split-K GEMM it replaces spent
//            1.1 ms on eSE 256→256 in packs and reductions, for 131 k multiply-adds)
import { type KernelDef, rt, WGSL_LINEAR_WORKGROUP } from '../../core/runtime';
import { type ConvGeometry, isPointwise, packConvParams, WGSL_CONV_PARAMS } from './geometry';
import { range } from './tile';
import { isSoftwareAdapter } from '../matmul';

const NT = 4; // images per invocation
/** Workgroup width: lavapipe runs one 8-wide subgroup per workgroup best and pays a fixed cost per
 *  workgroup, so there 8 (eSE 256→256 dgrad: one 64-wide workgroup kept one core busy, 0.6 ms);
 *  hardware GPUs want 64 to hide latency. */
const fcWorkgroup = () => (isSoftwareAdapter() ? 8 : 64);
/** Workgroups the wgrad aims for: a few per core on lavapipe, enough to fill a hardware GPU. */
const wgradTarget = () => (isSoftwareAdapter() ? 32 : 1024);
const cache = new Map<string, KernelDef>();

/** A 1×1 conv on 1×1 maps with vec4-compatible channel counts and offsets. */
export function fcApplicable(g: ConvGeometry, offsets: number[]): boolean {
  return isPointwise(g) && g.H === 1 && g.W === 1 && g.groups === 1 && g.C % 4 === 0 && offsets.every((o) => o % 4 === 0);
}

const entry = (WG: number) => `${WGSL_LINEAR_WORKGROUP}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let t = i32(linear_workgroup(wid, nwg));
  let i = (t % p.e0) * ${WG} + i32(lid);
  let n0 = (t / p.e0) * ${NT};`;

function forwardDef(hasBias: boolean, relu: boolean, WG: number): KernelDef {
  const key = `conv.fc.fwd:${hasBias ? 'b' : ''}${relu ? 'r' : ''}:wg${WG}`;
  let def = cache.get(key);
  if (def) return def;
  const yb = hasBias ? 3 : 2;
  const code = /* wgsl */ `
@group(0) @binding(0) var<storage, read> x: array<vec4f>;
@group(0) @binding(1) var<storage, read> w: array<vec4f>;
${hasBias ? '@group(0) @binding(2) var<storage, read> bias: array<f32>;' : ''}
@group(0) @binding(${yb}) var<storage, read_write> y: array<f32>;
${WGSL_CONV_PARAMS}
@group(0) @binding(${yb + 1}) var<uniform> p: P;
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
}`;
  def = { key, code, bindings: hasBias ? ['read', 'read', 'read', 'rw'] : ['read', 'read', 'rw'], uniform: true };
  cache.set(key, def);
  return def;
}

function dgradDef(WG: number): KernelDef {
  const key = `conv.fc.dgrad:wg${WG}`;
  let def = cache.get(key);
  if (def) return def;
  const code = /* wgsl */ `
@group(0) @binding(0) var<storage, read> dy: array<f32>;
@group(0) @binding(1) var<storage, read> w: array<vec4f>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;
${WGSL_CONV_PARAMS}
@group(0) @binding(3) var<uniform> p: P;
${entry(WG)}
  let C4 = p.C / 4;
  if (i >= C4) { return; }
  let wc = i32(p.w_off / 4u) + i;
  ${range(NT).map((j) => `let yr${j} = i32(p.y_off) + min(n0 + ${j}, p.N - 1) * p.O;`).join('\n  ')}
  ${range(NT).map((j) => `var acc${j} = vec4f(0.0);`).join('\n  ')}
  for (var o = 0; o < p.O; o++) {
    let a = w[wc + o * C4];
    ${range(NT).map((j) => `acc${j} = fma(a, vec4f(dy[yr${j} + o]), acc${j});`).join('\n    ')}
  }
  ${range(NT).map((j) => `if (n0 + ${j} < p.N) { let b = i32(p.x_off) + (n0 + ${j}) * p.C + 4 * i; dx[b] = acc${j}.x; dx[b + 1] = acc${j}.y; dx[b + 2] = acc${j}.z; dx[b + 3] = acc${j}.w; }`).join('\n  ')}
}`;
  def = { key, code, bindings: ['read', 'read', 'rw'], uniform: true };
  cache.set(key, def);
  return def;
}

function wgradDef(WG: number): KernelDef {
  const key = `conv.fc.wgrad:wg${WG}`;
  let def = cache.get(key);
  if (def) return def;
  const code = /* wgsl */ `
@group(0) @binding(0) var<storage, read> dy: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<vec4f>;
@group(0) @binding(2) var<storage, read_write> dw: array<vec4f>;
${WGSL_CONV_PARAMS}
@group(0) @binding(3) var<uniform> p: P;
// Grid: x = tiles of ${WG} vec4 columns, y = blocks of e0 output channels (no division per
// invocation); each invocation loops over its block's rows.
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let C4 = p.C / 4;
  let c4 = i32(wid.x) * ${WG} + i32(lid);
  if (c4 >= C4) { return; }
  let o0 = i32(wid.y) * p.e0;
  let o1 = min(o0 + p.e0, p.O);
  for (var o = o0; o < o1; o++) {
    var acc = vec4f(0.0);
    for (var n = 0; n < p.N; n++) {
      acc = fma(vec4f(dy[i32(p.y_off) + n * p.O + o]), x[i32(p.x_off / 4u) + n * C4 + c4], acc);
    }
    dw[i32(p.w_off / 4u) + o * C4 + c4] = acc;
  }
}`;
  def = { key, code, bindings: ['read', 'read', 'rw'], uniform: true };
  cache.set(key, def);
  return def;
}

/** y[N, O, 1, 1] = x[N, C, 1, 1] · Wᵀ (+ b) (ReLU). Requires fcApplicable(g, [xOff, wOff]). */
export function convForwardFc(
  g: ConvGeometry,
  x: GPUBuffer, xOff: number, w: GPUBuffer, wOff: number,
  bias: { buffer: GPUBuffer; offset: number } | null, relu: boolean,
  y: GPUBuffer, yOff: number,
): void {
  if (!fcApplicable(g, [xOff, wOff])) throw new Error(`convForwardFc: needs a 1×1 conv on 1×1 maps with C % 4 == 0 and 4-aligned offsets, got C ${g.C}, H×W ${g.H}×${g.W}, offsets ${xOff}, ${wOff}`);
  const WG = fcWorkgroup();
  const tiles = Math.ceil(g.O / WG);
  const params = packConvParams(g, { x: xOff, w: wOff, y: yOff, b: bias?.offset ?? 0 }, [tiles]);
  rt().dispatch(forwardDef(!!bias, relu, WG), bias ? [x, w, bias.buffer, y] : [x, w, y], params, tiles * Math.ceil(g.N / NT));
}

/** dx[N, C, 1, 1] = dy[N, O, 1, 1] · W. Requires fcApplicable(g, [wOff]). */
export function convDgradFc(g: ConvGeometry, dy: GPUBuffer, dyOff: number, w: GPUBuffer, wOff: number, dx: GPUBuffer, dxOff: number): void {
  if (!fcApplicable(g, [wOff])) throw new Error(`convDgradFc: needs a 1×1 conv on 1×1 maps with C % 4 == 0 and a 4-aligned weight offset, got C ${g.C}, H×W ${g.H}×${g.W}, offset ${wOff}`);
  const WG = fcWorkgroup();
  const tiles = Math.ceil(g.C / 4 / WG);
  const params = packConvParams(g, { x: dxOff, w: wOff, y: dyOff }, [tiles]);
  rt().dispatch(dgradDef(WG), [dy, w, dx], params, tiles * Math.ceil(g.N / NT));
}

/** dW[O, C, 1, 1] = Σ_n dy[n, :]ᵀ x[n, :]. Requires fcApplicable(g, [xOff, dwOff]) and O ≤ 65,535. */
export function convWgradFc(g: ConvGeometry, dy: GPUBuffer, dyOff: number, x: GPUBuffer, xOff: number, dw: GPUBuffer, dwOff: number): void {
  if (!fcApplicable(g, [xOff, dwOff]) || g.O > 65535) throw new Error(`convWgradFc: needs a 1×1 conv on 1×1 maps with C % 4 == 0, 4-aligned offsets and O ≤ 65535, got C ${g.C}, O ${g.O}, H×W ${g.H}×${g.W}, offsets ${xOff}, ${dwOff}`);
  const WG = fcWorkgroup();
  const colTiles = Math.ceil(g.C / 4 / WG);
  const rows = Math.max(1, Math.ceil((g.O * colTiles) / wgradTarget()));
  const params = packConvParams(g, { x: xOff, w: dwOff, y: dyOff }, [rows]);
  rt().dispatch(wgradDef(WG), [dy, x, dw], params, [colTiles, Math.ceil(g.O / rows)]);
}
