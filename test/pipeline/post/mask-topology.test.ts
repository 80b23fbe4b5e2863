// Hole filling and the single-contour ("chopped cells") rule on hand-made masks, alone and inside
// postprocessImage with their options.
import { describe, expect, it } from 'vitest';
import type { MaskCrop } from '../../../structures/mask-crop';
import { runsArea } from '../../../structures/rle';
import { contourCount, fillHoles } from '../../../pipeline/post/mask-topology';
import { DEFAULT_POSTPROCESS, postprocessImage } from '../../../pipeline/post/postprocess';

const W = 80;
const H = 40;
/** A crop at (x0, y0) from rows of '#' (foreground) and '.' (background). */
function crop(x0: number, y0: number, rows: string[]): MaskCrop {
  const w = rows[0]!.length;
  const data = Uint8Array.from(rows.join(''), (ch) => (ch === '#' ? 1 : 0));
  return { imageWidth: W, imageHeight: H, x0, y0, width: w, height: rows.length, data };
}
const big = (n: number, rows: string[]) => rows.flatMap((r) => Array(n).fill([...r].map((c) => c.repeat(n)).join('')));

const RING = big(4, ['#####', '#...#', '#...#', '#...#', '#####']); // 20x20, a 12x12 hole
const BLOB = big(4, ['.###.', '#####', '#####', '.###.']);
const TWO = big(4, ['##...', '##...', '...##', '...##']); // two squares touching at a corner only

describe('mask topology', () => {
  it('fills a ring into a disk; leaves a C-shape (hole open to the border) and a blob as they are', () => {
    const filled = fillHoles(crop(5, 5, RING));
    expect(filled.data.every((v) => v === 1)).toBe(true);
    const c = crop(5, 5, big(3, ['####', '#...', '#...', '####']));
    expect(fillHoles(c).data).toEqual(c.data);
    expect(fillHoles(crop(5, 5, BLOB)).data).toEqual(crop(5, 5, BLOB).data);
  });

  it('counts contours as find_contours: blob 1, ring 2, two pieces 2 (diagonal contact too), empty 0', () => {
    expect(contourCount(crop(5, 5, BLOB))).toBe(1);
    expect(contourCount(crop(5, 5, RING))).toBe(2);
    expect(contourCount(crop(5, 5, TWO))).toBe(2);
    expect(contourCount(crop(5, 5, ['#.', '.#']))).toBe(2);
    expect(contourCount(crop(5, 5, ['#..#']))).toBe(2);
    expect(contourCount(crop(5, 5, ['....']))).toBe(0);
    expect(contourCount(crop(0, 0, ['#']))).toBe(1);
  });

  it('at the image border: one contact is one open contour, two separate contacts are two', () => {
    // a blob against the left border: one open piece
    expect(contourCount(crop(0, 10, BLOB))).toBe(1);
    // a U whose two arms touch the top border: the contour is cut into two open pieces
    expect(contourCount(crop(10, 0, ['#..#', '#..#', '####']))).toBe(2);
    // the same U away from the border is one closed contour
    expect(contourCount(crop(10, 5, ['#..#', '#..#', '####']))).toBe(1);
    // a full-width bar touching left and right borders: two open pieces (top and bottom edge)
    expect(contourCount({ imageWidth: 6, imageHeight: 5, x0: 0, y0: 2, width: 6, height: 1, data: new Uint8Array(6).fill(1) })).toBe(2);
  });

  it('postprocess: a single blob is kept; two blobs in one mask are dropped (chopped); a ring is dropped unless filled', () => {
    const cands = [
      { score: 0.9, categoryId: 1, mask: crop(2, 2, BLOB) },
      { score: 0.8, categoryId: 1, mask: crop(2, 20, TWO) }, // 2 x 64 px, joined by a corner only
      { score: 0.7, categoryId: 1, mask: crop(30, 5, RING) },
    ];
    const off = { ...DEFAULT_POSTPROCESS, minPixels: { shsy5y: 1, astro: 1, cort: 1 } };
    const r = postprocessImage(cands, W, H, off);
    expect(r.masks.map(runsArea)).toEqual([256]);
    expect(r.dropped.chopped).toBe(2);
    const filled = postprocessImage(cands, W, H, { ...off, fillHoles: true });
    expect(filled.masks.map(runsArea)).toEqual([256, 400]);
    expect(filled.dropped.chopped).toBe(1);
    const noCheck = postprocessImage(cands, W, H, { ...off, singleContour: false });
    expect(noCheck.masks.map(runsArea)).toEqual([256, 128, 400 - 144]);
  });

  it('postprocess: overlap removal that cuts a mask in two drops it', () => {
    const bar = crop(5, 5, big(2, ['##########']));
    const cut = crop(12, 0, big(2, ['##', '##', '##', '##', '##', '##']));
    const r = postprocessImage([{ score: 0.9, categoryId: 1, mask: cut }, { score: 0.8, categoryId: 1, mask: bar }], W, H, { ...DEFAULT_POSTPROCESS, minPixels: { shsy5y: 1, astro: 1, cort: 1 } });
    expect(r.masks.length).toBe(1);
    expect(r.dropped.chopped).toBe(1);
  });
});
