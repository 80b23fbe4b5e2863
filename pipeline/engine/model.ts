// What the trainer and the predictor need of a model: CenterMask's training and inference entry
// points (models/centermask.ts), stated structurally so that any Module with the same two methods
// (the real CenterMask, or a small model in the tests) can be trained and run.
import type { Module } from '../../engine/nn/module';
import type { Tensor } from '../../engine/tensor';

// The data types are the model's own (models/centermask.ts).
import type { GtInstances, ImageInput, InferenceOptions, Instances } from '../../models/centermask';
export type { GtInstances, ImageInput, InferenceOptions, Instances };

export interface InstanceSegmenter {
  /** Scalar loss tensors with autograd (loss_fcos_cls, loss_fcos_loc, loss_fcos_ctr, loss_mask, loss_maskiou). */
  losses(batch: ImageInput[], gts: GtInstances[]): Promise<Record<string, Tensor>>;
  inference(batch: ImageInput[], opts?: InferenceOptions): Promise<Instances[]>;
}

export type TrainableModel = Module & InstanceSegmenter;

/** Whether a module has the training and inference entry points (the lead's CenterMask may not yet). */
export function isInstanceSegmenter(m: unknown): m is TrainableModel {
  const o = m as Partial<InstanceSegmenter> | null;
  return typeof o?.losses === 'function' && typeof o.inference === 'function';
}
