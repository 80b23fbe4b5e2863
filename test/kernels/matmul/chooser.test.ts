// The matmul chooser table (kernels/matmul/chooser.ts): every kernel a row names has a dispatch,
// every row is the first match for some problem, and the table picks exactly the kernel, tile and
// split-K of the if/else chooser it replaced (frozen below as the oracle) for software adapters
// with and without 8-wide subgroups and for hardware GPUs, over a grid of problems: empty, tiny,
// odd, tall-K (split-K), huge (packed B over its cap), batched, broadcast, transposed and strided
// operands (analysed from views, as the launcher does). Pure TypeScript: no GPU needed.
import { describe, expect, it } from 'vitest';
import { type AdapterCaps, CHOOSER, choosePlan, chooseRow, type MatmulConfig, type MatmulShape } from '../../../kernels/matmul/chooser';
import { MATMUL_KERNELS } from '../../../kernels/matmul/launch';
import { analyse } from '../../../kernels/matmul/problem';
import type { View } from '../../../runtime/shape';

/** The chooser before the table, copied as it was (kernel ids mapped to today's names): the
 *  oracle. Adapter capabilities are arguments instead of runtime/adapter.ts calls. */
function oraclePlan(M: number, N: number, K: number, nBatch: number, isSoftwareAdapter: boolean, hasSubgroups8: boolean): MatmulConfig {
  const V3_COLS = 32;
  const MAX_PACKED_BYTES = 128 * 1024 * 1024;
  const v3PackedBytes = (N: number, K: number, nBatch: number) => nBatch * Math.ceil(N / V3_COLS) * Math.ceil(K / 4) * 4 * V3_COLS * 4;
  const splitsFor = (tiles: number, K: number, wantTiles: number) => {
    if (tiles >= wantTiles || K < 512) return 1;
    return Math.max(1, Math.min(Math.ceil(wantTiles / tiles), Math.floor(K / 256), 32));
  };
  if (M * N * K === 0) return { kernel: 'naive' };
  if (isSoftwareAdapter) {
    if (hasSubgroups8 && M > 16 && v3PackedBytes(N, K, nBatch) <= MAX_PACKED_BYTES) {
      const tiles = Math.ceil(M / 16) * Math.ceil(N / V3_COLS) * nBatch;
      return { kernel: 'subgroup', rows: 16, splits: splitsFor(tiles, K, 16) };
    }
    const small = M < 64 || N < 128;
    const rows: 4 | 8 = small ? 4 : 8;
    const wg: 8 | 16 = small ? 16 : 8;
    const tiles = Math.ceil(M / rows) * Math.ceil(N / (4 * wg)) * nBatch;
    return { kernel: 'register-tiled', rows, wg, splits: splitsFor(tiles, K, 16) };
  }
  const tile: 32 | 64 = M >= 256 && N >= 256 ? 64 : 32;
  const tiles = Math.ceil(M / tile) * Math.ceil(N / tile) * nBatch;
  return { kernel: 'workgroup-tiled', tile, splits: splitsFor(tiles, K, 128) };
}

const ADAPTERS: [string, AdapterCaps][] = [
  ['software, 8-wide subgroups (lavapipe)', { software: true, subgroups8: true }],
  ['software, no subgroups', { software: true, subgroups8: false }],
  ['hardware GPU', { software: false, subgroups8: false }],
  ['hardware GPU with subgroups', { software: false, subgroups8: true }],
];

/** Problems as the launcher sees them: the sizes, and views whose batch dims broadcast and merge. */
function shapeGrid(): MatmulShape[] {
  const out: MatmulShape[] = [];
  const dims = [0, 1, 3, 4, 7, 16, 17, 33, 63, 64, 65, 127, 128, 129, 255, 256, 257, 1000, 1024, 4096, 4097];
  const ks = [0, 1, 5, 64, 511, 512, 513, 1030, 4608, 8192, 65536];
  for (const M of dims) for (const N of dims) for (const K of ks) for (const nBatch of [1, 3, 8, 64]) out.push({ M, N, K, nBatch });
  return out;
}

const fakeBuffer = {} as GPUBuffer;
/** A view of [...batch, R, C] whose inner matrix is row-major, column-major (a transposed view)
 *  or a row-major slice of a wider matrix (strided rows), with broadcast (stride-0) batch dims. */
function view(batch: number[], R: number, C: number, layout: 'row' | 'col' | 'strided', broadcast: boolean[] = []): View {
  const inner = layout === 'row' ? [C, 1] : layout === 'col' ? [1, R] : [2 * C + 3, 1];
  const strides = [...inner];
  let acc = layout === 'strided' ? R * (2 * C + 3) : R * C;
  for (let d = batch.length - 1; d >= 0; d--) {
    strides.unshift(broadcast[d] ? 0 : acc);
    if (!broadcast[d]) acc *= batch[d]!;
  }
  return { buffer: fakeBuffer, dtype: 'f32', shape: [...batch, R, C], strides, offset: 5 };
}

function viewGrid(): { what: string; a: View; b: View }[] {
  const out: { what: string; a: View; b: View }[] = [];
  const layouts = ['row', 'col', 'strided'] as const;
  for (const [M, K, N] of [[37, 29, 45], [64, 4608, 1024], [8, 1030, 12], [256, 256, 256], [1, 7, 1], [300, 9000, 300]]) {
    for (const la of layouts) for (const lb of layouts) {
      out.push({ what: `[${M},${K}]·[${K},${N}] ${la}/${lb}`, a: view([], M, K, la), b: view([], K, N, lb) });
      out.push({ what: `[8,${M},${K}]·[${K},${N}] ${la}/${lb}`, a: view([8], M, K, la), b: view([], K, N, lb) });
      out.push({ what: `[2,1,${M},${K}]·[3,${K},${N}] ${la}/${lb}`, a: view([2, 1], M, K, la), b: view([3], K, N, lb) });
      out.push({ what: `[4,6,${M},${K}] (dim 1 broadcast)·[4,6,${K},${N}] ${la}/${lb}`, a: view([4, 6], M, K, la, [false, true]), b: view([4, 6], K, N, lb) });
    }
  }
  return out;
}

describe('matmul chooser table', () => {
  it('names only kernels that have a dispatch, and every kernel is in some row', () => {
    for (const row of CHOOSER) {
      expect(Object.keys(MATMUL_KERNELS), `row '${row.why}'`).toContain(row.kernel);
      expect(row.why.length).toBeGreaterThan(10);
    }
    expect(new Set(CHOOSER.map((r) => r.kernel))).toEqual(new Set(Object.keys(MATMUL_KERNELS)));
  });

  it('every row is the first match for some problem on some adapter', () => {
    const hits = new Map<number, string>();
    for (const [name, caps] of ADAPTERS) {
      for (const s of shapeGrid()) {
        const i = CHOOSER.indexOf(chooseRow(s, caps));
        if (!hits.has(i)) hits.set(i, `${JSON.stringify(s)} on ${name}`);
      }
    }
    const unreachable = CHOOSER.map((r, i) => (hits.has(i) ? '' : `row ${i} (${r.kernel}: ${r.why})`)).filter(Boolean);
    expect(unreachable).toEqual([]);
  });

  for (const [name, caps] of ADAPTERS) {
    it(`${name}: the same kernel, tile and split-K as the oracle over a grid of sizes`, () => {
      const grid = shapeGrid();
      const diffs: string[] = [];
      for (const { M, N, K, nBatch } of grid) {
        const got = choosePlan(M, N, K, nBatch, caps);
        const want = oraclePlan(M, N, K, nBatch, caps.software, caps.subgroups8);
        if (JSON.stringify(got) !== JSON.stringify(want)) diffs.push(`${M}x${N}x${K} batch ${nBatch}: ${JSON.stringify(got)} vs ${JSON.stringify(want)}`);
      }
      expect(diffs.slice(0, 20)).toEqual([]);
      // The grid exercises split-K and the packed-B cap on this adapter.
      const plans = grid.map((s) => choosePlan(s.M, s.N, s.K, s.nBatch, caps));
      expect(plans.some((p) => p.kernel !== 'naive' && (p.splits ?? 1) > 1)).toBe(true);
    });

    it(`${name}: the same plans as the oracle for batched, broadcast, transposed and strided operands`, () => {
      for (const { what, a, b } of viewGrid()) {
        const { M, N, K, nBatch } = analyse(a, b);
        expect(choosePlan(M, N, K, nBatch, caps), what).toEqual(oraclePlan(M, N, K, nBatch, caps.software, caps.subgroups8));
      }
    });
  }

  it('the packed-B cap: the subgroup kernel up to 128 MiB of packed B, register-tiled beyond', () => {
    const caps = { software: true, subgroups8: true };
    expect(choosePlan(64, 4096, 8192, 1, caps).kernel).toBe('subgroup'); // exactly 128 MiB
    expect(choosePlan(64, 4097, 8192, 1, caps).kernel).toBe('register-tiled');
    expect(choosePlan(16, 1024, 4608, 1, caps)).toEqual({ kernel: 'register-tiled', rows: 4, wg: 16, splits: 1 });
  });

  it('an empty problem needs no adapter', () => {
    expect(choosePlan(0, 5, 5, 1)).toEqual({ kernel: 'naive' });
    expect(choosePlan(5, 5, 0, 3)).toEqual({ kernel: 'naive' });
  });
});
