// The conv chooser: which kernel runs a forward, a grad input (dgrad) or a grad weight (wgrad),
// as one table per direction. Read a table top to bottom: the first row whose adapter kind and
// condition hold gives the kernel. FUSED_BACKWARD says when both gradients run as one dispatch.
// A requested kernel (the `algo` option, or CELLGPU_CONV_ALGO for 'auto') comes before the
// tables: see `choose`. Everything here is a pure function of the geometry, the operand offsets,
// the adapter's capabilities and the request (tests pass the capabilities in).
import { hasSubgroups8, isSoftwareAdapter } from '../../runtime/adapter';
import { fewChannelFits } from './few-channel';
import { type ConvGeometry } from './geometry';
import { matvecApplicable } from './matvec';
import { subgroupGemmFits } from './subgroup-gemm/conv';

/** The conv kernels (launch.ts maps each to its forward, dgrad and wgrad launchers). */
export const CONV_KERNELS = ['direct', 'scalar-gemm', 'packed-gemm', 'subgroup-gemm', 'few-channel', 'matvec'] as const;
export type ConvKernel = (typeof CONV_KERNELS)[number];

/** Other names accepted for a kernel: 'gemm' is the portable GEMM, and the rest are the names the
 *  kernels had before they were named by design, kept so that existing scripts keep working. */
export const CONV_ALGO_ALIASES = {
  gemm: 'packed-gemm',
  gemm1: 'scalar-gemm',
  gemm2: 'packed-gemm',
  gemm3: 'subgroup-gemm',
  few: 'few-channel',
  fc: 'matvec',
} as const satisfies Record<string, ConvKernel>;

/** What the `algo` option and CELLGPU_CONV_ALGO accept: 'auto' (the tables), a kernel or an alias. */
export type ConvAlgo = 'auto' | ConvKernel | keyof typeof CONV_ALGO_ALIASES;
export const CONV_ALGOS: readonly ConvAlgo[] = ['auto', ...CONV_KERNELS, ...(Object.keys(CONV_ALGO_ALIASES) as (keyof typeof CONV_ALGO_ALIASES)[])];

export type Direction = 'forward' | 'dgrad' | 'wgrad';
export const DIRECTIONS: readonly Direction[] = ['forward', 'dgrad', 'wgrad'];

/** What the chooser asks of the adapter (runtime/adapter.ts). */
export interface AdapterCaps {
  /** A CPU rasterizer (lavapipe, SwiftShader) rather than a GPU. */
  software: boolean;
  /** Subgroups enabled and at least 8 invocations wide. */
  subgroups8: boolean;
}

/** The adapters a row applies to: 'software-subgroups8' is a software adapter with 8-wide
 *  subgroups (lavapipe), where the subgroup-broadcast kernels run. */
export type Adapters = 'any' | 'software' | 'hardware' | 'software-subgroups8';

export function adaptersMatch(a: Adapters, caps: AdapterCaps): boolean {
  return a === 'any' || (a === 'software' ? caps.software : a === 'hardware' ? !caps.software : caps.software && caps.subgroups8);
}

/** What a row's condition may look at besides the geometry. */
export interface RowContext {
  /** Element offsets of the operands (matvec needs them 4-aligned): forward [x, w], dgrad [w],
   *  wgrad [x, dw]. */
  offsets: readonly number[];
}

export interface Row {
  kernel: ConvKernel;
  adapters: Adapters;
  when: (g: ConvGeometry, ctx: RowContext) => boolean;
  /** Why this kernel here (measurements on the CenterMask shapes where they decided it). */
  why: string;
}

const always = () => true;
const depthwise = (g: ConvGeometry) => g.C === g.groups && g.O === g.groups;
const taps = (g: ConvGeometry) => g.KH * g.KW;
const matvec = (g: ConvGeometry, ctx: RowContext) => matvecApplicable(g, ctx.offsets);

export const FORWARD: readonly Row[] = [
  { kernel: 'direct', adapters: 'any', when: depthwise, why: 'depthwise: KH·KW multiply-adds per output, nothing to tile' },
  { kernel: 'matvec', adapters: 'any', when: matvec, why: '1×1 conv on 1×1 maps (eSE fc) with C % 4 == 0 and 4-aligned offsets: a matrix-vector product over a few images' },
  { kernel: 'few-channel', adapters: 'software-subgroups8', when: fewChannelFits, why: '≤ 4 output channels, stride 1: a GEMM would be 1-4 rows of padding; 2× packed-gemm and 3.6× subgroup-gemm on FCOS bbox 128→4 @32' },
  { kernel: 'subgroup-gemm', adapters: 'software-subgroups8', when: (g) => subgroupGemmFits(g, 'forward'), why: '2.1-2.5× packed-gemm on the CenterMask convs; needs its packed weights to fit one 128 MiB binding' },
  { kernel: 'direct', adapters: 'hardware', when: (g) => taps(g) > 1 && (g.N * g.OH * g.OW <= 512 || g.O <= 4), why: 'H100: 1.3-2× the GEMMs on 3×3 convs with ≤ 512 output positions (OSA5, FPN @16, p6, p7, FCOS towers @8/@4) and on the ≤ 4-channel heads at every size' },
  { kernel: 'scalar-gemm', adapters: 'hardware', when: (g) => taps(g) > 1 && g.N * g.OH * g.OW <= 8192 && (g.C / g.groups) * taps(g) >= 1440, why: 'H100: 1.3× packed-gemm on deep 3×3 convs (K = Cg·9 ≥ 1440) at @32-@64' },
  { kernel: 'packed-gemm', adapters: 'any', when: always, why: 'the portable GEMM: everything else (on an H100, large maps: the stem, OSA2, FPN @64, the 1×1s)' },
];

export const DGRAD: readonly Row[] = [
  { kernel: 'direct', adapters: 'any', when: depthwise, why: 'depthwise: the gather kernel does KH·KW multiply-adds per input' },
  { kernel: 'matvec', adapters: 'any', when: matvec, why: '1×1 conv on 1×1 maps (eSE fc) with C % 4 == 0 and a 4-aligned weight offset' },
  { kernel: 'few-channel', adapters: 'software-subgroups8', when: fewChannelFits, why: '≤ 4 output channels, stride 1: one dispatch without packs, 1.0-2.5× subgroup-gemm on the FCOS heads (64² to 4²), the mask predictor and SAM; fuses with its wgrad' },
  { kernel: 'direct', adapters: 'hardware', when: (g) => taps(g) > 1 && g.N * g.H * g.W <= 512, why: 'H100: 1.3-2× the GEMMs on 3×3 convs with ≤ 512 input positions' },
  { kernel: 'packed-gemm', adapters: 'any', when: (g) => g.C / g.groups < 8, why: '< 8 input channels per group (the stem 3→64): packed-gemm\'s row tile follows Cg, subgroup-gemm\'s 32 rows would pad ~10× (stem 3→64 s2 @512: 357 against 636 ms)' },
  { kernel: 'subgroup-gemm', adapters: 'software-subgroups8', when: (g) => subgroupGemmFits(g, 'dgrad'), why: '2.6-3.8× packed-gemm on the CenterMask convs; needs its packed weights to fit one 128 MiB binding' },
  { kernel: 'packed-gemm', adapters: 'any', when: always, why: 'the portable GEMM: everything else' },
];

export const WGRAD: readonly Row[] = [
  { kernel: 'matvec', adapters: 'any', when: matvec, why: '1×1 conv on 1×1 maps (eSE fc) with 4-aligned x and dw: an outer product over a few images in one dispatch (eSE 256→256: the split-K GEMM spent 1.1 ms in packs and reductions)' },
  { kernel: 'few-channel', adapters: 'software-subgroups8', when: fewChannelFits, why: '≤ 4 output channels, stride 1: a GEMM would be 1-4 rows of padding; fuses with its dgrad' },
  { kernel: 'packed-gemm', adapters: 'any', when: (g) => depthwise(g) || (g.OH === 1 && g.OW === 1), why: 'depthwise, and 1×1 maps (an outer product over a few images): packed-gemm measured 2× subgroup-gemm on eSE' },
  { kernel: 'subgroup-gemm', adapters: 'software-subgroups8', when: (g) => subgroupGemmFits(g, 'wgrad'), why: '2.6-3.8× packed-gemm on the CenterMask convs; needs its packed dy rows to fit one 128 MiB binding' },
  { kernel: 'packed-gemm', adapters: 'any', when: always, why: 'the portable GEMM: everything else' },
];

export const TABLES: Readonly<Record<Direction, readonly Row[]>> = { forward: FORWARD, dgrad: DGRAD, wgrad: WGRAD };

/** Where each kernel can run (its directions, adapters and geometry): a pinned kernel is used only
 *  there. scalar-gemm ships its forward only (its dgrad and wgrad are in dev/conv/). */
export const CAN_RUN: Readonly<Record<ConvKernel, { directions: readonly Direction[]; adapters: Adapters; when: (g: ConvGeometry, ctx: RowContext, dir: Direction) => boolean }>> = {
  direct: { directions: DIRECTIONS, adapters: 'any', when: always },
  'scalar-gemm': { directions: ['forward'], adapters: 'any', when: always },
  'packed-gemm': { directions: DIRECTIONS, adapters: 'any', when: always },
  'subgroup-gemm': { directions: DIRECTIONS, adapters: 'software-subgroups8', when: (g, _, dir) => subgroupGemmFits(g, dir) },
  'few-channel': { directions: DIRECTIONS, adapters: 'software-subgroups8', when: fewChannelFits },
  matvec: { directions: DIRECTIONS, adapters: 'any', when: matvec },
};

/** The kernels that take f16 storage (ConvGeometry.f16). An f16 convolution reads each table with
 *  only these rows, then falls back to direct (every geometry); f32 choices are untouched. */
export const F16_KERNELS: readonly ConvKernel[] = ['direct', 'subgroup-gemm'];

/** The first row of `dir`'s table for f16 storage: the rows of F16_KERNELS, else direct. */
export function firstRowF16(dir: Direction, g: ConvGeometry, ctx: RowContext, caps: AdapterCaps): ConvKernel {
  const row = TABLES[dir].find((r) => F16_KERNELS.includes(r.kernel) && adaptersMatch(r.adapters, caps) && r.when(g, ctx));
  return row?.kernel ?? 'direct';
}

/** A requested kernel that cannot run the shape and takes a stand-in instead of failing: conv2d
 *  with algo 'matvec' trains with any offsets (its weight gradient then runs packed-gemm). */
export const STAND_IN: Readonly<Partial<Record<Direction, Partial<Record<ConvKernel, ConvKernel>>>>> = { wgrad: { matvec: 'packed-gemm' } };

/** The kernel an algorithm name stands for; undefined for 'auto'; throws on an unknown name. */
export function kernelOf(algo: string): ConvKernel | undefined {
  if (algo === 'auto') return undefined;
  if ((CONV_KERNELS as readonly string[]).includes(algo)) return algo as ConvKernel;
  const alias = (CONV_ALGO_ALIASES as Record<string, ConvKernel>)[algo];
  if (alias) return alias;
  throw new Error(`unknown conv algorithm '${algo}': expected one of ${CONV_ALGOS.join(', ')}`);
}

/** CELLGPU_CONV_ALGO: a kernel (or alias) that 'auto' takes wherever it can run the shape, for
 *  debugging and A/B comparisons of whole models; unset, empty or 'auto' pins nothing. */
const PINNED = kernelOf((typeof process !== 'undefined' ? process.env.CELLGPU_CONV_ALGO : undefined) || 'auto');

/** The chooser's view of the machine: adapter capabilities and the pinned kernel. */
export interface ChooserEnv {
  caps: AdapterCaps;
  pinned: ConvKernel | undefined;
}

/** The current adapter's capabilities and CELLGPU_CONV_ALGO. */
export function chooserEnv(): ChooserEnv {
  return { caps: { software: isSoftwareAdapter(), subgroups8: hasSubgroups8() }, pinned: PINNED };
}

/** Whether `kernel` has a launcher for `dir` and can run this shape on this adapter. */
export function canRun(kernel: ConvKernel, dir: Direction, g: ConvGeometry, ctx: RowContext, caps: AdapterCaps): boolean {
  const c = CAN_RUN[kernel];
  return c.directions.includes(dir) && adaptersMatch(c.adapters, caps) && c.when(g, ctx, dir);
}

/** The first row of `dir`'s table that applies (the last row of each table always does). */
export function firstRow(dir: Direction, g: ConvGeometry, ctx: RowContext, caps: AdapterCaps): Row {
  const row = TABLES[dir].find((r) => adaptersMatch(r.adapters, caps) && r.when(g, ctx));
  if (!row) throw new Error(`conv chooser: no ${dir} row applies`);
  return row;
}

/**
 * The kernel for `dir`. A request comes first: the `algo` option, or for 'auto' the pinned kernel.
 *   - The requested kernel runs where it can (CAN_RUN).
 *   - Where it cannot: a stand-in if STAND_IN names one; else an explicit `algo` runs it anyway (it
 *     throws, saying why) and a pinned one gives way to the table.
 *   - A kernel without a launcher for `dir` (scalar-gemm's dgrad and wgrad) gives way to the table.
 * Otherwise the first row of the table that applies.
 */
export function choose(dir: Direction, g: ConvGeometry, algo: ConvAlgo = 'auto', offsets: readonly number[] = [], env: ChooserEnv = chooserEnv()): ConvKernel {
  const ctx: RowContext = { offsets };
  const requested = algo === 'auto' ? env.pinned : kernelOf(algo);
  if (g.f16) {
    // f16 storage: a request for a kernel without it fails (explicit) or gives way (pinned).
    if (requested && algo !== 'auto' && !F16_KERNELS.includes(requested)) {
      throw new Error(`conv ${dir}: kernel '${requested}' has no f16 storage (f16 kernels: ${F16_KERNELS.join(', ')})`);
    }
    if (requested && F16_KERNELS.includes(requested) && canRun(requested, dir, g, ctx, env.caps)) return requested;
    return firstRowF16(dir, g, ctx, env.caps);
  }
  if (requested && CAN_RUN[requested].directions.includes(dir)) {
    if (canRun(requested, dir, g, ctx, env.caps)) return requested;
    const standIn = STAND_IN[dir]?.[requested];
    if (standIn) return standIn;
    if (algo !== 'auto') return requested;
  }
  return firstRow(dir, g, ctx, env.caps).kernel;
}

/** `offsets`: element offsets of x and w (matvec needs them 4-aligned). */
export const chooseForward = (g: ConvGeometry, algo: ConvAlgo = 'auto', offsets: readonly number[] = [], env?: ChooserEnv) => choose('forward', g, algo, offsets, env);
/** `offsets`: the element offset of w. */
export const chooseDgrad = (g: ConvGeometry, algo: ConvAlgo = 'auto', offsets: readonly number[] = [], env?: ChooserEnv) => choose('dgrad', g, algo, offsets, env);
/** `offsets`: element offsets of x and dw. */
export const chooseWgrad = (g: ConvGeometry, algo: ConvAlgo = 'auto', offsets: readonly number[] = [], env?: ChooserEnv) => choose('wgrad', g, algo, offsets, env);

/** Element offsets of the backward's operands. */
export interface BackwardOffsets {
  x: number;
  w: number;
  dw: number;
}

export interface FusedRow {
  kernel: 'few-channel' | 'matvec';
  /** `pick(dir, offsets)`: the kernel `choose` gives for that direction. */
  when: (g: ConvGeometry, o: BackwardOffsets, pick: (dir: Direction, offsets: readonly number[]) => ConvKernel) => boolean;
  why: string;
}

/** When both gradients are wanted, these run them as one dispatch (first match; else the dgrad and
 *  wgrad kernels one after the other). */
export const FUSED_BACKWARD: readonly FusedRow[] = [
  {
    kernel: 'few-channel',
    when: (g, o, pick) => pick('dgrad', [o.w]) === 'few-channel' && pick('wgrad', []) === 'few-channel',
    why: 'few output channels on small maps: both gradients are launch-bound, one launch is cheaper than two',
  },
  {
    kernel: 'matvec',
    when: (g, o, pick) => g.O * g.C <= 512 * 512 && pick('dgrad', [o.w]) === 'matvec' && pick('wgrad', [o.x, o.dw]) === 'matvec',
    why: 'fused only while launch-bound: eSE 256→256 0.77 ms fused against 0.55 + 0.52 ms apart; 1024→1024 (bandwidth-bound) 8.5 ms against 3.3 + 4.5 ms',
  },
];

/** The fused backward kernel for dx and dw together, or null to run the two gradients apart. */
export function chooseFusedBackward(g: ConvGeometry, algo: ConvAlgo, offsets: BackwardOffsets, env: ChooserEnv = chooserEnv()): FusedRow['kernel'] | null {
  const pick = (dir: Direction, offs: readonly number[]) => choose(dir, g, algo, offs, env);
  return FUSED_BACKWARD.find((r) => r.when(g, offsets, pick))?.kernel ?? null;
}
