// The conv chooser (kernels/conv/chooser.ts) without a GPU: every table row is reachable and names
// a kernel with a launcher for its direction; the tables, the requests (algo option, pinned kernel)
// and the fused-backward rows choose exactly what the if-chain they replaced chose, over CenterMask
// and random geometries (depthwise, groups, 1×1 maps, few channels, strides, dilation, offsets) on
// software adapters with and without 8-wide subgroups and on hardware GPUs; and the H100 choices.
import { describe, expect, it } from 'vitest';
import { CENTERMASK_LITE_V39_SHAPES } from '../../../bench/suites/conv';
import {
  type AdapterCaps, CAN_RUN, CONV_ALGO_ALIASES, CONV_KERNELS, type ChooserEnv, type ConvAlgo, type ConvKernel, DIRECTIONS, type Direction,
  FUSED_BACKWARD, TABLES, choose, chooseFusedBackward, firstRow, kernelOf,
} from '../../../kernels/conv/chooser';
import { convGeometry, type ConvGeometry, isPointwise } from '../../../kernels/conv/geometry';
import { FUSED_KERNELS, KERNELS } from '../../../kernels/conv/launch';
import { opt } from '../../../kernels/conv/reference';
import { Rng } from '../../util';

// ---- The chooser as it was before the tables (kernels/conv/dispatch.ts), frozen as the oracle. --
// The adapter queries (isSoftwareAdapter, hasSubgroups8) and CELLGPU_CONV_ALGO are parameters
// here; the geometry checks of v3Applicable, fewApplicable and fcApplicable are copied as they were.
namespace Old {
  export type Kernel = 'direct' | 'gemm1' | 'gemm2' | 'gemm3' | 'fc' | 'few';
  export type Algo = 'auto' | 'direct' | 'gemm' | Kernel;
  export interface Env {
    software: boolean;
    subgroups8: boolean;
    pinned: Kernel | 'gemm' | undefined;
  }
  const MAX_TAPS = 50;
  const V3_MAX_BINDING = 128 * 1024 * 1024;
  const rowsFor = (mg: number) => (mg > 16 ? 32 : mg > 8 ? 16 : 8);
  const paddedRowsV3 = (mg: number) => Math.ceil(mg / rowsFor(mg)) * rowsFor(mg);
  const v3Available = (e: Env) => e.software && e.subgroups8;
  function v3Applicable(e: Env, g: ConvGeometry, op: 'forward' | 'dgrad' | 'wgrad' | 'any' = 'any'): boolean {
    if (!v3Available(e) || g.KH * g.KW > MAX_TAPS) return false;
    const T = g.KH * g.KW;
    const og = g.O / g.groups;
    const cg = g.C / g.groups;
    const packBytes = (rows: number, k: number) => g.groups * paddedRowsV3(rows) * Math.max(4, Math.ceil(k / 4) * 4) * 4;
    if ((op === 'forward' || op === 'any') && packBytes(og, cg * T) > V3_MAX_BINDING) return false;
    if ((op === 'dgrad' || op === 'any') && packBytes(cg, og * T) > V3_MAX_BINDING) return false;
    if (op === 'wgrad' || op === 'any') {
      if (packBytes(og, g.N * g.OH * g.OW) > V3_MAX_BINDING || g.groups * g.N > 65535) return false;
    }
    return true;
  }
  function fewApplicable(e: Env, g: ConvGeometry): boolean {
    return v3Available(e) && g.groups === 1 && g.O <= 4 && g.strideH === 1 && g.strideW === 1 && g.dilH === 1 && g.dilW === 1 && g.KW <= 5 && g.KH <= 5;
  }
  function fcApplicable(g: ConvGeometry, offsets: readonly number[]): boolean {
    return isPointwise(g) && g.H === 1 && g.W === 1 && g.groups === 1 && g.C % 4 === 0 && offsets.every((o) => o % 4 === 0);
  }
  const isDepthwise = (g: ConvGeometry) => g.C === g.groups && g.O === g.groups;
  const resolve = (e: Env, algo: Algo) => (algo === 'auto' ? e.pinned : algo === 'gemm' ? 'gemm2' : algo);
  const usable = (e: Env, k: Kernel | 'gemm', g: ConvGeometry, op: 'forward' | 'dgrad' | 'wgrad') => (k === 'gemm3' ? v3Applicable(e, g, op) : k === 'few' ? fewApplicable(e, g) : k !== 'fc');
  export function chooseForward(e: Env, g: ConvGeometry, algo: Algo = 'auto', offsets: readonly number[] = []): Kernel | 'gemm' {
    const k = resolve(e, algo);
    if (k && (algo !== 'auto' || usable(e, k, g, 'forward'))) return k;
    if (isDepthwise(g)) return 'direct';
    if (fcApplicable(g, offsets)) return 'fc';
    if (fewApplicable(e, g)) return 'few';
    if (v3Applicable(e, g, 'forward')) return 'gemm3';
    return e.software ? 'gemm2' : hardwareForward(g);
  }
  export function hardwareForward(g: ConvGeometry): Kernel {
    const taps = g.KH * g.KW;
    const cols = g.N * g.OH * g.OW;
    if (taps > 1 && (cols <= 512 || g.O <= 4)) return 'direct';
    if (taps > 1 && cols <= 8192 && (g.C / g.groups) * taps >= 1440) return 'gemm1';
    return 'gemm2';
  }
  export function hardwareDgrad(g: ConvGeometry): Kernel {
    return g.KH * g.KW > 1 && g.N * g.H * g.W <= 512 ? 'direct' : 'gemm2';
  }
  export function chooseDgrad(e: Env, g: ConvGeometry, algo: Algo = 'auto', offsets: readonly number[] = []): Kernel | 'gemm' {
    const k = resolve(e, algo);
    if (k && (algo !== 'auto' || usable(e, k, g, 'dgrad'))) return k;
    if (isDepthwise(g)) return 'direct';
    if (fcApplicable(g, offsets)) return 'fc';
    if (fewApplicable(e, g)) return 'few';
    if (!e.software) return hardwareDgrad(g);
    if (g.C / g.groups < 8) return 'gemm2';
    return v3Applicable(e, g, 'dgrad') ? 'gemm3' : 'gemm2';
  }
  export function chooseWgrad(e: Env, g: ConvGeometry, algo: Algo = 'auto', offsets: readonly number[] = []): Kernel | 'gemm' {
    const k = resolve(e, algo);
    const fc = fcApplicable(g, offsets);
    if (k === 'fc') return fc ? 'fc' : 'gemm2';
    if (k && (algo !== 'auto' || usable(e, k, g, 'wgrad'))) return k;
    if (fc) return 'fc';
    if (fewApplicable(e, g)) return 'few';
    if (isDepthwise(g) || (g.OH === 1 && g.OW === 1)) return 'gemm2';
    return v3Applicable(e, g, 'wgrad') ? 'gemm3' : 'gemm2';
  }
  /** convBackward's fused paths: 'few', 'fc' or null (the two gradients apart). */
  export function fused(e: Env, g: ConvGeometry, algo: Algo, o: { x: number; w: number; dw: number }): 'few' | 'fc' | null {
    if (chooseDgrad(e, g, algo, [o.w]) === 'few' && chooseWgrad(e, g, algo) === 'few') return 'few';
    if (g.O * g.C <= 512 * 512 && chooseDgrad(e, g, algo, [o.w]) === 'fc' && chooseWgrad(e, g, algo, [o.x, o.dw]) === 'fc') return 'fc';
    return null;
  }
}

/** An old kernel name as the kernel launched ('gemm' launched gemm2). */
const asNew = (k: string): ConvKernel => kernelOf(k)!;

const ADAPTERS: Record<string, AdapterCaps> = {
  lavapipe: { software: true, subgroups8: true },
  'software without subgroups': { software: true, subgroups8: false },
  hardware: { software: false, subgroups8: true },
  'hardware without subgroups': { software: false, subgroups8: false },
};
const HARDWARE: ChooserEnv = { caps: ADAPTERS.hardware!, pinned: undefined };

function geometries(): ConvGeometry[] {
  const out: ConvGeometry[] = [];
  const add = (xs: number[], ws: number[], o: ReturnType<typeof opt>) => {
    try {
      out.push(convGeometry('t', xs, ws, { stride: o.stride, padding: o.padding, dilation: o.dilation, groups: o.groups }));
    } catch {
      // not a valid conv (the kernel is larger than the padded input)
    }
  };
  for (const s of CENTERMASK_LITE_V39_SHAPES) {
    const p = s.k === 2 ? 0 : s.k >> 1;
    add([s.N, s.C, s.H, s.H], [s.O, s.C, s.k, s.k], opt(s.s, p, 1));
    add([1, s.C, s.H, s.H], [s.O, s.C, s.k, s.k], opt(s.s, p, 1));
  }
  // Edges of the rows: 512 and 8192 output positions, K = 1440, 128 MiB packed operands, 65,535
  // groups × images, tap tables of 49 and 64 taps.
  add([2, 160, 16, 16], [192, 160, 3, 3], opt(1, 1, 1));
  add([2, 160, 16, 17], [192, 160, 3, 3], opt(1, 1, 1));
  add([2, 160, 64, 64], [192, 160, 3, 3], opt(1, 1, 1));
  add([2, 160, 64, 65], [192, 160, 3, 3], opt(1, 1, 1));
  add([2, 159, 32, 32], [64, 159, 3, 3], opt(1, 1, 1));
  add([4, 64, 512, 512], [64, 64, 3, 3], opt(1, 1, 1));
  add([1, 4096, 4, 4], [4096, 4096, 3, 3], opt(1, 1, 1));
  add([40000, 2, 3, 3], [2, 1, 3, 3], opt(1, 1, 1, 2));
  add([1, 8, 16, 16], [8, 8, 7, 7], opt(1, 3, 1));
  add([1, 8, 16, 16], [8, 8, 8, 8], opt(1, 3, 1));
  add([3, 12, 1, 1], [4, 12, 1, 1], opt(1, 0, 1));
  add([3, 12, 1, 1], [8, 12, 1, 1], opt(1, 0, 1));
  add([2, 1024, 1, 1], [1024, 1024, 1, 1], opt(1, 0, 1));
  add([2, 513, 1, 1], [512, 513, 1, 1], opt(1, 0, 1));
  const rng = new Rng(20240611);
  const ri = (a: number, b: number) => a + Math.floor(rng.uniform() * (b - a + 1));
  for (let i = 0; i < 700; i++) {
    const kind = i % 7;
    const groups = kind === 0 ? ri(2, 12) : kind === 1 ? ri(1, 4) : 1;
    const cg = kind === 0 ? 1 : ri(1, 20);
    const og = kind === 0 ? 1 : kind === 2 ? ri(1, 6) : ri(1, 40);
    const onePixel = kind === 3;
    const H = onePixel ? 1 : ri(1, 40);
    const W = onePixel ? 1 : ri(1, 40);
    const KH = onePixel ? 1 : ri(1, 6);
    const KW = onePixel ? 1 : ri(1, 6);
    const s: [number, number] = kind === 4 ? [ri(1, 3), ri(1, 3)] : [1, 1];
    const p: [number, number] = onePixel ? [0, 0] : [ri(0, 2), ri(0, 2)];
    const d: [number, number] = kind === 5 ? [ri(1, 2), ri(1, 2)] : [1, 1];
    const C = cg * groups * (onePixel ? 4 * ri(1, 3) - (i % 3 === 0 ? 1 : 0) : 1);
    add([ri(1, 4), C, H, W], [og * groups, C / groups, KH, KW], { stride: s, padding: p, dilation: d, groups });
  }
  return out;
}

const GEOS = geometries();
const OFFSETS = [
  { x: 0, w: 0, dw: 0 },
  { x: 4, w: 8, dw: 12 },
  { x: 1, w: 0, dw: 0 },
  { x: 0, w: 2, dw: 0 },
  { x: 0, w: 0, dw: 3 },
];
const offsetsFor = (dir: Direction, o: { x: number; w: number; dw: number }) => (dir === 'forward' ? [o.x, o.w] : dir === 'dgrad' ? [o.w] : [o.x, o.dw]);
const OLD_ALGOS: Old.Algo[] = ['auto', 'direct', 'gemm', 'gemm1', 'gemm2', 'gemm3', 'fc', 'few'];
const OLD_PINS: Old.Env['pinned'][] = [undefined, 'direct', 'gemm', 'gemm1', 'gemm2', 'gemm3', 'fc', 'few'];

function oldChoose(dir: Direction, e: Old.Env, g: ConvGeometry, algo: Old.Algo, offsets: readonly number[]): ConvKernel {
  const f = dir === 'forward' ? Old.chooseForward : dir === 'dgrad' ? Old.chooseDgrad : Old.chooseWgrad;
  // scalar-gemm (gemm1) ships a forward only: requested for a gradient, the table chooses, as the
  // old chooser did without a request.
  if (dir !== 'forward' && (algo === 'gemm1' || (algo === 'auto' && e.pinned === 'gemm1'))) return asNew(f({ ...e, pinned: undefined }, g, 'auto', offsets));
  return asNew(f(e, g, algo, offsets));
}

describe('conv chooser tables', () => {
  it('every row names a kernel with a launcher for its direction, and CAN_RUN agrees with the launchers', () => {
    for (const dir of DIRECTIONS) {
      for (const row of TABLES[dir]) {
        expect(KERNELS[row.kernel], `${dir} row ${row.kernel}`).toBeDefined();
        expect(KERNELS[row.kernel][dir], `${dir} launcher of ${row.kernel}`).toBeTypeOf('function');
        expect(row.why.length, `${dir} row ${row.kernel} says why`).toBeGreaterThan(10);
      }
      const last = TABLES[dir][TABLES[dir].length - 1]!;
      expect([last.adapters, last.when(GEOS[0]!, { offsets: [] })], `${dir}: the last row always applies`).toEqual(['any', true]);
    }
    for (const k of CONV_KERNELS) {
      for (const dir of DIRECTIONS) expect(CAN_RUN[k].directions.includes(dir), `${k} ${dir}`).toBe(typeof KERNELS[k][dir] === 'function');
    }
    for (const row of FUSED_BACKWARD) expect(FUSED_KERNELS[row.kernel]).toBeTypeOf('function');
  });

  it('every row is the first match for some geometry, offsets and adapter', () => {
    for (const dir of DIRECTIONS) {
      const hit = new Set<number>();
      for (const caps of Object.values(ADAPTERS)) {
        for (const g of GEOS) {
          for (const o of OFFSETS) hit.add(TABLES[dir].indexOf(firstRow(dir, g, { offsets: offsetsFor(dir, o) }, caps)));
        }
      }
      const missed = TABLES[dir].map((r, i) => (hit.has(i) ? null : `${i}: ${r.kernel} (${r.adapters})`)).filter((m) => m);
      expect(missed, `${dir} rows never chosen`).toEqual([]);
    }
  });

  it('both fused backward rows are reachable', () => {
    const seen = new Set<string | null>();
    for (const g of GEOS) for (const o of OFFSETS) seen.add(chooseFusedBackward(g, 'auto', o, { caps: ADAPTERS.lavapipe!, pinned: undefined }));
    expect([...seen].sort()).toEqual(['few-channel', 'matvec', null].sort());
  });
});

describe('conv chooser against the if-chain it replaced', () => {
  for (const [name, caps] of Object.entries(ADAPTERS)) {
    it(`${name}: every geometry, direction, offsets, algo and pinned kernel (${GEOS.length} geometries)`, () => {
      const mismatches: string[] = [];
      let compared = 0;
      for (const pinned of OLD_PINS) {
        const oldEnv: Old.Env = { ...caps, pinned };
        const env: ChooserEnv = { caps, pinned: pinned ? kernelOf(pinned) : undefined };
        for (const g of GEOS) {
          for (const algo of pinned ? (['auto'] as const) : OLD_ALGOS) {
            for (const o of OFFSETS) {
              for (const dir of DIRECTIONS) {
                const want = oldChoose(dir, oldEnv, g, algo, offsetsFor(dir, o));
                const got = choose(dir, g, algo, offsetsFor(dir, o), env);
                compared++;
                if (got !== want && mismatches.length < 10) mismatches.push(`${dir} ${algo} pinned ${pinned} offsets ${JSON.stringify(o)} ${JSON.stringify(g)}: ${got}, was ${want}`);
              }
              const gemm1Grads = algo === 'gemm1' || pinned === 'gemm1';
              const oldFused = Old.fused({ ...oldEnv, pinned: gemm1Grads ? undefined : pinned }, g, gemm1Grads ? 'auto' : algo, o);
              const wantFused = oldFused === null ? null : asNew(oldFused);
              const gotFused = chooseFusedBackward(g, algo, o, env);
              if (gotFused !== wantFused && mismatches.length < 10) mismatches.push(`fused ${algo} pinned ${pinned} ${JSON.stringify(o)} ${JSON.stringify(g)}: ${gotFused}, was ${wantFused}`);
            }
          }
        }
      }
      expect(mismatches, mismatches.join('\n')).toEqual([]);
      expect(compared).toBeGreaterThan(100_000);
    });
  }
});

describe('conv algorithm names', () => {
  it('old names are aliases of the kernels; unknown names are errors', () => {
    expect(CONV_ALGO_ALIASES).toEqual({ gemm: 'packed-gemm', gemm1: 'scalar-gemm', gemm2: 'packed-gemm', gemm3: 'subgroup-gemm', few: 'few-channel', fc: 'matvec' });
    for (const k of CONV_KERNELS) expect(kernelOf(k)).toBe(k);
    expect(kernelOf('auto')).toBeUndefined();
    expect(() => kernelOf('gemm4')).toThrow(/unknown conv algorithm 'gemm4'/);
    const g = convGeometry('t', [2, 8, 9, 9], [16, 8, 3, 3], opt(1, 1, 1));
    for (const [alias, k] of Object.entries(CONV_ALGO_ALIASES)) expect(choose('forward', g, alias as ConvAlgo, [0, 0], HARDWARE)).toBe(k);
  });
  it('scalar-gemm ships a forward only: requested for a gradient, the table chooses', () => {
    const g = convGeometry('t', [2, 768, 32, 32], [192, 768, 3, 3], opt(1, 1, 1));
    expect(choose('forward', g, 'scalar-gemm', [0, 0], HARDWARE)).toBe('scalar-gemm');
    expect(choose('dgrad', g, 'scalar-gemm', [0], HARDWARE)).toBe('packed-gemm');
    expect(choose('wgrad', g, 'auto', [0, 0], { ...HARDWARE, pinned: 'scalar-gemm' })).toBe('packed-gemm');
  });
});

describe('auto choice on hardware GPUs (the H100 measurements)', () => {
  const geo = (n: number, c: number, o: number, h: number, k: number, s = 1) => convGeometry('test', [n, c, h, h], [o, c, k, k], opt(s, k >> 1, 1));
  const fwd = (g: ConvGeometry) => choose('forward', g, 'auto', [0, 0], HARDWARE);
  const dgrad = (g: ConvGeometry) => choose('dgrad', g, 'auto', [0], HARDWARE);
  it('direct for small 3×3 maps and few-channel heads, scalar-gemm for deep 3×3 at 32²–64², packed-gemm else', () => {
    expect(fwd(geo(2, 1024, 224, 16, 3))).toBe('direct'); // OSA5_2: 1.73 vs 3.30 ms (scalar-gemm)
    expect(fwd(geo(2, 128, 128, 16, 3, 2))).toBe('direct'); // FPN p6
    expect(fwd(geo(2, 128, 4, 64, 3))).toBe('direct'); // FCOS bbox @64
    expect(fwd(geo(2, 768, 192, 32, 3))).toBe('scalar-gemm'); // OSA4_2: 2.57 vs 3.36 (packed-gemm)
    expect(fwd(geo(2, 160, 160, 64, 3))).toBe('scalar-gemm'); // OSA3
    expect(fwd(geo(2, 128, 128, 64, 3))).toBe('packed-gemm'); // FPN @64: 0.66 vs 0.93 (scalar-gemm)
    expect(fwd(geo(2, 64, 64, 256, 3))).toBe('packed-gemm'); // stem_2: 0.96 vs 1.92 (scalar-gemm)
    expect(fwd(geo(2, 1888, 1024, 16, 1))).toBe('packed-gemm'); // 1×1 at 16²: direct 2.48 vs 0.81
    expect(dgrad(geo(2, 224, 224, 16, 3))).toBe('direct'); // OSA5: 0.49 vs 1.21 (packed-gemm)
    expect(dgrad(geo(2, 128, 128, 64, 3))).toBe('packed-gemm');
    expect(dgrad(geo(2, 2144, 1024, 16, 1))).toBe('packed-gemm');
  });
});
