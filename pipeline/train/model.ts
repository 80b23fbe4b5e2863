// What the trainer and the predictor need of a model: CenterMask's training and inference entry
// points (models/centermask.ts), stated structurally so that any Module with the same two methods
// (the real CenterMask, or a small model in the tests) can be trained and run.
import type { Module } from '../../core/nn/module';
import type { Tensor } from '../../core/tensor';

export interface ImageInput {
  /** CHW, 3 channels, BGR order, 0..255, already resized. */
  image: Float32Array;
  height: number;
  width: number;
  /** Original size, for post-processing (masks come back at this size). */
  origHeight: number;
  origWidth: number;
}

export interface GtInstances {
  /** n x 4 (x0, y0, x1, y1) in the resized image. */
  boxes: Float32Array;
  /** 0-based contiguous class indices. */
  classes: Int32Array;
  /** Per instance, a list of flat [x, y, ...] polygons in resized coordinates. */
  polygons: number[][][];
}

export interface Instances {
  /** n x 4 (x0, y0, x1, y1) in the original image. */
  boxes: Float32Array;
  scores: Float32Array;
  classes: Int32Array;
  maskScores: Float32Array;
  /** Each origHeight * origWidth, 0/1, row-major. */
  masks: Uint8Array[];
}

export interface InstanceSegmenter {
  /** Scalar loss tensors with autograd (loss_fcos_cls, loss_fcos_loc, loss_fcos_ctr, loss_mask, loss_maskiou). */
  losses(batch: ImageInput[], gts: GtInstances[]): Promise<Record<string, Tensor>>;
  inference(batch: ImageInput[]): Promise<Instances[]>;
}

export type TrainableModel = Module & InstanceSegmenter;

/** Whether a module has the training and inference entry points (the lead's CenterMask may not yet). */
export function isInstanceSegmenter(m: unknown): m is TrainableModel {
  const o = m as Partial<InstanceSegmenter> | null;
  return typeof o?.losses === 'function' && typeof o.inference === 'function';
}
