// Pointwise convs on 1×1 feature maps (the eSE attention's fc: [N, C, 1, 1] → [N, O, 1, 1]) are
// matrix–vector products with N ≤ a few: y[n, o] = Σ_c W[o, c] · x[n, c]. The GEMM kernels tile
// 4 pixels per invocation along a column axis of length N, so they idle most lanes and re-read the
// weight; these kernels instead stream the weight once with vec4 loads along its contiguous axis
// and keep 4 images in registers. They need C % 4 == 0 and 4-aligned offsets (fcApplicable).
//   forward: one invocation per output channel o, vec4 over c:   y[n, o] = Σ_c W[o, c] · x[n, c] (+ b) (ReLU)
//   dgrad:   one invocation per 4 input channels c, loop over o: dx[n, c..c+3] = Σ_o W[o, c..c+3] · dy[n, o]
import { type KernelDef, rt, WGSL_LINEAR_WORKGROUP } from '../../core/runtime';
import { type ConvGeometry, isPointwise, packConvParams, WGSL_CONV_PARAMS } from './geometry';
import { range } from './tile';

const WG = 64;
const NT = 4; // images per invocation
const cache = new Map<string, KernelDef>();

/** A 1×1 conv on 1×1 maps with vec4-compatible channel counts and offsets. */
export function fcApplicable(g: ConvGeometry, offsets: number[]): boolean {
  return isPointwise(g) && g.H === 1 && g.W === 1 && g.groups === 1 && g.C % 4 === 0 && offsets.every((o) => o % 4 === 0);
}

const entry = `${WGSL_LINEAR_WORKGROUP}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let t = i32(linear_workgroup(wid, nwg));
  let i = (t % p.e0) * ${WG} + i32(lid);
  let n0 = (t / p.e0) * ${NT};`;

function forwardDef(hasBias: boolean, relu: boolean): KernelDef {
  const key = `conv.fc.fwd:${hasBias ? 'b' : ''}${relu ? 'r' : ''}`;
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
${entry}
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

const dgradDef: KernelDef = {
  key: 'conv.fc.dgrad',
  bindings: ['read', 'read', 'rw'],
  uniform: true,
  code: /* wgsl */ `
@group(0) @binding(0) var<storage, read> dy: array<f32>;
@group(0) @binding(1) var<storage, read> w: array<vec4f>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;
${WGSL_CONV_PARAMS}
@group(0) @binding(3) var<uniform> p: P;
${entry}
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
}`,
};

/** y[N, O, 1, 1] = x[N, C, 1, 1] · Wᵀ (+ b) (ReLU). Requires fcApplicable(g, [xOff, wOff]). */
export function convForwardFc(
  g: ConvGeometry,
  x: GPUBuffer, xOff: number, w: GPUBuffer, wOff: number,
  bias: { buffer: GPUBuffer; offset: number } | null, relu: boolean,
  y: GPUBuffer, yOff: number,
): void {
  if (!fcApplicable(g, [xOff, wOff])) throw new Error(`convForwardFc: needs a 1×1 conv on 1×1 maps with C % 4 == 0 and 4-aligned offsets, got C ${g.C}, H×W ${g.H}×${g.W}, offsets ${xOff}, ${wOff}`);
  const tiles = Math.ceil(g.O / WG);
  const params = packConvParams(g, { x: xOff, w: wOff, y: yOff, b: bias?.offset ?? 0 }, [tiles]);
  rt().dispatch(forwardDef(!!bias, relu), bias ? [x, w, bias.buffer, y] : [x, w, y], params, tiles * Math.ceil(g.N / NT));
}

/** dx[N, C, 1, 1] = dy[N, O, 1, 1] · W. Requires fcApplicable(g, [wOff]). */
export function convDgradFc(g: ConvGeometry, dy: GPUBuffer, dyOff: number, w: GPUBuffer, wOff: number, dx: GPUBuffer, dxOff: number): void {
  if (!fcApplicable(g, [wOff])) throw new Error(`convDgradFc: needs a 1×1 conv on 1×1 maps with C % 4 == 0 and a 4-aligned weight offset, got C ${g.C}, H×W ${g.H}×${g.W}, offset ${wOff}`);
  const tiles = Math.ceil(g.C / 4 / WG);
  const params = packConvParams(g, { x: dxOff, w: wOff, y: dyOff }, [tiles]);
  rt().dispatch(dgradDef, [dy, w, dx], params, tiles * Math.ceil(g.N / NT));
}
