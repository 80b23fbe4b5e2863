// The whole CenterMask training forward and backward against the oracle: the five losses (1e-5)
// and the gradients of the stored parameters. V39 stores d(total)/d(param) including the mask
// branch; V19slim stores d(FCOS losses)/d(param) and no ROI weights. Tolerances from the fixture
// README: ~1e-2 relative (to max-abs) for the stem / stage2 gradients (ReLU and max-pool routing
// flips at near-ties), 1e-4 for everything else except the two parameters behind one measured
// ReLU near-tie in the FCOS head (see gradTolerance).
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { add, backward, init, type Tensor } from '../../engine';
import { CenterMask, type GtInstances } from '../../models/centermask';
import { loadConfig } from '../../models/config/config';
import { readFixtureWeights } from './fixture-weights';
import { fixtureRoot, readTensors, relToMaxAbs } from './fixture-util';

interface GtJson {
  instances: { class: number; polygons: number[][]; box_xyxy: number[] }[];
}

const CONFIGS = [
  { dir: 'V19slim', config: 'configs/centermask_lite_V_19_slim_eSE_FPN_ms_4x.yaml', roi: false },
  { dir: 'V39', config: 'configs/centermask_lite_V_39_eSE_FPN_ms_4x.yaml', roi: true },
];

/** The fixture README's guidance: stem / stage2 gradients are rough functions of the weights
 *  (ReLU and max-pool routing flips at near-ties; its float32 port is ~4e-3 off there, measured
 *  here 2.2e-3 .. 5.6e-3 depending on the conv kernels), 1e-4 elsewhere.
 *  One exception, measured with scripts/dev/grad-diff.ts (V39): the FCOS bbox tower's second
 *  GN output at p3 [channel 32, y 28, x 35] feeds a ReLU from +7.1e-6 (direct and gemm3 kernels),
 *  -1.9e-6 (gemm2 + fc kernels) while that GN output's max-abs is 4.6; float64 from the oracle's own
 *  p3 gives +2.1e-6, and from each run's p3 +9.9e-6 / -4.1e-6, so the sign is set by float32
 *  rounding in the backbone/FPN (p3 differs from the oracle by ~2.5e-6 of max-abs), not by a
 *  kernel error (every conv of the graph agrees with the direct kernel to <= 7e-6). When it flips,
 *  the gradient reaching p3 changes, and with it fpn_output3.bias (1.3e-3 of max-abs) and, via the
 *  top-down path, stage5.OSA5_2.ese.fc.bias (4.6e-4); letting the gradient through that one element
 *  brings both back to <= 3.5e-6. Those two get 2e-3; the FCOS heads, ROI heads and p7 do not see
 *  the flip (<= 1.4e-5 either way) and keep 1e-4. */
function gradTolerance(model: string, name: string): number {
  if (/stem|stage2/.test(name)) return 1e-2;
  if (model === 'V39' && (name === 'backbone.fpn_output3.bias' || name === 'backbone.bottom_up.stage5.OSA5_2.ese.fc.bias')) return 2e-3;
  return 1e-4;
}

for (const c of CONFIGS) {
  describe(`CenterMask2 ${c.dir}: training losses and gradients vs the oracle`, () => {
    let losses: Record<string, Tensor>;
    let model: CenterMask;
    let expectedLosses: Map<string, import('../../engine/checkpoint/host-tensor').HostTensor>;
    let expectedGrads: Map<string, import('../../engine/checkpoint/host-tensor').HostTensor>;

    beforeAll(async () => {
      await init();
      const root = fixtureRoot();
      const cfg = loadConfig(c.config, ['MODEL.FCOS.NUM_CLASSES', '3', 'MODEL.ROI_HEADS.NUM_CLASSES', '3', 'MODEL.WEIGHTS', '']);
      model = new CenterMask(cfg);
      const weights = await readFixtureWeights(`${root}/${c.dir}/weights.safetensors`);
      const r = model.loadStateDict(weights, { strict: false });
      expect(r.unexpectedKeys).toEqual([]);
      expect(r.shapeMismatches).toEqual([]);
      expect(r.missingKeys.filter((k) => !k.startsWith('roi_heads.') || c.roi)).toEqual([]);
      const image = (await readTensors(`${root}/input.safetensors`)).get('image')!;
      const [, h, w] = image.shape as [number, number, number];
      const gt = JSON.parse(readFileSync(`${root}/gt.json`, 'utf8')) as GtJson;
      const gts: GtInstances = {
        boxes: Float32Array.from(gt.instances.flatMap((i) => i.box_xyxy)),
        classes: Int32Array.from(gt.instances.map((i) => i.class)),
        polygons: gt.instances.map((i) => i.polygons),
      };
      model.train();
      losses = await model.losses([{ image: image.data as Float32Array, height: h, width: w, origHeight: h, origWidth: w }], [gts]);
      const names = c.roi ? Object.keys(losses) : ['loss_fcos_cls', 'loss_fcos_loc', 'loss_fcos_ctr'];
      const total = names.map((n) => losses[n]!).reduce((a, b) => add(a, b));
      backward(total);
      expectedLosses = await readTensors(`${root}/${c.dir}/train.safetensors`);
      expectedGrads = await readTensors(`${root}/${c.dir}/grads.safetensors`);
    }, 900_000);

    it('reproduces every stored loss to 1e-5', async () => {
      const stored = [...expectedLosses.keys()].filter((k) => k.startsWith('loss.') && k !== 'loss.total' && k !== 'loss.fcos_total');
      expect(stored.length).toBeGreaterThanOrEqual(3);
      for (const key of stored) {
        const name = key.slice('loss.'.length);
        const got = await losses[name]!.item();
        const want = Number((expectedLosses.get(key)!.data as ArrayLike<number>)[0]);
        console.log(`${c.dir} ${name}: got ${got}, want ${want}, |diff| ${Math.abs(got - want).toExponential(2)}`);
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
        const tol = gradTolerance(c.dir, name);
        const { rel, maxAbs } = relToMaxAbs(await p!.grad!.data(), ref.data as Float32Array);
        console.log(`${c.dir} grad ${name}: ${rel.toExponential(2)} of max-abs (tolerance ${tol})`);
        if (!(rel < tol)) failures.push(`${name}: max abs err ${maxAbs}, ${rel} of max-abs (tolerance ${tol})`);
      }
      expect(failures).toEqual([]);
    }, 600_000);
  });
}
