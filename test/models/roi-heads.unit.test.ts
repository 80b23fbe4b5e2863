// CenterROIHeads on small random inputs: Detectron2 parameter names, batch handling (a batch of two
// images equals the images run one by one), images without foreground / without GT in training,
// and clear errors for bad configurations and inputs. The numerics against the real CenterMask2 are
// in roi-heads.fixture.test.ts.
import { beforeAll, describe, expect, it } from 'vitest';
import { contiguous, init, narrow, noGrad, randn, type Tensor } from '../../engine';
import { Module } from '../../engine/nn/module';
import { CenterROIHeads } from '../../models/roi/heads';
import { expectClose, testSeed } from '../util';

const K = 2;
const C = 4;

function build(): CenterROIHeads {
  return new CenterROIHeads({
    inFeatures: ['p3', 'p4', 'p5'],
    strides: [8, 16, 32],
    inChannels: C,
    numClasses: K,
    maskHead: { numConv: 1, convDim: C },
    maskIouHead: { numConv: 2, convDim: 6 },
  });
}

function features(seed: number, n: number): Record<string, Tensor> {
  return { p3: randn([n, C, 8, 10], seed), p4: randn([n, C, 4, 5], seed + 1), p5: randn([n, C, 2, 3], seed + 2) };
}

describe('CenterROIHeads', () => {
  beforeAll(async () => {
    await init();
  });

  it('registers mask_head and maskiou_head with Detectron2 parameter names', () => {
    const parent = new Module();
    parent.registerModule('roi_heads', build());
    const names = parent.namedParameters().map(([k]) => k);
    for (const k of [
      'roi_heads.mask_head.mask_fcn1.weight',
      'roi_heads.mask_head.spatialAtt.conv.weight',
      'roi_heads.mask_head.deconv.bias',
      'roi_heads.mask_head.predictor.weight',
      'roi_heads.maskiou_head.maskiou_fcn1.weight',
      'roi_heads.maskiou_head.maskiou_fcn2.bias',
      'roi_heads.maskiou_head.maskiou_fc1.weight',
      'roi_heads.maskiou_head.maskiou.bias',
    ]) {
      expect(names).toContain(k);
    }
    // The MaskIoU input has ROI_MASK_HEAD.CONV_DIM + 1 channels.
    expect(parent.namedParameters().find(([k]) => k === 'roi_heads.maskiou_head.maskiou_fcn1.weight')![1].shape).toEqual([6, C + 1, 3, 3]);
  });

  it('a batch of two images gives what the images give one by one', async () => {
    const seed = testSeed();
    const heads = build();
    const feats = features(seed, 2);
    const props = [
      { boxes: Float32Array.from([3, 4, 30, 40, -5, 2, 70, 60, 10, 10, 12.5, 11]), scores: [0.9, 0.5, 0.3], classes: [1, 0, 1] },
      { boxes: Float32Array.from([20, 8, 75, 50]), scores: [0.7], classes: [0] },
    ];
    const sizes: [number, number][] = [
      [64, 80],
      [60, 77],
    ];
    const both = noGrad(() => heads.inference(feats, props, sizes));
    for (let i = 0; i < 2; i++) {
      const one = noGrad(() =>
        heads.inference(
          Object.fromEntries(Object.entries(feats).map(([k, t]) => [k, contiguous(narrow(t, 0, i, 1))])),
          [props[i]!],
          [sizes[i]!],
        ),
      )[0]!;
      expect(Array.from(both[i]!.levels)).toEqual(Array.from(one.levels));
      expect(both[i]!.maskProbs.shape).toEqual([props[i]!.scores.length, 1, 28, 28]);
      expectClose(await both[i]!.maskProbs.data(), await one.maskProbs.data(), { atol: 1e-6, what: `maskProbs image ${i} seed ${seed}` });
      expectClose(await both[i]!.maskIou!.data(), await one.maskIou!.data(), { atol: 1e-6, what: `maskIou image ${i}` });
      const iou = await one.maskIou!.data();
      const ms = props[i]!.scores.map((s, r) => s * iou[r * K + props[i]!.classes[r]!]!);
      expectClose(await one.maskScores.data(), ms, { atol: 1e-6, what: `maskScores image ${i}` });
    }
  });

  it('trains on images with and without foreground; no GT gives zero losses', async () => {
    const seed = testSeed();
    const heads = build();
    const feats = features(seed, 2);
    const gt = [
      { boxes: Float32Array.from([8, 8, 40, 36]), classes: [1], polygons: [[[8, 8, 40, 8, 40, 36, 8, 36]]] },
      { boxes: new Float32Array(0), classes: [], polygons: [] },
    ];
    const out = heads.forwardTrain(feats, [Float32Array.from([9, 8, 40, 35, 50, 40, 60, 60]), Float32Array.from([1, 1, 20, 20])], gt, [
      [64, 80],
      [64, 80],
    ]);
    expect(out.sampled.map((s) => s.numFg)).toEqual([2, 0]);
    expect(Array.from(out.fgClasses)).toEqual([1, 1]);
    const lm = await out.losses.loss_mask.item();
    const li = await out.losses.loss_maskiou!.item();
    expect(Number.isFinite(lm) && lm > 0).toBe(true);
    expect(Number.isFinite(li) && li >= 0).toBe(true);
    const none = heads.forwardTrain(feats, [new Float32Array(0), new Float32Array(0)], [gt[1]!, gt[1]!], [
      [64, 80],
      [64, 80],
    ]);
    expect(await none.losses.loss_mask.item()).toBe(0);
    expect(await none.losses.loss_maskiou!.item()).toBe(0);
  });

  it('rejects bad configurations and inputs clearly', () => {
    expect(() => new CenterROIHeads({ inFeatures: ['p2', 'p3'], strides: [4, 8], inChannels: C, numClasses: K, maskHead: { numConv: 1, convDim: 8 } })).toThrow(/strides must be 8, 16, 32/);
    expect(() => new CenterROIHeads({ inFeatures: ['p3'], strides: [8, 16], inChannels: C, numClasses: K, maskHead: { numConv: 1, convDim: 8 } })).toThrow(/1 inFeatures but 2 strides/);
    expect(() => new CenterROIHeads({ inFeatures: ['p3'], strides: [8], inChannels: C, numClasses: K, maskHead: { numConv: 1, convDim: 8 } })).toThrow(/CONV_DIM \(8\) equal to the pooled feature width \(4\)/);
    const heads = build();
    const feats = features(1, 1);
    expect(() => heads.inference({ p3: feats.p3!, p4: feats.p4! }, [{ boxes: Float32Array.from([0, 0, 5, 5]), scores: [1], classes: [0] }], [[64, 80]])).toThrow(/'p5' missing/);
    expect(() => heads.inference(feats, [{ boxes: Float32Array.from([0, 0, 5, 5]), scores: [1, 2], classes: [0] }], [[64, 80]])).toThrow(/image 0 has 1 boxes but 1 classes and 2 scores/);
  });
});
