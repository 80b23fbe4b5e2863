// Fixed costs of the runtime: one empty dispatch (record + submit + wait), 100 small elementwise
// ops recorded into one batch, a bare submit round trip, and a 4 MB readback.
import * as cg from '../../engine';
import { type KernelDef, rt } from '../../runtime/runtime';
import { median, timeAsync, timeGpu } from '../harness';
import type { BenchRow, BenchSuite } from '../types';

const emptyKernel: KernelDef = {
  key: 'bench.empty',
  bindings: ['rw'],
  code: '@group(0) @binding(0) var<storage, read_write> x: array<f32>;\n@compute @workgroup_size(1) fn main() { _ = &x; }',
};

export const run: BenchSuite = async (ctx) => {
  const repeats = ctx.repeats ?? 30;
  await cg.init();
  const rows: BenchRow[] = [];
  const scratch = rt().pool.acquire(16, GPUBufferUsage.STORAGE, 'bench.empty');

  const empty = await timeGpu(() => rt().dispatch(emptyKernel, [scratch], undefined, 1), { warmup: 5, repeats, noTimestamps: true });
  rows.push({ suite: 'overhead', case: 'empty dispatch (record+submit+wait)', ms: empty.ms, min_ms: empty.min });

  // 100 dependent elementwise ops on 1024 elements: one batch (96 per submit), one wait.
  const x = cg.rand([1024], 3);
  const chain = await timeGpu(
    () => {
      let t = x;
      for (let i = 0; i < 100; i++) {
        const next = cg.mapRaw('bench_axpb', 'x * 0.999 + 0.001', [t], t.shape, 'f32', 'f32');
        if (t !== x) t.dispose();
        t = next;
      }
      t.dispose();
    },
    { warmup: 3, repeats: Math.min(repeats, 15), noTimestamps: true },
  );
  rows.push({ suite: 'overhead', case: '100 small elementwise ops, one batch', ms: chain.ms, per_op_us: (chain.ms * 1000) / 100 });

  const submit = await timeAsync(
    async () => {
      rt().device.queue.submit([]);
      await rt().device.queue.onSubmittedWorkDone();
    },
    { warmup: 5, repeats },
  );
  rows.push({ suite: 'overhead', case: 'submit round trip (empty submit + onSubmittedWorkDone)', ms: submit.ms });

  const big = cg.rand([1 << 20], 4); // 4 MB
  const reads: number[] = [];
  for (let i = 0; i < Math.min(repeats, 10) + 2; i++) {
    const t0 = performance.now();
    await big.data();
    if (i >= 2) reads.push(performance.now() - t0);
  }
  const readMs = median(reads);
  rows.push({ suite: 'overhead', case: '4 MB readback (t.data())', ms: readMs, gbps: 4 * 1024 * 1024 / readMs / 1e6 });

  for (const t of [x, big]) t.dispose();
  rt().pool.release(scratch);
  return rows;
};
