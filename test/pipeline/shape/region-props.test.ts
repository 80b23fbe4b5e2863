import { describe, expect, it } from 'vitest';
import type { MaskCrop } from '../../../structures/mask-crop';
import { regionProps } from '../../../pipeline/shape/region-props';
import { describe as stats, percentile } from '../../../pipeline/shape/statistics';

function crop(rows: string[]): MaskCrop {
  const h = rows.length;
  const w = rows[0]!.length;
  const data = Uint8Array.from(rows.join('').split(''), (c) => (c === '#' ? 1 : 0));
  return { imageWidth: 100, imageHeight: 100, x0: 3, y0: 4, width: w, height: h, data };
}

describe('region properties', () => {
  it('rectangle: axes 4*sqrt((n^2-1)/12), solidity 1, extent 1', () => {
    const f = regionProps(crop(['#######', '#######', '#######']))!;
    expect(f.area).toBe(21);
    expect(f.major_axis_length).toBeCloseTo(4 * Math.sqrt((49 - 1) / 12), 12);
    expect(f.minor_axis_length).toBeCloseTo(4 * Math.sqrt((9 - 1) / 12), 12);
    expect(f.axis_ratio).toBeCloseTo(Math.sqrt(8 / 48), 12);
    expect(f.solidity).toBe(1);
    expect(f.extent).toBe(1);
  });

  it('L shape: extent 5/9 and a convex area of 8 pixel centres (skimage convex_hull_image)', () => {
    const f = regionProps(crop(['#..', '#..', '###']))!;
    expect(f.area).toBe(5);
    expect(f.extent).toBeCloseTo(5 / 9, 12);
    // hull of the pixel corners contains every centre except the top-right one
    expect(f.solidity).toBeCloseTo(5 / 8, 12);
  });

  it('empty mask has no properties; a single pixel has zero axes and ratio 0', () => {
    expect(regionProps(crop(['...']))).toBeNull();
    const one = regionProps(crop(['#']))!;
    expect(one.major_axis_length).toBe(0);
    expect(one.axis_ratio).toBe(0);
  });

  it('percentiles interpolate linearly like numpy; std is the sample std', () => {
    expect(percentile([1, 2, 3, 4], 50)).toBe(2.5);
    expect(percentile([10, 20], 1)).toBeCloseTo(10.1, 12);
    const s = stats([2, 4, 4, 4, 5, 5, 7, 9]);
    expect(s.mean).toBe(5);
    expect(s.std).toBeCloseTo(Math.sqrt(32 / 7), 12);
    expect(s.p99).toBeCloseTo(8.86, 12);
  });
});
