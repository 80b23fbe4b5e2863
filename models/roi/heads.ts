// CenterMask2's `CenterROIHeads` (MASK_ON, MASKIOU_ON): ROIAlignV2 pooling with the "ratio" level
// rule, the SAG-Mask head and the MaskIoU head, for inference (mask probabilities of the predicted
// class, predicted mask IoU, mask score = score * IoU) and training (mask BCE on the sampled
// foreground proposals and the MaskIoU L2 loss). Box-level work (level assignment, matching,
// sampling, polygon targets) runs on the host; everything that depends on network outputs stays on
// the GPU, so the losses need no readback.
import { noGrad } from '../../engine/autograd';
import { Module } from '../../engine/nn/module';
import { binaryCrossEntropyWithLogits } from '../../engine/ops/losses';
import { clamp, div, mapRaw, maximum, mul, sigmoid, sub, square } from '../../engine/ops/elementwise';
import { indexSelect } from '../../engine/ops/gather';
import { sum } from '../../engine/ops/reduce';
import { narrow, reshape } from '../../engine/ops/view';
import { empty, fromArray, full, Tensor } from '../../engine/tensor';
import { launchMap } from '../../kernels/elementwise/map';
import { cat } from '../../engine/ops/join';
import { Rng } from '../../runtime/rng';
import { rt } from '../../runtime/runtime';
import { poolRois } from './pooler';
import { SpatialAttentionMaskHead } from './mask-head';
import { MaskIoUHead } from './maskiou-head';
import { type GtInstances, type GtMask, gtMaskOf, labelAndSampleProposals, maskTargets, type SampledProposals } from './targets';

export interface CenterROIHeadsOptions {
  /** ROI_HEADS.IN_FEATURES, finest first (p3, p4, p5). */
  inFeatures: string[];
  /** Their strides (8, 16, 32): a pyramid starting at stride 8 (the pooler's level 3). */
  strides: number[];
  /** Channels of the pooled features (the FPN width). */
  inChannels: number;
  /** ROI_HEADS.NUM_CLASSES. */
  numClasses: number;
  /** ROI_MASK_HEAD.POOLER_RESOLUTION (14) and POOLER_SAMPLING_RATIO (0 = adaptive). */
  poolerResolution?: number;
  samplingRatio?: number;
  /** ROI_MASK_HEAD.NUM_CONV / CONV_DIM (lite: 2 / 128; full: 4 / 256). */
  maskHead: { numConv: number; convDim: number; clsAgnostic?: boolean };
  /** MODEL.MASKIOU_ON (default true) and ROI_MASKIOU_HEAD.NUM_CONV / CONV_DIM. */
  maskIouOn?: boolean;
  maskIouHead?: { numConv: number; convDim: number };
  /** MODEL.MASKIOU_LOSS_WEIGHT (1). */
  maskIouLossWeight?: number;
  /** ROI_HEADS.BATCH_SIZE_PER_IMAGE (512), POSITIVE_FRACTION (0.25), IOU_THRESHOLDS[0] (0.5). */
  batchSizePerImage?: number;
  positiveFraction?: number;
  iouThreshold?: number;
  /** Seed of the proposal subsampling (matters only with more candidates than places). */
  samplingSeed?: number;
}

/** Detections of one image entering the mask branch (FCOS proposals after NMS). */
export interface RoiProposals {
  /** [R * 4] x0, y0, x1, y1 in input-image pixels, unclipped. */
  boxes: Float32Array;
  /** [R] detection scores. */
  scores: Tensor | ArrayLike<number>;
  /** [R] predicted classes. */
  classes: Tensor | ArrayLike<number>;
}

export interface RoiInference {
  /** [R, 1, M, M] sigmoid of the predicted class's mask logits. */
  maskProbs: Tensor;
  /** [R, K] MaskIoU head output (null when MaskIoU is off). */
  maskIou: Tensor | null;
  /** [R] score * maskIou[class] (the scores themselves when MaskIoU is off). */
  maskScores: Tensor;
  /** [R] pooling level (3..5). */
  levels: Int32Array;
  /** With `{ intermediates: true }`: pooled features [R, C, S, S] and mask logits [R, K, M, M]. */
  pooled?: Tensor;
  maskLogits?: Tensor;
}

export interface RoiTrainOutputs {
  losses: { loss_mask: Tensor; loss_maskiou?: Tensor };
  /** Per image: the sampled proposals (foreground first). */
  sampled: SampledProposals[];
  /** Foreground ROIs (all images concatenated), in the order the heads saw them. */
  fgBoxes: Float32Array;
  fgClasses: Int32Array;
  fgGtIndex: Int32Array;
  pooled: Tensor;
  logits: Tensor;
  /** [F, M, M] 0/1 float targets. */
  targets: Tensor;
  ratios: Float64Array;
  /** [F] MaskIoU regression targets (f32, no gradient); null without MaskIoU. */
  maskIouTargets: Tensor | null;
  /** [F, K] MaskIoU predictions; null without MaskIoU. */
  maskIouPred: Tensor | null;
}

function asTensor(v: Tensor | ArrayLike<number>, dtype: 'f32' | 'i32'): Tensor {
  if (v instanceof Tensor) {
    if (v.dtype !== dtype || v.ndim !== 1) throw new Error(`CenterROIHeads: expected a 1-D ${dtype} tensor, got ${v.dtype} [${v.shape}]`);
    return v;
  }
  return fromArray(Array.from(v), [v.length], dtype);
}

/** Row r * K + class[r] of a [R * K, ...] view: selects each ROI's class channel. */
function classRows(classes: Tensor, numChannels: number): Tensor {
  const out = empty(classes.shape, 'i32');
  launchMap({ name: 'roi_class_rows', expr: 'i32(i) * i32(s0) + i32(a)', inputs: [classes], out, scalars: [numChannels] });
  return out;
}

/** [R, K, ...] -> [R, ...]: the channel classes[r] of each row (gradient flows into `t`). */
function selectClass(t: Tensor, classes: Tensor): Tensor {
  const [r, k, ...rest] = t.shape as number[];
  if (k === 1) return reshape(t, [r!, ...rest]);
  return indexSelect(reshape(t, [r! * k!, ...rest]), 0, classRows(classes, k!));
}

export class CenterROIHeads extends Module {
  readonly maskHead: SpatialAttentionMaskHead;
  readonly maskIouHead: MaskIoUHead | null;
  readonly resolution: number;
  private readonly rng: Rng;

  constructor(readonly opts: CenterROIHeadsOptions) {
    super();
    const n = opts.inFeatures.length;
    if (n === 0 || opts.strides.length !== n) throw new Error(`CenterROIHeads: ${n} inFeatures but ${opts.strides.length} strides`);
    opts.strides.forEach((s, i) => {
      if (s !== 8 * 2 ** i) throw new Error(`CenterROIHeads: strides must be 8, 16, 32, ... (pooler levels from 3), got [${opts.strides}]`);
    });
    this.resolution = opts.poolerResolution ?? 14;
    this.maskHead = this.registerModule(
      'mask_head',
      new SpatialAttentionMaskHead({ inChannels: opts.inChannels, convDim: opts.maskHead.convDim, numConv: opts.maskHead.numConv, numClasses: opts.numClasses, clsAgnostic: opts.maskHead.clsAgnostic }),
    );
    this.maskIouHead = null;
    if (opts.maskIouOn ?? true) {
      const mi = opts.maskIouHead ?? { numConv: 2, convDim: opts.maskHead.convDim };
      if (opts.maskHead.convDim !== opts.inChannels) {
        // The original builds the MaskIoU input as CONV_DIM + 1 channels but feeds it the pooled
        // features (FPN width): any other config fails in its first forward.
        throw new Error(`CenterROIHeads: MaskIoU needs ROI_MASK_HEAD.CONV_DIM (${opts.maskHead.convDim}) equal to the pooled feature width (${opts.inChannels}), as in CenterMask2`);
      }
      // The MaskIoU input width is ROI_MASK_HEAD.CONV_DIM + 1 (not the FPN width), as in the original.
      this.maskIouHead = this.registerModule(
        'maskiou_head',
        new MaskIoUHead({ inputDim: opts.maskHead.convDim, convDim: mi.convDim, numConv: mi.numConv, numClasses: opts.numClasses, poolerResolution: this.resolution }),
      );
    }
    this.rng = new Rng(opts.samplingSeed ?? 0);
  }

  private levelFeatures(features: Record<string, Tensor> | Tensor[]): Tensor[] {
    if (Array.isArray(features)) {
      if (features.length !== this.opts.inFeatures.length) throw new Error(`CenterROIHeads: expected ${this.opts.inFeatures.length} feature maps (${this.opts.inFeatures}), got ${features.length}`);
      return features;
    }
    return this.opts.inFeatures.map((name) => {
      const t = features[name];
      if (!t) throw new Error(`CenterROIHeads: feature '${name}' missing (have ${Object.keys(features)})`);
      return t;
    });
  }

  private pool(features: Tensor[], boxes: Float32Array[], imageSizes: [number, number][]): { pooled: Tensor; levels: Int32Array } {
    if (boxes.length !== imageSizes.length || boxes.length !== features[0]!.shape[0]) {
      throw new Error(`CenterROIHeads: ${boxes.length} box lists, ${imageSizes.length} image sizes, batch ${features[0]!.shape[0]}; they must agree`);
    }
    return poolRois(features, boxes, imageSizes, { outputSize: this.resolution, scales: this.opts.strides.map((s) => 1 / s), samplingRatio: this.opts.samplingRatio ?? 0 });
  }

  /**
   * forward_with_given_boxes: for each image's detections, the mask probabilities of the predicted
   * class, the MaskIoU output and the mask scores. No readback.
   */
  inference(features: Record<string, Tensor> | Tensor[], proposals: RoiProposals[], imageSizes: [number, number][], opts: { intermediates?: boolean } = {}): RoiInference[] {
    const feats = this.levelFeatures(features);
    const counts = proposals.map((p) => p.boxes.length / 4);
    const len = (v: Tensor | ArrayLike<number>) => (v instanceof Tensor ? v.shape[0]! : v.length);
    proposals.forEach((p, i) => {
      const n = counts[i]!;
      if (!Number.isInteger(n) || len(p.classes) !== n || len(p.scores) !== n) {
        throw new Error(`CenterROIHeads.inference: image ${i} has ${p.boxes.length / 4} boxes but ${len(p.classes)} classes and ${len(p.scores)} scores`);
      }
    });
    const total = counts.reduce((a, b) => a + b, 0);
    const M = 2 * this.resolution;
    const K = this.opts.numClasses;
    const out: RoiInference[] = [];
    if (total === 0) {
      return proposals.map(() => ({ maskProbs: full([0, 1, M, M], 0), maskIou: this.maskIouHead ? full([0, K], 0) : null, maskScores: full([0], 0), levels: new Int32Array(0) }));
    }
    const { pooled, levels } = this.pool(feats, proposals.map((p) => p.boxes), imageSizes);
    const joined = (parts: Tensor[]) => (parts.length === 1 ? parts[0]! : cat(parts, 0));
    const classes = joined(proposals.map((p) => asTensor(p.classes, 'i32')));
    const scores = joined(proposals.map((p) => asTensor(p.scores, 'f32')));
    // The heads work ROI by ROI, so they run on chunks of ROIs whose largest activation (the
    // deconvolution's [n, convDim, M, M]) fits one storage binding: 500 detections of a 128-channel
    // head need 200 MB, over the 128 MiB many adapters allow. Chunking changes no value.
    const perRoi = Math.max(this.maskHead.opts.convDim, this.opts.inChannels) * M * M * 4;
    const chunk = Math.max(1, Math.floor(rt().gpu.limits.maxStorageBufferBindingSize / perRoi));
    const logitParts: Tensor[] = [];
    const probParts: Tensor[] = [];
    const iouParts: Tensor[] = [];
    for (let s = 0; s < total; s += chunk) {
      const n = Math.min(chunk, total - s);
      const whole = n === total;
      const pooledC = whole ? pooled : narrow(pooled, 0, s, n);
      const classesC = whole ? classes : narrow(classes, 0, s, n);
      const logitsC = this.maskHead.forward(pooledC);
      const probsC = reshape(sigmoid(selectClass(logitsC, classesC)), [n, 1, M, M]);
      logitParts.push(logitsC);
      probParts.push(probsC);
      if (this.maskIouHead) iouParts.push(this.maskIouHead.forward(pooledC, probsC));
    }
    const logits = joined(logitParts);
    const maskProbs = joined(probParts);
    let maskIou: Tensor | null = null;
    let maskScores = scores;
    if (this.maskIouHead) {
      maskIou = joined(iouParts);
      maskScores = mul(scores, selectClass(maskIou, classes));
    }
    let start = 0;
    proposals.forEach((_, i) => {
      const n = counts[i]!;
      const part = (t: Tensor) => (proposals.length === 1 ? t : narrow(t, 0, start, n));
      out.push({
        maskProbs: part(maskProbs),
        maskIou: maskIou && part(maskIou),
        maskScores: part(maskScores),
        levels: levels.slice(start, start + n),
        ...(opts.intermediates ? { pooled: part(pooled), maskLogits: part(logits) } : {}),
      });
      start += n;
    });
    return out;
  }

  /** Training losses (loss_mask, loss_maskiou) with every intermediate, for checks and logging. */
  forwardTrain(features: Record<string, Tensor> | Tensor[], proposals: Float32Array[], gt: GtInstances[], imageSizes: [number, number][]): RoiTrainOutputs {
    const feats = this.levelFeatures(features);
    if (proposals.length !== gt.length) throw new Error(`CenterROIHeads: ${proposals.length} proposal lists but ${gt.length} GT lists`);
    const K = this.opts.numClasses;
    const M = 2 * this.resolution;
    const sampled = proposals.map((p, i) =>
      labelAndSampleProposals(p, gt[i]!, {
        numClasses: K,
        batchSizePerImage: this.opts.batchSizePerImage,
        positiveFraction: this.opts.positiveFraction,
        iouThreshold: this.opts.iouThreshold,
        rng: this.rng,
      }),
    );
    // The mask branch sees only the foreground (select_foreground_proposals).
    const fgBoxesPerImage = sampled.map((s) => s.boxes.slice(0, 4 * s.numFg));
    const fgBoxes = new Float32Array(fgBoxesPerImage.reduce((a, b) => a + b.length, 0));
    const fgClasses: number[] = [];
    const fgGtIndex: number[] = [];
    const fgMasks: GtMask[] = [];
    let o = 0;
    sampled.forEach((s, i) => {
      fgBoxes.set(fgBoxesPerImage[i]!, o);
      o += fgBoxesPerImage[i]!.length;
      for (let k = 0; k < s.numFg; k++) {
        fgClasses.push(s.gtClasses[k]!);
        fgGtIndex.push(s.gtIndex[k]!);
        fgMasks.push(gtMaskOf(gt[i]!, s.gtIndex[k]!));
      }
    });
    const F = fgClasses.length;
    const { targets, ratios, fullAreas } = maskTargets(fgBoxes, fgMasks, M);
    const base = { sampled, fgBoxes, fgClasses: Int32Array.from(fgClasses), fgGtIndex: Int32Array.from(fgGtIndex), ratios };
    if (F === 0) {
      // The original returns logits.sum() * 0 and pred_maskiou.sum() * 0: zero losses.
      const zero = () => full([], 0);
      return {
        ...base,
        losses: { loss_mask: zero(), ...(this.maskIouHead ? { loss_maskiou: zero() } : {}) },
        pooled: full([0, this.opts.inChannels, this.resolution, this.resolution], 0),
        logits: full([0, K, M, M], 0),
        targets: full([0, M, M], 0),
        maskIouTargets: this.maskIouHead ? full([0], 0) : null,
        maskIouPred: this.maskIouHead ? full([0, K], 0) : null,
      };
    }
    const { pooled } = this.pool(feats, fgBoxesPerImage, imageSizes);
    const logits = this.maskHead.forward(pooled);
    const classT = fromArray(fgClasses, [F], 'i32');
    const selected = selectClass(logits, classT); // [F, M, M]
    const targetT = fromArray(targets, [F, M, M]);
    const lossMask = binaryCrossEntropyWithLogits(selected, targetT);
    const losses: RoiTrainOutputs['losses'] = { loss_mask: lossMask };
    let maskIouTargets: Tensor | null = null;
    let maskIouPred: Tensor | null = null;
    if (this.maskIouHead) {
      maskIouTargets = maskIouTargetsOnDevice(selected, targetT, Float32Array.from(fullAreas));
      // Soft, not detached: the MaskIoU loss also trains the mask head and the features.
      maskIouPred = this.maskIouHead.forward(pooled, reshape(sigmoid(selected), [F, 1, M, M]));
      losses.loss_maskiou = maskIouLoss(selectClass(maskIouPred, classT), maskIouTargets, this.opts.maskIouLossWeight ?? 1);
    }
    return { ...base, losses, pooled, logits, targets: targetT, maskIouTargets, maskIouPred };
  }

  /** { loss_mask, loss_maskiou } (scalars with autograd into the features and both heads). */
  losses(features: Record<string, Tensor> | Tensor[], proposals: Float32Array[], gt: GtInstances[], imageSizes: [number, number][]): RoiTrainOutputs['losses'] {
    return this.forwardTrain(features, proposals, gt, imageSizes).losses;
  }
}

/**
 * CenterMask2's MaskIoU targets on the device: pred = logit > 0; ovr = |pred AND gt|;
 * union = max(|pred| + fullArea - ovr, 1); target = ovr / union. `fullAreas` = |gt| / ratio from
 * the host (NaN where the ratio is undefined: the target is NaN, as in the original).
 */
export function maskIouTargetsOnDevice(selectedLogits: Tensor, targets: Tensor, fullAreas: Float32Array): Tensor {
  return noGrad(() => {
    const F = selectedLogits.shape[0]!;
    const pred = mapRaw('maskiou_pred_mask', 'select(0.0, 1.0, x > 0.0)', [selectedLogits], selectedLogits.shape, 'f32', 'f32');
    const ovr = sum(mul(pred, targets), [1, 2]);
    const predArea = sum(pred, [1, 2]);
    const valid = fromArray(Array.from(fullAreas, (a) => (Number.isNaN(a) ? 0 : 1)), [F]);
    const full_ = fromArray(Array.from(fullAreas, (a) => (Number.isNaN(a) ? 0 : a)), [F]);
    const union = maximum(sub(mapRaw('maskiou_union', 'x + y', [predArea, full_], [F], 'f32', 'f32'), ovr), full([], 1));
    return mapRaw('maskiou_target', 'select(nan_f32(), x / y, z > 0.5)', [ovr, union, valid], [F], 'f32', 'f32');
  });
}

/**
 * CenterMask2's mask_iou_loss: weight * sum over ROIs with target > 0 of 0.5 (pred - target)^2,
 * divided by their count (0 when there is none). `pred` [F] is the GT-class column.
 */
export function maskIouLoss(pred: Tensor, target: Tensor, weight = 1): Tensor {
  const positive = noGrad(() => mapRaw('maskiou_positive', 'select(0.0, 1.0, x > 0.0)', [target], target.shape, 'f32', 'f32'));
  const count = noGrad(() => clamp(sum(positive), 1));
  // NaN targets (undefined ratio) fail `> 0` and leave the loss, as in the original.
  const safeTarget = noGrad(() => mapRaw('maskiou_safe_target', 'select(0.0, x, x > 0.0)', [target], target.shape, 'f32', 'f32'));
  const perRoi = mul(square(sub(pred, safeTarget)), positive);
  return div(mul(sum(perRoi), full([], 0.5 * weight)), count);
}
