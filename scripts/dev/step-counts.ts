// Load-independent counters of one V-19-slim training step at 128x128 (batch 1, 6 cells), as the
// `step` bench suite builds it: dispatches, submits and bind groups created per step, and the
// optimizer's dispatches, for the steps after a warm-up. Host times printed are indicative only.
// Run: npx tsx scripts/dev/step-counts.ts [steps=3] [sgd|adamw]
import { add, backward, init, rt, scopeAsync } from '../../engine';
import { AdamW, SGD } from '../../engine/optim';
import { CenterMask } from '../../models/centermask';
import { loadConfig } from '../../models/config/config';
import { makeScene, MODELS, type ModelBenchOptions } from '../../bench/suites/model';

const steps = Number(process.argv[2] ?? 3);
const which = process.argv[3] ?? 'sgd';
await init();
const spec = MODELS.find((m) => m.name === 'V19slim')!;
const cfg = loadConfig(spec.config, ['MODEL.FCOS.NUM_CLASSES', '3', 'MODEL.ROI_HEADS.NUM_CLASSES', '3']);
const model = new CenterMask(cfg);
model.train();
const scene = makeScene({ size: 128, batch: 1, cellsPerImage: 6, roisPerImage: 0 } as ModelBenchOptions, 7);
const params = model.parameters().filter((p) => p.requiresGrad);
const opt =
  which === 'adamw'
    ? new AdamW(params, { lr: 1e-4, weightDecay: 1e-4 })
    : new SGD(params, { lr: cfg.SOLVER.BASE_LR * cfg.SOLVER.WARMUP_FACTOR, momentum: cfg.SOLVER.MOMENTUM, weightDecay: cfg.SOLVER.WEIGHT_DECAY });
const step = () =>
  scopeAsync(async () => {
    const losses = await model.losses(scene.inputs, scene.gts);
    backward(Object.values(losses).reduce((a, b) => add(a, b)));
    opt.step();
    model.zeroGrad();
  });
console.log(`${params.length} parameters, optimizer ${which}`);
for (let i = 0; i < steps; i++) {
  const { report } = await rt().profile(step);
  const optim = report.kernels.filter((k) => k.name.startsWith('optim:')).map((k) => `${k.name} ${k.calls}`).join(', ');
  const map = report.kernels.find((k) => k.name === 'map')?.calls ?? 0;
  console.log(
    `step ${i}: ${report.dispatches} dispatches, ${report.submits} submits, ${report.bindGroupsCreated} bind groups created, ` +
      `${report.pipelinesCompiled} pipelines; map ${map}; ${optim}; host ${report.hostMs.toFixed(0)} ms (${((1000 * report.hostMs) / report.dispatches).toFixed(1)} µs/dispatch, under load)`,
  );
}
