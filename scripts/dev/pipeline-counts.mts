// How many compute pipelines the demo model compiles: a first inference at SIZE², a second one
// (none: the cache is hit), one with TTA, and 2 iterations of the page's fine-tune loop (256²
// crops), grouped by kernel name, with the wall time of each (the first ones include compiling).
// KEYS=1 lists every key. CELLGPU_ASYNC_PIPELINES=1 compiles in the background (runtime/README.md).
// Run: npx tsx scripts/dev/pipeline-counts.mts [segment|finetune|both] [SIZE=128]
import { init, rt } from '../../runtime/runtime';
import { loadConfig } from '../../models/config/config';
import { loadModelForInference, predictGray, predictorOptionsFromConfig } from '../../pipeline/engine/predictor';
import { synthImages } from '../../pipeline/data/synth/dataset';
import type { TrainableModel } from '../../pipeline/engine/model';
import { finetune, synthTrainingSet } from '../../web/lib/finetune';

const what = process.argv[2] ?? 'both';
const size = Number(process.argv[3] ?? 128);
const CONFIG = 'configs/synth_centermask_lite_V_19_slim_scratch.yaml';
const WEIGHTS = 'models/zoo/centermask_lite_V_19_slim_synth.safetensors';
await init();
const keys = () => [...(rt() as unknown as { kernels: Map<string, unknown> }).kernels.keys()]; // the runtime's cache
function report(label: string, before: Set<string>, ms: number): void {
  const added = keys().filter((k) => !before.has(k));
  const byName = new Map<string, number>();
  for (const k of added) {
    const name = k.split(/[:|(\s]/)[0]!;
    byName.set(name, (byName.get(name) ?? 0) + 1);
  }
  console.log(`${label}: ${added.length} new pipelines (total ${rt().stats().pipelines}), ${ms.toFixed(0)} ms wall`);
  console.log('  ' + [...byName].sort((a, b) => b[1] - a[1]).map(([n, c]) => `${n} ${c}`).join(', '));
  if (process.env.KEYS) for (const k of added) console.log('    ' + k);
}
if (what !== 'finetune') {
  const cfg = loadConfig(CONFIG, ['INPUT.MIN_SIZE_TEST', String(size), 'MODEL.FCOS.POST_NMS_TOPK_TEST', '50']);
  const model = await loadModelForInference(cfg, WEIGHTS);
  const im = synthImages({ seed: 11, trainImages: 0, testImages: 1, width: size, height: size }, 'test').next().value!;
  for (const tta of [false, false, true]) {
    const before = new Set(keys());
    const t0 = performance.now();
    await predictGray(model, im.pixels, size, size, predictorOptionsFromConfig(cfg, [1, 2, 3], tta));
    report(`segment ${size}x${size}${tta ? ' tta' : ''}`, before, performance.now() - t0);
  }
}
if (what !== 'segment') {
  const cfg = loadConfig(CONFIG);
  const set = synthTrainingSet({ seed: 7, images: 1, width: 256, height: 256 });
  const model = (await loadModelForInference(cfg, WEIGHTS)) as TrainableModel;
  let before = new Set(keys());
  let t0 = performance.now();
  await finetune({ cfg, model, name: 'demo', categoryIds: [1, 2, 3] }, set, {
    iters: 2,
    seed: cfg.SEED,
    onIteration: (i, loss) => {
      report(`finetune iter ${i} loss ${loss}`, before, performance.now() - t0);
      before = new Set(keys());
      t0 = performance.now();
    },
  });
}
