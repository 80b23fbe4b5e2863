// Building the backbone and the FCOS head of CenterMask from a Detectron2/CenterMask2 config
// (models/config), with the module tree and names of the original so state dicts load by key:
// backbone (FPN; bottom_up = VoVNet) and proposal_generator.fcos_head. The ROI heads
// (roi_heads.{mask_head, maskiou_head}) are built by CenterROIHeads (models/roi/heads.ts).
import { UserError } from '../runtime/errors';
import type { CfgNode } from './config/config';
import { VoVNet, type StageName } from './backbone/vovnet';
import { FPN } from './fpn';
import { FCOSHead } from './fcos/head';

export function buildBackbone(cfg: CfgNode): FPN {
  const m = cfg.MODEL;
  if (m.BACKBONE.NAME !== 'build_fcos_vovnet_fpn_backbone' && m.BACKBONE.NAME !== 'build_vovnet_fpn_backbone') {
    throw new UserError(`MODEL.BACKBONE.NAME '${m.BACKBONE.NAME}' is not supported; cellgpu builds VoVNet + FPN (build_fcos_vovnet_fpn_backbone)`);
  }
  if (m.VOVNET.STAGE_WITH_DCN.some(Boolean)) throw new UserError('MODEL.VOVNET.STAGE_WITH_DCN: deformable convolutions are not supported');
  const bottomUp = new VoVNet(m.VOVNET.CONV_BODY, { outFeatures: m.VOVNET.OUT_FEATURES as StageName[], freezeAt: m.BACKBONE.FREEZE_AT, norm: m.VOVNET.NORM });
  if (m.FPN.NORM) throw new UserError(`MODEL.FPN.NORM '${m.FPN.NORM}' is not supported (CenterMask configs use no FPN norm)`);
  return new FPN(bottomUp, { inFeatures: m.FPN.IN_FEATURES, outChannels: m.FPN.OUT_CHANNELS, topLevels: m.FCOS.TOP_LEVELS });
}

export function buildFCOSHead(cfg: CfgNode): FCOSHead {
  const f = cfg.MODEL.FCOS;
  if (f.NUM_CLS_CONVS !== f.NUM_BOX_CONVS || f.NUM_SHARE_CONVS !== 0) {
    throw new UserError(`MODEL.FCOS: NUM_CLS_CONVS (${f.NUM_CLS_CONVS}) must equal NUM_BOX_CONVS (${f.NUM_BOX_CONVS}) and NUM_SHARE_CONVS must be 0`);
  }
  if (f.USE_DEFORMABLE) throw new UserError('MODEL.FCOS.USE_DEFORMABLE is not supported');
  if (f.NORM !== 'GN' && f.NORM !== '') throw new UserError(`MODEL.FCOS.NORM '${f.NORM}' is not supported (GN or none)`);
  return new FCOSHead({
    inChannels: cfg.MODEL.FPN.OUT_CHANNELS,
    numClasses: f.NUM_CLASSES,
    numConvs: f.NUM_CLS_CONVS,
    numLevels: f.IN_FEATURES.length,
    priorProb: f.PRIOR_PROB,
    useScale: f.USE_SCALE,
    norm: f.NORM as 'GN' | '',
  });
}
