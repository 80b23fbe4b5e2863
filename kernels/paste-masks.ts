// Paste R x R mask probabilities into H x W images at box positions, as Detectron2's
// paste_masks_in_image / _do_paste_mask: for output pixel (px, py) the grid coordinate is
// ((p + 0.5) - x0) / (x1 - x0) * 2 - 1 (f32, in torch's operation order), sampled by
// grid_sample(bilinear, align_corners=False, zero padding), then thresholded (>= threshold).
// One thread per output pixel of each mask.
import { type KernelDef, Params, rt, WGSL_LINEAR_WORKGROUP } from '../core/runtime';

const WG = 256;

function pasteDef(binary: boolean): KernelDef {
  return {
    key: `paste_masks.${binary ? 'binary' : 'soft'}`,
    bindings: ['read', 'read', 'rw'],
    uniform: true,
    code: /* wgsl */ `
@group(0) @binding(0) var<storage, read> masks: array<f32>;
@group(0) @binding(1) var<storage, read> boxes: array<vec4f>;
@group(0) @binding(2) var<storage, read_write> out: array<${binary ? 'u32' : 'f32'}>;
struct P { count: u32, mask_h: u32, mask_w: u32, img_h: u32, img_w: u32, cpu_region: u32, threshold: f32, _a: u32 }
@group(0) @binding(3) var<uniform> p: P;
${WGSL_LINEAR_WORKGROUP}
fn tap(base: u32, y: i32, x: i32) -> f32 {
  if (y < 0 || x < 0 || y >= i32(p.mask_h) || x >= i32(p.mask_w)) { return 0.0; }
  return masks[base + u32(y) * p.mask_w + u32(x)];
}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let e = linear_workgroup(wid, nwg) * ${WG}u + lid;
  if (e >= p.count * p.img_h * p.img_w) { return; }
  let px = e % p.img_w;
  let py = (e / p.img_w) % p.img_h;
  let n = e / (p.img_w * p.img_h);
  let b = boxes[n];
  var v = 0.0;
  // Detectron2's CPU path pastes only inside [floor(x0) - 1, ceil(x1) + 1) (clamped to the image).
  let outside = p.cpu_region != 0u && (f32(px) < max(floor(b.x) - 1.0, 0.0) || f32(px) >= ceil(b.z) + 1.0 ||
                                       f32(py) < max(floor(b.y) - 1.0, 0.0) || f32(py) >= ceil(b.w) + 1.0);
  if (!outside) {
    let gx = (f32(px) + 0.5 - b.x) / (b.z - b.x) * 2.0 - 1.0;
    let gy = (f32(py) + 0.5 - b.y) / (b.w - b.y) * 2.0 - 1.0;
    let ix = ((gx + 1.0) * f32(p.mask_w) - 1.0) / 2.0;
    let iy = ((gy + 1.0) * f32(p.mask_h) - 1.0) / 2.0;
    let fx = floor(ix);
    let fy = floor(iy);
    let x0 = i32(fx);
    let y0 = i32(fy);
    let base = n * p.mask_h * p.mask_w;
    let nw = (fx + 1.0 - ix) * (fy + 1.0 - iy);
    let ne = (ix - fx) * (fy + 1.0 - iy);
    let sw = (fx + 1.0 - ix) * (iy - fy);
    let se = (ix - fx) * (iy - fy);
    v = tap(base, y0, x0) * nw + tap(base, y0, x0 + 1) * ne + tap(base, y0 + 1, x0) * sw + tap(base, y0 + 1, x0 + 1) * se;
  }
  ${binary ? 'out[e] = select(0u, 1u, v >= p.threshold);' : 'out[e] = v;'}
}`,
  };
}

const defs = new Map<boolean, KernelDef>();

/** masks [N, mh, mw] and boxes [N, 4] dense from element 0; out [N, H, W] (u32 0/1 or f32). */
export function launchPasteMasks(
  masks: GPUBuffer,
  boxes: GPUBuffer,
  out: GPUBuffer,
  count: number,
  maskH: number,
  maskW: number,
  imgH: number,
  imgW: number,
  threshold: number | null,
  cpuRegion: boolean,
): void {
  const binary = threshold !== null;
  let def = defs.get(binary);
  if (!def) defs.set(binary, (def = pasteDef(binary)));
  const p = new Params(8).u(count, maskH, maskW, imgH, imgW, cpuRegion ? 1 : 0).f(threshold ?? 0).u(0);
  rt().dispatch(def, [masks, boxes, out], p.bytes(), Math.ceil((count * imgH * imgW) / WG));
}
