// The matmul chooser, as data: an ordered table of rows `{ kernel, tile, adapters, when, why }`.
// The first row whose adapter requirements and shape condition match a problem gives the kernel
// and its tile; where the row sets `splitKBelow`, K is split when the problem has fewer output
// tiles than that (see split-k.ts). To add a kernel, add its rows here in priority order and its
// dispatch to launch.ts (see README.md). f16 storage reads the same table: every kernel has f16
// variants (common.ts `Storage`).
import { hasSubgroups8, isSoftwareAdapter } from '../../runtime/adapter';
import { type RegisterTiledTile, registerTiledOutputs } from './register-tiled';
import { splitsFor } from './split-k';
import { MAX_PACKED_BYTES, packedPanelBytes, type SubgroupTile, subgroupOutputs } from './subgroup';
import { type WorkgroupTiledTile, workgroupTiledOutputs } from './workgroup-tiled';

/** A kernel and its tile; `splits` > 1 runs it split-K. */
export type MatmulConfig =
  | { kernel: 'naive' }
  | ({ kernel: 'workgroup-tiled'; splits?: number } & WorkgroupTiledTile)
  | ({ kernel: 'register-tiled'; splits?: number } & RegisterTiledTile)
  | ({ kernel: 'subgroup'; splits?: number } & SubgroupTile);
export type MatmulKernel = MatmulConfig['kernel'];
type TiledConfig = Exclude<MatmulConfig, { kernel: 'naive' }>;

/** What the chooser asks of the adapter (runtime/adapter.ts answers for the current one). */
export interface AdapterCaps {
  /** A CPU rasterizer (lavapipe, SwiftShader) rather than a GPU. */
  software: boolean;
  /** Subgroups of at least 8 invocations. */
  subgroups8: boolean;
}
export const adapterCaps = (): AdapterCaps => ({ software: isSoftwareAdapter(), subgroups8: hasSubgroups8() });

export interface MatmulShape {
  M: number;
  N: number;
  K: number;
  nBatch: number;
}

type TileOf<K extends MatmulKernel> = Omit<Extract<MatmulConfig, { kernel: K }>, 'kernel' | 'splits'>;
interface Row<K extends MatmulKernel> {
  kernel: K;
  tile: TileOf<K>;
  /** The capabilities the adapter must have (every one given must equal the adapter's). */
  adapters: Partial<AdapterCaps>;
  when: (s: MatmulShape) => boolean;
  /** Split K while the problem has fewer output tiles than this (absent: never split). */
  splitKBelow?: number;
  why: string;
}
export type ChooserRow = { [K in MatmulKernel]: Row<K> }[MatmulKernel];

const always = () => true;

/** First match wins. */
export const CHOOSER: readonly ChooserRow[] = [
  {
    kernel: 'naive',
    tile: {},
    adapters: {},
    when: ({ M, N, K }) => M * N * K === 0,
    why: 'an empty problem: nothing to tile (the launcher dispatches nothing; K = 0 is the op layer’s)',
  },
  {
    kernel: 'subgroup',
    tile: { rows: 16 },
    adapters: { software: true, subgroups8: true },
    when: ({ M, N, K, nBatch }) => M > 16 && packedPanelBytes(N, K, nBatch) <= MAX_PACKED_BYTES,
    splitKBelow: 16,
    why: 'CPU rasterizer with 8-wide subgroups: one scalarized A load per row instead of 8; packing B pays off only when several 16-row blocks re-read the same panel (M > 16), and the packed copy is capped at 128 MiB',
  },
  {
    kernel: 'register-tiled',
    tile: { rows: 4, wg: 16 },
    adapters: { software: true },
    when: ({ M, N }) => M < 64 || N < 128,
    splitKBelow: 16,
    why: 'CPU rasterizer, small M or N: 4-row tiles keep more workgroups busy and waste less on clamped rows',
  },
  {
    kernel: 'register-tiled',
    tile: { rows: 8, wg: 8 },
    adapters: { software: true },
    when: always,
    splitKBelow: 16,
    why: 'CPU rasterizer: no workgroup memory (it costs as much as a global load there), the most FLOPs per load',
  },
  {
    kernel: 'workgroup-tiled',
    tile: { tile: 64 },
    adapters: { software: false },
    when: ({ M, N }) => M >= 256 && N >= 256,
    splitKBelow: 128,
    why: 'GPU, large output: 64×64 workgroup-memory tiles',
  },
  {
    kernel: 'workgroup-tiled',
    tile: { tile: 32 },
    adapters: { software: false },
    when: always,
    splitKBelow: 128,
    why: 'GPU: 32×32 tiles give 4× as many workgroups on smaller outputs',
  },
];

/** Rows and columns of C one workgroup of a tiled kernel computes. */
export function workgroupOutputs(cfg: TiledConfig): [number, number] {
  switch (cfg.kernel) {
    case 'workgroup-tiled':
      return workgroupTiledOutputs(cfg);
    case 'register-tiled':
      return registerTiledOutputs(cfg);
    case 'subgroup':
      return subgroupOutputs(cfg);
  }
}

/** The first row that matches; `caps` defaults to the current adapter's (asked only when a row
 *  has adapter requirements). */
export function chooseRow(s: MatmulShape, caps?: AdapterCaps): ChooserRow {
  const adapter = () => (caps ??= adapterCaps());
  for (const row of CHOOSER) {
    const needs = Object.entries(row.adapters) as [keyof AdapterCaps, boolean][];
    if (needs.every(([k, v]) => adapter()[k] === v) && row.when(s)) return row;
  }
  throw new Error(`matmul: no chooser row matches ${JSON.stringify(s)}`);
}

/** The kernel and tile (and split-K) of a row for a problem. */
export function planOf(row: ChooserRow, s: MatmulShape): MatmulConfig {
  const cfg = { kernel: row.kernel, ...row.tile } as MatmulConfig;
  if (cfg.kernel === 'naive' || row.splitKBelow === undefined) return cfg;
  const [rows, cols] = workgroupOutputs(cfg);
  const tiles = Math.ceil(s.M / rows) * Math.ceil(s.N / cols) * s.nBatch;
  return { ...cfg, splits: splitsFor(tiles, s.K, row.splitKBelow) };
}

/** Kernel and tile shape for a problem on an adapter (default: the current one). */
export function choosePlan(M: number, N: number, K: number, nBatch: number, caps?: AdapterCaps): MatmulConfig {
  const s = { M, N, K, nBatch };
  return planOf(chooseRow(s, caps), s);
}
