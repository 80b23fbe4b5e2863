import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { cocoRleToJson, encodeCocoRle, type Bbox } from '../../../structures/coco-rle';
import type { CocoDataset, CocoResult } from '../../../pipeline/data/coco/types';
import { SUMMARY_KEYS, cocoEvaluate } from '../../../pipeline/evaluation/coco-eval';
import { linspace } from '../../../pipeline/evaluation/coco-params';

interface RefCase {
  gt: CocoDataset;
  results: CocoResult[];
  stats: Record<string, number[]>;
}
const fixture = JSON.parse(readFileSync(new URL('../fixtures/cocoeval-reference.json', import.meta.url), 'utf8')) as {
  cases: RefCase[];
};

const H = 40;
const W = 50;
function rectRle(x: number, y: number, w: number, h: number) {
  const m = new Uint8Array(H * W);
  for (let r = y; r < y + h; r++) for (let c = x; c < x + w; c++) m[r * W + c] = 1;
  return cocoRleToJson(encodeCocoRle(m, H, W));
}
function gtSet(boxes: Bbox[]): CocoDataset {
  return {
    images: [{ id: 1, width: W, height: H, file_name: 'a.png' }],
    categories: [{ id: 1, name: 'cell' }],
    annotations: boxes.map((b, i) => ({
      id: i + 1,
      image_id: 1,
      category_id: 1,
      bbox: b,
      area: b[2] * b[3],
      iscrowd: 0,
      segmentation: rectRle(...b),
    })),
  };
}
const det = (b: Bbox, score: number): CocoResult => ({ image_id: 1, category_id: 1, score, segmentation: rectRle(...b) });

describe('COCO evaluation (pycocotools semantics)', () => {
  it('generates thresholds like np.linspace', () => {
    const iou = linspace(0.5, 0.95, 10);
    expect(iou[5]).toBe(0.75);
    expect(iou[1]).toBe(0.55);
    expect(linspace(0, 1, 101)[7]).toBe(0.07);
  });

  it('perfect detections: AP = AR = 1 (areas 100 and 400 are small objects, medium/large -1)', () => {
    const boxes: Bbox[] = [[2, 2, 10, 10], [20, 10, 20, 20]];
    const s = cocoEvaluate(gtSet(boxes), boxes.map((b, i) => det(b, 0.9 - i * 0.1)), { iouType: 'segm' }).summary;
    expect(s.AP).toBeCloseTo(1, 12);
    expect(s.AP50).toBeCloseTo(1, 12);
    expect(s.AR100).toBe(1);
    expect(s.APs).toBeCloseTo(1, 12);
    expect(s.APm).toBe(-1);
    expect(s.APl).toBe(-1);
    expect(s.AR1).toBe(0.5);
  });

  it('one of two objects missed: recall stops at 0.5, AP = 51/101', () => {
    const boxes: Bbox[] = [[2, 2, 10, 10], [20, 10, 20, 20]];
    const s = cocoEvaluate(gtSet(boxes), [det(boxes[0]!, 0.8)], { iouType: 'segm' }).summary;
    expect(s.AP).toBeCloseTo(51 / 101, 12);
    expect(s.AR100).toBe(0.5);
  });

  it('shifted detection: IoU 80/120 = 0.667 counts at thresholds 0.50..0.65 (4 of 10)', () => {
    // shifted by 4 rows instead: 60/140 = 0.43, below every threshold
    const s = cocoEvaluate(gtSet([[2, 2, 10, 10]]), [det([2, 6, 10, 10], 0.9)], { iouType: 'segm' }).summary;
    const s2 = cocoEvaluate(gtSet([[2, 2, 10, 10]]), [det([2, 4, 10, 10], 0.9)], { iouType: 'segm' }).summary;
    expect(s.AP).toBe(0);
    expect(s2.AP).toBeCloseTo(0.4, 12);
    expect(s2.AP50).toBeCloseTo(1, 12); // pycocotools: 1/(1+eps)
    expect(s2.AP75).toBe(0);
  });

  it('duplicate detection: the lower-scored copy is a false positive after the true one (AP stays 1)', () => {
    const b: Bbox = [2, 2, 10, 10];
    const s = cocoEvaluate(gtSet([b]), [det(b, 0.9), det(b, 0.8)], { iouType: 'segm' }).summary;
    expect(s.AP).toBeCloseTo(1, 12);
    // a false positive ranked first halves precision at recall 1
    const s2 = cocoEvaluate(gtSet([b]), [det([30, 20, 10, 10], 0.95), det(b, 0.5)], { iouType: 'segm' }).summary;
    expect(s2.AP).toBeCloseTo(0.5, 12);
  });

  it('no detections at all: AP 0 where there is ground truth; no ground truth: -1', () => {
    const s = cocoEvaluate(gtSet([[2, 2, 10, 10]]), [], { iouType: 'segm' }).summary;
    expect(s.AP).toBe(0);
    expect(s.AR100).toBe(0);
    const empty = cocoEvaluate(gtSet([]), [det([2, 2, 5, 5], 0.5)], { iouType: 'segm' }).summary;
    for (const k of SUMMARY_KEYS) expect(empty[k]).toBe(-1);
  });

  it.each(fixture.cases.map((c, i) => [i, c] as const))('equals pycocotools to 1e-12 on random case %i', (_i, c) => {
    for (const [key, expected] of Object.entries(c.stats)) {
      const [iouType, ...md] = key.split('-');
      const out = cocoEvaluate(c.gt, c.results, { iouType: iouType as 'segm' | 'bbox', maxDets: md.map(Number) }).summary;
      const got = SUMMARY_KEYS.map((k) => out[k]);
      got.forEach((v, j) => expect(v, `${key} ${SUMMARY_KEYS[j]}`).toBeCloseTo(expected[j]!, 12));
    }
  });
});
