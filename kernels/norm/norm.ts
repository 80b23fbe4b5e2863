// Normalisation kernels over contiguous NCHW tensors (HW = product of the spatial dims), shared by
// BatchNorm2d and GroupNorm. A "statistic row" s is the set of elements normalised together:
//   BatchNorm: s = c            (elements (n, c, j) for all n, j; N*HW of them)
//   GroupNorm: s = n*G + c/Cg   (elements (n, c, j) for c in the group; Cg*HW of them)
// In both cases row s starts at element s*inner and is `outer` runs of `inner` elements spaced
// `outerStride` apart (BN: outer = N, inner = HW, outerStride = C*HW; GN: outer = 1, inner =
// Cg*HW). Every reduction is a fixed-order workgroup tree, so results are deterministic.
import { defineKernel, WGSL_LINEAR_WORKGROUP } from '../define-kernel';

const WG = 256;

/** WGSL: the statistic row of element (n, c): BN uses the channel, GN the (image, group) pair. */
const WGSL_STAT_INDEX = /* wgsl */ `
fn stat_index(n: u32, c: u32) -> u32 {
  if (p.bn != 0u) { return c; }
  return n * p.groups + c / (p.channels / p.groups);
}`;

/** Uniform block shared by the elementwise and per-(n, c) kernels. */
const NCHW_PARAMS = { batch: 'u32', channels: 'u32', hw: 'u32', groups: 'u32', bn: 'u32', inv_m: 'f32' } as const;

function nchwParams(batch: number, channels: number, hw: number, groups: number, bn: boolean, invM = 0) {
  return { batch, channels, hw, groups, bn, inv_m: invM };
}

const F32_READ = { type: 'f32', access: 'read' } as const;
const F32_RW = { type: 'f32', access: 'rw' } as const;

const TREE_REDUCE = (arr: string) => /* wgsl */ `
  workgroupBarrier();
  for (var s = ${WG / 2}u; s > 0u; s >>= 1u) {
    if (lid < s) { ${arr}[lid] += ${arr}[lid + s]; }
    workgroupBarrier();
  }`;

// ---- statistics: mean, 1/sqrt(var + eps), biased var per statistic row (two-pass for accuracy) ----

const statsKernel = defineKernel({
  name: 'norm.stats',
  bindings: { x: F32_READ, mean_out: F32_RW, rstd_out: F32_RW, var_out: F32_RW },
  params: { rows: 'u32', outer: 'u32', outer_stride: 'u32', inner: 'u32', x_off: 'u32', eps: 'f32' },
  code: () => /* wgsl */ `
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
});

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
  statsKernel.dispatch(
    {},
    { x, mean_out: mean, rstd_out: rstd, var_out: variance },
    { rows, outer, outer_stride: outerStride, inner, x_off: xOffset, eps },
    rows,
  );
}

// ---- y = (x - mean[s]) * rstd[s] * w[c] + b[c] ----

const applyKernel = defineKernel({
  name: 'norm.apply',
  bindings: { x: F32_READ, mean: F32_READ, rstd: F32_READ, w: F32_READ, b: F32_READ, y: F32_RW },
  params: NCHW_PARAMS,
  code: () => /* wgsl */ `
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
});

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
  applyKernel.dispatch({}, { x, mean, rstd, w, b, y }, nchwParams(batch, channels, hw, groups, bn), Math.ceil(n / WG));
}

// ---- backward partial sums per (n, c): P1 = sum_j g, P2 = sum_j g * xhat ----

const partialsKernel = defineKernel({
  name: 'norm.grad_partials',
  bindings: { g: F32_READ, x: F32_READ, mean: F32_READ, rstd: F32_READ, p1: F32_RW, p2: F32_RW },
  params: NCHW_PARAMS,
  code: () => /* wgsl */ `
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
});

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
  partialsKernel.dispatch({}, { g, x, mean, rstd, p1, p2 }, nchwParams(batch, channels, hw, groups, bn), batch * channels);
}

// ---- dx = rstd[s] * (w[c] g - A[s]/M - xhat * B[s]/M), A = sum over the row of w g, B of w g xhat ----

const gradInputKernel = defineKernel({
  name: 'norm.grad_input',
  bindings: { g: F32_READ, x: F32_READ, mean: F32_READ, rstd: F32_READ, w: F32_READ, sum_a: F32_READ, sum_b: F32_READ, dx: F32_RW },
  params: NCHW_PARAMS,
  code: () => /* wgsl */ `
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
});

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
  gradInputKernel.dispatch({}, { g, x, mean, rstd, w, sum_a: sumA, sum_b: sumB, dx }, p, Math.ceil(n / WG));
}

// ---- BatchNorm running statistics, in place (PyTorch: unbiased variance in the running var) ----

const runningKernel = defineKernel({
  name: 'norm.bn_running_update',
  bindings: { batch_mean: F32_READ, batch_var: F32_READ, running_mean: F32_RW, running_var: F32_RW },
  params: { channels: 'u32', mean_off: 'u32', var_off: 'u32', momentum: 'f32', unbias: 'f32' },
  code: () => /* wgsl */ `
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let c = gid.x;
  if (c >= p.channels) { return; }
  let m = p.momentum;
  running_mean[p.mean_off + c] = (1.0 - m) * running_mean[p.mean_off + c] + m * batch_mean[c];
  running_var[p.var_off + c] = (1.0 - m) * running_var[p.var_off + c] + m * batch_var[c] * p.unbias;
}`,
});

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
  runningKernel.dispatch(
    {},
    { batch_mean: batchMean, batch_var: batchVar, running_mean: runningMean, running_var: runningVar },
    { channels, mean_off: runningMeanOffset, var_off: runningVarOffset, momentum, unbias },
    Math.ceil(channels / 64),
  );
}
