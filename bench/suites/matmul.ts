// matmul throughput against tfjs-webgpu and jax-js (same process, same adapter): GFLOP/s, fraction
// of the measured fp32 peak, and the floor (FLOPs / peak). M×K×N; "64×4608×1024" is the tall-K case
// (M=64, K=4608, N=1024). CELLGPU_MATMUL_CONFIG='{"kernel":"v2","rows":4,"wg":16}' forces a kernel
// configuration (for tuning); otherwise the plan choosePlan() picks is used and reported.
import * as cg from '../../core';
import { choosePlan, type MatmulConfig } from '../../kernels/matmul';
import { machinePeak, timeGpu } from '../harness';
import { loadJax } from '../peers/jax';
import { loadTfjs } from '../peers/tfjs';
import type { BenchRow, BenchSuite } from '../types';

interface Case {
  name: string;
  batch: number;
  M: number;
  K: number;
  N: number;
}

const CASES: Case[] = [
  { name: '1024x1024x1024', batch: 1, M: 1024, K: 1024, N: 1024 },
  { name: '512x512x512', batch: 1, M: 512, K: 512, N: 512 },
  { name: '64x4608x1024', batch: 1, M: 64, K: 4608, N: 1024 },
  { name: 'batched 8x256x256x256', batch: 8, M: 256, K: 256, N: 256 },
];

export const run: BenchSuite = async (ctx) => {
  const repeats = ctx.repeats ?? 5;
  await cg.init();
  const peak = await machinePeak();
  ctx.log(`measured peak: ${peak.gflops.toFixed(1)} GFLOP/s fp32`);
  const forced = process.env.CELLGPU_MATMUL_CONFIG ? (JSON.parse(process.env.CELLGPU_MATMUL_CONFIG) as MatmulConfig) : undefined;
  const noPeers = process.env.CELLGPU_BENCH_NO_PEERS === '1';
  const tfjs = noPeers ? undefined : await loadTfjs().catch((e: Error) => (ctx.log(`tfjs-webgpu unavailable: ${e.message}`), undefined));
  const jax = noPeers ? undefined : await loadJax().catch((e: Error) => (ctx.log(`jax-js unavailable: ${e.message}`), undefined));
  const only = process.env.CELLGPU_BENCH_CASES?.split(',');
  const rows: BenchRow[] = [];
  for (const c of CASES.filter((x) => !only || only.some((o) => x.name.includes(o)))) {
    const flops = 2 * c.batch * c.M * c.K * c.N;
    const aShape = c.batch > 1 ? [c.batch, c.M, c.K] : [c.M, c.K];
    const bShape = c.batch > 1 ? [c.batch, c.K, c.N] : [c.K, c.N];
    const a = cg.rand(aShape, 1, -1, 1);
    const b = cg.rand(bShape, 2, -1, 1);
    const plan = forced ?? choosePlan(c.M, c.N, c.K, c.batch);
    const ours = await timeGpu(() => cg.matmulWith(a, b, plan).dispose(), { warmup: 2, repeats });
    const ms = ours.ms;
    const row: BenchRow = {
      suite: 'matmul',
      case: c.name,
      ms,
      gflops: flops / ms / 1e6,
      frac_peak: flops / ms / 1e6 / peak.gflops,
      floor_ms: flops / peak.gflops / 1e6,
      gpu_ms: ours.gpuMs,
      plan: JSON.stringify(plan),
    };
    ctx.log(`${c.name}: ours ${ms.toFixed(1)} ms (${(flops / ms / 1e6).toFixed(2)} GFLOP/s) samples ${ours.samples.map((s) => s.toFixed(0)).join(' ')}`);
    if (tfjs) {
      const { tf } = tfjs;
      const ta = tf.randomUniform(aShape, -1, 1);
      const tb = tf.randomUniform(bShape, -1, 1);
      const t = await tfjs.time(() => tf.matMul(ta, tb), { warmup: 2, repeats });
      tf.dispose([ta, tb]);
      Object.assign(row, { peer: tfjs.name, peer_ms: t.ms, ratio: t.ms / ms });
      ctx.log(`${c.name}: tfjs ${t.ms.toFixed(1)} ms samples ${t.samples.map((s) => s.toFixed(0)).join(' ')}`);
    }
    if (jax) {
      const { jax: j } = jax;
      const ja = j.random.uniform(j.random.key(1), aShape, { minval: -1, maxval: 1 });
      const jb = j.random.uniform(j.random.key(2), bShape, { minval: -1, maxval: 1 });
      const mm = j.jit((x: typeof ja, y: typeof jb) => j.numpy.matmul(x, y));
      const t = await jax.time(() => mm(ja.ref, jb.ref), { warmup: 2, repeats });
      ja.dispose();
      jb.dispose();
      Object.assign(row, { jax_ms: t.ms, jax_ratio: t.ms / ms });
      ctx.log(`${c.name}: jax-js ${t.ms.toFixed(1)} ms`);
    }
    rows.push(row);
    a.dispose();
    b.dispose();
  }
  return rows;
};
