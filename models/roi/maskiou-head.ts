// MaskIoU head (CenterMask2 `MaskIoUHead`): cat(pooled features, maxpool2x2(mask)) -> N convs
// (bias, ReLU; the last has stride 2) -> flatten (C, H, W order) -> fc1 -> ReLU -> fc2 -> ReLU ->
// per-class IoU prediction.
import { Module } from '../../engine/nn/module';
import { constant_, kaimingNormal_, normal_ } from '../../engine/nn/init';
import { Linear } from '../../engine/nn/linear';
import { cat } from '../../engine/ops/join';
import { maxPool2d } from '../../engine/ops/pool';
import { flatten } from '../../engine/ops/view';
import type { Tensor } from '../../engine/tensor';
import { Conv2d } from '../layers';

export interface MaskIoUHeadOptions {
  /** ROI_MASK_HEAD.CONV_DIM: the pooled features' channels (the input has this + 1 channels; it is
   *  not the FPN width, as in the original). */
  inputDim: number;
  /** ROI_MASKIOU_HEAD.CONV_DIM. */
  convDim: number;
  numConv: number;
  numClasses: number;
  poolerResolution: number;
}

export class MaskIoUHead extends Module {
  private readonly convs: Conv2d[] = [];
  readonly fc1: Linear;
  readonly fc2: Linear;
  readonly out: Linear;

  constructor(readonly opts: MaskIoUHeadOptions) {
    super();
    let c = opts.inputDim + 1;
    for (let i = 1; i <= opts.numConv; i++) {
      const stride = i === opts.numConv ? 2 : 1;
      const conv = this.registerModule(`maskiou_fcn${i}`, new Conv2d(c, opts.convDim, 3, { padding: 1, stride }));
      kaimingNormal_(conv.weight, { mode: 'fan_out', nonlinearity: 'relu' });
      constant_(conv.bias!, 0);
      this.convs.push(conv);
      c = opts.convDim;
    }
    const res = opts.poolerResolution / 2;
    this.fc1 = this.registerModule('maskiou_fc1', new Linear(c * res * res, 1024));
    this.fc2 = this.registerModule('maskiou_fc2', new Linear(1024, 1024));
    for (const fc of [this.fc1, this.fc2]) {
      kaimingNormal_(fc.weight, { mode: 'fan_out', nonlinearity: 'relu' });
      constant_(fc.bias!, 0);
    }
    this.out = this.registerModule('maskiou', new Linear(1024, opts.numClasses));
    normal_(this.out.weight, 0, 0.01);
    constant_(this.out.bias!, 0);
  }

  /** features [R, C, 14, 14], mask [R, 1, 28, 28] (probabilities) -> [R, K]. */
  forward(features: Tensor, mask: Tensor): Tensor {
    let x = cat([features, maxPool2d(mask, { kernelSize: 2, stride: 2 })], 1);
    for (const conv of this.convs) x = conv.forward(x, 'relu');
    x = flatten(x, 1);
    x = this.fc1.forward(x, 'relu');
    x = this.fc2.forward(x, 'relu');
    return this.out.forward(x);
  }
}
