// matmul throughput against tfjs-webgpu and jax-js (same process, same adapter): GFLOP/s, fraction
// of the measured fp32 peak, and the floor (FLOPs / peak). M×K×N; "64×4608×1024" is the tall-K case
// (M=64, K=4608, N=1024). CELLGPU_MATMUL_CONFIG='{"kernel":"register-tiled","rows":4,"wg":16}' forces a kernel
// configuration (for tuning); otherwise the plan choosePlan() picks is used and reported.
// CELLGPU_MATMUL_COMPARE='{"kernel":"register-tiled","rows":8,"wg":8}' times a second configuration in the
// same rounds (compare_ms, speedup_vs_compare).
// Ours and the peers are timed in interleaved rounds (see below); `load` is the 1-minute load
// average at the start and end of the case (the machine is shared).
import * as cg from '../../engine';
import { choosePlan, type MatmulConfig } from '../../kernels/matmul/chooser';
import { loadavg } from 'node:os';
import { machinePeak, median, timeGpu } from '../harness';
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
  // A second configuration timed in the same rounds (before/after comparisons in one process).
  const compare = process.env.CELLGPU_MATMUL_COMPARE ? (JSON.parse(process.env.CELLGPU_MATMUL_COMPARE) as MatmulConfig) : undefined;
  const tfjs = noPeers ? undefined : await loadTfjs().catch((e: Error) => (ctx.log(`tfjs-webgpu unavailable: ${e.message}`), undefined));
  const jax = noPeers || process.env.CELLGPU_BENCH_NO_JAX === '1' ? undefined : await loadJax().catch((e: Error) => (ctx.log(`jax-js unavailable: ${e.message}`), undefined));
  const only = process.env.CELLGPU_BENCH_CASES?.split(',');
  const rows: BenchRow[] = [];
  for (const c of CASES.filter((x) => !only || only.some((o) => x.name.includes(o)))) {
    const flops = 2 * c.batch * c.M * c.K * c.N;
    const aShape = c.batch > 1 ? [c.batch, c.M, c.K] : [c.M, c.K];
    const bShape = c.batch > 1 ? [c.batch, c.K, c.N] : [c.K, c.N];
    const a = cg.rand(aShape, 1, -1, 1);
    const b = cg.rand(bShape, 2, -1, 1);
    const plan = forced ?? choosePlan(c.M, c.N, c.K, c.batch);
    const load0 = loadavg()[0]!;
    // Each contestant gets one timed call per round, in turn (ours, tfjs, jax), after its own
    // warm-up: on a shared machine the load drifts within seconds, and interleaving exposes all
    // of them to the same drift. ratio = median(peer) / median(ours); ratio_paired = the median
    // of the per-round ratios.
    const contestants: { name: string; once: () => Promise<number>; dispose: () => void }[] = [];
    contestants.push({ name: 'ours', once: async () => (await timeGpu(() => cg.matmulWith(a, b, plan).dispose(), { warmup: 0, repeats: 1, noTimestamps: true })).ms, dispose: () => {} });
    if (compare) contestants.push({ name: 'compare', once: async () => (await timeGpu(() => cg.matmulWith(a, b, compare).dispose(), { warmup: 0, repeats: 1, noTimestamps: true })).ms, dispose: () => {} });
    if (tfjs) {
      const { tf } = tfjs;
      const ta = tf.randomUniform(aShape, -1, 1);
      const tb = tf.randomUniform(bShape, -1, 1);
      contestants.push({ name: 'tfjs', once: async () => (await tfjs.time(() => tf.matMul(ta, tb), { warmup: 0, repeats: 1 })).ms, dispose: () => tf.dispose([ta, tb]) });
    }
    if (jax) {
      const { jax: j } = jax;
      const ja = j.random.uniform(j.random.key(1), aShape, { minval: -1, maxval: 1 });
      const jb = j.random.uniform(j.random.key(2), bShape, { minval: -1, maxval: 1 });
      const mm = j.jit((x: typeof ja, y: typeof jb) => j.numpy.matmul(x, y));
      contestants.push({ name: 'jax', once: async () => (await jax.time(() => mm(ja.ref, jb.ref), { warmup: 0, repeats: 1 })).ms, dispose: () => (ja.dispose(), jb.dispose()) });
    }
    for (const x of contestants) for (let i = 0; i < 2; i++) await x.once();
    const samples = contestants.map(() => [] as number[]);
    for (let r = 0; r < repeats; r++) for (let i = 0; i < contestants.length; i++) samples[i]!.push(await contestants[i]!.once());
    for (const x of contestants) x.dispose();
    const ms = median(samples[0]!);
    const row: BenchRow = {
      suite: 'matmul',
      case: c.name,
      ms,
      gflops: flops / ms / 1e6,
      frac_peak: flops / ms / 1e6 / peak.gflops,
      floor_ms: flops / peak.gflops / 1e6,
      plan: JSON.stringify(plan),
      load: `${load0.toFixed(1)}-${loadavg()[0]!.toFixed(1)}`,
    };
    const fmt = (xs: number[]) => xs.map((v) => v.toFixed(0)).join(' ');
    ctx.log(`${c.name}: ours ${ms.toFixed(1)} ms (${(flops / ms / 1e6).toFixed(2)} GFLOP/s) samples ${fmt(samples[0]!)}`);
    const paired = (i: number) => median(samples[i]!.map((v, r) => v / samples[0]![r]!));
    const ti = contestants.findIndex((x) => x.name === 'tfjs');
    if (ti > 0) {
      const t = median(samples[ti]!);
      Object.assign(row, { peer: tfjs!.name, peer_ms: t, ratio: t / ms, ratio_paired: paired(ti) });
      ctx.log(`${c.name}: tfjs ${t.toFixed(1)} ms samples ${fmt(samples[ti]!)}`);
    }
    const ci = contestants.findIndex((x) => x.name === 'compare');
    if (ci > 0) {
      const t = median(samples[ci]!);
      Object.assign(row, { compare_plan: JSON.stringify(compare), compare_ms: t, speedup_vs_compare: t / ms });
      ctx.log(`${c.name}: compare ${t.toFixed(1)} ms samples ${fmt(samples[ci]!)}`);
    }
    const ji = contestants.findIndex((x) => x.name === 'jax');
    if (ji > 0) {
      const t = median(samples[ji]!);
      Object.assign(row, { jax_ms: t, jax_ratio: t / ms });
      ctx.log(`${c.name}: jax-js ${t.toFixed(1)} ms samples ${fmt(samples[ji]!)}`);
    }
    rows.push(row);
    a.dispose();
    b.dispose();
  }
  return rows;
};
