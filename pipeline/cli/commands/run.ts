// `cellseg run` (what `npm start` calls): the whole pipeline on the synthetic default dataset, with
// the shipped demo model (models/zoo, trained by the from-scratch recipe):
//   synth -> analyze -> coco + split (fold 0) -> evaluate the demo model on the val fold (COCO segm
//   and bbox AP, competition metric) -> fine-tune it for a short CPU schedule with the same recipe
//   (256 px crops at native scale) -> evaluate again -> predict the test images with 4-flip TTA +
//   WSF -> post-process -> submission.csv -> validate-submission -> an overlay picture of the test
//   predictions and the fine-tuning loss plot. With --ensemble W (repeatable), the test images are
//   predicted by the fine-tuned model and those trained models together (TTA passes of all models
//   fused by WSF, weighted by --model-weights).
// Every stage prints its timing; the last line is a one-line summary. The outputs in --out appear
// together or not at all (io/fresh-output-dir.ts): a failed or interrupted run leaves the previous
// outputs as they were.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { runDoctor } from '../../../runtime/doctor';
import { init } from '../../../runtime/runtime';
import { UserError } from '../../../runtime/errors';
import { loadConfig } from '../../../models/config/config';
import { writeJsonAtomic } from '../../io/atomic';
import { readImageGray } from '../../io/image';
import { readTrainCsvAll } from '../../data/train-csv';
import { buildCocoDataset, subsetCoco } from '../../data/coco/build';
import { readCocoDataset } from '../../data/coco/read';
import { stratifiedKFold } from '../../data/coco/split';
import { listImages } from '../../data/image-list';
import { writeSynthDataset } from '../../data/synth/dataset';
import { buildShapeReport, collectShapeSamples } from '../../shape/analyze';
import { writeOverlayPng } from '../../viz/overlay';
import { writeMetricsPlot } from '../../viz/plot';
import { DEFAULT_POSTPROCESS, type Candidate } from '../../post/postprocess';
import { writeSubmissionFromResults } from '../../post/submission-from-results';
import { validateSubmission } from '../../post/validate-submission';
import { inferenceOnDataset } from '../../evaluation/evaluator';
import { loadPretrainedWeights } from '../../engine/checkpoint';
import { buildTrainableModel, type InstanceSegmenter } from '../../engine/model';
import { imagePredictor, loadModelForInference, predictImages, predictorOptionsFromConfig } from '../../engine/predictor';
import { predictEnsemble, type EnsembleMember } from '../../engine/ensemble';
import { runTraining } from '../../engine/train-net';
import { DEMO_MODEL_CARD, readModelCard } from '../../zoo/card';
import { collectOption, parseIntOption, parseModelWeights } from '../args';
import { checkOutputDir } from '../../io/output-path';
import { withFreshOutputDir } from '../../io/fresh-output-dir';

/** COCO maxDets for images with hundreds of cells (pycocotools: AP at 100, AP50/AP75 at 1000). */
const MAX_DETS = [1, 100, 1000];

interface RunOptions {
  out: string;
  iters: number;
  trainImages: number;
  testImages: number;
  width: number;
  height: number;
  card: string;
  weights?: string;
  ensemble: string[];
  modelWeights?: string;
  fillHoles?: boolean;
  singleContour: boolean;
}

/**
 * The short CPU fine-tuning schedule on top of the recipe: the recipe's crops at native scale and
 * batch, from the demo weights, at the recipe's final learning rate (after its two 10x steps), no
 * warmup, no evaluation inside (the run evaluates before and after).
 */
function fineTuneOverrides(o: { iters: number; out: string; weights: string }): string[] {
  return [
    'MODEL.WEIGHTS', o.weights,
    'SOLVER.MAX_ITER', String(o.iters),
    'SOLVER.BASE_LR', '0.0001',
    'SOLVER.STEPS', '()',
    'SOLVER.WARMUP_ITERS', '0',
    'SOLVER.CHECKPOINT_PERIOD', String(o.iters),
    'TEST.EVAL_PERIOD', '0',
    'OUTPUT_DIR', join(o.out, 'model'),
  ];
}

export function register(program: Command): void {
  program
    .command('run')
    .description('run the whole pipeline on the synthetic default dataset (synth -> analyze -> COCO/split -> train -> evaluate -> TTA+WSF -> submission)')
    .option('--out <dir>', 'output directory', 'output')
    .option('--iters <n>', 'fine-tuning iterations of the demo model (a short CPU schedule)', parseIntOption('--iters', 1), 4)
    .option('--card <file>', 'model card of the model to start from (names its config and weights)', DEMO_MODEL_CARD)
    .option('--weights <file>', 'start from these weights instead of the card\'s (same config)')
    .option('--train-images <n>', 'synthetic training images', parseIntOption('--train-images', 5), 10)
    .option('--test-images <n>', 'synthetic test images', parseIntOption('--test-images', 1), 2)
    .option('--width <px>', 'synthetic image width', parseIntOption('--width', 64), 704)
    .option('--height <px>', 'synthetic image height', parseIntOption('--height', 64), 520)
    .option('--ensemble <weights>', "also predict the test images with these trained weights (the card's config; repeatable): an ensemble with the fine-tuned model, fused by WSF", collectOption, [])
    .option('--model-weights <w,...>', 'with --ensemble: WSF weight of the fine-tuned model, then of each --ensemble model (default all 1)')
    .option('--fill-holes', 'post-processing: fill the holes of each mask')
    .option('--no-single-contour', 'post-processing: keep masks that are not exactly one contour after overlap removal')
    .action(async (o: RunOptions) => {
      checkOutputDir(o.out, '--out');
      await withFreshOutputDir(o.out, (previous) => runPipeline(o, previous), (l) => console.log(l));
    });
}

/** `previous(p)`: where an input inside --out (the previous run's outputs) can be read meanwhile. */
async function runPipeline(o: RunOptions, previous: (p: string) => string): Promise<void> {
  const t0 = performance.now();
  const timings: [string, number][] = [];
  const stage = async <T>(name: string, fn: () => Promise<T> | T): Promise<T> => {
    console.log(`\n== ${name}`);
    const s = performance.now();
    const r = await fn();
    const sec = (performance.now() - s) / 1000;
    timings.push([name, sec]);
    console.log(`   (${name}: ${sec.toFixed(1)} s)`);
    return r;
  };

  await stage('device', async () => {
    const report = await runDoctor();
    for (const l of report.lines) console.log(`   ${l}`);
  });

  const data = join(o.out, 'data');
  await stage('synth', () => {
    const s = writeSynthDataset(data, { seed: 42, trainImages: o.trainImages, testImages: o.testImages, width: o.width, height: o.height }, true);
    console.log(`   ${data}: ${s.train.length} train images (${s.train.reduce((t, x) => t + x.instances, 0)} cells), ${s.test.length} test images, ${o.width}x${o.height}`);
  });

  const trainCsv = join(data, 'train.csv');
  const report = await stage('analyze', async () => {
    const r = buildShapeReport(trainCsv, await collectShapeSamples(trainCsv));
    writeJsonAtomic(join(o.out, 'shape_data.json'), r);
    console.log(`   ${join(o.out, 'shape_data.json')}: ${Object.keys(r.cell_types).join(', ')}`);
    return r;
  });

  const folds = join(o.out, 'folds');
  await stage('coco + split', async () => {
    const images = await readTrainCsvAll(trainCsv);
    const { dataset } = buildCocoDataset(images, { segmentation: 'rle', imageDir: 'train' });
    writeJsonAtomic(join(o.out, 'annotations_all.json'), dataset, 0);
    const fold = stratifiedKFold(dataset.images.map((im) => ({ id: im.id, stratum: im.cell_type as string })), 5, 777, false);
    const val = dataset.images.filter((im) => fold.get(im.id) === 0).map((im) => im.id);
    const trn = dataset.images.filter((im) => fold.get(im.id) !== 0).map((im) => im.id);
    writeJsonAtomic(join(folds, 'train_fold_0.json'), subsetCoco(dataset, trn), 0);
    writeJsonAtomic(join(folds, 'val_fold_0.json'), subsetCoco(dataset, val), 0);
    console.log(`   ${dataset.images.length} images, ${dataset.annotations.length} annotations; fold 0: ${trn.length} train / ${val.length} val`);
  });

  if (!existsSync(previous(o.card))) throw new UserError(`${o.card}: no such model card (the demo model ships in models/zoo; --card names another)`);
  const card = readModelCard(previous(o.card));
  const weights = previous(o.weights ?? card.weights);
  if (!existsSync(weights)) throw new UserError(`${o.weights ?? card.weights}: no such weights file (named by ${o.weights ? '--weights' : o.card})`);
  const ensemble = o.ensemble.map(previous);
  for (const [i, w] of ensemble.entries()) if (!existsSync(w)) throw new UserError(`--ensemble ${o.ensemble[i]}: no such weights file`);
  const modelWeights = o.modelWeights === undefined ? undefined : parseModelWeights(o.modelWeights, 1 + o.ensemble.length);
  const valJson = join(folds, 'val_fold_0.json');
  const val = readCocoDataset(valJson);

  const evaluateOnVal = async (model: InstanceSegmenter, categoryIds: readonly number[], tag: string) => {
    const r = await inferenceOnDataset(imagePredictor(model, predictorOptionsFromConfig(cfg, categoryIds)), val, { imageRoot: data, maxDets: MAX_DETS });
    writeJsonAtomic(join(o.out, `val_results_${tag}.json`), r.results, 0);
    writeJsonAtomic(join(o.out, `val_metrics_${tag}.json`), r.metrics);
    console.log(
      `   segm AP ${fmt(r.metrics['segm/AP'])}  AP50 ${fmt(r.metrics['segm/AP50'])}  AP75 ${fmt(r.metrics['segm/AP75'])}  ` +
        `bbox AP ${fmt(r.metrics['bbox/AP'])}  AP50 ${fmt(r.metrics['bbox/AP50'])}  competition score ${fmt(r.metrics['competition/score'], 4)}  ` +
        `(${r.results.length} detections on ${val.images.length} images; AP at 100 detections, AP50/AP75 at 1000)`,
    );
    return r;
  };

  const cfg = loadConfig(card.config, fineTuneOverrides({ iters: o.iters, out: o.out, weights }));
  const before = await stage('evaluate demo model (val fold 0)', async () => {
    console.log(`   ${card.name}: ${card.config}, ${card.iterations} iterations on ${card.data.images} images of \`${card.data.generator}\` seed ${card.data.seed}; weights ${weights}`);
    await init();
    const model = buildTrainableModel(cfg);
    await loadPretrainedWeights(weights, model, (m) => console.log(`   warning: ${m}`));
    model.eval();
    const categoryIds = readCocoDataset(join(folds, 'train_fold_0.json')).categories.map((c) => c.id).sort((a, b) => a - b);
    const r = await evaluateOnVal(model, categoryIds, 'demo');
    model.dispose();
    return r;
  });

  const trained = await stage('fine-tune', async () => {
    console.log(`   ${card.config} from the demo weights: ${o.iters} iterations of ${cfg.SOLVER.IMS_PER_BATCH} crops ${cfg.INPUT.CROP.SIZE.join('x')} at native scale, lr ${cfg.SOLVER.BASE_LR}`);
    return runTraining({ cfg, trainJson: join(folds, 'train_fold_0.json'), imageRoot: data, logPeriod: 1 });
  });
  const { model, categoryIds } = trained;
  model.eval();

  const evalOut = await stage('evaluate fine-tuned model (val fold 0)', () => evaluateOnVal(model, categoryIds, 'finetuned'));

  const testDir = join(data, 'test');
  const { entries } = listImages(testDir);
  const results = await stage(o.ensemble.length ? `predict test (ensemble of ${1 + o.ensemble.length} models, TTA x4 + WSF)` : 'predict test (TTA x4 + WSF)', async () => {
    const opts = predictorOptionsFromConfig(cfg, categoryIds, true);
    let r;
    if (o.ensemble.length) {
      const members: EnsembleMember[] = [{ model, opts, weight: modelWeights?.[0] }];
      for (const [i, w] of ensemble.entries()) members.push({ model: await loadModelForInference(cfg, w), opts, weight: modelWeights?.[i + 1] });
      r = await predictEnsemble(members, entries);
    } else r = await predictImages(model, entries, opts);
    writeJsonAtomic(join(o.out, 'test_results.json'), r, 0);
    console.log(`   ${r.length} fused instances on ${entries.length} test images`);
    return r;
  });

  const submission = join(o.out, 'submission.csv');
  let firstImageCandidates: Candidate[] | undefined;
  await stage('post-process + submission', async () => {
    const images = entries.map((e) => ({ id: e.id, sartoriusId: e.name, width: o.width, height: o.height }));
    const r = await writeSubmissionFromResults(submission, results, images, { ...DEFAULT_POSTPROCESS, shapeData: report.shape_data, fillHoles: !!o.fillHoles, singleContour: o.singleContour }, 'test predictions');
    firstImageCandidates = r.candidates.get(entries[0]!.id);
    console.log(`   ${submission}: ${r.images} images, ${r.kept} instances kept of ${r.predicted}`);
  });

  const valid = await stage('validate-submission', async () => {
    const r = await validateSubmission(submission, new Map(entries.map((e) => [e.name, { width: o.width, height: o.height }])));
    console.log(`   valid: ${r.images} images, ${r.instances} instances, ${r.emptyImages} without instances`);
    return r;
  });

  await stage('pictures', () => {
    const e = entries[0]!;
    const gray = readImageGray(e.file, { width: o.width, height: o.height }).data;
    const overlay = join(o.out, 'test_overlay.png');
    writeOverlayPng(overlay, gray, o.width, o.height, (firstImageCandidates ?? []).map((c) => ({ categoryId: c.categoryId, mask: c.mask, score: c.score })), { scoreThresh: 0.3 });
    const curves = join(o.out, 'finetune_curves.png');
    writeMetricsPlot(join(cfg.OUTPUT_DIR, 'metrics.json'), curves, { title: `fine-tuning ${card.name}` });
    console.log(`   ${overlay}: test image ${e.name} with its TTA + WSF predictions (score >= 0.3); ${curves}: fine-tuning losses`);
  });

  const total = (performance.now() - t0) / 1000;
  console.log('\nstage timings: ' + timings.map(([n, s]) => `${n} ${s.toFixed(1)} s`).join(', '));
  console.log(
    `SUMMARY: demo model val segm AP ${fmt(before.metrics['segm/AP'])} / AP50 ${fmt(before.metrics['segm/AP50'])}, competition ${fmt(before.metrics['competition/score'], 4)}; ` +
      `fine-tuned ${trained.result.iterations} iterations in ${trained.result.seconds.toFixed(0)} s: segm AP ${fmt(evalOut.metrics['segm/AP'])} / AP50 ${fmt(evalOut.metrics['segm/AP50'])}, competition ${fmt(evalOut.metrics['competition/score'], 4)}; ` +
      `submission ${submission} valid (${valid.instances} instances on ${valid.images} images); total ${total.toFixed(0)} s`,
  );
}

function fmt(v: number | undefined, digits = 2): string {
  return v === undefined || !Number.isFinite(v) ? 'n/a' : v.toFixed(digits);
}
