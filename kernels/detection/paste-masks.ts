// Paste R x R mask probabilities into H x W images at box positions, as Detectron2's
// paste_masks_in_image / _do_paste_mask: for output pixel (px, py) the grid coordinate is
// ((p + 0.5) - x0) / (x1 - x0) * 2 - 1 (f32, in torch's operation order), sampled by
// grid_sample(bilinear, align_corners=False, zero padding), then thresholded (>= threshold).
// Two launchers share the sampling code (so both give the same bits):
//   launchPasteMasks        one thread per pixel of the full [N, H, W] output (u32 0/1 or f32),
//                           in blocks of whole images when the output is over one storage binding;
//   launchPasteMasksPacked  only each detection's pixel region, 32 binary pixels per u32 word,
//                           one thread per word (the readback is 1/32 of the region's pixels).
import { defineKernel, WGSL_LINEAR_WORKGROUP } from '../define-kernel';
import { bindingLimit, overBindingLimit, rowBlocks, windowRange } from '../large';

const WG = 256;

// The uniform fields the sampler reads (mask_h, mask_w, cpu_region) are declared under the same
// names by both kernels.
const WGSL_SAMPLE = /* wgsl */ `
fn tap(base: u32, y: i32, x: i32) -> f32 {
  if (y < 0 || x < 0 || y >= i32(p.mask_h) || x >= i32(p.mask_w)) { return 0.0; }
  return masks[base + u32(y) * p.mask_w + u32(x)];
}
fn sample_mask(n: u32, px: u32, py: u32) -> f32 {
  let b = boxes[n];
  // Detectron2's CPU path pastes only inside [floor(x0) - 1, ceil(x1) + 1) (clamped to the image).
  let outside = p.cpu_region != 0u && (f32(px) < max(floor(b.x) - 1.0, 0.0) || f32(px) >= ceil(b.z) + 1.0 ||
                                       f32(py) < max(floor(b.y) - 1.0, 0.0) || f32(py) >= ceil(b.w) + 1.0);
  if (outside) { return 0.0; }
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
  return tap(base, y0, x0) * nw + tap(base, y0, x0 + 1) * ne + tap(base, y0 + 1, x0) * sw + tap(base, y0 + 1, x0 + 1) * se;
}`;

const pasteKernel = defineKernel({
  name: 'paste_masks',
  variants: { binary: [false, true] },
  bindings: {
    masks: { type: 'f32', access: 'read' },
    boxes: { type: 'vec4f', access: 'read' },
    out: { type: (v) => (v.binary ? 'u32' : 'f32'), access: 'rw' },
  },
  params: { count: 'u32', first: 'u32', out_off: 'u32', mask_h: 'u32', mask_w: 'u32', img_h: 'u32', img_w: 'u32', cpu_region: 'u32', threshold: 'f32' },
  code: ({ binary }) => /* wgsl */ `
${WGSL_LINEAR_WORKGROUP}
${WGSL_SAMPLE}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let e = linear_workgroup(wid, nwg) * ${WG}u + lid;
  if (e >= p.count * p.img_h * p.img_w) { return; }
  let px = e % p.img_w;
  let py = (e / p.img_w) % p.img_h;
  let n = p.first + e / (p.img_w * p.img_h);
  let v = sample_mask(n, px, py);
  ${binary ? 'out[p.out_off + e] = select(0u, 1u, v >= p.threshold);' : 'out[p.out_off + e] = v;'}
}`,
});

// regions[2j] = (x0, y0, width, height) of detection j's pixel region; regions[2j + 1].x = the
// global index of its first word (non-decreasing; a region starts on a word boundary, bit b of a
// word is region pixel 32 * k + b in row-major order). A chunk covers detections
// [first, first + count) and words [word_base, word_base + words).
const packedKernel = defineKernel({
  name: 'paste_masks.packed',
  bindings: {
    masks: { type: 'f32', access: 'read' },
    boxes: { type: 'vec4f', access: 'read' },
    regions: { type: 'vec4u', access: 'read' },
    out: { type: 'u32', access: 'rw' },
  },
  params: { first: 'u32', count: 'u32', words: 'u32', word_base: 'u32', mask_h: 'u32', mask_w: 'u32', cpu_region: 'u32', threshold: 'f32' },
  code: () => /* wgsl */ `
${WGSL_LINEAR_WORKGROUP}
${WGSL_SAMPLE}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let w = linear_workgroup(wid, nwg) * ${WG}u + lid;
  if (w >= p.words) { return; }
  let g = p.word_base + w;
  // The last detection of the chunk whose first word is <= g (empty regions share their
  // successor's start and are skipped by taking the last).
  var lo = p.first;
  var hi = p.first + p.count - 1u;
  while (lo < hi) {
    let mid = (lo + hi + 1u) / 2u;
    if (regions[2u * mid + 1u].x <= g) { lo = mid; } else { hi = mid - 1u; }
  }
  let r = regions[2u * lo];
  let k0 = (g - regions[2u * lo + 1u].x) * 32u;
  let npx = min(r.z * r.w - k0, 32u);
  var cx = k0 % r.z;
  var cy = k0 / r.z;
  var bits = 0u;
  for (var b = 0u; b < npx; b++) {
    if (sample_mask(lo, r.x + cx, r.y + cy) >= p.threshold) { bits |= 1u << b; }
    cx += 1u;
    if (cx == r.z) { cx = 0u; cy += 1u; }
  }
  out[w] = bits;
}`,
});

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
  const params = { mask_h: maskH, mask_w: maskW, img_h: imgH, img_w: imgW, cpu_region: cpuRegion, threshold: threshold ?? 0 };
  const variant = { binary: threshold !== null };
  if (!overBindingLimit(masks, boxes, out)) {
    pasteKernel.dispatch(variant, { masks, boxes, out }, { count, first: 0, out_off: 0, ...params }, Math.ceil((count * imgH * imgW) / WG));
    return;
  }
  // The [N, H, W] output over one storage binding: blocks of whole images through binding windows.
  if (overBindingLimit(masks, boxes)) throw new Error(`pasteMasksInImage: ${count} masks of ${maskH}x${maskW} are over the ${bindingLimit()}-byte storage binding limit (paste fewer at a time)`);
  const plane = imgH * imgW;
  for (const { start, count: n } of rowBlocks('pasteMasksInImage', count, plane * 4)) {
    const ow = windowRange(out, start * plane, n * plane);
    pasteKernel.dispatch(variant, { masks, boxes, out: ow.buffer }, { count: n, first: start, out_off: ow.offset, ...params }, Math.ceil((n * plane) / WG));
  }
}

/**
 * Binary paste of detections [first, first + count) into their regions, bit-packed: out gets the
 * chunk's `words` u32 words starting at global word `wordBase`. masks [N, mh, mw] and boxes [N, 4]
 * dense from element 0; regions as described above (2N vec4u). count >= 1.
 */
export function launchPasteMasksPacked(
  masks: GPUBuffer,
  boxes: GPUBuffer,
  regions: GPUBuffer,
  out: GPUBuffer,
  first: number,
  count: number,
  wordBase: number,
  words: number,
  maskH: number,
  maskW: number,
  threshold: number,
  cpuRegion: boolean,
): void {
  if (count < 1 || words < 1) throw new Error(`launchPasteMasksPacked: empty chunk (${count} detections, ${words} words)`);
  packedKernel.dispatch(
    {},
    { masks, boxes, regions, out },
    { first, count, words, word_base: wordBase, mask_h: maskH, mask_w: maskW, cpu_region: cpuRegion, threshold },
    Math.ceil(words / WG),
  );
}
