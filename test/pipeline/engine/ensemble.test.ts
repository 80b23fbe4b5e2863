// Model ensembling with WSF (pipeline/engine/ensemble.ts): a model ensembled with itself gives the
// model's own instances (the exact relation for identical passes is in ensemble.ts), and two
// different models give exactly the WSF of their two prediction sets with the model weights.
import { beforeAll, describe, expect, it } from 'vitest';
import { init } from '../../../runtime/runtime';
import { cropToMask } from '../../../structures/mask-crop';
import { predictEnsembleGray } from '../../../pipeline/engine/ensemble';
import { predictGray, type PredictorOptions } from '../../../pipeline/engine/predictor';
import { weightedSegmentsFusion } from '../../../pipeline/fusion/wsf';
import { WSF_SKIP_THRESHOLDS } from '../../../pipeline/data/cell-types';
import type { HostTensor } from '../../../engine/checkpoint/host-tensor';
import type { TrainableModel } from '../../../pipeline/engine/model';
import { StandInModel } from './standin';

const W = 40;
const H = 32;
const L = new Uint8Array(W * H);
for (let y = 3; y < 27; y++) for (let x = 4; x < 10; x++) L[y * W + x] = 1;
for (let y = 21; y < 27; y++) for (let x = 10; x < 24; x++) L[y * W + x] = 1;
const IMAGE = Uint8Array.from(L, (v) => (v ? 230 : 30));
const OPTS: PredictorOptions = { minSize: 32, maxSize: 1000, categoryIds: [1, 2, 3] };

beforeAll(async () => {
  await init();
});

/** A second model: the stand-in's L (its foot one pixel shorter) plus a small square of its own. */
function otherModel(): StandInModel {
  const model = new StandInModel();
  const inner = model.inference.bind(model);
  model.inference = async (batch) => {
    const r = (await inner(batch))[0]!;
    const l = r.masks[0]!.slice();
    for (let y = 21; y < 27; y++) l[y * W + 23] = 0;
    const sq = new Uint8Array(W * H);
    for (let y = 2; y < 6; y++) for (let x = 30; x < 36; x++) sq[y * W + x] = 1;
    return [{ boxes: Float32Array.from([3.5, 2.5, 23.5, 27.5, 29.5, 1.5, 36.5, 6.5]), scores: Float32Array.from([0.7, 0.6]), classes: Int32Array.from([1, 1]), maskScores: Float32Array.from([0.75, 0.5]), masks: [l, sq] }];
  };
  return model;
}

describe('model ensemble (WSF)', () => {
  it('a model with itself, no TTA: the same instances, masks and boxes; the score is the detection score', async () => {
    const m = new StandInModel();
    const single = await predictGray(m, IMAGE, W, H, OPTS);
    const ens = await predictEnsembleGray([{ model: m, opts: OPTS }, { model: m, opts: OPTS }], IMAGE, W, H);
    expect(ens.length).toBe(single.length);
    for (let i = 0; i < ens.length; i++) {
      expect(ens[i]!.categoryId).toBe(single[i]!.categoryId);
      expect(Buffer.from(cropToMask(ens[i]!.mask)).equals(Buffer.from(cropToMask(single[i]!.mask)))).toBe(true);
      ens[i]!.box.forEach((v, k) => expect(v).toBeCloseTo(single[i]!.box[k]!, 4));
      // fused instances carry the fused detection score (as TTA does), the single model's mask score is 0.8
      expect(ens[i]!.score).toBeCloseTo(single[i]!.score, 6);
      expect(ens[i]!.maskScore).toBeCloseTo(single[i]!.score, 6);
    }
  });

  it('a model with itself, with TTA (even clusters): equal to the model\'s own TTA prediction', async () => {
    const m = new StandInModel();
    const o = { ...OPTS, tta: true };
    const single = await predictGray(m, IMAGE, W, H, o);
    const ens = await predictEnsembleGray([{ model: m, opts: o, weight: 2 }, { model: m, opts: o, weight: 2 }], IMAGE, W, H);
    expect(ens.length).toBe(single.length);
    for (let i = 0; i < ens.length; i++) {
      expect(ens[i]!.mask).toEqual(single[i]!.mask);
      expect(ens[i]!.score).toBeCloseTo(single[i]!.score, 6);
      ens[i]!.box.forEach((v, k) => expect(v).toBeCloseTo(single[i]!.box[k]!, 4));
    }
  });

  it('two different models with weights 2,1: exactly the WSF of their two prediction sets', async () => {
    const a = new StandInModel();
    const b = otherModel();
    const ens = await predictEnsembleGray([{ model: a, opts: OPTS, weight: 2 }, { model: b, opts: OPTS, weight: 1 }], IMAGE, W, H);
    const pa = await predictGray(a, IMAGE, W, H, OPTS);
    const pb = await predictGray(b, IMAGE, W, H, OPTS);
    const sets = [pa, pb].map((ps) => ({ boxes: ps.map((p) => p.box), scores: ps.map((p) => p.score), labels: ps.map((p) => p.categoryId), masks: ps.map((p) => p.mask) }));
    // category 2 = astro: its skip threshold
    const direct = weightedSegmentsFusion(sets, { imageWidth: W, imageHeight: H, iouThr: 0.55, skipBoxThr: WSF_SKIP_THRESHOLDS.astro, voteFraction: 0.5, weights: [2, 1] });
    expect(ens).toEqual(direct.filter((f) => f.mask.width > 0).map((f) => ({ box: f.box, score: f.score, maskScore: f.score, categoryId: f.label, mask: f.mask })));
    expect(ens.length).toBe(2);
    // the L: weighted mean (0.9*2 + 0.7*1) / 3; the square, seen by model b only: 0.6 * 1 * min(2, 1) / 3
    expect(ens[0]!.score).toBeCloseTo((0.9 * 2 + 0.7) / 3, 5);
    expect(ens[1]!.score).toBeCloseTo(0.2, 5);
    // vote over 2 members keeps pixels of either mask: the L with its full foot
    expect(Buffer.from(cropToMask(ens[0]!.mask)).equals(Buffer.from(L))).toBe(true);
  });
});

describe('model ensemble of the demo model and a perturbed copy', () => {
  it('is exactly the WSF of the two models\' predictions', async () => {
    const { loadConfig } = await import('../../../models/config/config');
    const { loadModelForInference } = await import('../../../pipeline/engine/predictor');
    const { modelStateToHost } = await import('../../../pipeline/engine/checkpoint');
    const { synthImages } = await import('../../../pipeline/data/synth/dataset');
    const cfg = loadConfig('configs/synth_centermask_lite_V_19_slim_scratch.yaml', ['INPUT.MIN_SIZE_TEST', '96', 'INPUT.MAX_SIZE_TEST', '128']);
    const demo = 'models/zoo/centermask_lite_V_19_slim_synth.safetensors';
    const a = (await loadModelForInference(cfg, demo)) as TrainableModel;
    const b = (await loadModelForInference(cfg, demo)) as TrainableModel;
    const state = await modelStateToHost(b);
    for (const k of ['proposal_generator.fcos_head.cls_logits.bias', 'roi_heads.mask_head.predictor.bias']) {
      const t = state.get(k)!;
      state.set(k, { ...t, data: Float32Array.from(t.data as Float32Array, (v) => v + 0.4) } as HostTensor);
    }
    b.loadStateDict(state, { strict: true });
    const first = synthImages({ seed: 3, trainImages: 2, testImages: 0, width: 128, height: 96 }, 'train').next().value!;
    const [gray, width, height] = [first.pixels, 128, 96];
    const opts: PredictorOptions = { minSize: 96, maxSize: 128, categoryIds: [1, 2, 3], wsf: { skipThresholds: 0.05 } };
    const pa = await predictGray(a, gray, width, height, opts);
    const pb = await predictGray(b, gray, width, height, opts);
    expect(pa.length).toBeGreaterThan(0);
    expect(pb.map((p) => p.score)).not.toEqual(pa.map((p) => p.score));
    const ens = await predictEnsembleGray([{ model: a, opts, weight: 2 }, { model: b, opts, weight: 1 }], gray, width, height);
    const sets = [pa, pb].map((ps) => ({ boxes: ps.map((p) => p.box), scores: ps.map((p) => p.score), labels: ps.map((p) => p.categoryId), masks: ps.map((p) => p.mask) }));
    const direct = weightedSegmentsFusion(sets, { imageWidth: width, imageHeight: height, iouThr: 0.55, skipBoxThr: 0.05, voteFraction: 0.5, weights: [2, 1] });
    expect(ens).toEqual(direct.filter((f) => f.mask.width > 0).map((f) => ({ box: f.box, score: f.score, maskScore: f.score, categoryId: f.label, mask: f.mask })));
    a.dispose();
    b.dispose();
  }, 300_000);
});
