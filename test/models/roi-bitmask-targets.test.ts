// Mask-head and MaskIoU targets for bitmask ground truth against the fixture from
// scripts/fixtures/make_bitmask_target_fixtures.py (torchvision roi_align as Detectron2's
// BitMasks.crop_and_resize calls it; the centre-in-box area ratio). Masks are given to the code
// under test as boxed bitmasks (only their bounding box stored), so the test also checks that
// sampling outside the stored box reads zeros exactly as the full image would.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { bitmaskCropAndResize, bitmaskIouRatio, maskTargets } from '../../models/roi/targets';
import { maskToCrop } from '../../structures/mask-crop';

interface Case {
  height: number;
  width: number;
  size: number;
  masks: number[][];
  boxes: number[][];
  targets: number[][];
  ratios: number[];
}
const fx = JSON.parse(readFileSync('test/fixtures/train/bitmask_targets.json', 'utf8')) as { cases: Case[] };

describe('bitmask mask targets', () => {
  it('equal BitMasks.crop_and_resize (torchvision roi_align, aligned, adaptive sampling) bit for bit', () => {
    let n = 0;
    for (const c of fx.cases) {
      c.masks.forEach((m, i) => {
        const got = bitmaskCropAndResize(maskToCrop(Uint8Array.from(m), c.width, c.height), c.boxes[i]!, c.size);
        expect(Array.from(got), `case ${c.width}x${c.height} instance ${i}`).toEqual(c.targets[i]);
        n++;
      });
    }
    expect(n).toBeGreaterThan(10);
  });

  it('give the centre-in-box MaskIoU ratio, and maskTargets combines both', () => {
    for (const c of fx.cases) {
      const masks = c.masks.map((m) => maskToCrop(Uint8Array.from(m), c.width, c.height));
      masks.forEach((m, i) => expect(bitmaskIouRatio(m, c.boxes[i]!)).toBeCloseTo(c.ratios[i]!, 12));
      const t = maskTargets(Float32Array.from(c.boxes.flat()), masks.map((bitmask) => ({ bitmask })), c.size);
      const s2 = c.size * c.size;
      masks.forEach((_, i) => {
        const target = Array.from(t.targets.subarray(i * s2, (i + 1) * s2));
        expect(target).toEqual(c.targets[i]);
        const count = target.reduce((a, b) => a + b, 0);
        expect(t.ratios[i]).toBeCloseTo(c.ratios[i]!, 12);
        expect(t.fullAreas[i]).toBeCloseTo(count / Math.max(c.ratios[i]!, 1e-10), 9);
      });
    }
  });
});
