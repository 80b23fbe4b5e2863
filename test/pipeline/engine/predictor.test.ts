// Predictor output format (COCO results with RLE segm, XYWH bbox, mask score), TTA un-flipping
// with a stand-in model that sees a known asymmetric (L-shaped) object, WSF fusion of the four
// passes, the same crops from paste regions as from full-image masks, and the evaluator (COCO AP +
// competition metric) on a perfect prediction.
import { beforeAll, describe, expect, it } from 'vitest';
import { init } from '../../../runtime/runtime';
import { cocoRleToJson, decodeCocoRle, encodeCocoRle, segmentationToCocoRle } from '../../../structures/coco-rle';
import { cropToMask, maskToCrop } from '../../../structures/mask-crop';
import { imagePredictor, predictGray, unflipBox, type PredictorOptions } from '../../../pipeline/engine/predictor';
import { toCocoResults } from '../../../pipeline/evaluation/coco-results';
import { inferenceOnDataset } from '../../../pipeline/evaluation/evaluator';
import { StandInModel } from './standin';

const W = 40;
const H = 32;
// L shape: a vertical bar x 4..9, y 3..26 and a foot x 10..23, y 21..26
const L = new Uint8Array(W * H);
for (let y = 3; y < 27; y++) for (let x = 4; x < 10; x++) L[y * W + x] = 1;
for (let y = 21; y < 27; y++) for (let x = 10; x < 24; x++) L[y * W + x] = 1;
const IMAGE = Uint8Array.from(L, (v) => (v ? 230 : 30));
beforeAll(async () => {
  await init();
});

const OPTS: PredictorOptions = { minSize: 32, maxSize: 1000, categoryIds: [1, 2, 3] };

describe('predictor', () => {
  it('writes COCO results: XYWH bbox, RLE segm of the original-size mask, mask score, category id', async () => {
    const preds = await predictGray(new StandInModel(), IMAGE, W, H, OPTS);
    const res = toCocoResults(7, preds);
    expect(res.length).toBe(1);
    const r = res[0]!;
    expect(r.image_id).toBe(7);
    expect(r.category_id).toBe(2); // class 1 -> second category
    expect(r.score).toBeCloseTo(0.8, 6); // mask_score, as CenterMask's evaluator
    expect(r.bbox).toEqual([3.5, 2.5, 21, 25]);
    expect(typeof r.segmentation!.counts).toBe('string');
    expect(r.segmentation!.size).toEqual([H, W]);
    expect(r.segmentation).toEqual(cocoRleToJson(encodeCocoRle(L, H, W)));
    const back = decodeCocoRle(segmentationToCocoRle(r.segmentation, H, W));
    expect(back.reduce((a, v) => a + v, 0)).toBe(L.reduce((a, v) => a + v, 0));
  });

  it('resizes to MIN_SIZE_TEST and still returns masks at the original size', async () => {
    const preds = await predictGray(new StandInModel(), IMAGE, W, H, { ...OPTS, minSize: 64 });
    expect(preds.length).toBe(1);
    const m = cropToMask(preds[0]!.mask);
    expect(m.length).toBe(W * H);
    // bilinear up/down sampling may move the edge by a pixel; the bulk agrees
    let agree = 0;
    for (let i = 0; i < m.length; i++) agree += m[i] === L[i] ? 1 : 0;
    expect(agree / m.length).toBeGreaterThan(0.97);
  });

  it('un-flips boxes (hand-checked)', () => {
    expect(unflipBox([1, 2, 5, 9], 'hflip', 40, 32)).toEqual([35, 2, 39, 9]);
    expect(unflipBox([1, 2, 5, 9], 'vflip', 40, 32)).toEqual([1, 23, 5, 30]);
    expect(unflipBox([1, 2, 5, 9], 'both', 40, 32)).toEqual([35, 23, 39, 30]);
    expect(unflipBox([1, 2, 5, 9], 'orig', 40, 32)).toEqual([1, 2, 5, 9]);
  });

  it('TTA: every flipped pass maps back onto the asymmetric object; WSF fuses them into it', async () => {
    const model = new StandInModel();
    // the raw h-flipped pass sees a mirrored L (so un-flipping is what makes them agree)
    const seen: Uint8Array[] = [];
    const inner = model.inference.bind(model);
    model.inference = async (batch) => {
      const r = await inner(batch);
      seen.push(r[0]!.masks[0]!);
      return r;
    };
    const preds = await predictGray(model, IMAGE, W, H, { ...OPTS, tta: true });
    expect(seen.length).toBe(4);
    expect(Buffer.from(seen[1]!).equals(Buffer.from(L))).toBe(false);
    expect(preds.length).toBe(1);
    const p = preds[0]!;
    expect(Buffer.from(cropToMask(p.mask)).equals(Buffer.from(L))).toBe(true);
    expect(p.box.map((v) => Math.round(v * 1e4) / 1e4)).toEqual([3.5, 2.5, 24.5, 27.5]);
    expect(p.score).toBeCloseTo(0.9, 6);
    expect(p.categoryId).toBe(2);
  });

  it('TTA fusion votes: a detection present in only one pass becomes its own low-score instance', async () => {
    const model = new StandInModel();
    let call = 0;
    const inner = model.inference.bind(model);
    model.inference = async (batch) => {
      const r = await inner(batch);
      if (call++ === 2) {
        // the v-flipped pass also reports a spurious small square (in its own flipped frame)
        const m = new Uint8Array(W * H);
        for (let y = 2; y < 6; y++) for (let x = 30; x < 36; x++) m[y * W + x] = 1;
        r[0] = { ...r[0]!, boxes: Float32Array.from([...r[0]!.boxes, 29.5, 1.5, 36.5, 6.5]), scores: Float32Array.from([0.9, 0.6]), classes: Int32Array.from([1, 1]), maskScores: Float32Array.from([0.8, 0.5]), masks: [r[0]!.masks[0]!, m] };
      }
      return r;
    };
    const preds = await predictGray(model, IMAGE, W, H, { ...OPTS, tta: true });
    expect(preds.length).toBe(2);
    const spurious = preds.find((p) => p.score < 0.5)!;
    expect(spurious.score).toBeCloseTo(0.6 / 4, 6); // WBF 'avg' over 4 models, seen once
    // mapped back through the vertical flip: y 2..5 -> 26..29
    expect([spurious.mask.x0, spurious.mask.y0, spurious.mask.width, spurious.mask.height]).toEqual([30, 26, 6, 4]);
  });
});

describe('predictor with paste regions', () => {
  it('builds the same crops from maskRegions (no full masks) as from full-image masks, with and without TTA', async () => {
    const plain = new StandInModel();
    const regional = new StandInModel();
    const inner = regional.inference.bind(regional);
    // The stand-in's masks handed over as regions with a zero margin (as the paste regions have),
    // and no full-image masks.
    regional.inference = async (batch) =>
      (await inner(batch)).map((r, i) => {
        const [W, H] = [batch[i]!.origWidth, batch[i]!.origHeight];
        return {
          ...r,
          masks: [],
          maskRegions: r.masks.map((m) => {
            const c = maskToCrop(m, W, H);
            const x0 = Math.max(c.x0 - 2, 0);
            const y0 = Math.max(c.y0 - 1, 0);
            const width = Math.min(c.x0 + c.width + 3, W) - x0;
            const height = Math.min(c.y0 + c.height + 2, H) - y0;
            const data = new Uint8Array(width * height);
            for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) data[y * width + x] = m[(y0 + y) * W + x0 + x]!;
            return { x0, y0, width, height, data };
          }),
        };
      });
    for (const tta of [false, true]) {
      const want = await predictGray(plain, IMAGE, W, H, { ...OPTS, tta });
      const got = await predictGray(regional, IMAGE, W, H, { ...OPTS, tta });
      expect(got.length).toBe(want.length);
      expect(got).toEqual(want);
    }
  });

  it('rejects a region outside the image', async () => {
    const model = new StandInModel();
    const inner = model.inference.bind(model);
    model.inference = async (batch) => (await inner(batch)).map((r) => ({ ...r, maskRegions: [{ x0: W - 2, y0: 0, width: 3, height: 1, data: new Uint8Array(3) }] }));
    await expect(predictGray(model, IMAGE, W, H, OPTS)).rejects.toThrow(/mask region 3x1 at \(38, 0\)/);
  });
});

describe('evaluator', () => {
  it('a perfect mask scores segm AP 100 and competition score 1; the padded box bbox AP 90', async () => {
    const gt = {
      images: [{ id: 1, width: W, height: H, file_name: 'a.png' }],
      annotations: [{ id: 1, image_id: 1, category_id: 2, segmentation: cocoRleToJson(encodeCocoRle(L, H, W)), area: 228, bbox: [4, 3, 20, 24] as [number, number, number, number], iscrowd: 0 }],
      categories: [{ id: 1, name: 'shsy5y' }, { id: 2, name: 'astro' }, { id: 3, name: 'cort' }],
    };
    const out = await inferenceOnDataset(imagePredictor(new StandInModel(), OPTS), gt, { imageRoot: '/x', readGray: () => IMAGE });
    expect(out.metrics['segm/AP']).toBeCloseTo(100, 6);
    // box IoU 480/525 = 0.914: matched at IoU thresholds 0.50..0.90, not 0.95
    expect(out.metrics['bbox/AP']).toBeCloseTo(90, 6);
    expect(out.metrics['competition/score']).toBe(1);
    expect(out.results.length).toBe(1);
  });
});
