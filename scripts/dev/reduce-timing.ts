// Dev script: time of reductions over non-innermost dims (engine/ops/reduce), with the load average.
// Each case: one warm-up (shader compiles), then --repeats timed runs (record + rt().sync()).
//   sam-mean   mean over dim 1 keepdim of [296,128,14,14] (SAG-Mask spatial attention, 296 ROIs)
//   sam-max    max over dim 1 keepdim of the same
//   sam-max-bw max over dim 1 keepdim, forward + backward (tie-sharing gradient)
//   bias-sum   sum over [0,2,3] of [2,128,64,64] (a conv bias gradient)
//   hw-mean    mean over [2,3] of [296,128,14,14] (innermost dims; for comparison)
//   row-sum    sum over the last dim of [4096,1000]; full-sum: sum of all of [4096,1024];
//   lead-sum   sum over dim 0 of [100000,3] (few outputs: the two-pass column split)
//   --layout row|column forces the kernel shape (kernels/reduce/reduce.ts forceReduceLayout); on dense
//   rows, row is the kernel used before the column kernel existed.
//   npx tsx scripts/dev/reduce-timing.ts [--repeats 3] [--cases sam-mean,sam-max,...] [--layout row|column]
// Measured (2-core lavapipe host shared with other jobs; min of 2-3 runs after a warm-up):
//   case        before (permute + copy + 256-thread rows)   after (strides, column kernel)
//   sam-mean    12.4 s   (load 7.5)                           36 ms  (load 12.4)
//   sam-max     17.1 s   (load 11.0)                          45 ms  (load 12.4)
//   sam-max-bw  56.2 s   (load 14.6)                         167 ms  (load 12.3)
//   bias-sum    540 ms   (load 14.6)                          17 ms  (load 12.3)
//   hw-mean     7.2 s    (load 13.5)                          35 ms  (load 12.3)
//   row-sum / full-sum / lead-sum, --layout row (the old kernel on dense rows; lead-sum is the old
//   kernel without the old copy) vs auto, load 12.9-13.0: 560 / 67 / 16 ms vs 17 / 16 / 1 ms.
import { loadavg } from 'node:os';
import { init, rt } from '../../runtime/runtime';
import { backward } from '../../engine/autograd';
import { randn, scopeAsync, type Tensor } from '../../engine/tensor';
import { max, mean, sum } from '../../engine/ops/reduce';
import { forceReduceLayout, type ReduceLayout } from '../../kernels/reduce/reduce';

const arg = (k: string, d: string): string => {
  const i = process.argv.indexOf(k);
  return i >= 0 ? process.argv[i + 1]! : d;
};
const repeats = Number(arg('--repeats', '3'));
const la = () => loadavg().map((v) => v.toFixed(2)).join(' ');

interface Case {
  shape: number[];
  grad?: boolean;
  run: (x: Tensor) => void;
}
const CASES: Record<string, Case> = {
  'sam-mean': { shape: [296, 128, 14, 14], run: (x) => void mean(x, 1, { keepdim: true }) },
  'sam-max': { shape: [296, 128, 14, 14], run: (x) => void max(x, 1, { keepdim: true }) },
  'sam-max-bw': { shape: [296, 128, 14, 14], grad: true, run: (x) => backward(sum(max(x, 1, { keepdim: true }))) },
  'bias-sum': { shape: [2, 128, 64, 64], run: (x) => void sum(x, [0, 2, 3]) },
  'hw-mean': { shape: [296, 128, 14, 14], run: (x) => void mean(x, [2, 3]) },
  'row-sum': { shape: [4096, 1000], run: (x) => void sum(x, -1) },
  'full-sum': { shape: [4096, 1024], run: (x) => void sum(x) },
  'lead-sum': { shape: [100000, 3], run: (x) => void sum(x, 0) },
};
const names = arg('--cases', Object.keys(CASES).join(',')).split(',');

const layout = arg('--layout', '');
if (layout && layout !== 'row' && layout !== 'column') throw new Error(`--layout: row or column, got ${layout}`);
forceReduceLayout((layout || undefined) as ReduceLayout | undefined);

await init();
console.log(`load average at start: ${la()}${layout ? `, layout forced: ${layout}` : ''}`);
for (const name of names) {
  const c = CASES[name];
  if (!c) throw new Error(`unknown case ${name}; known: ${Object.keys(CASES).join(', ')}`);
  await scopeAsync(async () => {
    const x = randn(c.shape, 1);
    x.requiresGrad = !!c.grad;
    await rt().sync();
    const times: number[] = [];
    for (let r = 0; r <= repeats; r++) {
      await scopeAsync(async () => {
        x.grad?.dispose();
        x.grad = null;
        const t0 = performance.now();
        c.run(x);
        await rt().sync();
        if (r > 0) times.push(performance.now() - t0);
      });
    }
    const ms = times.map((t) => t.toFixed(0)).join(', ');
    console.log(`${name.padEnd(11)} [${c.shape}]: ${ms} ms (min ${Math.min(...times).toFixed(0)}), load ${la()}`);
  });
}
