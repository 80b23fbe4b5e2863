// One training step's pieces shared by the trainer (trainer.ts) and data parallelism
// (data-parallel.ts): the micro-batch split of SOLVER.MICRO_BATCH_SIZE and the weighted forward and
// backward of one micro-batch (under autocast, with the loss scaled, when mixed precision is on).
import { backward, noGrad } from '../../engine/autograd';
import { autocast } from '../../engine/amp/autocast';
import type { GradScaler } from '../../engine/optim/grad-scaler';
import { scopeAsync, type Tensor } from '../../engine/tensor';
import { add, mulScalar } from '../../engine/ops/elementwise';
import { cat } from '../../engine/ops/join';
import { reshape } from '../../engine/ops/view';
import { UserError } from '../../runtime/errors';
import type { TrainBatch } from '../data/train-loader';
import type { TrainableModel } from './model';

/**
 * SOLVER.MICRO_BATCH_SIZE: the [start, end) image ranges of one iteration's batch that each get
 * their own forward and backward (gradient accumulation); one range when 0 or IMS_PER_BATCH.
 */
export function microBatches(imsPerBatch: number, microBatchSize: number, what = `SOLVER.IMS_PER_BATCH ${imsPerBatch}`): [number, number][] {
  if (!Number.isInteger(microBatchSize) || microBatchSize < 0) throw new UserError(`SOLVER.MICRO_BATCH_SIZE ${microBatchSize} must be 0 (off) or a positive integer`);
  const m = microBatchSize === 0 ? imsPerBatch : microBatchSize;
  if (imsPerBatch % m !== 0) {
    throw new UserError(`${what} must be a multiple of SOLVER.MICRO_BATCH_SIZE ${microBatchSize}`);
  }
  const out: [number, number][] = [];
  for (let s = 0; s < imsPerBatch; s += m) out.push([s, s + m]);
  return out;
}

/**
 * One micro-batch: forward, the total loss scaled by `weight` (its share of the batch's images),
 * backward (gradients add up in `.grad`). Returns the row [each loss..., total] times `weight`
 * (detached); the activations are freed before it returns. With weight 1 nothing is scaled.
 *
 * The losses of a model are normalised within the images it is given (the stand-ins: a mean over
 * images, so k micro-batches weighted m/B sum exactly to the batch's loss and gradient). CenterMask
 * normalises by counts over the images of one call: loss_fcos_cls and loss_fcos_ctr by the number
 * of positive locations, loss_fcos_loc by the sum of centerness targets, loss_mask by the number of
 * ROI pixels (a mean) and loss_maskiou by the number of ROIs; and the images are padded to the
 * largest of the call. Under accumulation these normalisers and the padding are the micro-batch's
 * (as PyTorch accumulation with 1/k scaling): exact when every micro-batch has the same counts,
 * otherwise a reweighting between micro-batches. Batch-norm layers in training mode (MODEL.VOVNET.NORM
 * "BN", e.g. configs/synth_centermask_lite_V_19_slim_scratch.yaml) normalise with and update their
 * running statistics from each micro-batch, as PyTorch accumulation does; FrozenBN and GN are exact.
 */
export async function lossesAndBackward(
  model: TrainableModel,
  inputs: TrainBatch['inputs'],
  gts: TrainBatch['gts'],
  weight: number,
  checkNames: (sortedNames: string[]) => void,
  scaler: GradScaler | null = null,
): Promise<Tensor> {
  return scopeAsync(async () => {
    // Mixed precision (SOLVER.AMP.ENABLED): the forward under autocast (the losses come out f32),
    // the backward of the scaled total outside it, as torch.
    const losses = scaler ? await autocast(() => model.losses(inputs, gts)) : await model.losses(inputs, gts);
    const names = Object.keys(losses).sort();
    if (names.length === 0) throw new Error('model.losses returned no losses');
    checkNames(names);
    let total = losses[names[0]!]!;
    for (const n of names.slice(1)) total = add(total, losses[n]!);
    if (total.numel !== 1) throw new Error(`loss '${names[0]}' has shape [${losses[names[0]!]!.shape}]; losses must be scalars`);
    if (weight !== 1) total = mulScalar(total, weight);
    backward(scaler ? scaler.scale(total) : total);
    return noGrad(() => {
      const each = names.map((n) => reshape(losses[n]!.detach(), [1]));
      return cat([...(weight !== 1 ? each.map((t) => mulScalar(t, weight)) : each), reshape(total.detach(), [1])]);
    });
  });
}
