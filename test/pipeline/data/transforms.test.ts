// Training geometry: ResizeShortestEdge size rule, PIL-exact bilinear resize, flips of image /
// polygons / boxes kept consistent, COCO -> training records, seeded resumable sampling.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  flipImageU8,
  resizeBilinearU8,
  resizeShortestEdgeShape,
  transformBox,
  transformPolygon,
  type Geometry,
} from '../../../pipeline/data/transforms';
import { prepareImage, segmentationToPolygons, TrainLoader, trainingSetFromCoco, transformAnnotations, type TrainRecord } from '../../../pipeline/data/train-loader';
import { cocoRleToJson, encodeCocoRle } from '../../../structures/coco-rle';
import { Rng, testSeed } from '../../util';

describe('ResizeShortestEdge', () => {
  it('gives Detectron2 output sizes (hand-computed)', () => {
    // 520x704: scale 288/520 -> 288 x 389.9 -> (288, 390)
    expect(resizeShortestEdgeShape(520, 704, 288, 400)).toEqual([288, 390]);
    // capped: 389.9 > 380 -> x 380/389.9 -> 280.68 -> 281, 380
    expect(resizeShortestEdgeShape(520, 704, 288, 380)).toEqual([281, 380]);
    // portrait: w is the short side
    expect(resizeShortestEdgeShape(704, 520, 288, 1000)).toEqual([390, 288]);
    // square and upscaling
    expect(resizeShortestEdgeShape(10, 10, 32, 1333)).toEqual([32, 32]);
    // 520x704 at the LIVECell test size 800: 1083 x 800 (spec 7.2)
    expect(resizeShortestEdgeShape(520, 704, 800, 1333)).toEqual([800, 1083]);
  });

  it('matches PIL Image.resize(BILINEAR) byte for byte (fixture from Pillow 9.4)', () => {
    const fx = JSON.parse(readFileSync('test/fixtures/train/pil_resize.json', 'utf8')) as {
      cases: { width: number; height: number; outWidth: number; outHeight: number; input: number[]; output: number[] }[];
    };
    for (const c of fx.cases) {
      const out = resizeBilinearU8(Uint8Array.from(c.input), c.width, c.height, c.outWidth, c.outHeight);
      const diffs = [...out].map((v, i) => v - c.output[i]!).filter((d) => d !== 0);
      expect(diffs, `${c.width}x${c.height} -> ${c.outWidth}x${c.outHeight}`).toEqual([]);
    }
  });

  it('hand-checked 4 -> 2 downscale (antialiased triangle filter)', () => {
    // out0 = (0*.75 + 100*.75 + 200*.25)/1.75 = 71.4; out1 = (100*.25 + 200*.75 + 255*.75)/1.75 = 209.3
    expect([...resizeBilinearU8(Uint8Array.from([0, 100, 200, 255]), 4, 1, 2, 1)]).toEqual([71, 209]);
  });
});

describe('flips and coordinates', () => {
  const g = (flip: { horizontal: boolean; vertical: boolean }, inW = 10, inH = 8, outW = 20, outH = 16): Geometry => ({ inWidth: inW, inHeight: inH, outWidth: outW, outHeight: outH, flip });

  it('scale then flip polygons and boxes (hand-checked)', () => {
    const poly = [2, 1, 5, 1, 5, 4, 2, 4];
    expect(transformPolygon(poly, g({ horizontal: false, vertical: false }))).toEqual([4, 2, 10, 2, 10, 8, 4, 8]);
    expect(transformPolygon(poly, g({ horizontal: true, vertical: false }))).toEqual([16, 2, 10, 2, 10, 8, 16, 8]);
    expect(transformPolygon(poly, g({ horizontal: false, vertical: true }))).toEqual([4, 14, 10, 14, 10, 8, 4, 8]);
    expect(transformBox([2, 1, 5, 4], g({ horizontal: true, vertical: false }))).toEqual([10, 2, 16, 8]);
    expect(transformBox([2, 1, 5, 4], g({ horizontal: false, vertical: true }))).toEqual([4, 8, 10, 14]);
    // boxes are clipped to the image as Detectron2 does
    expect(transformBox([8, 6, 12, 9], g({ horizontal: false, vertical: false }))).toEqual([16, 12, 20, 16]);
  });

  it('the flipped image and the flipped box/polygon cover the same pixels', () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    const W = 11 + rng.int(0, 6);
    const H = 7 + rng.int(0, 6);
    const x0 = rng.int(0, W - 3);
    const y0 = rng.int(0, H - 3);
    const x1 = x0 + 1 + rng.int(1, W - x0 - 1);
    const y1 = y0 + 1 + rng.int(1, H - y0 - 1);
    const img = new Uint8Array(W * H);
    for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) img[y * W + x] = 255;
    for (const flip of [{ horizontal: true, vertical: false }, { horizontal: false, vertical: true }, { horizontal: true, vertical: true }]) {
      // short side unchanged -> no resampling, so pixels are exact
      const { input, geometry } = prepareImage(img, W, H, Math.min(W, H), 10000, flip);
      expect([input.width, input.height]).toEqual([W, H]);
      const gt = transformAnnotations([{ box: [x0, y0, x1, y1], category: 0, polygons: [[x0, y0, x1, y0, x1, y1, x0, y1]] }], geometry);
      const [bx0, by0, bx1, by1] = [...gt.boxes];
      for (let y = 0; y < H; y++) {
        for (let x = 0; x < W; x++) {
          const inside = x >= bx0! && x < bx1! && y >= by0! && y < by1!;
          for (let c = 0; c < 3; c++) expect(input.image[c * W * H + y * W + x], `seed ${seed} flip ${JSON.stringify(flip)} (${x},${y})`).toBe(inside ? 255 : 0);
        }
      }
      const p = gt.polygons![0]![0]!;
      const xs = p.filter((_, i) => i % 2 === 0);
      const ys = p.filter((_, i) => i % 2 === 1);
      expect([Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)]).toEqual([bx0, by0, bx1, by1]);
    }
  });

  it('flipImageU8 twice is the identity', () => {
    const rng = new Rng(testSeed());
    const img = Uint8Array.from({ length: 7 * 5 }, () => rng.int(0, 256));
    const f = { horizontal: true, vertical: true };
    expect([...flipImageU8(flipImageU8(img, 7, 5, f), 7, 5, f)]).toEqual([...img]);
  });
});

describe('training records', () => {
  const mask = new Uint8Array(8 * 6);
  for (let y = 1; y < 4; y++) for (let x = 2; x < 6; x++) mask[y * 8 + x] = 1;
  const ds = {
    images: [
      { id: 1, width: 8, height: 6, file_name: 'train/a.png' },
      { id: 2, width: 8, height: 6, file_name: 'train/b.png' },
    ],
    annotations: [
      { id: 1, image_id: 1, category_id: 3, segmentation: cocoRleToJson(encodeCocoRle(mask, 6, 8)), area: 12, bbox: [2, 1, 4, 3] as [number, number, number, number], iscrowd: 0 },
      { id: 2, image_id: 1, category_id: 1, segmentation: [[1, 1, 3, 1, 3, 3]], area: 2, bbox: [1, 1, 2, 2] as [number, number, number, number], iscrowd: 1 },
    ],
    categories: [{ id: 1, name: 'shsy5y' }, { id: 2, name: 'astro' }, { id: 3, name: 'cort' }],
  };

  it('RLE -> polygons, contiguous classes, crowd dropped, empty images skipped', () => {
    const set = trainingSetFromCoco(ds, '/data', { filterEmpty: true });
    expect(set.categoryIds).toEqual([1, 2, 3]);
    expect(set.skippedEmpty).toBe(1);
    expect(set.records.length).toBe(1);
    const r = set.records[0]!;
    expect(r.file).toBe('/data/train/a.png');
    expect(r.annotations.length).toBe(1);
    expect(r.annotations[0]!.category).toBe(2);
    expect(r.annotations[0]!.box).toEqual([2, 1, 6, 4]);
    const poly = r.annotations[0]!.polygons[0]!;
    const xs = poly.filter((_, i) => i % 2 === 0);
    const ys = poly.filter((_, i) => i % 2 === 1);
    // the contour lies within the mask's pixel square [2,6) x [1,4)
    expect(Math.min(...xs)).toBeGreaterThanOrEqual(2);
    expect(Math.max(...xs)).toBeLessThanOrEqual(6);
    expect(Math.min(...ys)).toBeGreaterThanOrEqual(1);
    expect(Math.max(...ys)).toBeLessThanOrEqual(4);
    expect(trainingSetFromCoco(ds, '/data', { filterEmpty: false }).records.length).toBe(2);
  });

  it('polygon segmentations keep valid polygons only', () => {
    expect(segmentationToPolygons([[0, 0, 1, 0, 1, 1], [0, 0, 1, 1]], 4, 4)).toEqual([[0, 0, 1, 0, 1, 1]]);
  });

  it('the sampler is seeded and batch i does not depend on earlier calls (resume)', () => {
    const records: TrainRecord[] = Array.from({ length: 5 }, (_, i) => ({ imageId: i + 1, file: `f${i}`, width: i === 2 ? 6 : 8, height: i === 2 ? 9 : 6, annotations: [] }));
    const opts = { minSizes: [4, 6, 8], sampling: 'choice' as const, maxSize: 100, randomFlip: 'horizontal' as const, batchSize: 2, seed: 5, aspectRatioGrouping: true };
    const a = new TrainLoader(records, opts);
    const seqA = Array.from({ length: 8 }, (_, i) => a.batchPositions(i).map((p) => a.recordAt(p)));
    const b = new TrainLoader(records, opts);
    expect(b.batchPositions(6).map((p) => b.recordAt(p))).toEqual(seqA[6]);
    // aspect grouping: a batch never mixes the portrait record 2 with landscape ones
    for (const batch of seqA) expect(new Set(batch.map((r) => r === 2)).size).toBe(1);
    // every epoch is a permutation
    const firstEpoch = Array.from({ length: 5 }, (_, p) => a.recordAt(p)).sort();
    expect(firstEpoch).toEqual([0, 1, 2, 3, 4]);
    const augs = Array.from({ length: 40 }, (_, p) => a.augmentationAt(p));
    expect(new Set(augs.map((x) => x.short))).toEqual(new Set([4, 6, 8]));
    expect(augs.some((x) => x.flip.horizontal) && augs.some((x) => !x.flip.horizontal)).toBe(true);
    expect(augs.every((x) => !x.flip.vertical)).toBe(true);
    const c = new TrainLoader(records, { ...opts, seed: 6 });
    expect(Array.from({ length: 8 }, (_, i) => c.batchPositions(i).map((p) => c.recordAt(p)))).not.toEqual(seqA);
  });
});
