// Test-time augmentation transforms: original, horizontal flip, vertical flip and both flips (=
// exact 180 degree rotation). All are their own inverse, so the same function maps an image forward
// and maps predicted masks and boxes back.
import type { MaskCrop } from '../../structures/mask-crop';
import type { Box } from '../fusion/wbf';

export type TtaTransform = 'orig' | 'hflip' | 'vflip' | 'both';
export const TTA_TRANSFORMS: readonly TtaTransform[] = ['orig', 'hflip', 'vflip', 'both'];

const flipsX = (t: TtaTransform) => t === 'hflip' || t === 'both';
const flipsY = (t: TtaTransform) => t === 'vflip' || t === 'both';

/** Transformed copy of a row-major single-channel image. */
export function transformImage(data: Uint8Array, width: number, height: number, t: TtaTransform): Uint8Array {
  if (t === 'orig') return data.slice();
  const out = new Uint8Array(data.length);
  for (let y = 0; y < height; y++) {
    const sy = flipsY(t) ? height - 1 - y : y;
    for (let x = 0; x < width; x++) out[y * width + x] = data[sy * width + (flipsX(t) ? width - 1 - x : x)]!;
  }
  return out;
}

export function transformCrop(c: MaskCrop, t: TtaTransform): MaskCrop {
  if (t === 'orig') return c;
  const data = new Uint8Array(c.data.length);
  for (let y = 0; y < c.height; y++) {
    const sy = flipsY(t) ? c.height - 1 - y : y;
    for (let x = 0; x < c.width; x++) data[y * c.width + x] = c.data[sy * c.width + (flipsX(t) ? c.width - 1 - x : x)]!;
  }
  return {
    ...c,
    x0: flipsX(t) ? c.imageWidth - c.x0 - c.width : c.x0,
    y0: flipsY(t) ? c.imageHeight - c.y0 - c.height : c.y0,
    data,
  };
}

/** Normalised [x1, y1, x2, y2] box under the transform. */
export function transformBox(b: Box, t: TtaTransform): Box {
  let [x1, y1, x2, y2] = b;
  if (flipsX(t)) [x1, x2] = [1 - x2, 1 - x1];
  if (flipsY(t)) [y1, y2] = [1 - y2, 1 - y1];
  return [x1, y1, x2, y2];
}
