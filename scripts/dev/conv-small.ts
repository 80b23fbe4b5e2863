// The launch-bound conv shapes of issue 4 (FCOS heads at 8² and 4², the SAM conv): per call, the
// host recording time, the wall time with one completion wait (as the conv bench samples it), and
// the part left for the GPU and the wait. Medians of `n` single calls after a warm-up.
// Run: npx tsx scripts/dev/conv-small.ts [n] [algo]
import { init, randn } from '../../engine';
import { rt } from '../../runtime/runtime';
import { conv2dBackwardRaw, conv2dDgradRaw, conv2dWgradRaw } from '../../engine/ops/conv';
import { convGeometry } from '../../kernels/conv/geometry';
import { chooseDgrad, chooseWgrad, type ConvAlgo } from '../../kernels/conv/chooser';
import { loadavg } from 'node:os';

const n = Number(process.argv[2] ?? 41);
const algo = (process.argv[3] ?? 'auto') as ConvAlgo;
await init();
const r = rt();
const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

const shapes = [
  { name: 'FCOS cls 128→1 @8', N: 2, C: 128, O: 1, H: 8 },
  { name: 'FCOS bbox 128→4 @8', N: 2, C: 128, O: 4, H: 8 },
  { name: 'FCOS cls 128→1 @4', N: 2, C: 128, O: 1, H: 4 },
  { name: 'FCOS bbox 128→4 @4', N: 2, C: 128, O: 4, H: 4 },
  { name: 'SAM 2→1 @14 R=128', N: 128, C: 2, O: 1, H: 14 },
];

async function time(fn: () => void): Promise<{ rec: number; wall: number }> {
  for (let i = 0; i < 5; i++) {
    fn();
    await r.sync();
  }
  const rec: number[] = [];
  const wall: number[] = [];
  for (let i = 0; i < n; i++) {
    await r.sync();
    const t0 = performance.now();
    fn();
    const t1 = performance.now();
    await r.sync();
    const t2 = performance.now();
    rec.push(t1 - t0);
    wall.push(t2 - t0);
  }
  return { rec: med(rec) * 1000, wall: med(wall) * 1000 };
}

const floor = await time(() => {});
console.log(`empty sync: ${floor.wall.toFixed(0)} µs   (load ${loadavg()[0]!.toFixed(1)}, algo ${algo})`);
for (const s of shapes) {
  const g = convGeometry(s.name, [s.N, s.C, s.H, s.H], [s.O, s.C, 3, 3], { stride: [1, 1], padding: [1, 1], dilation: [1, 1], groups: 1 });
  const x = randn([s.N, s.C, s.H, s.H], 1);
  const w = randn([s.O, s.C, 3, 3], 2);
  const dy = randn([s.N, s.O, s.H, s.H], 3);
  const d = await time(() => conv2dDgradRaw(g, dy, w, algo).dispose());
  const wg = await time(() => conv2dWgradRaw(g, dy, x, algo).dispose());
  const b = await time(() => {
    for (const t of conv2dBackwardRaw(g, dy, x, w, true, true, algo)) t?.dispose();
  });
  const f = (t: { rec: number; wall: number }) => `rec ${t.rec.toFixed(0).padStart(4)} wall ${t.wall.toFixed(0).padStart(5)} µs`;
  console.log(`${s.name.padEnd(20)} [${chooseDgrad(g, algo, [0])}/${chooseWgrad(g, algo)}] dgrad ${f(d)} | wgrad ${f(wg)} | both ${f(b)}`);
  for (const t of [x, w, dy]) t.dispose();
}
