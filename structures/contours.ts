// Iso-contours at level 0.5 of a binary crop by marching squares (what scikit-image find_contours
// does on a mask, with foreground 4-connected at saddles), returned as closed loops. The crop is
// padded by one pixel so that every contour closes, including those touching the crop border.
// Coordinates are pixel centres (pixel (x, y) at integer x, y), relative to the crop.
import type { MaskCrop } from './mask-crop';

export interface Contour {
  /** Closed loop of [x, y] points (first point not repeated). */
  points: [number, number][];
  /** True for an outer boundary, false for the boundary of a hole. */
  outer: boolean;
}

export function findContours(crop: MaskCrop): Contour[] {
  const W = crop.width + 2;
  const H = crop.height + 2;
  const v = (y: number, x: number) =>
    y >= 1 && y <= crop.height && x >= 1 && x <= crop.width && crop.data[(y - 1) * crop.width + (x - 1)] ? 1 : 0;
  // Points on cell edges in doubled coordinates (2y, 2x); segments go from an "enter" crossing to
  // the next "exit" crossing clockwise around the cell, so loops get a consistent orientation.
  const next = new Map<number, number>();
  const key = (y2: number, x2: number) => y2 * (2 * W + 2) + x2;
  for (let y = 0; y < H - 1; y++) {
    for (let x = 0; x < W - 1; x++) {
      const c = [v(y, x), v(y, x + 1), v(y + 1, x + 1), v(y + 1, x)]; // tl, tr, br, bl (clockwise)
      const sum = c[0]! + c[1]! + c[2]! + c[3]!;
      if (sum === 0 || sum === 4) continue;
      // crossing on edge i (corner i -> corner i+1)
      const mids = [key(2 * y, 2 * x + 1), key(2 * y + 1, 2 * x + 2), key(2 * y + 2, 2 * x + 1), key(2 * y + 1, 2 * x)];
      const enters: number[] = [];
      const exits: number[] = [];
      for (let i = 0; i < 4; i++) {
        const a = c[i]!;
        const b = c[(i + 1) % 4]!;
        if (a === 0 && b === 1) enters.push(i);
        else if (a === 1 && b === 0) exits.push(i);
      }
      for (const e of enters) {
        // the first exit clockwise after this enter (the on-corners between them form one piece)
        let best = -1;
        for (let d = 1; d <= 4; d++) {
          const i = (e + d) % 4;
          if (exits.includes(i)) {
            best = i;
            break;
          }
        }
        next.set(mids[e]!, mids[best]!);
      }
    }
  }
  const contours: Contour[] = [];
  const seen = new Set<number>();
  const stride = 2 * W + 2;
  for (const start of next.keys()) {
    if (seen.has(start)) continue;
    const pts: [number, number][] = [];
    let k = start;
    let area2 = 0;
    do {
      seen.add(k);
      const y2 = Math.floor(k / stride);
      const x2 = k - y2 * stride;
      pts.push([x2 / 2 - 1, y2 / 2 - 1]); // undo the one-pixel pad
      k = next.get(k)!;
    } while (k !== start);
    for (let i = 0; i < pts.length; i++) {
      const [x1, y1] = pts[i]!;
      const [x2, y2] = pts[(i + 1) % pts.length]!;
      area2 += x1 * y2 - x2 * y1;
    }
    // With y pointing down, the enter->exit rule walks outer boundaries with a negative shoelace sum.
    contours.push({ points: pts, outer: area2 < 0 });
  }
  return contours;
}

function perpDist(p: [number, number], a: [number, number], b: [number, number]): number {
  const dx = b[0] - a[0];
  const dy = b[1] - a[1];
  const len = Math.hypot(dx, dy);
  if (len === 0) return Math.hypot(p[0] - a[0], p[1] - a[1]);
  return Math.abs(dy * p[0] - dx * p[1] + b[0] * a[1] - b[1] * a[0]) / len;
}

/** Douglas-Peucker simplification of an open polyline (endpoints kept). */
export function simplifyPolyline(pts: [number, number][], tolerance: number): [number, number][] {
  if (pts.length <= 2) return pts.slice();
  const keep = new Uint8Array(pts.length);
  keep[0] = keep[pts.length - 1] = 1;
  const stack: [number, number][] = [[0, pts.length - 1]];
  while (stack.length) {
    const [i, j] = stack.pop()!;
    let maxD = -1;
    let idx = -1;
    for (let k = i + 1; k < j; k++) {
      const d = perpDist(pts[k]!, pts[i]!, pts[j]!);
      if (d > maxD) {
        maxD = d;
        idx = k;
      }
    }
    if (idx >= 0 && maxD > tolerance) {
      keep[idx] = 1;
      stack.push([i, idx], [idx, j]);
    }
  }
  return pts.filter((_, k) => keep[k]);
}
