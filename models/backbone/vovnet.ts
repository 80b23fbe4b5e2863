// VoVNetV2 with effective Squeeze-Excitation (eSE), as CenterMask2's `vovnet.py` builds it, with
// the same module names so Detectron2 state-dict keys load unchanged, e.g.
// `stage2.OSA2_1.layers.0.OSA2_1_0/conv.weight`. The norm after every conv is MODEL.VOVNET.NORM:
// FrozenBN (CenterMask2's default, for ImageNet-initialised backbones), BN / SyncBN (batch
// statistics, for training from scratch) or GN (32 groups); eSE is applied in every OSA block (the original ignores the
// spec's eSE flag); blocks after the first of a stage add their input after eSE (identity).
import { Module } from '../../engine/nn/module';
import { cat } from '../../engine/ops/join';
import { add, hardsigmoid, mul } from '../../engine/ops/elementwise';
import { mean } from '../../engine/ops/reduce';
import { maxPool2d } from '../../engine/ops/pool';
import type { Tensor } from '../../engine/tensor';
import { BatchNorm2d, Container, Conv2d, convNorm, FrozenBatchNorm2d, GroupNorm, SyncBatchNorm } from '../layers';
import { UserError } from '../../runtime/errors';

/** MODEL.VOVNET.NORM values (Detectron2's get_norm names). */
export type VoVNetNorm = 'FrozenBN' | 'BN' | 'SyncBN' | 'GN';
export const VOVNET_NORMS: readonly VoVNetNorm[] = ['FrozenBN', 'BN', 'SyncBN', 'GN'];

type NormLayer = Module & { forward(x: Tensor): Tensor };

/** Detectron2's get_norm(norm, channels) for the norms VoVNet accepts. */
function makeNorm(norm: VoVNetNorm, channels: number, where: string): NormLayer {
  switch (norm) {
    case 'FrozenBN':
      return new FrozenBatchNorm2d(channels);
    case 'BN':
      return new BatchNorm2d(channels);
    case 'SyncBN':
      return new SyncBatchNorm(channels);
    case 'GN':
      if (channels % 32 !== 0) throw new UserError(`MODEL.VOVNET.NORM 'GN' uses 32 groups, but ${where} has ${channels} channels, which 32 does not divide; use BN or another CONV_BODY`);
      return new GroupNorm(32, channels);
  }
}

export interface VoVNetSpec {
  stem: [number, number, number];
  stageConvCh: [number, number, number, number];
  stageOutCh: [number, number, number, number];
  layersPerBlock: number;
  blocksPerStage: [number, number, number, number];
  depthwise: boolean;
}

/** `_STAGE_SPECS` of centermask2, keyed by MODEL.VOVNET.CONV_BODY. */
export const VOVNET_SPECS: Record<string, VoVNetSpec> = {
  'V-19-slim-dw-eSE': { stem: [64, 64, 64], stageConvCh: [64, 80, 96, 112], stageOutCh: [112, 256, 384, 512], layersPerBlock: 3, blocksPerStage: [1, 1, 1, 1], depthwise: true },
  'V-19-dw-eSE': { stem: [64, 64, 64], stageConvCh: [128, 160, 192, 224], stageOutCh: [256, 512, 768, 1024], layersPerBlock: 3, blocksPerStage: [1, 1, 1, 1], depthwise: true },
  'V-19-slim-eSE': { stem: [64, 64, 128], stageConvCh: [64, 80, 96, 112], stageOutCh: [112, 256, 384, 512], layersPerBlock: 3, blocksPerStage: [1, 1, 1, 1], depthwise: false },
  'V-19-eSE': { stem: [64, 64, 128], stageConvCh: [128, 160, 192, 224], stageOutCh: [256, 512, 768, 1024], layersPerBlock: 3, blocksPerStage: [1, 1, 1, 1], depthwise: false },
  'V-39-eSE': { stem: [64, 64, 128], stageConvCh: [128, 160, 192, 224], stageOutCh: [256, 512, 768, 1024], layersPerBlock: 5, blocksPerStage: [1, 1, 2, 2], depthwise: false },
  'V-57-eSE': { stem: [64, 64, 128], stageConvCh: [128, 160, 192, 224], stageOutCh: [256, 512, 768, 1024], layersPerBlock: 5, blocksPerStage: [1, 1, 4, 3], depthwise: false },
  'V-99-eSE': { stem: [64, 64, 128], stageConvCh: [128, 160, 192, 224], stageOutCh: [256, 512, 768, 1024], layersPerBlock: 5, blocksPerStage: [1, 3, 9, 3], depthwise: false },
};

/** conv (no bias) -> norm -> ReLU (a FrozenBN folded into the conv: convNorm), registered on `parent` as `${name}/conv`, `${name}/norm`. */
class ConvNormReLU {
  readonly conv: Conv2d;
  readonly norm: NormLayer;
  constructor(parent: Module, name: string, norm: VoVNetNorm, cin: number, cout: number, k: number, stride = 1, groups = 1) {
    this.conv = parent.registerModule(`${name}/conv`, new Conv2d(cin, cout, k, { stride, padding: (k - 1) >> 1, groups, bias: false }));
    this.norm = parent.registerModule(`${name}/norm`, makeNorm(norm, cout, `${name}/norm`));
  }
  forward(x: Tensor): Tensor {
    return convNorm(this.conv, this.norm, x);
  }
}

/** Depthwise-separable unit: dw 3x3 (groups = c) -> pw 1x1 -> norm -> ReLU (no norm between). */
class DWUnit {
  readonly dw: Conv2d;
  readonly pw: Conv2d;
  readonly norm: NormLayer;
  constructor(parent: Module, name: string, norm: VoVNetNorm, c: number, stride = 1) {
    this.dw = parent.registerModule(`${name}/dw_conv3x3`, new Conv2d(c, c, 3, { stride, padding: 1, groups: c, bias: false }));
    this.pw = parent.registerModule(`${name}/pw_conv1x1`, new Conv2d(c, c, 1, { bias: false }));
    this.norm = parent.registerModule(`${name}/pw_norm`, makeNorm(norm, c, `${name}/pw_norm`));
  }
  forward(x: Tensor): Tensor {
    return convNorm(this.pw, this.norm, this.dw.forward(x));
  }
}

type Unit = { forward(x: Tensor): Tensor };

/** eSE: x * hsigmoid(fc(avgpool(x))), fc a 1x1 conv with bias and no channel reduction. */
class ESE extends Module {
  readonly fc: Conv2d;
  constructor(c: number) {
    super();
    this.fc = this.registerModule('fc', new Conv2d(c, c, 1));
  }
  forward(x: Tensor): Tensor {
    const s = hardsigmoid(this.fc.forward(mean(x, [2, 3], { keepdim: true })));
    return mul(x, s);
  }
}

class OSAModule extends Module {
  private readonly reduction: Unit | undefined;
  private readonly layerUnits: Unit[] = [];
  private readonly concatUnit: ConvNormReLU;
  readonly ese: ESE;
  constructor(name: string, norm: VoVNetNorm, inCh: number, stageCh: number, concatCh: number, layers: number, readonly identity: boolean, depthwise: boolean) {
    super();
    let c = inCh;
    if (depthwise && inCh !== stageCh) {
      const red = this.registerModule('conv_reduction', new Container());
      this.reduction = new ConvNormReLU(red, `${name}_reduction_0`, norm, inCh, stageCh, 1);
      c = stageCh;
    }
    const list = this.registerModule('layers', new Container());
    for (let i = 0; i < layers; i++) {
      const seq = list.add(String(i), new Container());
      this.layerUnits.push(depthwise ? new DWUnit(seq, `${name}_${i}`, norm, stageCh) : new ConvNormReLU(seq, `${name}_${i}`, norm, c, stageCh, 3));
      c = stageCh;
    }
    const concat = this.registerModule('concat', new Container());
    this.concatUnit = new ConvNormReLU(concat, `${name}_concat`, norm, inCh + layers * stageCh, concatCh, 1);
    this.ese = this.registerModule('ese', new ESE(concatCh));
  }
  forward(input: Tensor): Tensor {
    const feats = [input];
    let x = this.reduction ? this.reduction.forward(input) : input;
    for (const u of this.layerUnits) {
      x = u.forward(x);
      feats.push(x);
    }
    let y = this.ese.forward(this.concatUnit.forward(cat(feats, 1)));
    if (this.identity) y = add(y, input);
    return y;
  }
}

class OSAStage extends Module {
  readonly blocks: OSAModule[] = [];
  constructor(readonly stageNum: number, norm: VoVNetNorm, inCh: number, stageCh: number, concatCh: number, blocks: number, layers: number, depthwise: boolean) {
    super();
    for (let b = 1; b <= blocks; b++) {
      const name = `OSA${stageNum}_${b}`;
      this.blocks.push(this.registerModule(name, new OSAModule(name, norm, b === 1 ? inCh : concatCh, stageCh, concatCh, layers, b > 1, depthwise)));
    }
  }
  forward(x: Tensor): Tensor {
    // Stages 3-5 start with MaxPool2d(3, stride 2, ceil_mode) ('Pooling', no parameters).
    if (this.stageNum > 2) x = maxPool2d(x, { kernelSize: 3, stride: 2, padding: 0, ceilMode: true });
    for (const b of this.blocks) x = b.forward(x);
    return x;
  }
}

export type StageName = 'stem' | 'stage2' | 'stage3' | 'stage4' | 'stage5';

export interface VoVNetOptions {
  outFeatures?: StageName[];
  /** Detectron2 FREEZE_AT: 1 freezes the stem, k > 1 also stage2..stage(k). */
  freezeAt?: number;
  /** MODEL.VOVNET.NORM (default FrozenBN). */
  norm?: string;
}

export class VoVNet extends Module {
  readonly spec: VoVNetSpec;
  private readonly stemUnits: Unit[] = [];
  readonly stages: OSAStage[] = [];
  readonly outFeatures: StageName[];
  readonly outChannels: Record<string, number> = {};
  readonly strides: Record<string, number> = { stem: 4, stage2: 4, stage3: 8, stage4: 16, stage5: 32 };

  constructor(convBody: string, opts: VoVNetOptions = {}) {
    super();
    const spec = VOVNET_SPECS[convBody];
    if (!spec) throw new Error(`unknown MODEL.VOVNET.CONV_BODY '${convBody}'; expected one of ${Object.keys(VOVNET_SPECS).join(', ')}`);
    this.spec = spec;
    this.outFeatures = opts.outFeatures ?? ['stage3', 'stage4', 'stage5'];
    const norm = (opts.norm ?? 'FrozenBN') as VoVNetNorm;
    if (!VOVNET_NORMS.includes(norm)) throw new UserError(`MODEL.VOVNET.NORM '${opts.norm}' is not supported; expected one of ${VOVNET_NORMS.join(', ')}`);
    const stem = this.registerModule('stem', new Container());
    const [s1, s2, s3] = spec.stem;
    this.stemUnits.push(new ConvNormReLU(stem, 'stem_1', norm, 3, s1, 3, 2));
    if (spec.depthwise) {
      this.stemUnits.push(new DWUnit(stem, 'stem_2', norm, s2, 1));
      this.stemUnits.push(new DWUnit(stem, 'stem_3', norm, s3, 2));
    } else {
      this.stemUnits.push(new ConvNormReLU(stem, 'stem_2', norm, s1, s2, 3, 1));
      this.stemUnits.push(new ConvNormReLU(stem, 'stem_3', norm, s2, s3, 3, 2));
    }
    this.outChannels.stem = s3;
    let inCh = s3;
    for (let i = 0; i < 4; i++) {
      const n = i + 2;
      const stage = this.registerModule(`stage${n}`, new OSAStage(n, norm, inCh, spec.stageConvCh[i]!, spec.stageOutCh[i]!, spec.blocksPerStage[i]!, spec.layersPerBlock, spec.depthwise));
      this.stages.push(stage);
      inCh = spec.stageOutCh[i]!;
      this.outChannels[`stage${n}`] = inCh;
    }
    this.freeze(opts.freezeAt ?? 0);
  }

  /** Stop gradients for the stem (k >= 1) and stage2..stage(k) (k >= 2), as Detectron2 does; a
   *  BatchNorm there then uses its running statistics (Detectron2's convert_frozen_batchnorm). */
  freeze(freezeAt: number): void {
    const frozen: Module[] = [];
    if (freezeAt >= 1) frozen.push(this.getModule('stem')!);
    for (let k = 2; k <= freezeAt; k++) frozen.push(this.getModule(`stage${k}`)!);
    for (const m of frozen) {
      for (const p of m.parameters()) p.requiresGrad = false;
      for (const [, sub] of m.namedModules()) if (sub instanceof BatchNorm2d) sub.frozen = true;
    }
  }

  forward(x: Tensor): Record<string, Tensor> {
    const out: Record<string, Tensor> = {};
    for (const u of this.stemUnits) x = u.forward(x);
    if (this.outFeatures.includes('stem')) out.stem = x;
    for (const stage of this.stages) {
      x = stage.forward(x);
      const name = `stage${stage.stageNum}` as StageName;
      if (this.outFeatures.includes(name)) out[name] = x;
    }
    return out;
  }
}
