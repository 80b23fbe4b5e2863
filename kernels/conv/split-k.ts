// Split-K for the weight gradients: dW is small (O × Cg·KH·KW) and its reduction (N·OH·OW) long,
// so the wgrad kernels cut the reduction into S chunks, write S partial products, and this kernel
// sums them in a fixed order (deterministic, no atomics). Shared by packed-gemm, subgroup-gemm
// and few-channel.
import { defineKernel, read, rw } from '../define-kernel';
import { type ConvGeometry } from './geometry';

const REDUCE_WG = 64;
const reduceKernel = defineKernel({
  name: 'conv.split-k.reduce',
  bindings: { partial: read('f32'), dw: rw('f32') },
  params: { count: 'u32', splits: 'u32', dw_off: 'u32' },
  code: () => /* wgsl */ `
@compute @workgroup_size(${REDUCE_WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * ${REDUCE_WG}u + lid;
  if (i >= p.count) { return; }
  var acc = 0.0;
  for (var s = 0u; s < p.splits; s++) { acc += partial[s * p.count + i]; }
  dw[p.dw_off + i] = acc;
}`,
});

/** Workgroups we aim for: enough to keep every core (or SM) busy. */
const TARGET_WORKGROUPS = 256;
/** Keep at least this many reduction steps per chunk, so a split is worth its partial. */
const MIN_STEPS_PER_CHUNK = 64;

/** Split count and output rows (n, oh) per chunk for a register-tiled wgrad with `tiles` output
 *  tiles. */
export function wgradSplit(g: ConvGeometry, tiles: number): { splits: number; rowsPerChunk: number } {
  const rows = g.N * g.OH;
  const maxSplits = Math.max(1, Math.floor((rows * g.OW) / MIN_STEPS_PER_CHUNK));
  const want = Math.min(rows, maxSplits, Math.max(1, Math.ceil(TARGET_WORKGROUPS / tiles)));
  const rowsPerChunk = Math.ceil(rows / want);
  return { splits: Math.ceil(rows / rowsPerChunk), rowsPerChunk };
}

/** dw[i] = Σ_s partial[s·count + i] in a fixed order (deterministic split-K reduction). */
export function reduceSplits(partial: GPUBuffer, splits: number, count: number, dw: GPUBuffer, dwOff: number): void {
  const groupsOfWg = Math.ceil(count / REDUCE_WG);
  const gx = Math.min(groupsOfWg, 65535);
  reduceKernel.dispatch({}, { partial, dw }, { count, splits, dw_off: dwOff }, [gx, Math.ceil(groupsOfWg / gx)]);
}
