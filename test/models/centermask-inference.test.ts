// CenterMask.inference end to end on a small random-weight model (FCOS score threshold 0 so that
// it detects something): masks and paste regions agree; the caller's score threshold / top-k, which
// inference applies before the ROI heads, give the same detections as filtering the full result.
import { beforeAll, describe, expect, it } from 'vitest';
import { init, regionToMask } from '../../engine';
import { manualSeed } from '../../engine/nn/init';
import { Rng } from '../../runtime/rng';
import { CenterMask, type ImageInput, type Instances } from '../../models/centermask';
import { loadConfig } from '../../models/config/config';
import { selectDetections } from '../../models/postprocess';

let model: CenterMask;
let input: ImageInput;
let all: Instances;

beforeAll(async () => {
  await init();
  manualSeed(3);
  const cfg = loadConfig('configs/centermask_lite_V_19_slim_eSE_FPN_ms_4x.yaml', [
    'MODEL.FCOS.NUM_CLASSES', '3', 'MODEL.ROI_HEADS.NUM_CLASSES', '3',
    'MODEL.FCOS.INFERENCE_TH_TEST', '0.0', 'MODEL.FCOS.POST_NMS_TOPK_TEST', '16',
  ]);
  model = new CenterMask(cfg);
  model.eval();
  const rng = new Rng(11);
  const [h, w] = [64, 96];
  const gray = Float32Array.from({ length: h * w }, () => rng.uniform(0, 255));
  const image = new Float32Array(3 * h * w);
  for (let c = 0; c < 3; c++) image.set(gray, c * h * w);
  // The original image is larger: masks are pasted at 100 x 150.
  input = { image, height: h, width: w, origHeight: 100, origWidth: 150 };
  [all] = (await model.inference([input])) as [Instances];
}, 300_000);

describe('CenterMask.inference', () => {
  it('returns full-image masks equal to their paste regions', () => {
    const n = all.scores.length;
    expect(n).toBeGreaterThan(3);
    expect(all.masks.length).toBe(n);
    expect(all.maskRegions!.length).toBe(n);
    let on = 0;
    all.masks.forEach((m, i) => {
      expect(m.length).toBe(100 * 150);
      expect(Buffer.from(regionToMask(all.maskRegions![i]!, [100, 150])).equals(Buffer.from(m)), `mask ${i}`).toBe(true);
      on += m.reduce((a, v) => a + v, 0);
    });
    expect(on, 'some mask pixels are on').toBeGreaterThan(0);
  });

  it('score threshold and top-k before the ROI heads give the filtered full result; fullMasks: false', async () => {
    const sorted = Array.from(all.scores).sort((a, b) => a - b);
    const opts = { scoreThreshold: sorted[1]!, topK: Math.max(1, all.scores.length - 3) };
    const [got] = (await model.inference([input], { ...opts, fullMasks: false })) as [Instances];
    const rows = Array.from(selectDetections(all.scores, Array.from(all.scores, (_, i) => i), opts));
    expect(rows.length).toBeLessThan(all.scores.length);
    expect(got.masks).toEqual([]);
    expect(Array.from(got.scores)).toEqual(rows.map((r) => all.scores[r]));
    expect(Array.from(got.classes)).toEqual(rows.map((r) => all.classes[r]));
    expect(Array.from(got.boxes)).toEqual(rows.flatMap((r) => Array.from(all.boxes.subarray(4 * r, 4 * r + 4))));
    // The mask head ran on fewer detections: allow float rounding from other kernel plans.
    rows.forEach((r, j) => expect(Math.abs(got.maskScores[j]! - all.maskScores[r]!)).toBeLessThan(1e-5));
    let diff = 0;
    rows.forEach((r, j) => {
      const a = regionToMask(got.maskRegions![j]!, [100, 150]);
      const b = all.masks[r]!;
      for (let i = 0; i < a.length; i++) diff += a[i] !== b[i] ? 1 : 0;
    });
    expect(diff, 'mask pixels differing from the unfiltered run').toBeLessThanOrEqual(2);
  });
});
