// FCOS losses as CenterMask2 `fcos_losses` (one process, so num_pos_avg = max(num_pos, 1)):
//   loss_fcos_cls = sigmoid focal loss (alpha, gamma) over all locations x classes, summed / num_pos_avg
//   loss_fcos_loc = IOULoss (giou by default; IoU smoothed (I+1)/(U+1)) weighted by the centerness
//                   targets, summed / max(sum of centerness targets, 1e-6)
//   loss_fcos_ctr = BCE with logits of the positives' centerness against its target, summed / num_pos_avg
// The head outputs are flattened as the original: per level [N, C, H, W] -> [N, H, W, C] ->
// [N*H*W, C], levels concatenated (L, N, H, W from slowest to fastest), matching the level-first
// order of computeFcosTargets. The targets live on the CPU, so every normaliser is a known number
// and nothing is read back; all three losses are differentiable w.r.t. the head outputs.
// Call inside scope(): the uploaded targets are held by the recorded graph.
import { cat } from '../../engine/ops/join';
import { binaryCrossEntropyWithLogits, iouLoss, sigmoidFocalLoss } from '../../engine/ops/losses';
import { div, mulScalar } from '../../engine/ops/elementwise';
import { indexSelect } from '../../engine/ops/gather';
import { sum } from '../../engine/ops/reduce';
import { permute, reshape } from '../../engine/ops/view';
import { fromArray, type Tensor } from '../../engine/tensor';
import type { IouLossType } from '../../kernels/detection/losses';
import type { FcosTargets } from './targets';

/** The FCOS head's per-level outputs (see models/fcos/head.ts). */
export interface FcosPredictions {
  /** Per level [N, K, H, W], before sigmoid. */
  logits: readonly Tensor[];
  /** Per level [N, 4, H, W]: (l, t, r, b) in stride units (after scale and ReLU). */
  bboxReg: readonly Tensor[];
  /** Per level [N, 1, H, W], before sigmoid. */
  ctrness: readonly Tensor[];
}

export interface FcosLossOptions {
  /** MODEL.FCOS.LOSS_ALPHA (default 0.25). */
  focalAlpha?: number;
  /** MODEL.FCOS.LOSS_GAMMA (default 2). */
  focalGamma?: number;
  /** MODEL.FCOS.LOC_LOSS_TYPE (default 'giou'). */
  locLossType?: IouLossType;
}

export interface FcosLosses {
  loss_fcos_cls: Tensor;
  loss_fcos_loc: Tensor;
  loss_fcos_ctr: Tensor;
}

/** [N, C, H, W] per level -> [sum_l N*H_l*W_l, C], level-major (the original's `cat` of permutes). */
export function flattenLevels(levels: readonly Tensor[], channels: number, what: string): Tensor {
  const rows = levels.map((x, l) => {
    if (x.ndim !== 4 || x.shape[1] !== channels) throw new Error(`fcosLosses: ${what} level ${l} must be [N, ${channels}, H, W], got [${x.shape}]`);
    return reshape(permute(x, [0, 2, 3, 1]), [x.shape[0]! * x.shape[2]! * x.shape[3]!, channels]);
  });
  return rows.length === 1 ? rows[0]! : cat(rows, 0);
}

function checkLayout(pred: FcosPredictions, targets: FcosTargets): void {
  const L = targets.numLocPerLevel.length;
  for (const [name, levels] of [['logits', pred.logits], ['bboxReg', pred.bboxReg], ['ctrness', pred.ctrness]] as const) {
    if (levels.length !== L) throw new Error(`fcosLosses: ${name} has ${levels.length} levels, the targets ${L}`);
    levels.forEach((x, l) => {
      const [n, , h, w] = x.shape;
      if (x.ndim !== 4 || n !== targets.numImages || h! * w! !== targets.numLocPerLevel[l]) {
        throw new Error(
          `fcosLosses: ${name} level ${l} is [${x.shape}], the targets expect N=${targets.numImages} and H*W=${targets.numLocPerLevel[l]}`,
        );
      }
    });
  }
}

/** One-hot class targets [M, K] (background rows all zero), as the original's `class_target`. */
function oneHot(targets: FcosTargets): Float32Array {
  const K = targets.numClasses;
  const out = new Float32Array(targets.labels.length * K);
  targets.posIndex.forEach((i) => {
    out[i * K + targets.labels[i]!] = 1;
  });
  return out;
}

export function fcosLosses(pred: FcosPredictions, targets: FcosTargets, opts: FcosLossOptions = {}): FcosLosses {
  checkLayout(pred, targets);
  const K = targets.numClasses;
  const M = targets.labels.length;
  const P = targets.numPos;
  const numPosAvg = Math.max(P, 1);

  const logits = flattenLevels(pred.logits, K, 'logits');
  const classTarget = fromArray(oneHot(targets), [M, K]);
  const focal = sigmoidFocalLoss(logits, classTarget, { alpha: opts.focalAlpha ?? 0.25, gamma: opts.focalGamma ?? 2, reduction: 'sum' });
  const lossCls = div(focal, numPosAvg);

  const reg = flattenLevels(pred.bboxReg, 4, 'bboxReg');
  const ctr = reshape(flattenLevels(pred.ctrness, 1, 'ctrness'), [M]);
  let lossLoc: Tensor;
  let lossCtr: Tensor;
  if (P === 0) {
    // The original sums empty selections: zero losses, zero gradients.
    lossLoc = mulScalar(sum(reg), 0);
    lossCtr = mulScalar(sum(ctr), 0);
  } else {
    const pos = fromArray(targets.posIndex, [P], 'i32');
    const regTargetsPos = new Float32Array(P * 4);
    targets.posIndex.forEach((i, p) => regTargetsPos.set(targets.regTargets.subarray(4 * i, 4 * i + 4), 4 * p));
    const ctrTargets = fromArray(targets.ctrnessTargets, [P]);
    const iou = iouLoss(indexSelect(reg, 0, pos), fromArray(regTargetsPos, [P, 4]), {
      type: opts.locLossType ?? 'giou',
      weight: ctrTargets,
      reduction: 'sum',
    });
    lossLoc = div(iou, Math.max(targets.ctrnessTargetSum, 1e-6));
    const bce = binaryCrossEntropyWithLogits(indexSelect(ctr, 0, pos), ctrTargets, { reduction: 'sum' });
    lossCtr = div(bce, numPosAvg);
  }
  return { loss_fcos_cls: lossCls, loss_fcos_loc: lossLoc, loss_fcos_ctr: lossCtr };
}
