import { describe, expect, it } from 'vitest';
import { parseRle } from '../../../structures/rle';
import {
  COMPETITION_IOU_THRESHOLDS,
  competitionScore,
  imageScore,
  pooledScore,
} from '../../../pipeline/evaluation/competition-metric';

const r = (t: string) => parseRle(t, 24);

describe('competition metric', () => {
  it('uses numpy arange thresholds 0.50..0.95', () => {
    expect(COMPETITION_IOU_THRESHOLDS.length).toBe(10);
    expect(COMPETITION_IOU_THRESHOLDS[2]).toBe(0.6000000000000001);
    expect(COMPETITION_IOU_THRESHOLDS[9]).toBeCloseTo(0.95, 12);
  });

  it('reproduces the worked example (image 0.416667, dataset 0.208333, pooled 0.26)', () => {
    const img1 = { id: 'one', width: 6, truth: [r('1 2 7 2'), r('16 3 22 3')], pred: [r('1 3 7 3'), r('16 3 22 3'), r('6 1')] };
    const img2 = { id: 'two', width: 6, truth: [r('1 2 7 2'), r('16 3 22 3')], pred: [] };
    expect(imageScore(img1.truth, img1.pred, 6)).toBeCloseTo((4 * (2 / 3) + 6 * (1 / 4)) / 10, 12);
    const res = competitionScore([img1, img2]);
    expect(res.score).toBeCloseTo(0.2083333333, 9);
    expect(res.perImage).toEqual({ one: expect.closeTo(0.4166666667, 9), two: 0 });
    expect(pooledScore([img1, img2])).toBeCloseTo(0.26, 12);
  });

  it('needs IoU strictly above the threshold: IoU exactly 0.5 is a miss at t=0.50', () => {
    // truth 2 px, prediction 4 px containing it: IoU = 2/4
    expect(imageScore([r('1 2')], [r('1 4')], 6)).toBe(0);
    // IoU 3/4 hits t=0.50..0.70 (5 of 10 thresholds)
    expect(imageScore([r('1 3')], [r('1 4')], 6)).toBeCloseTo(0.5, 12);
  });

  it('scores empty truth and empty predictions as documented', () => {
    expect(imageScore([], [], 6)).toBe(1);
    expect(imageScore([], [r('1 2')], 6)).toBe(0);
    expect(imageScore([r('1 2')], [], 6)).toBe(0);
    expect(competitionScore([]).score).toBe(0);
  });

  it('gives 1 for a perfect prediction in any order', () => {
    const t = [r('1 2 7 2'), r('16 3 22 3'), r('12 1')];
    expect(imageScore(t, [t[2]!, t[0]!, t[1]!], 6)).toBe(1);
  });
});
