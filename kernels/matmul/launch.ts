// The matmul launcher: C[b] = epilogue(A[b] · B[b]) for batched, broadcast, strided operands
// (problem.ts; f32, or f16 storage with f32 accumulation), with the kernel and tile the chooser picks (chooser.ts) or a given config. Kernels,
// from the readable reference to the fast ones (each tested against the float64 reference and the
// naive kernel in test/kernels/matmul/):
//   naive            naive.ts: one output per invocation, any strides (the reference).
//   workgroup-tiled  workgroup-tiled.ts: workgroup-memory tiles, 4×4 outputs per invocation (GPUs).
//   register-tiled   register-tiled.ts: vec4 register tiles, no workgroup memory (CPU rasterizers).
//   subgroup         subgroup.ts: register tiles sharing A rows through 8-wide subgroups, B packed
//                    into panels (CPU rasterizers with subgroups).
// Any tiled kernel may run split-K (split-k.ts).
import { rt } from '../define-kernel';
import { type Epilogue, type MatmulLaunch } from './common';
import { choosePlan, type MatmulConfig, type MatmulKernel } from './chooser';
import { dispatchNaive } from './naive';
import { analyse, type MatmulArgs } from './problem';
import { dispatchRegisterTiled } from './register-tiled';
import { dispatchSplitReduce, kChunks } from './split-k';
import { dispatchSubgroup } from './subgroup';
import { dispatchWorkgroupTiled } from './workgroup-tiled';
import { launchMatmulSplit } from './large';
import { overBindingLimit } from '../large';
import { numelOf } from '../../runtime/shape';

/** Each kernel's dispatch, by the id the chooser and configs use. */
export const MATMUL_KERNELS: { [K in MatmulKernel]: (l: MatmulLaunch, cfg: Extract<MatmulConfig, { kernel: K }>) => void } = {
  naive: (l) => dispatchNaive(l),
  'workgroup-tiled': dispatchWorkgroupTiled,
  'register-tiled': dispatchRegisterTiled,
  subgroup: dispatchSubgroup,
};

/**
 * Record C = act(A·B + bias) into `out` with the given kernel (or the plan `choosePlan` picks).
 * Returns the config used (benchmarks and tests report it).
 */
export function launchMatmul(args: MatmulArgs, config?: MatmulConfig): MatmulConfig {
  const { a, b, out } = args;
  const pr = analyse(a, b);
  const { M, N, K, nBatch } = pr;
  if (numelOf(out.shape) !== nBatch * M * N) throw new Error(`matmul: output has ${numelOf(out.shape)} elements, expected ${nBatch}·${M}·${N}`);
  if (out.dtype !== 'f32' && out.dtype !== 'f16') throw new Error(`matmul: output must be f32 or f16, got ${out.dtype}`);
  if (args.bias && args.bias.dtype !== 'f32') throw new Error(`matmul: bias must be f32, got ${args.bias.dtype}`);
  if (args.bias && (args.bias.shape.length !== 1 || args.bias.shape[0] !== N || args.bias.strides[0] !== 1)) {
    throw new Error(`matmul: bias must be a contiguous [${N}] vector, got shape [${args.bias.shape}]`);
  }
  if (nBatch * M * N === 0) return config ?? { kernel: 'naive' };
  if (overBindingLimit(a.buffer, b.buffer, out.buffer, args.bias?.buffer)) {
    // Operands over one storage binding: sub-problems on binding windows (large.ts).
    launchMatmulSplit(launchMatmul, args, config);
    return config ?? choosePlan(M, N, K, nBatch);
  }
  const epi: Epilogue = { bias: !!args.bias, act: args.act ?? 'none' };
  const cfg = config ?? choosePlan(M, N, K, nBatch);
  if (K === 0) throw new Error('matmul: K = 0 is handled by the op layer (zeros + epilogue)');
  const dispatch = MATMUL_KERNELS[cfg.kernel] as ((l: MatmulLaunch, cfg: MatmulConfig) => void) | undefined;
  if (!dispatch) throw new Error(`matmul: unknown kernel '${cfg.kernel}' (kernels: ${Object.keys(MATMUL_KERNELS).join(', ')})`);
  const { clamped, splits, kChunk } = kChunks(K, cfg.kernel === 'naive' ? 1 : (cfg.splits ?? 1));
  const z = nBatch * splits;
  if (z > 65535) throw new Error(`matmul: ${nBatch} batches × ${splits} K-splits exceed 65,535 workgroups`);

  // Matrix strides in (row, col) form for the generic index formulas.
  const sAm = pr.la.layout === 'row' ? pr.la.ld : 1;
  const sAk = pr.la.layout === 'row' ? 1 : pr.la.ld;
  const sBk = pr.lb.layout === 'row' ? pr.lb.ld : 1;
  const sBn = pr.lb.layout === 'row' ? 1 : pr.lb.ld;
  const split = splits > 1;
  const work = split ? rt().pool.acquire(z * M * N * 4, GPUBufferUsage.STORAGE, 'matmul.splitk') : undefined;
  const cBuf = work ?? out.buffer;
  const offC = work ? 0 : out.offset;
  // f16 storage: A and B both f16 (problem.ts checks), C f16 or f32, the bias f32.
  const h = a.dtype === 'f16';
  const hc = !work && out.dtype === 'f16';
  const cVec = !hc && N % 4 === 0 && offC % 4 === 0;
  const params = {
    M, N, K, kChunk,
    offA: a.offset, sAm, sAk, offB: b.offset,
    sBk, sBn, offC, offBias: args.bias?.offset ?? 0,
    splits, batchRank: pr.batchShape.length, nBatch,
    bshape: pr.batchShape, bsA: pr.batchStridesA, bsB: pr.batchStridesB,
  };
  const mainEpi: Epilogue = split ? { bias: false, act: 'none' } : epi;
  const buffers = { A: a.buffer, B: b.buffer, bias: mainEpi.bias ? args.bias!.buffer : undefined, C: cBuf };
  dispatch({ pr, a, b, params, buffers, epi: mainEpi, sAm, sAk, sBk, sBn, cVec, storage: { h, hc }, split, z }, cfg);

  if (work) {
    const total = nBatch * M * N;
    dispatchSplitReduce(
      { ...epi, hc: out.dtype === 'f16' },
      { W: work, bias: epi.bias ? args.bias!.buffer : undefined, C: out.buffer },
      { total, mn: M * N, n: N, splits, offC: out.offset, offBias: args.bias?.offset ?? 0 },
    );
    rt().pool.release(work);
  }
  return cfg.kernel === 'naive' || clamped === splits ? cfg : { ...cfg, splits };
}
