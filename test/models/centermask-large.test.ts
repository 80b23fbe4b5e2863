// A real CenterMask-Lite V-39 training iteration through the split paths of tensors over one
// storage binding (kernels/README.md, "Large tensors"): at 256x256, batch 2, with the binding limit
// lowered to 16 MiB (above every conv weight; the largest, [1024, 2144, 1, 1], is 8.4 MiB), the
// biggest activations (the stage-2 concat [2, 768, 64, 64] is 24 MiB, one image 12 MiB), their
// gradients and the MaskIoU head's [1024, 6272] weight (24.5 MiB: its matmuls) split; everything
// smaller runs as usual. The losses and every parameter gradient match the run at the device's
// limit.
import { beforeAll, describe, expect, it } from 'vitest';
import { add, backward, init, rt, scopeAsync } from '../../engine';
import { CenterMask } from '../../models/centermask';
import { loadConfig } from '../../models/config/config';
import { makeScene, MODELS, type ModelBenchOptions } from '../../bench/suites/model';
import { expectClose } from '../util';

beforeAll(async () => {
  await init();
});

describe('CenterMask-Lite V-39 over a lowered storage binding limit', () => {
  it('one training iteration gives the losses and gradients of the unsplit run', async () => {
    const spec = MODELS.find((m) => m.name === 'V39')!;
    const cfg = loadConfig(spec.config, ['MODEL.FCOS.NUM_CLASSES', '3', 'MODEL.ROI_HEADS.NUM_CLASSES', '3']);
    const model = new CenterMask(cfg);
    model.train();
    const scene = makeScene({ size: 256, batch: 2, cellsPerImage: 5, roisPerImage: 0 } as ModelBenchOptions, 7);
    const params = model.parameters().filter((p) => p.requiresGrad);
    const iteration = async () => {
      const out = await scopeAsync(async () => {
        const losses = await model.losses(scene.inputs, scene.gts);
        const names = Object.keys(losses).sort() as (keyof typeof losses)[];
        backward(names.map((k) => losses[k]!).reduce((a, b) => add(a, b)));
        const values = await Promise.all(names.map(async (k) => (await losses[k]!.data())[0]!));
        return { names, values };
      });
      const dispatches = rt().stats().dispatches;
      const grads = await Promise.all(params.map(async (p) => Float64Array.from(await p.grad!.data())));
      model.zeroGrad();
      return { ...out, grads, dispatches };
    };
    const d0 = rt().stats().dispatches;
    const want = await iteration();
    const unsplit = want.dispatches - d0;
    rt().setBindingLimitForTests(16 * 2 ** 20);
    let got: Awaited<ReturnType<typeof iteration>>;
    try {
      got = await iteration();
    } finally {
      rt().setBindingLimitForTests(undefined);
    }
    // The split paths ran: more dispatches than the unsplit iteration.
    expect(got.dispatches - want.dispatches).toBeGreaterThan(unsplit);
    expect(got.names).toEqual(want.names);
    expectClose(got.values, want.values, { atol: 1e-5, rtol: 1e-4, what: `losses ${want.names.join(', ')}` });
    params.forEach((p, i) => {
      const scale = want.grads[i]!.reduce((m, v) => Math.max(m, Math.abs(v)), 1e-6);
      expectClose(got.grads[i]!, want.grads[i]!, { atol: 1e-3 * scale, rtol: 1e-3, what: `grad of parameter ${i} [${p.shape}]` });
    });
  }, 300_000);
});
