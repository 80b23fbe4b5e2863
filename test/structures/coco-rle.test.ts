import { describe, expect, it } from 'vitest';
import { Rng, testSeed } from '../util';
import {
  CocoRleError,
  cocoRleArea,
  cocoRleFromPolygon,
  cocoRleFromString,
  cocoRleIou,
  cocoRleMerge,
  cocoRleToBbox,
  cocoRleToCrop,
  cocoRleToString,
  cropToCocoRle,
  decodeCocoRle,
  encodeCocoRle,
} from '../../structures/coco-rle';
import { cropToMask, maskToCrop } from '../../structures/mask-crop';

describe('COCO RLE', () => {
  it('encodes column-major (Fortran order), starting with a background count', () => {
    // 2x3 image, row-major [[1,0,0],[1,1,0]]: column-major pixels 1,1,0,1,0,0
    const m = Uint8Array.from([1, 0, 0, 1, 1, 0]);
    const rle = encodeCocoRle(m, 2, 3);
    expect(rle.counts).toEqual([0, 2, 1, 1, 2]);
    expect(cocoRleArea(rle)).toBe(3);
    expect(cocoRleToBbox(rle)).toEqual([0, 0, 2, 2]);
    expect(decodeCocoRle(rle)).toEqual(m);
  });

  it('compresses counts exactly as pycocotools rleToString (known strings)', () => {
    // Values produced by pycocotools.mask.encode on the same masks.
    expect(cocoRleToString({ height: 2, width: 3, counts: [0, 2, 1, 1, 2] })).toBe('021O1');
    expect(cocoRleToString({ height: 100, width: 100, counts: [5050, 100, 4850] })).toBe('jm4T3bg4');
    // a large negative delta (count smaller than the one two places back)
    const rle = { height: 520, width: 704, counts: [200000, 30, 500, 2, 165548] };
    const s = cocoRleToString(rle);
    expect(cocoRleFromString(s, 520, 704).counts).toEqual(rle.counts);
  });

  it('round-trips random masks through crops, strings and dense decode', () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    for (let trial = 0; trial < 25; trial++) {
      const h = rng.int(1, 30);
      const w = rng.int(1, 30);
      const m = new Uint8Array(h * w);
      const d = rng.uniform(0, 1);
      for (let i = 0; i < m.length; i++) m[i] = rng.next() < d ? 1 : 0;
      if (trial % 4 === 0) m[h * w - 1] = 1;
      const dense = encodeCocoRle(m, h, w);
      const crop = maskToCrop(m, w, h);
      expect(cropToCocoRle(crop).counts, `seed ${seed}`).toEqual(dense.counts);
      expect(cocoRleFromString(cocoRleToString(dense), h, w).counts).toEqual(dense.counts);
      expect(cropToMask(cocoRleToCrop(dense))).toEqual(m);
    }
  });

  it('computes IoU with crowd semantics and merges', () => {
    const a = encodeCocoRle(Uint8Array.from([1, 1, 0, 0, 1, 1, 0, 0, 0]), 3, 3);
    const b = encodeCocoRle(Uint8Array.from([0, 1, 0, 0, 1, 0, 0, 0, 0]), 3, 3);
    const [[iou]] = cocoRleIou([a], [b], [false]) as [[number]];
    expect(iou).toBeCloseTo(2 / 4, 12);
    const [[crowdIou]] = cocoRleIou([b], [a], [true]) as [[number]];
    expect(crowdIou).toBe(1); // inter / area(dt)
    expect(cocoRleArea(cocoRleMerge([a, b]))).toBe(4);
    expect(cocoRleArea(cocoRleMerge([a, b], true))).toBe(2);
  });

  it('rasterises polygons as pycocotools frPyObjects (box polygon area and bbox)', () => {
    // pycocotools: frPyObjects([[1,1,1,4,5,4,5,1]], 8, 8) -> area 12, bbox [1,1,4,3]
    const rle = cocoRleFromPolygon([1, 1, 1, 4, 5, 4, 5, 1], 8, 8);
    expect(cocoRleArea(rle)).toBe(12);
    expect(cocoRleToBbox(rle)).toEqual([1, 1, 4, 3]);
  });

  it('rejects bad compressed strings and wrong totals', () => {
    expect(() => cocoRleFromString('021O1', 2, 4)).toThrow(/sum to 6 pixels but size \[2, 4\] has 8/);
    expect(() => cocoRleFromString('0 2', 2, 3)).toThrow(CocoRleError);
    expect(() => cocoRleFromString('0`', 2, 3)).toThrow(/inside a value/);
  });
});
