// The CenterMask meta-architecture's module tree, built from a config with the original names:
import { UserError } from '../core/errors';
// backbone (FPN over VoVNet), proposal_generator.fcos_head, roi_heads.{mask_head, maskiou_head}.
import { Module } from '../core/nn/module';
import type { CfgNode } from './config/config';
import { buildBackbone, buildFCOSHead, buildMaskHead, buildMaskIoUHead } from './build';
import type { FPN } from './fpn';
import type { FCOSHead } from './fcos/head';
import type { SpatialAttentionMaskHead } from './roi/mask-head';
import type { MaskIoUHead } from './roi/maskiou-head';
import { Container } from './layers';

export class CenterMask extends Module {
  readonly backbone: FPN;
  readonly fcosHead: FCOSHead;
  readonly maskHead: SpatialAttentionMaskHead | undefined;
  readonly maskIoUHead: MaskIoUHead | undefined;

  constructor(readonly cfg: CfgNode) {
    super();
    if (cfg.MODEL.META_ARCHITECTURE !== 'GeneralizedRCNN') throw new UserError(`MODEL.META_ARCHITECTURE '${cfg.MODEL.META_ARCHITECTURE}' is not supported (GeneralizedRCNN)`);
    if (cfg.MODEL.PROPOSAL_GENERATOR.NAME !== 'FCOS') throw new UserError(`MODEL.PROPOSAL_GENERATOR.NAME '${cfg.MODEL.PROPOSAL_GENERATOR.NAME}' is not supported (FCOS)`);
    this.backbone = this.registerModule('backbone', buildBackbone(cfg));
    this.fcosHead = this.registerModule('proposal_generator', new Container()).add('fcos_head', buildFCOSHead(cfg));
    if (cfg.MODEL.MASK_ON) {
      const roi = this.registerModule('roi_heads', new Container());
      this.maskHead = roi.add('mask_head', buildMaskHead(cfg));
      if (cfg.MODEL.MASKIOU_ON) this.maskIoUHead = roi.add('maskiou_head', buildMaskIoUHead(cfg));
    }
  }
}
