// Benchmark suite `conv`: conv2d forward, grad input (dgrad) and grad weight (wgrad) for every
// distinct conv shape of CenterMask lite V-39 (LIVECell heads, K = 1) at a 512×512 input, batch 2
// (backbone, FPN, FCOS towers and heads, mask and MaskIoU heads with R ROIs), in GFLOP/s and as
// a fraction of the machine's measured fp32 peak. The tfjs-webgpu peer (NHWC, inputs transposed
// once outside the timing; its backward = the Conv2DBackpropInput and Conv2DBackpropFilter kernels
// that tf.grads runs for conv2d, called directly in one timed call) runs on the quick subset. Our
// backward for the ratio is likewise dgrad and wgrad recorded together with one completion wait
// (as in training); dgrad and wgrad are also timed alone.
//
// By default only the 6-shape quick subset runs (3×3 s1 at two sizes, 3×3 s2, 1×1 at 32², 1×1 at
// 1² (eSE), a 4-channel FCOS head). Knobs (env): BENCH_CONV_FULL=1 every shape (bounded: 1 timed
// repeat unless --repeats, each shape's pipelines compiled on a tiny copy of it, then one
// full-size warm-up, the peer only on the quick shapes); BENCH_CONV_CASES=a,b shapes whose name
// contains a or b; BENCH_CONV_ALGOS=gemm1,gemm2 variants timed side by side (interleaved, one
// sample of each per round; default: the auto choice); BENCH_CONV_PEER=quick|all|none;
// BENCH_CONV_PEER_MAX_GFLOP=g with PEER=all: the peer only on shapes of at most g forward GFLOP;
// BENCH_CONV_TM=4|8|16 forces the variant-2 register tile. Every row carries the 1-minute load
// average (os.loadavg) at the time of the shape.
import type { BenchContext, BenchRow, BenchSuite } from '../types';
import { machinePeak, median, timeGpu } from '../harness';
import { init, randn, type Tensor } from '../../engine';
import { conv2dBackwardRaw, conv2dDgradRaw, conv2dForwardRaw, conv2dWgradRaw } from '../../engine/ops/conv';
import { CONV_ALGOS, type ConvAlgo, chooseDgrad, chooseForward, chooseWgrad } from '../../kernels/conv/chooser';
import { overridePackedGemmRows } from '../../kernels/conv/packed-gemm/pack';
import { loadavg } from 'node:os';
import { convFlops, convGeometry, type ConvGeometry } from '../../kernels/conv/geometry';
import { isSoftwareAdapter } from '../../runtime/adapter';

interface Shape {
  name: string;
  N: number;
  C: number;
  O: number;
  H: number;
  k: number;
  s: number;
  /** How many convs of this shape one forward pass runs (default 1). */
  count?: number;
  quick?: boolean;
}

const B = 2;
/** ROIs through the mask heads in one training batch (a few hundred foreground ROIs). */
const R = 128;

/** Every distinct conv shape (input size H = W; padding k/2) of CenterMask lite V-39 at 512², batch 2. */
export const CENTERMASK_LITE_V39_SHAPES: Shape[] = [
  { name: 'stem_1 3→64 3x3 s2 @512', N: B, C: 3, O: 64, H: 512, k: 3, s: 2 },
  { name: 'stem_2 64→64 3x3 @256', N: B, C: 64, O: 64, H: 256, k: 3, s: 1 },
  { name: 'stem_3 64→128 3x3 s2 @256', N: B, C: 64, O: 128, H: 256, k: 3, s: 2 },
  { name: 'OSA2 128→128 3x3 @128', count: 5, N: B, C: 128, O: 128, H: 128, k: 3, s: 1 },
  { name: 'OSA2 concat 768→256 1x1 @128', N: B, C: 768, O: 256, H: 128, k: 1, s: 1 },
  { name: 'OSA3_1 256→160 3x3 @64', N: B, C: 256, O: 160, H: 64, k: 3, s: 1 },
  { name: 'OSA3 160→160 3x3 @64', count: 4, N: B, C: 160, O: 160, H: 64, k: 3, s: 1 },
  { name: 'OSA3 concat 1056→512 1x1 @64', N: B, C: 1056, O: 512, H: 64, k: 1, s: 1 },
  { name: 'OSA4_1 512→192 3x3 @32', N: B, C: 512, O: 192, H: 32, k: 3, s: 1 },
  { name: 'OSA4 192→192 3x3 @32', count: 8, N: B, C: 192, O: 192, H: 32, k: 3, s: 1, quick: true },
  { name: 'OSA4_1 concat 1472→768 1x1 @32', N: B, C: 1472, O: 768, H: 32, k: 1, s: 1 },
  { name: 'OSA4_2 768→192 3x3 @32', N: B, C: 768, O: 192, H: 32, k: 3, s: 1 },
  { name: 'OSA4_2 concat 1728→768 1x1 @32', N: B, C: 1728, O: 768, H: 32, k: 1, s: 1 },
  { name: 'OSA5_1 768→224 3x3 @16', N: B, C: 768, O: 224, H: 16, k: 3, s: 1 },
  { name: 'OSA5 224→224 3x3 @16', count: 8, N: B, C: 224, O: 224, H: 16, k: 3, s: 1, quick: true },
  { name: 'OSA5_1 concat 1888→1024 1x1 @16', N: B, C: 1888, O: 1024, H: 16, k: 1, s: 1 },
  { name: 'OSA5_2 1024→224 3x3 @16', N: B, C: 1024, O: 224, H: 16, k: 3, s: 1 },
  { name: 'OSA5_2 concat 2144→1024 1x1 @16', N: B, C: 2144, O: 1024, H: 16, k: 1, s: 1 },
  { name: 'eSE fc 256→256 1x1 @1', N: B, C: 256, O: 256, H: 1, k: 1, s: 1 },
  { name: 'eSE fc 512→512 1x1 @1', N: B, C: 512, O: 512, H: 1, k: 1, s: 1 },
  { name: 'eSE fc 768→768 1x1 @1', count: 2, N: B, C: 768, O: 768, H: 1, k: 1, s: 1 },
  { name: 'eSE fc 1024→1024 1x1 @1', count: 2, N: B, C: 1024, O: 1024, H: 1, k: 1, s: 1, quick: true },
  { name: 'FPN lateral3 512→128 1x1 @64', N: B, C: 512, O: 128, H: 64, k: 1, s: 1 },
  { name: 'FPN lateral4 768→128 1x1 @32', N: B, C: 768, O: 128, H: 32, k: 1, s: 1, quick: true },
  { name: 'FPN lateral5 1024→128 1x1 @16', N: B, C: 1024, O: 128, H: 16, k: 1, s: 1 },
  { name: 'FPN out / FCOS tower 128→128 3x3 @64', count: 5, N: B, C: 128, O: 128, H: 64, k: 3, s: 1 },
  { name: 'FPN out / FCOS tower 128→128 3x3 @32', count: 5, N: B, C: 128, O: 128, H: 32, k: 3, s: 1 },
  { name: 'FPN out / FCOS tower 128→128 3x3 @16', count: 5, N: B, C: 128, O: 128, H: 16, k: 3, s: 1 },
  { name: 'FPN p6 128→128 3x3 s2 @16', N: B, C: 128, O: 128, H: 16, k: 3, s: 2, quick: true },
  { name: 'FPN p7 / 128→128 3x3 s2 @8', N: B, C: 128, O: 128, H: 8, k: 3, s: 2 },
  { name: 'FCOS tower 128→128 3x3 @8', count: 4, N: B, C: 128, O: 128, H: 8, k: 3, s: 1 },
  { name: 'FCOS tower 128→128 3x3 @4', count: 4, N: B, C: 128, O: 128, H: 4, k: 3, s: 1 },
  { name: 'FCOS cls/ctrness 128→1 3x3 @64', count: 2, N: B, C: 128, O: 1, H: 64, k: 3, s: 1 },
  { name: 'FCOS bbox 128→4 3x3 @64', N: B, C: 128, O: 4, H: 64, k: 3, s: 1 },
  { name: 'FCOS cls/ctrness 128→1 3x3 @32', count: 2, N: B, C: 128, O: 1, H: 32, k: 3, s: 1 },
  { name: 'FCOS bbox 128→4 3x3 @32', N: B, C: 128, O: 4, H: 32, k: 3, s: 1, quick: true },
  { name: 'FCOS cls/ctrness 128→1 3x3 @16', count: 2, N: B, C: 128, O: 1, H: 16, k: 3, s: 1 },
  { name: 'FCOS bbox 128→4 3x3 @16', N: B, C: 128, O: 4, H: 16, k: 3, s: 1 },
  { name: 'FCOS cls/ctrness 128→1 3x3 @8', count: 2, N: B, C: 128, O: 1, H: 8, k: 3, s: 1 },
  { name: 'FCOS bbox 128→4 3x3 @8', N: B, C: 128, O: 4, H: 8, k: 3, s: 1 },
  { name: 'FCOS cls/ctrness 128→1 3x3 @4', count: 2, N: B, C: 128, O: 1, H: 4, k: 3, s: 1 },
  { name: 'FCOS bbox 128→4 3x3 @4', N: B, C: 128, O: 4, H: 4, k: 3, s: 1 },
  { name: `mask_fcn 128→128 3x3 @14 (R=${R})`, count: 2, N: R, C: 128, O: 128, H: 14, k: 3, s: 1 },
  { name: `mask SAM 2→1 3x3 @14 (R=${R})`, N: R, C: 2, O: 1, H: 14, k: 3, s: 1 },
  { name: `mask deconv as conv 128→128 k2 s2 @28 (R=${R})`, N: R, C: 128, O: 128, H: 28, k: 2, s: 2 },
  { name: `mask predictor 128→1 1x1 @28 (R=${R})`, N: R, C: 128, O: 1, H: 28, k: 1, s: 1 },
  { name: `maskiou_fcn1 129→128 3x3 @14 (R=${R})`, N: R, C: 129, O: 128, H: 14, k: 3, s: 1 },
  { name: `maskiou_fcn2 128→128 3x3 s2 @14 (R=${R})`, N: R, C: 128, O: 128, H: 14, k: 3, s: 2 },
];

const pad = (k: number) => (k === 2 ? 0 : Math.floor(k / 2));

function geometry(s: Shape): ConvGeometry {
  const p = pad(s.k);
  return convGeometry(s.name, [s.N, s.C, s.H, s.H], [s.O, s.C, s.k, s.k], { stride: [s.s, s.s], padding: [p, p], dilation: [1, 1], groups: 1 });
}

interface PeerRunner {
  fwd: () => Promise<number>;
  /** tfjs's two gradient kernels (the ones tf.grads runs for conv2d) in one timed call. */
  bwd: () => Promise<number>;
  dispose: () => void;
}

/** tfjs-webgpu on the same shape: NHWC input and HWIO filter, transposed once outside the timing. */
async function peerRunner(s: Shape): Promise<PeerRunner | null> {
  let tfjs;
  try {
    tfjs = await (await import('../peers/tfjs')).loadTfjs();
  } catch {
    return null;
  }
  const tf = tfjs.tf;
  type T4 = import('@tensorflow/tfjs').Tensor4D;
  const p = pad(s.k);
  const g = geometry(s);
  const x = tf.tidy(() => tf.transpose(tf.randomNormal([s.N, s.C, s.H, s.H]), [0, 2, 3, 1])) as T4;
  const w = tf.tidy(() => tf.transpose(tf.randomNormal([s.O, s.C, s.k, s.k]), [2, 3, 1, 0])) as T4;
  const dy = tf.randomNormal([s.N, g.OH, g.OW, s.O]) as T4;
  const padding: [[number, number], [number, number], [number, number], [number, number]] = [[0, 0], [p, p], [p, p], [0, 0]];
  const pd = p === 0 ? 'valid' : padding;
  const conv = (xx: T4, ww: T4) => tf.conv2d(xx, ww, s.s, pd);
  // The kernels tf.grads dispatches for conv2d's gradient, called directly: timing tf.grads and
  // subtracting the forward was at the noise floor for the small shapes (it read 0 ms at times).
  const common = { strides: [s.s, s.s], pad: pd, dataFormat: 'NHWC' as const };
  const engine = tf.engine();
  type T = import('@tensorflow/tfjs').Tensor;
  const bwd = () => [
    engine.runKernel('Conv2DBackpropInput', { dy, filter: w }, { ...common, inputShape: x.shape }) as T,
    engine.runKernel('Conv2DBackpropFilter', { x, dy }, { ...common, filterShape: w.shape }) as T,
  ];
  const once = async (fn: () => T | T[]) => (await tfjs.time(fn, { warmup: 0, repeats: 1 })).ms;
  return {
    fwd: () => once(() => conv(x, w)),
    bwd: () => once(bwd),
    dispose: () => tf.dispose([x, w, dy]),
  };
}

const OPS = ['fwd', 'dgrad', 'wgrad'] as const;
/** 'bwd' = both gradients recorded together by conv2dBackwardRaw (what conv2d's autograd backward
 *  calls: the two kernels back to back, or one fused dispatch for the few-channel shapes) with one
 *  completion wait, as in a training step. */
const SAMPLED = [...OPS, 'bwd'] as const;
type Op = (typeof SAMPLED)[number];

function parseAlgos(v: string | undefined): ConvAlgo[] {
  if (!v) return ['auto'];
  const ok = CONV_ALGOS;
  const algos = v.split(',').map((a) => a.trim()) as ConvAlgo[];
  for (const a of algos) if (!ok.includes(a)) throw new Error(`BENCH_CONV_ALGOS: unknown algo '${a}', expected some of ${ok.join(', ')}`);
  return algos;
}

/** Time one call of `op` for `s` with `algo` (one sample, completion awaited). */
async function sample(op: Op, g: ConvGeometry, t: { x: Tensor; w: Tensor; dy: Tensor }, algo: ConvAlgo): Promise<number> {
  const fn = () => {
    if (op === 'bwd') {
      // Both gradients as the autograd backward records them (one fused dispatch where available).
      for (const t2 of conv2dBackwardRaw(g, t.dy, t.x, t.w, true, true, algo)) t2?.dispose();
      return;
    }
    (op === 'fwd' ? conv2dForwardRaw(g, t.x, t.w, null, false, algo) : op === 'dgrad' ? conv2dDgradRaw(g, t.dy, t.w, algo) : conv2dWgradRaw(g, t.dy, t.x, algo)).dispose();
  };
  return (await timeGpu(fn, { warmup: 0, repeats: 1, noTimestamps: true })).ms;
}

function tensors(g: ConvGeometry) {
  return {
    x: randn([g.N, g.C, g.H, g.W], 1),
    w: randn([g.O, g.C / g.groups, g.KH, g.KW], 2, 0, 0.05),
    dy: randn([g.N, g.O, g.OH, g.OW], 3),
  };
}

const disposeAll = (t: { x: Tensor; w: Tensor; dy: Tensor }) => [t.x, t.w, t.dy].forEach((v) => v.dispose());

export const run: BenchSuite = async (ctx: BenchContext): Promise<BenchRow[]> => {
  await init();
  const env = process.env;
  const full = env.BENCH_CONV_FULL === '1' || process.argv.includes('--full');
  const filters = (env.BENCH_CONV_CASES ?? '').split(',').map((f) => f.trim()).filter(Boolean);
  let shapes = full || filters.length ? CENTERMASK_LITE_V39_SHAPES : CENTERMASK_LITE_V39_SHAPES.filter((s) => s.quick);
  if (filters.length) shapes = shapes.filter((s) => filters.some((f) => s.name.includes(f)));
  const algos = parseAlgos(env.BENCH_CONV_ALGOS);
  const peerMode = env.BENCH_CONV_PEER ?? 'quick';
  if (!['quick', 'all', 'none'].includes(peerMode)) throw new Error(`BENCH_CONV_PEER must be quick, all or none, got '${peerMode}'`);
  // tfjs needs ~6 s per GFLOP of fwd+bwd here: cap its shapes to keep a full run bounded.
  const peerMaxFlops = env.BENCH_CONV_PEER_MAX_GFLOP ? Number(env.BENCH_CONV_PEER_MAX_GFLOP) * 1e9 : Infinity;
  if (!(peerMaxFlops > 0)) throw new Error(`BENCH_CONV_PEER_MAX_GFLOP must be a positive number, got '${env.BENCH_CONV_PEER_MAX_GFLOP}'`);
  if (env.BENCH_CONV_TM) overridePackedGemmRows(Number(env.BENCH_CONV_TM));
  const repeats = ctx.repeats ?? (full ? 1 : 3);
  const peak = await machinePeak();
  ctx.log(`machine fp32 peak ${peak.gflops.toFixed(1)} GFLOP/s (load ${loadavg()[0]!.toFixed(1)}); ${shapes.length} shapes (${full ? 'full' : filters.length ? 'filtered' : 'quick subset; BENCH_CONV_FULL=1 for all'}); algos ${algos.join(',')}; ${repeats} timed rounds`);
  const rows: BenchRow[] = [];
  const totals = new Map<ConvAlgo, { ms: Record<(typeof OPS)[number], number>; model: number }>(algos.map((a) => [a, { ms: { fwd: 0, dgrad: 0, wgrad: 0 }, model: 0 }]));
  let flopsOnce = 0;
  let flopsModel = 0;
  for (const s of shapes) {
    const g = geometry(s);
    const flops = convFlops(g);
    // Compile every variant's pipelines on a tiny copy of the shape (same specialisation keys:
    // they depend on channels, kernel and stride, not on N or H), so no full-size warm-up is needed.
    const tinyG = geometry({ ...s, N: 1, H: Math.min(s.H, 2 * s.k * s.s) });
    const tiny = tensors(tinyG);
    for (const a of algos) for (const op of SAMPLED) await sample(op, tinyG, tiny, a);
    disposeAll(tiny);
    const t = tensors(g);
    const usePeer = (peerMode === 'all' && flops <= peerMaxFlops) || (peerMode === 'quick' && s.quick);
    const peer = usePeer ? await peerRunner(s) : null;
    if (peer) {
      await peer.fwd();
      await peer.bwd();
    }
    // Full-size warm-up (pool buffers, first touch of their pages): without it the first op timed
    // (fwd) paid them, e.g. stem_2's forward read 2667 ms once against 850 ms warm.
    for (const a of algos) for (const op of SAMPLED) await sample(op, g, t, a);
    const times = new Map<string, number[]>();
    const push = (k: string, v: number) => (times.get(k) ?? times.set(k, []).get(k)!).push(v);
    const loads: number[] = [];
    // The first submission after the other device's (tfjs's) work pays a switch between the two
    // devices (~0.7 ms on an H100, which had our small-shape forwards at 1.0 ms against 0.3 ms
    // alone; lavapipe wakes the other device's threads): each side then gets one untimed call
    // after the other's turn, on hardware GPUs and for shapes under 0.5 GFLOP (where it costs
    // little). BENCH_CONV_SETTLE=0|1 forces it off or on.
    const settleEnv = env.BENCH_CONV_SETTLE;
    const settle = !!peer && (settleEnv !== undefined ? settleEnv === '1' : !isSoftwareAdapter() || flops < 0.5e9);
    for (let r = 0; r < repeats; r++) {
      loads.push(loadavg()[0]!);
      if (settle) await sample('fwd', g, t, algos[0]!);
      for (const a of algos) for (const op of SAMPLED) push(`${a}:${op}`, await sample(op, g, t, a));
      if (peer) {
        if (settle) await peer.fwd();
        const f = await peer.fwd();
        push('peer:fwd', f);
        push('peer:bwd', await peer.bwd());
      }
    }
    peer?.dispose();
    disposeAll(t);
    const load = median(loads);
    const gf = (ms: number) => flops / (ms * 1e6);
    const med = (k: string) => median(times.get(k) ?? []);
    const peerF = peer ? med('peer:fwd') : undefined;
    const peerB = peer ? med('peer:bwd') : undefined;
    const n = s.count ?? 1;
    flopsOnce += flops;
    flopsModel += n * flops;
    const parts: string[] = [];
    for (const a of algos) {
      const kern = { fwd: chooseForward(g, a, [0, 0]), dgrad: chooseDgrad(g, a, [0]), wgrad: chooseWgrad(g, a) }; // bench tensors start at offset 0
      const ms = { fwd: med(`${a}:fwd`), dgrad: med(`${a}:dgrad`), wgrad: med(`${a}:wgrad`), bwd: med(`${a}:bwd`) };
      const row = (what: string, t: number, algo: string, peerMs?: number): BenchRow => ({
        suite: 'conv',
        case: `${s.name} ${what}`,
        ms: t,
        gflops: what === 'dgrad+wgrad' ? (2 * flops) / (t * 1e6) : gf(t),
        peak_frac: (what === 'dgrad+wgrad' ? (2 * flops) / (t * 1e6) : gf(t)) / peak.gflops,
        algo,
        load1: load,
        samples: repeats,
        ...(peerMs !== undefined ? { peer: 'tfjs-webgpu', peer_ms: peerMs, ratio: peerMs / t } : {}),
      });
      for (const op of OPS) rows.push(row(op, ms[op], kern[op], op === 'fwd' ? peerF : undefined));
      rows.push(row('dgrad+wgrad', ms.bwd, `${kern.dgrad}/${kern.wgrad}`, peerB));
      const tot = totals.get(a)!;
      for (const op of OPS) tot.ms[op] += ms[op];
      tot.model += n * (ms.fwd + ms.dgrad + ms.wgrad);
      parts.push(`${a}: fwd ${ms.fwd.toFixed(1)} ms (${gf(ms.fwd).toFixed(2)} GF/s), dgrad ${ms.dgrad.toFixed(1)} (${gf(ms.dgrad).toFixed(2)}), wgrad ${ms.wgrad.toFixed(1)} (${gf(ms.wgrad).toFixed(2)}), dgrad+wgrad ${ms.bwd.toFixed(1)}` +
        (peer ? ` [vs tfjs fwd ×${(peerF! / ms.fwd).toFixed(2)}, bwd ×${(peerB! / ms.bwd).toFixed(2)}]` : ''));
    }
    ctx.log(`${s.name} (load ${load.toFixed(1)}): ${parts.join('; ')}${peer ? `; tfjs fwd ${peerF!.toFixed(1)} ms, bwd ${peerB!.toFixed(1)} ms` : ''}`);
  }
  for (const a of algos) {
    const tot = totals.get(a)!;
    const sumMs = tot.ms.fwd + tot.ms.dgrad + tot.ms.wgrad;
    rows.push({
      suite: 'conv',
      case: `total fwd+dgrad+wgrad, each listed shape once (${shapes.length} shapes)`,
      algo: a,
      ms: sumMs,
      gflops: (3 * flopsOnce) / (sumMs * 1e6),
      peak_frac: (3 * flopsOnce) / (sumMs * 1e6) / peak.gflops,
      fwd_ms: tot.ms.fwd,
      dgrad_ms: tot.ms.dgrad,
      wgrad_ms: tot.ms.wgrad,
    });
    if (full && !filters.length) {
      rows.push({
        suite: 'conv',
        case: 'one forward + backward of all CenterMask lite V-39 convs (shapes × their counts)',
        algo: a,
        ms: tot.model,
        gflops: (3 * flopsModel) / (tot.model * 1e6),
        peak_frac: (3 * flopsModel) / (tot.model * 1e6) / peak.gflops,
      });
    }
  }
  return rows;
};
