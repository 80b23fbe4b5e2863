// Publishes a finished training run as a zoo model: f16 weights, the model card (final metrics,
// seconds per iteration, hardware, the command), the run's metrics.json and its curves drawn next
// to the reference run of the same recipe.
//   npx tsx scripts/zoo/publish-demo-model.ts --run output/synth_centermask_lite_V_19_slim_scratch \
//     --name centermask_lite_V_19_slim_synth --hardware "..." --command "cellseg train ..."
import { copyFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { exportWeightsFile } from '../../pipeline/zoo/export';
import { writeModelCard, type ModelCard } from '../../pipeline/zoo/card';
import { parseMetricsJson, writeMetricsPlot, type ReferenceSeries } from '../../pipeline/viz/plot';

const { values: a } = parseArgs({
  options: {
    run: { type: 'string' },
    name: { type: 'string', default: 'centermask_lite_V_19_slim_synth' },
    config: { type: 'string', default: 'configs/synth_centermask_lite_V_19_slim_scratch.yaml' },
    generator: { type: 'string', default: 'cellseg synth --train 40 --test 0 (704x520)' },
    seed: { type: 'string', default: '9137' },
    images: { type: 'string', default: '40' },
    hardware: { type: 'string' },
    command: { type: 'string' },
    reference: { type: 'string', default: 'models/zoo/reference_centermask2_synth_recipe.json' },
    zoo: { type: 'string', default: 'models/zoo' },
    // Default: the median of the run's logged windows; pass the quiet-machine figure when other work shared the cores for part of the run.
    'seconds-per-iteration': { type: 'string' },
  },
});
if (!a.run || !a.hardware || !a.command) throw new Error('--run, --hardware and --command are required');
const zoo = a.zoo!;
const metricsText = readFileSync(join(a.run, 'metrics.json'), 'utf8');
parseMetricsJson(metricsText, join(a.run, 'metrics.json')); // every line checked before anything is written
const lines = metricsText.trim().split('\n').map((l) => JSON.parse(l) as Record<string, number>);
const train = lines.filter((l) => 'total_loss' in l);
const evals = lines.filter((l) => 'segm/AP' in l);
const last = evals.at(-1);
if (!last) throw new Error(`${a.run}/metrics.json has no evaluation`);
const times = train.map((l) => l.time!).sort((x, y) => x - y);
const secondsPerIteration = a['seconds-per-iteration'] ? Number(a['seconds-per-iteration']) : times[Math.floor(times.length / 2)]!;
const pick = (prefix: string) => {
  const out: Record<string, number | null> = {};
  for (const [k, v] of Object.entries(last)) if (k.startsWith(prefix)) out[k.slice(prefix.length)] = Number.isFinite(v) ? Math.round(v * 1000) / 1000 : null;
  return out;
};

const weights = join(zoo, `${a.name}.safetensors`);
const ex = await exportWeightsFile(join(a.run, 'model_final.safetensors'), weights);
console.log(`wrote ${weights}: ${(ex.inputBytes / 1e6).toFixed(1)} MB f32 -> f16`);
const card: ModelCard = {
  name: a.name!,
  config: a.config!,
  weights,
  data: { generator: a.generator!, seed: Number(a.seed), images: Number(a.images) },
  iterations: last.iteration! + 1,
  hardware: a.hardware,
  seconds_per_iteration: Math.round(secondsPerIteration * 1000) / 1000,
  metrics: { segm: pick('segm/'), bbox: pick('bbox/'), competition_score: Number.isFinite(last['competition/score']) ? Math.round(last['competition/score']! * 10000) / 10000 : null },
  command: a.command,
};
writeModelCard(join(zoo, `${a.name}.json`), card);
copyFileSync(join(a.run, 'metrics.json'), join(zoo, `${a.name}_metrics.json`));

const ref = JSON.parse(readFileSync(a.reference!, 'utf8')) as { seed_1234: Record<string, [number, number][]> };
// The reference logs evaluations after N iterations; metrics.json numbers them N - 1.
const reference: ReferenceSeries[] = Object.entries(ref.seed_1234)
  .filter(([k]) => ['segm/AP', 'segm/AP50', 'bbox/AP50', 'competition/score'].includes(k))
  .map(([label, pts]) => ({ label, points: pts.map(([it, v]) => ({ iteration: it - 1, value: v })), panel: 'metrics' }));
writeMetricsPlot(join(a.run, 'metrics.json'), join(zoo, `${a.name}_curves.png`), { title: `${a.name}: cellgpu (solid) vs the real CenterMask2, same recipe (dashed)`, reference });
console.log(`wrote ${join(zoo, `${a.name}.json`)}, ${a.name}_metrics.json, ${a.name}_curves.png`);
console.log(JSON.stringify(card, null, 2));
