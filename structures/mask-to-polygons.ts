// Polygon segmentation for COCO from a mask: outer contours at level 0.5, simplified with tolerance
// 1 px, in COCO's continuous coordinates where pixel (x, y) covers [x, x+1) x [y, y+1), i.e. the
// contour (through pixel-centre coordinates) shifted by +0.5. mistag's notebook shifted by -1
// instead, placing polygons 1.5 px up-left of their masks; this is the corrected placement. Holes
// cannot be expressed as COCO polygons and are filled.
import type { MaskCrop } from './mask-crop';
import { findContours, simplifyPolyline } from './contours';

export function maskToPolygons(crop: MaskCrop, tolerance = 1.0): number[][] {
  const polys: number[][] = [];
  for (const c of findContours(crop)) {
    if (!c.outer || c.points.length <= 2) continue;
    const closed = [...c.points, c.points[0]!];
    const simple = simplifyPolyline(closed, tolerance);
    simple.pop(); // drop the repeated closing point
    if (simple.length < 3) continue;
    const flat: number[] = [];
    for (const [x, y] of simple) flat.push(Math.max(0, crop.x0 + x + 0.5), Math.max(0, crop.y0 + y + 0.5));
    polys.push(flat);
  }
  return polys;
}
