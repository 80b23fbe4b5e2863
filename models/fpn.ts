// Detectron2's FPN as `build_fcos_vovnet_fpn_backbone` builds it: lateral 1x1 convs and output 3x3
// convs (with bias, no norm), sum fusion with nearest x2 top-down upsampling of the pre-output sum,
// and the LastLevelP6P7 top block fed by the FPN's p5 OUTPUT (not C5): p6 = conv_s2(p5),
// p7 = conv_s2(relu(p6)); p6 reaches the head without ReLU. Submodules are registered in
// Detectron2's order (laterals/outputs from the finest level, then top_block, then bottom_up).
import { Module } from '../engine/nn/module';
import { c2XavierFill } from '../engine/nn/init';
import { add, relu } from '../engine/ops/elementwise';
import { upsampleNearest2d } from '../engine/ops/pool';
import type { Tensor } from '../engine/tensor';
import { Container, Conv2d } from './layers';
import type { VoVNet } from './backbone/vovnet';

export interface FPNOptions {
  inFeatures: string[];
  outChannels: number;
  /** Number of extra levels from the top block (FCOS.TOP_LEVELS): 2 = P6 and P7, 1 = P6, 0 = none. */
  topLevels?: number;
}

export class FPN extends Module {
  private readonly laterals: Conv2d[] = [];
  private readonly outputs: Conv2d[] = [];
  private readonly p6: Conv2d | undefined;
  private readonly p7: Conv2d | undefined;
  readonly bottomUp: VoVNet;
  readonly levelNames: string[];
  readonly strides: number[];

  constructor(bottomUp: VoVNet, readonly opts: FPNOptions) {
    super();
    const C = opts.outChannels;
    const stagesStrides = opts.inFeatures.map((f) => bottomUp.strides[f]!);
    const levels = stagesStrides.map((s) => Math.log2(s));
    opts.inFeatures.forEach((f, i) => {
      const cin = bottomUp.outChannels[f];
      if (!cin) throw new Error(`FPN: backbone has no output feature '${f}'`);
      const lat = this.registerModule(`fpn_lateral${levels[i]}`, new Conv2d(cin, C, 1));
      const out = this.registerModule(`fpn_output${levels[i]}`, new Conv2d(C, C, 3, { padding: 1 }));
      c2XavierFill(lat.weight, lat.bias);
      c2XavierFill(out.weight, out.bias);
      this.laterals.push(lat);
      this.outputs.push(out);
    });
    const top = opts.topLevels ?? 2;
    this.levelNames = levels.map((l) => `p${l}`);
    this.strides = [...stagesStrides];
    if (top > 0) {
      const tb = this.registerModule('top_block', new Container());
      const last = levels[levels.length - 1]!;
      this.p6 = tb.add('p6', new Conv2d(C, C, 3, { stride: 2, padding: 1 }));
      c2XavierFill(this.p6.weight, this.p6.bias);
      this.levelNames.push(`p${last + 1}`);
      this.strides.push(2 ** (last + 1));
      if (top > 1) {
        this.p7 = tb.add('p7', new Conv2d(C, C, 3, { stride: 2, padding: 1 }));
        c2XavierFill(this.p7.weight, this.p7.bias);
        this.levelNames.push(`p${last + 2}`);
        this.strides.push(2 ** (last + 2));
      }
    }
    this.bottomUp = this.registerModule('bottom_up', bottomUp);
  }

  /** Largest input stride: inputs are padded to a multiple of this. */
  get sizeDivisibility(): number {
    return this.bottomUp.strides[this.opts.inFeatures[this.opts.inFeatures.length - 1]!]!;
  }

  /** Returns the levels p3..p7 in order (finest first), keyed by name. */
  forward(x: Tensor): { features: Record<string, Tensor>; bottomUp: Record<string, Tensor> } {
    const bottom = this.bottomUp.forward(x);
    const inputs = this.opts.inFeatures.map((f) => bottom[f]!);
    const n = inputs.length;
    const results: Tensor[] = new Array(n);
    let prev = this.laterals[n - 1]!.forward(inputs[n - 1]!);
    results[n - 1] = this.outputs[n - 1]!.forward(prev);
    for (let i = n - 2; i >= 0; i--) {
      const topDown = upsampleNearest2d(prev, 2);
      prev = add(this.laterals[i]!.forward(inputs[i]!), topDown);
      results[i] = this.outputs[i]!.forward(prev);
    }
    if (this.p6) {
      const p6 = this.p6.forward(results[n - 1]!);
      results.push(p6);
      if (this.p7) results.push(this.p7.forward(relu(p6)));
    }
    const features: Record<string, Tensor> = {};
    this.levelNames.forEach((name, i) => (features[name] = results[i]!));
    return { features, bottomUp: bottom };
  }
}
