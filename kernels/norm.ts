// Normalisation kernels over contiguous NCHW tensors (HW = product of the spatial dims), shared by
// BatchNorm2d and GroupNorm. A "statistic row" s is the set of elements normalised together:
//   BatchNorm: s = c            (elements (n, c, j) for all n, j; N*HW of them)
//   GroupNorm: s = n*G + c/Cg   (elements (n, c, j) for c in the group; Cg*HW of them)
// In both cases row s starts at element s*inner and is `outer` runs of `inner` elements spaced
// `outerStride` apart (BN: outer = N, inner = HW, outerStride = C*HW; GN: outer = 1, inner =
// Cg*HW). Every reduction is a fixed-order workgroup tree, so results are deterministic.
import { type KernelDef, Params, rt, WGSL_LINEAR_WORKGROUP } from '../runtime/runtime';

const WG = 256;

/** WGSL: the statistic row of element (n, c): BN uses the channel, GN the (image, group) pair. */
const WGSL_STAT_INDEX = /* wgsl */ `
fn stat_index(n: u32, c: u32) -> u32 {
  if (p.bn != 0u) { return c; }
  return n * p.groups + c / (p.channels / p.groups);
}`;

/** Uniform block shared by the elementwise and per-(n, c) kernels. */
const NCHW_PARAMS = `struct P { batch: u32, channels: u32, hw: u32, groups: u32, bn: u32, inv_m: f32, _a: u32, _b: u32 }`;

function nchwParams(batch: number, channels: number, hw: number, groups: number, bn: boolean, invM = 0): Uint8Array {
  return new Params(8).u(batch, channels, hw, groups, bn ? 1 : 0).f(invM).u(0, 0).bytes();
}

const TREE_REDUCE = (arr: string) => /* wgsl */ `
  workgroupBarrier();
  for (var s = ${WG / 2}u; s > 0u; s >>= 1u) {
    if (lid < s) { ${arr}[lid] += ${arr}[lid + s]; }
    workgroupBarrier();
  }`;

// ---- statistics: mean, 1/sqrt(var + eps), biased var per statistic row (two-pass for accuracy) ----

const statsDef: KernelDef = {
  key: 'norm.stats',
  bindings: ['read', 'rw', 'rw', 'rw'],
  uniform: true,
  code: /* wgsl */ `
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> mean_out: array<f32>;
@group(0) @binding(2) var<storage, read_write> rstd_out: array<f32>;
@group(0) @binding(3) var<storage, read_write> var_out: array<f32>;
struct P { rows: u32, outer: u32, outer_stride: u32, inner: u32, x_off: u32, eps: f32, _a: u32, _b: u32 }
@group(0) @binding(4) var<uniform> p: P;
var<workgroup> sh: array<f32, ${WG}>;
${WGSL_LINEAR_WORKGROUP}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let row = linear_workgroup(wid, nwg);
  if (row >= p.rows) { return; }
  let base = p.x_off + row * p.inner;
  let m = p.outer * p.inner;
  var acc = 0.0;
  for (var e = lid; e < m; e += ${WG}u) {
    acc += x[base + (e / p.inner) * p.outer_stride + e % p.inner];
  }
  sh[lid] = acc;
  ${TREE_REDUCE('sh')}
  let mu = sh[0] / f32(m);
  workgroupBarrier();
  acc = 0.0;
  for (var e = lid; e < m; e += ${WG}u) {
    let d = x[base + (e / p.inner) * p.outer_stride + e % p.inner] - mu;
    acc += d * d;
  }
  sh[lid] = acc;
  ${TREE_REDUCE('sh')}
  if (lid == 0u) {
    let v = sh[0] / f32(m);
    mean_out[row] = mu;
    var_out[row] = v;
    rstd_out[row] = inverseSqrt(v + p.eps);
  }
}`,
};

/** Per statistic row: mean, rstd = 1/sqrt(var + eps) and the biased variance. */
export function launchNormStats(
  x: GPUBuffer,
  xOffset: number,
  mean: GPUBuffer,
  rstd: GPUBuffer,
  variance: GPUBuffer,
  rows: number,
  outer: number,
  outerStride: number,
  inner: number,
  eps: number,
): void {
  const p = new Params(8).u(rows, outer, outerStride, inner, xOffset).f(eps).u(0, 0);
  rt().dispatch(statsDef, [x, mean, rstd, variance], p.bytes(), rows);
}

// ---- y = (x - mean[s]) * rstd[s] * w[c] + b[c] ----

const applyDef: KernelDef = {
  key: 'norm.apply',
  bindings: ['read', 'read', 'read', 'read', 'read', 'rw'],
  uniform: true,
  code: /* wgsl */ `
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> mean: array<f32>;
@group(0) @binding(2) var<storage, read> rstd: array<f32>;
@group(0) @binding(3) var<storage, read> w: array<f32>;
@group(0) @binding(4) var<storage, read> b: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;
${NCHW_PARAMS}
@group(0) @binding(6) var<uniform> p: P;
${WGSL_STAT_INDEX}
${WGSL_LINEAR_WORKGROUP}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = linear_workgroup(wid, nwg) * ${WG}u + lid;
  if (i >= p.batch * p.channels * p.hw) { return; }
  let nc = i / p.hw;
  let c = nc % p.channels;
  let s = stat_index(nc / p.channels, c);
  y[i] = (x[i] - mean[s]) * rstd[s] * w[c] + b[c];
}`,
};

export function launchNormApply(
  x: GPUBuffer,
  mean: GPUBuffer,
  rstd: GPUBuffer,
  w: GPUBuffer,
  b: GPUBuffer,
  y: GPUBuffer,
  batch: number,
  channels: number,
  hw: number,
  groups: number,
  bn: boolean,
): void {
  const n = batch * channels * hw;
  rt().dispatch(applyDef, [x, mean, rstd, w, b, y], nchwParams(batch, channels, hw, groups, bn), Math.ceil(n / WG));
}

// ---- backward partial sums per (n, c): P1 = sum_j g, P2 = sum_j g * xhat ----

const partialsDef: KernelDef = {
  key: 'norm.grad_partials',
  bindings: ['read', 'read', 'read', 'read', 'rw', 'rw'],
  uniform: true,
  code: /* wgsl */ `
@group(0) @binding(0) var<storage, read> g: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> mean: array<f32>;
@group(0) @binding(3) var<storage, read> rstd: array<f32>;
@group(0) @binding(4) var<storage, read_write> p1: array<f32>;
@group(0) @binding(5) var<storage, read_write> p2: array<f32>;
${NCHW_PARAMS}
@group(0) @binding(6) var<uniform> p: P;
var<workgroup> sh1: array<f32, ${WG}>;
var<workgroup> sh2: array<f32, ${WG}>;
${WGSL_STAT_INDEX}
${WGSL_LINEAR_WORKGROUP}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let nc = linear_workgroup(wid, nwg);
  if (nc >= p.batch * p.channels) { return; }
  let s = stat_index(nc / p.channels, nc % p.channels);
  let mu = mean[s];
  let r = rstd[s];
  var a1 = 0.0;
  var a2 = 0.0;
  for (var j = lid; j < p.hw; j += ${WG}u) {
    let gv = g[nc * p.hw + j];
    a1 += gv;
    a2 += gv * (x[nc * p.hw + j] - mu) * r;
  }
  sh1[lid] = a1;
  sh2[lid] = a2;
  workgroupBarrier();
  for (var k = ${WG / 2}u; k > 0u; k >>= 1u) {
    if (lid < k) { sh1[lid] += sh1[lid + k]; sh2[lid] += sh2[lid + k]; }
    workgroupBarrier();
  }
  if (lid == 0u) { p1[nc] = sh1[0]; p2[nc] = sh2[0]; }
}`,
};

export function launchNormGradPartials(
  g: GPUBuffer,
  x: GPUBuffer,
  mean: GPUBuffer,
  rstd: GPUBuffer,
  p1: GPUBuffer,
  p2: GPUBuffer,
  batch: number,
  channels: number,
  hw: number,
  groups: number,
  bn: boolean,
): void {
  rt().dispatch(partialsDef, [g, x, mean, rstd, p1, p2], nchwParams(batch, channels, hw, groups, bn), batch * channels);
}

// ---- dx = rstd[s] * (w[c] g - A[s]/M - xhat * B[s]/M), A = sum over the row of w g, B of w g xhat ----

const gradInputDef: KernelDef = {
  key: 'norm.grad_input',
  bindings: ['read', 'read', 'read', 'read', 'read', 'read', 'read', 'rw'],
  uniform: true,
  code: /* wgsl */ `
@group(0) @binding(0) var<storage, read> g: array<f32>;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> mean: array<f32>;
@group(0) @binding(3) var<storage, read> rstd: array<f32>;
@group(0) @binding(4) var<storage, read> w: array<f32>;
@group(0) @binding(5) var<storage, read> sum_a: array<f32>;
@group(0) @binding(6) var<storage, read> sum_b: array<f32>;
@group(0) @binding(7) var<storage, read_write> dx: array<f32>;
${NCHW_PARAMS}
@group(0) @binding(8) var<uniform> p: P;
${WGSL_STAT_INDEX}
${WGSL_LINEAR_WORKGROUP}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = linear_workgroup(wid, nwg) * ${WG}u + lid;
  if (i >= p.batch * p.channels * p.hw) { return; }
  let nc = i / p.hw;
  let c = nc % p.channels;
  let s = stat_index(nc / p.channels, c);
  let r = rstd[s];
  let xhat = (x[i] - mean[s]) * r;
  dx[i] = r * (w[c] * g[i] - sum_a[s] * p.inv_m - xhat * sum_b[s] * p.inv_m);
}`,
};

export function launchNormGradInput(
  g: GPUBuffer,
  x: GPUBuffer,
  mean: GPUBuffer,
  rstd: GPUBuffer,
  w: GPUBuffer,
  sumA: GPUBuffer,
  sumB: GPUBuffer,
  dx: GPUBuffer,
  batch: number,
  channels: number,
  hw: number,
  groups: number,
  bn: boolean,
  rowCount: number,
): void {
  const n = batch * channels * hw;
  const p = nchwParams(batch, channels, hw, groups, bn, 1 / rowCount);
  rt().dispatch(gradInputDef, [g, x, mean, rstd, w, sumA, sumB, dx], p, Math.ceil(n / WG));
}

// ---- BatchNorm running statistics, in place (PyTorch: unbiased variance in the running var) ----

const runningDef: KernelDef = {
  key: 'norm.bn_running_update',
  bindings: ['read', 'read', 'rw', 'rw'],
  uniform: true,
  code: /* wgsl */ `
@group(0) @binding(0) var<storage, read> batch_mean: array<f32>;
@group(0) @binding(1) var<storage, read> batch_var: array<f32>;
@group(0) @binding(2) var<storage, read_write> running_mean: array<f32>;
@group(0) @binding(3) var<storage, read_write> running_var: array<f32>;
struct P { channels: u32, mean_off: u32, var_off: u32, momentum: f32, unbias: f32, _a: u32, _b: u32, _c: u32 }
@group(0) @binding(4) var<uniform> p: P;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let c = gid.x;
  if (c >= p.channels) { return; }
  let m = p.momentum;
  running_mean[p.mean_off + c] = (1.0 - m) * running_mean[p.mean_off + c] + m * batch_mean[c];
  running_var[p.var_off + c] = (1.0 - m) * running_var[p.var_off + c] + m * batch_var[c] * p.unbias;
}`,
};

export function launchBnRunningUpdate(
  batchMean: GPUBuffer,
  batchVar: GPUBuffer,
  runningMean: GPUBuffer,
  runningMeanOffset: number,
  runningVar: GPUBuffer,
  runningVarOffset: number,
  channels: number,
  momentum: number,
  count: number,
): void {
  const unbias = count > 1 ? count / (count - 1) : 1;
  const p = new Params(8).u(channels, runningMeanOffset, runningVarOffset).f(momentum, unbias).u(0, 0, 0);
  rt().dispatch(runningDef, [batchMean, batchVar, runningMean, runningVar], p.bytes(), Math.ceil(channels / 64));
}
