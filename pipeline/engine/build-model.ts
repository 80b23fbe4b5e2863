// The CenterMask model a config builds, typed as what the trainer and the predictor use.
import { CenterMask } from '../../models/centermask';
import type { CfgNode } from '../../models/config/config';
import type { TrainableModel } from './model';

export function buildTrainableModel(cfg: CfgNode): TrainableModel {
  return new CenterMask(cfg);
}
