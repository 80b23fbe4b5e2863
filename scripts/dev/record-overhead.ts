// Host microseconds to record one small elementwise op (an add/relu/mul chain on 64-256 floats,
// each result disposed), not counting the GPU drain: median and minimum of 9 rounds of 1,800 ops.
// Run: npx tsx scripts/dev/record-overhead.ts. Under load only the minimum means much.
import { add, init, mul, randn, relu, rt } from '../../engine';
import { loadavg } from 'node:os';
await init();
const a = randn([64], 1);
const b = randn([4, 64], 2);
const op = () => { const t = add(a, b); const u = relu(t); const v = mul(u, a); t.dispose(); u.dispose(); v.dispose(); };
for (let i = 0; i < 300; i++) op();
await rt().sync();
const rec: number[] = [];
for (let r = 0; r < 9; r++) {
  const d0 = rt().stats().dispatches;
  const t0 = performance.now();
  for (let i = 0; i < 600; i++) op();
  const t1 = performance.now();
  rec.push(((t1 - t0) * 1000) / (rt().stats().dispatches - d0));
  await rt().sync();
}
rec.sort((x, y) => x - y);
console.log(`record: median ${rec[4]!.toFixed(1)} min ${rec[0]!.toFixed(1)} µs per op (add/relu/mul chain, load ${loadavg()[0]!.toFixed(1)})`);
