// The page's micro-benchmark: one matmul and one 3x3 convolution on the adapter, timed over a few
// runs after a warm-up (wall clock around a device sync), reported as ms and GFLOP/s.
import { randn } from '../../engine/tensor';
import { matmul } from '../../engine/ops/matmul';
import { conv2d } from '../../engine/ops/conv';
import { rt } from '../../runtime/runtime';
import type { Tensor } from '../../engine/tensor';

export interface BenchRow {
  name: string;
  ms: number;
  gflops: number;
}

async function time(flops: number, name: string, run: () => Tensor, reps: number): Promise<BenchRow> {
  run().dispose(); // compile + warm up
  await rt().sync();
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) run().dispose();
  await rt().sync();
  const ms = (performance.now() - t0) / reps;
  return { name, ms, gflops: flops / (ms * 1e6) };
}

export async function runBenchmark(o: { n?: number; reps?: number } = {}): Promise<BenchRow[]> {
  const n = o.n ?? 256;
  const reps = o.reps ?? 5;
  const a = randn([n, n], 1);
  const b = randn([n, n], 2);
  const [N, C, H, W, K] = [1, 32, 64, 64, 32];
  const x = randn([N, C, H, W], 3);
  const w = randn([K, C, 3, 3], 4);
  try {
    return [
      await time(2 * n * n * n, `matmul ${n}x${n} @ ${n}x${n}`, () => matmul(a, b), reps),
      await time(2 * N * K * H * W * C * 9, `conv2d 3x3 ${C}->${K} on ${H}x${W}`, () => conv2d(x, w, null, { padding: 1 }), reps),
    ];
  } finally {
    for (const t of [a, b, x, w]) t.dispose();
  }
}
