// Issue 6's overfit run with a log (the test, test/models/centermask-overfit.test.ts, runs the same
// routine, test/util/overfit.ts, and asserts on it):
//   npx tsx scripts/dev/overfit.ts [iters=100] [lr=0.02]   (env: OVERFIT_SEED=n, OVERFIT_GRID=n)
// Prints the losses every 5 iterations, then the detections and each cell's best mask IoU.
import { init, rt } from '../../engine';
import { gridCells, runOverfit } from '../../test/util/overfit';

const iters = Number(process.argv[2] ?? 100);
const lr = Number(process.argv[3] ?? 0.02);
await init();
const r = await runOverfit({
  iters,
  lr,
  // OVERFIT_GRID=n: n x n cells on a (24 n + 24)-pixel image instead of the test's five cells.
  ...(process.env.OVERFIT_SEED ? { seed: Number(process.env.OVERFIT_SEED) } : {}),
  ...(process.env.OVERFIT_GRID ? { cells: gridCells(Number(process.env.OVERFIT_GRID)), size: 24 * Number(process.env.OVERFIT_GRID) + 24 } : {}),
  onIteration: (it, v, ms) => {
    if (it % 5 === 0 || it === iters - 1) console.log(it, JSON.stringify(Object.fromEntries(Object.entries(v).map(([k, x]) => [k, +x.toFixed(4)]))), `${ms.toFixed(0)} ms/it`);
  },
});
const d = r.detections;
console.log('detections', d.scores.length, Array.from(d.scores.slice(0, 8)).map((s) => s.toFixed(3)), Array.from(d.classes.slice(0, 8)));
r.cells.forEach((c, i) => console.log('cell', i, 'class', c.cls, 'best mask IoU', c.iou.toFixed(3), 'among its class', c.iouSameClass.toFixed(3)));
console.log(`${r.msPerIter.toFixed(0)} ms/iteration`, rt().stats());
process.exit(0);
