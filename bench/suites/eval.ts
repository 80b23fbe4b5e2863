// Benchmark `eval`: the competition metric and COCO segm AP (pycocotools semantics) on 100 images
// x 300 instances of synthetic cells (704x520), predictions = the truth shifted by 0-2 px, 10 %
// missed, 10 % extra. Reports the median wall time of each.
import { Rng } from '../../runtime/rng';
import { COCO_CATEGORIES } from '../../pipeline/data/cell-types';
import { cocoRleArea, cocoRleToBbox, cocoRleToJson, cropToCocoRle } from '../../structures/coco-rle';
import { cropToRuns, type MaskCrop } from '../../structures/mask-crop';
import type { Runs } from '../../structures/rle';
import type { CocoDataset, CocoResult } from '../../pipeline/data/coco/types';
import { cocoEvaluate } from '../../pipeline/evaluation/coco-eval';
import { competitionScore, type MetricImage } from '../../pipeline/evaluation/competition-metric';
import { randomShape, rasterizeShape } from '../../pipeline/data/synth/cell-shapes';
import type { BenchRow, BenchSuite } from '../types';

const W = 704;
const H = 520;

function shifted(m: MaskCrop, dx: number, dy: number): MaskCrop {
  const x0 = Math.min(W - m.width, Math.max(0, m.x0 + dx));
  const y0 = Math.min(H - m.height, Math.max(0, m.y0 + dy));
  return { ...m, x0, y0 };
}

function buildData(images: number, perImage: number) {
  const rng = new Rng(2024);
  const metric: MetricImage[] = [];
  const gt: CocoDataset = { images: [], annotations: [], categories: COCO_CATEGORIES };
  const res: CocoResult[] = [];
  for (let i = 0; i < images; i++) {
    const truth: Runs[] = [];
    const pred: Runs[] = [];
    gt.images.push({ id: i + 1, width: W, height: H, file_name: `${i}.png` });
    for (let k = 0; k < perImage; k++) {
      const m = rasterizeShape(randomShape(rng, 'shsy5y', rng.uniform(0, W), rng.uniform(0, H)), W, H);
      const rle = cropToCocoRle(m);
      truth.push(cropToRuns(m));
      gt.annotations.push({ id: gt.annotations.length + 1, image_id: i + 1, category_id: 1, segmentation: cocoRleToJson(rle), area: cocoRleArea(rle), bbox: cocoRleToBbox(rle), iscrowd: 0 });
      if (rng.next() < 0.1) continue;
      const p = shifted(m, rng.int(-2, 3), rng.int(-2, 3));
      pred.push(cropToRuns(p));
      res.push({ image_id: i + 1, category_id: 1, score: rng.next(), segmentation: cocoRleToJson(cropToCocoRle(p)) });
    }
    for (let k = 0; k < perImage / 10; k++) {
      const m = rasterizeShape(randomShape(rng, 'shsy5y', rng.uniform(0, W), rng.uniform(0, H)), W, H);
      pred.push(cropToRuns(m));
      res.push({ image_id: i + 1, category_id: 1, score: rng.next() * 0.5, segmentation: cocoRleToJson(cropToCocoRle(m)) });
    }
    metric.push({ id: String(i), width: W, truth, pred });
  }
  return { metric, gt, res };
}

function median(xs: number[]): number {
  const s = xs.slice().sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

export const run: BenchSuite = async (ctx) => {
  const repeats = ctx.repeats ?? 3;
  ctx.log('building 100 images x 300 instances ...');
  const { metric, gt, res } = buildData(100, 300);
  const rows: BenchRow[] = [];
  const time = (name: string, f: () => number, extra: Record<string, unknown>) => {
    f(); // warm-up
    const ms: number[] = [];
    let value = 0;
    for (let r = 0; r < repeats; r++) {
      const t = performance.now();
      value = f();
      ms.push(performance.now() - t);
    }
    rows.push({ suite: 'eval', case: name, ms: median(ms), value, ...extra });
    ctx.log(`${name}: ${median(ms).toFixed(0)} ms (value ${value.toFixed(4)})`);
  };
  time('competition-metric-100x300', () => competitionScore(metric).score, { images: 100, instances: 30000 });
  time('coco-segm-ap-100x300', () => cocoEvaluate(gt, res, { iouType: 'segm', maxDets: [1, 10, 300] }).summary.AR100, {
    images: 100,
    instances: 30000,
    note: 'value = AR at maxDets 300 (AP is reported at maxDets 100 as pycocotools)',
  });
  time('coco-segm-ap-100x300-maxdets100', () => cocoEvaluate(gt, res, { iouType: 'segm' }).summary.AP, { images: 100, instances: 30000 });
  return rows;
};
