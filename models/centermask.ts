// The CenterMask meta-architecture (Detectron2 GeneralizedRCNN with the FCOS proposal generator
// and CenterROIHeads), built from a config with the original module tree and names:
//   backbone (FPN over VoVNet), proposal_generator.fcos_head, roi_heads.{mask_head, maskiou_head}.
// Preprocessing: (image - PIXEL_MEAN) / PIXEL_STD in the config's channel order (BGR), zero padding
// after normalisation up to a multiple of the backbone's size divisibility (32). No resizing here:
// callers resize (ResizeShortestEdge) before, as Detectron2's data loader does.
import { Module } from '../engine/nn/module';
import { UserError } from '../runtime/errors';
import { noGrad } from '../engine/autograd';
import { fromArray, scopeAsync, type Tensor } from '../engine/tensor';
import type { CfgNode } from './config/config';
import { buildBackbone, buildFCOSHead } from './build';
import type { FPN } from './fpn';
import type { FCOSHead, FCOSHeadOutputs } from './fcos/head';
import { computeLocations, levelShapesOf } from './fcos/locations';
import { computeFcosTargets } from './fcos/targets';
import { fcosLosses } from './fcos/losses';
import { fcosPredictProposals } from './fcos/inference';
import { CenterROIHeads } from './roi/heads';
import type { MaskCrop } from '../structures/mask-crop';
import { Container } from './layers';
import { detectorPostprocess, postprocessBoxes, selectDetections, type MaskRegion } from './postprocess';

/** One input image, already resized; `origHeight/origWidth` is the size results are mapped back to. */
export interface ImageInput {
  /** CHW, 3 channels in the config's INPUT.FORMAT order (BGR), values 0..255. */
  image: Float32Array;
  height: number;
  width: number;
  origHeight: number;
  origWidth: number;
}

/** Ground truth of one image in the resized image's coordinates. */
export interface GtInstances {
  /** n x 4 (x0, y0, x1, y1). */
  boxes: Float32Array;
  /** 0-based class indices. */
  classes: Int32Array;
  /** Per instance, its polygons as flat [x0, y0, x1, y1, ...] lists (INPUT.MASK_FORMAT polygon). */
  polygons?: number[][][];
  /** Per instance, its bitmask inside its box (INPUT.MASK_FORMAT bitmask). */
  masks?: readonly MaskCrop[];
}

/** Detections of one image in original-image coordinates. */
export interface Instances {
  boxes: Float32Array;
  scores: Float32Array;
  classes: Int32Array;
  /** score x predicted mask IoU (the score used for segm evaluation, as CenterMask2 does). */
  maskScores: Float32Array;
  /** Each origHeight x origWidth, 0/1, row-major (empty when inference was asked for regions only). */
  masks: Uint8Array[];
  /** Each mask inside its paste region (zero outside it), when the model provides them. */
  maskRegions?: MaskRegion[];
}

export interface InferenceOptions {
  /**
   * Filters a caller would apply to the detections afterwards (on the detection score, then the
   * topK highest): applied before the ROI heads, so dropped detections cost no mask head or paste.
   */
  scoreThreshold?: number;
  topK?: number;
  /** Build the full-image `masks` (default true); `maskRegions` are always returned. */
  fullMasks?: boolean;
}

export type LossDict = Record<'loss_fcos_cls' | 'loss_fcos_loc' | 'loss_fcos_ctr' | 'loss_mask' | 'loss_maskiou', Tensor>;

export class CenterMask extends Module {
  readonly backbone: FPN;
  readonly fcosHead: FCOSHead;
  readonly roiHeads: CenterROIHeads | undefined;
  private readonly fcosLevels: string[];

  constructor(readonly cfg: CfgNode) {
    super();
    const m = cfg.MODEL;
    if (m.META_ARCHITECTURE !== 'GeneralizedRCNN') throw new UserError(`MODEL.META_ARCHITECTURE '${m.META_ARCHITECTURE}' is not supported (GeneralizedRCNN)`);
    if (m.PROPOSAL_GENERATOR.NAME !== 'FCOS') throw new UserError(`MODEL.PROPOSAL_GENERATOR.NAME '${m.PROPOSAL_GENERATOR.NAME}' is not supported (FCOS)`);
    if (cfg.INPUT.FORMAT !== 'BGR' && cfg.INPUT.FORMAT !== 'RGB') throw new UserError(`INPUT.FORMAT '${cfg.INPUT.FORMAT}' is not supported (BGR or RGB)`);
    this.backbone = this.registerModule('backbone', buildBackbone(cfg));
    this.fcosHead = this.registerModule('proposal_generator', new Container()).add('fcos_head', buildFCOSHead(cfg));
    this.fcosLevels = m.FCOS.IN_FEATURES;
    for (const f of this.fcosLevels) {
      if (!this.backbone.levelNames.includes(f)) throw new UserError(`MODEL.FCOS.IN_FEATURES: the FPN has no level '${f}' (it has ${this.backbone.levelNames.join(', ')})`);
    }
    if (m.MASK_ON) {
      if (m.ROI_HEADS.NAME !== 'CenterROIHeads') throw new UserError(`MODEL.ROI_HEADS.NAME '${m.ROI_HEADS.NAME}' is not supported (CenterROIHeads)`);
      if (m.ROI_MASK_HEAD.NAME !== 'SpatialAttentionMaskHead') throw new UserError(`MODEL.ROI_MASK_HEAD.NAME '${m.ROI_MASK_HEAD.NAME}' is not supported (SpatialAttentionMaskHead)`);
      if (m.ROI_MASK_HEAD.ASSIGN_CRITERION !== 'ratio') throw new UserError(`MODEL.ROI_MASK_HEAD.ASSIGN_CRITERION '${m.ROI_MASK_HEAD.ASSIGN_CRITERION}' is not supported (ratio, as every CenterMask config uses)`);
      const strides = m.ROI_HEADS.IN_FEATURES.map((f) => this.backbone.strides[this.backbone.levelNames.indexOf(f)]!);
      this.roiHeads = this.registerModule(
        'roi_heads',
        new CenterROIHeads({
          inFeatures: m.ROI_HEADS.IN_FEATURES,
          strides,
          inChannels: m.FPN.OUT_CHANNELS,
          numClasses: m.ROI_HEADS.NUM_CLASSES,
          poolerResolution: m.ROI_MASK_HEAD.POOLER_RESOLUTION,
          samplingRatio: m.ROI_MASK_HEAD.POOLER_SAMPLING_RATIO,
          maskHead: { numConv: m.ROI_MASK_HEAD.NUM_CONV, convDim: m.ROI_MASK_HEAD.CONV_DIM, clsAgnostic: m.ROI_MASK_HEAD.CLS_AGNOSTIC_MASK },
          maskIouOn: m.MASKIOU_ON,
          maskIouHead: { numConv: m.ROI_MASKIOU_HEAD.NUM_CONV, convDim: m.ROI_MASKIOU_HEAD.CONV_DIM },
          maskIouLossWeight: m.MASKIOU_LOSS_WEIGHT,
          batchSizePerImage: m.ROI_HEADS.BATCH_SIZE_PER_IMAGE,
          positiveFraction: m.ROI_HEADS.POSITIVE_FRACTION,
          iouThreshold: m.ROI_HEADS.IOU_THRESHOLDS[0],
          samplingSeed: cfg.SEED >= 0 ? cfg.SEED : 0,
        }),
      );
    }
  }

  /** Normalise and pad a batch into [N, 3, H, W] (zeros after normalisation, as ImageList does). */
  preprocess(batch: readonly ImageInput[]): Tensor {
    if (!batch.length) throw new Error('CenterMask: empty batch');
    const div = this.backbone.sizeDivisibility;
    const H = Math.ceil(Math.max(...batch.map((b) => b.height)) / div) * div;
    const W = Math.ceil(Math.max(...batch.map((b) => b.width)) / div) * div;
    const mean = this.cfg.MODEL.PIXEL_MEAN;
    const std = this.cfg.MODEL.PIXEL_STD;
    const host = new Float32Array(batch.length * 3 * H * W);
    batch.forEach((b, n) => {
      if (b.image.length !== 3 * b.height * b.width) {
        throw new Error(`CenterMask: image ${n} has ${b.image.length} values, expected 3 x ${b.height} x ${b.width}`);
      }
      for (let c = 0; c < 3; c++) {
        const m = mean[c]!;
        const s = std[c]!;
        for (let y = 0; y < b.height; y++) {
          const src = (c * b.height + y) * b.width;
          const dst = ((n * 3 + c) * H + y) * W;
          for (let x = 0; x < b.width; x++) host[dst + x] = (b.image[src + x]! - m) / s;
        }
      }
    });
    return fromArray(host, [batch.length, 3, H, W]);
  }

  private headInputs(features: Record<string, Tensor>): Tensor[] {
    return this.fcosLevels.map((f) => features[f]!);
  }

  private fcosGeometry(head: FCOSHeadOutputs): { locations: Float32Array[]; strides: number[] } {
    const strides = this.fcosLevels.map((f) => this.backbone.strides[this.backbone.levelNames.indexOf(f)]!);
    const locations = computeLocations(levelShapesOf(head.logits.map((t) => t.shape)), strides);
    return { locations, strides };
  }

  /**
   * Training forward: the five CenterMask losses as scalar tensors with autograd. FCOS proposals
   * for the mask branch are read back once (NMS), as in the original, where they leave the graph.
   */
  async losses(batch: readonly ImageInput[], gts: readonly GtInstances[]): Promise<LossDict> {
    if (gts.length !== batch.length) throw new Error(`CenterMask.losses: ${batch.length} images but ${gts.length} ground-truth sets`);
    const f = this.cfg.MODEL.FCOS;
    const x = this.preprocess(batch);
    const { features } = this.backbone.forward(x);
    const head = this.fcosHead.forward(this.headInputs(features));
    const { locations, strides } = this.fcosGeometry(head);
    const targets = computeFcosTargets(locations, gts, {
      numClasses: f.NUM_CLASSES,
      strides,
      sizesOfInterest: f.SIZES_OF_INTEREST,
      centerSample: f.CENTER_SAMPLE,
      radius: f.POS_RADIUS,
    });
    const fcos = fcosLosses(head, targets, { focalAlpha: f.LOSS_ALPHA, focalGamma: f.LOSS_GAMMA, locLossType: f.LOC_LOSS_TYPE as 'giou' });
    if (!this.roiHeads) throw new UserError('CenterMask.losses: MODEL.MASK_ON is false; the mask losses need the ROI heads');
    const proposals = await fcosPredictProposals(head, {
      locations,
      strides,
      scoreThreshold: f.INFERENCE_TH_TRAIN,
      preNmsTopK: f.PRE_NMS_TOPK_TRAIN,
      nmsThreshold: f.NMS_TH,
      postNmsTopK: f.POST_NMS_TOPK_TRAIN,
    });
    const boxes: Float32Array[] = [];
    for (const p of proposals) {
      boxes.push((await p.proposals.boxes.data()) as Float32Array);
      disposeDetections(p);
    }
    const roi = this.roiHeads.losses(
      this.roiFeatures(features),
      boxes,
      gts.map((g) => ({ boxes: g.boxes, classes: g.classes, ...(g.masks ? { masks: g.masks } : { polygons: g.polygons ?? [] }) })),
      batch.map((b) => [b.height, b.width]),
    );
    return { ...fcos, loss_mask: roi.loss_mask, loss_maskiou: roi.loss_maskiou ?? zeroLike(roi.loss_mask) } as LossDict;
  }

  private roiFeatures(features: Record<string, Tensor>): Tensor[] {
    return this.cfg.MODEL.ROI_HEADS.IN_FEATURES.map((f) => features[f]!);
  }

  /** Inference: detections with masks pasted at the original image size. */
  async inference(batch: readonly ImageInput[], opts: InferenceOptions = {}): Promise<Instances[]> {
    const f = this.cfg.MODEL.FCOS;
    return scopeAsync(async () => {
      const { features, head } = noGrad(() => {
        const x = this.preprocess(batch);
        const { features } = this.backbone.forward(x);
        return { features, head: this.fcosHead.forward(this.headInputs(features)) };
      });
      const { locations, strides } = this.fcosGeometry(head);
      const proposals = await fcosPredictProposals(head, {
        locations,
        strides,
        scoreThreshold: f.INFERENCE_TH_TEST,
        preNmsTopK: f.PRE_NMS_TOPK_TEST,
        nmsThreshold: f.NMS_TH,
        postNmsTopK: f.POST_NMS_TOPK_TEST,
      });
      const perImage: { boxes: Float32Array; scores: Float32Array; classes: Int32Array }[] = [];
      for (const [i, p] of proposals.entries()) {
        const boxes = (await p.proposals.boxes.data()) as Float32Array;
        const scores = (await p.proposals.scores.data()) as Float32Array;
        const classes = (await p.proposals.classes.data()) as Int32Array;
        // detector_postprocess drops the boxes that are empty once scaled and clipped (and the
        // caller's filters drop more): select them first, so the ROI heads (the per-detection
        // cost) and the paste see only what is returned. Each detection's mask is computed
        // independently of the others, so the survivors' results are unchanged.
        const b = batch[i]!;
        const { keep } = postprocessBoxes(boxes, [b.height, b.width], [b.origHeight, b.origWidth]);
        const rows = selectDetections(scores, keep, opts);
        if (rows.length === scores.length) perImage.push({ boxes, scores, classes });
        else {
          const kept = new Float32Array(4 * rows.length);
          rows.forEach((r, j) => kept.set(boxes.subarray(4 * r, 4 * r + 4), 4 * j));
          perImage.push({ boxes: kept, scores: Float32Array.from(rows, (r) => scores[r]!), classes: Int32Array.from(rows, (r) => classes[r]!) });
        }
      }
      const results: Instances[] = [];
      if (!this.roiHeads) throw new UserError('CenterMask.inference: MODEL.MASK_ON is false; masks need the ROI heads');
      const roi = noGrad(() => this.roiHeads!.inference(this.roiFeatures(features), perImage, batch.map((b) => [b.height, b.width])));
      for (let i = 0; i < batch.length; i++) {
        const b = batch[i]!;
        const r = roi[i]!;
        const { boxes, scores, classes, maskScores, masks, maskRegions } = await detectorPostprocess({
          boxes: perImage[i]!.boxes,
          scores: perImage[i]!.scores,
          classes: perImage[i]!.classes,
          maskScores: (await r.maskScores.data()) as Float32Array,
          maskProbs: r.maskProbs,
          inputSize: [b.height, b.width],
          outputSize: [b.origHeight, b.origWidth],
          fullMasks: opts.fullMasks,
        });
        results.push({ boxes, scores, classes, maskScores, masks, maskRegions });
      }
      return results;
    });
  }
}

function disposeDetections(p: Awaited<ReturnType<typeof fcosPredictProposals>>[number]): void {
  for (const d of [p.candidates, p.proposals]) for (const t of [d.boxes, d.scores, d.classes, d.locations]) t.dispose();
  p.proposals.candidateIndex.dispose();
}

function zeroLike(t: Tensor): Tensor {
  return noGrad(() => fromArray([0], t.shape));
}
