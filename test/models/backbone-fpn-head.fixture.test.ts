// The real CenterMask2 (detectron2 v0.6) outputs for the oracle weights and input: every stored
// backbone stage, FPN level and FCOS head output, for both fixture configs. Tolerance: 1e-4
// relative to the tensor's max-abs (the fixture README's suggestion). Works for any fixture set in
// that layout: shapes come from the files, the config from the model folder's name.
import { beforeAll, describe, expect, it } from 'vitest';
import { init, fromArray, noGrad, type Tensor } from '../../engine';
import { Module } from '../../engine/nn/module';
import { VoVNet } from '../../models/backbone/vovnet';
import { FPN } from '../../models/fpn';
import { FCOSHead } from '../../models/fcos/head';
import { Container } from '../../models/layers';
import { readFixtureWeights } from './fixture-weights';
import { fixtureRoot, paddedModelInput, readTensors, relToMaxAbs } from './fixture-util';

const CONFIGS = [
  { dir: 'V19slim', convBody: 'V-19-slim-eSE' },
  { dir: 'V39', convBody: 'V-39-eSE' },
];

for (const cfg of CONFIGS) {
  describe(`CenterMask2 ${cfg.dir}: backbone, FPN and FCOS head vs the oracle`, () => {
    let outputs: Map<string, Tensor>;
    let expected: Map<string, import('../../engine/checkpoint/host-tensor').HostTensor>;

    beforeAll(async () => {
      await init();
      const root = fixtureRoot();
      const model = new Module();
      const fpn = model.registerModule('backbone', new FPN(new VoVNet(cfg.convBody), { inFeatures: ['stage3', 'stage4', 'stage5'], outChannels: 128 }));
      const head = model.registerModule('proposal_generator', new Container()).add('fcos_head', new FCOSHead({ inChannels: 128, numClasses: 3, numConvs: 2, numLevels: 5 }));
      const weights = await readFixtureWeights(`${root}/${cfg.dir}/weights.safetensors`);
      for (const k of [...weights.keys()]) if (k.startsWith('roi_heads.')) weights.delete(k);
      model.loadStateDict(weights); // strict: every backbone/FPN/FCOS key present, no extras
      const image = (await readTensors(`${root}/input.safetensors`)).get('image')!;
      // Padded as the model pads (any fixture image size), the mean subtracted first.
      const padded = paddedModelInput(image, fpn.sizeDivisibility);
      const x = fromArray(padded.data, padded.shape);
      outputs = new Map();
      noGrad(() => {
        const { features, bottomUp } = fpn.forward(x);
        for (const s of ['stage3', 'stage4', 'stage5']) outputs.set(`backbone.${s}`, bottomUp[s]!);
        for (const [name, t] of Object.entries(features)) outputs.set(`fpn.${name}`, t);
        const head_ = head.forward(Object.values(features));
        Object.keys(features).forEach((p, l) => {
          outputs.set(`fcos.logits.${p}`, head_.logits[l]!);
          outputs.set(`fcos.bbox_reg.${p}`, head_.bboxReg[l]!);
          outputs.set(`fcos.ctrness.${p}`, head_.ctrness[l]!);
        });
      });
      expected = await readTensors(`${root}/${cfg.dir}/features.safetensors`);
    }, 600_000);

    it('has every stored stage, FPN level and head output within 1e-4 of max-abs', async () => {
      const names = [...expected.keys()].filter((k) => /^(backbone\.stage[345]|fpn\.p\d|fcos\.(logits|bbox_reg|ctrness)\.p\d)$/.test(k));
      expect(names.length).toBe(3 + 5 + 15);
      for (const name of names) {
        const ref = expected.get(name)!;
        const got = outputs.get(name);
        expect(got, `${name} not produced`).toBeDefined();
        expect(got!.shape, name).toEqual(ref.shape);
        const { rel, maxAbs } = relToMaxAbs(await got!.data(), ref.data as Float32Array);
        expect(rel, `${name}: max abs err ${maxAbs}, ${rel} of max-abs`).toBeLessThan(1e-4);
      }
    }, 600_000);
  });
}
