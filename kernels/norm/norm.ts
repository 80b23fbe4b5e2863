// Normalisation kernels over contiguous NCHW tensors (HW = product of the spatial dims), shared by
// BatchNorm2d and GroupNorm. A "statistic row" s is the set of elements normalised together:
//   BatchNorm: s = c            (elements (n, c, j) for all n, j; N*HW of them)
//   GroupNorm: s = n*G + c/Cg   (elements (n, c, j) for c in the group; Cg*HW of them)
// In both cases row s starts at element s*inner and is `outer` runs of `inner` elements spaced
// `outerStride` apart (BN: outer = N, inner = HW, outerStride = C*HW; GN: outer = 1, inner =
// Cg*HW). Every reduction is a fixed-order workgroup tree, so results are deterministic.
//
// Tensors over one storage binding (kernels/large.ts): the per-element and per-(n, c) kernels run
// once per block of images, each big operand bound as a window (`off` is the element offset of the
// block inside its window, `n0` its first image); the statistics run per block of rows (GN) or per
// block of images with a fixed-order combination of the blocks' means and variances (BN).
import { defineKernel, rt, WGSL_LINEAR_WORKGROUP } from '../define-kernel';
import { itemsPerBinding, overBindingLimit, windowRange } from '../large';
import { storageType, withF16Storage } from '../f16-storage';

const WG = 256;

/** WGSL: the statistic row of element (n, c): BN uses the channel, GN the (image, group) pair. */
const WGSL_STAT_INDEX = /* wgsl */ `
fn stat_index(n_local: u32, c: u32) -> u32 {
  if (p.bn != 0u) { return c; }
  return (p.n0 + n_local) * p.groups + c / (p.channels / p.groups);
}`;

/** Uniform block shared by the elementwise and per-(n, c) kernels. */
const NCHW_PARAMS = { batch: 'u32', channels: 'u32', hw: 'u32', groups: 'u32', bn: 'u32', inv_m: 'f32', off: 'u32', n0: 'u32' } as const;

function nchwParams(batch: number, channels: number, hw: number, groups: number, bn: boolean, invM = 0, off = 0, n0 = 0) {
  return { batch, channels, hw, groups, bn, inv_m: invM, off, n0 };
}

/**
 * Run `fn` over all `batch` images at once when the big operands (contiguous [N, ...] tensors
 * from element 0, `imageElems` elements per image) fit one binding each; else once per block of
 * images, with each operand's window, the block's element offset in the windows and its first image.
 */
function imageBlocks(batch: number, imageElems: number, big: GPUBuffer[], fn: (n0: number, nb: number, bufs: GPUBuffer[], off: number) => void, eb = 4): void {
  if (!overBindingLimit(...big)) return fn(0, batch, big, 0);
  const nb = itemsPerBinding(imageElems * eb);
  if (nb < 1) throw new Error(`norm: one image of ${imageElems} elements is over the ${rt().bindingLimit}-byte storage binding limit; splitting one image is not implemented`);
  for (let n0 = 0; n0 < batch; n0 += nb) {
    const n = Math.min(nb, batch - n0);
    const ws = big.map((b) => windowRange(b, n0 * imageElems, n * imageElems, eb));
    // Every operand starts at element 0 of its buffer, so all windows share the offset.
    if (ws.some((w) => w.offset !== ws[0]!.offset)) throw new Error('norm: operand windows disagree (operands must start at element 0)');
    fn(n0, n, ws.map((w) => w.buffer), ws[0]!.offset);
  }
}

const F32_READ = { type: 'f32', access: 'read' } as const;
const F32_RW = { type: 'f32', access: 'rw' } as const;
/** The activations (x, y, g, dx) in f16 storage when the variant's h is set (statistics, affine
 *  parameters and all arithmetic stay f32). */
type Storage = { h: boolean };
const ACT_READ = { type: (v: Storage) => storageType(v.h), access: 'read' } as const;
const ACT_RW = { type: (v: Storage) => storageType(v.h), access: 'rw' } as const;

// Norm + ReLU (GroupNorm then ReLU in the FCOS towers, the mask head and VoVNet with GN): the
// apply kernel clamps in place of a separate relu kernel, and the backward kernels read the
// forward's output `y` and take g only where y > 0 (relu's gradient; y > 0 iff its input was), in
// place of a relu-backward kernel. NaN passes through as relu does.
interface ReluVariant {
  relu: boolean;
}
const RELU_Y = { type: (v: Storage) => storageType(v.h), access: 'read', when: (v: ReluVariant) => v.relu } as const;
const WGSL_ISNAN = 'fn isnan_(v: f32) -> bool { return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u; }';

const TREE_REDUCE = (arr: string) => /* wgsl */ `
  workgroupBarrier();
  for (var s = ${WG / 2}u; s > 0u; s >>= 1u) {
    if (lid < s) { ${arr}[lid] += ${arr}[lid + s]; }
    workgroupBarrier();
  }`;

// ---- statistics: mean, 1/sqrt(var + eps), biased var per statistic row (two-pass for accuracy) ----

const statsKernel = defineKernel({
  name: 'norm.stats',
  bindings: { x: ACT_READ, mean_out: F32_RW, rstd_out: F32_RW, var_out: F32_RW },
  params: { rows: 'u32', outer: 'u32', outer_stride: 'u32', inner: 'u32', x_off: 'u32', eps: 'f32', out_off: 'u32' },
  code: ({ h }: Storage) => withF16Storage(/* wgsl */ `
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
    mean_out[p.out_off + row] = mu;
    var_out[p.out_off + row] = v;
    rstd_out[p.out_off + row] = inverseSqrt(v + p.eps);
  }
}`, h, ['x'], []),
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
  h = false,
): void {
  const eb = h ? 2 : 4;
  if (!overBindingLimit(x)) {
    statsKernel.dispatch({ h }, { x, mean_out: mean, rstd_out: rstd, var_out: variance }, { rows, outer, outer_stride: outerStride, inner, x_off: xOffset, eps, out_off: 0 }, rows);
    return;
  }
  if (outer === 1) {
    // Rows are contiguous runs of `inner` (GroupNorm): blocks of rows.
    const rb = itemsPerBinding(inner * eb);
    if (rb < 1) throw new Error(`norm stats: one row of ${inner} elements is over the ${rt().bindingLimit}-byte storage binding limit`);
    for (let r0 = 0; r0 < rows; r0 += rb) {
      const k = Math.min(rb, rows - r0);
      const w = windowRange(x, xOffset + r0 * inner, k * inner, eb);
      statsKernel.dispatch({ h }, { x: w.buffer, mean_out: mean, rstd_out: rstd, var_out: variance }, { rows: k, outer: 1, outer_stride: inner, inner, x_off: w.offset, eps, out_off: r0 }, k);
    }
    return;
  }
  // Rows gather `outer` runs (BatchNorm: one per image): statistics per block of runs, then the
  // blocks' means and biased variances combined in block order (Chan et al.).
  const span = (rows - 1) * inner + inner; // elements of one run of every row
  if (span > outerStride) throw new Error('norm stats: rows of one outer run overlap the next run');
  const ob = itemsPerBinding(outerStride * eb);
  if (ob < 1) throw new Error(`norm stats: one image of ${outerStride} elements is over the ${rt().bindingLimit}-byte storage binding limit`);
  const blocks = Math.ceil(outer / ob);
  const runtime = rt();
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
  const means = runtime.pool.acquire(blocks * rows * 4, usage, 'norm.stats.block_means');
  const vars = runtime.pool.acquire(blocks * rows * 4, usage, 'norm.stats.block_vars');
  const scratch = runtime.pool.acquire(blocks * rows * 4, usage, 'norm.stats.block_rstd');
  for (let b = 0; b < blocks; b++) {
    const o0 = b * ob;
    const k = Math.min(ob, outer - o0);
    const w = windowRange(x, xOffset + o0 * outerStride, (k - 1) * outerStride + span, eb);
    statsKernel.dispatch({ h }, { x: w.buffer, mean_out: means, rstd_out: scratch, var_out: vars }, { rows, outer: k, outer_stride: outerStride, inner, x_off: w.offset, eps, out_off: b * rows }, rows);
  }
  const lastCount = (outer - (blocks - 1) * ob) * inner;
  combineKernel.dispatch({}, { means, vars, mean_out: mean, rstd_out: rstd, var_out: variance }, { rows, blocks, count: ob * inner, last_count: lastCount, eps }, Math.ceil(rows / 64));
  runtime.pool.release(means);
  runtime.pool.release(vars);
  runtime.pool.release(scratch);
}

/** Combine per-block means and biased variances of each row (block b holds `count` elements,
 *  the last `last_count`): mean = Σ n_b m_b / n, var = Σ n_b (v_b + (m_b - mean)²) / n. */
const combineKernel = defineKernel({
  name: 'norm.stats_combine',
  bindings: { means: F32_READ, vars: F32_READ, mean_out: F32_RW, rstd_out: F32_RW, var_out: F32_RW },
  params: { rows: 'u32', blocks: 'u32', count: 'u32', last_count: 'u32', eps: 'f32' },
  code: () => /* wgsl */ `
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let row = gid.x;
  if (row >= p.rows) { return; }
  let total = f32(p.count) * f32(p.blocks - 1u) + f32(p.last_count);
  var acc = 0.0;
  for (var b = 0u; b < p.blocks; b++) {
    let n = select(f32(p.count), f32(p.last_count), b + 1u == p.blocks);
    acc += n * means[b * p.rows + row];
  }
  let mu = acc / total;
  acc = 0.0;
  for (var b = 0u; b < p.blocks; b++) {
    let n = select(f32(p.count), f32(p.last_count), b + 1u == p.blocks);
    let d = means[b * p.rows + row] - mu;
    acc += n * (vars[b * p.rows + row] + d * d);
  }
  let v = acc / total;
  mean_out[row] = mu;
  var_out[row] = v;
  rstd_out[row] = inverseSqrt(v + p.eps);
}`,
});

// ---- y = (x - mean[s]) * rstd[s] * w[c] + b[c] ----

const applyKernel = defineKernel({
  name: 'norm.apply',
  bindings: { x: ACT_READ, mean: F32_READ, rstd: F32_READ, w: F32_READ, b: F32_READ, y: ACT_RW },
  params: NCHW_PARAMS,
  code: ({ h, relu }: Storage & ReluVariant) => withF16Storage(/* wgsl */ `
${WGSL_ISNAN}
${WGSL_STAT_INDEX}
${WGSL_LINEAR_WORKGROUP}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = linear_workgroup(wid, nwg) * ${WG}u + lid;
  if (i >= p.batch * p.channels * p.hw) { return; }
  let nc = i / p.hw;
  let c = nc % p.channels;
  let s = stat_index(nc / p.channels, c);
  let v = (x[p.off + i] - mean[s]) * rstd[s] * w[c] + b[c];
  y[p.off + i] = ${relu ? 'select(max(v, 0.0), v, isnan_(v))' : 'v'};
}`, h, ['x'], ['y']),
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
  h = false,
  relu = false,
): void {
  imageBlocks(batch, channels * hw, [x, y], (n0, nb, [xw, yw], off) => {
    const p = nchwParams(nb, channels, hw, groups, bn, 0, off, n0);
    applyKernel.dispatch({ h, relu }, { x: xw!, mean, rstd, w, b, y: yw! }, p, Math.ceil((nb * channels * hw) / WG));
  }, h ? 2 : 4);
}

// ---- backward partial sums per (n, c): P1 = sum_j g, P2 = sum_j g * xhat ----

const partialsKernel = defineKernel({
  name: 'norm.grad_partials',
  bindings: { g: ACT_READ, x: ACT_READ, mean: F32_READ, rstd: F32_READ, p1: F32_RW, p2: F32_RW, y: RELU_Y },
  params: NCHW_PARAMS,
  code: ({ h, relu }: Storage & ReluVariant) => withF16Storage(/* wgsl */ `
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
    let gv = ${relu ? 'select(0.0, g[p.off + nc * p.hw + j], y[p.off + nc * p.hw + j] > 0.0)' : 'g[p.off + nc * p.hw + j]'};
    a1 += gv;
    a2 += gv * (x[p.off + nc * p.hw + j] - mu) * r;
  }
  sh1[lid] = a1;
  sh2[lid] = a2;
  workgroupBarrier();
  for (var k = ${WG / 2}u; k > 0u; k >>= 1u) {
    if (lid < k) { sh1[lid] += sh1[lid + k]; sh2[lid] += sh2[lid + k]; }
    workgroupBarrier();
  }
  if (lid == 0u) { p1[p.n0 * p.channels + nc] = sh1[0]; p2[p.n0 * p.channels + nc] = sh2[0]; }
}`, h, ['g', 'x', 'y'], []),
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
  h = false,
  reluY?: GPUBuffer,
): void {
  imageBlocks(batch, channels * hw, reluY ? [g, x, reluY] : [g, x], (n0, nb, [gw, xw, yw], off) => {
    const buffers = { g: gw!, x: xw!, mean, rstd, p1, p2, ...(yw ? { y: yw } : {}) };
    partialsKernel.dispatch({ h, relu: !!reluY }, buffers, nchwParams(nb, channels, hw, groups, bn, 0, off, n0), nb * channels);
  }, h ? 2 : 4);
}

// ---- dx = rstd[s] * (w[c] g - A[s]/M - xhat * B[s]/M), A = sum over the row of w g, B of w g xhat ----

const gradInputKernel = defineKernel({
  name: 'norm.grad_input',
  bindings: { g: ACT_READ, x: ACT_READ, mean: F32_READ, rstd: F32_READ, w: F32_READ, sum_a: F32_READ, sum_b: F32_READ, dx: ACT_RW, y: RELU_Y },
  params: NCHW_PARAMS,
  code: ({ h, relu }: Storage & ReluVariant) => withF16Storage(/* wgsl */ `
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
  let xhat = (x[p.off + i] - mean[s]) * r;
  let gv = ${relu ? 'select(0.0, g[p.off + i], y[p.off + i] > 0.0)' : 'g[p.off + i]'};
  dx[p.off + i] = r * (w[c] * gv - sum_a[s] * p.inv_m - xhat * sum_b[s] * p.inv_m);
}`, h, ['g', 'x', 'y'], ['dx']),
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
  h = false,
  reluY?: GPUBuffer,
): void {
  imageBlocks(batch, channels * hw, reluY ? [g, x, dx, reluY] : [g, x, dx], (n0, nb, [gw, xw, dxw, yw], off) => {
    const p = nchwParams(nb, channels, hw, groups, bn, 1 / rowCount, off, n0);
    const buffers = { g: gw!, x: xw!, mean, rstd, w, sum_a: sumA, sum_b: sumB, dx: dxw!, ...(yw ? { y: yw } : {}) };
    gradInputKernel.dispatch({ h, relu: !!reluY }, buffers, p, Math.ceil((nb * channels * hw) / WG));
  }, h ? 2 : 4);
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
