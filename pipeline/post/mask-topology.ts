// Two mask rules of the original submission notebooks, on mask crops placed in their image:
// - fillHoles: background pixels of the crop not 4-connected to the crop's border become
//   foreground (scipy's binary_fill_holes on the region's bounding box, i.e. skimage's
//   regionprops `filled_image`, which mistag's single-model `get_masks` puts in place of a mask).
// - contourCount: the number of 0.5 iso-contours scikit-image's `find_contours` returns for the
//   mask in the whole image (marching squares, fully_connected='low': background 8-connected at
//   saddles, so diagonal-only foreground contacts are separate pieces), without padding, so that a
//   mask touching the image border in two separate places gives two open pieces. The "chopped
//   cells" check of the TTA submission path keeps a mask only when this count is exactly 1:
//   it rejects masks in several pieces, masks with a hole, and empty masks.
import { tightenCrop, type MaskCrop } from '../../structures/mask-crop';

export function fillHoles(m: MaskCrop): MaskCrop {
  const { width: w, height: h } = m;
  const outside = new Uint8Array(w * h);
  const stack: number[] = [];
  const seed = (i: number) => {
    if (!m.data[i] && !outside[i]) {
      outside[i] = 1;
      stack.push(i);
    }
  };
  for (let x = 0; x < w; x++) {
    seed(x);
    seed((h - 1) * w + x);
  }
  for (let y = 0; y < h; y++) {
    seed(y * w);
    seed(y * w + w - 1);
  }
  while (stack.length) {
    const i = stack.pop()!;
    const x = i % w;
    if (x > 0) seed(i - 1);
    if (x < w - 1) seed(i + 1);
    if (i >= w) seed(i - w);
    if (i + w < w * h) seed(i + w);
  }
  const data = new Uint8Array(w * h);
  for (let i = 0; i < data.length; i++) data[i] = outside[i] ? 0 : 1;
  return { ...m, data };
}

export function contourCount(mask: MaskCrop): number {
  const m = tightenCrop(mask);
  if (m.width === 0 || m.height === 0) return 0;
  const W = m.imageWidth;
  const H = m.imageHeight;
  // the crop and one pixel of background around it, except beyond the image border
  const ex0 = Math.max(0, m.x0 - 1);
  const ey0 = Math.max(0, m.y0 - 1);
  const ex1 = Math.min(W, m.x0 + m.width + 1);
  const ey1 = Math.min(H, m.y0 + m.height + 1);
  const gw = ex1 - ex0;
  const gh = ey1 - ey0;
  const v = (y: number, x: number): number => {
    const cy = y + ey0 - m.y0;
    const cx = x + ex0 - m.x0;
    return cy >= 0 && cy < m.height && cx >= 0 && cx < m.width && m.data[cy * m.width + cx] ? 1 : 0;
  };
  // nodes: crossings on horizontal edges (y, x)-(y, x+1) -> 2*(y*gw+x), on vertical edges (y, x)-(y+1, x) -> 2*(y*gw+x)+1
  const parent = new Map<number, number>();
  const find = (a: number): number => {
    let r = a;
    while (parent.get(r) !== r) r = parent.get(r)!;
    let c = a;
    while (c !== r) {
      const n = parent.get(c)!;
      parent.set(c, r);
      c = n;
    }
    return r;
  };
  const node = (a: number) => {
    if (!parent.has(a)) parent.set(a, a);
  };
  const join = (a: number, b: number) => {
    node(a);
    node(b);
    const ra = find(a);
    const rb = find(b);
    if (ra !== rb) parent.set(ra, rb);
  };
  for (let y = 0; y + 1 < gh; y++) {
    for (let x = 0; x + 1 < gw; x++) {
      const tl = v(y, x);
      const tr = v(y, x + 1);
      const br = v(y + 1, x + 1);
      const bl = v(y + 1, x);
      const top = 2 * (y * gw + x);
      const bottom = 2 * ((y + 1) * gw + x);
      const left = 2 * (y * gw + x) + 1;
      const right = 2 * (y * gw + x + 1) + 1;
      const cross: number[] = [];
      if (tl !== tr) cross.push(top);
      if (tr !== br) cross.push(right);
      if (br !== bl) cross.push(bottom);
      if (bl !== tl) cross.push(left);
      if (cross.length === 2) join(cross[0]!, cross[1]!);
      else if (cross.length === 4) {
        // saddle; background connected through the cell: each foreground corner cut off on its own
        if (tl) {
          join(top, left);
          join(right, bottom);
        } else {
          join(top, right);
          join(bottom, left);
        }
      }
    }
  }
  const roots = new Set<number>();
  for (const k of parent.keys()) roots.add(find(k));
  return roots.size;
}
