// Issue 6's overfit check, shared by test/models/centermask-overfit.test.ts and the dev script
// scripts/dev/overfit.ts: CenterMask-Lite V-19-slim from random initialisation, trained with SGD
// (momentum 0.9, linear warmup, one LR step, Detectron2's per-parameter gradient-norm clipping)
// on one small synthetic image, then run in eval mode.
//
// Why this scene: five small elliptic cells of one shape, each centred on a stride-8 FCOS location and smaller
// than one stride, so each has exactly one positive location and its centerness target is exactly
// 1. The centerness BCE can then go to 0; with larger cells the positives' centerness targets lie
// in (0, 1) and their entropy (about 0.5 for the first scenes tried) is a floor under the total
// loss that a 5x reduction cannot cross. Why per-parameter clipping (SOLVER.CLIP_GRADIENTS,
// CLIP_TYPE "norm", 1.0): the gradients of the FCOS towers' first biases and the FPN biases sum
// over every location and have norms of 20-50 at the start; a global-norm clip then scales every
// other gradient (the mask head's) down 10-20x.
import { add, backward, rt, scopeAsync } from '../../engine';
import { SGD } from '../../engine/optim/sgd';
import { WarmupMultiStepLR } from '../../engine/optim/lr-scheduler';
import { manualSeed } from '../../engine/nn/init';
import { CenterMask, type Instances } from '../../models/centermask';
import { loadConfig } from '../../models/config/config';
import { buildGradientClipper } from '../../pipeline/engine/solver';
import { makeScene, maskIou, type Cell } from './cell-scene';

// One shape for all five (the classes differ by the body's gray level): the five regression
// targets are then equal, so the one shared box predictor is not pulled in different directions at
// its only five positives. With five different shapes (rx 5-7, ry 4-7, rotated) the same schedule
// ended at 5.6x with one build of the kernels and at 3.9x with another: a regression output that
// falls below zero at a positive gets no gradient through FCOS's ReLU, and with one positive per
// cell nothing revives it. With equal shapes, seeds 0 and 1 ended at 0.54 and 0.48 (from 3.26 and
// 3.09) in 120 iterations.
export const OVERFIT_CELLS: Cell[] = [
  { cx: 12, cy: 12, rx: 6, ry: 5, angle: 0, cls: 0 },
  { cx: 44, cy: 12, rx: 6, ry: 5, angle: 0, cls: 1 },
  { cx: 28, cy: 28, rx: 6, ry: 5, angle: 0, cls: 2 },
  { cx: 12, cy: 44, rx: 6, ry: 5, angle: 0, cls: 1 },
  { cx: 52, cy: 52, rx: 6, ry: 5, angle: 0, cls: 0 },
];

/** n x n small cells, each centred on a stride-8 location (12 + 24 i), classes cycling: a
 *  (24 n + 24)-pixel square image holds them. */
export function gridCells(n: number): Cell[] {
  const out: Cell[] = [];
  for (let j = 0; j < n; j++) {
    for (let i = 0; i < n; i++) {
      const k = j * n + i;
      out.push({ cx: 12 + 24 * i, cy: 12 + 24 * j, rx: 5 + ((k * 7) % 5) * 0.5, ry: 4 + ((k * 3) % 6) * 0.5, angle: ((k * 37) % 31) / 10, cls: k % 3 });
    }
  }
  return out;
}

export interface OverfitOptions {
  iters: number;
  lr: number;
  size?: number;
  cells?: Cell[];
  /** Per-parameter gradient-norm clip (Detectron2 CLIP_TYPE "norm"). */
  clip?: number;
  seed?: number;
  /** Called after every iteration with the loss values (read back: one sync per iteration). */
  onIteration?: (it: number, losses: Record<string, number>, msPerIter: number) => void;
}

export interface OverfitResult {
  /** Loss values per iteration, `total` first, then the model's five losses. */
  history: Record<string, number>[];
  detections: Instances;
  /** Per ground-truth cell: the best mask IoU over all detections and over those of its class. */
  cells: { iou: number; iouSameClass: number; cls: number }[];
  msPerIter: number;
}

export async function runOverfit(o: OverfitOptions): Promise<OverfitResult> {
  const size = o.size ?? 64;
  const cells = o.cells ?? OVERFIT_CELLS;
  manualSeed(o.seed ?? 0);
  const cfg = loadConfig('configs/centermask_lite_V_19_slim_eSE_FPN_ms_4x.yaml', [
    'MODEL.FCOS.NUM_CLASSES', '3',
    'MODEL.ROI_HEADS.NUM_CLASSES', '3',
    // The synthetic gray image's statistics instead of ImageNet's (the model sees unit-scale input).
    'MODEL.PIXEL_MEAN', '[128.0, 128.0, 128.0]',
    'MODEL.PIXEL_STD', '[32.0, 32.0, 32.0]',
    'SOLVER.CLIP_GRADIENTS.ENABLED', 'True',
    'SOLVER.CLIP_GRADIENTS.CLIP_TYPE', 'norm',
    'SOLVER.CLIP_GRADIENTS.CLIP_VALUE', (o.clip ?? 1).toFixed(6),
  ]);
  const model = new CenterMask(cfg);
  model.train();
  const { input, gt, masks } = makeScene(size, cells);
  const params = model.parameters().filter((p) => p.requiresGrad);
  const opt = new SGD(params, { lr: o.lr, momentum: 0.9 });
  const sched = new WarmupMultiStepLR(opt, { steps: [Math.floor(o.iters * 0.8)], warmupIters: Math.floor(o.iters / 5), warmupFactor: 0.1 });
  const clipGradients = buildGradientClipper(cfg)!;
  const history: Record<string, number>[] = [];
  const t0 = performance.now();
  for (let it = 0; it < o.iters; it++) {
    const values = await scopeAsync(async () => {
      const losses = await model.losses([input], [gt]);
      const total = Object.values(losses).reduce((a, b) => add(a, b));
      opt.zeroGrad();
      backward(total);
      clipGradients(params);
      opt.step();
      sched.step();
      const named = Object.entries({ total, ...losses });
      const read = await Promise.all(named.map(async ([k, v]) => [k, await v.item()] as const));
      return Object.fromEntries(read) as Record<string, number>;
    });
    history.push(values);
    o.onIteration?.(it, values, (performance.now() - t0) / (it + 1));
  }
  const msPerIter = (performance.now() - t0) / o.iters;
  model.eval();
  const [detections] = await model.inference([input]);
  const det = detections!;
  const cellResults = masks.map((m, i) => {
    let iou = 0;
    let iouSameClass = 0;
    det.masks.forEach((d, j) => {
      const v = maskIou(d, m);
      iou = Math.max(iou, v);
      if (det.classes[j] === cells[i]!.cls) iouSameClass = Math.max(iouSameClass, v);
    });
    return { iou, iouSameClass, cls: cells[i]!.cls };
  });
  await rt().sync();
  return { history, detections: det, cells: cellResults, msPerIter };
}
