// The CenterMask model a config builds, checked to have the training/inference entry points the
// trainer and predictor call (so a missing piece is one clear message, not a TypeError mid-run).
import { UserError } from '../../core/errors';
import { CenterMask } from '../../models/centermask';
import type { CfgNode } from '../../models/config/config';
import { isInstanceSegmenter, type TrainableModel } from './model';

/** Whether models/centermask.ts implements CenterMask.losses and CenterMask.inference. */
export function centerMaskIsTrainable(): boolean {
  const p = CenterMask.prototype as unknown as Record<string, unknown>;
  return typeof p.losses === 'function' && typeof p.inference === 'function';
}

export function buildTrainableModel(cfg: CfgNode): TrainableModel {
  const model: unknown = new CenterMask(cfg);
  if (!isInstanceSegmenter(model)) {
    throw new UserError('CenterMask.losses / CenterMask.inference are not implemented in models/centermask.ts yet; training and prediction need them');
  }
  return model;
}
