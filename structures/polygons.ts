// COCO polygon rasterisation as Detectron2's mask targets use it: `polygons_to_bitmask`
// (pycocotools frPyObjects -> merge -> decode) and the per-polygon RLE areas CenterMask2's MaskIoU
// ratio sums. The rasteriser itself is pycocotools maskApi.c `rleFrPoly`, already ported exactly in
// structures/coco-rle.ts; this file only composes it the way detectron2 and centermask2 call it.
import { cocoRleArea, cocoRleFromPolygon, cocoRleMerge, decodeCocoRle } from './coco-rle';

/** One instance: a list of flat polygons [x0, y0, x1, y1, ...] (float64 coordinates). */
export type InstancePolygons = readonly (readonly number[])[];

/**
 * detectron2 `polygons_to_bitmask`: the union of the instance's polygons rasterised on an h x w
 * grid, row-major 0/1. No polygons give an all-zero mask (the COCO API rejects empty lists).
 */
export function polygonsToBitmask(polygons: InstancePolygons, height: number, width: number): Uint8Array {
  if (polygons.length === 0) return new Uint8Array(height * width);
  const rles = polygons.map((p) => cocoRleFromPolygon(p, height, width));
  return decodeCocoRle(cocoRleMerge(rles, false));
}

/**
 * `mask_utils.area(mask_utils.frPyObjects(polygons, h, w)).sum()`: each polygon rasterised on its
 * own (no union, so overlapping polygons count twice, as in CenterMask2) and the pixel counts summed.
 */
export function summedPolygonRasterArea(polygons: InstancePolygons, height: number, width: number): number {
  let a = 0;
  for (const p of polygons) a += cocoRleArea(cocoRleFromPolygon(p, height, width));
  return a;
}

/** detectron2 `polygon_area` summed over the instance's polygons (shoelace, float64). */
export function polygonsArea(polygons: InstancePolygons): number {
  let total = 0;
  for (const p of polygons) {
    const n = p.length >> 1;
    // 0.5 * |dot(x, roll(y, 1)) - dot(y, roll(x, 1))|
    let xy = 0;
    let yx = 0;
    for (let i = 0; i < n; i++) {
      const j = (i + n - 1) % n;
      xy += p[2 * i]! * p[2 * j + 1]!;
      yx += p[2 * i + 1]! * p[2 * j]!;
    }
    total += 0.5 * Math.abs(xy - yx);
  }
  return total;
}
