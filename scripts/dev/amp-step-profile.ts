// One lite V-39 training step under mixed precision (autocast + GradScaler), profiled per kernel
// after a warm-up, next to the f32 step: where the AMP step's time goes on this adapter. Host and
// device times are indicative only (the machine is shared).
// Run: npx tsx scripts/dev/amp-step-profile.ts [size=128] [batch=1]
import { add, autocast, backward, formatProfile, GradScaler, init, rt, scopeAsync } from '../../engine';
import { SGD } from '../../engine/optim';
import { CenterMask } from '../../models/centermask';
import { loadConfig } from '../../models/config/config';
import { makeScene, MODELS, type ModelBenchOptions } from '../../bench/suites/model';

const size = Number(process.argv[2] ?? 128);
const batch = Number(process.argv[3] ?? 1);
await init();
const spec = MODELS.find((m) => m.name === 'V39')!;
const cfg = loadConfig(spec.config, ['MODEL.FCOS.NUM_CLASSES', '3', 'MODEL.ROI_HEADS.NUM_CLASSES', '3']);
const model = new CenterMask(cfg);
model.train();
const scene = makeScene({ size, batch, cellsPerImage: 6, roisPerImage: 0 } as ModelBenchOptions, 7);
const params = model.parameters().filter((p) => p.requiresGrad);
const opt = new SGD(params, { lr: cfg.SOLVER.BASE_LR * cfg.SOLVER.WARMUP_FACTOR, momentum: cfg.SOLVER.MOMENTUM, weightDecay: cfg.SOLVER.WEIGHT_DECAY });
const scaler = new GradScaler();
const step = (amp: boolean) =>
  scopeAsync(async () => {
    if (amp) {
      const losses = await autocast(() => model.losses(scene.inputs, scene.gts));
      backward(scaler.scale(Object.values(losses).reduce((a, b) => add(a, b))));
      scaler.step(opt);
      scaler.update();
    } else {
      const losses = await model.losses(scene.inputs, scene.gts);
      backward(Object.values(losses).reduce((a, b) => add(a, b)));
      opt.step();
    }
    model.zeroGrad();
  });
for (const amp of [false, true]) {
  await step(amp);
  const { report } = await rt().profile(() => step(amp));
  console.log(`${amp ? 'AMP' : 'f32'} step, ${size}x${size} batch ${batch}:\n${formatProfile(report, 20)}`);
}
