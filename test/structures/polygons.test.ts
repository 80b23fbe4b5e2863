import { describe, expect, it } from 'vitest';
import { cocoRleArea, cocoRleFromPolygon, cocoRleIou, cocoRleMerge, cropToCocoRle } from '../../structures/coco-rle';
import type { MaskCrop } from '../../structures/mask-crop';
import { findContours } from '../../structures/contours';
import { maskToPolygons } from '../../structures/mask-to-polygons';

function crop(rows: string[], x0 = 4, y0 = 3): MaskCrop {
  const data = Uint8Array.from(rows.join('').split(''), (c) => (c === '#' ? 1 : 0));
  return { imageWidth: 20, imageHeight: 16, x0, y0, width: rows[0]!.length, height: rows.length, data };
}

describe('mask polygons', () => {
  it('places polygons on their masks (COCO pixel (x,y) = [x,x+1)); the notebook\'s -1 shift is clearly worse', () => {
    const c = crop(['..###..', '.#####.', '#######', '#######', '.#####.', '..###..']);
    const polys = maskToPolygons(c);
    expect(polys.length).toBe(1);
    const iouOf = (shift: number) => {
      const rle = cocoRleMerge(polys.map((p) => cocoRleFromPolygon(p.map((v) => v + shift), 16, 20)));
      return cocoRleIou([rle], [cropToCocoRle(c)], [false])[0]![0]!;
    };
    // marching-squares corners are cut diagonally, so a few boundary pixels are lost
    expect(iouOf(0)).toBeGreaterThan(0.7);
    expect(iouOf(-1.5)).toBeLessThan(iouOf(0) - 0.2);
    expect(cocoRleArea(cocoRleFromPolygon(polys[0]!, 16, 20))).toBeLessThanOrEqual(32);
  });

  it('finds outer boundaries and holes separately, and separate pieces as separate loops', () => {
    const ring = findContours(crop(['###', '#.#', '###']));
    expect(ring.filter((c) => c.outer).length).toBe(1);
    expect(ring.filter((c) => !c.outer).length).toBe(1);
    // diagonal neighbours are separate pieces (foreground 4-connected, as find_contours)
    const diag = findContours(crop(['#.', '.#']));
    expect(diag.filter((c) => c.outer).length).toBe(2);
  });
});
