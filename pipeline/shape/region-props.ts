// Shape features of one binary instance, as scikit-image regionprops computes them for a single
// region: area (pixel count), major/minor axis lengths (4*sqrt of the eigenvalues of the inertia
// tensor built from second central moments, pixel centres at integer coordinates), axis ratio
// minor/major (major 0 -> 1, as the shape notebook), solidity (area / convex area) and extent
// (area / bounding-box area).
import type { MaskCrop } from '../../structures/mask-crop';
import { convexArea } from './convex-hull';

export interface ShapeFeatures {
  area: number;
  major_axis_length: number;
  minor_axis_length: number;
  axis_ratio: number;
  solidity: number;
  extent: number;
}

export const SHAPE_FEATURES: readonly (keyof ShapeFeatures)[] = [
  'area',
  'major_axis_length',
  'minor_axis_length',
  'axis_ratio',
  'solidity',
  'extent',
];

export function regionProps(crop: MaskCrop): ShapeFeatures | null {
  const { width, height, data } = crop;
  let n = 0;
  let sx = 0;
  let sy = 0;
  let minX = width;
  let maxX = -1;
  let minY = height;
  let maxY = -1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (!data[y * width + x]) continue;
      n++;
      sx += x;
      sy += y;
      if (x < minX) minX = x;
      if (x > maxX) maxX = x;
      if (y < minY) minY = y;
      maxY = y;
    }
  }
  if (n === 0) return null;
  const cx = sx / n;
  const cy = sy / n;
  let mu20 = 0; // sum (row - r̄)^2
  let mu02 = 0; // sum (col - c̄)^2
  let mu11 = 0;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (!data[y * width + x]) continue;
      const dy = y - cy;
      const dx = x - cx;
      mu20 += dy * dy;
      mu02 += dx * dx;
      mu11 += dx * dy;
    }
  }
  const a = mu20 / n;
  const c = mu02 / n;
  const b = mu11 / n;
  const mean = (a + c) / 2;
  const disc = Math.sqrt(((a - c) / 2) ** 2 + b * b);
  const l1 = Math.max(0, mean + disc);
  const l2 = Math.max(0, mean - disc);
  const major = 4 * Math.sqrt(l1);
  const minor = 4 * Math.sqrt(l2);
  const bboxArea = (maxX - minX + 1) * (maxY - minY + 1);
  const hull = convexArea(data, width, height);
  return {
    area: n,
    major_axis_length: major,
    minor_axis_length: minor,
    axis_ratio: minor / (major === 0 ? 1 : major),
    solidity: hull > 0 ? n / Math.max(hull, n) : 1,
    extent: n / bboxArea,
  };
}
