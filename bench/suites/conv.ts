// Benchmark suite `conv`: conv2d forward, grad input (dgrad) and grad weight (wgrad) for every
// distinct conv shape of CenterMask lite V-39 (LIVECell heads, K = 1) at a 512×512 input, batch 2
// (backbone, FPN, FCOS towers and heads, mask and MaskIoU heads with R ROIs), in GFLOP/s and as
// a fraction of the machine's measured fp32 peak. The tfjs-webgpu peer (NHWC, inputs transposed
// once outside the timing; gradients through tf.grads, whose time includes its forward, so the
// peer's backward is reported as grads − forward) runs on the quick subset.
//
// The full list is heavy on lavapipe (tens of minutes): by default only the 6-shape quick subset
// runs (3×3 s1 at two sizes, 3×3 s2, 1×1 at 32², 1×1 at 1² (eSE), a 4-channel FCOS head); set
// BENCH_CONV_FULL=1 (or pass --full once bench/run.ts forwards it) for every shape.
import type { BenchContext, BenchRow, BenchSuite } from '../types';
import { machinePeak, timeGpu } from '../harness';
import { init, randn, type Tensor } from '../../core';
import { conv2dDgradRaw, conv2dForwardRaw, conv2dWgradRaw } from '../../core/ops/conv';
import { chooseDgrad, chooseForward } from '../../kernels/conv/dispatch';
import { convFlops, convGeometry, type ConvGeometry } from '../../kernels/conv/geometry';

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

async function peerTimes(s: Shape, repeats: number): Promise<{ fwd: number; bwd: number } | null> {
  let tfjs;
  try {
    tfjs = await (await import('../peers/tfjs')).loadTfjs();
  } catch {
    return null;
  }
  const tf = tfjs.tf;
  const p = pad(s.k);
  const g = geometry(s);
  // NHWC input and HWIO filter, transposed once from NCHW/OIHW outside the timing.
  const x = tf.tidy(() => tf.transpose(tf.randomNormal([s.N, s.C, s.H, s.H]), [0, 2, 3, 1])) as import('@tensorflow/tfjs').Tensor4D;
  const w = tf.tidy(() => tf.transpose(tf.randomNormal([s.O, s.C, s.k, s.k]), [2, 3, 1, 0])) as import('@tensorflow/tfjs').Tensor4D;
  const dy = tf.randomNormal([s.N, g.OH, g.OW, s.O]) as import('@tensorflow/tfjs').Tensor4D;
  const padding: [[number, number], [number, number], [number, number], [number, number]] = [[0, 0], [p, p], [p, p], [0, 0]];
  const conv = (xx: import('@tensorflow/tfjs').Tensor4D, ww: import('@tensorflow/tfjs').Tensor4D) => tf.conv2d(xx, ww, s.s, p === 0 ? 'valid' : padding);
  const grads = tf.grads((xx, ww) => conv(xx as import('@tensorflow/tfjs').Tensor4D, ww as import('@tensorflow/tfjs').Tensor4D));
  const fwd = await tfjs.time(() => conv(x, w), { warmup: 1, repeats });
  const both = await tfjs.time(() => grads([x, w], dy), { warmup: 1, repeats });
  tf.dispose([x, w, dy]);
  return { fwd: fwd.ms, bwd: Math.max(both.ms - fwd.ms, 0) };
}

export const run: BenchSuite = async (ctx: BenchContext): Promise<BenchRow[]> => {
  await init();
  const full = process.env.BENCH_CONV_FULL === '1' || process.argv.includes('--full');
  const shapes = full ? CENTERMASK_LITE_V39_SHAPES : CENTERMASK_LITE_V39_SHAPES.filter((s) => s.quick);
  const repeats = ctx.repeats ?? 3;
  const peak = await machinePeak();
  ctx.log(`machine fp32 peak ${peak.gflops.toFixed(1)} GFLOP/s; ${shapes.length} shapes (${full ? 'full' : 'quick subset; BENCH_CONV_FULL=1 for all'})`);
  const rows: BenchRow[] = [];
  const total = { fwd: 0, dgrad: 0, wgrad: 0, flops: 0 };
  const model = { ms: 0, flops: 0 };
  for (const s of shapes) {
    const g = geometry(s);
    const flops = convFlops(g);
    const x = randn([g.N, g.C, g.H, g.W], 1);
    const w = randn([g.O, g.C, g.KH, g.KW], 2, 0, 0.05);
    const dy = randn([g.N, g.O, g.OH, g.OW], 3);
    const keepOne = (t: Tensor) => t.dispose();
    const fwd = await timeGpu(() => keepOne(conv2dForwardRaw(g, x, w, null, false)), { warmup: 1, repeats });
    const dgrad = await timeGpu(() => keepOne(conv2dDgradRaw(g, dy, w)), { warmup: 1, repeats });
    const wgrad = await timeGpu(() => keepOne(conv2dWgradRaw(g, dy, x)), { warmup: 1, repeats });
    x.dispose();
    w.dispose();
    dy.dispose();
    const peer = s.quick ? await peerTimes(s, repeats) : null;
    const gf = (ms: number) => flops / (ms * 1e6);
    const row = (what: string, ms: number, algo: string, peerMs?: number): BenchRow => ({
      suite: 'conv',
      case: `${s.name} ${what}`,
      ms,
      gflops: gf(ms),
      peak_frac: gf(ms) / peak.gflops,
      algo,
      ...(peerMs !== undefined ? { peer: 'tfjs-webgpu', peer_ms: peerMs, ratio: peerMs / ms } : {}),
    });
    rows.push(row('fwd', fwd.ms, chooseForward(g), peer?.fwd));
    rows.push(row('dgrad', dgrad.ms, chooseDgrad(g)));
    rows.push(row('wgrad', wgrad.ms, 'gemm split-K'));
    if (peer) rows.push(row('dgrad+wgrad', dgrad.ms + wgrad.ms, 'gemm', peer.bwd));
    total.fwd += fwd.ms;
    total.dgrad += dgrad.ms;
    total.wgrad += wgrad.ms;
    total.flops += flops;
    const n = s.count ?? 1;
    model.ms += n * (fwd.ms + dgrad.ms + wgrad.ms);
    model.flops += n * 3 * flops;
    ctx.log(`${s.name}: fwd ${fwd.ms.toFixed(1)} ms (${gf(fwd.ms).toFixed(2)} GF/s), dgrad ${dgrad.ms.toFixed(1)} ms (${gf(dgrad.ms).toFixed(2)}), wgrad ${wgrad.ms.toFixed(1)} ms (${gf(wgrad.ms).toFixed(2)})${peer ? `; tfjs fwd ${peer.fwd.toFixed(1)} ms, bwd ${peer.bwd.toFixed(1)} ms` : ''}`);
  }
  const sumMs = total.fwd + total.dgrad + total.wgrad;
  rows.push({
    suite: 'conv',
    case: `total fwd+dgrad+wgrad, each listed shape once (${shapes.length} shapes)`,
    ms: sumMs,
    gflops: (3 * total.flops) / (sumMs * 1e6),
    peak_frac: (3 * total.flops) / (sumMs * 1e6) / peak.gflops,
  });
  if (full) {
    rows.push({
      suite: 'conv',
      case: 'one forward + backward of all CenterMask lite V-39 convs (shapes × their counts)',
      ms: model.ms,
      gflops: model.flops / (model.ms * 1e6),
      peak_frac: model.flops / (model.ms * 1e6) / peak.gflops,
    });
  }
  return rows;
};
