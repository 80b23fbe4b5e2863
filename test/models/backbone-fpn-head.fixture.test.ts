// The real CenterMask2 (detectron2 v0.6) outputs for the oracle weights and input: every stored
// backbone stage, FPN level and FCOS head output, for every model folder of the fixture set.
// Tolerance: 1e-4 relative to the tensor's max-abs (the fixture README's suggestion). Works for any
// fixture set in that layout: the modules are built from the folder's own config.yaml (backbone,
// FPN levels and width, FCOS head, pixel mean/std, size divisibility), shapes come from the files.
import { beforeAll, describe, expect, it } from 'vitest';
import { init, fromArray, noGrad, type Tensor } from '../../engine';
import type { HostTensor } from '../../engine/checkpoint/host-tensor';
import { Module } from '../../engine/nn/module';
import { buildBackbone, buildFCOSHead } from '../../models/build';
import { Container } from '../../models/layers';
import { readFixtureWeights } from './fixture-weights';
import { fixtureConfig, fixtureDir, fixtureModels, fixtureRoot, paddedModelInput, readTensors, relToMaxAbs } from './fixture-util';

const MODELS = fixtureModels({ files: ['weights.safetensors', 'features.safetensors'] });

it('finds at least one model folder with weights and features in the fixture set', () => {
  fixtureRoot();
  expect(MODELS.length, `no model folder with config.yaml, weights.safetensors and features.safetensors in ${fixtureDir()}`).toBeGreaterThan(0);
});

/** Stored full tensors this test compares: bottom-up stages, FPN levels, FCOS head outputs. */
const COMPARED = /^(backbone\.stage\d+|fpn\.p\d+|fcos\.(logits|bbox_reg|ctrness)\.p\d+)$/;

for (const dir of MODELS) {
  describe(`CenterMask2 ${dir}: backbone, FPN and FCOS head vs the oracle`, () => {
    let outputs: Map<string, Tensor>;
    let expected: Map<string, HostTensor>;

    beforeAll(async () => {
      await init();
      const root = fixtureRoot();
      const cfg = fixtureConfig(dir);
      const model = new Module();
      const fpn = model.registerModule('backbone', buildBackbone(cfg));
      const head = model.registerModule('proposal_generator', new Container()).add('fcos_head', buildFCOSHead(cfg));
      const weights = await readFixtureWeights(`${root}/${dir}/weights.safetensors`);
      for (const k of [...weights.keys()]) if (k.startsWith('roi_heads.')) weights.delete(k);
      model.loadStateDict(weights); // strict: every backbone/FPN/FCOS key present, no extras
      const image = (await readTensors(`${root}/input.safetensors`)).get('image')!;
      // Normalised and padded as the model does it (any fixture image size).
      const padded = paddedModelInput(image, fpn.sizeDivisibility, cfg.MODEL.PIXEL_MEAN, cfg.MODEL.PIXEL_STD);
      const x = fromArray(padded.data, padded.shape);
      outputs = new Map();
      noGrad(() => {
        const { features, bottomUp } = fpn.forward(x);
        for (const s of cfg.MODEL.FPN.IN_FEATURES) outputs.set(`backbone.${s}`, bottomUp[s]!);
        for (const [name, t] of Object.entries(features)) outputs.set(`fpn.${name}`, t);
        const levels = cfg.MODEL.FCOS.IN_FEATURES;
        const head_ = head.forward(levels.map((p) => features[p]!));
        levels.forEach((p, l) => {
          outputs.set(`fcos.logits.${p}`, head_.logits[l]!);
          outputs.set(`fcos.bbox_reg.${p}`, head_.bboxReg[l]!);
          outputs.set(`fcos.ctrness.${p}`, head_.ctrness[l]!);
        });
      });
      expected = await readTensors(`${root}/${dir}/features.safetensors`);
    }, 600_000);

    it('has every stored stage, FPN level and head output within 1e-4 of max-abs', async () => {
      // Both ways: every output the config gives is stored, and every stored one is produced.
      const names = [...expected.keys()].filter((k) => COMPARED.test(k)).sort();
      expect(names, 'stored stages / FPN levels / head outputs vs those of the config').toEqual([...outputs.keys()].sort());
      for (const name of names) {
        const ref = expected.get(name)!;
        const got = outputs.get(name)!;
        expect(got.shape, name).toEqual(ref.shape);
        const { rel, maxAbs } = relToMaxAbs(await got.data(), ref.data as Float32Array);
        expect(rel, `${name}: max abs err ${maxAbs}, ${rel} of max-abs`).toBeLessThan(1e-4);
      }
    }, 600_000);
  });
}
