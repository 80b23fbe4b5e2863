// ROIAlign (Detectron2 ROIAlignV2 / torchvision roi_align) on contiguous NCHW features, ROIs as
// [K, 5] rows (batch index, x0, y0, x1, y1) in image coordinates.
//
// Forward: one thread per output bin (k, ph, pw) and block of 16 channels, averaging grid_h x
// grid_w bilinear samples exactly as the reference CPU kernel computes them.
//
// Backward without float atomics: one thread per input-gradient pixel (n, y, x) and block of 16
// channels GATHERS the
// contributions of every sample that touches it. It walks only the ROIs of image n (a per-image ROI
// list built on the GPU, in ascending ROI order), and per ROI only the few sample rows/columns whose
// bilinear footprint can include (y, x). The summation order is a fixed function of the indices,
// so two runs give bit-identical gradients.
//
// Features over one storage binding (kernels/large.ts): both directions run per block of images,
// the features (or their gradient) bound as a window over the block (`feat_off` its element offset
// in the window, `n0` its first image). A forward block writes only the ROIs of its images
// (`only_block`); the output is cleared first, so ROIs of no image still give zeros.
import { defineKernel, rt, WGSL_LINEAR_WORKGROUP } from '../define-kernel';
import { itemsPerBinding, overBindingLimit, windowRange } from '../large';

const WG = 256;
/** Channels per backward thread. */
const CB = 16;

const ROI_PARAMS = {
  batch: 'u32', channels: 'u32', height: 'u32', width: 'u32',
  rois: 'u32', pooled_h: 'u32', pooled_w: 'u32', sampling_ratio: 'u32',
  spatial_scale: 'f32', aligned: 'u32', n0: 'u32', feat_off: 'u32',
  only_block: 'u32',
} as const;
const F32_READ = { type: 'f32', access: 'read' } as const;
const F32_RW = { type: 'f32', access: 'rw' } as const;

/** WGSL: the geometry of ROI k, computed in the reference's operation order. */
const ROI_GEOMETRY = /* wgsl */ `
struct Roi { batch: i32, start_w: f32, start_h: f32, bin_w: f32, bin_h: f32, grid_w: i32, grid_h: i32, count: f32 }
fn roi_geometry(k: u32) -> Roi {
  var r: Roi;
  let base = k * 5u;
  r.batch = i32(rois[base]);
  let offset = select(0.0, 0.5, p.aligned != 0u);
  r.start_w = rois[base + 1u] * p.spatial_scale - offset;
  r.start_h = rois[base + 2u] * p.spatial_scale - offset;
  let end_w = rois[base + 3u] * p.spatial_scale - offset;
  let end_h = rois[base + 4u] * p.spatial_scale - offset;
  var roi_w = end_w - r.start_w;
  var roi_h = end_h - r.start_h;
  if (p.aligned == 0u) { roi_w = max(roi_w, 1.0); roi_h = max(roi_h, 1.0); }
  r.bin_h = roi_h / f32(p.pooled_h);
  r.bin_w = roi_w / f32(p.pooled_w);
  if (p.sampling_ratio > 0u) {
    r.grid_h = i32(p.sampling_ratio);
    r.grid_w = i32(p.sampling_ratio);
  } else {
    r.grid_h = max(i32(ceil(roi_h / f32(p.pooled_h))), 0);
    r.grid_w = max(i32(ceil(roi_w / f32(p.pooled_w))), 0);
  }
  r.count = f32(max(r.grid_h * r.grid_w, 1));
  return r;
}
// Sample coordinate of sub-bin i in bin b (same expression order as the reference).
fn sample_coord(start: f32, b: i32, bin: f32, i: i32, grid: i32) -> f32 {
  return start + f32(b) * bin + (f32(i) + 0.5) * bin / f32(grid);
}
// Bilinear footprint along one axis: (low, high, weight_low, weight_high); valid = 0 when the
// sample lies outside [-1, size] (it then contributes nothing).
struct Axis { low: i32, high: i32, w_low: f32, w_high: f32, valid: bool }
fn bilinear_axis(v_in: f32, size: u32) -> Axis {
  var a: Axis;
  a.valid = !(v_in < -1.0 || v_in > f32(size));
  var v = max(v_in, 0.0);
  a.low = i32(v);
  if (a.low >= i32(size) - 1) {
    a.low = i32(size) - 1;
    a.high = a.low;
    v = f32(a.low);
  } else {
    a.high = a.low + 1;
  }
  let l = v - f32(a.low);
  a.w_low = 1.0 - l;
  a.w_high = l;
  return a;
}`;

function roiParams(batch: number, channels: number, height: number, width: number, rois: number, ph: number, pw: number, samplingRatio: number, scale: number, aligned: boolean, n0 = 0, featOff = 0, onlyBlock = false) {
  return {
    batch, channels, height, width,
    rois, pooled_h: ph, pooled_w: pw, sampling_ratio: samplingRatio,
    spatial_scale: scale, aligned, n0, feat_off: featOff, only_block: onlyBlock,
  };
}

const forwardKernel = defineKernel({
  name: 'roi_align.forward',
  bindings: { feat: F32_READ, rois: F32_READ, out: F32_RW },
  params: ROI_PARAMS,
  code: () => /* wgsl */ `
${ROI_GEOMETRY}
${WGSL_LINEAR_WORKGROUP}
// One thread per (roi, block of CB channels, ph, pw): sample positions and weights are computed
// once and applied to the CB channels.
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = linear_workgroup(wid, nwg) * ${WG}u + lid;
  let blocks = (p.channels + ${CB - 1}u) / ${CB}u;
  if (i >= p.rois * blocks * p.pooled_h * p.pooled_w) { return; }
  let pw = i32(i % p.pooled_w);
  let ph = i32((i / p.pooled_w) % p.pooled_h);
  let c0 = ((i / (p.pooled_w * p.pooled_h)) % blocks) * ${CB}u;
  let k = i / (p.pooled_w * p.pooled_h * blocks);
  let nc = min(${CB}u, p.channels - c0);
  let plane_out = p.pooled_h * p.pooled_w;
  let out_base = (k * p.channels + c0) * plane_out + u32(ph) * p.pooled_w + u32(pw);
  let r = roi_geometry(k);
  var acc: array<f32, ${CB}>;
  let b = r.batch - i32(p.n0);
  if (p.only_block != 0u && (b < 0 || b >= i32(p.batch))) { return; }
  if (b >= 0 && b < i32(p.batch)) {
    let hw = p.height * p.width;
    let plane = p.feat_off + (u32(b) * p.channels + c0) * hw;
    for (var iy = 0; iy < r.grid_h; iy++) {
      let ay = bilinear_axis(sample_coord(r.start_h, ph, r.bin_h, iy, r.grid_h), p.height);
      for (var ix = 0; ix < r.grid_w; ix++) {
        let ax = bilinear_axis(sample_coord(r.start_w, pw, r.bin_w, ix, r.grid_w), p.width);
        if (!ay.valid || !ax.valid) { continue; }
        let p1 = plane + u32(ay.low) * p.width + u32(ax.low);
        let p2 = plane + u32(ay.low) * p.width + u32(ax.high);
        let p3 = plane + u32(ay.high) * p.width + u32(ax.low);
        let p4 = plane + u32(ay.high) * p.width + u32(ax.high);
        let w1 = ay.w_low * ax.w_low;
        let w2 = ay.w_low * ax.w_high;
        let w3 = ay.w_high * ax.w_low;
        let w4 = ay.w_high * ax.w_high;
        for (var cc = 0u; cc < nc; cc++) {
          let o = cc * hw;
          acc[cc] += w1 * feat[p1 + o] + w2 * feat[p2 + o] + w3 * feat[p3 + o] + w4 * feat[p4 + o];
        }
      }
    }
  }
  // A ROI with a batch index outside [0, N) gives zeros.
  for (var cc = 0u; cc < nc; cc++) { out[out_base + cc * plane_out] = acc[cc] / r.count; }
}`,
});

export function launchRoiAlignForward(
  feat: GPUBuffer,
  rois: GPUBuffer,
  out: GPUBuffer,
  dims: { batch: number; channels: number; height: number; width: number; rois: number; pooledH: number; pooledW: number },
  spatialScale: number,
  samplingRatio: number,
  aligned: boolean,
): void {
  const d = dims;
  const n = d.rois * Math.ceil(d.channels / CB) * d.pooledH * d.pooledW;
  if (overBindingLimit(feat)) {
    rt().clearBuffer(out, 0, d.rois * d.channels * d.pooledH * d.pooledW * 4);
    imageBlocks(d, feat, (n0, nb, w) => {
      const p = roiParams(nb, d.channels, d.height, d.width, d.rois, d.pooledH, d.pooledW, samplingRatio, spatialScale, aligned, n0, w.offset, true);
      forwardKernel.dispatch({}, { feat: w.buffer, rois, out }, p, Math.ceil(n / WG));
    });
    return;
  }
  const p = roiParams(d.batch, d.channels, d.height, d.width, d.rois, d.pooledH, d.pooledW, samplingRatio, spatialScale, aligned);
  forwardKernel.dispatch({}, { feat, rois, out }, p, Math.ceil(n / WG));
}

// Per-image ROI lists: list[0..N) = counts, list[N + n*K + j] = j-th ROI of image n (ascending).
const listKernel = defineKernel({
  name: 'roi_align.image_lists',
  bindings: { rois: F32_READ, lists: { type: 'u32', access: 'rw' } },
  params: ROI_PARAMS,
  code: () => /* wgsl */ `
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let n = gid.x;
  if (n >= p.batch) { return; }
  var count = 0u;
  for (var k = 0u; k < p.rois; k++) {
    if (i32(rois[k * 5u]) == i32(n + p.n0)) {
      lists[p.batch + n * p.rois + count] = k;
      count++;
    }
  }
  lists[n] = count;
}`,
});

const backwardKernel = defineKernel({
  name: 'roi_align.backward_gather',
  bindings: { grad_out: F32_READ, rois: F32_READ, lists: { type: 'u32', access: 'read' }, grad_in: F32_RW },
  params: ROI_PARAMS,
  code: () => /* wgsl */ `
${ROI_GEOMETRY}
${WGSL_LINEAR_WORKGROUP}
// The weight that a sample at coordinate v gives to pixel index q along one axis.
fn axis_weight(a: Axis, q: i32) -> f32 {
  var w = 0.0;
  if (a.low == q) { w += a.w_low; }
  if (a.high == q) { w += a.w_high; }
  return w;
}
// Sample indices t (= bin * grid + sub) whose footprint may include pixel q: a window around the
// continuous solution, widened by one on each side (the exact test is axis_weight).
fn sample_range(q: i32, size: u32, start: f32, bin: f32, grid: i32, bins: u32) -> vec2i {
  let total = i32(bins) * grid;
  let step = bin / f32(grid);
  var lo = f32(q - 1);
  var hi = f32(q + 1);
  if (q == 0) { lo = -1.0; }
  if (q == i32(size) - 1) { hi = f32(size); }
  let t0 = clamp(floor((lo - start) / step - 0.5) - 1.0, 0.0, f32(total));
  let t1 = clamp(ceil((hi - start) / step - 0.5) + 1.0, -1.0, f32(total - 1));
  return vec2i(i32(t0), i32(t1));
}
// One thread per (image, block of CB channels, y, x): the ROI walk and the sample weights are
// shared by the CB channels, which each keep their own accumulator.
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = linear_workgroup(wid, nwg) * ${WG}u + lid;
  let blocks = (p.channels + ${CB - 1}u) / ${CB}u;
  if (i >= p.batch * blocks * p.height * p.width) { return; }
  let xq = i32(i % p.width);
  let yq = i32((i / p.width) % p.height);
  let c0 = ((i / (p.width * p.height)) % blocks) * ${CB}u;
  let n = i / (p.width * p.height * blocks);
  let nc = min(${CB}u, p.channels - c0);
  let count = lists[n];
  var acc: array<f32, ${CB}>;
  for (var j = 0u; j < count; j++) {
    let k = lists[p.batch + n * p.rois + j];
    let r = roi_geometry(k);
    if (r.grid_h <= 0 || r.grid_w <= 0) { continue; }
    let ty = sample_range(yq, p.height, r.start_h, r.bin_h, r.grid_h, p.pooled_h);
    let tx = sample_range(xq, p.width, r.start_w, r.bin_w, r.grid_w, p.pooled_w);
    if (ty.x > ty.y || tx.x > tx.y) { continue; }
    let plane = p.pooled_h * p.pooled_w;
    let g_base = (k * p.channels + c0) * plane;
    for (var t = ty.x; t <= ty.y; t++) {
      let ph = t / r.grid_h;
      let ay = bilinear_axis(sample_coord(r.start_h, ph, r.bin_h, t % r.grid_h, r.grid_h), p.height);
      let wy = axis_weight(ay, yq);
      if (!ay.valid || wy == 0.0) { continue; }
      for (var s = tx.x; s <= tx.y; s++) {
        let pw = s / r.grid_w;
        let ax = bilinear_axis(sample_coord(r.start_w, pw, r.bin_w, s % r.grid_w, r.grid_w), p.width);
        let wx = axis_weight(ax, xq);
        if (!ax.valid || wx == 0.0) { continue; }
        let wgt = (wy * wx) / r.count;
        let g_off = g_base + u32(ph) * p.pooled_w + u32(pw);
        for (var cc = 0u; cc < nc; cc++) { acc[cc] += grad_out[g_off + cc * plane] * wgt; }
      }
    }
  }
  let hw = p.height * p.width;
  let out_base = p.feat_off + (n * p.channels + c0) * hw + u32(yq) * p.width + u32(xq);
  for (var cc = 0u; cc < nc; cc++) { grad_in[out_base + cc * hw] = acc[cc]; }
}`,
});

/** Gradient w.r.t. the features (deterministic gather; `lists` is scratch of N + N*K u32). */
export function launchRoiAlignBackward(
  gradOut: GPUBuffer,
  rois: GPUBuffer,
  gradIn: GPUBuffer,
  dims: { batch: number; channels: number; height: number; width: number; rois: number; pooledH: number; pooledW: number },
  spatialScale: number,
  samplingRatio: number,
  aligned: boolean,
): void {
  const d = dims;
  const runtime = rt();
  if (overBindingLimit(gradIn)) {
    // Per block of images: the lists and the gather of the block's images only.
    imageBlocks(d, gradIn, (n0, nb, w) => {
      const p = roiParams(nb, d.channels, d.height, d.width, d.rois, d.pooledH, d.pooledW, samplingRatio, spatialScale, aligned, n0, w.offset);
      const lists = runtime.pool.acquire(Math.max(16, (nb + nb * d.rois) * 4), GPUBufferUsage.STORAGE, 'roi_align.lists');
      listKernel.dispatch({}, { rois, lists }, p, Math.ceil(nb / 64));
      const n = nb * Math.ceil(d.channels / CB) * d.height * d.width;
      backwardKernel.dispatch({}, { grad_out: gradOut, rois, lists, grad_in: w.buffer }, p, Math.ceil(n / WG));
      runtime.pool.release(lists);
    });
    return;
  }
  const p = roiParams(d.batch, d.channels, d.height, d.width, d.rois, d.pooledH, d.pooledW, samplingRatio, spatialScale, aligned);
  const lists = runtime.pool.acquire(Math.max(16, (d.batch + d.batch * d.rois) * 4), GPUBufferUsage.STORAGE, 'roi_align.lists');
  listKernel.dispatch({}, { rois, lists }, p, Math.ceil(d.batch / 64));
  const n = d.batch * Math.ceil(d.channels / CB) * d.height * d.width;
  backwardKernel.dispatch({}, { grad_out: gradOut, rois, lists, grad_in: gradIn }, p, Math.ceil(n / WG));
  runtime.pool.release(lists);
}

/** Blocks of images of the [N, C, H, W] features `buf` (dense from element 0) that fit a binding. */
function imageBlocks(d: { batch: number; channels: number; height: number; width: number }, buf: GPUBuffer, fn: (n0: number, nb: number, w: { buffer: GPUBuffer; offset: number }) => void): void {
  const image = d.channels * d.height * d.width;
  const nb = itemsPerBinding(image * 4);
  if (nb < 1) throw new Error(`roi_align: one image [${d.channels}, ${d.height}, ${d.width}] is over the ${rt().bindingLimit}-byte storage binding limit`);
  for (let n0 = 0; n0 < d.batch; n0 += nb) {
    const k = Math.min(nb, d.batch - n0);
    fn(n0, k, windowRange(buf, n0 * image, k * image, 4));
  }
}
