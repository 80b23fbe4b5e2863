// What the trainer and the predictor need of a model: CenterMask's training and inference entry
// points (models/centermask.ts), stated structurally so that any Module with the same two methods
// (the real CenterMask, or a small model in the tests) can be trained and run; and the CenterMask
// model a config builds (Detectron2's build_model), typed as that.
import type { Module } from '../../engine/nn/module';
import type { Tensor } from '../../engine/tensor';
import { CenterMask } from '../../models/centermask';
import type { CfgNode } from '../../models/config/config';

// The data types are the model's own (models/centermask.ts).
import type { GtInstances, ImageInput, InferenceOptions, Instances } from '../../models/centermask';
export type { GtInstances, ImageInput, InferenceOptions, Instances };

export interface InstanceSegmenter {
  /** Scalar loss tensors with autograd (loss_fcos_cls, loss_fcos_loc, loss_fcos_ctr, loss_mask, loss_maskiou). */
  losses(batch: ImageInput[], gts: GtInstances[]): Promise<Record<string, Tensor>>;
  inference(batch: ImageInput[], opts?: InferenceOptions): Promise<Instances[]>;
}

export type TrainableModel = Module & InstanceSegmenter;

export function buildTrainableModel(cfg: CfgNode): TrainableModel {
  return new CenterMask(cfg);
}
