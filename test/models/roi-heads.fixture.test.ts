// CenterMask2's ROI stage against the real CenterMask2 (detectron2 v0.6) fixtures, for every model
// folder that stores the ROI outputs (in the default set V39, the only one with roi_heads weights):
// one backbone/FPN forward (no grad), then
//  - eval: the stored FCOS proposals through CenterROIHeads.inference -> levels, pooled features,
//    mask logits/probs, MaskIoU, mask scores; detector_postprocess -> final boxes and pasted masks;
//  - train: the stored train-mode proposals + GT polygons through forwardTrain -> the foreground
//    set, mask targets, ratios, MaskIoU targets/predictions, both losses, and the gradients of
//    loss_mask + loss_maskiou w.r.t. the roi_heads parameters in grads.safetensors (the FCOS losses
//    give those parameters no gradient, so the stored total-loss gradients apply).
// Written for any fixture set in this layout: the model is built from the folder's config.yaml
// (backbone, FPN, ROI features and strides, heads, classes, sampling, pixel mean/std); sizes,
// counts and parameter names come from the files.
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { add, backward, fromArray, init, noGrad, type Tensor } from '../../engine';
import type { HostTensor } from '../../engine/checkpoint/host-tensor';
import { readFixtureWeights } from './fixture-weights';
import { CenterMask } from '../../models/centermask';
import type { CenterROIHeads, RoiInference, RoiTrainOutputs } from '../../models/roi/heads';
import { detectorPostprocess, type PostprocessedDetections } from '../../models/postprocess';
import { fixtureConfig, fixtureDir, fixtureModels, fixtureRoot, paddedModelInput, readTensors, relToMaxAbs, toNumbers } from './fixture-util';

const TOL = 1e-4;

const MODELS = fixtureModels({
  files: ['weights.safetensors', 'eval.safetensors', 'train.safetensors', 'grads.safetensors'],
  tensors: { 'eval.safetensors': ['proposals.boxes', 'roi.mask_logits', 'final.masks_packbits'], 'train.safetensors': ['train_proposals.boxes', 'roi_sampled.gt_classes', 'mask.targets'] },
});

it('finds at least one model folder with ROI-head outputs in the fixture set', () => {
  fixtureRoot();
  expect(MODELS.length, `no model folder whose manifest.json lists ROI outputs (roi.mask_logits, mask.targets) in ${fixtureDir()}`).toBeGreaterThan(0);
});

interface GtJson {
  image_size_hw: [number, number];
  instances: { class: number; polygons: number[][]; box_xyxy: number[] }[];
}

const f32 = (t: HostTensor) => Float32Array.from(toNumbers(t));

async function expectRel(got: Tensor, ref: HostTensor, what: string, tol = TOL): Promise<number> {
  expect(got.shape, what).toEqual(ref.shape);
  const { rel, maxAbs } = relToMaxAbs(Array.from(await got.data(), Number), toNumbers(ref));
  expect(rel, `${what}: max abs err ${maxAbs}, ${rel} of max-abs`).toBeLessThan(tol);
  return rel;
}

describe.each(MODELS)('CenterMask2 %s: ROI heads and post-processing vs the oracle', (DIR) => {
  let model: CenterMask;
  let heads: CenterROIHeads;
  let evalRef: Map<string, HostTensor>;
  let trainRef: Map<string, HostTensor>;
  let gradRef: Map<string, HostTensor>;
  let roi: RoiInference;
  let final: PostprocessedDetections;
  let train: RoiTrainOutputs;
  let imageHW: [number, number];
  let numGt: number;

  beforeAll(async () => {
    await init();
    const root = fixtureRoot();
    const cfg = fixtureConfig(DIR);
    const gt = JSON.parse(readFileSync(`${root}/gt.json`, 'utf8')) as GtJson;
    imageHW = gt.image_size_hw;
    model = new CenterMask(cfg);
    if (!model.roiHeads) throw new Error(`${DIR}/config.yaml: MODEL.MASK_ON is off, but the folder stores ROI outputs`);
    heads = model.roiHeads;
    model.loadStateDict(await readFixtureWeights(`${root}/${DIR}/weights.safetensors`)); // strict
    const input = await readTensors(`${root}/input.safetensors`);
    const image = input.get('image')!;
    // Normalised and padded as the model does it (any fixture image size).
    const padded = paddedModelInput(image, model.backbone.sizeDivisibility, cfg.MODEL.PIXEL_MEAN, cfg.MODEL.PIXEL_STD);
    const x = fromArray(padded.data, padded.shape);
    const features = noGrad(() => model.backbone.forward(x).features);
    evalRef = await readTensors(`${root}/${DIR}/eval.safetensors`);
    trainRef = await readTensors(`${root}/${DIR}/train.safetensors`);
    gradRef = await readTensors(`${root}/${DIR}/grads.safetensors`);

    // Eval path.
    const boxes = f32(evalRef.get('proposals.boxes')!);
    const scores = f32(evalRef.get('proposals.scores')!);
    const classes = Int32Array.from(toNumbers(evalRef.get('proposals.classes')!));
    roi = noGrad(() => heads.inference(features, [{ boxes, scores, classes }], [imageHW], { intermediates: true }))[0]!;
    final = await detectorPostprocess({
      boxes,
      scores,
      classes,
      maskScores: (await roi.maskScores.data()) as Float32Array,
      maskProbs: roi.maskProbs,
      inputSize: imageHW,
      outputSize: imageHW,
      cpuRegion: true,
    });

    // Train path: GT from input.safetensors (boxes, classes) and gt.json (polygons).
    const gtBoxes = f32(input.get('gt.boxes')!);
    const gtClasses = Int32Array.from(toNumbers(input.get('gt.classes')!));
    numGt = gtClasses.length;
    train = heads.forwardTrain(features, [f32(trainRef.get('train_proposals.boxes')!)], [{ boxes: gtBoxes, classes: gtClasses, polygons: gt.instances.map((i) => i.polygons) }], [imageHW]);
    backward(add(train.losses.loss_mask, train.losses.loss_maskiou!));
  }, 900_000);

  it('assigns every proposal the stored ROI level', () => {
    expect(Array.from(roi.levels)).toEqual(toNumbers(evalRef.get('roi.level')!));
  });

  it('matches pooled features, mask logits/probs, MaskIoU and mask scores within 1e-4 of max-abs', async () => {
    const first = evalRef.get('roi.pooled_features_first4')!;
    const n = first.shape[0]!;
    const { narrow } = await import('../../engine');
    const rels: Record<string, number> = {};
    rels.pooled = await expectRel(narrow(roi.pooled!, 0, 0, n), first, 'roi.pooled_features_first4');
    rels.logits = await expectRel(roi.maskLogits!, evalRef.get('roi.mask_logits')!, 'roi.mask_logits');
    rels.probs = await expectRel(roi.maskProbs, evalRef.get('roi.mask_probs')!, 'roi.mask_probs');
    rels.maskiou = await expectRel(roi.maskIou!, evalRef.get('roi.maskiou')!, 'roi.maskiou');
    rels.maskScores = await expectRel(roi.maskScores, evalRef.get('roi.mask_scores')!, 'roi.mask_scores');
    console.log('eval rel errors', rels);
  });

  it('post-processes to the stored final detections and pasted masks', () => {
    expect(Array.from(final.keep)).toEqual(toNumbers(evalRef.get('final.proposal_index')!));
    expect(Array.from(final.boxes)).toEqual(toNumbers(evalRef.get('final.boxes')!));
    expect(Array.from(final.scores)).toEqual(toNumbers(evalRef.get('final.scores')!));
    expect(Array.from(final.classes)).toEqual(toNumbers(evalRef.get('final.classes')!));
    const ms = relToMaxAbs(final.maskScores, toNumbers(evalRef.get('final.mask_scores')!));
    expect(ms.rel, `final.mask_scores max abs err ${ms.maxAbs}`).toBeLessThan(TOL);
    const packed = evalRef.get('final.masks_packbits')!;
    const [n, h, wb] = packed.shape as [number, number, number];
    expect([n, h]).toEqual([final.masks.length, imageHW[0]]);
    const bits = packed.data as Uint8Array;
    let flipped = 0;
    let on = 0;
    for (let k = 0; k < n; k++) {
      const m = final.masks[k]!;
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < imageHW[1]; x++) {
          const ref = (bits[(k * h + y) * wb + (x >> 3)]! >> (7 - (x & 7))) & 1;
          on += ref;
          if (ref !== m[y * imageHW[1] + x]) flipped++;
        }
      }
    }
    console.log(`pasted masks: ${flipped} of ${n * h * imageHW[1]} pixels differ (${on} on in the reference)`);
    // The README: pixels within 1e-4 of the 0.5 threshold may flip; our probabilities are ~1e-6 off.
    expect(flipped).toBeLessThanOrEqual(Math.max(10, Math.ceil(on * 1e-4)));
  });

  it('samples the stored foreground set (as a set) from proposals + GT', () => {
    const cls = toNumbers(trainRef.get('roi_sampled.gt_classes')!);
    const gi = toNumbers(trainRef.get('roi_sampled.gt_index')!);
    const bx = toNumbers(trainRef.get('roi_sampled.proposal_boxes')!);
    const bg = heads.opts.numClasses;
    const key = (b: ArrayLike<number>, o: number, c: number, g: number) => `${b[o]},${b[o + 1]},${b[o + 2]},${b[o + 3]}|${c}|${g}`;
    const refFg = cls.flatMap((c, i) => (c === bg ? [] : [key(bx, 4 * i, c, gi[i]!)])).sort();
    const s = train.sampled[0]!;
    const ours = Array.from({ length: s.numFg }, (_, i) => key(s.boxes, 4 * i, s.gtClasses[i]!, s.gtIndex[i]!)).sort();
    // Subsampling keeps every candidate that fits (ROI_HEADS.BATCH_SIZE_PER_IMAGE, at most
    // POSITIVE_FRACTION of it foreground); past that it draws a random subset, and only the counts
    // can be compared.
    const { batchSizePerImage = 512, positiveFraction = 0.25 } = heads.opts;
    const candidates = trainRef.get('train_proposals.boxes')!.shape[0]! + numGt;
    const fgQuota = Math.floor(batchSizePerImage * positiveFraction);
    if (refFg.length <= fgQuota) expect(ours).toEqual(refFg);
    else expect(ours.length).toBe(refFg.length);
    if (candidates <= batchSizePerImage && refFg.length <= fgQuota) expect(s.boxes.length / 4).toBe(cls.length);
  });

  it('builds the stored mask targets (exact), ratios, MaskIoU targets and predictions, and pools/predicts the same', async () => {
    const refBoxes = toNumbers(trainRef.get('mask.fg_proposal_boxes')!);
    const refCls = toNumbers(trainRef.get('mask.fg_gt_classes')!);
    const refGi = toNumbers(trainRef.get('mask.fg_gt_index')!);
    const F = refCls.length;
    expect(train.fgClasses.length).toBe(F);
    // Our foreground order is index order; map each stored row to ours by box and GT.
    const perm = refCls.map((c, r) => {
      const j = Array.from({ length: F }, (_, k) => k).find(
        (k) => train.fgClasses[k] === c && train.fgGtIndex[k] === refGi[r] && [0, 1, 2, 3].every((d) => train.fgBoxes[4 * k + d] === refBoxes[4 * r + d]),
      );
      expect(j, `stored fg row ${r} not found`).toBeDefined();
      return j!;
    });
    const { indexSelect } = await import('../../engine');
    const idx = fromArray(perm, [F], 'i32');
    const rels: Record<string, number> = {};
    rels.pooled = await expectRel(indexSelect(train.pooled, 0, idx), trainRef.get('mask.pooled_features')!, 'mask.pooled_features');
    rels.logits = await expectRel(indexSelect(train.logits, 0, idx), trainRef.get('mask.logits')!, 'mask.logits');
    const targets = Array.from(await indexSelect(train.targets, 0, idx).data(), Number);
    expect(targets).toEqual(toNumbers(trainRef.get('mask.targets')!));
    const ratios = perm.map((k) => train.ratios[k]!);
    const rr = relToMaxAbs(ratios, toNumbers(trainRef.get('mask.ratios')!));
    expect(rr.maxAbs, 'mask.ratios').toBeLessThan(1e-6);
    rels.maskIouTargets = await expectRel(indexSelect(train.maskIouTargets!, 0, idx), trainRef.get('mask.maskiou_targets')!, 'mask.maskiou_targets', 1e-6);
    rels.maskIouPred = await expectRel(indexSelect(train.maskIouPred!, 0, idx), trainRef.get('mask.maskiou_pred')!, 'mask.maskiou_pred');
    console.log('train rel errors', rels, 'ratio max abs err', rr.maxAbs);
  });

  it('gives loss_mask and loss_maskiou within 1e-5', async () => {
    const lm = (await train.losses.loss_mask.item()) as number;
    const li = (await train.losses.loss_maskiou!.item()) as number;
    const refLm = toNumbers(trainRef.get('loss.loss_mask')!)[0]!;
    const refLi = toNumbers(trainRef.get('loss.loss_maskiou')!)[0]!;
    console.log(`loss_mask ${lm} vs ${refLm} (err ${Math.abs(lm - refLm)}); loss_maskiou ${li} vs ${refLi} (err ${Math.abs(li - refLi)})`);
    expect(Math.abs(lm - refLm)).toBeLessThan(1e-5);
    expect(Math.abs(li - refLi)).toBeLessThan(1e-5);
  });

  it('gives the stored gradients of the roi_heads parameters within 1e-4 of max-abs', async () => {
    const params = new Map(model.namedParameters());
    const names = [...gradRef.keys()].filter((k) => k.startsWith('roi_heads.'));
    expect(names.length).toBeGreaterThan(0);
    const rels: Record<string, number> = {};
    for (const name of names) {
      const p = params.get(name);
      expect(p, `${name} is not a parameter`).toBeDefined();
      expect(p!.grad, `${name} got no gradient`).toBeTruthy();
      rels[name] = await expectRel(p!.grad!, gradRef.get(name)!, `grad ${name}`);
    }
    console.log('grad rel errors', rels);
  });
});
