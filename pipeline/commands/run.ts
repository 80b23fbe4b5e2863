// `cellseg run` (what `npm start` calls): the whole pipeline on the synthetic default dataset.
//   synth -> analyze -> coco + split (fold 0) -> train (sartorius lite V-19-slim config, a short
//   CPU schedule) -> evaluate on the val fold (COCO segm AP + competition metric) -> predict the
//   test images with TTA + WSF -> post-process -> submission.csv -> validate-submission.
// Every stage prints its timing; the last line is a one-line summary.
import { join } from 'node:path';
import type { Command } from 'commander';
import { runDoctor } from '../../core/doctor';
import { loadConfig } from '../../models/config/config';
import { writeSynthDataset } from '../synth/dataset';
import { buildShapeReport, collectShapeSamples } from '../shape/analyze';
import { readTrainCsvAll } from '../data/trainCsv';
import { buildCocoDataset, subsetCoco } from '../coco/build';
import { stratifiedKFold } from '../coco/split';
import { readCocoDataset } from '../coco/read';
import { writeJsonAtomic } from '../io/atomic';
import { cocoRleToCrop, segmentationToCocoRle } from '../data/cocoRle';
import { writeSubmission } from '../data/submission';
import type { Runs } from '../data/rle';
import { DEFAULT_POSTPROCESS, postprocessImage, type Candidate } from '../post/postprocess';
import { validateSubmission } from '../post/validateSubmission';
import { centerMaskIsTrainable } from '../train/build-model';
import { evaluateModel } from '../predict/evaluate';
import { predictorOptionsFromConfig } from '../predict/predictor';
import { listImages, predictImages } from './predict';
import { runTraining } from './train';
import { parseIntOption } from './progress';

export const RUN_CONFIG = 'configs/sartorius_centermask_lite_V_19_slim.yaml';

interface RunOptions {
  out: string;
  iters: number;
  trainImages: number;
  testImages: number;
  width: number;
  height: number;
  size: number;
}

/** The short CPU schedule: overrides on top of the shipped config (whose own schedule is 200 iterations). */
export function cpuScheduleOverrides(o: Pick<RunOptions, 'iters' | 'size' | 'out'>): string[] {
  const warm = Math.max(1, Math.floor(o.iters / 5));
  return [
    'SOLVER.MAX_ITER', String(o.iters),
    'SOLVER.STEPS', `(${Math.max(1, Math.floor(o.iters * 0.75))},)`,
    'SOLVER.WARMUP_ITERS', String(warm),
    'SOLVER.CHECKPOINT_PERIOD', String(o.iters),
    'TEST.EVAL_PERIOD', '0',
    'INPUT.MIN_SIZE_TRAIN', `(${o.size},)`,
    'INPUT.MAX_SIZE_TRAIN', String(Math.round((o.size * 704) / 520) + 1),
    'INPUT.MIN_SIZE_TEST', String(o.size),
    'INPUT.MAX_SIZE_TEST', String(Math.round((o.size * 704) / 520) + 1),
    'OUTPUT_DIR', join(o.out, 'model'),
  ];
}

export function register(program: Command): void {
  program
    .command('run')
    .description('run the whole pipeline on the synthetic default dataset (synth -> analyze -> COCO/split -> train -> evaluate -> TTA+WSF -> submission)')
    .option('--out <dir>', 'output directory', 'output')
    .option('--iters <n>', 'training iterations (a short CPU schedule; the config itself says 200)', parseIntOption('--iters', 1), 4)
    .option('--train-images <n>', 'synthetic training images', parseIntOption('--train-images', 5), 10)
    .option('--test-images <n>', 'synthetic test images', parseIntOption('--test-images', 1), 2)
    .option('--width <px>', 'synthetic image width', parseIntOption('--width', 64), 704)
    .option('--height <px>', 'synthetic image height', parseIntOption('--height', 64), 520)
    .option('--size <px>', 'short side the images are resized to for training and inference', parseIntOption('--size', 32), 96)
    .action(async (o: RunOptions) => {
      await runPipeline(o);
    });
}

async function runPipeline(o: RunOptions): Promise<void> {
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

  if (!centerMaskIsTrainable()) {
    console.log('\nCenterMask.losses / CenterMask.inference are not in models/centermask.ts yet, so the run stops after the data stages.');
    console.log(`SUMMARY: data stages done in ${((performance.now() - t0) / 1000).toFixed(1)} s (${o.out}/); training, evaluation and submission need the model's losses/inference`);
    return;
  }

  const cfg = loadConfig(RUN_CONFIG, cpuScheduleOverrides(o));
  const trained = await stage('train', async () => {
    console.log(`   ${RUN_CONFIG} with a short CPU schedule: ${o.iters} iterations of ${cfg.SOLVER.IMS_PER_BATCH} images at short side ${o.size} px`);
    console.log(`   (the config's own schedule is 200 iterations at 256-320 px; a real run is thousands of iterations on a GPU, so expect near-zero scores here)`);
    return runTraining({ cfg, trainJson: join(folds, 'train_fold_0.json'), imageRoot: data, logPeriod: Math.max(1, Math.min(20, Math.floor(o.iters / 4))) });
  });
  const { model, categoryIds } = trained;
  model.eval();

  const evalOut = await stage('evaluate (val fold 0)', async () => {
    const val = readCocoDataset(join(folds, 'val_fold_0.json'));
    const r = await evaluateModel(model, val, { imageRoot: data, predictor: predictorOptionsFromConfig(cfg, categoryIds) });
    writeJsonAtomic(join(o.out, 'val_results.json'), r.results, 0);
    writeJsonAtomic(join(o.out, 'val_metrics.json'), r.metrics);
    console.log(`   segm AP ${fmt(r.metrics['segm/AP'])}  AP50 ${fmt(r.metrics['segm/AP50'])}  bbox AP ${fmt(r.metrics['bbox/AP'])}  competition score ${fmt(r.metrics['competition/score'], 4)}  (${r.results.length} detections on ${val.images.length} images)`);
    return r;
  });

  const testDir = join(data, 'test');
  const { entries } = listImages(testDir);
  const results = await stage('predict test (TTA x4 + WSF)', async () => {
    const r = await predictImages(model, entries, { ...predictorOptionsFromConfig(cfg, categoryIds, true) });
    writeJsonAtomic(join(o.out, 'test_results.json'), r, 0);
    console.log(`   ${r.length} fused instances on ${entries.length} test images`);
    return r;
  });

  const submission = join(o.out, 'submission.csv');
  await stage('post-process + submission', async () => {
    const masks = new Map<string, Runs[]>();
    let kept = 0;
    for (const e of entries) {
      const cands: Candidate[] = results
        .filter((r) => r.image_id === e.id)
        .map((r) => {
          const rle = segmentationToCocoRle(r.segmentation, r.segmentation!.size[0], r.segmentation!.size[1]);
          return { score: r.score, categoryId: r.category_id, mask: cocoRleToCrop(rle) };
        });
      const [h, w] = [o.height, o.width];
      const post = postprocessImage(cands, w, h, { ...DEFAULT_POSTPROCESS, shapeData: report.shape_data });
      masks.set(e.name, post.masks);
      kept += post.masks.length;
    }
    await writeSubmission(submission, entries.map((e) => e.name), masks);
    console.log(`   ${submission}: ${entries.length} images, ${kept} instances kept of ${results.length}`);
  });

  const valid = await stage('validate-submission', async () => {
    const r = await validateSubmission(submission, new Map(entries.map((e) => [e.name, { width: o.width, height: o.height }])));
    console.log(`   valid: ${r.images} images, ${r.instances} instances, ${r.emptyImages} without instances`);
    return r;
  });

  const total = (performance.now() - t0) / 1000;
  console.log('\nstage timings: ' + timings.map(([n, s]) => `${n} ${s.toFixed(1)} s`).join(', '));
  console.log(
    `SUMMARY: trained ${trained.result.iterations} iterations (short CPU schedule) in ${trained.result.seconds.toFixed(0)} s; ` +
      `val segm AP ${fmt(evalOut.metrics['segm/AP'])}, competition score ${fmt(evalOut.metrics['competition/score'], 4)}; ` +
      `submission ${submission} valid (${valid.instances} instances on ${valid.images} images); total ${total.toFixed(0)} s`,
  );
}

function fmt(v: number | undefined, digits = 2): string {
  return v === undefined || !Number.isFinite(v) ? 'n/a' : v.toFixed(digits);
}
