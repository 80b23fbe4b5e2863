// INPUT.CROP (Detectron2's RandomCrop before ResizeShortestEdge) and INPUT.MASK_FORMAT bitmask:
// crop sizes per type, bitmasks through crop + PIL-nearest resize + flip against a dense reference,
// boxes recomputed from the cut masks, empty instances dropped, polygons clipped to the window.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  bitmaskBox,
  clipPolygonToWindow,
  pilNearestIndex,
  transformBitmask,
  type CropWindow,
  type Geometry,
} from '../../../pipeline/data/transforms';
import { checkCropOptions, cropSize, prepareImage, TrainLoader, transformAnnotations, type TrainAnnotation, type TrainRecord } from '../../../pipeline/data/train-loader';
import { cropToMask, maskToCrop, type MaskCrop } from '../../../structures/mask-crop';
import { polygonsArea } from '../../../structures/polygons';
import { Rng, testSeed } from '../../util';

/** A random blob (union of discs) as a tight boxed bitmask in a W x H image. */
function randomBlob(rng: Rng, W: number, H: number): { dense: Uint8Array; boxed: MaskCrop } {
  const dense = new Uint8Array(W * H);
  const discs = rng.int(1, 4);
  const cx = rng.uniform(0, W);
  const cy = rng.uniform(0, H);
  for (let d = 0; d < discs; d++) {
    const x = cx + rng.uniform(-6, 6);
    const y = cy + rng.uniform(-6, 6);
    const r = rng.uniform(1.5, 9);
    for (let yy = 0; yy < H; yy++) for (let xx = 0; xx < W; xx++) if ((xx + 0.5 - x) ** 2 + (yy + 0.5 - y) ** 2 <= r * r) dense[yy * W + xx] = 1;
  }
  return { dense, boxed: maskToCrop(dense, W, H) };
}

/** Dense reference: crop the whole image, PIL NEAREST resize (pilNearestIndex, checked against
 *  Pillow below), flip. */
function referenceTransform(dense: Uint8Array, W: number, g: Geometry): Uint8Array {
  const c = g.crop ?? { x0: 0, y0: 0, width: W, height: g.inHeight };
  const xs = pilNearestIndex(c.width, g.outWidth);
  const ys = pilNearestIndex(c.height, g.outHeight);
  const out = new Uint8Array(g.outWidth * g.outHeight);
  for (let y = 0; y < g.outHeight; y++) {
    for (let x = 0; x < g.outWidth; x++) {
      const sy = ys[y]!;
      const sx = xs[x]!;
      const oy = g.flip.vertical ? g.outHeight - 1 - y : y;
      const ox = g.flip.horizontal ? g.outWidth - 1 - x : x;
      out[oy * g.outWidth + ox] = dense[(c.y0 + sy) * W + c.x0 + sx]!;
    }
  }
  return out;
}

describe('RandomCrop sizes (Detectron2 get_crop_size)', () => {
  const never = () => {
    throw new Error('no random draw expected');
  };
  it('absolute: the size, capped by the image', () => {
    expect(cropSize({ type: 'absolute', size: [256, 256] }, 520, 704, never)).toEqual([256, 256]);
    expect(cropSize({ type: 'absolute', size: [600, 256] }, 520, 704, never)).toEqual([520, 256]);
  });
  it('relative: int(side * fraction + 0.5)', () => {
    expect(cropSize({ type: 'relative', size: [0.5, 0.25] }, 520, 705, never)).toEqual([260, 176]);
  });
  it('relative_range and absolute_range stay inside their ranges', () => {
    const rng = new Rng(testSeed());
    for (let i = 0; i < 200; i++) {
      const [h, w] = cropSize({ type: 'relative_range', size: [0.3, 0.6] }, 520, 704, () => rng.next());
      expect(h).toBeGreaterThanOrEqual(Math.trunc(520 * 0.3 + 0.5));
      expect(h).toBeLessThanOrEqual(520);
      expect(w).toBeGreaterThanOrEqual(Math.trunc(704 * 0.6 + 0.5));
      expect(w).toBeLessThanOrEqual(704);
      const [ah, aw] = cropSize({ type: 'absolute_range', size: [100, 600] }, 520, 704, () => rng.next());
      expect(ah >= 100 && ah <= 520 && aw >= 100 && aw <= 600).toBe(true);
    }
  });
  it('rejects bad INPUT.CROP values with the key named', () => {
    expect(() => checkCropOptions({ type: 'absolute', size: [256] })).toThrow(/INPUT.CROP.SIZE/);
    expect(() => checkCropOptions({ type: 'relative', size: [1.5, 0.5] })).toThrow(/INPUT.CROP.SIZE/);
    expect(() => checkCropOptions({ type: 'absolute_range', size: [300, 200] })).toThrow(/min <= max/);
    expect(() => checkCropOptions({ type: 'nope' as 'absolute', size: [1, 1] })).toThrow(/INPUT.CROP.TYPE/);
  });
});

describe('bitmasks through crop, resize and flip', () => {
  it('resize as PIL Image.resize(NEAREST) does (fixture from Pillow 9.4)', () => {
    const fx = JSON.parse(readFileSync('test/fixtures/train/pil_nearest.json', 'utf8')) as {
      cases: { width: number; height: number; outWidth: number; outHeight: number; input: number[]; output: number[] }[];
    };
    for (const c of fx.cases) {
      const full = maskToCrop(Uint8Array.from(c.input), c.width, c.height);
      const g: Geometry = { inWidth: c.width, inHeight: c.height, outWidth: c.outWidth, outHeight: c.outHeight, flip: { horizontal: false, vertical: false } };
      expect(Array.from(cropToMask(transformBitmask(full, g))), `${c.width}x${c.height} -> ${c.outWidth}x${c.outHeight}`).toEqual(c.output);
    }
  });

  it('match a dense reference (PIL nearest) on random masks, crops, sizes and flips', () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    for (let t = 0; t < 60; t++) {
      const W = rng.int(20, 70);
      const H = rng.int(20, 70);
      const { dense, boxed } = randomBlob(rng, W, H);
      const cw = rng.int(5, W + 1);
      const ch = rng.int(5, H + 1);
      const crop: CropWindow | undefined = rng.next() < 0.8 ? { x0: rng.int(0, W - cw + 1), y0: rng.int(0, H - ch + 1), width: cw, height: ch } : undefined;
      const g: Geometry = {
        inWidth: W,
        inHeight: H,
        ...(crop ? { crop } : {}),
        outWidth: rng.int(4, 90),
        outHeight: rng.int(4, 90),
        flip: { horizontal: rng.next() < 0.5, vertical: rng.next() < 0.3 },
      };
      const got = transformBitmask(boxed, g);
      const want = referenceTransform(dense, W, g);
      expect(got.imageWidth).toBe(g.outWidth);
      expect(Array.from(cropToMask(got)), `seed ${seed} case ${t}`).toEqual(Array.from(want));
      // Tight: the stored box is the bounding box of the set pixels.
      expect(got).toEqual(maskToCrop(want, g.outWidth, g.outHeight));
    }
  });
});

describe('instances under a crop', () => {
  it('recompute boxes from the cut masks and drop instances the crop left empty', () => {
    const W = 40;
    const H = 30;
    const dense = (x0: number, y0: number, x1: number, y1: number) => {
      const d = new Uint8Array(W * H);
      for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) d[y * W + x] = 1;
      return maskToCrop(d, W, H);
    };
    const anns: TrainAnnotation[] = [
      { box: [2, 2, 12, 10], category: 0, polygons: [], mask: dense(2, 2, 12, 10) }, // cut by the crop
      { box: [30, 20, 38, 28], category: 1, polygons: [], mask: dense(30, 20, 38, 28) }, // outside: dropped
      { box: [10, 10, 14, 16], category: 2, polygons: [], mask: dense(10, 10, 14, 16) }, // inside
    ];
    const crop = { x0: 6, y0: 4, width: 20, height: 16 };
    const g: Geometry = { inWidth: W, inHeight: H, crop, outWidth: 20, outHeight: 16, flip: { horizontal: false, vertical: false } };
    const gt = transformAnnotations(anns, g);
    expect(Array.from(gt.classes)).toEqual([0, 2]);
    expect(Array.from(gt.boxes)).toEqual([0, 0, 6, 6, 4, 6, 8, 12]);
    expect(gt.masks!.map(bitmaskBox)).toEqual([
      [0, 0, 6, 6],
      [4, 6, 8, 12],
    ]);
    expect(gt.polygons).toBeUndefined();
  });

  it('clips polygons to the window (area of the intersection) and recomputes their boxes', () => {
    const square = [0, 0, 10, 0, 10, 10, 0, 10];
    const w = { x0: 5, y0: -3, width: 20, height: 9 };
    const clipped = clipPolygonToWindow(square, w);
    expect(polygonsArea([clipped])).toBeCloseTo(5 * 6, 10);
    expect(clipPolygonToWindow(square, { x0: 20, y0: 20, width: 5, height: 5 })).toEqual([]);
    const anns: TrainAnnotation[] = [{ box: [0, 0, 10, 10], category: 1, polygons: [square] }];
    const g: Geometry = { inWidth: 40, inHeight: 40, crop: { x0: 5, y0: 4, width: 20, height: 20 }, outWidth: 20, outHeight: 20, flip: { horizontal: false, vertical: false } };
    const gt = transformAnnotations(anns, g);
    expect(Array.from(gt.boxes)).toEqual([0, 0, 5, 6]);
  });

  it('crop the image pixels before resizing', () => {
    const W = 9;
    const H = 7;
    const gray = Uint8Array.from({ length: W * H }, (_, i) => i);
    const { input, geometry } = prepareImage(gray, W, H, 3, 1000, undefined, { x0: 2, y0: 1, width: 4, height: 3 });
    expect([input.width, input.height, input.origWidth, input.origHeight]).toEqual([4, 3, 4, 3]);
    expect(Array.from(input.image.subarray(0, 12))).toEqual([11, 12, 13, 14, 20, 21, 22, 23, 29, 30, 31, 32]);
    expect(geometry.crop).toEqual({ x0: 2, y0: 1, width: 4, height: 3 });
  });
});

describe('TrainLoader with INPUT.CROP', () => {
  const records: TrainRecord[] = Array.from({ length: 5 }, (_, i) => ({ imageId: i + 1, file: `im${i}.png`, width: 704, height: 520, annotations: [] }));
  const base = { minSizes: [256], sampling: 'choice' as const, maxSize: 1333, randomFlip: 'horizontal' as const, batchSize: 4, seed: 1234, aspectRatioGrouping: true };
  it('draws windows inside the image, the same for the same position, without changing the resize/flip draws', () => {
    const withCrop = new TrainLoader(records, { ...base, crop: { type: 'absolute', size: [256, 256] } });
    const without = new TrainLoader(records, base);
    for (let p = 0; p < 50; p++) {
      const c = withCrop.cropAt(p, 520, 704)!;
      expect(c.width).toBe(256);
      expect(c.height).toBe(256);
      expect(c.x0 >= 0 && c.x0 + 256 <= 704 && c.y0 >= 0 && c.y0 + 256 <= 520).toBe(true);
      expect(withCrop.cropAt(p, 520, 704)).toEqual(c);
      expect(withCrop.augmentationAt(p)).toEqual(without.augmentationAt(p));
      expect(without.cropAt(p, 520, 704)).toBeUndefined();
    }
    const xs = new Set(Array.from({ length: 50 }, (_, p) => withCrop.cropAt(p, 520, 704)!.x0));
    expect(xs.size).toBeGreaterThan(30);
  });
});
