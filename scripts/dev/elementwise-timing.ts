// Dev script: throughput of the generic elementwise kernel (kernels/elementwise/map.ts) on dense,
// broadcast and strided operands, with the load average. Each case: one warm-up (shader
// compiles), then --repeats timed runs (record + rt().sync()); reports min time and outputs/s.
//   copy       dense copy of a [296,128,14,14] (the map kernel's linear path; the reference rate)
//   add / mul  same-shape dense [296,128,14,14] (7.4M outputs)
//   sam-mul    [296,128,14,14] * [296,1,14,14] (SAG-Mask spatial attention broadcast)
//   chan-mul   [2,128,64,64] * [1,128,1,1] (per-channel scale / bias style)
//   transposed contiguous() of a [296,128,196] view transposed to [296,196,128]
//   t-add      a transposed [296,196,128] view + a dense [296,196,128]
//   relu       relu of a dense [296,128,14,14]
//   --no-vec4 runs everything on the scalar run loop (the vec4 variant off).
//   npx tsx scripts/dev/elementwise-timing.ts [--repeats 3] [--cases copy,add,...] [--no-vec4]
// Measured (2-core lavapipe host shared with other jobs; min of 3 runs after a warm-up, 7.4M
// outputs unless noted; load average 11.0-11.7 for all three columns, run back to back):
//   case        before (div/mod per element)   scalar run loop (--no-vec4)   vec4 where aligned
//   copy         478 ms   15.5 M/s                 92 ms   81 M/s               60 ms  124 M/s
//   add          504 ms   14.7 M/s                182 ms   41 M/s              135 ms   55 M/s
//   mul          527 ms   14.1 M/s                112 ms   66 M/s              104 ms   71 M/s
//   sam-mul     2048 ms    3.6 M/s                184 ms   40 M/s              105 ms   71 M/s
//   chan-mul     267 ms    3.9 M/s (1M outputs)    17 ms   62 M/s                4 ms  246 M/s
//   transposed  1774 ms    4.2 M/s                119 ms   62 M/s              (not aligned: scalar)
//   t-add       1855 ms    4.0 M/s                197 ms   38 M/s              (not aligned: scalar)
//   relu         506 ms   14.7 M/s                 88 ms   84 M/s               60 ms  124 M/s
import { loadavg } from 'node:os';
import { init, rt } from '../../runtime/runtime';
import { contiguous, transpose } from '../../engine/ops/view';
import { add, mul, relu } from '../../engine/ops/elementwise';
import { setMapVec4 } from '../../kernels/elementwise/map';
import { contiguousCopy, randn, scopeAsync, type Tensor } from '../../engine/tensor';

const arg = (k: string, d: string): string => {
  const i = process.argv.indexOf(k);
  return i >= 0 ? process.argv[i + 1]! : d;
};
const repeats = Number(arg('--repeats', '3'));
const la = () => loadavg().map((v) => v.toFixed(2)).join(' ');

const SAM = [296, 128, 14, 14];
interface Case {
  shapes: number[][];
  run: (xs: Tensor[]) => Tensor;
}
const CASES: Record<string, Case> = {
  copy: { shapes: [SAM], run: ([x]) => contiguousCopy(x!) },
  add: { shapes: [SAM, SAM], run: ([x, y]) => add(x!, y!) },
  mul: { shapes: [SAM, SAM], run: ([x, y]) => mul(x!, y!) },
  'sam-mul': { shapes: [SAM, [296, 1, 14, 14]], run: ([x, y]) => mul(x!, y!) },
  'chan-mul': { shapes: [[2, 128, 64, 64], [1, 128, 1, 1]], run: ([x, y]) => mul(x!, y!) },
  transposed: { shapes: [[296, 128, 196]], run: ([x]) => contiguous(transpose(x!, 1, 2)) },
  't-add': { shapes: [[296, 128, 196], [296, 196, 128]], run: ([x, y]) => add(transpose(x!, 1, 2), y!) },
  relu: { shapes: [SAM], run: ([x]) => relu(x!) },
};
setMapVec4(!process.argv.includes('--no-vec4'));
const names = arg('--cases', Object.keys(CASES).join(',')).split(',');

await init();
console.log(`load average at start: ${la()}`);
for (const name of names) {
  const c = CASES[name];
  if (!c) throw new Error(`unknown case ${name}; known: ${Object.keys(CASES).join(', ')}`);
  await scopeAsync(async () => {
    const xs = c.shapes.map((s, j) => randn(s, j + 1));
    await rt().sync();
    const times: number[] = [];
    let numel = 0;
    for (let r = 0; r <= repeats; r++) {
      await scopeAsync(async () => {
        const t0 = performance.now();
        const y = c.run(xs);
        await rt().sync();
        numel = y.numel;
        if (r > 0) times.push(performance.now() - t0);
      });
    }
    const best = Math.min(...times);
    const rate = numel / (best / 1000) / 1e6;
    console.log(`${name.padEnd(10)} ${c.shapes.map((s) => `[${s}]`).join(' ')}: ${times.map((t) => t.toFixed(0)).join(', ')} ms (min ${best.toFixed(0)}, ${rate.toFixed(1)} M outputs/s), load ${la()}`);
  });
}
