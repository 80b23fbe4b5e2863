// FCOS head (CenterMask2 `FCOSHead`): cls and bbox towers of [conv3x3 (bias) -> GroupNorm(32) ->
// ReLU] shared across levels; cls_logits from the cls tower; bbox_pred and ctrness from the bbox
// tower (CTR_ON_REG); regression = relu(scale_l * bbox_pred) in stride units. The tower's Sequential
// indices follow the original ([conv, gn, relu] per layer: conv at 0, 3, ...; GN at 1, 4, ...).
import { Module } from '../../engine/nn/module';
import { constant_, normal_ } from '../../engine/nn/init';
import { mul, relu } from '../../engine/ops/elementwise';
import type { Tensor } from '../../engine/tensor';
import { Container, Conv2d, GroupNorm, Scale } from '../layers';

export interface FCOSHeadOptions {
  inChannels: number;
  numClasses: number;
  numConvs: number;
  numLevels: number;
  priorProb?: number;
  useScale?: boolean;
  norm?: 'GN' | '';
}

export interface FCOSHeadOutputs {
  /** Per level [N, K, H, W], before sigmoid. */
  logits: Tensor[];
  /** Per level [N, 4, H, W]: (l, t, r, b) in units of the level's stride, after scale and ReLU. */
  bboxReg: Tensor[];
  /** Per level [N, 1, H, W], before sigmoid. */
  ctrness: Tensor[];
}

interface TowerLayer {
  conv: Conv2d;
  norm: GroupNorm | undefined;
}

export class FCOSHead extends Module {
  private readonly clsTower: TowerLayer[] = [];
  private readonly bboxTower: TowerLayer[] = [];
  readonly clsLogits: Conv2d;
  readonly bboxPred: Conv2d;
  readonly ctrnessConv: Conv2d;
  readonly scales: Scale[] = [];

  constructor(readonly opts: FCOSHeadOptions) {
    super();
    const C = opts.inChannels;
    const norm = opts.norm ?? 'GN';
    for (const [name, tower] of [['cls_tower', this.clsTower], ['bbox_tower', this.bboxTower]] as const) {
      const seq = this.registerModule(name, new Container());
      const stepPerLayer = norm ? 3 : 2;
      for (let i = 0; i < opts.numConvs; i++) {
        const conv = seq.add(String(i * stepPerLayer), new Conv2d(C, C, 3, { padding: 1 }));
        normal_(conv.weight, 0, 0.01);
        constant_(conv.bias!, 0);
        const gn = norm ? seq.add(String(i * stepPerLayer + 1), new GroupNorm(32, C)) : undefined;
        tower.push({ conv, norm: gn });
      }
    }
    this.clsLogits = this.registerModule('cls_logits', new Conv2d(C, opts.numClasses, 3, { padding: 1 }));
    this.bboxPred = this.registerModule('bbox_pred', new Conv2d(C, 4, 3, { padding: 1 }));
    this.ctrnessConv = this.registerModule('ctrness', new Conv2d(C, 1, 3, { padding: 1 }));
    for (const c of [this.clsLogits, this.bboxPred, this.ctrnessConv]) {
      normal_(c.weight, 0, 0.01);
      constant_(c.bias!, 0);
    }
    const prior = opts.priorProb ?? 0.01;
    constant_(this.clsLogits.bias!, -Math.log((1 - prior) / prior));
    if (opts.useScale ?? true) {
      const scales = this.registerModule('scales', new Container());
      for (let l = 0; l < opts.numLevels; l++) this.scales.push(scales.add(String(l), new Scale(1)));
    }
  }

  private tower(layers: TowerLayer[], x: Tensor): Tensor {
    for (const { conv, norm } of layers) x = norm ? norm.forwardRelu(conv.forward(x)) : conv.forward(x, 'relu');
    return x;
  }

  forward(features: Tensor[]): FCOSHeadOutputs {
    const out: FCOSHeadOutputs = { logits: [], bboxReg: [], ctrness: [] };
    features.forEach((f, l) => {
      const cls = this.tower(this.clsTower, f);
      const box = this.tower(this.bboxTower, f);
      out.logits.push(this.clsLogits.forward(cls));
      out.ctrness.push(this.ctrnessConv.forward(box));
      let reg = this.bboxPred.forward(box);
      if (this.scales.length) reg = mul(reg, this.scales[l]!.scale);
      out.bboxReg.push(relu(reg));
    });
    return out;
  }
}
