// The whole CenterMask training forward and backward against the oracle, for every model folder of
// the fixture set: the stored losses (1e-5) and the gradients of the stored parameters. The model
// is built from the folder's own config.yaml; which losses the stored gradients are of comes from
// the files: a folder with roi_heads weights (V39) stores d(total)/d(param) including the mask
// branch, one without (V19slim) d(FCOS losses)/d(param), and the backward here is of the sum of the
// losses train.safetensors stores. Tolerances from the fixture README: ~1e-2 relative (to max-abs)
// for the stem / stage2 gradients (ReLU and max-pool routing flips at near-ties), 1e-4 for
// everything else except the two parameters behind one measured ReLU near-tie in the FCOS head (see
// gradTolerance).
import { beforeAll, describe, expect, it } from 'vitest';
import { add, backward, init, type Tensor } from '../../engine';
import type { HostTensor } from '../../engine/checkpoint/host-tensor';
import { CenterMask, type LossDict } from '../../models/centermask';
import { readFixtureWeights } from './fixture-weights';
import { fixtureConfig, fixtureDir, fixtureManifest, fixtureModels, fixtureRoot, readTrainingFixture, relToMaxAbs } from './fixture-util';

const MODELS = fixtureModels({ files: ['weights.safetensors', 'train.safetensors', 'grads.safetensors'] });

it('finds at least one model folder with weights, training outputs and gradients in the fixture set', () => {
  fixtureRoot();
  expect(MODELS.length, `no model folder with config.yaml, weights, train and grads safetensors in ${fixtureDir()}`).toBeGreaterThan(0);
});

/** Stored sums of other stored losses (not CenterMask outputs). */

/** The fixture README's guidance: stem / stage2 gradients are rough functions of the weights
 *  (ReLU and max-pool routing flips at near-ties; its float32 port is ~4e-3 off there, measured
 *  here 2.2e-3 .. 5.6e-3 depending on the conv kernels), 1e-4 elsewhere.
 *  One exception, measured with scripts/dev/grad-diff.ts (V39): the FCOS bbox tower's second
 *  GN output at p3 [channel 32, y 28, x 35] feeds a ReLU from +7.1e-6 (direct and subgroup-gemm kernels),
 *  -1.9e-6 (packed-gemm + matvec kernels) while that GN output's max-abs is 4.6; float64 from the oracle's own
 *  p3 gives +2.1e-6, and from each run's p3 +9.9e-6 / -4.1e-6, so the sign is set by float32
 *  rounding in the backbone/FPN (p3 differs from the oracle by ~2.5e-6 of max-abs), not by a
 *  kernel error (every conv of the graph agrees with the direct kernel to <= 7e-6). When it flips,
 *  the gradient reaching p3 changes, and with it fpn_output3.bias (1.3e-3 of max-abs) and, via the
 *  top-down path, stage5.OSA5_2.ese.fc.bias (4.6e-4); letting the gradient through that one element
 *  brings both back to <= 3.5e-6. Those two get 2e-3; the FCOS heads, ROI heads and p7 do not see
 *  the flip (<= 1.4e-5 either way) and keep 1e-4. The near-tie belongs to those weights, so the
 *  exception applies only to the weights file it was measured on (its sha256 in manifest.json). */
const NEAR_TIE_WEIGHTS = '85d5922ec83921817cf426e0c52ad3b34b496e722ac6e96a8e4dc3c2eabc19b6';
const NEAR_TIE_PARAMS = new Set(['backbone.fpn_output3.bias', 'backbone.bottom_up.stage5.OSA5_2.ese.fc.bias']);

function gradTolerance(model: string, name: string): number {
  if (/stem|stage2/.test(name)) return 1e-2;
  const files = fixtureManifest(model).files;
  if (files?.['weights.safetensors']?.sha256 === NEAR_TIE_WEIGHTS && NEAR_TIE_PARAMS.has(name)) return 2e-3;
  return 1e-4;
}

for (const dir of MODELS) {
  describe(`CenterMask2 ${dir}: training losses and gradients vs the oracle`, () => {
    let losses: Record<string, Tensor>;
    let model: CenterMask;
    let stored: string[];
    let expectedLosses: Map<string, HostTensor>;
    let expectedGrads: Map<string, HostTensor>;

    beforeAll(async () => {
      await init();
      const root = fixtureRoot();
      model = new CenterMask(fixtureConfig(dir));
      const weights = await readFixtureWeights(`${root}/${dir}/weights.safetensors`);
      const withRoi = [...weights.keys()].some((k) => k.startsWith('roi_heads.'));
      const r = model.loadStateDict(weights, { strict: false });
      expect(r.unexpectedKeys).toEqual([]);
      expect(r.shapeMismatches).toEqual([]);
      expect(r.missingKeys.filter((k) => !k.startsWith('roi_heads.') || withRoi)).toEqual([]);
      const fx = await readTrainingFixture(root, dir);
      ({ expectedLosses, expectedGrads, stored } = fx);
      model.train();
      losses = await model.losses([fx.input], [fx.gts]);
      for (const n of stored) expect(losses[n as keyof LossDict], `stored loss ${n} is not a CenterMask loss`).toBeDefined();
      // The stored gradients are of the sum of the stored losses (loss.total or loss.fcos_total).
      backward(stored.map((n) => losses[n]!).reduce((a, b) => add(a, b)));
    }, 900_000);

    it('reproduces every stored loss to 1e-5', async () => {
      expect(stored.length).toBeGreaterThanOrEqual(3);
      for (const name of stored) {
        const key = `loss.${name}`;
        const got = await losses[name]!.item();
        const want = Number((expectedLosses.get(key)!.data as ArrayLike<number>)[0]);
        console.log(`${dir} ${name}: got ${got}, want ${want}, |diff| ${Math.abs(got - want).toExponential(2)}`);
        expect(Math.abs(got - want), `${name}: got ${got}, want ${want}`).toBeLessThan(1e-5);
      }
    }, 600_000);

    it('reproduces the stored parameter gradients', async () => {
      const params = new Map(model.namedParameters());
      expect(expectedGrads.size).toBeGreaterThan(0);
      const failures: string[] = [];
      for (const [name, ref] of expectedGrads) {
        const p = params.get(name);
        expect(p, `parameter ${name}`).toBeDefined();
        expect(p!.grad, `no gradient for ${name}`).not.toBeNull();
        const tol = gradTolerance(dir, name);
        const { rel, maxAbs } = relToMaxAbs(await p!.grad!.data(), ref.data as Float32Array);
        console.log(`${dir} grad ${name}: ${rel.toExponential(2)} of max-abs (tolerance ${tol})`);
        if (!(rel < tol)) failures.push(`${name}: max abs err ${maxAbs}, ${rel} of max-abs (tolerance ${tol})`);
      }
      expect(failures).toEqual([]);
    }, 600_000);
  });
}
