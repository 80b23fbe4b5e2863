// ROI training targets: IoU / Matcher / subsampling vs float64 references and hand cases, polygon
// rasterisation inside boxes (checked exactly against the CenterMask2 fixture's mask targets and
// ratios, which come from pycocotools), and the device-side MaskIoU targets and loss vs a float64
// reference, forward and backward (the reference gradient checked by finite differences).
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { backward, fromArray, init } from '../../engine';
import { Rng, expectClose, numericGrad, testSeed } from '../util';
import { labelAndSampleProposals, maskIouRatio, maskTargets, matchProposals, rasterizePolygonsWithinBox, subsampleLabels } from '../../models/roi/targets';
import { pairwiseIou } from '../../structures/boxes';
import { polygonsArea, polygonsToBitmask } from '../../structures/polygons';
import { maskIouLoss, maskIouTargetsOnDevice } from '../../models/roi/heads';
import { fixtureDir, fixtureModels, fixtureRoot, readTensors, toNumbers } from './fixture-util';

function randomBoxes(rng: Rng, n: number): Float32Array {
  const b = new Float32Array(4 * n);
  for (let i = 0; i < n; i++) {
    const x = rng.uniform(0, 50);
    const y = rng.uniform(0, 50);
    b.set([x, y, x + rng.uniform(0, 30), y + rng.uniform(0, 30)], 4 * i);
  }
  return b;
}

function iouRef(a: ArrayLike<number>, i: number, b: ArrayLike<number>, j: number): number {
  const w = Math.max(0, Math.min(a[4 * i + 2]!, b[4 * j + 2]!) - Math.max(a[4 * i]!, b[4 * j]!));
  const h = Math.max(0, Math.min(a[4 * i + 3]!, b[4 * j + 3]!) - Math.max(a[4 * i + 1]!, b[4 * j + 1]!));
  const inter = w * h;
  const area = (t: ArrayLike<number>, k: number) => (t[4 * k + 2]! - t[4 * k]!) * (t[4 * k + 3]! - t[4 * k + 1]!);
  return inter > 0 ? inter / (area(a, i) + area(b, j) - inter) : 0;
}

describe('ROI matching and sampling', () => {
  it('pairwiseIou equals the float64 reference to float32 rounding', () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    const a = randomBoxes(rng, 7);
    const b = randomBoxes(rng, 13);
    b.set([a[0]!, a[1]!, a[2]!, a[3]!], 0); // an identical pair
    b.set([200, 200, 210, 210], 4); // disjoint from everything
    const got = pairwiseIou(a, b);
    const ref = Array.from({ length: 7 * 13 }, (_, k) => iouRef(a, Math.floor(k / 13), b, k % 13));
    expectClose(got, ref, { atol: 1e-6, rtol: 1e-5, what: `pairwiseIou seed ${seed}` });
    expect(got[0]).toBe(1);
    for (let i = 0; i < 7; i++) expect(got[i * 13 + 1]).toBe(0);
  });

  it('Matcher: best GT per proposal (first on ties), IoU >= threshold is foreground', () => {
    // 2 GT x 4 proposals.
    const iou = Float32Array.from([0.5, 0.2, 0.7, 0.0, 0.5, 0.49, 0.7, 0.0]);
    const { matchedIdx, labels } = matchProposals(iou, 2, 4, 0.5);
    expect(Array.from(matchedIdx)).toEqual([0, 1, 0, 0]);
    expect(Array.from(labels)).toEqual([1, 0, 1, 0]);
    const none = matchProposals(new Float32Array(0), 0, 3);
    expect(Array.from(none.labels)).toEqual([0, 0, 0]);
    expect(() => matchProposals(iou, 3, 4)).toThrow(/3 x 4/);
  });

  it('subsample_labels keeps every candidate that fits and draws a subset otherwise', () => {
    const seed = testSeed();
    const labels = [0, 3, 1, -1, 3, 2, 3, 3, 0];
    const all = subsampleLabels(labels, 512, 0.25, 3, new Rng(seed));
    expect(all.fg).toEqual([0, 2, 5, 8]);
    expect(all.bg).toEqual([1, 4, 6, 7]);
    const few = subsampleLabels(labels, 6, 0.25, 3, new Rng(seed)); // 1 fg place, 5 bg places
    expect(few.fg.length).toBe(1);
    expect([0, 2, 5, 8]).toContain(few.fg[0]);
    expect(few.bg).toEqual([1, 4, 6, 7]);
    const some = subsampleLabels(labels, 8, 0.5, 3, new Rng(seed));
    expect(some.fg.length).toBe(4);
    expect(new Set(some.fg).size).toBe(4);
  });

  it('appends the GT boxes, labels by IoU >= 0.5 and puts the foreground first', () => {
    const gt = { boxes: Float32Array.from([0, 0, 10, 10, 20, 20, 40, 30]), classes: [2, 0], polygons: [[[0, 0, 10, 0, 10, 10]], [[20, 20, 40, 20, 40, 30]]] };
    const props = Float32Array.from([0, 0, 10, 9, 50, 50, 60, 60, 20, 20, 40, 28, 0, 0, 20, 20]);
    const s = labelAndSampleProposals(props, gt, { numClasses: 3, rng: new Rng(1) });
    expect(s.numFg).toBe(4);
    expect(Array.from(s.sourceIndex)).toEqual([0, 2, 4, 5, 1, 3]);
    expect(Array.from(s.gtClasses)).toEqual([2, 0, 2, 0, 3, 3]);
    expect(Array.from(s.gtIndex)).toEqual([0, 1, 0, 1, -1, -1]);
    expect(Array.from(s.boxes.subarray(8, 12))).toEqual([0, 0, 10, 10]);
    expect(() => labelAndSampleProposals(props, { ...gt, classes: [1] }, { numClasses: 3, rng: new Rng(1) })).toThrow(/must agree/);
  });
});

describe('polygon mask targets', () => {
  it('shoelace area and rasterisation of axis-aligned shapes', () => {
    expect(polygonsArea([[0, 0, 4, 0, 4, 3, 0, 3]])).toBe(12);
    expect(polygonsArea([[0, 0, 4, 0, 0, 3], [10, 10, 12, 10, 12, 12, 10, 12]])).toBe(6 + 4);
    // A rectangle equal to the box fills the whole grid; one half of it, half the grid.
    const full = rasterizePolygonsWithinBox([[5, 7, 19, 7, 19, 21, 5, 21]], [5, 7, 19, 21], 28);
    expect(full.reduce((a, b) => a + b, 0)).toBe(28 * 28);
    const half = rasterizePolygonsWithinBox([[5, 7, 12, 7, 12, 21, 5, 21]], [5, 7, 19, 21], 28);
    expect(half.reduce((a, b) => a + b, 0)).toBe(14 * 28);
    for (let y = 0; y < 28; y++) for (let x = 0; x < 28; x++) expect(half[y * 28 + x]).toBe(x < 14 ? 1 : 0);
    expect(polygonsToBitmask([], 3, 4)).toEqual(new Uint8Array(12));
    // Box inside the polygon: the whole box is covered, ratio = box pixels / polygon area.
    expect(maskIouRatio([[0, 0, 100, 0, 100, 100, 0, 100]], [10, 10, 30.7, 20.2])).toBeCloseTo((20 * 10) / 10000, 12);
    expect(maskIouRatio([[0, 0, 10, 0, 10, 10, 0, 10]], [0, 0, 10, 10])).toBe(1);
  });

  // Every model folder of the fixture set that stores mask targets (V39 in the default set).
  const withTargets = fixtureModels({ files: ['train.safetensors'], tensors: { 'train.safetensors': ['mask.fg_proposal_boxes', 'mask.fg_gt_index', 'mask.targets', 'mask.ratios'] } });

  it('finds a fixture model folder with mask targets', () => {
    fixtureRoot();
    expect(withTargets.length, `no model folder whose manifest.json lists mask.targets in ${fixtureDir()}`).toBeGreaterThan(0);
  });

  it.each(withTargets)('reproduces the fixture mask targets exactly and the area ratios (pycocotools): %s', async (model) => {
    const root = fixtureRoot();
    const gt = JSON.parse(readFileSync(`${root}/gt.json`, 'utf8')) as { instances: { polygons: number[][] }[] };
    const train = await readTensors(`${root}/${model}/train.safetensors`);
    const boxes = Float32Array.from(toNumbers(train.get('mask.fg_proposal_boxes')!));
    const gi = toNumbers(train.get('mask.fg_gt_index')!);
    const ref = train.get('mask.targets')!;
    const size = ref.shape[1]!;
    const t = maskTargets(boxes, gi.map((g) => ({ polygons: gt.instances[g]!.polygons })), size);
    expect(Array.from(t.targets)).toEqual(toNumbers(ref));
    expectClose(Float32Array.from(t.ratios), toNumbers(train.get('mask.ratios')!), { atol: 0, rtol: 0, what: `${model} mask.ratios (as float32)` });
  });
});

describe('MaskIoU targets and loss on the device', () => {
  beforeAll(async () => {
    await init();
  });

  it('targets and loss equal the float64 reference; the loss gradient too (finite differences on the reference)', async () => {
    const seed = testSeed();
    const rng = new Rng(seed);
    const F = 5;
    const S = 7;
    const logits = Float32Array.from(rng.normalArray(F * S * S, 0, 1));
    const gtMask = Float32Array.from({ length: F * S * S }, () => (rng.next() < 0.4 ? 1 : 0));
    for (let i = 0; i < S * S; i++) gtMask[i] = 0; // ROI 0: empty target -> IoU 0, out of the loss
    const ratios = [0.3, 1, 0.8, 0.05, 1];
    const fullAreas = Float32Array.from({ length: F }, (_, r) => gtMask.subarray(r * S * S, (r + 1) * S * S).reduce((a, b) => a + b, 0) / ratios[r]!);
    const refTargets = Array.from({ length: F }, (_, r) => {
      let pred = 0;
      let ovr = 0;
      for (let i = r * S * S; i < (r + 1) * S * S; i++) {
        const p = logits[i]! > 0 ? 1 : 0;
        pred += p;
        ovr += p * gtMask[i]!;
      }
      return ovr / Math.max(pred + fullAreas[r]! - ovr, 1);
    });
    const targets = maskIouTargetsOnDevice(fromArray(logits, [F, S, S]), fromArray(gtMask, [F, S, S]), fullAreas);
    expectClose(await targets.data(), refTargets, { atol: 1e-6, rtol: 1e-6, what: `maskiou targets seed ${seed}` });
    expect(refTargets[0]).toBe(0);

    const pred = Float64Array.from(rng.normalArray(F, 0.3, 0.2));
    const refLoss = (p: Float64Array) => {
      let s = 0;
      let n = 0;
      for (let r = 0; r < F; r++) if (refTargets[r]! > 0) (s += 0.5 * (p[r]! - refTargets[r]!) ** 2), n++;
      return n ? (1.5 * s) / n : 0;
    };
    const predT = fromArray(Float32Array.from(pred), [F]);
    predT.requiresGrad = true;
    const loss = maskIouLoss(predT, targets, 1.5);
    expect(Math.abs((await loss.item()) - refLoss(pred))).toBeLessThan(1e-6);
    backward(loss);
    const n = refTargets.filter((t) => t > 0).length;
    const refGrad = Array.from(pred, (p, r) => (refTargets[r]! > 0 ? (1.5 * (p - refTargets[r]!)) / n : 0));
    expectClose(numericGrad(refLoss, pred), refGrad, { atol: 1e-6, what: 'reference gradient vs finite differences' });
    expectClose(await predT.grad!.data(), refGrad, { atol: 1e-6, rtol: 1e-5, what: `maskIouLoss gradient seed ${seed}` });
  });

  it('gives a zero loss and gradient when no target is positive', async () => {
    const pred = fromArray([0.2, -0.4], [2]);
    pred.requiresGrad = true;
    const loss = maskIouLoss(pred, fromArray([0, 0], [2]));
    expect(await loss.item()).toBe(0);
    backward(loss);
    expect(Array.from(await pred.grad!.data(), (v) => Number(v) + 0)).toEqual([0, 0]); // -0 counts as 0
  });
});
