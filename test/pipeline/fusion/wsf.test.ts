import { describe, expect, it } from 'vitest';
import type { MaskCrop } from '../../../structures/mask-crop';
import { cropArea } from '../../../structures/mask-crop';
import { TTA_TRANSFORMS, transformBox, transformCrop, transformImage } from '../../../pipeline/engine/tta';
import { weightedSegmentsFusion, type PredictionSet } from '../../../pipeline/fusion/wsf';

const W = 40;
const H = 30;
function rect(x0: number, y0: number, w: number, h: number): MaskCrop {
  return { imageWidth: W, imageHeight: H, x0, y0, width: w, height: h, data: new Uint8Array(w * h).fill(1) };
}
const set = (masks: MaskCrop[], scores: number[]): PredictionSet => ({
  boxes: masks.map((m) => [m.x0, m.y0, m.x0 + m.width, m.y0 + m.height]),
  scores,
  labels: masks.map(() => 1),
  masks,
});

describe('TTA transforms', () => {
  it('are self-inverse on images, crops and boxes', () => {
    const img = Uint8Array.from({ length: W * H }, (_, i) => i % 251);
    const m = rect(3, 4, 5, 2);
    m.data[0] = 0;
    for (const t of TTA_TRANSFORMS) {
      expect(transformImage(transformImage(img, W, H, t), W, H, t)).toEqual(img);
      expect(transformCrop(transformCrop(m, t), t)).toEqual(m);
      expect(transformBox(transformBox([0.1, 0.2, 0.4, 0.7], t), t).map((v) => +v.toFixed(12))).toEqual([0.1, 0.2, 0.4, 0.7]);
    }
    expect(transformCrop(m, 'hflip').x0).toBe(W - 3 - 5);
    expect(transformBox([0.1, 0.2, 0.4, 0.7], 'both').map((v) => +v.toFixed(12))).toEqual([0.6, 0.3, 0.9, 0.8]);
  });
});

describe('weighted segments fusion', () => {
  it('four agreeing passes fuse to the same mask with score avg*min(4,4)/4', () => {
    const passes = [0, 1, 2, 3].map(() => set([rect(5, 5, 10, 8)], [0.8]));
    const out = weightedSegmentsFusion(passes, { imageWidth: W, imageHeight: H });
    expect(out.length).toBe(1);
    expect(out[0]!.score).toBeCloseTo(0.8, 6);
    expect(out[0]!.members).toBe(4);
    expect(cropArea(out[0]!.mask)).toBe(80);
  });

  it('votes: with 4 members a pixel needs 2 votes; a box seen once survives with score/4', () => {
    const a = rect(5, 5, 10, 8);
    const b = rect(6, 5, 10, 8);
    const passes = [set([a], [0.9]), set([a], [0.9]), set([b], [0.9]), set([b, rect(30, 20, 5, 5)], [0.9, 0.6])];
    const out = weightedSegmentsFusion(passes, { imageWidth: W, imageHeight: H });
    expect(out.length).toBe(2);
    // columns 5..15 all have >= 2 votes; the crop to the fused box keeps x in [floor(5.5), floor(15.5)) = 5..14
    // and y in [5, floor(30 * float32(13/30))) = 5..11: WBF's float32 box puts y2 just under 13, as upstream
    expect(out[0]!.mask.x0).toBe(5);
    expect(out[0]!.mask.width).toBe(10);
    expect(cropArea(out[0]!.mask)).toBe(10 * 7);
    expect(out[1]!.score).toBeCloseTo(0.6 / 4, 12);
    expect(cropArea(out[1]!.mask)).toBe(25);
  });

  it('skips raw boxes under the threshold before fusing', () => {
    const out = weightedSegmentsFusion([set([rect(1, 1, 4, 4)], [0.2])], { imageWidth: W, imageHeight: H, skipBoxThr: 0.5 });
    expect(out).toEqual([]);
  });
});
