// The look of a Sartorius phase-contrast image: mid-gray background near 128 with faint horizontal
// striping and a slow illumination drift, cells as darker textured bodies inside thin bright halos,
// faint unannotated neurites, and sensor noise. Deterministic for a given Rng state.
import type { Rng } from '../../../runtime/rng';
import type { MaskCrop } from '../../../structures/mask-crop';

/** Separable box blur of a float field, `passes` times (approximates a Gaussian). */
function boxBlur(f: Float32Array, w: number, h: number, radius: number, passes: number): void {
  const tmp = new Float32Array(f.length);
  const norm = 1 / (2 * radius + 1);
  for (let p = 0; p < passes; p++) {
    for (let y = 0; y < h; y++) {
      let acc = 0;
      for (let x = -radius; x <= radius; x++) acc += f[y * w + Math.min(w - 1, Math.max(0, x))]!;
      for (let x = 0; x < w; x++) {
        tmp[y * w + x] = acc * norm;
        acc += f[y * w + Math.min(w - 1, x + radius + 1)]! - f[y * w + Math.max(0, x - radius)]!;
      }
    }
    for (let x = 0; x < w; x++) {
      let acc = 0;
      for (let y = -radius; y <= radius; y++) acc += tmp[Math.min(h - 1, Math.max(0, y)) * w + x]!;
      for (let y = 0; y < h; y++) {
        f[y * w + x] = acc * norm;
        acc += tmp[Math.min(h - 1, y + radius + 1) * w + x]! - tmp[Math.max(0, y - radius) * w + x]!;
      }
    }
  }
}

export interface RenderCell {
  mask: MaskCrop;
  /** Body darkening in gray levels and halo brightness. */
  darkness: number;
  halo: number;
}

export interface Neurite {
  points: [number, number][];
  width: number;
}

export function renderImage(rng: Rng, width: number, height: number, cells: readonly RenderCell[], neurites: readonly Neurite[]): Uint8Array {
  const img = new Float32Array(width * height);
  // slow illumination drift: a tilted plane plus one broad bump
  const gx = rng.normal(0, 6) / width;
  const gy = rng.normal(0, 6) / height;
  const bx = rng.uniform(0, width);
  const by = rng.uniform(0, height);
  const bAmp = rng.normal(0, 4);
  const bR2 = (0.6 * Math.max(width, height)) ** 2;
  // faint horizontal striping: a periodic row pattern plus per-row jitter
  const period = rng.uniform(3, 7);
  const stripeAmp = rng.uniform(0.8, 1.8);
  const rowOffset = new Float32Array(height);
  for (let y = 0; y < height; y++) rowOffset[y] = stripeAmp * Math.sin((2 * Math.PI * y) / period) + rng.normal(0, 0.6);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const d2 = (x - bx) ** 2 + (y - by) ** 2;
      img[y * width + x] = 128 + gx * (x - width / 2) + gy * (y - height / 2) + bAmp * Math.exp(-d2 / bR2) + rowOffset[y]!;
    }
  }
  // texture: blurred noise, strong inside cell bodies
  const texture = new Float32Array(width * height);
  for (let i = 0; i < texture.length; i++) texture[i] = rng.normal(0, 1);
  boxBlur(texture, width, height, 1, 2);

  // halos: distance rings outside each mask (up to 3 px), bodies: darker + textured
  const halo = new Float32Array(width * height);
  for (const c of cells) {
    const m = c.mask;
    const pad = 3;
    const w = m.width + 2 * pad;
    const h = m.height + 2 * pad;
    const dist = new Uint8Array(w * h).fill(255);
    for (let y = 0; y < m.height; y++) for (let x = 0; x < m.width; x++) if (m.data[y * m.width + x]) dist[(y + pad) * w + x + pad] = 0;
    for (let ring = 1; ring <= pad; ring++) {
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) {
          if (dist[y * w + x] !== 255) continue;
          const near =
            (x > 0 && dist[y * w + x - 1] === ring - 1) ||
            (x < w - 1 && dist[y * w + x + 1] === ring - 1) ||
            (y > 0 && dist[(y - 1) * w + x] === ring - 1) ||
            (y < h - 1 && dist[(y + 1) * w + x] === ring - 1);
          if (near) dist[y * w + x] = ring;
        }
      }
    }
    for (let y = 0; y < h; y++) {
      const iy = m.y0 + y - pad;
      if (iy < 0 || iy >= height) continue;
      for (let x = 0; x < w; x++) {
        const ix = m.x0 + x - pad;
        if (ix < 0 || ix >= width) continue;
        const d = dist[y * w + x]!;
        const p = iy * width + ix;
        if (d === 0) img[p] = img[p]! - c.darkness + 6 * texture[p]! * 2.2;
        else if (d !== 255) halo[p] = Math.max(halo[p]!, (c.halo * (pad + 1 - d)) / pad);
      }
    }
  }
  for (let i = 0; i < img.length; i++) img[i] = img[i]! + halo[i]!;
  // faint unannotated neurites (thin bright-dark lines)
  for (const n of neurites) {
    for (let k = 0; k + 1 < n.points.length; k++) {
      const [ax, ay] = n.points[k]!;
      const [bx2, by2] = n.points[k + 1]!;
      const len = Math.hypot(bx2 - ax, by2 - ay);
      for (let s = 0; s <= len; s += 0.5) {
        const x = Math.round(ax + ((bx2 - ax) * s) / len);
        const y = Math.round(ay + ((by2 - ay) * s) / len);
        if (x >= 0 && x < width && y >= 0 && y < height) img[y * width + x] = img[y * width + x]! + 7;
      }
    }
  }
  const out = new Uint8Array(width * height);
  for (let i = 0; i < out.length; i++) {
    const v = Math.round(img[i]! + rng.normal(0, 2.5));
    out[i] = v < 0 ? 0 : v > 255 ? 255 : v;
  }
  return out;
}
