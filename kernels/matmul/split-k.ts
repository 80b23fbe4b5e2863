// Split-K: for tall-K problems with few output tiles, any tiled kernel runs with K cut into
// `splits` chunks, each workgroup writing its raw partial sums to a workspace
// [nBatch·splits, M, N]; a reduce kernel then sums the chunks in a fixed order and applies the
// epilogue (bias, ReLU). The workspace is f32 whatever the output's storage; an f16 output is
// rounded once, by the reduce kernel's store.
import { defineKernel, WGSL_LINEAR_WORKGROUP } from '../define-kernel';
import { type Epilogue } from './common';
import { withF16Storage } from '../f16-storage';

/** Split K when there are fewer output tiles than `wantTiles` and K is long (each chunk ≥ 256). */
export function splitsFor(tiles: number, K: number, wantTiles: number): number {
  if (tiles >= wantTiles || K < 512) return 1;
  return Math.max(1, Math.min(Math.ceil(wantTiles / tiles), Math.floor(K / 256), 32));
}

/** The K chunks of a requested split count: the request clamped to [1, ceil(K/4)], chunks a
 *  multiple of 4 long (the register-tiled kernel's vec4 A loads need aligned chunk starts), and
 *  `splits`, the number of chunks that covers K (rounding can make it smaller than `clamped`). */
export function kChunks(K: number, requested: number): { clamped: number; splits: number; kChunk: number } {
  const clamped = Math.max(1, Math.min(requested, Math.ceil(K / 4)));
  const kChunk = clamped === 1 ? K : Math.ceil(K / clamped / 4) * 4;
  return { clamped, splits: Math.ceil(K / kChunk), kChunk };
}

/** Sum the split-K partials [nBatch·splits, M, N] and apply the epilogue. */
function reduceCode(epi: Epilogue): string {
  const act = epi.act === 'relu' ? 'max(v, 0.0)' : 'v';
  return `${WGSL_LINEAR_WORKGROUP}
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = linear_workgroup(wid, nwg) * 256u + lid;
  if (i >= p.total) { return; }
  let b = i / p.mn;
  let e = i % p.mn;
  var acc = 0.0;
  for (var s = 0u; s < p.splits; s++) { acc += W[(b * p.splits + s) * p.mn + e]; }
  let v = acc${epi.bias ? ' + bias[p.offBias + e % p.n]' : ''};
  C[p.offC + i] = ${act};
}`;
}

const reduceKernel = defineKernel({
  name: 'matmul.splitk_reduce',
  bindings: {
    W: { type: 'f32', access: 'read' },
    bias: { type: 'f32', access: 'read', when: (v) => v.bias },
    C: { type: (v) => (v.hc ? 'f16' : 'f32'), access: 'rw' },
  },
  params: { total: 'u32', mn: 'u32', n: 'u32', splits: 'u32', offC: 'u32', offBias: 'u32' },
  code: (v: Epilogue & { hc: boolean }) => withF16Storage(reduceCode(v), v.hc, [], ['C']),
});

/** C[offC + i] = epilogue(Σ_s W[b, s, e]) for the `total` = nBatch·M·N outputs (C f16 when `hc`). */
export function dispatchSplitReduce(
  epi: Epilogue & { hc: boolean },
  buffers: { W: GPUBuffer; bias?: GPUBuffer; C: GPUBuffer },
  p: { total: number; mn: number; n: number; splits: number; offC: number; offBias: number },
): void {
  reduceKernel.dispatch(epi, buffers, p, Math.ceil(p.total / 256));
}
