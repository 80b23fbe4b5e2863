// SAG-Mask (CenterMask2 `SpatialAttentionMaskHead`): N x [conv3x3 (bias) -> ReLU], spatial
// attention (sigmoid(conv3x3([mean_c, max_c])) multiplied in), deconv 2x2 s2 -> ReLU, then a 1x1
// class-specific predictor giving [R, K, 28, 28] logits.
import { Module } from '../../engine/nn/module';
import { c2MsraFill, constant_, normal_ } from '../../engine/nn/init';
import { mul, relu, sigmoid } from '../../engine/ops/elementwise';
import { cat } from '../../engine/ops/join';
import { max, mean } from '../../engine/ops/reduce';
import type { Tensor } from '../../engine/tensor';
import { Container, Conv2d, ConvTranspose2d } from '../layers';

export interface MaskHeadOptions {
  inChannels: number;
  convDim: number;
  numConv: number;
  numClasses: number;
  clsAgnostic?: boolean;
}

export class SpatialAttentionMaskHead extends Module {
  private readonly fcns: Conv2d[] = [];
  readonly samConv: Conv2d;
  readonly deconv: ConvTranspose2d;
  readonly predictor: Conv2d;

  constructor(readonly opts: MaskHeadOptions) {
    super();
    let c = opts.inChannels;
    for (let i = 1; i <= opts.numConv; i++) {
      const conv = this.registerModule(`mask_fcn${i}`, new Conv2d(c, opts.convDim, 3, { padding: 1 }));
      c2MsraFill(conv.weight, conv.bias);
      this.fcns.push(conv);
      c = opts.convDim;
    }
    const sam = this.registerModule('spatialAtt', new Container());
    this.samConv = sam.add('conv', new Conv2d(2, 1, 3, { padding: 1, bias: false }));
    c2MsraFill(this.samConv.weight, null);
    this.deconv = this.registerModule('deconv', new ConvTranspose2d(c, opts.convDim, 2, 2));
    c2MsraFill(this.deconv.weight, this.deconv.bias);
    const k = opts.clsAgnostic ? 1 : opts.numClasses;
    this.predictor = this.registerModule('predictor', new Conv2d(opts.convDim, k, 1));
    normal_(this.predictor.weight, 0, 0.001);
    constant_(this.predictor.bias!, 0);
  }

  /** Pooled features [R, C, 14, 14] -> mask logits [R, K, 28, 28]. */
  forward(x: Tensor): Tensor {
    for (const conv of this.fcns) x = conv.forward(x, 'relu');
    const attention = sigmoid(this.samConv.forward(cat([mean(x, 1, { keepdim: true }), max(x, 1, { keepdim: true })], 1)));
    x = mul(x, attention);
    x = relu(this.deconv.forward(x));
    return this.predictor.forward(x);
  }
}
