// Benchmark suite `host`: the JavaScript cost of recording ops, the device excluded. On a fast GPU
// the host sets the step time, so this is what the runtime and engine overhead work is judged by.
//
// Per-op rows: one op on small tensors recorded `OPS_PER_ROUND` times in a hot loop (output
// disposed each time); the round's wall time without any wait, divided by the ops, is µs per op.
// The device's work is drained (`sync()`) between rounds, outside the timing. Cases are
// interleaved round by round, so load drifts on a shared machine hit them alike; `us_per_op` is
// the fastest round (the least disturbed), `median_us_per_op` the median.
//
// Step rows: V-19-slim and V-39 training steps at the tiny size (128x128, batch 1) unprofiled:
// host ms = the step's wall time (its final sync excluded) minus the time its readbacks waited
// (`stats().waitMs`), with the step's dispatches. `--repeats N` rounds (default 15 per-op, 5 steps).
import * as cg from '../../engine';
import { rt } from '../../runtime/runtime';
import { median } from '../harness';
import type { BenchContext, BenchRow, BenchSuite } from '../types';
import { MODELS } from './model';
import { buildStep, SIZES } from './step';

const OPS_PER_ROUND = 200;

interface OpCase {
  name: string;
  /** Records one op and disposes what it made. */
  once: () => void;
  setup?: () => void;
  teardown?: () => void;
}

function opCases(): OpCase[] {
  const a = cg.rand([1000], 1);
  const b = cg.rand([1000], 2);
  const ag = cg.rand([1000], 3);
  ag.requiresGrad = true;
  const x = cg.rand([1, 8, 16, 16], 4);
  const w = cg.rand([8, 8, 3, 3], 5);
  const m1 = cg.rand([33, 40], 6);
  const m2 = cg.rand([40, 31], 7);
  const big = cg.rand([4, 6, 10], 8);
  const fusionOff = { setup: () => cg.setFusion(false), teardown: () => cg.setFusion(true) };
  const materialise = (t: cg.Tensor) => void t.buffer;
  return [
    { name: 'add [1000], fusion off', ...fusionOff, once: () => cg.add(a, b).dispose() },
    {
      name: 'add [1000], fusion on, computed',
      once: () => {
        const y = cg.add(a, b);
        materialise(y);
        y.dispose();
      },
    },
    { name: 'add [1000], fusion on, pending (never computed)', once: () => cg.add(a, b).dispose() },
    {
      name: 'add [1000] with autograd (fusion on, computed)',
      once: () => {
        const y = cg.add(ag, b);
        materialise(y);
        y.dispose();
      },
    },
    { name: 'conv2d [1,8,16,16] * [8,8,3,3] pad 1, noGrad', once: () => cg.noGrad(() => cg.conv2d(x, w, null, { padding: 1 })).dispose() },
    { name: 'matmul [33,40] x [40,31], noGrad', once: () => cg.noGrad(() => cg.matmul(m1, m2)).dispose() },
    {
      name: 'view: permute + narrow',
      once: () => {
        const p = cg.permute(big, [2, 0, 1]);
        cg.narrow(p, 0, 1, 5).dispose();
        p.dispose();
      },
    },
  ];
}

async function opRows(repeats: number, log: (m: string) => void): Promise<BenchRow[]> {
  const cases = opCases();
  const us: number[][] = cases.map(() => []);
  const dispatches: number[] = cases.map(() => 0);
  const groups: number[] = cases.map(() => 0);
  for (let round = -2; round < repeats; round++) {
    // Two untimed rounds: compile the kernels and let the JIT settle.
    for (let c = 0; c < cases.length; c++) {
      const k = cases[c]!;
      k.setup?.();
      const s0 = rt().stats();
      const t0 = performance.now();
      for (let i = 0; i < OPS_PER_ROUND; i++) k.once();
      const ms = performance.now() - t0;
      const s1 = rt().stats();
      dispatches[c] = (s1.dispatches - s0.dispatches) / OPS_PER_ROUND;
      groups[c] = (s1.bindGroups - s0.bindGroups) / OPS_PER_ROUND;
      k.teardown?.();
      await rt().sync();
      if (round >= 0) us[c]!.push((1000 * ms) / OPS_PER_ROUND);
    }
  }
  return cases.map((k, c) => {
    const row = {
      suite: 'host',
      case: k.name,
      ms: Math.min(...us[c]!) / 1000,
      us_per_op: round1(Math.min(...us[c]!)),
      median_us_per_op: round1(median(us[c]!)),
      dispatches_per_op: dispatches[c],
      bind_groups_per_op: groups[c],
      samples: us[c]!.length,
    };
    log(`${k.name}: ${row.us_per_op} µs/op (median ${row.median_us_per_op}), ${row.dispatches_per_op} dispatches/op, ${row.bind_groups_per_op} bind groups created/op`);
    return row;
  });
}

async function stepRows(repeats: number, log: (m: string) => void): Promise<BenchRow[]> {
  const names = (process.env.BENCH_MODEL_CONFIGS ?? 'V19slim,V39').split(',').map((s) => s.trim());
  const steps = names.map((n) => {
    const spec = MODELS.find((m) => m.name === n);
    if (!spec) throw new Error(`unknown model '${n}' (have: ${MODELS.map((m) => m.name).join(', ')})`);
    return { name: n, step: buildStep(spec, SIZES.tiny) };
  });
  const host: number[][] = steps.map(() => []);
  const dispatches: number[] = steps.map(() => 0);
  for (let round = -2; round < repeats; round++) {
    for (let s = 0; s < steps.length; s++) {
      await rt().sync();
      const before = rt().stats();
      const t0 = performance.now();
      await steps[s]!.step();
      const wall = performance.now() - t0;
      const after = rt().stats();
      if (round >= 0) host[s]!.push(wall - (after.waitMs - before.waitMs));
      dispatches[s] = after.dispatches - before.dispatches;
    }
  }
  return steps.map((s, i) => {
    const min = Math.min(...host[i]!);
    const row = {
      suite: 'host',
      case: `${s.name} 128x128 b1 train step, host`,
      ms: min,
      host_ms: round1(min),
      median_host_ms: round1(median(host[i]!)),
      dispatches: dispatches[i],
      host_us_per_dispatch: round1((1000 * min) / Math.max(1, dispatches[i]!)),
      samples: host[i]!.length,
    };
    log(`${row.case}: ${row.host_ms} ms (median ${row.median_host_ms}), ${row.dispatches} dispatches, ${row.host_us_per_dispatch} µs/dispatch`);
    return row;
  });
}

const round1 = (v: number) => Math.round(v * 10) / 10;

export const run: BenchSuite = async (ctx: BenchContext): Promise<BenchRow[]> => {
  await cg.init();
  const rows = await opRows(ctx.repeats ?? 15, ctx.log);
  if (process.env.BENCH_HOST_STEPS !== '0') rows.push(...(await stepRows(Math.min(ctx.repeats ?? 5, 5), ctx.log)));
  return rows;
};
